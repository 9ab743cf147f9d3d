import Foundation
import HearthCore
import HearthTestSupport
import XCTest

@testable import HearthStore

/// The one store suite: what the shell relies on from a `JournalStore`, run against the
/// embedded SQLite store and against the shared PostgreSQL store (a real PostgreSQL 15, started
/// for the tests by scripts/postgres-temp, or the one `HEARTH_TEST_POSTGRES` names).
/// `SharedJournalTests` below adds what only a cluster has: claims, epochs, fencing, leases.
///
/// A struct of checks rather than an XCTestCase base class: Linux's test discovery does not see
/// inherited test methods, so each implementation's class lists the checks it runs (all of them).
struct JournalStoreSuite {
    /// A fresh store that owns the rooms given (the shared one claims them first): the journal
    /// and the records in one (both implementations are both).
    let makeStore: ([RoomID]) throws -> any JournalStore & RecordStore

    static func audit(_ room: RoomID, _ action: String, at: Int64, reason: String? = nil) -> AuditRecord {
        AuditRecord(
            at: Instant(milliseconds: at), room: room,
            actor: Party(userID: UserID("staff-1"), id: ParticipantID(1), role: .facilitator),
            subject: Party(userID: UserID("patient-2"), id: ParticipantID(2), role: .participant), action: action,
            outcome: action == "mute" ? .refused(.forbidden) : .done, reason: reason)
    }

    func recordsComeBackPerRoomAndTheChainsVerify() throws {
        let a = RoomID("rec-a-\(UUID().uuidString.prefix(8))")
        let b = RoomID("rec-b-\(UUID().uuidString.prefix(8))")
        let store = try makeStore([a, b])
        let audits = [
            Self.audit(a, "arrive", at: 1_000), Self.audit(a, "admit", at: 2_000, reason: "ünï \"x\""),
            Self.audit(b, "arrive", at: 2_500), Self.audit(a, "mute", at: 3_000),
        ]
        let member = Party(userID: UserID("patient-2"), id: ParticipantID(2), role: .participant)
        let attendance = [
            AttendanceRecord(at: Instant(milliseconds: 1_000), room: a, member: member, kind: .enterWaiting),
            AttendanceRecord(at: Instant(milliseconds: 2_000), room: a, member: member, kind: .exitWaiting),
            AttendanceRecord(at: Instant(milliseconds: 2_000), room: a, member: member, kind: .enterRoom),
            AttendanceRecord(
                at: Instant(milliseconds: 2_100), room: a, member: member, kind: .enterBreakout,
                breakout: BreakoutID(3), breakoutName: "Pair 1"),
        ]
        for r in audits { store.append(r) }
        for r in attendance { store.append(r) }
        let ticket = store.lastTicket
        XCTAssertTrue(store.waitCommitted(ticket, timeout: 10))
        XCTAssertEqual(try store.auditRecords(room: a).map(\.record), audits.filter { $0.room == a })
        XCTAssertEqual(try store.auditRecords(room: b).map(\.record), [audits[2]])
        XCTAssertEqual(try store.auditRecords(room: a, since: Instant(milliseconds: 2_000)).count, 2)
        XCTAssertEqual(try store.attendanceRecords(room: a), attendance)
        XCTAssertEqual(try store.attendanceRecords(room: b), [])
        guard case .ok(let count) = try store.verifyAudit() else { return XCTFail("the chains verify") }
        XCTAssertGreaterThanOrEqual(count, 4)

        // Retention: rows before the cutoff go, the rest still verify from the chain's new start.
        store.pruneAudit(before: Instant(milliseconds: 2_600))
        store.pruneAttendance(before: Instant(milliseconds: 2_050))
        XCTAssertTrue(store.waitCommitted(store.lastTicket, timeout: 10))
        XCTAssertEqual(try store.auditRecords(room: a).map(\.record), [audits[3]])
        XCTAssertEqual(try store.auditRecords(room: b).map(\.record), [])
        XCTAssertEqual(try store.attendanceRecords(room: a), [attendance[3]])
        guard case .ok = try store.verifyAudit() else { return XCTFail("the pruned chains still verify") }
    }

