import Foundation
import HearthCore
import XCTest

@testable import HearthStore

/// A real crash: the test binary runs itself as a child that appends (half of it flushed),
/// notes how far the writer had committed, and kills itself with SIGKILL. The parent then
/// opens the file and checks that every committed entry is there, in order.
final class CrashTests: XCTestCase {
    static let pathVariable = "HEARTH_STORE_CRASH_CHILD_PATH"
    static let entries = 20_000

    func entry(_ i: Int) -> JournalEntry {
        .command(
            connection: ConnectionID(7), room: RoomID("crash"),
            command: JournaledCommand(.chat(to: .room, text: "acknowledged \(i)"))!, at: Instant(milliseconds: Int64(i))
        )
    }

    /// The child's half of `testCommittedEntriesSurviveSIGKILL`; in a normal run it is
    /// reported as skipped, never as passed.
    func testChildAppendsThenDiesBySIGKILL() throws {
        guard let path = ProcessInfo.processInfo.environment[Self.pathVariable] else {
            throw XCTSkip("runs only as the child of testCommittedEntriesSurviveSIGKILL")
        }
        let store = try Store(path: path)
        // The first half acknowledged (committed), the second still streaming in.
        for i in 0..<Self.entries / 2 { store.append(entry(i)) }
        store.flush()
        for i in Self.entries / 2..<Self.entries { store.append(entry(i)) }
        let committed = store.committedTicket
        let report = "\(committed) \(store.lastTicket)"
        try report.write(toFile: path + ".report", atomically: true, encoding: .utf8)
        kill(getpid(), SIGKILL)
    }

    func testCommittedEntriesSurviveSIGKILL() throws {
        // Never spawn from the child (if the filter were ignored, it would recurse).
        guard ProcessInfo.processInfo.environment[Self.pathVariable] == nil else {
            throw XCTSkip("the child runs only its own half")
        }
        let path = (try temporaryDirectory(self) as NSString).appendingPathComponent(Store.fileName)
        let child = Process()
        child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        child.arguments = ["HearthStoreTests.CrashTests/testChildAppendsThenDiesBySIGKILL"]
        var environment = ProcessInfo.processInfo.environment
        environment[Self.pathVariable] = path
        child.environment = environment
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        child.waitUntilExit()
        XCTAssertEqual(child.terminationReason, .uncaughtSignal)
        XCTAssertEqual(child.terminationStatus, SIGKILL)

        let report = try String(contentsOfFile: path + ".report", encoding: .utf8).split(separator: " ")
        let committed = Int(report[0])!
        let appended = Int(report[1])!
        XCTAssertEqual(appended, Self.entries)
        XCTAssertGreaterThanOrEqual(committed, Self.entries / 2)

        let replayed = try Store(path: path).replay()
        XCTAssertGreaterThanOrEqual(replayed.count, committed, "a committed entry was lost")
        XCTAssertEqual(replayed, (0..<replayed.count).map(entry), "not a prefix of what was appended")
        print(
            "SIGKILL: \(appended) appended, \(committed) committed when the child read its ticket,"
                + " \(replayed.count) recovered, \(appended - replayed.count) lost (never committed)")
    }
}
