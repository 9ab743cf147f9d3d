import Foundation
import HearthCore
import Synchronization
import XCTest

@testable import HearthStore

final class JournalTests: XCTestCase {
    func testSamplesCoverEveryCommandCase() {
        XCTAssertEqual(Set(sampleCommands.map(caseIndex)), Set(0..<commandCaseCount))
    }

    func testOpensInWALModeWithTheChosenSynchronousLevel() throws {
        let (store, path) = try openStore(self)
        XCTAssertEqual(try store.pragma("journal_mode"), "wal")
        XCTAssertEqual(try store.pragma("synchronous"), "1")  // NORMAL
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
        store.close()
        let full = try Store(path: path, durability: .full)
        XCTAssertEqual(try full.pragma("synchronous"), "2")  // FULL
    }

    /// The writer thread carries its name to the system (`top -H`, perf, /proc), where an
    /// operator looks for it.
    func testTheWriterThreadIsNamed() throws {
        let (store, _) = try openStore(self)
        store.append(.disconnected(connection: ConnectionID(1), room: RoomID("r"), at: Instant(milliseconds: 1)))
        XCTAssertTrue(store.flush(timeout: 10))
        let names = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").compactMap {
            try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        XCTAssertTrue(names.contains("store-writer"), "\(names)")
    }

    func testSignallingIsNeverJournaled() {
        let signal = ClientCommand.signal(to: p2, kind: .ice, payload: "{}")
        XCTAssertNil(JournaledCommand(signal))
        XCTAssertNil(
            JournalEntry.command(signal, from: ConnectionID(1), room: RoomID("r"), at: Instant(milliseconds: 1)))
        XCTAssertNotNil(
            JournalEntry.command(.raiseHand, from: ConnectionID(1), room: RoomID("r"), at: .init(milliseconds: 1)))
    }

    /// Every entry kind and every journaled command case, through a real file and a second
    /// `Store` opened on it.
    func testEveryEntryKindRoundTripsThroughTheFile() throws {
        let (store, path) = try openStore(self)
        let room = RoomID("room-1")
        var entries: [JournalEntry] = [
            .connect(
                .init(
                    connection: ConnectionID(1), room: room,
                    identity: Identity(userID: UserID("staff-1"), role: .facilitator, alias: "Dr. Ríos"),
                    resumeHash: "abc123", settings: unusualSettings(), at: Instant(milliseconds: 1_000))),
            .connect(
                .init(
                    connection: ConnectionID(2), room: room,
                    identity: Identity(userID: UserID("patient-7"), role: .participant, alias: "Sam"),
                    resumeHash: "def456", settings: RoomSettings(), at: Instant(milliseconds: 1_001))),
            .connect(
                .init(
                    connection: ConnectionID(3), room: room,
                    identity: Identity(userID: UserID("g"), role: .guest, alias: ""), resumeHash: "h",
                    settings: nil, at: Instant(milliseconds: 1_002))),
            .resume(
                connection: ConnectionID(UInt64.max), room: room, resumeHash: "def456", lastSeq: UInt64.max,
                at: Instant(milliseconds: -5)),
            .disconnected(connection: ConnectionID(2), room: room, at: Instant(milliseconds: 2_000)),
            .timerFired(TimerID(room: room, kind: .grace(ParticipantID(UInt32.max))), at: Instant(milliseconds: 3_000)),
            .timerFired(TimerID(room: room, kind: .breakoutsWarning), at: Instant(milliseconds: 3_100)),
            .timerFired(TimerID(room: room, kind: .breakoutsEnd), at: Instant(milliseconds: 3_200)),
            .createRoom(RoomID("room-2"), settings: unusualSettings(), at: Instant(milliseconds: 3_500)),
            .endRoom(RoomID("room-2"), at: Instant(milliseconds: 3_600)),
        ]
        for (i, command) in sampleCommands.enumerated() {
            if let entry = JournalEntry.command(
                command, from: ConnectionID(UInt64(i)), room: room, at: Instant(milliseconds: Int64(4_000 + i)))
            {
                entries.append(entry)
            }
        }
        XCTAssertEqual(entries.count, 10 + sampleCommands.count - 1)  // every sample but the signal
        for entry in entries { store.append(entry) }
        store.flush()
        XCTAssertEqual(try store.replay(), entries)

        let reopened = try Store(path: path)
        XCTAssertEqual(try reopened.replay(), entries)
        XCTAssertEqual(try reopened.journalCounts(), [room: entries.count - 2, RoomID("room-2"): 2])
    }

