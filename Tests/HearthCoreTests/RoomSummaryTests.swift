import HearthCore
import XCTest

final class RoomSummaryTests: XCTestCase {
    func testSeatCountsCountStaffInTheRoomAndEveryWaitingSeat() {
        var (h, _, _) = Harness.groupInSession(2)
        h.join("w1", .participant)
        h.join("w2", .guest)
        h.join("co", .cofacilitator)
        XCTAssertEqual(h.room.seatCounts, Room.SeatCounts(inRoom: 4, waiting: 2))
    }

    func testAWaitingMemberIsReadyOnceConsentAndLocationAreGiven() {
        var h = Harness {
            $0.consentVersion = "v2"
            $0.requireLocation = true
        }
        let a = h.join("a", .participant)
        func ready() -> Bool { h.room.isReadyForAdmission(h.room.seat(of: a)!) }
        XCTAssertFalse(ready())
        h.send(a, .acknowledgeConsent(version: "v2"))
        XCTAssertFalse(ready(), "location still missing")
        h.send(a, .setLocation("Berlin"))
        XCTAssertTrue(ready())
    }

    func testWithoutRequirementsEveryWaitingMemberIsReady() {
        var h = Harness()
        let a = h.join("a", .participant)
        XCTAssertTrue(h.room.isReadyForAdmission(h.room.seat(of: a)!))
    }

    func testEndedAtIsTheEndOfTheSession() {
        var (h, f, _) = Harness.groupInSession(1)
        XCTAssertNil(h.room.endedAt)
        h.send(f, .end)
        XCTAssertEqual(h.room.endedAt, h.now)
    }
}
