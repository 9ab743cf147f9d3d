import Foundation
import HearthStore
import XCTest

final class NamedThreadTests: XCTestCase {
    /// Every thread carries its name from its first instruction of `body` on. With Foundation's
    /// `Thread.current.name = …` a thread that ran before its creator had stored its handle kept
    /// its creator's name (0–6 of 300 starts here); so each start is checked, not one.
    func testEveryStartedThreadCarriesItsNameWhenItsBodyRuns() {
        final class Seen: @unchecked Sendable {
            let lock = NSLock()
            var names: [Int: String] = [:]
        }
        let seen = Seen()
        let done = DispatchGroup()
        let starts = 300
        for index in 0..<starts {
            done.enter()
            startNamedThread("named-\(index)") {
                let name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
                seen.lock.withLock { seen.names[index] = name.trimmingCharacters(in: .newlines) }
                done.leave()
            }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        let wrong = seen.lock.withLock { seen.names.filter { $0.value != "named-\($0.key)" } }
        XCTAssertEqual(seen.lock.withLock { seen.names.count }, starts)
        XCTAssertEqual(wrong, [:])
    }
}
