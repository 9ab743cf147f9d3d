import CLws

/// Where a client's connection is: no socket, TCP connecting, TLS handshake, waiting for the
/// upgrade's response, open.
enum LinkState { case idle, connecting, handshaking, upgrading, open }

/// One client (its worker's thread only).
final class LoadClient {
    let index: Int
    let group: LoadGroup
    let slot: Int
    let groupSize: Int
    let slow: Bool
    let token: String
    /// The connection (`LoadWorker+Link`): its state, socket, TLS, libev watcher, the upgrade's
    /// key and response so far, the frame reader, and the frames not yet written
    /// (`out[outHead...]`; `writeBlocked` while the socket takes no more).
    var link = LinkState.idle
    var fd: Int32 = -1
    var ssl: OpaquePointer?
    let watcher: UnsafeMutablePointer<clws_sock>
    var upgradeKey = ""
    var responseHead: [UInt8] = []
    var reader = WebSocketFrameReader()
    var out: [UInt8] = []
    var outHead = 0
    var writeBlocked = false
    /// The last read of this readiness left the socket empty: no read until the next one.
    var drained = false
    var dirty = false
    var openDeadline: UInt64 = 0
    /// The dropped connection's TLS session, offered once by the storm's reconnect (with
    /// `--storm-tls-resume 1`).
    var tlsSession: OpaquePointer?
    var isOpen: Bool { link == .open }
    var connectIntended: UInt64 = 0
    var established = false
    var closed = false
    var admitted = false
    var memberID = ""
    var closeCode = -1
    var gotRemoved = false
    var stoppedReading = false
    var lastEventSeq: Int64 = 0
    // Mesh: per peer slot.
    var peerPrimary: [Bool]
    var peerICE: [Int]
    var peerDone: [Bool]
    var peersNegotiated = 0
    var negotiated = false
    // Breakouts.
    /// The room this client is in as the server told it (`moved`): a breakout's number (`b3`:
    /// 3), 0 for the main room.
    var room: UInt32 = 0
    /// The breakouts round it plays (1: in its breakout, 2: back in the main room; 0: before)
    /// and the last round it finished renegotiating.
    var boRound = 0
    var boDoneRound = 0
    /// Breakout chat: sent, and received per sender slot (only from its own breakout).
    var bchatSent = 0
    var bchatFrom: [Int]
    /// Per peer slot: offered to it this round.
    var offered: [Bool]
    // Chat, as a recipient: per sender slot.
    var lastFrom: [UInt32]
    var receivedFrom: [UInt32]
    // Chat, as a sender: last-recipient tracking ring.
    var chatSent: UInt32 = 0
    var ringSeq: [UInt32]
    var ringRemaining: [Int32]
    var ringMax: [UInt64]
    /// The intended send time of each chat in the ring until its `ack` arrives (0 after).
    var ringAckDue: [UInt64]
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
    /// When the client was back (monotonic ns; 0 before): chat slots intended between the drop
    /// and this instant are skipped, not sent late.
    var backAt: UInt64 = 0
    /// Own chat messages at the drop: the last one echoed back to this sender before it, and
    /// the last one sent. Those in between were in doubt (queued, in flight or unprocessed when
    /// the socket vanished); the replay of the sender's own copies says which the server accepted.
    var echoedAtDrop: UInt32 = 0
    var sentAtDrop: UInt32 = 0
    var ownConfirmed: UInt32 = 0
    /// In-doubt messages the server never accepted: not owed to any recipient.
    var droppedWithConnection: UInt32 = 0

    static let ringSize = 1024

    init(index: Int, group: LoadGroup, slot: Int, groupSize: Int, slow: Bool, token: String) {
        self.index = index
        self.group = group
        self.slot = slot
        self.groupSize = groupSize
        self.slow = slow
        self.token = token
        peerPrimary = Array(repeating: false, count: groupSize)
        peerICE = Array(repeating: 0, count: groupSize)
        peerDone = Array(repeating: false, count: groupSize)
        bchatFrom = Array(repeating: 0, count: groupSize)
        offered = Array(repeating: false, count: groupSize)
        lastFrom = Array(repeating: 0, count: groupSize)
        receivedFrom = Array(repeating: 0, count: groupSize)
        ringSeq = Array(repeating: 0, count: Self.ringSize)
        ringRemaining = Array(repeating: 0, count: Self.ringSize)
        ringMax = Array(repeating: 0, count: Self.ringSize)
        ringAckDue = Array(repeating: 0, count: Self.ringSize)
        watcher = .allocate(capacity: 1)
        watcher.initialize(to: clws_sock())
    }

    deinit {
        watcher.deallocate()
        if let tlsSession { SSL_SESSION_free(tlsSession) }
    }
}
