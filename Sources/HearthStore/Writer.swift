import Foundation
import GRDB
import HearthCore

/// The store's writer: a queue guarded by one lock (an `NSCondition`, which is a mutex and
/// a condition variable together), and a dedicated thread that drains it with group commit.
///
/// `@unchecked Sendable`: every mutable field is read and written only with `condition`
/// held; `pool` is itself thread-safe.
final class Writer: @unchecked Sendable {
    enum Operation {
        case journal(JournalEntry)
        case audit(AuditRecord)
        case attendance(AttendanceRecord)
        case ended(RoomID, Instant)
        case compact(Instant)
        case pruneAudit(Instant)
        case pruneAttendance(Instant)
    }

    private let pool: DatabasePool
    /// Group commit window: once woken by a first operation, the writer lets more gather for
    /// this long before it writes them in one transaction (see `Store.init`).
    private let commitWindow: Double
    /// Test only (`Store.init`'s `writerGate`): called before each transaction; blocking in
    /// it stalls the writer the way a stuck disk would.
    private let gate: (@Sendable () -> Void)?
    private let condition = NSCondition()
    // Guarded by `condition`:
    private var queue: [Operation] = []
    private var issued: UInt64 = 0
    private var committed: UInt64 = 0
    private var stopping = false
    private var running = false
    private var callback: (@Sendable (UInt64) -> Void)?
    private var stats = Store.Statistics(
        transactions: 0, committed: 0, pending: 0, failures: 0, lastError: nil, droppedAfterClose: 0)

    init(pool: DatabasePool, commitWindow: Double, gate: (@Sendable () -> Void)?) {
        self.pool = pool
        self.commitWindow = commitWindow
        self.gate = gate
    }

    func start() {
        condition.withLock { running = true }
        let thread = Thread { [self] in run() }
        thread.name = "hearth-store-writer"
        thread.start()
    }