    func entries(_ room: RoomID, count: Int, from: Int64 = 0) -> [JournalEntry] {
        (0..<count).map { i in
            .command(
                connection: ConnectionID(UInt64(i) + 1), room: room,
                command: JournaledCommand(.chat(to: .room, text: "message \(i) \"quoted\" \\ ünï 😀"))!,
                at: Instant(milliseconds: from + Int64(i)))
        }
    }

    func entriesComeBackPerRoomInOrderOnceCommitted() throws {
        let a = RoomID("suite-a-\(UUID().uuidString.prefix(8))")
        let b = RoomID("suite-b-\(UUID().uuidString.prefix(8))")
        let store = try makeStore([a, b])
        let committed = Counter()
        store.onCommit = { committed.set($0) }
        let first = entries(a, count: 30)
        let second = entries(b, count: 12, from: 100)
        var last: UInt64 = 0
        for (x, y) in zip(first, second + Array(repeating: nil, count: first.count - second.count)) {
            let t = store.append(x)
            XCTAssertGreaterThan(t, last, "tickets grow in call order")
            last = t
            if let y { last = store.append(y) }
        }
        XCTAssertEqual(store.lastTicket, last)
        store.flush()
        XCTAssertEqual(store.committedTicket, last)
        // onCommit runs on the writer thread just after the commit is published: wait for it (bounded).
        let deadline = Date(timeIntervalSinceNow: 5)
        while committed.value < last && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        XCTAssertEqual(committed.value, last, "onCommit reports the committed ticket")
        XCTAssertEqual(store.queued, 0)
        XCTAssertTrue(store.acceptsNewWork)
        XCTAssertEqual(try store.entries(of: a), first)
        XCTAssertEqual(try store.entries(of: b), second)
        XCTAssertEqual(try store.entries(of: RoomID("suite-none")), [])
        XCTAssertEqual(store.takeLostRooms(), [])
    }

    func everyEntryKindRoundTrips() throws {
        let room = RoomID("suite-k-\(UUID().uuidString.prefix(8))")
        let store = try makeStore([room])
        var all: [JournalEntry] = [
            .connect(
                .init(
                    connection: ConnectionID(1), room: room,
                    identity: Identity(userID: UserID("staff-1"), role: .facilitator, alias: "Dr. Ríos"),
                    resumeHash: "abc", settings: RoomSettings(), at: Instant(milliseconds: 1))),
            .resume(
                connection: ConnectionID(2), room: room, resumeHash: "abc", lastSeq: 9, at: Instant(milliseconds: 2)),
            .disconnected(connection: ConnectionID(2), room: room, at: Instant(milliseconds: 3)),
            .timerFired(TimerID(room: room, kind: .grace(ParticipantID(3))), at: Instant(milliseconds: 4)),
            .endRoom(room, at: Instant(milliseconds: 6)),
        ]
        for (i, command) in sampleCommands.enumerated() {
            if let e = JournalEntry.command(
                command, from: ConnectionID(7), room: room, at: Instant(milliseconds: 10 + Int64(i)))
            {
                all.append(e)
            }
        }
        for e in all { store.append(e) }
        store.flush()
        XCTAssertEqual(try store.entries(of: room), all)
    }

    func compactionRemovesOnlyRoomsEndedBeforeTheCutoff() throws {
        let old = RoomID("suite-old-\(UUID().uuidString.prefix(8))")
        let recent = RoomID("suite-new-\(UUID().uuidString.prefix(8))")
        let open = RoomID("suite-open-\(UUID().uuidString.prefix(8))")
        let store = try makeStore([old, recent, open])
        for e in entries(old, count: 3) + entries(recent, count: 2) + entries(open, count: 4) { store.append(e) }
        store.markEnded(old, at: Instant(milliseconds: 1_000))
        store.markEnded(recent, at: Instant(milliseconds: 5_000))
        store.flush()
        let ended = try store.endedRooms()
        XCTAssertEqual(ended[old], Instant(milliseconds: 1_000))
        XCTAssertEqual(ended[recent], Instant(milliseconds: 5_000))
        XCTAssertNil(ended[open])
        store.compact(roomsEndedBefore: Instant(milliseconds: 2_000))
        store.flush()
        XCTAssertEqual(try store.entries(of: old), [])
        XCTAssertEqual(try store.entries(of: recent).count, 2)
        XCTAssertEqual(try store.entries(of: open).count, 4)
        XCTAssertNil(try store.endedRooms()[old])
    }
}

