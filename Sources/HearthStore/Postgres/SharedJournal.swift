import Foundation
import HearthCore

/// The cluster's shared store in PostgreSQL (`store: postgres`): the journal of every room,
/// which node owns each room and at which epoch, the nodes' leases, single-use guest token
/// ids and room ends. Any node can rebuild any room from it, and no node can write for a room
/// it does not own.
///
/// - **Leases.** Each node keeps a row in `hearth_lease`, renewed every second for
///   `leaseSeconds` (5 by default) by a thread of its own. A node whose renewals stopped for
///   longer than that (`leaseLapsed`) must stop serving: the shell closes every session and
///   drops every room, and claims them again only once the lease is renewed.
/// - **Claims.** A node takes a room (`claim`) when a member's `hello` or `resume` (or an
///   operations call) arrives for a room it does not hold: the room's owner row moves to it
///   with the epoch plus one, unless the current owner's lease is live. The claim returns the
///   room's journal, which the shell replays exactly as start-up recovery does.
/// - **Fenced group commit.** The writer thread writes a batch in one statement that joins
///   the entries with the owner rows this node holds at the epochs it claimed (`FOR SHARE`, so
///   a concurrent claim waits for it or it waits for the claim). A room whose row moved is not
///   written: it is reported by `takeLostRooms()` before its tickets count as committed, so
///   nothing of it is ever acknowledged.
///
/// Threads: the writer (its own connection), the lease keeper (its own), and the caller of
/// `claim`, `useToken` and `createRoom` (the event loop; one connection behind a lock).
public final class SharedJournal: JournalStore, RecordStore, @unchecked Sendable {
    /// A room this node holds: its epoch, and the next entry number to write.
    struct Ownership {
        var epoch: Int64
        var next: Int64
    }

    /// The outcome of `claim`.
    public enum Claim: Sendable {
        /// The room is this node's at `epoch`; replay `entries` (its whole journal) to rebuild it.
        case owned(epoch: Int64, entries: [JournalEntry])
        /// Another node holds it and its lease is live.
        case heldElsewhere(node: String)
        /// No such room (and `creating` was false): nothing was claimed.
        case unknown
    }

    /// The outcome of `createRoom`.
    public enum Creation: Sendable, Equatable {
        case created
        case exists
        case ended
    }

    public let node: String
    /// This node's number in the cluster (from `hearth_node`) and how many times it started:
    /// connection ids are `number << 48 | incarnation << 32 | session`, so two nodes, or two
    /// runs of one node, never mint the same id.
    public let number: Int64
    public let incarnation: Int64
    public let leaseSeconds: Double
    public let queueLimit: Int

    private let control: PostgresConnection
    /// The records' reads (the operations API's reader thread): a connection of their own, so a
    /// long export never holds up a claim on the loop.
    private let reader: PostgresConnection
    private let readerLock = NSLock()
    private let authenticationFailures: FoldingState
    private let controlLock = NSLock()
    /// Runs claims off the caller's thread (the event loop): their statements, the read of the
    /// room's journal and its decoding.
    private let claims = DispatchQueue(label: "hearth-claims")
    private var writer: Writer<Operation>!
    let lock = NSLock()
    // Guarded by `lock` (`owned` and `lost` are also the writer's: SharedJournal+Writing.swift):
    var owned: [RoomID: Ownership] = [:]
    var lost: [RoomID] = []
    private var lastRenewal: ContinuousClock.Instant
    private var lapses = 0
    private var leaseStopped = false
    private let leaseThreadDone = DispatchSemaphore(value: 0)
    /// Wakes the lease keeper from its pause when it must stop.
    private let leaseWake = DispatchSemaphore(value: 0)