    /// A member's arrival and resume the way the shell runs them: the engine gets the resume
    /// credential (secret and hash), the journal the connect and resume entries, the store every
    /// audit and attendance record the engine produced. The secret was really in play (the
    /// welcome carried it); the file holds its hash and never the secret.
    func testTheResumeSecretIsNeverStoredOnlyItsHash() throws {
        let (store, path) = try openStore(self)
        let secret = "resume-secret-\(UUID().uuidString)"
        let hash = "resume-hash-\(UUID().uuidString)"
        // The resume rotates the secret: the new one goes out in `resumed`, never to the file.
        let rotated = ResumeCredential(
            secret: "rotated-secret-\(UUID().uuidString)", hash: "rotated-hash-\(UUID().uuidString)")
        let room = RoomID("r")
        var engine = Engine(defaultSettings: RoomSettings())
        var effects: [Effect] = []
        func run(_ entry: JournalEntry, _ body: (inout Engine) -> [Effect]) {
            store.append(entry)
            effects += body(&engine)
        }
        let staff = Identity(userID: UserID("u"), role: .facilitator, alias: "a")
        let at = Instant(milliseconds: 1)
        run(
            .connect(
                .init(connection: ConnectionID(1), room: room, identity: staff, resumeHash: hash, settings: nil, at: at)
            )
        ) {
            $0.connect(
                ConnectionID(1), room: room, identity: staff, credential: ResumeCredential(secret: secret, hash: hash),
                settings: nil, at: at)
        }
        run(.disconnected(connection: ConnectionID(1), room: room, at: at + 10)) {
            $0.disconnected(ConnectionID(1), at: at + 10)
        }
        run(
            .resume(
                connection: ConnectionID(2), room: room, resumeHash: hash, newResumeHash: rotated.hash, lastSeq: 0,
                at: at + 20)
        ) {
            $0.resume(ConnectionID(2), room: room, resumeHash: hash, credential: rotated, lastSeq: 0, at: at + 20)
        }
        XCTAssertNotNil(engine.room(of: ConnectionID(2)), "the resume took the seat back")
        var welcomed = false
        var resumed = false
        for effect in effects {
            switch effect {
            case .audit(let record): store.append(record)
            case .attendance(let record): store.append(record)
            case .send(let message, _):
                if case .welcome(let w) = message.event, w.resumeSecret == secret { welcomed = true }
                if case .resumed(let r) = message.event, r.resumeSecret == rotated.secret { resumed = true }
            default: break
            }
        }
        XCTAssertTrue(welcomed, "the secret went out in the welcome")
        XCTAssertTrue(resumed, "the rotated secret went out in resumed")
        store.flush()
        XCTAssertEqual(try store.auditRecords(room: room).map(\.record.action), ["arrive", "drop", "resume"])
        store.close()
        var bytes = ""
        for file in [path, path + "-wal"] where FileManager.default.fileExists(atPath: file) {
            bytes += String(decoding: try Data(contentsOf: URL(fileURLWithPath: file)), as: UTF8.self)
        }
        XCTAssertTrue(bytes.contains(hash))
        XCTAssertTrue(bytes.contains(rotated.hash))
        XCTAssertFalse(bytes.contains(secret))
        XCTAssertFalse(bytes.contains(rotated.secret))
    }

    /// The commit window: entries that arrive while it is open share one transaction (a long
    /// window, ended by `close`, which commits what gathered); without it each entry appended
    /// after the previous one committed gets its own. Waits for commits, not for the clock.
    func testCommitWindowGathersEntriesIntoOneTransaction() throws {
        func entry(_ i: Int) -> JournalEntry {
            .command(
                connection: ConnectionID(1), room: RoomID("w"),
                command: JournaledCommand(.chat(to: .room, text: "m\(i)"))!,
                at: Instant(milliseconds: Int64(i)))
        }
        let gathered = try Store(
            path: (try temporaryDirectory(self) as NSString).appendingPathComponent(Store.fileName), commitWindow: 600)
        for i in 0..<20 { _ = gathered.append(entry(i)) }
        XCTAssertEqual(gathered.committedTicket, 0, "nothing commits while the window is open")
        gathered.close()
        XCTAssertEqual(gathered.statistics.committed, 20)
        XCTAssertEqual(gathered.statistics.transactions, 1)

        let eager = try Store(
            path: (try temporaryDirectory(self) as NSString).appendingPathComponent(Store.fileName), commitWindow: 0)
        for i in 0..<20 {
            let ticket = eager.append(entry(i))
            eager.flush()
            XCTAssertEqual(eager.committedTicket, ticket)
        }
        XCTAssertEqual(eager.statistics.transactions, 20)
    }

