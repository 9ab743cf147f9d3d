import Foundation
import HearthCore
import XCTest

@testable import HearthStore

/// The folding of failed authentications, driven with explicit times: which failures are rows,
/// which are counted into summaries, and that the counts always add up.
final class AuthenticationFailureFoldingTests: XCTestCase {
    let room = RoomID("group-1")
    let limits = AuthenticationFailureFolding.Limits(rowsPerAddress: 3, rowsPerSecond: 4, intervalMilliseconds: 60_000)

    func at(_ ms: Int64) -> Instant { Instant(milliseconds: ms) }

    /// The `key:value` words of a reason.
    func fields(_ record: AuditRecord) -> [String: String] {
        var out: [String: String] = [:]
        for word in (record.reason ?? "").split(separator: " ") {
            guard let colon = word.firstIndex(of: ":") else { continue }
            out[String(word[..<colon])] = String(word[word.index(after: colon)...])
        }
        return out
    }

    /// How many failures a list of records accounts for (a row 1, a summary its count).
    func counted(_ records: [AuditRecord]) -> Int {
        records.reduce(0) { sum, r in
            sum + (r.action == AuthenticationFailureFolding.summaryAction ? Int(fields(r)["count"]!)! : 1)
        }
    }

    func testAnAddressesFirstFailuresAreRowsWithTheReasonAndTheAddress() {
        var folding = AuthenticationFailureFolding(limits: limits)
        var out: [AuditRecord] = []
        for i in 0..<3 {
            out += folding.record(room: room, reason: "expired", address: "10.0.0.1", at: at(1_000 + Int64(i) * 1_000))
        }
        XCTAssertEqual(
            out,
            (0..<3).map { i in
                AuditRecord(
                    at: at(1_000 + Int64(i) * 1_000), room: room, actor: nil, subject: nil, action: "authenticate",
                    outcome: .refused(.authenticationFailed), reason: "expired address:10.0.0.1")
            })
        XCTAssertEqual(folding.pendingCount, 0)
        XCTAssertEqual(folding.close(at: at(120_000)), [], "nothing folded: no summary")
    }

    func testFailuresPastTheAddressesAllowanceFoldIntoOneSummaryWhenTheIntervalCloses() {
        var folding = AuthenticationFailureFolding(limits: limits)
        var out: [AuditRecord] = []
        for i in 0..<10 {
            let reason = i % 3 == 0 ? "bad_signature" : "expired"
            out += folding.record(room: room, reason: reason, address: "10.0.0.1", at: at(61_000 + Int64(i) * 1_000))
        }
        XCTAssertEqual(out.count, 3)
        XCTAssertEqual(folding.pendingCount, 7)
        XCTAssertEqual(folding.close(at: at(119_999)), [], "the interval is still open")
        let summaries = folding.close(at: at(120_000))
        XCTAssertEqual(
            summaries,
            [
                AuditRecord(
                    at: at(120_000), room: room, actor: nil, subject: nil, action: "authenticate-summary",
                    outcome: .refused(.authenticationFailed),
                    reason: "address:10.0.0.1 count:7 since:60000 reasons:expired=4,bad_signature=3")
            ])
        XCTAssertEqual(folding.pendingCount, 0)
        XCTAssertEqual(folding.close(at: at(500_000)), [], "written once")
        // A new interval: the allowance is back.
        XCTAssertEqual(folding.record(room: room, reason: "expired", address: "10.0.0.1", at: at(130_000)).count, 1)
    }

