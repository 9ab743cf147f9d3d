/// One group (room) played by a worker: a facilitator in slot 0 and members in slots 1...
final class Group {
    let local: Int
    let room: String
    let path: UnsafeMutablePointer<CChar>
    var slots: [Int] = []  // worker connection index per slot
    var slotByMember: [String: Int] = [:]
    var admitRequested: Set<String> = []
    var negotiatedConnections = 0
    var ready = false
    var startIntended: UInt64 = 0
    /// Members that read normally (slow consumers excluded): chat recipients per message.
    var recipients = 0
    var controlsSent = 0
    var lastControlIntended: UInt64 = 0
    var spotlightOn = false
    var muteIntended: UInt64 = 0
    var muteRecipientsDone = 0
    var muteComplete = false
    var removeIntended: UInt64 = 0
    var removedSlot = -1
    var removeRecipientsDone = 0
    var removeComplete = false
    /// Reconnect storm: every member of this group drops and resumes (false: an unaffected room).
    var stormed = false

    init(local: Int, room: String, path: UnsafeMutablePointer<CChar>) {
        self.local = local
        self.room = room
        self.path = path
    }
}

/// One client connection (lws thread only).
final class Connection {
    let index: Int
    let group: Group
    let slot: Int
    let groupSize: Int
    let slow: Bool
    let token: String
    var wsi: OpaquePointer?
    var connectIntended: UInt64 = 0
    var established = false
    var closed = false
    var admitted = false
    var memberID = ""
    var closeCode = -1
    var gotRemoved = false
    var stoppedReading = false
    /// Outbound messages, each with LWS_PRE bytes of headroom; `outbox[outHead...]` pending.
    var outbox: [[UInt8]] = []
    var outHead = 0
    var rx: [UInt8] = []
    var lastEventSeq: Int64 = 0
    // Mesh: per peer slot.
    var peerPrimary: [Bool]
    var peerICE: [Int]
    var peerDone: [Bool]
    var peersNegotiated = 0
    var negotiated = false
    // Chat, as a recipient: per sender slot.
    var lastFrom: [UInt32]
    var receivedFrom: [UInt32]
    // Chat, as a sender: last-recipient tracking ring.
    var chatSent: UInt32 = 0
    var ringSeq: [UInt32]
    var ringRemaining: [Int32]
    var ringMax: [UInt64]
    // Steady-phase extras.
    var handUp = false
    var handsSent = 0
    var handUpdates = 0
    var controlUpdates = 0
    // Control burst.
    var mutesSeen = 0
    var muteDone = false
    var removeSeen = false
    // Reconnect storm.
    /// The seat's resume secret from `welcome` (kept for `resume`).
    var resumeSecret = ""
    /// Dropped and not yet resumed: nothing is sent (a reconnected socket sends `resume` first).
    var away = false
    var stormed = false
    var reconnectIntended: UInt64 = 0
    var reconnectAttempts = 0
    /// Logged events still to come in the replay after `resumed` (its `replayed` count).
    var replayLeft = 0
    var resumed = false
    var back = false
    /// Own chat messages at the drop: the last one echoed back to this sender before it, and
    /// the last one sent. Those in between were in doubt (queued, in flight or unprocessed when
    /// the socket vanished); the replay of the sender's own copies says which the server accepted.
    var echoedAtDrop: UInt32 = 0
    var sentAtDrop: UInt32 = 0
    var ownConfirmed: UInt32 = 0
    /// In-doubt messages the server never accepted: not owed to any recipient.
    var droppedWithConnection: UInt32 = 0

    static let ringSize = 1024

    init(index: Int, group: Group, slot: Int, groupSize: Int, slow: Bool, token: String) {
        self.index = index
        self.group = group
        self.slot = slot
        self.groupSize = groupSize
        self.slow = slow
        self.token = token
        peerPrimary = Array(repeating: false, count: groupSize)
        peerICE = Array(repeating: 0, count: groupSize)
        peerDone = Array(repeating: false, count: groupSize)
        lastFrom = Array(repeating: 0, count: groupSize)
        receivedFrom = Array(repeating: 0, count: groupSize)
        ringSeq = Array(repeating: 0, count: Self.ringSize)
        ringRemaining = Array(repeating: 0, count: Self.ringSize)
        ringMax = Array(repeating: 0, count: Self.ringSize)
    }
}

/// Timed actions, open loop: each has its intended time.
enum EventKind: UInt8 {
    case connect, chat, hand, spotlight, muteAll, remove, slowStop, slowResume
    /// Reconnect storm: the drop instant (all stormed connections), a reconnect, a loop probe.
    case storm, reconnect, tick
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
