import HearthCore
import XCTest

@testable import HearthServer

final class FailureBudgetTests: XCTestCase {
    private let t0 = Instant(milliseconds: 1_000_000)

    func testAnAddressIsRefusedOnceItsFailuresAreSpentAndAllowedAgainAfterTheRefill() {
        let budget = FailureBudget(burst: 2, perSecond: 1)
        XCTAssertTrue(budget.allows("10.0.0.1", now: t0), "an address that never failed may try")
        budget.spend("10.0.0.1", now: t0)
        XCTAssertTrue(budget.allows("10.0.0.1", now: t0))
        budget.spend("10.0.0.1", now: t0)
        XCTAssertFalse(budget.allows("10.0.0.1", now: t0))
        XCTAssertTrue(budget.allows("10.0.0.2", now: t0), "budgets are per address")
        XCTAssertTrue(budget.allows("10.0.0.1", now: t0 + 1000))
    }

    func testAddressesWhoseBudgetIsWholeAgainAreForgotten() {
        let budget = FailureBudget(burst: 2, perSecond: 1)
        budget.spend("a", now: t0)
        budget.spend("b", now: t0 + 1500)
        XCTAssertEqual(budget.addressCount, 2)
        budget.forgetRecovered(now: t0 + 2000)
        XCTAssertEqual(budget.addressCount, 1, "a refilled; b has not")
    }
}
