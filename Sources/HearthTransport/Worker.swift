import CLws
import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// State of one WebSocket session. Owned by its worker, lws thread only.
final class Session {
    let id: SessionID
    let wsi: OpaquePointer
    /// FIFO of outbound messages: `queue[head...]` is pending.
    var queue: [OutboundMessage] = []
    var head = 0
    var queuedBytes = 0
    /// Reassembly buffer for a fragmented inbound message, and how many callbacks it took.
    var rx: [UInt8] = []
    var rxPieces = 0
    /// Set once a close was decided: flush `queue`, then close with this.
    var closeRequest: (code: UInt16, reason: String)?
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

/// One plain HTTP request/response in flight (lws thread only).
final class HTTPExchange {
    let wsi: OpaquePointer
    var request: HTTPRequest
    var waitingForBody: Bool
    /// Carried in an HTTP/2 stream (no chunked framing, no `connection` header).
    let isH2: Bool
    /// The delegate deferred its answer: waiting for `Transport.respond(to:with:)`.
    var deferred = false
    var responding = false
    /// The status line and headers still to write (a deferred response: they go out from
    /// HTTP_WRITEABLE, not from the callback that received the request).
    var pendingHeaders: (status: Int, contentType: String, length: Int?)?
    /// Body bytes to write, from `offset`; refilled from `stream` when it has one.
    var response: [UInt8] = []
    var offset = 0
    var stream: HTTPBodyStream?
    var streamEnded = false
    /// HTTP/1.1 `Transfer-Encoding: chunked` framing of a streamed body.
    var chunked = false
    var closeAfterResponse = false
    /// When the response last moved (deferred, answered, a piece written), in ms (`Worker.nowMs`).
    var lastProgress: UInt64 = 0

    init(wsi: OpaquePointer, request: HTTPRequest, waitingForBody: Bool, isH2: Bool) {
        self.wsi = wsi
        self.request = request
        self.waitingForBody = waitingForBody
        self.isH2 = isH2
    }
}

/// One libwebsockets context and the thread that services it.
///
/// Everything here except `startup`/`startupFailure` and `inbox` is confined
/// to the worker's thread. Reached from lws callbacks through the context
/// user pointer.
final class Worker {
    /// Largest coalesced frame written in one `lws_write`.
    static let batchLimit = 65_536
    /// How long a graceful stop waits for sessions to close.
    static let stopGraceMicroseconds: Int64 = 1_500_000
    /// Hard timeout after a close was requested (peer that never reads).
    static let closeTimeoutSeconds: Int32 = 5

    let index: UInt64
    let transport: Transport
    private(set) var delegate: (any TransportDelegate)?
    let configuration: TransportConfiguration
    let logger: Logger
    let inbox: WorkerInbox

    /// Signalled once the context is created (or failed).
    let startup = DispatchSemaphore(value: 0)
    let startupFailure = Mutex<String?>(nil)

    // lws thread state
    var sessions: [UInt64: Session] = [:]
    private var exchanges: [UInt64: HTTPExchange] = [:]
    var counters = TransportCounters()
    private var nextSerial: UInt64 = 1
    private var nextExchange: UInt64 = 1
    private var context: OpaquePointer?
    private var loop: UnsafeMutableRawPointer?
    private enum State { case starting, running, stopping, tearingDown }
    private var state = State.starting
    private let pre = Int(clws_pre())
    private var scratch: UnsafeMutableRawPointer
    private var scratchCapacity: Int
    private let tickTimer: UnsafeMutablePointer<clws_timer>
    private let stopTimer: UnsafeMutablePointer<clws_timer>
    /// Sessions given output during this loop iteration; written by `flushDirty` from the
    /// loop's prepare watcher, once per iteration.
    private var dirty: [Session] = []
    /// The list `flushDirty` works through (swapped with `dirty`, so neither is reallocated).
    private var flushing: [Session] = []
    private let prepare: UnsafeMutablePointer<clws_prepare>

    private static let exchangeTag: UInt64 = 1 << 63

    init(index: UInt64, transport: Transport, delegate: any TransportDelegate) {
        precondition(index < 16)
        self.index = index
        self.transport = transport
        self.delegate = delegate
        self.configuration = transport.configuration
        self.logger = transport.logger
        self.inbox = transport.inbox
        scratchCapacity = Int(clws_pre()) + Worker.batchLimit + 4096
        scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchCapacity, alignment: 16)
        tickTimer = .allocate(capacity: 1)
        tickTimer.initialize(to: clws_timer())
        stopTimer = .allocate(capacity: 1)
        stopTimer.initialize(to: clws_timer())
        prepare = .allocate(capacity: 1)
        prepare.initialize(to: clws_prepare())
    }

    deinit {
        scratch.deallocate()
        tickTimer.deallocate()
        stopTimer.deallocate()
        prepare.deallocate()
    }

    static func from(_ wsi: OpaquePointer) -> Worker? {
        guard let ctx = lws_get_context(wsi), let user = lws_context_user(ctx) else { return nil }
        return Unmanaged<Worker>.fromOpaque(user).takeUnretainedValue()
    }

    // MARK: - Thread body

