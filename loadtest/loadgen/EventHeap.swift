/// Timed actions, open loop: each has its intended time.
enum EventKind: UInt8 {
    case connect, chat, hand, spotlight, muteAll, remove, slowStop, slowResume
    /// Reconnect storm: the drop instant (all stormed connections), a reconnect, a loop probe.
    case storm, reconnect, tick
    /// Breakouts: a facilitator plans and opens its group's breakouts.
    case breakoutsOpen
    /// A connection not open by its deadline (`LoadClient.openDeadline`) is given up.
    case openDeadline
}

struct TimedEvent {
    var at: UInt64
    var kind: EventKind
    var target: Int32
}

/// A binary min-heap of timed events.
struct EventHeap {
    private(set) var items: [TimedEvent] = []

    var isEmpty: Bool { items.isEmpty }
    var top: TimedEvent? { items.first }

    mutating func push(_ e: TimedEvent) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if items[p].at <= items[i].at { break }
            items.swapAt(p, i)
            i = p
        }
    }

    mutating func pop() -> TimedEvent? {
        guard !items.isEmpty else { return nil }
        let first = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1
                let r = l + 1
                var m = i
                if l < items.count && items[l].at < items[m].at { m = l }
                if r < items.count && items[r].at < items[m].at { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return first
    }

    mutating func removeAll() { items.removeAll() }

    /// Drops the events `predicate` selects (a sorted array is a valid heap).
    mutating func removeAll(where predicate: (TimedEvent) -> Bool) {
        items.removeAll(where: predicate)
        items.sort { $0.at < $1.at }
    }
}
