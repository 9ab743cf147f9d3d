/// State of one WebSocket session. Owned by its worker, lws thread only.
///
/// `queue` and `closeRequest` are read several times for every message that goes out: release
/// builds leave out the runtime's exclusivity checks on them, as on the worker's session table
/// and dirty lists (see `Worker.sessions`).
final class Session {
    let id: SessionID
    let wsi: OpaquePointer
    /// FIFO of outbound messages: `queue[head...]` is pending.
    #if DEBUG
        var queue: [OutboundMessage] = []
    #else
        @exclusivity(unchecked) var queue: [OutboundMessage] = []
    #endif
    var head = 0
    var queuedBytes = 0
    /// Reassembly buffer for a fragmented inbound message, and how many callbacks it took.
    var rx: [UInt8] = []
    var rxPieces = 0
    /// Set once a close was decided: flush `queue`, then close with this.
    #if DEBUG
        var closeRequest: (code: UInt16, reason: String)?
    #else
        @exclusivity(unchecked) var closeRequest: (code: UInt16, reason: String)?
    #endif
    /// Set once the close was handed to lws (its close frame, then the wait for the peer's).
    var closeHandedOver = false
    /// Set once the connection is being torn down: inbound data is ignored.
    var discardInput = false
    /// Keepalive: when the peer was last heard from (any frame or pong), when our ping went
    /// out (nil: none outstanding), and whether a ping waits for the next WRITEABLE.
    var lastHeard: UInt64
    var pingSentAt: UInt64?
    var pingDue = false
    /// In the worker's dirty list (output to flush at the end of this loop iteration); cleared
    /// when the connection closes.
    var dirty = false
    var open = true

    init(id: SessionID, wsi: OpaquePointer, now: UInt64) {
        self.id = id
        self.wsi = wsi
        self.lastHeard = now
    }

    var queuedCount: Int { queue.count - head }

    func popFront(_ n: Int) {
        for i in head..<(head + n) { queuedBytes -= queue[i].bytes.count }
        head += n
        if head == queue.count {
            queue.removeAll(keepingCapacity: queue.capacity <= 64)
            head = 0
        } else if head >= 256, head * 2 >= queue.count {
            queue.removeFirst(head)
            head = 0
        }
    }

    func dropQueue() {
        queue = []
        head = 0
        queuedBytes = 0
    }
}
