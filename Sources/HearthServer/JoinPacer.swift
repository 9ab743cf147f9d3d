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
/// Both now run while the iteration's time for them is under `budget`; later ones wait and
/// run at the end of the following iterations (`RoomHost.iterationEnded`), so the rooms' own
/// traffic goes on in between. Waiting joins go first, each kind in arrival order: behind
/// thousands of waiting departures, resumes waited for all of them (in a 10k storm all back
/// came 0.7–3.3 s later than without pacing departures, loadtest/RESULTS.md). A member's
/// resume may so overtake their own departure, which the engine then ignores (the seat has a
/// new connection).
///
/// Pure bookkeeping (no clock of its own): the shell reports how long each one took.
struct JoinPacer {
    /// Loop time joins and departures may take per iteration; zero: no bound (each runs at once).
    let budget: Duration
    /// Time spent on them in the current iteration.
    private(set) var spent: Duration = .zero
    private var joins = FIFO<RoomHost.PendingJoin>()
    private var departures = FIFO<RoomHost.Departure>()

    init(budget: Duration) { self.budget = budget }

    /// Joins and departures waiting for a later iteration.
    var waitingCount: Int { joins.count + departures.count }

    /// Whether a join that just arrived may run now: no join waits before it and the iteration
    /// has budget left (waiting departures do not hold it back).
    var admitsJoinNow: Bool { budget == .zero || (joins.isEmpty && spent < budget) }

    /// Whether a departure that just arrived may run now: nothing waits and the iteration has
    /// budget left.
    var admitsDepartureNow: Bool { budget == .zero || (waitingCount == 0 && spent < budget) }

    /// A join or departure ran for `duration`.
    mutating func ran(_ duration: Duration) { spent += duration }

    /// Queues a join or departure that may not run now.
    mutating func wait(_ work: RoomHost.PacedWork) {
        switch work {
        case .join(let join): joins.push(join)
        case .departure(let departure): departures.push(departure)
        }
    }

    /// The next waiting join (the oldest), else the oldest waiting departure, if the iteration
    /// still has budget for it.
    mutating func nextWaiting() -> RoomHost.PacedWork? {
        guard budget == .zero || spent < budget else { return nil }
        if let join = joins.pop() { return .join(join) }
        return departures.pop().map { .departure($0) }
    }

    /// Takes every waiting join and departure, whatever the budget (the server is stopping).
    mutating func takeAll() -> [RoomHost.PacedWork] {
        joins.takeAll().map { .join($0) } + departures.takeAll().map { .departure($0) }
    }

    /// The iteration is over: the next one has its whole budget.
    mutating func iterationEnded() {
        spent = .zero
        joins.compact()
        departures.compact()
    }
}

/// A first-in first-out queue on an array whose head moves (no O(n) removal per pop).
private struct FIFO<Element> {
    private var items: [Element] = []
    private var head = 0

    var count: Int { items.count - head }
    var isEmpty: Bool { head == items.count }

    mutating func push(_ element: Element) { items.append(element) }

    mutating func pop() -> Element? {
        guard head < items.count else { return nil }
        let element = items[head]
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        }
        return element
    }

    mutating func takeAll() -> ArraySlice<Element> {
        defer {
            items.removeAll()
            head = 0
        }
        return items[head...]
    }

    /// Drops the popped elements' slots once they are most of the array.
    mutating func compact() {
        if head > 1024 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
    }
}