final class SQLiteJournalStoreTests: XCTestCase {
    var suite: JournalStoreSuite { JournalStoreSuite { _ in try openStore(self).0 } }

    func testEntriesComeBackPerRoomInOrderOnceCommitted() throws {
        try suite.entriesComeBackPerRoomInOrderOnceCommitted()
    }
    func testEveryEntryKindRoundTrips() throws { try suite.everyEntryKindRoundTrips() }
    func testCompactionRemovesOnlyRoomsEndedBeforeTheCutoff() throws {
        try suite.compactionRemovesOnlyRoomsEndedBeforeTheCutoff()
    }
    func testRecordsComeBackPerRoomAndTheChainsVerify() throws { try suite.recordsComeBackPerRoomAndTheChainsVerify() }
}

final class PostgresJournalStoreTests: XCTestCase {
    var suite: JournalStoreSuite {
        JournalStoreSuite { rooms in
            let shared = try SharedJournal(
                conninfo: try TestPostgres.conninfo(), node: "suite-\(UUID().uuidString.prefix(8))")
            self.addTeardownBlock { shared.close() }
            for room in rooms {
                guard case .owned = try shared.claim(room, creating: true) else {
                    throw PostgresError(state: nil, message: "a fresh room was not claimed")
                }
            }
            return shared
        }
    }

    func testEntriesComeBackPerRoomInOrderOnceCommitted() throws {
        try suite.entriesComeBackPerRoomInOrderOnceCommitted()
    }
    func testEveryEntryKindRoundTrips() throws { try suite.everyEntryKindRoundTrips() }
    func testCompactionRemovesOnlyRoomsEndedBeforeTheCutoff() throws {
        try suite.compactionRemovesOnlyRoomsEndedBeforeTheCutoff()
    }
    func testRecordsComeBackPerRoomAndTheChainsVerify() throws { try suite.recordsComeBackPerRoomAndTheChainsVerify() }
}

/// What only the shared store does: claims with epochs, fenced commits, leases, single-use
/// token ids across nodes, creation without an owner.
final class SharedJournalTests: XCTestCase {
    func node(_ name: String, lease: Double = 5) throws -> SharedJournal {
        let shared = try SharedJournal(
            conninfo: try TestPostgres.conninfo(), node: "\(name)-\(UUID().uuidString.prefix(8))", leaseSeconds: lease)
        addTeardownBlock { shared.close() }
        return shared
    }

    func chat(_ room: RoomID, _ text: String, connection: UInt64 = 1) -> JournalEntry {
        .command(
            connection: ConnectionID(connection), room: room,
            command: JournaledCommand(.chat(to: .room, text: text))!, at: Instant(milliseconds: 1))
    }

    func testAClaimIsRefusedWhileTheOwnersLeaseLivesAndTakenOverAfterIt() throws {
        let room = RoomID("claim-\(UUID().uuidString.prefix(8))")
        let a = try node("a")
        let b = try node("b")
        guard case .owned(let epoch, let entries) = try a.claim(room, creating: true) else {
            return XCTFail("a new room is claimed")
        }
        XCTAssertEqual(epoch, 1)
        XCTAssertEqual(entries, [])
        a.append(chat(room, "one"))
        a.flush()
        guard case .heldElsewhere(let owner) = try b.claim(room, creating: true) else {
            return XCTFail("b must not take a room whose owner's lease is live")
        }
        XCTAssertEqual(owner, a.node)
        XCTAssertTrue(a.owns(room))

        a.releaseLease()  // a drains (or its lease expired)
        guard case .owned(let epochB, let replay) = try b.claim(room, creating: true) else {
            return XCTFail("b takes the room once a's lease is gone")
        }
        XCTAssertEqual(epochB, 2)
        XCTAssertEqual(replay, [chat(room, "one")], "the new owner rebuilds from what a committed")

        // a, stale, still believes it owns the room: its next commit is fenced.
        let staleTicket = a.append(chat(room, "stale"))
        XCTAssertTrue(a.flush(timeout: 5))
        XCTAssertGreaterThanOrEqual(a.committedTicket, staleTicket)
        XCTAssertEqual(a.takeLostRooms(), [room], "a learns it lost the room")
        XCTAssertFalse(a.owns(room))
        b.append(chat(room, "two"))
        b.flush()
        XCTAssertEqual(try b.entries(of: room), [chat(room, "one"), chat(room, "two")], "nothing of a's stale write")
    }