    func run() {
        transport.setLoopThread(pthread_self())
        lws_set_log_level(configuration.libraryLogMask, hearthLwsLogEmit)

        var cstrings: [UnsafeMutablePointer<CChar>] = []
        func cs(_ s: String) -> UnsafePointer<CChar> {
            let p = strdup(s)!
            cstrings.append(p)
            return UnsafePointer(p)
        }
        defer { for p in cstrings { free(p) } }

        // Protocols: [0] "http" (plain HTTP, h1 and h2), [1] "hearth.v1"
        // (WebSocket, also the default for upgrades without a subprotocol).
        let protocols = UnsafeMutablePointer<lws_protocols>.allocate(capacity: 3)
        protocols.initialize(repeating: lws_protocols(), count: 3)
        defer { protocols.deallocate() }
        protocols[0].name = cs("http")
        protocols[0].callback = hearthLwsCallback
        protocols[0].per_session_data_size = MemoryLayout<UInt64>.size
        protocols[1].name = cs("hearth.v1")
        protocols[1].callback = hearthLwsCallback
        protocols[1].per_session_data_size = MemoryLayout<UInt64>.size
        // lws allocates this per connection: 1 KiB instead of 4 takes 3 KiB off every idle
        // connection; longer messages arrive in more pieces, which `receive` reassembles.
        protocols[1].rx_buffer_size = 1024
        protocols[1].tx_packet_size = Worker.batchLimit

        let pvoDefault = UnsafeMutablePointer<lws_protocol_vhost_options>.allocate(capacity: 1)
        pvoDefault.initialize(to: lws_protocol_vhost_options())
        pvoDefault.pointee.name = cs("default")
        pvoDefault.pointee.value = cs("1")
        let pvo = UnsafeMutablePointer<lws_protocol_vhost_options>.allocate(capacity: 1)
        pvo.initialize(to: lws_protocol_vhost_options())
        pvo.pointee.name = cs("hearth.v1")
        pvo.pointee.value = cs("")
        pvo.pointee.options = UnsafePointer(pvoDefault)
        defer { pvo.deallocate(); pvoDefault.deallocate() }

        // lws's own keepalive is switched off (a zero hangup disables its validity timer):
        // in 4.1.6 every reschedule of a connection's validity timer is an insertion into one
        // sorted list of all timers, O(connections), and at 10,000 idle connections that
        // alone took 40-48% of a core (perf: lws_dll2_add_sorted). Pings and hang-ups are
        // done here instead, by a scan on the tick (see `keepalive`).
        let retry = UnsafeMutablePointer<lws_retry_bo_t>.allocate(capacity: 1)
        retry.initialize(to: lws_retry_bo_t())
        retry.pointee.secs_since_valid_ping = 0
        retry.pointee.secs_since_valid_hangup = 0
        defer { retry.deallocate() }

        // lws dlopen()s its libev glue from this plugin (Debian package
        // libwebsockets-evlib-ev); without it context creation fails.
        guard let evlib = dlopen("libwebsockets-evlib_ev.so", RTLD_LAZY) else {
            failStartup("cannot load libwebsockets-evlib_ev.so (install libwebsockets-evlib-ev and libev4)")
            return
        }
        dlclose(evlib)
        guard let loop = clws_ev_loop_new() else {
            failStartup("cannot create the libev loop")
            return
        }
        self.loop = loop
        let foreignLoops = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 1)
        foreignLoops.initialize(to: loop)
        defer { foreignLoops.deallocate() }

        var info = lws_context_creation_info()
        info.iface = cs(configuration.host)
        info.port = Int32(configuration.port)
        info.protocols = UnsafePointer(protocols)
        info.pvo = UnsafePointer(pvo)
        info.vhost_name = cs("hearth")
        info.server_string = cs("hearth")
        info.ssl_cert_filepath = cs(configuration.certificatePath)
        info.ssl_private_key_filepath = cs(configuration.privateKeyPath)
        info.ssl_options_set = CLWS_SSL_OP_NO_OLD_TLS
        info.ssl_cipher_list = cs(configuration.tls12Ciphers)
        // HTTP/1.1 only: the request target is checked as sent (see RequestLine.swift), which
        // HTTP/2's compressed headers would hide.
        info.alpn = cs("http/1.1")
        info.options =
            CLWS_OPT_DO_SSL_GLOBAL_INIT | CLWS_OPT_VALIDATE_UTF8 | CLWS_OPT_LIBEV
            | CLWS_OPT_FAIL_UPON_UNABLE_TO_BIND
        // lws 4.1.6 with IPv6 enabled parses an IPv4 literal iface into the
        // wrong field of the sockaddr_in6 and binds to [::] (every interface).
        // IPv4 literals therefore get an IPv4-only vhost.
        var v4 = in_addr()
        if inet_pton(AF_INET, configuration.host, &v4) == 1 { info.options |= CLWS_OPT_DISABLE_IPV6 }
        info.retry_and_idle_policy = UnsafePointer(retry)
        info.foreign_loops = foreignLoops
        info.user = Unmanaged.passUnretained(self).toOpaque()

        guard let ctx = lws_create_context(&info) else {
            clws_ev_loop_destroy(loop)
            self.loop = nil
            failStartup(
                "lws_create_context returned NULL (bad certificate/key, or cannot listen on "
                    + "\(configuration.host):\(configuration.port); see the hearth.lws log)")
            return
        }
        context = ctx

        // The evlib plugin is dlopen()ed by lws: check it really is in.
        let plugin = dlopen("libwebsockets-evlib_ev.so", RTLD_NOLOAD | RTLD_LAZY)
        if let plugin { dlclose(plugin) }
        let backend = String(cString: clws_ev_backend_name(loop))

        state = .running
        inbox.attach(context: ctx)
        clws_prepare_start(loop, prepare, hearthPrepareCallback, Unmanaged.passUnretained(self).toOpaque())
        schedule(tickTimer, after: Int64(configuration.tickMilliseconds) * 1000)
        logger.info(
            "transport listening",
            metadata: [
                "host": "\(configuration.host)", "port": "\(configuration.port)",
                "eventLoop": "\(plugin != nil ? "libev" : "libev plugin NOT loaded")/\(backend)",
            ])
        startup.signal()

        clws_ev_run(loop)

