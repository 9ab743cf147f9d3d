import HearthCore
import HearthTransport

/// The connections that must say `hello` (or `resume`) within the hello timeout, oldest first.
///
/// Every connection has the same timeout and connections are opened in time order, so the
/// oldest one is always the first due: a tick takes the due ones off the front and hands each
/// to its state machine (which closes it if it is still waiting for its `hello`), instead of
/// looking at every open connection ten times a second. One that joined, or closed, in time is
/// dropped when its turn comes; one whose join is still being verified is `kept` and looked
/// at again on every tick (a refused join returns it to waiting for its hello, and the timeout
/// then closes it). Were the clock to step back, a connection opened after the step would wait
/// behind the ones opened before it, by at most the step.
struct HelloDeadlines {
    private var entries: [(session: SessionID, openedAt: Instant)] = []
    /// Due connections whose join was being verified when they were taken.
    private var kept: [SessionID] = []
    /// Entries before `head` are taken; the array is compacted once they are most of it.
    private var head = 0

    /// Connections opened and not yet taken, and those kept.
    var count: Int { entries.count - head + kept.count }

    mutating func opened(_ session: SessionID, at: Instant) {
        entries.append((session, at))
    }

    /// Takes the connections kept from earlier ticks, then, oldest first, those opened `timeout`
    /// milliseconds or more before `now`.
    mutating func takeDue(now: Instant, timeout: Int64) -> [SessionID] {
        var due: [SessionID] = []
        swap(&due, &kept)
        while head < entries.count, now - entries[head].openedAt >= timeout {
            due.append(entries[head].session)
            head += 1
        }
        if head == entries.count {
            entries.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= entries.count {
            entries.removeFirst(head)
            head = 0
        }
        return due
    }

    /// A due connection whose join is still being verified: taken again on the next tick.
    mutating func keep(_ session: SessionID) {
        kept.append(session)
    }
}
