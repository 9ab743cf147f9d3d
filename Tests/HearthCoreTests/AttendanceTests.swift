import HearthCore
import XCTest

/// Attendance over a whole session, against minutes computed by hand.
final class AttendanceTests: XCTestCase {
    let minute: Int64 = 60_000

    func testASessionWithDropsResumesExpirySendBackAndRemoval() {
        var h = Harness { $0.graceMilliseconds = 2 * 60_000 }
        let t0 = h.now
        let f = h.join("fac", .facilitator)  // t0: facilitator in the room
        let a = h.join("a", .participant)  // t0: a waiting
        let b = h.join("b", .participant)  // t0: b waiting
        let c = h.join("c", .participant)  // t0: c waiting
        h.advance(5 * minute)  // t+5: everyone admitted
        h.send(f, .admitAll)
        h.advance(10 * minute)  // t+15: a drops, resumes 1 minute later (under the grace period)
        h.drop(a)
        h.advance(1 * minute)
        h.resume(ConnectionID(900), "a", lastSeq: 0)
        h.advance(4 * minute)  // t+20: b drops for good; the grace period ends at t+22
        h.drop(b)
        h.advance(2 * minute)
        h.fireTimers()
        h.advance(3 * minute)  // t+25: c sent back, waits 5 minutes, admitted again at t+30
        h.send(f, .sendBack(h.pid("c")))
        h.advance(5 * minute)
        h.send(f, .admit(h.pid("c")))
        h.advance(10 * minute)  // t+40: a removed
        h.send(f, .remove(h.pid("a"), ban: false, reason: nil))
        h.advance(20 * minute)  // t+60: the session ends
        h.send(f, .end)
        _ = (b, c)

        let ledger = AttendanceLedger(records: h.attendance, until: h.now)
        func member(_ u: String) -> AttendanceLedger.Member { ledger.members.first { $0.userID == UserID(u) }! }
        // a: admitted t+5, the one-minute drop merged, removed t+40: 35 minutes in one interval.
        XCTAssertEqual(member("a").inRoom.count, 1)
        XCTAssertEqual(member("a").roomMilliseconds, 35 * minute)
        XCTAssertEqual(member("a").waitingMilliseconds, 5 * minute)
        // b: admitted t+5, dropped t+20 and never back: left at the drop, 15 minutes.
        XCTAssertEqual(member("b").roomMilliseconds, 15 * minute)
        XCTAssertEqual(member("b").lastLeft, t0 + 20 * minute)
        // c: t+5..t+25 and t+30..t+60 in the room (50 minutes), 5 + 5 minutes waiting.
        XCTAssertEqual(member("c").inRoom.count, 2)
        XCTAssertEqual(member("c").roomMilliseconds, 50 * minute)
        XCTAssertEqual(member("c").waitingMilliseconds, 10 * minute)
        // The facilitator: the whole hour.
        XCTAssertEqual(member("fac").roomMilliseconds, 60 * minute)
        XCTAssertEqual(ledger.participantCount, 3)
        // And the audit trail alone says the same.
        XCTAssertEqual(AttendanceLedger(auditRecords: h.audits, until: h.now).members, ledger.members)
    }
}