    /// A batch whose last row fails is rolled back whole (its audit and attendance rows with
    /// it), the writer tries again, and once the failure is gone every row is written once,
    /// the audit chain whole. A transaction left open after the failure would make every
    /// later `BEGIN` fail instead.
    func testAFailedBatchIsRolledBackAndWrittenOnceOnRetry() throws {
        let held = Mutex(true)
        let path = (try temporaryDirectory(self) as NSString).appendingPathComponent(Store.fileName)
        let store = try Store(
            path: path,
            writerGate: {
                let deadline = Date(timeIntervalSinceNow: 10)
                while held.withLock({ $0 }) && Date() < deadline { Thread.sleep(forTimeInterval: 0.002) }
            })
        try store.rawExecute(
            "CREATE TRIGGER refuse BEFORE INSERT ON journal BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
        let room = RoomID("r")
        let member = Party(userID: UserID("u"), id: p1, role: .participant)
        store.append(
            AuditRecord(
                at: Instant(milliseconds: 1), room: room, actor: member, subject: member, action: "arrive",
                outcome: .done, reason: nil))
        store.append(AttendanceRecord(at: Instant(milliseconds: 1), room: room, member: member, kind: .enterWaiting))
        let last = store.append(.disconnected(connection: ConnectionID(1), room: room, at: Instant(milliseconds: 2)))
        held.withLock { $0 = false }

        let deadline = Date(timeIntervalSinceNow: 10)
        while store.statistics.failures < 2 && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        XCTAssertGreaterThanOrEqual(store.statistics.failures, 2, "the batch was not tried again")
        XCTAssertTrue(
            store.statistics.lastError?.contains("refused by the test") == true, "\(store.statistics.lastError ?? "")")
        XCTAssertEqual(store.committedTicket, 0)
        XCTAssertEqual(try store.verifyAudit(), .ok(count: 0))
        XCTAssertEqual(try store.attendanceRecords(room: room), [])

        try store.rawExecute("DROP TRIGGER refuse")
        XCTAssertTrue(store.waitCommitted(last, timeout: 10))
        XCTAssertEqual(try store.verifyAudit(), .ok(count: 1))
        XCTAssertEqual(try store.attendanceRecords(room: room).count, 1)
        XCTAssertEqual(try store.entries(of: room).count, 1)
        XCTAssertEqual(store.statistics.transactions, 1)
    }

    /// 10,000 entries appended from one thread: all there, in order, in far fewer
    /// transactions than entries; `onCommit` saw the tickets rise to the last one.
    func testGroupCommit() throws {
        let (store, _) = try openStore(self)
        let seen = Mutex<[UInt64]>([])
        store.onCommit = { ticket in seen.withLock { $0.append(ticket) } }
        let room = RoomID("busy")
        var tickets: [UInt64] = []
        let clock = ContinuousClock()
        let start = clock.now
        for i in 0..<10_000 {
            let entry = JournalEntry.command(
                connection: ConnectionID(UInt64(i % 12)), room: room,
                command: JournaledCommand(.chat(to: .room, text: "message \(i)"))!, at: Instant(milliseconds: Int64(i)))
            tickets.append(store.append(entry))
        }
        let appending = clock.now - start
        XCTAssertEqual(tickets, Array(1...10_000))
        store.flush()
        let flushed = clock.now - start
        XCTAssertEqual(store.committedTicket, 10_000)
        let replayed = try store.replay()
        XCTAssertEqual(replayed.count, 10_000)
        XCTAssertEqual(replayed.map(\.at.milliseconds), Array(0..<10_000))
        if case .command(_, _, let command, _) = replayed[9_999] {
            XCTAssertEqual(command.command, .chat(to: .room, text: "message 9999"))
        } else {
            XCTFail("last entry is not the last chat")
        }
        let stats = store.statistics
        XCTAssertEqual(stats.committed, 10_000)
        XCTAssertEqual(stats.pending, 0)
        XCTAssertEqual(stats.failures, 0)
        XCTAssertLessThan(stats.transactions, 10_000, "group commit wrote one transaction per entry")
        XCTAssertGreaterThan(stats.transactions, 0)
        let commits = seen.withLock { $0 }
        XCTAssertEqual(commits.count, stats.transactions)
        XCTAssertEqual(commits, commits.sorted())
        XCTAssertEqual(commits.last, 10_000)
        print(
            "group commit: 10000 entries in \(stats.transactions) transactions;"
                + " appending took \(appending), all committed after \(flushed) (not asserted)")
    }

    /// Appends from several threads at once: every ticket distinct, every entry stored once.
    func testConcurrentAppends() throws {
        let (store, _) = try openStore(self)
        let tickets = Mutex<[UInt64]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            for i in 0..<500 {
                let ticket = store.append(
                    .disconnected(
                        connection: ConnectionID(UInt64(t * 1000 + i)), room: RoomID("r\(t)"),
                        at: Instant(milliseconds: Int64(i))))
                tickets.withLock { $0.append(ticket) }
            }
        }
        store.flush()
        XCTAssertEqual(Set(tickets.withLock { $0 }), Set(1...2000))
        let replayed = try store.replay()
        XCTAssertEqual(replayed.count, 2000)
        for t in 0..<4 {  // each thread's entries stay in its order
            let mine = replayed.filter { $0.room == RoomID("r\(t)") }.map(\.at.milliseconds)
            XCTAssertEqual(mine, Array(0..<500))
        }
    }

