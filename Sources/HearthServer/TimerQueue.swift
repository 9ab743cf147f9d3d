import HearthCore

/// The engine's timers, due by time. A binary heap with lazy cancellation: a cancelled or
/// rescheduled entry stays in the heap until it surfaces and is found stale.
struct TimerQueue {
    private var due: [TimerID: Instant] = [:]
    private var heap: [(at: Instant, id: TimerID)] = []

    var count: Int { due.count }

    mutating func schedule(_ id: TimerID, at: Instant) {
        due[id] = at
        heap.append((at, id))
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i].at < heap[parent].at else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    mutating func cancel(_ id: TimerID) { due[id] = nil }

    /// Cancels every timer of `room` (the room was dropped from this node).
    mutating func cancelAll(in room: RoomID) { due = due.filter { $0.key.room != room } }

    /// Removes and returns the timers due at or before `now`, earliest first.
    mutating func popDue(_ now: Instant) -> [TimerID] {
        var fired: [TimerID] = []
        while let top = heap.first, top.at <= now {
            popTop()
            if due[top.id] == top.at {
                due[top.id] = nil
                fired.append(top.id)
            }
        }
        return fired
    }

    private mutating func popTop() {
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1
            let r = l + 1
            var smallest = i
            if l < heap.count && heap[l].at < heap[smallest].at { smallest = l }
            if r < heap.count && heap[r].at < heap[smallest].at { smallest = r }
            if smallest == i { return }
            heap.swapAt(i, smallest)
            i = smallest
        }
    }
}
