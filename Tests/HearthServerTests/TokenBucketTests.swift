import HearthCore
import XCTest

@testable import HearthServer

final class TokenBucketTests: XCTestCase {
    private let t0 = Instant(milliseconds: 1_000_000)

    func testABurstThenRefillAtTheRate() {
        var bucket = TokenBucket(burst: 3, perSecond: 2, now: t0)
        for _ in 0..<3 { XCTAssertTrue(bucket.take(now: t0)) }
        XCTAssertFalse(bucket.take(now: t0), "the burst is spent")
        XCTAssertFalse(bucket.take(now: t0 + 499), "not quite one token")
        XCTAssertTrue(bucket.take(now: t0 + 500), "2 per second: one token after 500 ms")
        XCTAssertFalse(bucket.isFull(now: t0 + 500))
        XCTAssertTrue(bucket.isFull(now: t0 + 60_000), "never more than the burst")
        for _ in 0..<3 { XCTAssertTrue(bucket.take(now: t0 + 60_000)) }
        XCTAssertFalse(bucket.take(now: t0 + 60_000))
    }

    func testAvailableDoesNotSpend() {
        var bucket = TokenBucket(burst: 1, perSecond: 1, now: t0)
        XCTAssertTrue(bucket.available(now: t0))
        XCTAssertTrue(bucket.available(now: t0))
        XCTAssertTrue(bucket.take(now: t0))
        XCTAssertFalse(bucket.available(now: t0))
    }

    func testTimeGoingBackwardsAddsNothing() {
        var bucket = TokenBucket(burst: 1, perSecond: 1, now: t0)
        XCTAssertTrue(bucket.take(now: t0))
        XCTAssertFalse(bucket.take(now: t0 + (-10_000)))
    }

    func testEachCommandKindHasItsOwnBudget() {
        var limits = HearthConfiguration.RateLimits()
        limits.chatBurst = 2
        limits.chatPerSecond = 0.001
        var budget = CommandBudget(limits: limits, now: t0)
        XCTAssertEqual(CommandKind(.chat(to: .room, text: "x")), .chat)
        XCTAssertEqual(CommandKind(.messageWaitingRoom("x")), .chat)
        XCTAssertEqual(CommandKind(.raiseHand), .control)
        XCTAssertTrue(budget.allow(.chat, now: t0))
        XCTAssertTrue(budget.allow(.chat, now: t0))
        XCTAssertFalse(budget.allow(.chat, now: t0))
        XCTAssertEqual(budget.strikes, 1)
        XCTAssertTrue(budget.allow(.control, now: t0), "chat does not spend the control budget")
        XCTAssertEqual(budget.strikes, 0, "an allowed command clears the strikes")
    }

    func testAnAddressPastItsAuthenticationFailureBudgetIsRefusedUntilItRefills() {
        let failures = FailureBudget(burst: 2, perSecond: 1)
        XCTAssertTrue(failures.allows("a", now: t0))
        failures.spend("a", now: t0)
        XCTAssertTrue(failures.allows("a", now: t0))
        failures.spend("a", now: t0)
        XCTAssertFalse(failures.allows("a", now: t0))
        XCTAssertTrue(failures.allows("b", now: t0), "per address")
        XCTAssertTrue(failures.allows("a", now: t0 + 1_000))
        XCTAssertEqual(failures.addressCount, 1)
        failures.forgetRecovered(now: t0 + 10_000)
        XCTAssertEqual(failures.addressCount, 0, "a whole budget is forgotten")
    }
}
