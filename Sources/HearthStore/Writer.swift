import Foundation
import HearthCore

/// What a store's writer writes: the embedded store's and the shared journal's take the same
/// operations, each writing them its own way (`Store+Writing.swift`, `SharedJournal+Writing.swift`).
enum WriteOperation {
    case journal(JournalEntry)
    case audit(AuditRecord)
    case attendance(AttendanceRecord)
    case ended(RoomID, Instant)
    case compact(Instant)
    case pruneAudit(Instant)
    case pruneAttendance(Instant)
}

/// A store's writer: a queue guarded by one lock (an `NSCondition`, which is a mutex and
/// a condition variable together), and a dedicated thread that drains it with group commit:
/// it hands everything queued to `commit` (one transaction), then repeats. The embedded
/// store (SQLite) and the shared journal (PostgreSQL) each run one, with their own
/// operations and their own `commit`.
///
/// `@unchecked Sendable`: every mutable field is read and written only with `condition`
/// held; `commit` runs on the writer thread only.
final class Writer<Operation>: @unchecked Sendable {
    /// Writes one batch in one transaction; throws if nothing of it was written.
    typealias Commit = ([Operation]) throws -> Void

    private let commit: Commit
    /// The thread's name, as `top -H` and perf show it: at most 15 bytes.
    private let name: String
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

    init(name: String, commitWindow: Double, gate: (@Sendable () -> Void)?, commit: @escaping Commit) {
        self.name = name
        self.commit = commit
        self.commitWindow = commitWindow
        self.gate = gate
    }

    func start() {
        condition.withLock { running = true }
        startNamedThread(name) { [self] in run() }
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
                try commit(batch)
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
}
