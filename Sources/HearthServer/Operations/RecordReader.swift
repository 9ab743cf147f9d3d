import Foundation
import HearthStore

// MARK: - The reader thread

/// The operations API's reader: one thread of its own that runs the API's reads of the store,
/// one at a time in arrival order, so the event loop never waits on the disk. Each read first
/// waits until the records queued before its call are committed (the writer's ticket), so it
/// sees everything the rooms had done when the call arrived.
///
/// The thread runs at a lower scheduling priority (nice +10) than the event loop: an export is
/// bulk work (a 50,000-row export is ~16 MB of JSON), and on a busy machine it must give the CPU
/// to the rooms rather than share it evenly with them.
///
/// `@unchecked Sendable`: `jobs` and `started` are touched only with `condition` held.
final class RecordReader: @unchecked Sendable {
    /// How long a read waits for the writer before it reads what is committed (a stalled disk).
    static let commitWait = 2.0
    static let niceness: Int32 = 10

    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var started = false

    func read(store: any RecordStore, after ticket: UInt64, _ job: @escaping @Sendable () -> Void) {
        condition.withLock {
            jobs.append {
                _ = store.waitCommitted(ticket, timeout: Self.commitWait)
                job()
            }
            if !started {
                started = true
                startNamedThread("api-reader") { [self] in run() }
            }
            condition.signal()
        }
    }

    private func run() {
        // On Linux the nice value is per thread, and `who` 0 is the calling thread: this lowers
        // the reader alone.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, Self.niceness)
        while true {
            let job = condition.withLock {
                while jobs.isEmpty { condition.wait() }
                return jobs.removeFirst()
            }
            job()
        }
    }
}

/// Query arguments (`a=1&b=2`, already URL-decoded by the transport); the first of a name wins.