    func testTheGlobalCeilingFoldsTheRestOfTheSecondIntoTheGlobalSummary() {
        var folding = AuthenticationFailureFolding(limits: limits)
        var out: [AuditRecord] = []
        // Six addresses, one failure each, in the same second: four rows, then the ceiling.
        for a in 1...6 { out += folding.record(room: room, reason: "expired", address: "10.0.0.\(a)", at: at(5_000)) }
        XCTAssertEqual(out.map { fields($0)["address"] }, ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"])
        // An address that already had a row keeps its failures past the ceiling to itself.
        out += folding.record(room: room, reason: "expired", address: "10.0.0.1", at: at(5_500))
        XCTAssertEqual(out.count, 4)
        // The next second has room again.
        out += folding.record(room: room, reason: "expired", address: "10.0.0.5", at: at(6_000))
        XCTAssertEqual(out.count, 5)
        let summaries = folding.close(at: at(60_000))
        XCTAssertEqual(summaries.map { fields($0)["address"] }, ["10.0.0.1", "*"])
        XCTAssertEqual(summaries.map { fields($0)["count"] }, ["1", "2"])
        XCTAssertEqual(counted(out + summaries), 8)
    }

    func testASummaryOfSeveralRoomsNamesNoRoom() {
        var folding = AuthenticationFailureFolding(limits: limits)
        for i in 0..<5 {
            _ = folding.record(room: RoomID("r\(i)"), reason: "expired", address: "10.0.0.1", at: at(Int64(i) * 1_000))
        }
        let summary = folding.close(at: at(60_000))
        XCTAssertEqual(summary.map(\.room), [RoomID("-")])
        XCTAssertEqual(fields(summary[0])["count"], "2")
    }

    func testTheFirstFailureOfALaterIntervalWritesTheSummariesBeforeItsOwnRow() {
        var folding = AuthenticationFailureFolding(limits: limits)
        for i in 0..<5 { _ = folding.record(room: room, reason: "expired", address: "10.0.0.1", at: at(Int64(i))) }
        let out = folding.record(room: room, reason: "expired", address: "10.0.0.1", at: at(200_000))
        XCTAssertEqual(out.map(\.action), ["authenticate-summary", "authenticate"])
        XCTAssertEqual(out[0].at, at(60_000), "the summary is dated at its interval's end")
        XCTAssertEqual(fields(out[0])["since"], "0")
    }

    func testFlushWritesTheOpenIntervalAtShutdown() {
        var folding = AuthenticationFailureFolding(limits: limits)
        for i in 0..<5 { _ = folding.record(room: room, reason: "expired", address: "::1", at: at(1_000 + Int64(i))) }
        let out = folding.flush(at: at(2_000))
        XCTAssertEqual(out.count, 1)
        XCTAssertEqual(out[0].at, at(2_000))
        XCTAssertEqual(fields(out[0])["address"], "::1")
        XCTAssertEqual(folding.flush(at: at(3_000)), [])
    }

    func testDistinctReasonsAreCappedIntoOther() {
        var folding = AuthenticationFailureFolding(limits: limits)
        for i in 0..<(3 + 20) {
            _ = folding.record(room: room, reason: "reason\(i)", address: "10.0.0.1", at: at(Int64(i)))
        }
        let summary = folding.close(at: at(60_000))[0]
        let reasons = fields(summary)["reasons"]!.split(separator: ",")
        XCTAssertEqual(reasons.count, AuthenticationFailureFolding.maxReasons + 1)
        XCTAssertTrue(reasons.contains("other=4"), "\(reasons)")
    }

    /// A random flood from many addresses over several intervals: every failure is counted
    /// exactly once, and rows stay within the bounds.
    func testARandomFloodIsCountedExactlyAndBounded() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            var folding = AuthenticationFailureFolding(limits: limits)
            var out: [AuditRecord] = []
            var t: Int64 = Int64.random(in: 0..<1_000_000, using: &generator)
            let start = t
            let n = Int.random(in: 1..<5_000, using: &generator)
            for _ in 0..<n {
                t += Int64.random(in: 0..<50, using: &generator)
                let address =
                    "10.0.\(Int.random(in: 0..<4, using: &generator)).\(Int.random(in: 0..<50, using: &generator))"
                out += folding.record(
                    room: RoomID("r\(Int.random(in: 0..<3, using: &generator))"), reason: "expired", address: address,
                    at: at(t))
                if Bool.random(using: &generator) { out += folding.close(at: at(t)) }
            }
            out += folding.flush(at: at(t))
            XCTAssertEqual(counted(out), n)
            let singles = out.filter { $0.action == "authenticate" }
            var perSecond: [Int64: Int] = [:]
            for r in singles { perSecond[r.at.milliseconds / 1000, default: 0] += 1 }
            XCTAssertLessThanOrEqual(perSecond.values.max() ?? 0, limits.rowsPerSecond)
            let intervals = Int((t - start) / limits.intervalMilliseconds) + 2
            let summaries = out.count - singles.count
            XCTAssertLessThanOrEqual(summaries, intervals * (limits.rowsPerSecond * 60 + 1))
        }
    }
}
