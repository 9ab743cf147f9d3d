/// Bounds the event-loop time that joins (`hello` and `resume`) and departures (a joined
/// connection's close, told to the engine) take in one loop iteration.
///
/// A join costs the loop a few hundred microseconds (the token or secret, the engine, the
/// snapshot or replay, the journal entry and records, the presence update to the room). When
/// thousands of clients reconnect at once their resumes arrive together, and run in the
/// iteration that reads them, the loop stalled for seconds and every established room with it
/// (loadtest/RESULTS.md, issue 16 part 2). A departure costs a tenth of that (the engine's
/// `disconnected`, its audit record and journal entry, the presence update), but a network
/// that drops thousands of clients at once delivers all their closes in one or two iterations.
/// Both now run while the iteration's time for them is under `budget`; later ones wait, in
/// arrival order (a departure and the same member's resume stay in order), and run at the end
/// of the following iterations (`RoomHost.iterationEnded`), so the rooms' own traffic goes on
/// in between.
///
/// Pure bookkeeping (no clock of its own): the shell reports how long each one took.
struct JoinPacer {
    /// Loop time joins and departures may take per iteration; zero: no bound (each runs at once).
    let budget: Duration
    /// Time spent on them in the current iteration.
    private(set) var spent: Duration = .zero
    private var waiting: [RoomHost.PacedWork] = []
    private var head = 0

    init(budget: Duration) { self.budget = budget }

    /// Joins and departures waiting for a later iteration.
    var waitingCount: Int { waiting.count - head }

    /// Whether a join or departure that just arrived may run now: nothing waits before it and
    /// the iteration has budget left.
    var admitsNow: Bool { budget == .zero || (waitingCount == 0 && spent < budget) }

    /// A join or departure ran for `duration`.
    mutating func ran(_ duration: Duration) { spent += duration }

    /// Queues a join or departure that may not run now.
    mutating func wait(_ work: RoomHost.PacedWork) { waiting.append(work) }

    /// The oldest waiting join or departure, if the iteration still has budget for it.
    mutating func nextWaiting() -> RoomHost.PacedWork? {
        guard waitingCount > 0, budget == .zero || spent < budget else { return nil }
        let work = waiting[head]
        head += 1
        if head == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            head = 0
        }
        return work
    }

    /// Takes every waiting join and departure, whatever the budget (the server is stopping).
    mutating func takeAll() -> ArraySlice<RoomHost.PacedWork> {
        defer {
            waiting.removeAll()
            head = 0
        }
        return waiting[head...]
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