    /// Opens the shared store: creates its tables when missing, registers this node (a new
    /// incarnation), takes its lease, and starts the writer and the lease keeper.
    public init(
        conninfo: String, node: String, leaseSeconds: Double = 5, commitWindow: Double = Store.defaultCommitWindow,
        queueLimit: Int = Store.defaultQueueLimit,
        foldingLimits: AuthenticationFailureFolding.Limits = AuthenticationFailureFolding.Limits()
    ) throws {
        self.node = node
        self.leaseSeconds = leaseSeconds
        self.queueLimit = queueLimit
        self.authenticationFailures = FoldingState(AuthenticationFailureFolding(limits: foldingLimits))
        let control = try PostgresConnection(conninfo: conninfo)
        self.control = control
        reader = try PostgresConnection(conninfo: conninfo)
        try control.transaction {
            // Several nodes may start at once: one creates the tables at a time.
            try control.execute("SELECT pg_advisory_xact_lock(7402310)")
            for statement in SharedSchema.statements + SharedRecordSQL.statements { try control.execute(statement) }
        }
        // Two processes with one node name would write one node chain: a name whose lease is
        // live belongs to a running node. Wait out a dead one's lease (a restart after a crash).
        let deadline = ContinuousClock.now + .seconds(60)
        while let left = try control.execute(
            "SELECT EXTRACT(EPOCH FROM expires - now())::float8 FROM hearth_lease WHERE node = $1", [node]
        ).first?[0].flatMap(Double.init), left > 0 {
            guard ContinuousClock.now < deadline else {
                throw PostgresError(
                    state: nil,
                    message: "another hearthd runs as node \(node) (its lease is live): node names must be unique")
            }
            Thread.sleep(forTimeInterval: min(left + 0.05, 0.5))
        }
        let row = try control.execute(
            """
            INSERT INTO hearth_node (name) VALUES ($1)
            ON CONFLICT (name) DO UPDATE SET incarnation = hearth_node.incarnation + 1
            RETURNING number, incarnation
            """, [node])
        guard let number = row.first?[0].flatMap({ Int64($0) }), let incarnation = row.first?[1].flatMap({ Int64($0) })
        else { throw PostgresError(state: nil, message: "registering node \(node) returned nothing") }
        self.number = number
        self.incarnation = incarnation
        let renewedAt = ContinuousClock.now
        try control.execute(Self.renewSQL, [node, String(leaseSeconds)])
        lastRenewal = renewedAt
        let writerConnection = try PostgresConnection(conninfo: conninfo)
        writer = Writer(name: "shared-writer", commitWindow: commitWindow, gate: nil) { [unowned self] batch in
            try self.write(batch, writerConnection)
        }
        writer.start()
        let leaseConnection = try PostgresConnection(conninfo: conninfo)
        startNamedThread("hearth-lease") { [self] in keepLease(leaseConnection) }
    }

    /// The first connection id of this run (see `number`).
    public var connectionBase: UInt64 {
        UInt64(number & 0xffff) << 48 | UInt64(incarnation & 0xffff) << 32
    }

    // MARK: Journal (JournalStore)

    @discardableResult
    public func append(_ entry: JournalEntry) -> UInt64 { writer.enqueue(.journal(entry)) }
    @discardableResult
    public func markEnded(_ room: RoomID, at: Instant) -> UInt64 { writer.enqueue(.ended(room, at)) }
    @discardableResult
    public func compact(roomsEndedBefore cutoff: Instant) -> UInt64 { writer.enqueue(.compact(cutoff)) }

    public var committedTicket: UInt64 { writer.committedTicket }
    public var lastTicket: UInt64 { writer.lastTicket }
    public var queued: Int { writer.uncommitted }
    public var acceptsNewWork: Bool { writer.uncommitted < queueLimit }
    public var onCommit: (@Sendable (UInt64) -> Void)? {
        get { writer.onCommit }
        set { writer.onCommit = newValue }
    }
    public var statistics: Store.Statistics { writer.statistics }
    public func flush() { _ = writer.waitCommitted(writer.lastTicket, timeout: nil) }
    public func flush(timeout: Double) -> Bool { writer.waitCommitted(writer.lastTicket, timeout: timeout) }

    public func entries(of room: RoomID) throws -> [JournalEntry] {
        try withControl { try Self.entries(of: room, $0) }
    }

    public func endedRooms() throws -> [RoomID: Instant] {
        try withControl { connection in
            var out: [RoomID: Instant] = [:]
            for row in try connection.execute("SELECT room, ended_at FROM hearth_room_end") {
                if let room = row[0], let at = row[1].flatMap({ Int64($0) }) {
                    out[RoomID(room)] = Instant(milliseconds: at)
                }
            }
            return out
        }
    }

    // MARK: Records (RecordStore)

    @discardableResult
    public func append(_ record: AuditRecord) -> UInt64 { writer.enqueue(.audit(record)) }
    @discardableResult
    public func append(_ record: AttendanceRecord) -> UInt64 { writer.enqueue(.attendance(record)) }
    @discardableResult
    public func pruneAudit(before cutoff: Instant) -> UInt64 { writer.enqueue(.pruneAudit(cutoff)) }
    @discardableResult
    public func pruneAttendance(before cutoff: Instant) -> UInt64 { writer.enqueue(.pruneAttendance(cutoff)) }

    @discardableResult
    public func appendAuthenticationFailure(room: RoomID, reason: String, address: String, at: Instant) -> UInt64 {
        authenticationFailures.record(room: room, reason: reason, address: address, at: at) { append($0) }
        return writer.lastTicket
    }

    public func closeAuthenticationFailureInterval(at now: Instant) {
        authenticationFailures.close(at: now) { append($0) }
    }

