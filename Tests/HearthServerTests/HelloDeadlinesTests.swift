import HearthCore
import HearthTransport
import XCTest

@testable import HearthServer

final class HelloDeadlinesTests: XCTestCase {
    private func s(_ id: UInt64) -> SessionID { SessionID(rawValue: id) }
    private func t(_ ms: Int64) -> Instant { Instant(milliseconds: ms) }

    func testOnlyTheConnectionsWhoseTimeIsUpAreTakenOldestFirst() {
        var deadlines = HelloDeadlines()
        deadlines.opened(s(1), at: t(1_000))
        deadlines.opened(s(2), at: t(1_500))
        deadlines.opened(s(3), at: t(2_000))
        XCTAssertEqual(deadlines.takeDue(now: t(5_999), timeout: 5_000), [])
        XCTAssertEqual(deadlines.takeDue(now: t(6_500), timeout: 5_000), [s(1), s(2)])
        XCTAssertEqual(deadlines.count, 1)
        XCTAssertEqual(deadlines.takeDue(now: t(6_500), timeout: 5_000), [], "taken once only")
        XCTAssertEqual(deadlines.takeDue(now: t(7_000), timeout: 5_000), [s(3)])
        XCTAssertEqual(deadlines.count, 0)
    }

    func testAKeptConnectionIsTakenAgainOnEveryTickUntilNoLongerKept() {
        var deadlines = HelloDeadlines()
        deadlines.opened(s(1), at: t(0))
        deadlines.opened(s(2), at: t(10_000))
        XCTAssertEqual(deadlines.takeDue(now: t(5_000), timeout: 5_000), [s(1)])
        deadlines.keep(s(1))
        XCTAssertEqual(deadlines.takeDue(now: t(5_100), timeout: 5_000), [s(1)], "kept: taken again")
        XCTAssertEqual(deadlines.takeDue(now: t(5_200), timeout: 5_000), [], "not kept again: gone")
        XCTAssertEqual(deadlines.takeDue(now: t(15_000), timeout: 5_000), [s(2)])
    }

    func testConnectionsOpenedAndTakenOverManyTicksComeOutInOrder() {
        var deadlines = HelloDeadlines()
        var taken: [SessionID] = []
        var next: UInt64 = 0
        // 100 ms ticks; 100 connections opened between each two, a 1 s timeout: the front of
        // the queue is compacted along the way.
        for now in stride(from: Int64(100), through: 8_000, by: 100) {
            if now <= 6_000 {
                for i in 0..<100 {
                    deadlines.opened(s(next), at: t(now - 99 + Int64(i)))
                    next += 1
                }
            }
            let due = deadlines.takeDue(now: t(now), timeout: 1_000)
            XCTAssertEqual(due.count, now <= 1_000 ? 0 : (now <= 7_000 ? 100 : 0), "at \(now)")
            taken += due
        }
        XCTAssertEqual(taken, (0..<6_000).map { s(UInt64($0)) })
        XCTAssertEqual(deadlines.count, 0)
    }

    func testATimeoutOfZeroTakesEveryConnectionOnTheNextTick() {
        var deadlines = HelloDeadlines()
        deadlines.opened(s(1), at: t(100))
        XCTAssertEqual(deadlines.takeDue(now: t(100), timeout: 0), [s(1)])
    }
}