    /// A crash after a commit: a second Store opened on the same file, while the first one
    /// was never closed, replays exactly what was committed.
    func testReopeningWithoutClosingReplaysTheCommittedEntries() throws {
        let (store, path) = try openStore(self)
        var entries: [JournalEntry] = []
        for i in 0..<300 {
            let entry = JournalEntry.command(
                .chat(to: .room, text: "m\(i)"), from: ConnectionID(1), room: RoomID("r"),
                at: Instant(milliseconds: Int64(i)))!
            entries.append(entry)
            store.append(entry)
        }
        store.flush()
        let second = try Store(path: path)
        XCTAssertEqual(try second.replay(), entries)
        // The first store keeps working alongside.
        store.append(.disconnected(connection: ConnectionID(1), room: RoomID("r"), at: Instant(milliseconds: 999)))
        store.flush()
        XCTAssertEqual(try second.replay().count, 301)
    }

    func testCloseWritesWhatIsQueuedAndDropsLaterAppends() throws {
        let (store, path) = try openStore(self)
        for i in 0..<100 {
            store.append(
                .disconnected(connection: ConnectionID(1), room: RoomID("r"), at: Instant(milliseconds: Int64(i))))
        }
        store.close()
        store.append(.disconnected(connection: ConnectionID(1), room: RoomID("r"), at: Instant(milliseconds: 100)))
        store.flush()  // returns at once: the writer has stopped
        XCTAssertEqual(store.statistics.droppedAfterClose, 1)
        XCTAssertEqual(try Store(path: path).replay().count, 100)
    }