    public func waitCommitted(_ ticket: UInt64, timeout: Double) -> Bool {
        writer.waitCommitted(ticket, timeout: timeout)
    }

    public func verifyAudit() throws -> AuditVerification { try withReader { try SharedRecordSQL.verify($0) } }

    public func forEachAuditRecord(room: RoomID?, since: Instant?, _ body: (StoredAudit) throws -> Bool) throws {
        try withReader { try SharedRecordSQL.forEachAudit(room: room, since: since, $0, body) }
    }

    public func attendanceRecords(room: RoomID) throws -> [AttendanceRecord] {
        try withReader { try SharedRecordSQL.attendance(room: room, $0) }
    }

    public func endedAt(_ room: RoomID) throws -> Instant? {
        try withReader { try SharedRecordSQL.endedAt(room, $0) }
    }

    public func takeLostRooms() -> [RoomID] {
        lock.withLock {
            defer { lost.removeAll() }
            return lost
        }
    }

    // MARK: Ownership

    /// Takes `room` for this node (a new epoch) unless another node with a live lease holds
    /// it, and returns its journal. `creating`: a room no node has seen yet is taken too (a
    /// member's `hello` creates rooms; a `resume` or an operations call does not). Throws when
    /// PostgreSQL cannot be reached.
    public func claim(_ room: RoomID, creating: Bool) throws -> Claim {
        try withControl { connection in
            let rows = try connection.execute(creating ? Self.claimSQL : Self.reclaimSQL, [room.rawValue, node])
            guard let epoch = rows.first?[1].flatMap({ Int64($0) }) else {
                let owner = try connection.execute("SELECT node FROM hearth_room WHERE room = $1", [room.rawValue])
                guard let node = owner.first?[0] else { return .unknown }
                return .heldElsewhere(node: node)
            }
            let next = try connection.execute(
                "SELECT COALESCE(MAX(n), 0) + 1 FROM hearth_journal WHERE room = $1", [room.rawValue])
            let entries = try Self.entries(of: room, connection)
            lock.withLock {
                owned[room] = Ownership(epoch: epoch, next: next.first?[0].flatMap { Int64($0) } ?? 1)
            }
            return .owned(epoch: epoch, entries: entries)
        }
    }

    /// `claim` on the shared store's claim thread (one at a time, in call order); `completion`
    /// runs there too, with the outcome.
    public func claim(
        _ room: RoomID, creating: Bool, completion: @escaping @Sendable (Result<Claim, any Error>) -> Void
    ) {
        claims.async { completion(Result { try self.claim(room, creating: creating) }) }
    }

    /// Whether this node holds `room` (as far as it knows: a lost room is found by the next commit).
    public func owns(_ room: RoomID) -> Bool { lock.withLock { owned[room] != nil } }

    /// Forgets `room` locally (the shell dropped it): nothing more is written for it.
    public func forget(_ room: RoomID) { _ = lock.withLock { owned.removeValue(forKey: room) } }

    /// Forgets every room (the lease lapsed): each must be claimed again.
    public func forgetAll() { lock.withLock { owned.removeAll() } }

    /// Creates a room ahead of its session from any node: its `create` entry becomes entry 1
    /// of its journal, with no owner yet (the first node a member reaches claims it). `exists`
    /// or `ended` when the id is taken.
    public func createRoom(_ entry: JournalEntry) throws -> Creation {
        let room = entry.room.rawValue
        let body = try JournalCoding.encode(entry)
        return try withControl { connection in
            try connection.transaction {
                let inserted = try connection.execute(
                    "INSERT INTO hearth_room (room, node, epoch) VALUES ($1, '', 0) ON CONFLICT DO NOTHING RETURNING room",
                    [room])
                guard inserted.isEmpty else {
                    try connection.execute(
                        "INSERT INTO hearth_journal (room, n, epoch, at_ms, kind, body) VALUES ($1, 1, 0, $2, $3, $4)",
                        [room, String(entry.at.milliseconds), entry.kind, body])
                    return .created
                }
                let ended = try connection.execute("SELECT 1 FROM hearth_room_end WHERE room = $1", [room])
                return ended.isEmpty ? .exists : .ended
            }
        }
    }

    /// A room as the shared tables know it (for the operations API's list, from any node).
    public struct SharedRoom: Sendable {
        public var room: RoomID
        /// The node holding it (nil: none yet, a room created ahead of its session).
        public var node: String?
        /// When it was created: its first journal entry's time.
        public var createdAt: Instant?
        public var endedAt: Instant?
    }

