import Foundation
import GRDB
import HearthCore

public enum StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A journal row that cannot be decoded (the row's `seq` when known).
    case corruptJournal(seq: Int64?, reason: String)
    /// An audit or attendance row with a value HearthCore does not know.
    case corruptRecord(table: String, id: Int64, reason: String)

    public var description: String {
        switch self {
        case .corruptJournal(let seq, let reason): return "journal row \(seq.map(String.init) ?? "?"): \(reason)"
        case .corruptRecord(let table, let id, let reason): return "\(table) row \(id): \(reason)"
        }
    }
}

/// Hearth's embedded store: one SQLite file (`hearth.sqlite` in the data directory) in WAL
/// mode, through GRDB, holding the journal of engine inputs, the hash-chained audit trail,
/// the attendance records and the end marks of rooms.
///
/// Writes never block the caller: `append`, `markEnded` and `compact` put the operation on a
/// queue (a lock and an array append) and wake a dedicated writer thread, which takes
/// everything queued and writes it in one transaction (group commit), then repeats. Each
/// queued operation gets a ticket, numbered from 1 in call order; `committedTicket` is the
/// highest ticket whose transaction has committed, and `onCommit` is called with it after
/// each commit. Reads (`replay`, `verifyAudit`, the exports) run on the caller's thread on
/// a WAL snapshot, concurrently with the writer, and may wait on the disk: never call them
/// from the event loop except at start-up.
///
/// The queue is bounded by admission, not by dropping: when the disk stalls, `acceptsNewWork`
/// turns false once `queueLimit` operations wait, and the shell then refuses new joins and
/// journaled commands (`server-busy`); what happened anyway (departures, audit records) is
/// still appended, so nothing is lost and the queue stays near the limit.
///
/// Durability (`Durability.normal`, the default: WAL with `synchronous=NORMAL`):
/// - An operation is durable once its ticket is committed. Until then it lives only in
///   memory: a crash of any kind loses the operations appended but not yet committed (the
///   queue, typically the last few milliseconds; `statistics.pending` tells how many).
/// - A process crash (SIGKILL, a trap) after the commit loses nothing: the commit is in the
///   WAL file, in the kernel's page cache, and SQLite recovers it on the next open.
/// - A power loss or kernel crash may also lose the most recent committed transactions:
///   with `synchronous=NORMAL` the WAL is fsynced only at checkpoints, not at each commit.
///   The database stays consistent (whole transactions only, never a torn one), so the
///   journal is then a prefix of what was committed, and the audit chain stays intact.
/// - `Durability.full` (`synchronous=FULL`) fsyncs the WAL at every commit: committed then
///   also survives power loss, at the price of one fsync per group commit.
public final class Store: Sendable {
    public enum Durability: Sendable {
        /// `synchronous=NORMAL`: commits survive a process crash, not a power loss.
        case normal
        /// `synchronous=FULL`: commits survive a power loss too (an fsync per transaction).
        case full
    }

    /// Counters for metrics and tests.
    public struct Statistics: Hashable, Sendable {
        /// Transactions the writer committed (each holds one or more operations).
        public var transactions: Int
        /// Operations committed.
        public var committed: Int
        /// Operations queued and not yet committed.
        public var pending: Int
        /// Transactions that failed (their operations stay queued and are retried).
        public var failures: Int
        /// The last write error, if any.
        public var lastError: String?
        /// Operations appended after `close()`, and so never written.
        public var droppedAfterClose: Int
    }

    /// The file name of the store in the data directory.
    public static let fileName = "hearth.sqlite"

    public let path: String
    let pool: DatabasePool
    private let writer: Writer<Operation>
    /// Operations (queued or being written) past which `acceptsNewWork` is false.
    public let queueLimit: Int
    private let authenticationFailures: FoldingState

    /// The default `queueLimit`: at 3,000 journaled chats a second, about 7 s of a stalled
    /// disk, and at most about 50 MB of queued entries (chat text up to 2,000 bytes each).
    public static let defaultQueueLimit = 20_000

