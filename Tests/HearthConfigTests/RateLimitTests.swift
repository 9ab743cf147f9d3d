import HearthCore
import HearthTransport
import XCTest

@testable import HearthServer

final class RateLimitTests: XCTestCase {
    private let t0 = Instant(milliseconds: 1_000_000)

    func testAnAddressSlotIsReleasedExactlyOnce() {
        var slots = AddressSlots(limit: 2)
        let (a, b, c) = (SessionID(rawValue: 1), SessionID(rawValue: 2), SessionID(rawValue: 3))
        XCTAssertTrue(slots.take(a, address: "10.0.0.1"))
        XCTAssertTrue(slots.take(b, address: "10.0.0.1"))
        XCTAssertFalse(slots.take(c, address: "10.0.0.1"), "the cap holds")
        XCTAssertTrue(slots.take(c, address: "10.0.0.2"), "per address")
        XCTAssertEqual(slots.addressCount, 2)
        slots.release(a)
        slots.release(a)
        XCTAssertEqual(
            slots.connections(from: "10.0.0.1"), 1, "a second release of the same session gives nothing back")
        slots.release(SessionID(rawValue: 99))
        XCTAssertEqual(slots.connections(from: "10.0.0.1"), 1, "a session without a slot releases nothing")
        slots.release(b)
        slots.release(c)
        XCTAssertEqual(slots.addressCount, 0, "no address is tracked once its connections are gone")
    }

    func testNoCapWhenTheLimitIsZero() {
        var slots = AddressSlots(limit: 0)
        for i in 0..<1000 { XCTAssertTrue(slots.take(SessionID(rawValue: UInt64(i)), address: "10.0.0.1")) }
        XCTAssertEqual(slots.connections(from: "10.0.0.1"), 1000)
    }

    func testSignalsAreBudgetedPerRecipient() {
        var limits = HearthConfiguration.RateLimits()
        limits.signalPairBurst = 3
        limits.signalPairPerSecond = 1
        var budget = CommandBudget(limits: limits, now: t0)
        let (p1, p2) = (ParticipantID(1), ParticipantID(2))
        for _ in 0..<3 { XCTAssertTrue(budget.allowSignal(to: p1, now: t0)) }
        XCTAssertFalse(budget.allowSignal(to: p1, now: t0), "one recipient's budget is spent")
        XCTAssertEqual(budget.strikes, 1)
        XCTAssertTrue(budget.allowSignal(to: p2, now: t0), "another recipient has its own")
        XCTAssertEqual(budget.strikes, 0)
        XCTAssertTrue(budget.allowSignal(to: p1, now: t0 + 1000), "refilled")
    }

    func testASignalSpendsNothingWhenEitherBudgetIsEmpty() {
        var limits = HearthConfiguration.RateLimits()
        limits.signalBurst = 4
        limits.signalPerSecond = 0.001
        limits.signalPairBurst = 3
        limits.signalPairPerSecond = 0.001
        var budget = CommandBudget(limits: limits, now: t0)
        let (p1, p2) = (ParticipantID(1), ParticipantID(2))
        for _ in 0..<3 { XCTAssertTrue(budget.allowSignal(to: p1, now: t0)) }
        for _ in 0..<5 { XCTAssertFalse(budget.allowSignal(to: p1, now: t0)) }
        XCTAssertTrue(budget.allowSignal(to: p2, now: t0), "refusals to p1 did not spend the connection's budget")
        XCTAssertFalse(budget.allowSignal(to: p2, now: t0), "the connection's budget is spent")
    }

    func testRefusalsOutsideTheBudgetAreStrikes() {
        var budget = CommandBudget(limits: HearthConfiguration.RateLimits(), now: t0)
        budget.refused()
        budget.refused()
        XCTAssertEqual(budget.strikes, 2)
        XCTAssertTrue(budget.allow(.control, now: t0))
        XCTAssertEqual(budget.strikes, 0)
    }
}
