import Foundation
import HearthCore
import XCTest

@testable import HearthStore

/// The read side used off the event loop: a cursor over a room's audit rows, an early-stopping
/// search, one room's end mark, and waiting for the writer's ticket.
final class ReaderTests: XCTestCase {
    func record(_ i: Int64, room: String, action: String = "hand") -> AuditRecord {
        AuditRecord(
            at: Instant(milliseconds: 1_000 + i), room: RoomID(room),
            actor: Party(userID: UserID("u\(i % 5)"), id: ParticipantID(UInt32(i % 5 + 1)), role: .participant),
            subject: nil, action: action, outcome: .done, reason: nil)
    }

    func testTheCursorYieldsWhatAuditRecordsReturnsAndStopsWhenAsked() throws {
        let (store, _) = try openStore(self)
        for i: Int64 in 0..<500 { store.append(record(i, room: i % 3 == 0 ? "a" : "b")) }
        store.flush()
        var streamed: [StoredAudit] = []
        try store.forEachAuditRecord(room: RoomID("a"), since: Instant(milliseconds: 1_100)) {
            streamed.append($0)
            return true
        }
        XCTAssertEqual(streamed, try store.auditRecords(room: RoomID("a"), since: Instant(milliseconds: 1_100)))
        XCTAssertEqual(streamed.count, 133)
        var seen = 0
        try store.forEachAuditRecord(room: nil) { _ in
            seen += 1
            return seen < 10
        }
        XCTAssertEqual(seen, 10)
    }

    func testContainsStopsAtTheFirstMatch() throws {
        let (store, _) = try openStore(self)
        store.append(record(1, room: "a", action: "api:get-room"))
        store.append(record(2, room: "a", action: "arrive"))
        store.flush()
        XCTAssertTrue(try store.containsAuditRecord(room: RoomID("a")) { $0.action == "arrive" })
        XCTAssertFalse(try store.containsAuditRecord(room: RoomID("a")) { $0.action == "end" })
        XCTAssertFalse(try store.containsAuditRecord(room: RoomID("none")) { _ in true })
    }

    func testEndedAtReadsOneRoomsMark() throws {
        let (store, _) = try openStore(self)
        store.markEnded(RoomID("a"), at: Instant(milliseconds: 42))
        store.flush()
        XCTAssertEqual(try store.endedAt(RoomID("a")), Instant(milliseconds: 42))
        XCTAssertNil(try store.endedAt(RoomID("b")))
    }

    func testAReaderWaitingForATicketSeesEverythingQueuedBeforeIt() throws {
        let (store, _) = try openStore(self)
        for i: Int64 in 0..<200 { store.append(record(i, room: "a")) }
        let ticket = store.lastTicket
        let done = expectation(description: "read")
        DispatchQueue.global().async {
            XCTAssertTrue(store.waitCommitted(ticket, timeout: 10))
            XCTAssertEqual(try? store.auditRecords(room: RoomID("a")).count, 200)
            done.fulfill()
        }
        wait(for: [done], timeout: 15)
    }
}