    /// Queues `operation` and wakes the writer. O(1) under the lock; never touches the disk.
    func enqueue(_ operation: Operation) -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        guard running && !stopping else {
            stats.droppedAfterClose += 1
            return issued
        }
        issued += 1
        queue.append(operation)
        if queue.count == 1 { condition.broadcast() }
        return issued
    }

    var lastTicket: UInt64 { condition.withLock { issued } }
    var committedTicket: UInt64 { condition.withLock { committed } }
    /// Operations handed a ticket and not yet committed: queued, or in the transaction the
    /// writer is running (what the queue holds in memory).
    var uncommitted: Int { condition.withLock { Int(issued - committed) } }

    var onCommit: (@Sendable (UInt64) -> Void)? {
        get { condition.withLock { callback } }
        set { condition.withLock { callback = newValue } }
    }

    var statistics: Store.Statistics {
        condition.withLock {
            var s = stats
            s.pending = queue.count
            return s
        }
    }

    /// Waits until `ticket` is committed, the writer has stopped, or `timeout` passes.
    func waitCommitted(_ ticket: UInt64, timeout: Double?) -> Bool {
        let deadline = timeout.map { Date(timeIntervalSinceNow: $0) }
        condition.lock()
        defer { condition.unlock() }
        while committed < ticket && running {
            if let deadline {
                if !condition.wait(until: deadline) { return committed >= ticket }
            } else {
                condition.wait()
            }
        }
        return committed >= ticket
    }

    /// Drains the queue, then stops the thread; returns once it has stopped.
    func stop() {
        condition.lock()
        defer { condition.unlock() }
        stopping = true
        condition.broadcast()
        while running { condition.wait() }
    }

    // MARK: The writer thread

    private func run() {
        var backoff = 0.01
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if commitWindow > 0 && !stopping {
                // `enqueue` signals only the first operation of a batch, so this wait is not
                // woken by the ones that follow (only by `stop`): one wake-up per batch.
                let deadline = Date(timeIntervalSinceNow: commitWindow)
                while !stopping && condition.wait(until: deadline) {}
            }
            if let gate, !queue.isEmpty {
                condition.unlock()
                gate()
                condition.lock()
            }
            if queue.isEmpty {
                running = false
                condition.broadcast()
                condition.unlock()
                return
            }
            let batch = queue
            let last = issued
            queue.removeAll(keepingCapacity: true)
            condition.unlock()

            do {
                try pool.write { db in try Self.write(batch, db) }
                backoff = 0.01
                condition.lock()
                committed = last
                stats.transactions += 1
                stats.committed += batch.count
                let callback = self.callback
                condition.broadcast()
                condition.unlock()
                callback?(last)
            } catch {
                // Nothing of the batch was written (the transaction rolled back): put it back
                // in front of what arrived meanwhile, and try again after a pause.
                condition.lock()
                queue.insert(contentsOf: batch, at: 0)
                stats.failures += 1
                stats.lastError = "\(error)"
                let giveUp = stopping && stats.failures > 50
                if giveUp {
                    stats.droppedAfterClose += queue.count
                    queue.removeAll()
                }
                condition.unlock()
                if !giveUp {
                    Thread.sleep(forTimeInterval: backoff)
                    backoff = min(backoff * 2, 2)
                }
            }
        }
    }

    /// Writes one batch inside the transaction `pool.write` opened.
    private static func write(_ batch: [Operation], _ db: Database) throws {
        var head: (baseID: Int64, baseHash: String, lastID: Int64, lastHash: String, count: Int)? = nil
        func loadHead() throws -> (baseID: Int64, baseHash: String, lastID: Int64, lastHash: String, count: Int) {
            if let head { return head }
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM audit_head WHERE id = 1") else {
                throw DatabaseError(message: "audit_head row missing")
            }
            return (row["base_id"], row["base_hash"], row["last_id"], row["last_hash"], row["count"])
        }
        for operation in batch {
            switch operation {
            case .journal(let entry):
                try Schema.insertJournal(entry, db)
            case .audit(let record):
                var h = try loadHead()
                let id = h.lastID + 1
                h.lastHash = try Schema.insertAudit(record, id: id, prevHash: h.lastHash, db)
                h.lastID = id
                h.count += 1
                head = h
            case .attendance(let record):
                try Schema.insertAttendance(record, db)
            case .ended(let room, let at):
                try db.execute(
                    sql: "INSERT OR REPLACE INTO room_end (room, ended_at) VALUES (?, ?)",
                    arguments: [room.rawValue, at.milliseconds])
            case .compact(let cutoff):
                try db.execute(
                    sql: """
                        DELETE FROM journal WHERE room IN (SELECT room FROM room_end WHERE ended_at < ?);
                        DELETE FROM room_end WHERE ended_at < ?;
                        """,
                    arguments: [cutoff.milliseconds, cutoff.milliseconds])
            case .pruneAudit(let cutoff):
                var h = try loadHead()
                // The oldest rows up to the first one at or after the cutoff (a prefix, so
                // the rest of the chain stays whole).
                let firstKept =
                    try Int64.fetchOne(
                        db, sql: "SELECT MIN(id) FROM audit WHERE at >= ?", arguments: [cutoff.milliseconds])
                    ?? (h.lastID + 1)
                guard firstKept > h.baseID else { continue }
                let newBase: String =
                    firstKept > h.lastID
                    ? h.lastHash
                    : try String.fetchOne(db, sql: "SELECT prev_hash FROM audit WHERE id = ?", arguments: [firstKept])
                        ?? h.lastHash
                try db.execute(sql: "DELETE FROM audit WHERE id < ?", arguments: [firstKept])
                h.count -= db.changesCount
                h.baseID = firstKept
                h.baseHash = newBase
                head = h
            case .pruneAttendance(let cutoff):
                try db.execute(sql: "DELETE FROM attendance WHERE at < ?", arguments: [cutoff.milliseconds])
            }
        }
        if let h = head {
            try db.execute(
                sql: """
                    UPDATE audit_head SET base_id = ?, base_hash = ?, last_id = ?, last_hash = ?, count = ?
                    WHERE id = 1
                    """,
                arguments: [h.baseID, h.baseHash, h.lastID, h.lastHash, h.count])
        }
    }
}