    func testAFencedRoomDoesNotStopTheNodesOtherRooms() throws {
        let taken = RoomID("taken-\(UUID().uuidString.prefix(8))")
        let kept = RoomID("kept-\(UUID().uuidString.prefix(8))")
        let a = try node("a")
        let b = try node("b")
        for room in [taken, kept] { _ = try a.claim(room, creating: true) }
        a.releaseLease()
        guard case .owned = try b.claim(taken, creating: true) else { return XCTFail("b takes one room") }
        a.append(chat(taken, "lost"))
        a.append(chat(kept, "kept"))
        a.flush()
        XCTAssertEqual(a.takeLostRooms(), [taken])
        XCTAssertEqual(try a.entries(of: kept), [chat(kept, "kept")])
        XCTAssertEqual(try a.entries(of: taken), [])
    }

    func testARoomsOwnerReclaimsItAndKeepsNumbering() throws {
        let room = RoomID("again-\(UUID().uuidString.prefix(8))")
        let a = try node("a")
        _ = try a.claim(room, creating: true)
        a.append(chat(room, "one"))
        a.flush()
        a.forget(room)
        guard case .owned(let epoch, let entries) = try a.claim(room, creating: false) else {
            return XCTFail("its own room, again")
        }
        XCTAssertEqual(epoch, 2)
        XCTAssertEqual(entries, [chat(room, "one")])
        a.append(chat(room, "two"))
        a.flush()
        XCTAssertEqual(try a.entries(of: room).count, 2)
    }

    func testAnUnknownRoomIsNotClaimedWithoutCreating() throws {
        let a = try node("a")
        let room = RoomID("none-\(UUID().uuidString.prefix(8))")
        guard case .unknown = try a.claim(room, creating: false) else { return XCTFail("nothing to claim") }
        XCTAssertFalse(a.owns(room))
    }

    func testCreationWritesTheCreateEntryWithNoOwner() throws {
        let a = try node("a")
        let b = try node("b")
        let room = RoomID("made-\(UUID().uuidString.prefix(8))")
        let create = JournalEntry.createRoom(room, settings: RoomSettings(), at: Instant(milliseconds: 7))
        XCTAssertEqual(try a.createRoom(create), .created)
        XCTAssertEqual(try b.createRoom(create), .exists, "one id, one room, whichever node is asked")
        guard case .owned(let epoch, let entries) = try b.claim(room, creating: false) else {
            return XCTFail("any node claims a created room (no owner yet)")
        }
        XCTAssertEqual(epoch, 1)
        XCTAssertEqual(entries, [create])
        b.markEnded(room, at: Instant(milliseconds: 9))
        b.flush()
        XCTAssertEqual(try a.createRoom(create), .ended)
    }

    func testAGuestTokenIDIsUsedOnceAcrossNodes() throws {
        let a = try node("a")
        let b = try node("b")
        let jti = "jti-\(UUID().uuidString)"
        let room = RoomID("guest")
        XCTAssertTrue(try a.useToken(jti, room: room, expires: Instant(milliseconds: 9_999_999_999_999)))
        XCTAssertFalse(try b.useToken(jti, room: room, expires: Instant(milliseconds: 9_999_999_999_999)))
        XCTAssertFalse(try a.useToken(jti, room: room, expires: Instant(milliseconds: 9_999_999_999_999)))
    }

    func testConnectionIDsNeverCollideBetweenNodesOrRuns() throws {
        let conninfo = try TestPostgres.conninfo()
        let name = "ids-\(UUID().uuidString.prefix(8))"
        let first = try SharedJournal(conninfo: conninfo, node: name)
        first.close()
        let second = try SharedJournal(conninfo: conninfo, node: name)
        defer { second.close() }
        let other = try node("other")
        XCTAssertEqual(second.number, first.number, "a node keeps its number")
        XCTAssertEqual(second.incarnation, first.incarnation + 1)
        let bases = [first.connectionBase, second.connectionBase, other.connectionBase]
        XCTAssertEqual(Set(bases).count, 3)
        for x in bases {
            for y in bases where x != y { XCTAssertTrue(x >= y + 1 << 32 || y >= x + 1 << 32) }
        }
    }