    /// How long the writer lets operations gather after the first one before it commits them
    /// together, by default. Each transaction costs the writer thread a wake-up, a context
    /// switch on the event loop's core, and a WAL append: under 3,000 chats/s the journal took
    /// about a fifth of the server's CPU with one transaction per few entries. Only what waits
    /// for the commit (a sender's `ack`) is delayed; deliveries to the room are not.
    public static let defaultCommitWindow = 0.004

    /// Opens (or creates, mode 0600) the store at `path` and brings its schema up to date.
    /// `commitWindow` (seconds): see `defaultCommitWindow`; 0 commits as soon as possible.
    /// `queueLimit`: see `acceptsNewWork`. `foldingLimits`: see `appendAuthenticationFailure`.
    /// `writerGate` is for tests only: the writer thread calls it before each transaction,
    /// and while it blocks the writer is stalled as by a stuck disk (nil in production).
    public init(
        path: String, durability: Durability = .normal, commitWindow: Double = Store.defaultCommitWindow,
        queueLimit: Int = Store.defaultQueueLimit,
        foldingLimits: AuthenticationFailureFolding.Limits = AuthenticationFailureFolding.Limits(),
        writerGate: (@Sendable () -> Void)? = nil
    ) throws {
        self.path = path
        self.queueLimit = queueLimit
        self.authenticationFailures = FoldingState(AuthenticationFailureFolding(limits: foldingLimits))
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        // Created here so it (and the -wal and -shm files SQLite makes with the same mode)
        // is readable by the server's user only: the journal holds chat text (health data).
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        var config = Configuration()
        config.label = "hearth-store"
        config.busyMode = .timeout(5)
        pool = try DatabasePool(path: path, configuration: config)
        // The pool has opened its one writer connection in WAL mode with synchronous=NORMAL.
        // Set (and check) the level here, on that connection, so the durability contract
        // above does not rest on a library default. Readers never write: their level is moot.
        let level = durability == .full ? 2 : 1
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = \(level)")
            let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode")
            let actual = try Int.fetchOne(db, sql: "PRAGMA synchronous")
            guard mode == "wal", actual == level else {
                throw DatabaseError(
                    message: "could not set WAL mode and synchronous=\(level) (got \(mode ?? "?"), \(actual ?? -1))")
            }
        }
        try Schema.migrator.migrate(pool)
        writer = Writer(name: "store-writer", commitWindow: commitWindow, gate: writerGate) {
            [pool] batch in try pool.writeWithoutTransaction { db in try Store.commit(batch, db) }
        }
        writer.start()
    }

    /// Opens the store in a data directory.
    public convenience init(
        directory: String, durability: Durability = .normal, commitWindow: Double = Store.defaultCommitWindow,
        queueLimit: Int = Store.defaultQueueLimit, writerGate: (@Sendable () -> Void)? = nil
    ) throws {
        try self.init(
            path: (directory as NSString).appendingPathComponent(Self.fileName), durability: durability,
            commitWindow: commitWindow, queueLimit: queueLimit, writerGate: writerGate)
    }

    /// A `writerGate` for black-box tests: the writer stalls while a file exists at `path`
    /// (checked every 10 ms). hearthd installs it only in its documented test mode.
    public static func stallWhileFileExists(_ path: String) -> @Sendable () -> Void {
        {
            while FileManager.default.fileExists(atPath: path) { Thread.sleep(forTimeInterval: 0.01) }
        }
    }

    deinit { close() }

    // MARK: Writing (never blocks on the disk)

    /// Queues a journal entry. Returns its ticket.
    @discardableResult
    public func append(_ entry: JournalEntry) -> UInt64 { writer.enqueue(.journal(entry)) }

    /// Queues an audit record (hash-chained when written). Returns its ticket.
    @discardableResult
    public func append(_ record: AuditRecord) -> UInt64 { writer.enqueue(.audit(record)) }

    /// Queues an attendance record. Returns its ticket.
    @discardableResult
    public func append(_ record: AttendanceRecord) -> UInt64 { writer.enqueue(.attendance(record)) }

    /// Records a refused authentication, never the token: the room from the URL, the
    /// verifier's reason code and the client's address. The first few from an address per
    /// interval are audit rows of their own (action `authenticate`, refused with
    /// `authentication-failed`, no actor or subject, reason `<code> address:<address>`); the
    /// rest are counted into summary rows (see `AuthenticationFailureFolding`), written when
    /// their interval closes (`closeAuthenticationFailureInterval(at:)`) or at `close()`.
    /// Returns the last ticket handed out.
    @discardableResult
    public func appendAuthenticationFailure(room: RoomID, reason: String, address: String, at: Instant) -> UInt64 {
        authenticationFailures.record(room: room, reason: reason, address: address, at: at) { append($0) }
        return writer.lastTicket
    }

    /// Queues the summaries of failed authentications whose interval ended by `now`. Call it
    /// regularly (the shell does, every second), so a summary is written when a flood stops.
    public func closeAuthenticationFailureInterval(at now: Instant) {
        authenticationFailures.close(at: now) { append($0) }
    }

    public static let authenticateAction = AuthenticationFailureFolding.action

    /// Queues the mark that a room ended at `at`, for `compact`. Idempotent: marking a room
    /// again moves its mark. Call it when an input ends a room (and, after a replay, for
    /// every ended room, in case the crash fell between the `end` entry and its mark).
    @discardableResult
    public func markEnded(_ room: RoomID, at: Instant) -> UInt64 { writer.enqueue(.ended(room, at)) }

    /// Queues the removal of the journal of every room marked ended before `cutoff` (and of
    /// their marks). It runs in queue order: entries appended before it are removed with it,
    /// entries appended after it are kept. Drop the same rooms from the engine at the same
    /// time (`Engine.dropEndedRooms(before:)`) so the journal and the engine agree.
    @discardableResult
    public func compact(roomsEndedBefore cutoff: Instant) -> UInt64 { writer.enqueue(.compact(cutoff)) }

    /// Queues the removal, for retention, of audit rows older than `cutoff`: the oldest rows,
    /// up to the first one at or after `cutoff`. The chain's new start (the first remaining
    /// row's `prev_hash`) is kept in the head, so `verifyAudit` still checks every remaining
    /// row, and still detects a deletion at the start beyond what was pruned.
    @discardableResult
    public func pruneAudit(before cutoff: Instant) -> UInt64 { writer.enqueue(.pruneAudit(cutoff)) }

    /// Queues the removal, for retention, of attendance rows older than `cutoff`.
    @discardableResult
    public func pruneAttendance(before cutoff: Instant) -> UInt64 { writer.enqueue(.pruneAttendance(cutoff)) }

    /// Blocks until every operation queued before the call is committed (graceful shutdown,
    /// tests). Retries failing writes until they succeed; see `flush(timeout:)`.
    public func flush() { _ = writer.waitCommitted(writer.lastTicket, timeout: nil) }

    /// `flush()` that gives up after `timeout` seconds; returns whether all was committed.
    public func flush(timeout: Double) -> Bool { writer.waitCommitted(writer.lastTicket, timeout: timeout) }

    /// The highest ticket committed to the database (0 before the first commit).
    public var committedTicket: UInt64 { writer.committedTicket }

    /// The highest ticket handed out.
    public var lastTicket: UInt64 { writer.lastTicket }

    /// Called on the writer thread after each commit with the new `committedTicket`. Keep
    /// it short and thread-safe (e.g. record the ticket and wake the event loop), and do not
    /// capture the store strongly (the store would then never deinit; `close()` still works).
    public var onCommit: (@Sendable (UInt64) -> Void)? {
        get { writer.onCommit }
        set { writer.onCommit = newValue }
    }

    public var statistics: Statistics { writer.statistics }

    /// Operations appended and not yet committed (queued, or in the transaction being
    /// written): what the store holds in memory.
    public var queued: Int { writer.uncommitted }

    /// Whether the shell may take new work (a join, a journaled command): false while
    /// `queueLimit` or more operations wait for the disk. Records of what happened anyway
    /// (audit, attendance, departures, timers) are appended regardless: never dropped.
    public var acceptsNewWork: Bool { writer.uncommitted < queueLimit }

    /// Queues the open interval's failed-authentication summaries (so none is lost), writes
    /// what is queued, then stops the writer thread. Later appends are dropped (and counted).
    /// Reads still work.
    public func close() {
        authenticationFailures.flush { append($0) }
        writer.stop()
    }

    // MARK: Reading (on the caller's thread)

    /// Every committed journal entry, in the order it was appended.
    public func replay() throws -> [JournalEntry] {
        try readJournal(sql: "SELECT seq, kind, body FROM journal ORDER BY seq")
    }

    /// Every committed journal entry of one room, in the order it was appended.
    public func entries(of room: RoomID) throws -> [JournalEntry] {
        try readJournal(sql: "SELECT seq, kind, body FROM journal WHERE room = ? ORDER BY seq", [room.rawValue])
    }

    private func readJournal(sql: String, _ arguments: StatementArguments = []) throws -> [JournalEntry] {
        try pool.read { db in
            var entries: [JournalEntry] = []
            let rows = try Row.fetchCursor(db, sql: sql, arguments: arguments)
            while let row = try rows.next() {
                let seq: Int64 = row["seq"]
                do {
                    entries.append(try JournalCoding.decode(kind: row["kind"], body: row["body"]))
                } catch StoreError.corruptJournal(_, let reason) {
                    throw StoreError.corruptJournal(seq: seq, reason: reason)
                } catch {
                    throw StoreError.corruptJournal(seq: seq, reason: "\(error)")
                }
            }
            return entries
        }
    }

    /// How many journal rows there are, per room (for operations and tests).
    public func journalCounts() throws -> [RoomID: Int] {
        try pool.read { db in
            var counts: [RoomID: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT room, COUNT(*) AS n FROM journal GROUP BY room") {
                counts[RoomID(row["room"])] = row["n"]
            }
            return counts
        }
    }

    /// Checks the audit trail's hash chain, row by row, then against the head; returns the
    /// first broken link. Throws only if the database cannot be read.
    public func verifyAudit() throws -> AuditVerification {
        try pool.read { db in
            guard let head = try Row.fetchOne(db, sql: "SELECT * FROM audit_head WHERE id = 1") else {
                return .broken(atID: 0, reason: "the audit head row is missing")
            }
            var expectedID: Int64 = head["base_id"]
            var previous: String = head["base_hash"]
            var count = 0
            let rows = try Row.fetchCursor(db, sql: "SELECT * FROM audit ORDER BY id")
            while let row = try rows.next() {
                let id: Int64 = row["id"]
                if id < expectedID {
                    return .broken(
                        atID: id, reason: "row \(id) precedes the chain's start (row \(expectedID)): inserted")
                }
                if id > expectedID {
                    let missing = id - 1 == expectedID ? "row \(expectedID) is" : "rows \(expectedID)–\(id - 1) are"
                    return .broken(atID: expectedID, reason: "\(missing) missing (deleted) before row \(id)")
                }
                let prevHash: String = row["prev_hash"]
                if prevHash != previous {
                    return .broken(
                        atID: id,
                        reason: "row \(id)'s prev_hash does not match the hash of the row before it: "
                            + "a row was inserted or replaced, or the previous row's hash was altered")
                }
                let record: AuditRecord
                do {
                    record = try Schema.auditRecord(row)
                } catch {
                    return .broken(atID: id, reason: "row \(id) holds a value that is not a valid record: \(error)")
                }
                let hash: String = row["hash"]
                if AuditChain.hash(prev: prevHash, id: id, record: record) != hash {
                    return .broken(atID: id, reason: "row \(id)'s contents do not match its hash: edited")
                }
                previous = hash
                expectedID += 1
                count += 1
            }
            let lastID: Int64 = head["last_id"]
            let headCount: Int = head["count"]
            let headHash: String = head["last_hash"]
            if lastID >= expectedID {
                let missing = lastID == expectedID ? "row \(lastID) is" : "rows \(expectedID)–\(lastID) are"
                return .broken(
                    atID: expectedID, reason: "\(missing) missing (deleted) at the end: the head records row \(lastID)")
            }
            if lastID < expectedID - 1 {
                return .broken(
                    atID: lastID + 1, reason: "row \(lastID + 1) is past the head's last row \(lastID): inserted")
            }
            if headHash != previous || headCount != count {
                return .broken(
                    atID: lastID, reason: "the head (\(headCount) rows, last hash) does not match row \(lastID)")
            }
            return .ok(count: count)
        }
    }

    /// Calls `body` with a room's audit rows (or every room's, with nil), oldest first, at or
    /// after `since`, one at a time from a cursor over one snapshot, until it returns false: for
    /// exports too large to hold in memory. `body` runs inside the read (keep a reader
    /// connection, and so the snapshot, only as long as the export takes).
    public func forEachAuditRecord(
        room: RoomID?, since: Instant? = nil, _ body: (StoredAudit) throws -> Bool
    ) throws {
        try pool.read { db in
            var sql = "SELECT * FROM audit WHERE at >= ?"
            var arguments: StatementArguments = [since?.milliseconds ?? Int64.min]
            if let room {
                sql += " AND room = ?"
                arguments += [room.rawValue]
            }
            sql += " ORDER BY id"
            let rows = try Row.fetchCursor(db, sql: sql, arguments: arguments)
            while let row = try rows.next() {
                let stored = StoredAudit(
                    id: row["id"], record: try Schema.auditRecord(row), prevHash: row["prev_hash"], hash: row["hash"])
                guard try body(stored) else { return }
            }
        }
    }

    /// A room's attendance records, in the order the engine emitted them.
    public func attendanceRecords(room: RoomID) throws -> [AttendanceRecord] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM attendance WHERE room = ? ORDER BY id", arguments: [room.rawValue])
                .map(Schema.attendanceRecord)
        }
    }

    /// When `room` was marked ended, if it was.
    public func endedAt(_ room: RoomID) throws -> Instant? {
        try pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT ended_at FROM room_end WHERE room = ?", arguments: [room.rawValue])
                .map(Instant.init(milliseconds:))
        }
    }

    /// Blocks until `ticket` is committed (or `timeout` seconds pass); whether it was. For a
    /// reader that must see what was queued before it (take `lastTicket` when the request
    /// arrives, wait here on the reader's own thread, then read). Never on the event loop.
    public func waitCommitted(_ ticket: UInt64, timeout: Double) -> Bool {
        writer.waitCommitted(ticket, timeout: timeout)
    }

    /// The rooms marked ended, with when.
    public func endedRooms() throws -> [RoomID: Instant] {
        try pool.read { db in
            var out: [RoomID: Instant] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT room, ended_at FROM room_end") {
                out[RoomID(row["room"])] = Instant(milliseconds: row["ended_at"])
            }
            return out
        }
    }
}

