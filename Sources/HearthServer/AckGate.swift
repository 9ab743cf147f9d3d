import HearthTransport

/// Holds the acks of journaled inputs until their journal entries are committed, so an
/// acknowledged chat message survives a crash; closes from the same input wait with them,
/// so a connection is not closed before its ack.
///
/// The store's writer commits concurrently: `RoomHost` reads the committed ticket once per
/// input and passes it in, and calls `release(upTo:)` when the writer reports a commit (via
/// `Store.onCommit`, posted to the event-loop thread) and on every tick. Released items come
/// out in the order they were held.
struct AckGate {
    enum Held {
        case ack(OutboundMessage, SessionID)
        case close(SessionID, code: UInt16, reason: String)
    }

    private var held: [(ticket: UInt64, item: Held)] = []

    var isEmpty: Bool { held.isEmpty }
    var count: Int { held.count }

    /// Whether what an input with `ticket` sends must wait: it has a journal entry that is
    /// not committed yet.
    static func mustHold(ticket: UInt64?, committed: UInt64) -> Bool { ticket.map { $0 > committed } ?? false }

    mutating func hold(_ item: Held, ticket: UInt64) { held.append((ticket, item)) }

    /// Forgets what waits for `session` (its room moved to another node: never sent).
    mutating func discard(_ session: SessionID) {
        held.removeAll {
            switch $0.item {
            case .ack(_, let s), .close(let s, _, _): return s == session
            }
        }
    }

    /// Removes and returns what waited for tickets up to `committed`, in the order held.
    mutating func release(upTo committed: UInt64) -> [Held] {
        var released: [Held] = []
        for (ticket, item) in held {
            guard ticket <= committed else { break }
            released.append(item)
        }
        if !released.isEmpty { held.removeFirst(released.count) }
        return released
    }
}
