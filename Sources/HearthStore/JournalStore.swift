import HearthCore

/// Where a node journals its engine inputs: the embedded SQLite `Store` (one node owns every
/// room) or the cluster's `SharedJournal` in PostgreSQL (rooms are owned one by one, and every
/// commit is fenced by the owner's epoch). Both pass the same suite (`JournalStoreSuite` in
/// the tests), so the shell journals, gates acks and replays the same way on either.
///
/// Writes never block: `append`, `markEnded` and `compact` queue the operation and return its
/// ticket; `committedTicket` is the highest ticket committed, and `onCommit` is called on the
/// writer thread after each commit. An entry whose room the node no longer owns (shared
/// journal only) is never written: its ticket still completes, and the room is reported by
/// `takeLostRooms()` before `committedTicket` moves past it, so the shell drops the room (and
/// its held acks) before it could release them.
public protocol JournalStore: AnyObject, Sendable {
    /// Queues a journal entry; returns its ticket.
    @discardableResult func append(_ entry: JournalEntry) -> UInt64
    /// Queues the mark that a room ended at `at` (for `compact`).
    @discardableResult func markEnded(_ room: RoomID, at: Instant) -> UInt64
    /// Queues the removal of the journal of every room marked ended before `cutoff`.
    @discardableResult func compact(roomsEndedBefore cutoff: Instant) -> UInt64

    var committedTicket: UInt64 { get }
    var lastTicket: UInt64 { get }
    /// Operations queued and not yet committed.
    var queued: Int { get }
    /// False while the queue is at its bound (a stalled disk or database): refuse new work.
    var acceptsNewWork: Bool { get }
    var onCommit: (@Sendable (UInt64) -> Void)? { get set }
    var statistics: Store.Statistics { get }

    /// Blocks until everything queued before the call is committed.
    func flush()
    /// `flush()` that gives up after `timeout` seconds; whether everything was committed.
    func flush(timeout: Double) -> Bool

    /// Every committed entry of one room, in the order appended (a read: never on the loop,
    /// except when a room is claimed or at start-up).
    func entries(of room: RoomID) throws -> [JournalEntry]
    /// The rooms marked ended, with when.
    func endedRooms() throws -> [RoomID: Instant]
    /// Rooms found taken over by another node since the last call (always empty for the
    /// embedded store, which owns every room).
    func takeLostRooms() -> [RoomID]
}

extension Store: JournalStore {
    public func takeLostRooms() -> [RoomID] { [] }
}
