import Foundation
import HearthCore
import XCTest

@testable import HearthStore

/// A writer gate a test opens and closes: while closed, the store's writer stalls before its
/// next transaction, as on a stuck disk.
final class TestGate: @unchecked Sendable {
    private let condition = NSCondition()
    private var closed: Bool

    init(closed: Bool) { self.closed = closed }

    func pass() {
        condition.lock()
        while closed { condition.wait() }
        condition.unlock()
    }

    func open() {
        condition.lock()
        closed = false
        condition.broadcast()
        condition.unlock()
    }
}

/// The writer's queue under a stalled disk, and the failed-authentication rows in the store.
final class BacklogTests: XCTestCase {
    let room = RoomID("group-1")

    func path() throws -> String {
        (try temporaryDirectory(self) as NSString).appendingPathComponent(Store.fileName)
    }

    func chat(_ i: Int) -> JournalEntry {
        JournalEntry.command(
            .chat(to: .room, text: "message \(i)"), from: ConnectionID(1), room: room,
            at: Instant(milliseconds: Int64(i)))!
    }

    func testTheQueueStopsTakingNewWorkAtItsBoundAndDropsNothingWhenTheStallEnds() throws {
        let gate = TestGate(closed: true)
        let store = try Store(path: try path(), commitWindow: 0, queueLimit: 10, writerGate: { gate.pass() })
        var accepted = 0
        while store.acceptsNewWork && accepted < 1_000 {
            store.append(chat(accepted))
            accepted += 1
        }
        XCTAssertEqual(accepted, 10, "new work stops at the bound")
        XCTAssertEqual(store.queued, 10)
        // What happens anyway is still recorded past the bound: audit records, a departure.
        for i in 0..<5 {
            store.append(
                AuditRecord(
                    at: Instant(milliseconds: Int64(100 + i)), room: room, actor: nil, subject: nil, action: "drop"))
        }
        store.append(JournalEntry.disconnected(connection: ConnectionID(1), room: room, at: Instant(milliseconds: 200)))
        XCTAssertEqual(store.queued, 16)
        XCTAssertFalse(store.acceptsNewWork)
        XCTAssertFalse(store.flush(timeout: 0.2), "the writer is stalled")
        XCTAssertEqual(store.statistics.committed, 0)

        gate.open()
        XCTAssertTrue(store.flush(timeout: 10))
        XCTAssertTrue(store.acceptsNewWork)
        XCTAssertEqual(store.queued, 0)
        XCTAssertEqual(
            try store.replay(),
            (0..<10).map(chat) + [
                JournalEntry.disconnected(connection: ConnectionID(1), room: room, at: Instant(milliseconds: 200))
            ])
        XCTAssertEqual(try store.verifyAudit(), .ok(count: 5))
        XCTAssertEqual(store.statistics.droppedAfterClose, 0)
        store.close()
    }

    func testFailedAuthenticationsAreFoldedInTheStoreAndTheChainHolds() throws {
        let path = try path()
        let store = try Store(
            path: path,
            foldingLimits: .init(rowsPerAddress: 2, rowsPerSecond: 100, intervalMilliseconds: 60_000))
        for i in 0..<50 {
            store.appendAuthenticationFailure(
                room: room, reason: "bad_signature", address: "10.0.0.\(i % 2)", at: Instant(milliseconds: Int64(i)))
        }
        store.flush()
        XCTAssertEqual(try store.auditRecords(room: nil).count, 4, "two rows per address, the rest folded")
        // The interval closes on the shell's tick: one summary per address.
        store.closeAuthenticationFailureInterval(at: Instant(milliseconds: 59_999))
        store.flush()
        XCTAssertEqual(try store.auditRecords(room: nil).count, 4)
        store.closeAuthenticationFailureInterval(at: Instant(milliseconds: 60_000))
        store.flush()
        let rows = try store.auditRecords(room: room).map(\.record)
        XCTAssertEqual(
            rows.map(\.action),
            Array(repeating: "authenticate", count: 4) + [
                "authenticate-summary", "authenticate-summary",
            ])
        XCTAssertEqual(rows[0].reason, "bad_signature address:10.0.0.0")
        XCTAssertEqual(rows[4].reason, "address:10.0.0.0 count:23 since:0 reasons:bad_signature=23")
        XCTAssertEqual(rows[5].reason, "address:10.0.0.1 count:23 since:0 reasons:bad_signature=23")
        XCTAssertEqual(try store.verifyAudit(), .ok(count: 6))

        // Closing the store writes the summary of the interval still open.
        for i in 0..<5 {
            store.appendAuthenticationFailure(
                room: room, reason: "expired", address: "::1", at: Instant(milliseconds: 70_000 + Int64(i)))
        }
        store.close()
        let reopened = try Store(path: path)
        let last = try reopened.auditRecords(room: room).last!.record
        XCTAssertEqual(last.action, "authenticate-summary")
        XCTAssertTrue(last.reason!.hasPrefix("address:::1 count:3 since:60000 "), last.reason!)
        XCTAssertEqual(try reopened.verifyAudit(), .ok(count: 9))
        reopened.close()
    }
}