extension Store {
    /// Runs raw SQL in a write transaction, bypassing the writer queue: for tests that
    /// tamper with the file the way an intruder would. Not public.
    func rawExecute(_ sql: String) throws {
        try pool.write { db in try db.execute(sql: sql) }
    }

    /// The value of a PRAGMA on a writer connection (tests).
    func pragma(_ name: String) throws -> String? {
        try pool.write { db in try String.fetchOne(db, sql: "PRAGMA \(name)") }
    }
}

/// A store's `AuthenticationFailureFolding`, behind a lock, handing the audit records it makes
/// to the store's `append` (both stores use it). `@unchecked Sendable`: `value` is read and
/// written only with `lock` held.
final class FoldingState: @unchecked Sendable {
    private let lock = NSLock()
    private var value: AuthenticationFailureFolding

    init(_ value: AuthenticationFailureFolding) { self.value = value }

    private func withLock<T>(_ body: (inout AuthenticationFailureFolding) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }

    /// A refused authentication: a row of its own or a count in its interval's summary.
    func record(room: RoomID, reason: String, address: String, at: Instant, _ append: (AuditRecord) -> Void) {
        withLock { folding in
            for record in folding.record(room: room, reason: reason, address: address, at: at) { append(record) }
        }
    }

    /// The summaries of the intervals that ended by `now`.
    func close(at now: Instant, _ append: (AuditRecord) -> Void) {
        withLock { folding in
            for record in folding.close(at: now) { append(record) }
        }
    }

    /// Every open interval's summary, now (the store is closing: none may be lost).
    func flush(_ append: (AuditRecord) -> Void) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let now = Instant(milliseconds: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
        withLock { folding in
            for record in folding.flush(at: now) { append(record) }
        }
    }
}