        // The loop was broken by a stop: tear down on this thread.
        state = .tearingDown
        clws_prepare_stop(loop, prepare)
        dirty.removeAll()
        flushing.removeAll()
        inbox.detach()
        lws_sul_cancel(sul(tickTimer))
        lws_sul_cancel(sul(stopTimer))
        lws_context_destroy(ctx)
        context = nil
        for (_, s) in sessions {
            counters.sessionsClosed += 1
            delegate?.transportDidClose(s.id, transport: transport)
        }
        sessions.removeAll()
        exchanges.removeAll()
        clws_ev_loop_destroy(loop)
        self.loop = nil
        logger.info(
            "transport stopped",
            metadata: [
                "sessionsOpened": "\(counters.sessionsOpened)", "sessionsClosed": "\(counters.sessionsClosed)",
            ])
        delegate = nil
    }

    private func failStartup(_ message: String) {
        startupFailure.withLock { $0 = message }
        logger.error("transport failed to start", metadata: ["reason": "\(message)"])
        inbox.detach()
        startup.signal()
    }

    // MARK: - Timers, inbox, stop

    private func sul(_ t: UnsafeMutablePointer<clws_timer>) -> UnsafeMutablePointer<lws_sorted_usec_list_t> {
        UnsafeMutableRawPointer(t).assumingMemoryBound(to: lws_sorted_usec_list_t.self)
    }

    private func schedule(_ t: UnsafeMutablePointer<clws_timer>, after us: Int64) {
        guard let context else { return }
        t.pointee.owner = Unmanaged.passUnretained(self).toOpaque()
        lws_sul_schedule(context, 0, sul(t), hearthTimerCallback, us)
    }

    func timerFired(_ t: UnsafeMutablePointer<clws_timer>) {
        if t == tickTimer {
            guard state == .running || state == .stopping else { return }
            schedule(tickTimer, after: Int64(configuration.tickMilliseconds) * 1000)
            keepalive()
            keepWaitingHTTP2Up()
            delegate?.transportTick(transport)
        } else if t == stopTimer {
            if state == .stopping {
                logger.info("stop grace period over", metadata: ["openSessions": "\(sessions.count)"])
                breakLoop()
            }
        }
    }

    private func drainInbox() {
        let (jobs, stop) = inbox.drain()
        for job in jobs where state == .running || state == .stopping {
            job(transport)
        }
        if stop { beginStop() }
    }

    private func beginStop() {
        guard state == .running else { return }
        state = .stopping
        logger.info("transport stopping", metadata: ["openSessions": "\(sessions.count)"])
        delegate?.transportWillStop(transport)
        for s in sessions.values { startClose(s, code: 1001, reason: "server restarting") }
        if sessions.isEmpty {
            breakLoop()
        } else {
            schedule(stopTimer, after: Worker.stopGraceMicroseconds)
        }
    }

    private func breakLoop() {
        if let loop { clws_ev_break_all(loop) }
    }

    // MARK: - Callback dispatch

    func callback(
        _ wsi: OpaquePointer, _ reason: lws_callback_reasons, _ user: UnsafeMutableRawPointer?,
        _ input: UnsafeMutableRawPointer?, _ len: Int
    ) -> Int32 {
        switch reason {
        case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
            drainInbox()
            return 0
        case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
            return confirmUpgrade(wsi, input)
        case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
            // Backstop for upgrade paths that skip CONFIRM_UPGRADE (ws over h2).
            if originAllowed(wsi) { return 0 }
            counters.originRejections += 1
            logger.info("websocket upgrade refused: origin not allowed")
            return 1
        case LWS_CALLBACK_ESTABLISHED:
            return established(wsi, user)
        case LWS_CALLBACK_RECEIVE:
            return receive(wsi, user, input, len)
        case LWS_CALLBACK_RECEIVE_PONG:
            if let s = session(user) { heard(s) }
            return 0
        case LWS_CALLBACK_SERVER_WRITEABLE:
            return writeable(wsi, user)
        case LWS_CALLBACK_CLOSED:
            closed(user)
            return 0
        case LWS_CALLBACK_HTTP:
            return httpBegin(wsi, user)
        case LWS_CALLBACK_HTTP_BODY:
            return httpBody(user, input, len)
        case LWS_CALLBACK_HTTP_BODY_COMPLETION:
            return httpBodyComplete(wsi, user)
        case LWS_CALLBACK_HTTP_WRITEABLE:
            return httpWriteable(wsi, user)
        case LWS_CALLBACK_CLOSED_HTTP:
            httpClosed(user)
            return lws_callback_http_dummy(wsi, reason, user, input, len)
        case LWS_CALLBACK_WSI_DESTROY:
            // Last notification for any wsi (user space intact): if CLOSED was
            // never delivered for a session, report it now (exactly once).
            closed(user)
            httpClosed(user)
            return lws_callback_http_dummy(wsi, reason, user, input, len)
        default:
            return lws_callback_http_dummy(wsi, reason, user, input, len)
        }
    }

    // MARK: - WebSocket

    private func session(_ user: UnsafeMutableRawPointer?) -> Session? {
        guard let user else { return nil }
        let id = user.load(as: UInt64.self)
        guard id != 0, id & Worker.exchangeTag == 0 else { return nil }
        return sessions[id]
    }

    private func established(_ wsi: OpaquePointer, _ user: UnsafeMutableRawPointer?) -> Int32 {
        guard state == .running, let user else { return -1 }
        let previous = user.load(as: UInt64.self)
        if previous & Worker.exchangeTag != 0 { exchanges[previous] = nil }
        let raw = (nextSerial << 4) | index
        nextSerial += 1
        user.storeBytes(of: raw, as: UInt64.self)
        let s = Session(id: SessionID(rawValue: raw), wsi: wsi, now: Worker.nowMs())
        sessions[raw] = s
        if configuration.socketSendBufferBytes > 0 {
            var size = Int32(clamping: configuration.socketSendBufferBytes)
            _ = setsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        counters.sessionsOpened += 1
        // The path as sent; empty (an unknown endpoint) when it could not be read.
        let line = RequestLine.take(wsi)
        if line == nil { counters.unreadableRequestLines += 1 }
        let path = line.map { String($0.path) } ?? ""
        let peer = clientAddress(wsi)
        logger.debug("session open", metadata: ["session": "\(s.id)", "peer": "\(peer)"])
        delegate?.transportDidOpen(s.id, path: path, peerAddress: peer, transport: transport)
        return 0
    }

    private func receive(
        _ wsi: OpaquePointer, _ user: UnsafeMutableRawPointer?,
        _ input: UnsafeMutableRawPointer?, _ len: Int
    ) -> Int32 {
        guard let s = session(user) else { return -1 }
        if s.discardInput { return 0 }
        heard(s)
        if lws_frame_is_binary(wsi) != 0 {
            counters.binaryCloses += 1
            logger.info("closing session: binary frame", metadata: ["session": "\(s.id)"])
            refuseInput(s, code: 1003, reason: "binary frames not supported")
            return 0
        }
        let remaining = Int(lws_remaining_packet_payload(wsi))
        if s.rx.count + len + remaining > configuration.maxMessageBytes {
            counters.oversizeCloses += 1
            logger.info(
                "closing session: message too big",
                metadata: [
                    "session": "\(s.id)", "atLeast": "\(s.rx.count + len + remaining)",
                ])
            refuseInput(s, code: 1009, reason: "message too big")
            return 0
        }
        let isFinal = lws_is_final_fragment(wsi) != 0
        if isFinal && s.rx.isEmpty && s.rxPieces == 0 {
            deliver(s, UnsafeRawBufferPointer(start: input, count: len))
        } else {
            // Empty fragments carry no bytes toward the size limit; cap their number instead.
            s.rxPieces += 1
            if s.rxPieces > configuration.maxFragmentsPerMessage {
                counters.oversizeCloses += 1
                logger.info("closing session: too many fragments", metadata: ["session": "\(s.id)"])
                refuseInput(s, code: 1009, reason: "too many fragments")
                return 0
            }
            if len > 0, let input { s.rx.append(contentsOf: UnsafeRawBufferPointer(start: input, count: len)) }
            if isFinal {
                s.rxPieces = 0
                var message: [UInt8] = []
                swap(&message, &s.rx)
                message.withUnsafeBytes { deliver(s, $0) }
            }
        }
        return 0
    }

    private func deliver(_ s: Session, _ text: UnsafeRawBufferPointer) {
        counters.messagesIn += 1
        counters.bytesIn += UInt64(text.count)
        delegate?.transportDidReceive(s.id, text: text, transport: transport)
    }

    /// Refuses a connection's input from inside its receive callback: its queue is dropped and
    /// the connection closes (``startClose(_:code:reason:)``). Returning -1 here instead closed
    /// the socket at once, while the peer was often still sending the rest of the refused
    /// message: the unread bytes made the kernel answer with a reset, and the peer never saw
    /// the close code.
    private func refuseInput(_ s: Session, code: UInt16, reason: String) {
        s.dropQueue()
        startClose(s, code: code, reason: reason)
    }

    private func setCloseReason(_ wsi: OpaquePointer, code: UInt16, reason: String) {
        var bytes = Array(reason.utf8.prefix(123))
        bytes.withUnsafeMutableBufferPointer { b in
            lws_close_reason(wsi, lws_close_status(rawValue: UInt32(code)), b.baseAddress, b.count)
        }
    }

    // MARK: - Keepalive

    /// Milliseconds on the monotonic clock.
    static func nowMs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }

    /// Anything from the peer (a frame or a pong) proves it is there.
    private func heard(_ s: Session) {
        s.lastHeard = Worker.nowMs()
        s.pingSentAt = nil
    }

    /// Pings a session silent for `pingIntervalSeconds`; hangs up one that has not answered
    /// within `hangupSeconds` of last being heard. One pass over the sessions per tick: a few
    /// nanoseconds each, without touching lws's timer list.
    private func keepalive() {
        let now = Worker.nowMs()
        let ping = UInt64(configuration.pingIntervalSeconds) * 1000
        let hangup = UInt64(configuration.hangupSeconds) * 1000
        for s in sessions.values where s.closeRequest == nil && !s.discardInput {
            let silent = now &- s.lastHeard
            if silent >= hangup {
                s.discardInput = true
                counters.keepaliveHangups += 1
                logger.info("closing session: no answer to keepalive", metadata: ["session": "\(s.id)"])
                lws_set_timeout(s.wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC)
            } else if silent >= ping && s.pingSentAt == nil && !s.pingDue {
                s.pingDue = true
                lws_callback_on_writable(s.wsi)
            }
        }
    }

    private func writeable(_ wsi: OpaquePointer, _ user: UnsafeMutableRawPointer?) -> Int32 {
        // After the close is handed over, lws may still call here (a writable request made
        // before it): a second -1 would make lws give up on the polite close and drop the
        // connection at once, close frame unsent, while the peer is still writing.
        guard let s = session(user), !s.closeHandedOver else { return 0 }
        // Let lws drain what it already buffered first; it calls us again.
        if lws_partial_buffered(wsi) != 0 { return 0 }
        if s.pingDue && s.closeRequest == nil {
            s.pingDue = false
            s.pingSentAt = Worker.nowMs()
            // lws passes a pong to the callback only when it carries a payload: ping with one,
            // in ASCII, since some clients (lws among them) check control payloads as UTF-8.
            let payload = (scratch + pre).assumingMemoryBound(to: UInt8.self)
            for (i, byte) in "ping".utf8.enumerated() { payload[i] = byte }
            if lws_write(wsi, payload, 4, LWS_WRITE_PING) < 0 { return -1 }
            if s.queuedCount > 0 { lws_callback_on_writable(wsi) }
            return 0
        }
        if s.queuedCount > 0 {
            guard writeBatch(s) else { return -1 }
            if s.queuedCount > 0 || s.closeRequest != nil { lws_callback_on_writable(wsi) }
            return 0
        }
        if let c = s.closeRequest {
            s.closeHandedOver = true
            setCloseReason(wsi, code: c.code, reason: c.reason)
            return -1
        }
        return 0
    }

    /// Writes the head of the queue as one text frame: consecutive batchable
    /// messages joined by "\n" up to `batchLimit` bytes, or one message alone.
    private func writeBatch(_ s: Session) -> Bool {
        var count = 0
        var total = 0
        let first = s.queue[s.head]
        if !first.isBatchable {
            count = 1
            total = first.bytes.count
        } else {
            var i = s.head
            while i < s.queue.count {
                let m = s.queue[i]
                guard m.isBatchable else { break }
                let add = count == 0 ? m.bytes.count : m.bytes.count + 1
                if count > 0 && total + add > Worker.batchLimit { break }
                total += add
                count += 1
                i += 1
            }
        }
        ensureScratch(total)
        let start = scratch + pre
        var p = start
        for k in 0..<count {
            if k > 0 {
                p.storeBytes(of: 0x0A, as: UInt8.self)
                p += 1
            }
            s.queue[s.head + k].bytes.withUnsafeBytes { b in
                if let base = b.baseAddress { p.copyMemory(from: base, byteCount: b.count) }
                p += b.count
            }
        }
        let n = lws_write(s.wsi, start.assumingMemoryBound(to: UInt8.self), total, LWS_WRITE_TEXT)
        if n < 0 {
            logger.debug("write failed", metadata: ["session": "\(s.id)"])
            return false
        }
        counters.framesOut += 1
        counters.messagesOut += UInt64(count)
        counters.bytesOut += UInt64(total)
        s.popFront(count)
        return true
    }

    private func ensureScratch(_ payload: Int) {
        let needed = pre + payload + 16
        guard needed > scratchCapacity else { return }
        scratch.deallocate()
        scratchCapacity = max(needed, scratchCapacity * 2)
        scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchCapacity, alignment: 16)
    }

    private func closed(_ user: UnsafeMutableRawPointer?) {
        guard let user else { return }
        let id = user.load(as: UInt64.self)
        guard id != 0, id & Worker.exchangeTag == 0 else { return }
        user.storeBytes(of: 0, as: UInt64.self)
        guard let s = sessions.removeValue(forKey: id) else { return }
        s.open = false
        counters.sessionsClosed += 1
        logger.debug("session closed", metadata: ["session": "\(s.id)"])
        delegate?.transportDidClose(s.id, transport: transport)
        if state == .stopping && sessions.isEmpty { breakLoop() }
    }

    // Called through Transport (lws thread).

    func enqueue(_ message: OutboundMessage, to id: SessionID) {
        guard state == .running || state == .stopping, let s = sessions[id.rawValue],
            s.closeRequest == nil
        else { return }
        let size = message.bytes.count
        if s.queuedCount + 1 > configuration.sendQueueMaxMessages
            || s.queuedBytes + size > configuration.sendQueueMaxBytes
        {
            counters.queueOverflowCloses += 1
            logger.notice(
                "closing session: send queue overflow",
                metadata: [
                    "session": "\(s.id)", "queuedMessages": "\(s.queuedCount)", "queuedBytes": "\(s.queuedBytes)",
                ])
            s.dropQueue()
            startClose(s, code: 4008, reason: "send queue overflow")
            return
        }
        s.queue.append(message)
        s.queuedBytes += size
        if !s.dirty {
            s.dirty = true
            dirty.append(s)
        }
    }

    /// Writes the output queued during this loop iteration: one frame (a batch) per session,
    /// straight from here instead of asking lws for a writable callback. Asking would cost two
    /// `epoll_ctl` calls and a wakeup per write (perf: 6.5% of the server's CPU under chat
    /// load). A session lws still holds a partial write for, or one with a ping or a close to
    /// send, or with more than two batches queued, or carried in an HTTP/2 stream, goes the usual
    /// way (`lws_callback_on_writable`).
    func flushDirty() {
        guard !dirty.isEmpty else { return }
        swap(&dirty, &flushing)
        defer { flushing.removeAll(keepingCapacity: true) }
        for s in flushing {
            s.dirty = false
            guard s.open, s.queuedCount > 0 else { continue }
            // A WebSocket carried in an HTTP/2 stream (RFC 8441) shares its connection and flow
            // control with other streams: lws schedules those writes; leave them to it.
            if s.closeRequest != nil || s.pingDue || lws_partial_buffered(s.wsi) != 0
                || lws_get_network_wsi(s.wsi) != s.wsi
            {
                lws_callback_on_writable(s.wsi)
                continue
            }
            var batches = 0
            while s.queuedCount > 0 && batches < 2 && lws_partial_buffered(s.wsi) == 0 {
                guard writeBatch(s) else {
                    // Outside a callback the wsi cannot be closed by returning -1: kill it async.
                    s.discardInput = true
                    s.dropQueue()
                    lws_set_timeout(s.wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC)
                    break
                }
                batches += 1
            }
            if s.queuedCount > 0 { lws_callback_on_writable(s.wsi) }
        }
    }

    func requestClose(_ id: SessionID, code: UInt16, reason: String) {
        guard state == .running || state == .stopping, let s = sessions[id.rawValue] else { return }
        startClose(s, code: code, reason: reason)
    }

    /// Closes a session whatever the reason (the shell's closes, queue overflow, refused input,
    /// shutdown): its queued messages go out, then the close frame, and lws waits (5 s at
    /// most) for the peer's close. From the decision on, the peer's input is read and dropped:
    /// a peer still writing (a flood written without reading) must not be cut off with unread
    /// bytes, which the kernel answers with a reset that destroys the close frame in flight.
    private func startClose(_ s: Session, code: UInt16, reason: String) {
        guard s.closeRequest == nil else { return }
        s.discardInput = true
        s.rx = []
        s.rxPieces = 0
        s.closeRequest = (code, reason)
        lws_set_timeout(s.wsi, PENDING_TIMEOUT_USER_OK, Worker.closeTimeoutSeconds)
        lws_callback_on_writable(s.wsi)
    }

    // MARK: - Origin

    /// `upgrade` is the request's `Upgrade` value (lws only asks for `websocket` and `h2c`).
    private func confirmUpgrade(_ wsi: OpaquePointer, _ upgrade: UnsafeMutableRawPointer?) -> Int32 {
        let protocolName = upgrade.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) } ?? ""
        guard protocolName.lowercased() == "websocket" else {
            // h2c would switch the connection to cleartext HTTP/2 inside the TLS tunnel, where
            // streams reach every route past a proxy's path rules (request smuggling).
            counters.upgradeRejections += 1
            logger.info("upgrade refused: not a WebSocket upgrade")
            _ = writeStatus(wsi, "400 Bad Request", body: "only WebSocket upgrades are supported\n", close: true)
            return -1  // hang up once the answer is out: nothing after it is read
        }
        if originAllowed(wsi) { return 0 }
        counters.originRejections += 1
        logger.info("websocket upgrade refused: origin not allowed")
        guard writeStatus(wsi, "403 Forbidden", body: "origin not allowed\n", close: false) else { return -1 }
        return 1  // "headers sent": lws completes the transaction
    }

    /// Writes a whole small response from CONFIRM_UPGRADE. lws_return_http_status() would answer
    /// "HTTP/1.0" there (the request version is not parsed yet), which strict WebSocket clients
    /// reject; this writes HTTP/1.1.
    private func writeStatus(_ wsi: OpaquePointer, _ status: String, body: String, close: Bool) -> Bool {
        let text =
            "HTTP/1.1 \(status)\r\ncontent-type: text/plain; charset=utf-8\r\n"
            + "content-length: \(body.utf8.count)\r\ncache-control: no-store\r\n"
            + (close ? "connection: close\r\n" : "") + "\r\n" + body
        let bytes = Array(text.utf8)
        ensureScratch(bytes.count)
        let start = scratch + pre
        bytes.withUnsafeBytes { start.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return lws_write(wsi, start.assumingMemoryBound(to: UInt8.self), bytes.count, LWS_WRITE_HTTP) >= 0
    }

    private func originAllowed(_ wsi: OpaquePointer) -> Bool {
        let allowed = configuration.allowedOrigins
        if allowed.isEmpty { return true }
        guard let origin = header(wsi, WSI_TOKEN_ORIGIN) else { return true }
        let o = origin.lowercased()
        return allowed.contains { $0.lowercased() == o }
    }

    // MARK: - HTTP

    private static let methodNames = ["GET", "POST", "OPTIONS", "PUT", "PATCH", "DELETE", "CONNECT", "HEAD"]

    /// Largest piece of a response body written in one `lws_write`.
    private static let httpChunk = 16_384
    /// A response that makes no progress for this long (its deferred answer or the next piece of
    /// a streamed body does not come, or the client does not read) is dropped. lws's own timeout
    /// for an HTTP transaction (set when the request arrives) would cut off any response taking
    /// longer than a few seconds, however steadily it goes; each step forward re-arms this one.
    static let httpProgressTimeoutSeconds: Int32 = 60

    private func exchange(_ user: UnsafeMutableRawPointer?) -> (UInt64, HTTPExchange)? {
        guard let user else { return nil }
        let id = user.load(as: UInt64.self)
        guard id & Worker.exchangeTag != 0, let ex = exchanges[id] else { return nil }
        return (id, ex)
    }

    private func httpBegin(_ wsi: OpaquePointer, _ user: UnsafeMutableRawPointer?) -> Int32 {
        guard let user, state == .running || state == .stopping else { return -1 }
        var uri: UnsafeMutablePointer<CChar>?
        var uriLength: Int32 = 0
        let m = Int(lws_http_get_uri_and_method(wsi, &uri, &uriLength))
        let method: String
        if m >= 0 && m < Worker.methodNames.count {
            method = Worker.methodNames[m]
        } else {
            method = header(wsi, WSI_TOKEN_HTTP_COLON_METHOD) ?? "GET"
        }
        // Routes see the path as sent, never lws's decoded and normalised one (RequestLine.swift).
        let line = RequestLine.take(wsi)
        let path = line.map { String($0.path) } ?? ""
        var headers: [String: String] = [:]
        for (name, token) in [
            ("authorization", WSI_TOKEN_HTTP_AUTHORIZATION),
            ("content-type", WSI_TOKEN_HTTP_CONTENT_TYPE),
            ("origin", WSI_TOKEN_ORIGIN),
            ("user-agent", WSI_TOKEN_HTTP_USER_AGENT),
            ("x-forwarded-for", WSI_TOKEN_X_FORWARDED_FOR),
        ] {
            if let v = header(wsi, token) { headers[name] = v }
        }
        let isH2 = lws_get_network_wsi(wsi) != wsi
        let contentLengths = fragments(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH)
        let framing = Worker.bodyFraming(
            method: method, contentLengths: contentLengths,
            hasTransferEncoding: !fragments(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING).isEmpty)
        let contentLength: Int
        if case .length(let n) = framing { contentLength = n } else { contentLength = 0 }
        let id = Worker.exchangeTag | nextExchange
        nextExchange += 1
        let request = HTTPRequest(
            method: method, path: path, query: queryString(wsi),
            headers: headers, body: [], peerAddress: clientAddress(wsi), exchange: HTTPExchangeID(rawValue: id))
        // lws delivers a body (HTTP_BODY... then HTTP_BODY_COMPLETION) for any POST (even with
        // Content-Length: 0) and for a positive Content-Length. (PUT and PATCH without one, which
        // lws would also read a body for, are refused below.)
        let expectsBody = method == "POST" || contentLength > 0
        user.storeBytes(of: id, as: UInt64.self)
        let ex = HTTPExchange(wsi: wsi, request: request, waitingForBody: expectsBody, isH2: isH2)
        exchanges[id] = ex
        // One request per connection: the next one's request line would not be seen as sent.
        ex.closeAfterResponse = true
        if line == nil {
            counters.unreadableRequestLines += 1
            logger.info("http request refused: request line not readable as sent")
            return respond(wsi, ex, HTTPResponse(status: 400, text: "bad request line\n"))
        }
        // A request whose body cannot be delimited without doubt is refused and its connection
        // closed: a proxy in front may have read the body differently, and whatever follows on
        // the connection could be taken for a request (desync, request smuggling).
        let refusal: (status: Int, text: String)?
        switch framing {
        case .ambiguous: refusal = (400, "ambiguous or invalid Content-Length\n")
        case .transferEncoding: refusal = (400, "Transfer-Encoding is not supported: send Content-Length\n")
        case .lengthRequired: refusal = (411, "Content-Length required\n")
        case .length(let n) where n > configuration.maxHTTPBodyBytes: refusal = (413, "request body too large\n")
        case .length: refusal = nil
        }
        if let refusal {
            counters.httpFramingRefusals += 1
            logger.info("http request refused", metadata: ["status": "\(refusal.status)"])
            ex.closeAfterResponse = true
            return respond(wsi, ex, HTTPResponse(status: refusal.status, text: refusal.text))
        }
        if expectsBody { return 0 }
        return respond(wsi, ex, nil)
    }

    /// How a request's body is delimited, from its headers.
    enum BodyFraming: Equatable {
        /// `Content-Length` (0 when there is none and none is needed).
        case length(Int)
        /// More than one `Content-Length`, or one that is not a plain decimal number.
        case ambiguous
        /// A `Transfer-Encoding` (lws 4.1 cannot read chunked request bodies).
        case transferEncoding
        /// A POST, PUT or PATCH without `Content-Length`.
        case lengthRequired
    }

    static func bodyFraming(method: String, contentLengths: [String], hasTransferEncoding: Bool)
        -> BodyFraming
    {
        if contentLengths.count > 1 { return .ambiguous }
        if hasTransferEncoding { return .transferEncoding }
        guard let value = contentLengths.first else {
            // HTTP/1.1 cannot delimit the body otherwise. HTTP/2 could (END_STREAM), but lws 4.1.6
            // never completes a POST whose HEADERS frame ended the stream: it gets 411 too.
            let needsBody = method == "POST" || method == "PUT" || method == "PATCH"
            return needsBody ? .lengthRequired : .length(0)
        }
        let text = value.utf8.drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 }
        guard !text.isEmpty, text.allSatisfy({ $0 >= 48 && $0 <= 57 }),
            let n = Int(String(decoding: text.reversed(), as: UTF8.self))
        else {
            return .ambiguous
        }
        return .length(n)
    }

    private func httpBody(_ user: UnsafeMutableRawPointer?, _ input: UnsafeMutableRawPointer?, _ len: Int) -> Int32 {
        guard let (_, ex) = exchange(user) else { return -1 }
        if ex.responding || ex.deferred { return 0 }  // discarding the body of a refused request
        if ex.request.body.count + len > configuration.maxHTTPBodyBytes { return -1 }
        if len > 0, let input { ex.request.body.append(contentsOf: UnsafeRawBufferPointer(start: input, count: len)) }
        return 0
    }

    private func httpBodyComplete(_ wsi: OpaquePointer, _ user: UnsafeMutableRawPointer?) -> Int32 {
        guard let (_, ex) = exchange(user) else { return -1 }
        if ex.responding || ex.deferred { return 0 }
        ex.waitingForBody = false
        return respond(wsi, ex, nil)
    }

    /// Asks the delegate (unless the transport answers itself with `fixed`), then writes the
    /// status line and headers now and the body from HTTP_WRITEABLE (separate writes, last one
    /// LWS_WRITE_HTTP_FINAL: required for h2). A deferred answer comes later through
    /// `completeDeferred`.
    private func respond(_ wsi: OpaquePointer, _ ex: HTTPExchange, _ fixed: HTTPResponse?) -> Int32 {
        let response: HTTPResponse
        if let fixed {
            response = fixed
        } else if let delegate {
            switch delegate.transportHTTP(ex.request, transport: transport) {
            case .response(let r):
                response = r
            case .deferred:
                // lws arms its 5 s transaction timeout after this callback returns: the writable
                // callback this asks for comes after that and re-arms ours instead.
                ex.deferred = true
                ex.lastProgress = Worker.nowMs()
                lws_callback_on_writable(wsi)
                return 0
            }
        } else {
            response = HTTPResponse(status: 503, text: "unavailable\n")
        }
        start(ex, response)
        guard let headers = ex.pendingHeaders else { return -1 }
        ex.pendingHeaders = nil
        if writeHeaders(ex, headers) != 0 { return -1 }
        lws_callback_on_writable(wsi)
        return 0
    }

    /// `Transport.respond(to:with:)`: the answer to a deferred request. Its headers go out from
    /// the next HTTP_WRITEABLE (this runs outside the exchange's own callbacks).
    func completeDeferred(_ id: UInt64, _ response: HTTPResponse) {
        guard state == .running || state == .stopping, let ex = exchanges[id], ex.deferred else {
            response.stream?.cancel()
            return
        }
        ex.deferred = false
        start(ex, response)
        armProgressTimeout(ex)
        lws_callback_on_writable(ex.wsi)
    }

    /// A streamed body has more to write (posted by its producer's wake-up).
    func resumeStream(_ id: UInt64) {
        guard let ex = exchanges[id], ex.responding, ex.stream != nil else { return }
        lws_callback_on_writable(ex.wsi)
    }

    /// Sets the exchange up to write `response`: a HEAD gets the headers only.
    private func start(_ ex: HTTPExchange, _ response: HTTPResponse) {
        counters.httpRequests += 1
        ex.responding = true
        let isHead = ex.request.method == "HEAD"
        ex.pendingHeaders = (
            response.status, response.contentType, response.stream == nil ? response.body.count : nil
        )
        ex.response = isHead ? [] : response.body
        ex.offset = 0
        if let stream = response.stream {
            if isHead {
                stream.cancel()
                ex.streamEnded = true
            } else {
                ex.stream = stream
                ex.chunked = !ex.isH2
                let id = ex.request.exchange.rawValue
                stream.attach { [weak transport = self.transport] in transport?.post { $0.resumeHTTPStream(id) } }
            }
        }
    }

    private func writeHeaders(_ ex: HTTPExchange, _ h: (status: Int, contentType: String, length: Int?)) -> Int32 {
        let wsi = ex.wsi
        ensureScratch(4096)
        let start = (scratch + pre).assumingMemoryBound(to: UInt8.self)
        let end = start + 4000
        var p: UnsafeMutablePointer<UInt8>? = start
        func add(_ name: String, _ value: String) -> Bool {
            lws_add_http_header_by_name(wsi, name, value, Int32(value.utf8.count), &p, end) == 0
        }
        if let length = h.length {
            if lws_add_http_common_headers(wsi, UInt32(h.status), h.contentType, lws_filepos_t(length), &p, end) != 0 {
                return -1
            }
        } else {
            // A streamed body: no length (lws_add_http_common_headers would add
            // `connection: close` for that); HTTP/1.1 frames it as chunks.
            if lws_add_http_header_status(wsi, UInt32(h.status), &p, end) != 0 { return -1 }
            if !add("content-type:", h.contentType) { return -1 }
            if ex.chunked && !add("transfer-encoding:", "chunked") { return -1 }
        }
        if !add("cache-control:", "no-store") { return -1 }
        if ex.closeAfterResponse && !ex.isH2 && !add("connection:", "close") { return -1 }
        if lws_finalize_write_http_header(wsi, start, &p, end) != 0 { return -1 }
        return 0
    }

    private func httpWriteable(_ wsi: OpaquePointer, _ user: UnsafeMutableRawPointer?) -> Int32 {
        guard let (id, ex) = exchange(user) else { return 0 }
        if ex.deferred {
            armProgressTimeout(ex)
            return 0
        }
        guard ex.responding else { return 0 }
        // h2 allows one write per writable callback: headers, then the body from the next.
        if let headers = ex.pendingHeaders {
            ex.pendingHeaders = nil
            if writeHeaders(ex, headers) != 0 { return -1 }
            lws_callback_on_writable(wsi)
            return 0
        }
        if ex.offset == ex.response.count, let stream = ex.stream, !ex.streamEnded {
            switch stream.take(max: 4 * Worker.httpChunk) {
            case .waiting:
                return 0  // the producer's next write wakes us (resumeStream)
            case .failed:
                logger.notice("http response cut off: its body could not be produced")
                return -1  // the client sees an incomplete response, never a truncated "complete" one
            case .bytes(let bytes, let last):
                ex.response = bytes
                ex.offset = 0
                ex.streamEnded = last
            }
        }
        let remaining = ex.response.count - ex.offset
        var chunk = min(remaining, Worker.httpChunk)
        let allowance = lws_get_peer_write_allowance(wsi)  // -1: no flow control (h1)
        if allowance >= 0 { chunk = min(chunk, Int(allowance)) }
        if chunk == 0 && remaining > 0 {
            lws_callback_on_writable(wsi)
            return 0
        }
        let isLast = ex.offset + chunk == ex.response.count && (ex.stream == nil || ex.streamEnded)
        // HTTP/1.1 chunked framing around the bytes: "<hex size>\r\n" bytes "\r\n", and after
        // the last "0\r\n\r\n". Assembled in the scratch buffer with plain copies.
        let prefix: [UInt8] = ex.chunked && chunk > 0 ? Array((String(chunk, radix: 16) + "\r\n").utf8) : []
        var suffix: [UInt8] = ex.chunked && chunk > 0 ? [0x0D, 0x0A] : []
        if ex.chunked && isLast { suffix += Array("0\r\n\r\n".utf8) }
        let size = prefix.count + chunk + suffix.count
        if size > 0 || ex.isH2 {
            ensureScratch(size)
            var p = scratch + pre
            prefix.withUnsafeBytes { if let base = $0.baseAddress { p.copyMemory(from: base, byteCount: $0.count) } }
            p += prefix.count
            ex.response.withUnsafeBytes { b in
                if chunk > 0, let base = b.baseAddress { p.copyMemory(from: base + ex.offset, byteCount: chunk) }
            }
            p += chunk
            suffix.withUnsafeBytes { if let base = $0.baseAddress { p.copyMemory(from: base, byteCount: $0.count) } }
            let n = lws_write(
                wsi, (scratch + pre).assumingMemoryBound(to: UInt8.self), size,
                isLast ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP)
            if n < 0 { return -1 }
        }
        ex.offset += chunk
        if !isLast {
            armProgressTimeout(ex)
            lws_callback_on_writable(wsi)
            return 0
        }
        exchanges[id] = nil
        ex.stream?.cancel()  // done: drops the wake-up closure
        user?.storeBytes(of: 0, as: UInt64.self)
        if ex.closeAfterResponse { return -1 }
        return lws_http_transaction_completed(wsi) != 0 ? -1 : 0
    }

    /// (Re)arms `httpProgressTimeoutSeconds` for a response that is waiting or under way. Over
    /// HTTP/2 the connection has a timeout of its own (lws's 5 s keep-alive idle time, re-armed
    /// by lws whenever the client sends a frame): a stream waiting quietly for its answer must
    /// keep the connection up too.
    private func armProgressTimeout(_ ex: HTTPExchange) {
        ex.lastProgress = Worker.nowMs()
        lws_set_timeout(ex.wsi, PENDING_TIMEOUT_HTTP_CONTENT, Worker.httpProgressTimeoutSeconds)
        keepConnectionUp(ex)
    }

    private func keepConnectionUp(_ ex: HTTPExchange) {
        if ex.isH2, let connection = lws_get_network_wsi(ex.wsi) {
            lws_set_timeout(connection, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE, Worker.httpProgressTimeoutSeconds)
        }
    }

    /// On every tick: lws re-arms an HTTP/2 connection's 5 s idle timeout whenever the client
    /// sends a frame (a SETTINGS ack, a WINDOW_UPDATE), which would cut off a stream still
    /// waiting for its answer; keep such connections up while their response is making progress.
    private func keepWaitingHTTP2Up() {
        guard !exchanges.isEmpty else { return }
        let now = Worker.nowMs()
        let window = UInt64(Worker.httpProgressTimeoutSeconds) * 1000
        for ex in exchanges.values where ex.isH2 && (ex.deferred || ex.responding) && now - ex.lastProgress < window {
            keepConnectionUp(ex)
        }
    }

    private func httpClosed(_ user: UnsafeMutableRawPointer?) {
        guard let user else { return }
        let id = user.load(as: UInt64.self)
        if id & Worker.exchangeTag != 0 {
            exchanges.removeValue(forKey: id)?.stream?.cancel()  // the producer stops
            user.storeBytes(of: 0, as: UInt64.self)
        }
    }

    // MARK: - Header helpers

    private func header(_ wsi: OpaquePointer, _ token: lws_token_indexes) -> String? {
        let n = Int(lws_hdr_total_length(wsi, token))
        guard n > 0 else { return nil }
        let capacity = n + 1
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: capacity) { buf -> String? in
            let copied = lws_hdr_copy(wsi, buf.baseAddress, Int32(capacity), token)
            guard copied >= 0 else { return nil }
            return String(decoding: UnsafeRawBufferPointer(start: buf.baseAddress, count: Int(copied)), as: UTF8.self)
        }
    }

    /// Every occurrence of a header, in order: lws keeps a repeated header as a chain of
    /// fragments (lws_hdr_copy would join them), so a duplicate shows up here as a second value.
    private func fragments(_ wsi: OpaquePointer, _ token: lws_token_indexes) -> [String] {
        var values: [String] = []
        var i: Int32 = 0
        while true {
            let n = Int(lws_hdr_fragment_length(wsi, token, i))
            let value = withUnsafeTemporaryAllocation(of: CChar.self, capacity: n + 1) { buf -> String? in
                let copied = lws_hdr_copy_fragment(wsi, buf.baseAddress, Int32(n + 1), token, i)
                guard copied >= 0 else { return nil }
                return String(
                    decoding: UnsafeRawBufferPointer(start: buf.baseAddress, count: Int(copied)), as: UTF8.self)
            }
            guard let value else { return values }
            values.append(value)
            i += 1
        }
    }

    /// lws stores each URI argument as one fragment (URL-decoded); rejoin
    /// them with "&" (lws_hdr_copy would join them with ",").
    private func queryString(_ wsi: OpaquePointer) -> String {
        var parts: [String] = []
        var i: Int32 = 0
        while true {
            let n = Int(lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i))
            if n <= 0 { break }
            let part = withUnsafeTemporaryAllocation(of: CChar.self, capacity: n + 1) { buf -> String? in
                let copied = lws_hdr_copy_fragment(wsi, buf.baseAddress, Int32(n + 1), WSI_TOKEN_HTTP_URI_ARGS, i)
                guard copied >= 0 else { return nil }
                return String(
                    decoding: UnsafeRawBufferPointer(start: buf.baseAddress, count: Int(copied)), as: UTF8.self)
            }
            guard let part else { break }
            parts.append(part)
            i += 1
        }
        return parts.joined(separator: "&")
    }

    /// The client's address: the TCP peer, or the address a trusted proxy forwarded.
    private func clientAddress(_ wsi: OpaquePointer) -> String {
        let peer = peerAddress(wsi)
        guard !configuration.trustedProxies.isEmpty else { return peer }
        return ClientAddress.resolve(
            peer: peer, forwardedFor: header(wsi, WSI_TOKEN_X_FORWARDED_FOR),
            trustedProxies: configuration.trustedProxies)
    }

    private func peerAddress(_ wsi: OpaquePointer) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buf -> String in
            guard let p = lws_get_peer_simple(wsi, buf.baseAddress, 64) else { return "" }
            return String(cString: p)
        }
    }
}