    func testARoomsRecordsGoToItsChainAndOthersToTheNodesChain() throws {
        let held = RoomID("held-\(UUID().uuidString.prefix(8))")
        let other = RoomID("other-\(UUID().uuidString.prefix(8))")
        let a = try node("a")
        _ = try a.claim(held, creating: true)
        a.append(JournalStoreSuite.audit(held, "arrive", at: 5))
        a.append(JournalStoreSuite.audit(other, "authenticate", at: 6))  // a room a does not hold
        a.append(chat(held, "with it"))
        a.flush()
        let rows = try a.auditRecords(room: held) + a.auditRecords(room: other)
        XCTAssertEqual(rows.map(\.chain), ["room:\(held)", "node:\(a.node)"])
        XCTAssertEqual(rows.map(\.id), [1, 1], "each chain counts from 1")
        guard case .ok = try a.verifyAudit() else { return XCTFail("verifies") }

        // The room moves to b: b continues the room's chain, a's late records go to a's chain.
        a.releaseLease()
        let b = try node("b")
        guard case .owned = try b.claim(held, creating: false) else { return XCTFail("b takes the room") }
        b.append(JournalStoreSuite.audit(held, "resume", at: 7))
        b.flush()
        a.append(JournalStoreSuite.audit(held, "late", at: 8))
        a.append(chat(held, "late"))
        a.flush()
        let after = try b.auditRecords(room: held)
        XCTAssertEqual(after.map(\.chain), ["room:\(held)", "room:\(held)", "node:\(a.node)"])
        XCTAssertEqual(after.map(\.id), [1, 2, 2])
        guard case .ok = try b.verifyAudit() else { return XCTFail("every chain verifies") }
    }

    func testVerificationFindsAnEditedADeletedAndATruncatedRow() throws {
        let conninfo = try TestPostgres.conninfo()
        let room = RoomID("tamper-\(UUID().uuidString.prefix(8))")
        let a = try node("a")
        _ = try a.claim(room, creating: true)
        for i in 0..<4 { a.append(JournalStoreSuite.audit(room, "admit", at: Int64(100 + i))) }
        a.append(chat(room, "x"))
        a.flush()
        guard case .ok = try a.verifyAudit() else { return XCTFail("intact") }
        let sql = try PostgresConnection(conninfo: conninfo)
        let chain = "room:\(room)"
        func broken(_ change: String, _ undo: String) throws -> String? {
            try sql.execute(change, [chain])
            defer { _ = try? sql.execute(undo, [chain]) }
            if case .broken(_, let reason) = try a.verifyAudit() { return reason }
            return nil
        }
        let edited = try broken(
            "UPDATE hearth_audit SET reason = 'edited' WHERE chain = $1 AND n = 2",
            "UPDATE hearth_audit SET reason = NULL WHERE chain = $1 AND n = 2")
        XCTAssertTrue(edited?.contains("edited") == true, edited ?? "not found")
        try sql.execute("CREATE TEMP TABLE saved AS SELECT * FROM hearth_audit WHERE chain = $1", [chain])
        let deleted = try broken(
            "DELETE FROM hearth_audit WHERE chain = $1 AND n = 3",
            "INSERT INTO hearth_audit SELECT * FROM saved WHERE chain = $1 AND n = 3")
        XCTAssertTrue(deleted?.contains("missing") == true, deleted ?? "not found")
        let truncated = try broken(
            "DELETE FROM hearth_audit WHERE chain = $1 AND n = 4",
            "INSERT INTO hearth_audit SELECT * FROM saved WHERE chain = $1 AND n = 4")
        XCTAssertTrue(truncated?.contains("head") == true, truncated ?? "not found")
        guard case .ok = try a.verifyAudit() else { return XCTFail("intact again") }
    }

    func testALeaseThatStopsBeingRenewedLapses() throws {
        let a = try node("a", lease: 1)
        XCTAssertFalse(a.leaseLapsed)
        XCTAssertTrue(a.leaseHeld)
        a.releaseLease()  // stops the renewals, as a stopped process would
        Thread.sleep(forTimeInterval: 1.3)
        XCTAssertTrue(a.leaseLapsed)
        XCTAssertFalse(a.leaseHeld)
    }
}

/// A thread-safe cell for a ticket reported on the writer thread.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: UInt64 = 0
    func set(_ v: UInt64) { lock.withLock { stored = v } }
    var value: UInt64 { lock.withLock { stored } }
}
