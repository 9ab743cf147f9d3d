import CLws
import Dispatch
import HearthCore
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One libwebsockets context and the thread that services it.
///
/// Everything here except `startup`/`startupFailure` and `inbox` is confined
/// to the worker's thread. Reached from lws callbacks through the context
/// user pointer.
///
/// This file holds the context, the loop, its timers and the callback switch; each reason is
/// handed to a method in `Worker+WebSocket.swift` (upgrade, receive, keepalive, close),
/// `SendQueue.swift` (queues, batching, the writes) or `HTTPExchange.swift` (plain HTTP). The
/// listen socket, its accepts and its pauses are in `Worker+Listener.swift`.
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
    //
    // `sessions`, `dirty` and `flushing` (and a session's `queue` and `closeRequest`) are
    // touched several times for every message that goes out. Release builds leave out the
    // runtime's exclusivity checks on them: in a group of 10 those were 96 of the server's 131
    // `swift_beginAccess` calls per chat, about 6,500 instructions (loadtest/RESULTS.md,
    // "exclusivity checks"). Debug builds, which the tests run, keep them. Sound only because
    // each access is short (a lookup, an append, a removal, a copy for a `for` loop), never one
    // held across a call that could reach the same collection again (a delegate call, a
    // callback into lws): keep it so.
    #if DEBUG
        var sessions: [UInt64: Session] = [:]
    #else
        @exclusivity(unchecked) var sessions: [UInt64: Session] = [:]
    #endif
    var exchanges: [UInt64: HTTPExchange] = [:]
    var counters = TransportCounters()
    var nextSerial: UInt64 = 1
    var nextExchange: UInt64 = 1
    private var context: OpaquePointer?
    /// The plaintext vhost on `internalSocketPath`, if configured.
    private(set) var internalVhost: OpaquePointer?
    private(set) var loop: UnsafeMutableRawPointer?
    enum State { case starting, running, stopping, tearingDown }
    private(set) var state = State.starting
    /// Running or stopping: sessions and exchanges are served.
    var isServing: Bool { state == .running || state == .stopping }
    /// `LWS_PRE`: the bytes lws needs free in front of every buffer given to `lws_write`.
    let pre = Int(clws_pre())
    /// The one buffer every `lws_write` goes out from (`pre` bytes, then the payload).
    private(set) var scratch: UnsafeMutableRawPointer
    private var scratchCapacity: Int
    private let tickTimer: UnsafeMutablePointer<clws_timer>
    private let stopTimer: UnsafeMutablePointer<clws_timer>
    // `dirty`: the sessions given output during this loop iteration, written by `flushDirty`
    // from the loop's prepare watcher, once per iteration; `flushing`: the list `flushDirty`
    // works through (swapped with `dirty`, so neither is reallocated).
    #if DEBUG
        var dirty: [Session] = []
        var flushing: [Session] = []
    #else
        @exclusivity(unchecked) var dirty: [Session] = []
        @exclusivity(unchecked) var flushing: [Session] = []
    #endif
    private let prepare: UnsafeMutablePointer<clws_prepare>

    // The listener's state (`Worker+Listener.swift`).
    /// The TLS listen socket (opened by `Transport.start` on the caller's thread) and its
    /// watcher; accepted connections are adopted into `vhost`.
    let listener: Listener
    let acceptWatcher: UnsafeMutablePointer<clws_io>
    private(set) var vhost: OpaquePointer?
    /// Why the listener is stopped; it watches again once none is left.
    var listenerPauses = ListenerPauses()
    /// Connections adopted and not yet at their first request: at `maxHandshakesInFlight`
    /// the listener pauses until one gets there or closes.
    var handshaking: Set<OpaquePointer> = []
    var lastAcceptFailureLog: UInt64 = 0
    /// How long this iteration may accept, and the thread's CPU time when the last one ended.
    var acceptBudget = AcceptBudget()
    var iterationStart: UInt64 = 0
    /// The loop thread's CPU time in TLS handshakes (OpenSSL's info callback adds to it; the
    /// TLS vhost's SSL_CTX points at it), and how much of it the accept budget has been charged.
    let handshakeClock: UnsafeMutablePointer<clws_handshake_clock>
    var handshakeCharged: UInt64 = 0

    /// Marks a per-connection user word holding an `HTTPExchange` key (else a `Session` key).
    static let exchangeTag: UInt64 = 1 << 63

    init(index: UInt64, transport: Transport, delegate: any TransportDelegate, listener: Listener) {
        precondition(index < 16)
        self.index = index
        self.listener = listener
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
        acceptWatcher = .allocate(capacity: 1)
        acceptWatcher.initialize(to: clws_io())
        handshakeClock = .allocate(capacity: 1)
        handshakeClock.initialize(to: clws_handshake_clock())
    }

    deinit {
        scratch.deallocate()
        tickTimer.deallocate()
        stopTimer.deallocate()
        prepare.deallocate()
        acceptWatcher.deallocate()
        handshakeClock.deallocate()
    }

    static func from(_ wsi: OpaquePointer) -> Worker? {
        guard let ctx = lws_get_context(wsi), let user = lws_context_user(ctx) else { return nil }
        return Unmanaged<Worker>.fromOpaque(user).takeUnretainedValue()
    }

    /// The plaintext listener on a Unix socket for a proxy on this machine (mode 0660).
    private func createInternalVhost(
        _ ctx: OpaquePointer, path: String, protocols: UnsafeMutablePointer<lws_protocols>,
        pvo: UnsafeMutablePointer<lws_protocol_vhost_options>, retry: UnsafeMutablePointer<lws_retry_bo_t>,
        cs: (String) -> UnsafePointer<CChar>
    ) -> Bool {
        unlink(path)  // a socket left by a previous run
        var info = lws_context_creation_info()
        info.iface = cs(path)
        info.port = 0
        info.protocols = UnsafePointer(protocols)
        info.pvo = UnsafePointer(pvo)
        info.vhost_name = cs("hearth-internal")
        info.server_string = cs("hearth")
        info.options = CLWS_OPT_UNIX_SOCK | CLWS_OPT_VALIDATE_UTF8 | CLWS_OPT_FAIL_UPON_UNABLE_TO_BIND
        info.retry_and_idle_policy = UnsafePointer(retry)
        info.user = Unmanaged.passUnretained(self).toOpaque()
        guard let vhost = lws_create_vhost(ctx, &info) else { return false }
        chmod(path, 0o660)
        internalVhost = vhost
        logger.info("internal listener (plaintext, Unix socket)", metadata: ["path": "\(path)"])
        return true
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

        // Protocols: [0] "http" (plain HTTP/1.1), [1] "hearth.v1"
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

        // The vhost opens no listen socket: `listener` is ours, and its connections are adopted.
        var info = lws_context_creation_info()
        info.port = CLWS_PORT_NO_LISTEN_SERVER
        info.protocols = UnsafePointer(protocols)
        info.pvo = UnsafePointer(pvo)
        info.vhost_name = cs("hearth")
        info.server_string = cs("hearth")
        info.ssl_cert_filepath = cs(configuration.certificatePath)
        info.ssl_private_key_filepath = cs(configuration.privateKeyPath)
        info.ssl_options_set = CLWS_SSL_OP_NO_OLD_TLS
        info.ssl_cipher_list = cs(configuration.tls12Ciphers)
        // HTTP/1.1 only: the request target is checked as sent (see RequestLine.swift), which
        // HTTP/2's compressed headers would hide. The code has no HTTP/2 paths (no streams
        // sharing a connection, no flow-control windows, no WebSocket over h2); lws 4.1.6 is
        // still built with HTTP/2, so a CONFIRM_UPGRADE-less upgrade is refused by origin in
        // FILTER_PROTOCOL_CONNECTION and an `Upgrade: h2c` with 400 (`confirmUpgrade`).
        info.alpn = cs("http/1.1")
        info.options =
            CLWS_OPT_DO_SSL_GLOBAL_INIT | CLWS_OPT_VALIDATE_UTF8 | CLWS_OPT_LIBEV
            | CLWS_OPT_FAIL_UPON_UNABLE_TO_BIND
        info.retry_and_idle_policy = UnsafePointer(retry)
        info.foreign_loops = foreignLoops
        info.user = Unmanaged.passUnretained(self).toOpaque()

        guard let ctx = lws_create_context(&info) else {
            clws_ev_loop_destroy(loop)
            self.loop = nil
            failStartup("lws_create_context returned NULL (bad certificate or key? see the hearth.lws log)")
            return
        }
        context = ctx
        vhost = lws_get_vhost_by_name(ctx, "hearth")
        guard vhost != nil else {
            lws_context_destroy(ctx)
            context = nil
            clws_ev_loop_destroy(loop)
            self.loop = nil
            failStartup("the TLS vhost is missing after context creation")
            return
        }
        if let path = configuration.internalSocketPath {
            guard createInternalVhost(ctx, path: path, protocols: protocols, pvo: pvo, retry: retry, cs: cs) else {
                lws_context_destroy(ctx)
                context = nil
                clws_ev_loop_destroy(loop)
                self.loop = nil
                failStartup("cannot listen on the internal Unix socket \(path) (see the hearth.lws log)")
                return
            }
        }

        // The evlib plugin is dlopen()ed by lws: check it really is in.
        let plugin = dlopen("libwebsockets-evlib_ev.so", RTLD_NOLOAD | RTLD_LAZY)
        if let plugin { dlclose(plugin) }
        let backend = String(cString: clws_ev_backend_name(loop))

        state = .running
        inbox.attach(context: ctx)
        clws_prepare_start(loop, prepare, hearthPrepareCallback, Unmanaged.passUnretained(self).toOpaque())
        iterationStart = Worker.threadCPUNanos()
        startAccepting()
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
        clws_io_stop(loop, acceptWatcher)
        listener.close()
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
            guard isServing else { return }
            schedule(tickTimer, after: Int64(configuration.tickMilliseconds) * 1000)
            resumeListener(.descriptors)
            keepalive()
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
        for job in jobs where isServing {
            job(transport)
        }
        if stop { beginStop() }
    }

    private func beginStop() {
        guard state == .running else { return }
        state = .stopping
        logger.info("transport stopping", metadata: ["openSessions": "\(sessions.count)"])
        delegate?.transportWillStop(transport)
        for s in sessions.values {
            startClose(s, code: CloseCode.serverRestarting.rawValue, reason: "server restarting")
        }
        if sessions.isEmpty {
            breakLoop()
        } else {
            schedule(stopTimer, after: Worker.stopGraceMicroseconds)
        }
    }

    /// The end of a loop iteration (the prepare watcher): the delegate's turn, then the writes.
    func iterationEnded() {
        if isServing { delegate?.transportIterationEnded(transport) }
        flushDirty()
        listenerIterationEnded()
    }

    /// Wakes the loop's next wait at once (the same wake-up as a posted job).
    func requestIteration() {
        if let context { lws_cancel_service(context) }
    }

    func breakLoop() {
        if let loop { clws_ev_break_all(loop) }
    }

    /// Makes `scratch` hold `pre + payload` bytes (and a little slack).
    func ensureScratch(_ payload: Int) {
        let needed = pre + payload + 16
        guard needed > scratchCapacity else { return }
        scratch.deallocate()
        scratchCapacity = max(needed, scratchCapacity * 2)
        scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchCapacity, alignment: 16)
    }

    /// Milliseconds on the monotonic clock.
    static func nowMs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
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
        case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
            // The TLS vhost's SSL_CTX is being set up (`user`): time its handshakes, and issue no
            // session tickets (no resumption; see `clws_tls_no_resumption`).
            if let user {
                clws_handshake_clock_install(OpaquePointer(user), handshakeClock)
                clws_tls_no_resumption(OpaquePointer(user))
            }
            return 0
        case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
            handshakeEnded(wsi)
            return confirmUpgrade(wsi, input)
        case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
            // A backstop: every HTTP/1.1 upgrade passed CONFIRM_UPGRADE already, but lws (built
            // with HTTP/2) has upgrade paths that skip it, WebSocket over h2 among them.
            handshakeEnded(wsi)
            return filterUpgrade(wsi)
        case LWS_CALLBACK_ESTABLISHED:
            handshakeEnded(wsi)
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
            handshakeEnded(wsi)
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
            handshakeEnded(wsi)
            closed(user)
            httpClosed(user)
            return lws_callback_http_dummy(wsi, reason, user, input, len)
        default:
            return lws_callback_http_dummy(wsi, reason, user, input, len)
        }
    }
}