    /// Every room of the cluster (a read: the operations API's reader thread).
    public func rooms() throws -> [SharedRoom] {
        try withReader { connection in
            try connection.execute(
                """
                SELECT r.room, r.node, e.ended_at,
                    (SELECT j.at_ms FROM hearth_journal j WHERE j.room = r.room ORDER BY j.n LIMIT 1)
                FROM hearth_room r LEFT JOIN hearth_room_end e USING (room)
                """
            ).compactMap { row in
                guard let room = row[0] else { return nil }
                return SharedRoom(
                    room: RoomID(room), node: row[1].flatMap { $0.isEmpty ? nil : $0 },
                    createdAt: row[3].flatMap { Int64($0) }.map(Instant.init(milliseconds:)),
                    endedAt: row[2].flatMap { Int64($0) }.map(Instant.init(milliseconds:)))
            }
        }
    }

    /// Records the first use of a single-use token id; false if any node used it before.
    public func useToken(_ jti: String, room: RoomID, expires: Instant) throws -> Bool {
        try withControl { connection in
            !(try connection.execute(
                """
                INSERT INTO hearth_used_token (jti, room, expires_ms) VALUES ($1, $2, $3)
                ON CONFLICT DO NOTHING RETURNING jti
                """, [jti, room.rawValue, String(expires.milliseconds)])).isEmpty
        }
    }

    // MARK: The lease

    /// Whether this node's lease may have expired: its last successful renewal began more than
    /// `leaseSeconds` ago (another node may have claimed its rooms), or the lease keeper saw
    /// such a gap since the last call to `acknowledgeLapse()`.
    public var leaseLapsed: Bool {
        lock.withLock { lapses > 0 || ContinuousClock.now - lastRenewal > .milliseconds(Int64(leaseSeconds * 1000)) }
    }

    /// The shell has dropped every room after a lapse: clear the lapse seen by the keeper.
    public func acknowledgeLapse() { lock.withLock { lapses = 0 } }

    /// Whether the lease is renewed and unexpired (for `/healthz`).
    public var leaseHeld: Bool {
        lock.withLock {
            !leaseStopped && ContinuousClock.now - lastRenewal <= .milliseconds(Int64(leaseSeconds * 1000))
        }
    }

    /// Drain: stops renewing and deletes the lease, so other nodes may claim this node's rooms
    /// at once. Call it after the last append (the journal is flushed first).
    public func releaseLease() {
        stopLeaseKeeper()
        _ = try? withControl { try $0.execute("DELETE FROM hearth_lease WHERE node = $1", [node]) }
    }

    /// Stops the writer (after writing what is queued) and the lease keeper (leaving the lease
    /// to expire; `releaseLease()` deletes it).
    public func close() {
        authenticationFailures.flush { append($0) }
        writer.stop()
        stopLeaseKeeper()
    }

    /// Stops the lease keeper (once) and waits for its thread to end.
    private func stopLeaseKeeper() {
        let wasStopped = lock.withLock {
            defer { leaseStopped = true }
            return leaseStopped
        }
        guard !wasStopped else { return }
        leaseWake.signal()
        leaseThreadDone.wait()
    }

    private func keepLease(_ connection: PostgresConnection) {
        var lastSweep = ContinuousClock.now
        while !lock.withLock({ leaseStopped }) {
            _ = leaseWake.wait(timeout: .now() + min(1, leaseSeconds / 5))
            if lock.withLock({ leaseStopped }) { break }
            let started = ContinuousClock.now
            lock.withLock {
                if started - lastRenewal > .milliseconds(Int64(leaseSeconds * 1000)) { lapses += 1 }
            }
            if (try? connection.execute(Self.renewSQL, [node, String(leaseSeconds)])) != nil {
                lock.withLock { lastRenewal = started }
            }
            if started - lastSweep > .seconds(60) {
                lastSweep = started
                _ = try? connection.execute(
                    "DELETE FROM hearth_used_token WHERE expires_ms < $1",
                    [String(Int64(Date().timeIntervalSince1970 * 1000))])
            }
        }
        leaseThreadDone.signal()
    }

    // MARK: Connections and reads

    private func withReader<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        readerLock.lock()
        defer { readerLock.unlock() }
        return try body(reader)
    }

    private func withControl<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        controlLock.lock()
        defer { controlLock.unlock() }
        return try body(control)
    }

    private static func entries(of room: RoomID, _ connection: PostgresConnection) throws -> [JournalEntry] {
        try connection.execute("SELECT n, kind, body FROM hearth_journal WHERE room = $1 ORDER BY n", [room.rawValue])
            .map { row in
                let n = row[0].flatMap { Int64($0) }
                do {
                    return try JournalCoding.decode(kind: row[1] ?? "", body: row[2] ?? "")
                } catch StoreError.corruptJournal(_, let reason) {
                    throw StoreError.corruptJournal(seq: n, reason: "room \(room): \(reason)")
                }
            }
    }
}
