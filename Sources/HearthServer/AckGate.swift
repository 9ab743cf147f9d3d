import HearthTransport

/// Holds what must not reach a member before a journal entry is committed, so an acknowledged
/// chat message survives a crash:
/// - the ack of a journaled input;
/// - everything that input sends to the member who sent it (a chat's sender's own copy), so
///   that it goes out with the ack, in one write;
/// - whatever else follows to a member while something of theirs waits here, so a member's
///   messages keep their order and `seq`s increase (refusals, pongs and signalling excepted);
/// - closes from the same input, so a connection is not closed before its ack.
///
/// The store's writer commits concurrently: `RoomHost` reads the committed ticket once per
/// input and passes it in, and calls `release(upTo:)` when the writer reports a commit (via
/// `Store.onCommit`, posted to the event-loop thread) and on every tick. Released items come
/// out in the order they were held.
struct AckGate {
    enum Held {
        case ack(OutboundMessage, SessionID)
        /// A message to a member with an ack waiting: the sender's own copy, or what follows it.
        case message(OutboundMessage, SessionID)
        case close(SessionID, code: UInt16, reason: String)

        var session: SessionID {
            switch self {
            case .ack(_, let s), .message(_, let s), .close(let s, _, _): return s
            }
        }
    }

    /// In the order held; tickets never decrease along it.
    private var held: [(ticket: UInt64, item: Held)] = []
    /// Members with an ack or a message held, and how many each has.
    private var waiting: [SessionID: Int] = [:]

    var isEmpty: Bool { held.isEmpty }
    var count: Int { held.count }

    /// Whether what an input with `ticket` sends must wait: it has a journal entry that is
    /// not committed yet.
    static func mustHold(ticket: UInt64?, committed: UInt64) -> Bool { ticket.map { $0 > committed } ?? false }

    /// Whether `session` has an ack or a message held: what else it is sent must wait behind.
    func isWaiting(_ session: SessionID) -> Bool { !waiting.isEmpty && waiting[session] != nil }

    /// Holds `item` until `ticket` is committed. An item held with a ticket below the last one
    /// held waits for that one too (the order held is the order released).
    mutating func hold(_ item: Held, ticket: UInt64) {
        held.append((max(ticket, held.last?.ticket ?? 0), item))
        switch item {
        case .ack(_, let s), .message(_, let s): waiting[s, default: 0] += 1
        case .close: break
        }
    }

    /// Holds `item` (a message to a member with something held) behind what already waits.
    mutating func holdBehind(_ item: Held) {
        hold(item, ticket: held.last?.ticket ?? 0)
    }

    /// Forgets what waits for `session` (its room moved to another node: never sent).
    mutating func discard(_ session: SessionID) {
        held.removeAll { $0.item.session == session }
        waiting[session] = nil
    }

    /// Removes and returns what waited for tickets up to `committed`, in the order held.
    mutating func release(upTo committed: UInt64) -> [Held] {
        var released: [Held] = []
        for (ticket, item) in held {
            guard ticket <= committed else { break }
            released.append(item)
            switch item {
            case .ack(_, let s), .message(_, let s):
                if let n = waiting[s], n > 1 { waiting[s] = n - 1 } else { waiting[s] = nil }
            case .close: break
            }
        }
        if !released.isEmpty { held.removeFirst(released.count) }
        return released
    }
}