    func testCorruptJournalRowIsReportedWithItsSeq() throws {
        let (store, _) = try openStore(self)
        store.append(.disconnected(connection: ConnectionID(1), room: RoomID("r"), at: Instant(milliseconds: 1)))
        store.flush()
        try store.rawExecute("INSERT INTO journal (room, at, kind, body) VALUES ('r', 2, 'command', '{\"nope\":{}}')")
        XCTAssertThrowsError(try store.replay()) { error in
            guard case StoreError.corruptJournal(let seq, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(seq, 2)
        }
    }

    /// Rooms ended before the cutoff lose their journal; others, and entries appended to a
    /// reused room id after the compaction, stay.
    func testCompactionRemovesOnlyEndedRoomsJournals() throws {
        let (store, _) = try openStore(self)
        func add(_ room: String, _ at: Int64) {
            store.append(.disconnected(connection: ConnectionID(1), room: RoomID(room), at: Instant(milliseconds: at)))
        }
        for i in 0..<5 {
            add("ended-early", Int64(i))
            add("live", Int64(i))
            add("ended-late", Int64(i))
        }
        store.markEnded(RoomID("ended-early"), at: Instant(milliseconds: 1_000))
        store.markEnded(RoomID("ended-late"), at: Instant(milliseconds: 9_000))
        store.compact(roomsEndedBefore: Instant(milliseconds: 5_000))
        add("ended-early", 6_000)  // the id used again after the compaction
        store.flush()
        XCTAssertEqual(
            try store.journalCounts(), [RoomID("live"): 5, RoomID("ended-late"): 5, RoomID("ended-early"): 1])
        XCTAssertEqual(try store.endedRooms(), [RoomID("ended-late"): Instant(milliseconds: 9_000)])
        XCTAssertEqual(try store.replay().filter { $0.room == RoomID("ended-early") }.map(\.at.milliseconds), [6_000])

        store.compact(roomsEndedBefore: Instant(milliseconds: 10_000))
        store.flush()
        XCTAssertEqual(try store.journalCounts(), [RoomID("live"): 5, RoomID("ended-early"): 1])
    }
}

extension JournalTests {
    /// The stored format is a contract with every journal already on disk: these bodies
    /// must keep decoding (and encoding) the same.
    func testStoredFormatIsStable() throws {
        let room = RoomID("r")
        let golden: [(String, String, JournalEntry)] = [
            (
                "command",
                #"{"command":{"at":5,"command":{"chat":{"text":"hi","to":{"member":{"_0":2}}}},"connection":3,"room":"r"}}"#,
                .command(
                    connection: ConnectionID(3), room: room,
                    command: JournaledCommand(.chat(to: .member(p2), text: "hi"))!, at: Instant(milliseconds: 5))
            ),
            (
                "timer", #"{"timer":{"at":9,"room":"r","timer":{"grace":{"member":4}}}}"#,
                .timerFired(TimerID(room: room, kind: .grace(ParticipantID(4))), at: Instant(milliseconds: 9))
            ),
            (
                "resume", #"{"resume":{"at":1,"connection":2,"lastSeq":3,"resumeHash":"h","room":"r"}}"#,
                .resume(
                    connection: ConnectionID(2), room: room, resumeHash: "h", lastSeq: 3, at: Instant(milliseconds: 1))
            ),
        ]
        for (kind, body, entry) in golden {
            XCTAssertEqual(try JournalCoding.encode(entry), body)
            XCTAssertEqual(try JournalCoding.decode(kind: kind, body: body), entry)
        }
        XCTAssertThrowsError(try JournalCoding.decode(kind: "resume", body: golden[0].1))
    }
}

/// The hand-written encodings (`JournalFastCoding`) must be byte for byte what `JSONEncoder`
/// writes, and decode back to the same entry; every other entry goes through `JSONEncoder`.
final class JournalFastPathTests: XCTestCase {
    private let awkward = [
        "", "hello", "quote \" and backslash \\ and slash /", "line\nbreak\r\ttab",
        "\u{08}\u{0C}\u{00}\u{01}\u{1F}\u{7F}",
        "naïve café — 日本語 🙂 e\u{301}", "</script>", String(repeating: "x", count: 2000), "\u{2028}\u{2029}",
        "{\"type\":\"chat\"}",
    ]

    /// The awkward strings and 200 random ones (ASCII, controls and BMP text mixed).
    private func texts() -> [String] {
        var rng = SystemRandomNumberGenerator()
        var texts = awkward
        for _ in 0..<200 {
            let n = Int.random(in: 0..<40, using: &rng)
            texts.append(
                String(
                    String.UnicodeScalarView(
                        (0..<n).compactMap { _ in
                            Unicode.Scalar(
                                [UInt32.random(in: 0..<0x80, using: &rng), UInt32.random(in: 0..<0x3000, using: &rng)]
                                    .randomElement(using: &rng)!)
                        })))
        }
        return texts
    }

    private func assertFastMatchesFoundation(
        _ entry: JournalEntry, _ label: String, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let fast = try XCTUnwrap(JournalFastCoding.encode(entry), label, file: file, line: line)
        XCTAssertEqual(fast, try JournalCoding.encodeWithFoundation(entry), label, file: file, line: line)
        XCTAssertEqual(try JournalCoding.decode(kind: entry.kind, body: fast), entry, label, file: file, line: line)
    }

