import XCTest

@testable import HearthTransport

/// The accept budget's bookkeeping, driven with made-up durations (nanoseconds).
final class AcceptBudgetTests: XCTestCase {
    private let ms: UInt64 = 1_000_000

    func testAnIterationAcceptsForHalfAsLongAsThePreviousOneDidEverythingElse() {
        var b = AcceptBudget()
        XCTAssertEqual(b.budget, 5 * ms, "the first iteration gets the minimum")
        b.accepted(for: 2 * ms)
        XCTAssertFalse(b.isSpent())
        XCTAssertTrue(b.isSpent(after: 3 * ms), "2 + 3 ms reach the 5 ms budget")
        b.accepted(for: 4 * ms)
        XCTAssertTrue(b.isSpent())
        // 36 ms in all, 6 of them accepting: the rooms' own work was 30 ms.
        b.iterationEnded(took: 36 * ms)
        XCTAssertEqual(b.budget, 15 * ms)
        XCTAssertEqual(b.spent, 0, "a new iteration starts with nothing spent")
        XCTAssertFalse(b.isSpent(after: 14 * ms))
        XCTAssertTrue(b.isSpent(after: 15 * ms))
    }

    func testTheBudgetHasAFloorAndFollowsLongIterations() {
        var b = AcceptBudget()
        b.iterationEnded(took: 1 * ms)
        XCTAssertEqual(b.budget, AcceptBudget.minimum, "a quiet loop still accepts")
        b.iterationEnded(took: 400 * ms)
        XCTAssertEqual(b.budget, 200 * ms, "a session start's long iterations leave handshakes a third of the loop")
        b.accepted(for: 80 * ms)
        b.iterationEnded(took: 70 * ms)  // clocks that disagree: never a negative remainder
        XCTAssertEqual(b.budget, AcceptBudget.minimum)
    }

    func testAnIterationSpentOnlyOnAcceptingLeavesTheNextTheMinimum() {
        var b = AcceptBudget()
        b.iterationEnded(took: 40 * ms)
        b.accepted(for: 40 * ms)
        b.iterationEnded(took: 43 * ms)
        XCTAssertEqual(b.budget, AcceptBudget.minimum, "3 ms of other work: the rooms go next")
    }

    func testHandshakesFinishedAfterTheirAcceptAreAcceptingsWorkNotTheRooms() {
        var b = AcceptBudget()
        b.accepted(for: 3 * ms)  // the accept burst
        XCTAssertFalse(b.isSpent())
        b.accepted(for: 20 * ms)  // earlier connections' key exchanges and signatures (the info callback's time)
        XCTAssertTrue(b.isSpent(), "no more accepts in this iteration")
        b.iterationEnded(took: 43 * ms)
        XCTAssertEqual(b.budget, 10 * ms, "the next iteration gets half the rooms' 20 ms, not half of 40")
    }
}

/// The listener's pause causes: it stops on the first and starts again when the last is gone.
final class ListenerPausesTests: XCTestCase {
    func testTheListenerStopsOnTheFirstCauseAndStartsWhenTheLastIsGone() {
        var p = ListenerPauses()
        XCTAssertTrue(p.isListening)
        XCTAssertTrue(p.pause(.handshakes), "the first cause stops the watcher")
        XCTAssertFalse(p.pause(.budget), "a second cause: already stopped")
        XCTAssertFalse(p.pause(.budget), "the same cause again: nothing to do")
        XCTAssertFalse(p.resume(.budget), "the handshake bound still holds")
        XCTAssertFalse(p.isListening)
        XCTAssertTrue(p.resume(.handshakes), "the last cause gone: the watcher starts")
        XCTAssertTrue(p.isListening)
    }

    func testResumingACauseThatDoesNotHoldStartsNothing() {
        var p = ListenerPauses()
        XCTAssertFalse(p.resume(.descriptors), "listening already: no second start")
        _ = p.pause(.descriptors)
        XCTAssertFalse(p.resume(.budget))
        XCTAssertEqual(p.causes, [.descriptors])
    }
}
