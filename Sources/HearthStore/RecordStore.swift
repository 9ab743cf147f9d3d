import HearthCore

/// Reading a node's records: the hash-chained audit trail, attendance, and room ends. The
/// embedded `Store` holds them in its SQLite file (one chain); a cluster holds them in
/// PostgreSQL (`SharedJournal`, or `SharedRecords` for a reader such as `hearthd audit verify`),
/// with one chain per room and one per node. Reads may wait on the disk or the network: never on
/// the event loop.
public protocol RecordReading: AnyObject {
    /// Checks every hash chain; the first broken link, or `.ok` with the number of rows.
    func verifyAudit() throws -> AuditVerification
    /// Calls `body` with a room's audit rows (every room's with nil), oldest first, at or after
    /// `since`, until it returns false.
    func forEachAuditRecord(room: RoomID?, since: Instant?, _ body: (StoredAudit) throws -> Bool) throws
    /// A room's attendance records, in the order the engine emitted them.
    func attendanceRecords(room: RoomID) throws -> [AttendanceRecord]
    /// When `room` was marked ended, if it was.
    func endedAt(_ room: RoomID) throws -> Instant?
    /// Releases the connection or file (a command-line reader, at its end).
    func close()
}

extension RecordReading {
    /// A room's audit rows (or every room's, with nil), oldest first, at or after `since`.
    public func auditRecords(room: RoomID?, since: Instant? = nil) throws -> [StoredAudit] {
        var records: [StoredAudit] = []
        try forEachAuditRecord(room: room, since: since) {
            records.append($0)
            return true
        }
        return records
    }

    /// Whether any of a room's audit rows satisfies `predicate` (stops at the first that does).
    public func containsAuditRecord(room: RoomID, where predicate: (AuditRecord) -> Bool) throws -> Bool {
        var found = false
        try forEachAuditRecord(room: room, since: nil) { row in
            found = predicate(row.record)
            return !found
        }
        return found
    }
}

/// Writing a node's records as well (queued for the writer thread, never blocking), and the
/// tickets a reader waits on to see what was queued before it.
public protocol RecordStore: RecordReading, Sendable {
    @discardableResult func append(_ record: AuditRecord) -> UInt64
    @discardableResult func append(_ record: AttendanceRecord) -> UInt64
    /// A refused authentication, folded past a few per address and interval
    /// (`AuthenticationFailureFolding`); never the token.
    @discardableResult func appendAuthenticationFailure(room: RoomID, reason: String, address: String, at: Instant)
        -> UInt64
    /// Queues the folded summaries whose interval ended by `now`.
    func closeAuthenticationFailureInterval(at now: Instant)
    @discardableResult func pruneAudit(before cutoff: Instant) -> UInt64
    @discardableResult func pruneAttendance(before cutoff: Instant) -> UInt64

    var lastTicket: UInt64 { get }
    /// Blocks until `ticket` is committed (or `timeout` seconds pass); whether it was.
    func waitCommitted(_ ticket: UInt64, timeout: Double) -> Bool
    /// Operations past which new work is refused.
    var queueLimit: Int { get }
    var acceptsNewWork: Bool { get }
}

extension Store: RecordStore {}
