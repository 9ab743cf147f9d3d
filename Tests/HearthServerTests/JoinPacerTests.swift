import HearthCore
import HearthTransport
import XCTest

@testable import HearthServer

/// The join (and departure) budget's bookkeeping, driven with made-up durations.
final class JoinPacerTests: XCTestCase {
    private func hello(_ id: UInt64) -> RoomHost.PacedWork {
        .join(.hello(SessionID(rawValue: id), token: "t", rid: nil))
    }
    private func departure(_ id: UInt64) -> RoomHost.PacedWork {
        .departure(RoomHost.Departure(session: SessionID(rawValue: id), room: RoomID("r")))
    }
    /// A pacer whose iteration has spent its budget, with departure 1, join 2 and departure 3
    /// waiting (in that order).
    private func spentWithThreeWaiting() -> JoinPacer {
        var p = JoinPacer(budget: .milliseconds(5))
        p.ran(.milliseconds(5))
        p.wait(departure(1))
        p.wait(hello(2))
        p.wait(departure(3))
        return p
    }

    func testJoinsRunUntilTheIterationsBudgetIsSpentThenWaitInOrder() {
        var p = JoinPacer(budget: .milliseconds(20))
        XCTAssertTrue(p.admitsJoinNow)
        p.ran(.milliseconds(12))
        XCTAssertTrue(p.admitsJoinNow, "12 of 20 ms spent")
        p.ran(.milliseconds(9))
        XCTAssertFalse(p.admitsJoinNow, "21 ms: the rest wait")
        p.wait(hello(1))
        p.wait(hello(2))
        p.wait(hello(3))
        XCTAssertEqual(p.waitingCount, 3)
        XCTAssertNil(p.nextWaiting(), "none more in this iteration")
        p.iterationEnded()
        XCTAssertFalse(p.admitsJoinNow, "a new join queues behind the waiting ones")
        XCTAssertEqual(p.nextWaiting()?.session, SessionID(rawValue: 1))
        p.ran(.milliseconds(15))
        XCTAssertEqual(p.nextWaiting()?.session, SessionID(rawValue: 2))
        p.ran(.milliseconds(15))
        XCTAssertNil(p.nextWaiting(), "30 ms spent")
        p.iterationEnded()
        XCTAssertEqual(p.nextWaiting()?.session, SessionID(rawValue: 3))
        XCTAssertEqual(p.waitingCount, 0)
        XCTAssertTrue(p.admitsJoinNow)
    }

    func testWaitingJoinsGoBeforeWaitingDeparturesEachInArrivalOrder() {
        var p = spentWithThreeWaiting()
        p.wait(hello(1))  // the same member back: it may overtake its departure
        XCTAssertFalse(p.admitsJoinNow, "joins wait: no budget left")
        p.iterationEnded()
        XCTAssertFalse(p.admitsJoinNow, "a new join queues behind the waiting joins")
        var order: [String] = []
        while let work = p.nextWaiting() {
            switch work {
            case .join(let join): order.append("join \(join.session.rawValue)")
            case .departure(let departure): order.append("departure \(departure.session.rawValue)")
            }
        }
        XCTAssertEqual(order, ["join 2", "join 1", "departure 1", "departure 3"])
    }

    func testWaitingDeparturesDoNotHoldBackANewJoin() {
        var p = JoinPacer(budget: .milliseconds(5))
        p.ran(.milliseconds(5))
        p.wait(departure(1))
        p.wait(departure(2))
        p.iterationEnded()
        XCTAssertTrue(p.admitsJoinNow, "only departures wait: a join runs at once")
        XCTAssertFalse(p.admitsDepartureNow, "a new departure queues behind the waiting ones")
        p.ran(.milliseconds(5))
        XCTAssertFalse(p.admitsJoinNow, "the budget is spent")
    }

    func testStoppingTakesEverythingWaitingWhateverTheBudget() {
        var p = spentWithThreeWaiting()
        XCTAssertNil(p.nextWaiting(), "no budget left")
        XCTAssertEqual(p.takeAll().map(\.session.rawValue), [2, 1, 3], "the joins, then the departures")
        XCTAssertEqual(p.waitingCount, 0)
        XCTAssertTrue(p.takeAll().isEmpty)
    }

    func testAZeroBudgetNeverHoldsAJoin() {
        var p = JoinPacer(budget: .zero)
        p.ran(.seconds(5))
        XCTAssertTrue(p.admitsJoinNow)
    }

    func testALongQueueIsCompactedWithoutLosingItsOrder() {
        var p = JoinPacer(budget: .milliseconds(1))
        p.ran(.milliseconds(2))
        for i in 0..<3000 { p.wait(hello(UInt64(i))) }
        var seen: [UInt64] = []
        while p.waitingCount > 0 {
            p.iterationEnded()
            while let j = p.nextWaiting() {
                seen.append(j.session.rawValue)
                if seen.count % 7 == 0 { p.ran(.milliseconds(1)) }
            }
        }
        XCTAssertEqual(seen, Array(0..<3000))
    }
}
