/// Bounds the event-loop time that joins (`hello` and `resume`) take in one loop iteration.
///
/// A join costs the loop a few hundred microseconds (the token or secret, the engine, the
/// snapshot or replay, the journal entry and records, the presence update to the room). When
/// thousands of clients reconnect at once their resumes arrive together, and run in the
/// iteration that reads them, the loop stalled for seconds and every established room with it
/// (loadtest/RESULTS.md, issue 16 part 2). Joins now run while the iteration's join time is
/// under `budget`; later ones wait, in arrival order, and run at the end of the following
/// iterations (`RoomHost.iterationEnded`), so the rooms' own traffic goes on in between.
///
/// Pure bookkeeping (no clock of its own): the shell reports how long each join took.
struct JoinPacer {
    /// Loop time joins may take per iteration; zero: no bound (every join runs at once).
    let budget: Duration
    /// Join time spent in the current iteration.
    private(set) var spent: Duration = .zero
    private var waiting: [RoomHost.PendingJoin] = []
    private var head = 0

    init(budget: Duration) { self.budget = budget }

    /// Joins waiting for a later iteration.
    var waitingCount: Int { waiting.count - head }

    /// Whether a join that just arrived may run now: nothing waits before it and the iteration
    /// has budget left.
    var admitsNow: Bool { budget == .zero || (waitingCount == 0 && spent < budget) }

    /// A join ran for `duration`.
    mutating func ran(_ duration: Duration) { spent += duration }

    /// Queues a join that may not run now.
    mutating func wait(_ join: RoomHost.PendingJoin) { waiting.append(join) }

    /// The oldest waiting join, if the iteration still has budget for it.
    mutating func nextWaiting() -> RoomHost.PendingJoin? {
        guard waitingCount > 0, budget == .zero || spent < budget else { return nil }
        let join = waiting[head]
        head += 1
        if head == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            head = 0
        }
        return join
    }

    /// The iteration is over: the next one has its whole budget.
    mutating func iterationEnded() {
        spent = .zero
        if head > 1024 && head * 2 > waiting.count {
            waiting.removeFirst(head)
            head = 0
        }
    }
}