    func testRoomChatMatchesJSONEncoderByteForByte() throws {
        for (i, text) in texts().enumerated() {
            let entry = JournalEntry.command(
                connection: ConnectionID(UInt64(i) * 7_919), room: RoomID("room/\(i) \"x\""),
                command: JournaledCommand(.chat(to: .room, text: text))!,
                at: Instant(milliseconds: 1_700_000_000_000 + Int64(i)))
            try assertFastMatchesFoundation(entry, "text #\(i)")
        }
    }

    /// A join's entries: `connect` with the room's settings (every optional set, none set, the
    /// defaults, or no settings), its consent, its admission and its media turned on.
    func testJoinEntriesMatchJSONEncoderByteForByte() throws {
        var bare = RoomSettings()
        bare.consentVersion = nil
        bare.consentText = nil
        var other = unusualSettings()
        other.media = .auto
        other.meshLimit = 9
        other.opensAt = Instant(milliseconds: -3)
        let settings: [RoomSettings?] = [unusualSettings(), other, RoomSettings(), bare, nil]
        for (i, text) in texts().enumerated() {
            let room = RoomID("room/\(i) \(text)")
            let roles = Role.allCases
            let connect = JournalEntry.connect(
                .init(
                    connection: ConnectionID(UInt64(i) &* 0x9E37_79B9_7F4A_7C15), room: room,
                    identity: Identity(userID: UserID("user \(text)"), role: roles[i % roles.count], alias: text),
                    resumeHash: String(repeating: "ab", count: 32), settings: settings[i % settings.count],
                    at: Instant(milliseconds: Int64(i) - 100)))
            try assertFastMatchesFoundation(connect, "connect #\(i)")
            let media: [Bool?] = [true, false, nil]
            let commands: [ClientCommand] = [
                .acknowledgeConsent(version: text), .admit(ParticipantID(UInt32(i) &* 40_503)),
                .setMedia(audio: media[i % 3], video: media[(i / 3) % 3]),
            ]
            for command in commands {
                let entry = try XCTUnwrap(
                    JournalEntry.command(
                        command, from: ConnectionID(UInt64(i)), room: room, at: Instant(milliseconds: 7)))
                try assertFastMatchesFoundation(entry, "\(command) #\(i)")
            }
        }
        try assertFastMatchesFoundation(
            .command(
                connection: ConnectionID(1), room: RoomID("r"),
                command: JournaledCommand(.admit(ParticipantID(UInt32.max)))!,
                at: Instant(milliseconds: Int64.min)), "admit max")
    }

    /// A reconnect's entries: `resume` (with and without the rotated hash, from rows written
    /// before secrets rotated) and `disconnected`.
    func testReconnectEntriesMatchJSONEncoderByteForByte() throws {
        for (i, text) in texts().enumerated() {
            let room = RoomID(text)
            try assertFastMatchesFoundation(
                .resume(
                    connection: ConnectionID(UInt64(i)), room: room, resumeHash: text,
                    newResumeHash: i % 2 == 0 ? nil : "new \(text)", lastSeq: UInt64.max - UInt64(i),
                    at: Instant(milliseconds: Int64(i))), "resume #\(i)")
            try assertFastMatchesFoundation(
                .disconnected(
                    connection: ConnectionID(UInt64.max - UInt64(i)), room: room, at: Instant(milliseconds: 1)),
                "disconnected #\(i)")
        }
    }

    /// Which entries take the fast path; every entry, fast or not, round-trips through `encode`.
    func testOnlyTheHotShapesTakeTheFastPath() throws {
        let at = Instant(milliseconds: 5)
        for command in sampleCommands {
            guard let journaled = JournaledCommand(command) else { continue }
            let entry = JournalEntry.command(connection: ConnectionID(1), room: RoomID("r"), command: journaled, at: at)
            switch command {
            case .chat(to: .room, _), .acknowledgeConsent, .admit, .setMedia:
                XCTAssertNotNil(JournalFastCoding.encode(entry), "\(command)")
            default:
                XCTAssertNil(JournalFastCoding.encode(entry), "\(command)")
            }
            XCTAssertEqual(try JournalCoding.decode(kind: entry.kind, body: try JournalCoding.encode(entry)), entry)
        }
        let room = RoomID("r")
        XCTAssertNil(JournalFastCoding.encode(.endRoom(room, at: at)))
        XCTAssertNil(JournalFastCoding.encode(.createRoom(room, settings: RoomSettings(), at: at)))
        XCTAssertNil(JournalFastCoding.encode(.timerFired(TimerID(room: room, kind: .idle), at: at)))
    }
}
