import HearthCore
import XCTest

@testable import HearthServer

final class TimerQueueTests: XCTestCase {
    private func timer(_ room: String, _ kind: TimerID.Kind = .idle) -> TimerID {
        TimerID(room: RoomID(room), kind: kind)
    }
    private func at(_ ms: Int64) -> Instant { Instant(milliseconds: ms) }

    func testDueTimersComeOutEarliestFirstAndOnce() {
        var q = TimerQueue()
        q.schedule(timer("c"), at: at(30))
        q.schedule(timer("a"), at: at(10))
        q.schedule(timer("b"), at: at(20))
        q.schedule(timer("d"), at: at(40))
        XCTAssertEqual(q.popDue(at(5)), [])
        XCTAssertEqual(q.popDue(at(30)), [timer("a"), timer("b"), timer("c")])
        XCTAssertEqual(q.popDue(at(30)), [])
        XCTAssertEqual(q.count, 1)
        XCTAssertEqual(q.popDue(at(100)), [timer("d")])
        XCTAssertEqual(q.count, 0)
    }

    func testACancelledTimerNeverFires() {
        var q = TimerQueue()
        q.schedule(timer("a"), at: at(10))
        q.cancel(timer("a"))
        XCTAssertEqual(q.count, 0)
        XCTAssertEqual(q.popDue(at(100)), [])
    }

    func testARescheduledTimerFiresOnlyAtItsLastTime() {
        var q = TimerQueue()
        q.schedule(timer("a"), at: at(10))
        q.schedule(timer("a"), at: at(50))
        XCTAssertEqual(q.popDue(at(20)), [], "the earlier time is stale")
        XCTAssertEqual(q.popDue(at(50)), [timer("a")])
        q.schedule(timer("b"), at: at(90))
        q.schedule(timer("b"), at: at(60))
        XCTAssertEqual(q.popDue(at(70)), [timer("b")], "moved earlier")
        XCTAssertEqual(q.popDue(at(100)), [], "and not again at the old time")
    }

    func testManyTimersInRandomOrderComeOutSorted() {
        var q = TimerQueue()
        var rng = SystemRandomNumberGenerator()
        var expected: [(Int64, TimerID)] = []
        for i in 0..<500 {
            let t = Int64.random(in: 0..<10_000, using: &rng)
            let id = timer("r\(i)", .grace(ParticipantID(UInt32(i))))
            q.schedule(id, at: at(t))
            expected.append((t, id))
        }
        let fired = q.popDue(at(10_000))
        XCTAssertEqual(fired.count, 500)
        let times = fired.map { id in expected.first { $0.1 == id }!.0 }
        XCTAssertEqual(times, times.sorted())
    }
}
