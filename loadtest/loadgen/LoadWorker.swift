import CLws
import Foundation
import HearthAuth
import HearthCore
import HearthWire

#if canImport(Glibc)
    import Glibc
#endif

/// One event-loop thread: an lws client context on its own libev loop (a foreign loop, as in
/// the server), many connections, the groups they play, and what they measured. Everything
/// here is confined to that thread; the main thread reads `stats` and `failures` after join.
///
/// This file holds the context, the loop, the timers and the lws callback; the extensions hold
/// the run's phases (`+Phases`), the protocol player (`+Player`), sending (`+Send`), receiving
/// (`+Receive`), the reconnect storm (`+Storm`) and the per-step checks (`+Measurement`).
final class LoadWorker {
    enum RunPhase { case setup, steady, drain, control, breakouts, done }

    let plan: Plan
    let index: Int
    /// The figures of the step in progress; `steps` holds the finished ones.
    var stats = Stats()
    var steps: [Stats] = []
    var failures: [String] = []
    var step = 0
    var chatRate: Double { plan.chatRates[step] }
    var previousTotals = Totals()
    var stepClosed = false
    /// Chat deliveries owed (recipients per message sent) and made, for the drain.
    var liveExpected = 0
    var liveUnique = 0
    var connections: [LoadClient] = []
    var groups: [LoadGroup] = []
    var heap = EventHeap()
    var context: OpaquePointer?
    var loop: UnsafeMutableRawPointer?
    let eventTimer: UnsafeMutablePointer<clws_timer>
    let phaseTimer: UnsafeMutablePointer<clws_timer>
    var eventTimerAt: UInt64 = .max
    var phase = RunPhase.setup
    var t0: UInt64 = 0
    var steadyStart: UInt64 = 0
    var steadyEnd: UInt64 = 0
    var drainEnd: UInt64 = 0
    var controlDeadline: UInt64 = 0
    var breakoutDeadline: UInt64 = 0
    var groupsReady = 0
    var rng: XorShift
    let pre = clws_pre()
    /// The lws retry/idle policy (validity timers off), alive while `run` is.
    var retryPolicy: UnsafePointer<lws_retry_bo_t>?
    var cStrings: [UnsafeMutablePointer<CChar>] = []
    var sourceAddresses: [UnsafeMutablePointer<CChar>] = []
    let offerPayload: String
    let answerPayload: String
    let icePerSide: Int
    /// A room chat message as HearthWire encodes it, around its text (`+Send`: the hot path).
    let chatTemplate = LoadWorker.chatEnvelope()
    /// `x` bytes to pad a chat text to `chatBytes` (a slice of it is copied per message).
    let chatPadding: [UInt8]
    /// The encoded size of an ICE signal without its payload and `to`: each gets `iceBytes`.
    let iceEnvelopeBytes = LoadWorker.measureICEEnvelope()
    /// Signal messages as HearthWire encodes them, cut around the payload, per kind and
    /// recipient id (`+Send`: ids repeat across groups, so this stays small).
    var signalEnvelopes: [String: (prefix: [UInt8], suffix: [UInt8])] = [:]
    // Reconnect storm.
    var stormIntended: UInt64 = 0
    var stormPending = 0
    var stormDone = false
    var stormDeadline: UInt64 = 0
    var stormLastResumed: UInt64 = 0
    var stormCPUAtDrop: (server: Double?, generator: Double) = (nil, 0)
    /// Unaffected rooms' chat deliveries (receipt, intended, latency µs) and the generator's
    /// 10 ms probe timer (intended, lateness ns): split at the drop instant and at all-back.
    var unaffectedSamples: [(UInt64, UInt64, UInt64)] = []
    var loopSamples: [(UInt64, UInt64)] = []
    /// When each stormed client was back (monotonic ns), for the storm's timeline.
    var backTimes: [UInt64] = []
    /// The step, the steady start, the drop instant and the all-back moment (monotonic ns), once
    /// the storm is over: the main thread splits the /healthz probe's samples with them.
    var stormWindow: (step: Int, steadyStart: UInt64, drop: UInt64, end: UInt64)?

    /// Shared by a process's workers in a storm: the steady phase starts in all of them at once.
    let sync: RunSync
    var reportedReady = false

    init(plan: Plan, index: Int, groupIndices: [Int], sync: RunSync) {
        self.plan = plan
        self.index = index
        self.sync = sync
        rng = XorShift(seed: plan.seed &+ UInt64(index) &* 0x1234_5678_9ABC)
        eventTimer = .allocate(capacity: 1)
        eventTimer.initialize(to: clws_timer())
        phaseTimer = .allocate(capacity: 1)
        phaseTimer.initialize(to: clws_timer())
        icePerSide = max(0, plan.icePerPair / 2)
        chatPadding = [UInt8](repeating: UInt8(ascii: "x"), count: max(1, plan.chatBytes))
        offerPayload = LoadWorker.sdp(kind: "offer", bytes: plan.sdpBytes)
        answerPayload = LoadWorker.sdp(kind: "answer", bytes: plan.sdpBytes)
        // HS256 join tokens with the run's secret (valid for 10 minutes), minted by HearthAuth
        // as `hearthd token` does; relay mode sends none.
        let minter = plan.relay ? nil : try? TokenMinter(secret: plan.secret)
        if minter == nil && !plan.relay { failures.append("the token secret cannot sign HS256 tokens") }
        let issuedAt = Date(timeIntervalSince1970: TimeInterval(time(nil)))
        for i in 0..<plan.sourceCount {
            sourceAddresses.append(strdup("127.0.0.\(plan.sourceBase + i)"))
        }
        for g in groupIndices {
            let room = "\(plan.roomPrefix)-\(g)"
            let group = LoadGroup(
                local: groups.count, room: room, path: strdup(plan.relay ? "/relay/\(room)" : "/v1/rooms/\(room)"))
            for slot in 0..<plan.groupSize {
                let slow = slot >= plan.groupSize - plan.slowPerGroup && slot > 0
                let claims = JoinClaims(
                    sub: "\(room)-u\(slot)", room: room, role: slot == 0 ? "facilitator" : "participant",
                    name: "s\(slot)", exp: issuedAt + 590, iat: issuedAt - 5, capacity: max(12, plan.groupSize),
                    waitingRoom: plan.waitingRoom, consentVersion: plan.consentVersion)
                let token = minter?.mint(claims: claims) ?? ""
                let c = LoadClient(
                    index: connections.count, group: group, slot: slot, groupSize: plan.groupSize, slow: slow,
                    token: token)
                group.slots.append(c.index)
                connections.append(c)
                if !slow { group.recipients += 1 }
            }
            groups.append(group)
        }
        for (g, global) in zip(groups, groupIndices) where plan.storms(global) {
            g.stormed = true
            for i in g.slots where !connections[i].slow { connections[i].stormed = true }
        }
        stats.groups = groups.count
        stats.connections = connections.count
        stats.slowConnections = connections.filter(\.slow).count
    }

    deinit {
        for p in cStrings { free(p) }
        for p in sourceAddresses { free(p) }
        for g in groups { free(g.path) }
        eventTimer.deallocate()
        phaseTimer.deallocate()
    }

    static func from(_ wsi: OpaquePointer) -> LoadWorker? {
        guard let ctx = lws_get_context(wsi), let p = lws_context_user(ctx) else { return nil }
        return Unmanaged<LoadWorker>.fromOpaque(p).takeUnretainedValue()
    }

    func cs(_ s: String) -> UnsafePointer<CChar> {
        let p = strdup(s)!
        cStrings.append(p)
        return UnsafePointer(p)
    }

    // MARK: - Loop

    func run() {
        let protocols = UnsafeMutablePointer<lws_protocols>.allocate(capacity: 2)
        protocols.initialize(repeating: lws_protocols(), count: 2)
        defer { protocols.deallocate() }
        protocols[0].name = cs("hearth.v1")
        protocols[0].callback = loadgenLwsCallback
        protocols[0].per_session_data_size = 0
        protocols[0].rx_buffer_size = 4096
        protocols[0].tx_packet_size = 0

        guard let loop = clws_ev_loop_new() else {
            failures.append("cannot create the libev loop")
            return
        }
        self.loop = loop
        let foreignLoops = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 1)
        foreignLoops.initialize(to: loop)
        defer { foreignLoops.deallocate() }

        // No lws validity (ping/hangup) timers: in lws 4.1.6 every reschedule of one (on every
        // frame received) is an O(connections) insertion into one sorted list, as in the server.
        let retry = UnsafeMutablePointer<lws_retry_bo_t>.allocate(capacity: 1)
        retry.initialize(to: lws_retry_bo_t())
        retry.pointee.secs_since_valid_ping = 0
        retry.pointee.secs_since_valid_hangup = 0
        defer { retry.deallocate() }
        retryPolicy = UnsafePointer(retry)

        var info = lws_context_creation_info()
        info.port = -1  // CONTEXT_PORT_NO_LISTEN: client only
        info.protocols = UnsafePointer(protocols)
        // The server's certificate is a throwaway self-signed one: do not load the OS CA store.
        // With it, OpenSSL 3 listed /etc/ssl/certs for every handshake (perf: getdents64 11% of
        // the generator's CPU in `connect`).
        info.options = CLWS_OPT_DO_SSL_GLOBAL_INIT | CLWS_OPT_LIBEV | CLWS_OPT_DISABLE_OS_CA_CERTS
        info.retry_and_idle_policy = UnsafePointer(retry)
        info.foreign_loops = foreignLoops
        info.user = Unmanaged.passUnretained(self).toOpaque()
        info.timeout_secs = 30
        guard let ctx = lws_create_context(&info) else {
            clws_ev_loop_destroy(loop)
            failures.append("lws_create_context failed (is libwebsockets-evlib-ev installed?)")
            return
        }
        context = ctx

        // Open loop: every connection has an intended connect time.
        t0 = monotonicNanos() + 200_000_000
        // This worker's share of the process's connect rate (its share of the connections).
        let rate = max(plan.connectRate * Double(connections.count) / Double(max(1, plan.connectionsTotal)), 0.001)
        let interval = 1e9 / rate
        for c in connections {
            c.connectIntended = t0 + UInt64(Double(c.index) * interval)
            if c.slot == 0 { c.group.startIntended = c.connectIntended }
            heap.push(TimedEvent(at: c.connectIntended, kind: .connect, target: Int32(c.index)))
        }
        armEventTimer(now: monotonicNanos())
        schedule(phaseTimer, afterMicros: 50_000)
        if index == 0 { emit("PHASE setup-start \(wallMillis() + 200)") }

        clws_ev_run(loop)

        lws_sul_cancel(sul(eventTimer))
        lws_sul_cancel(sul(phaseTimer))
        lws_context_destroy(ctx)
        context = nil
        clws_ev_loop_destroy(loop)
        self.loop = nil
    }

    func sul(_ t: UnsafeMutablePointer<clws_timer>) -> UnsafeMutablePointer<lws_sorted_usec_list_t> {
        UnsafeMutableRawPointer(t).assumingMemoryBound(to: lws_sorted_usec_list_t.self)
    }

    func schedule(_ t: UnsafeMutablePointer<clws_timer>, afterMicros us: Int64) {
        guard let context else { return }
        t.pointee.owner = Unmanaged.passUnretained(self).toOpaque()
        lws_sul_schedule(context, 0, sul(t), loadgenTimerCallback, max(0, us))
    }

    func armEventTimer(now: UInt64) {
        guard let top = heap.top else {
            eventTimerAt = .max
            return
        }
        if top.at == eventTimerAt { return }
        eventTimerAt = top.at
        schedule(eventTimer, afterMicros: top.at > now ? Int64((top.at - now) / 1000) : 0)
    }

    func push(_ e: TimedEvent, now: UInt64) {
        heap.push(e)
        if e.at < eventTimerAt { armEventTimer(now: now) }
    }

    func timerFired(_ t: UnsafeMutablePointer<clws_timer>) {
        guard phase != .done else { return }
        if t == eventTimer {
            eventTimerAt = .max
            var now = monotonicNanos()
            var handled = 0
            // At most 64 actions per callback: the loop then reads and writes its sockets before
            // the next batch (a storm's thousands of reconnects due at one instant must not keep
            // every connection's receipts waiting until the last connect has been issued).
            while let top = heap.top, top.at <= now + 20_000, handled < 64 {
                _ = heap.pop()
                perform(top, now: now)
                handled += 1
                if handled & 15 == 0 { now = monotonicNanos() }
            }
            armEventTimer(now: monotonicNanos())
        } else if t == phaseTimer {
            phaseTick(now: monotonicNanos())
            if phase != .done { schedule(phaseTimer, afterMicros: 50_000) }
        }
    }

    func connect(_ c: LoadClient) {
        guard let context else { return }
        var info = lws_client_connect_info()
        info.context = context
        info.port = Int32(plan.port)
        info.ssl_connection =
            plan.plain
            ? 0
            : Int32(
                LCCSCF_USE_SSL.rawValue | LCCSCF_ALLOW_SELFSIGNED.rawValue
                    | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK.rawValue | LCCSCF_ALLOW_EXPIRED.rawValue
                    | LCCSCF_ALLOW_INSECURE.rawValue)
        info.opaque_user_data = UnsafeMutableRawPointer(bitPattern: c.index + 1)
        info.retry_and_idle_policy = retryPolicy
        info.iface = UnsafePointer(sourceAddresses[c.index % sourceAddresses.count])
        info.path = UnsafePointer(c.group.path)
        var wsi: OpaquePointer?
        plan.host.withCString { host in
            "hearth.v1".withCString { proto in
                "http/1.1".withCString { alpn in
                    "localhost".withCString { hostHeader in
                        info.address = host
                        info.host = hostHeader
                        // A peer relay negotiates no subprotocol: offer none, bind to ours.
                        info.protocol = plan.relay ? nil : proto
                        info.local_protocol_name = proto
                        info.alpn = alpn
                        wsi = lws_client_connect_via_info(&info)
                    }
                }
            }
        }
        if wsi == nil && !c.closed {
            c.closed = true
            stats.connectErrors += 1
            if stats.connectErrorSamples.count < 5 {
                stats.connectErrorSamples.append("connect_via_info returned NULL")
            }
        }
    }

    // MARK: - lws callback

    func connection(_ wsi: OpaquePointer) -> LoadClient? {
        guard let p = lws_get_opaque_user_data(wsi) else { return nil }
        let i = Int(bitPattern: p) - 1
        return i >= 0 && i < connections.count ? connections[i] : nil
    }

    func callback(
        _ wsi: OpaquePointer, _ reason: lws_callback_reasons, _ input: UnsafeMutableRawPointer?, _ len: Int
    ) -> Int32 {
        switch reason {
        case LWS_CALLBACK_CLIENT_ESTABLISHED:
            guard let c = connection(wsi) else { return -1 }
            let now = monotonicNanos()
            c.wsi = wsi
            c.established = true
            if c.away {
                // A reconnect in the storm: resume the held seat from the last seq processed.
                stats.stormHandshake.record(micros(now, c.reconnectIntended))
                send(c, .resume(secret: c.resumeSecret, lastSeq: UInt64(max(0, c.lastEventSeq)), rid: nil))
                return 0
            }
            stats.established += 1
            stats.handshake.record(micros(now, c.connectIntended))
            if c.slow {
                var size = Int32(plan.slowReceiveBuffer)
                _ = setsockopt(
                    lws_get_socket_fd(wsi), SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            }
            if plan.relay {
                relayJoined(c, now: now)
            } else {
                send(c, .hello(token: c.token, rid: nil))
            }
        case LWS_CALLBACK_CLIENT_RECEIVE:
            guard let c = connection(wsi), let input else { return 0 }
            let final = lws_is_final_fragment(wsi) != 0
            if !final || !c.rx.isEmpty {
                c.rx.append(contentsOf: UnsafeRawBufferPointer(start: input, count: len))
                if !final { return 0 }
                let frame = c.rx
                c.rx.removeAll(keepingCapacity: true)
                frame.withUnsafeBytes { receive(c, $0) }
            } else {
                receive(c, UnsafeRawBufferPointer(start: input, count: len))
            }
        case LWS_CALLBACK_CLIENT_WRITEABLE:
            guard let c = connection(wsi), c.outHead < c.outbox.count else { return 0 }
            let written = c.outbox[c.outHead].withUnsafeMutableBufferPointer { b in
                lws_write(wsi, b.baseAddress! + pre, b.count - pre, LWS_WRITE_TEXT)
            }
            if written < 0 { return -1 }
            c.outbox[c.outHead] = []
            c.outHead += 1
            if c.outHead == c.outbox.count {
                c.outbox.removeAll(keepingCapacity: true)
                c.outHead = 0
            } else {
                if c.outHead >= 64 {
                    c.outbox.removeFirst(c.outHead)
                    c.outHead = 0
                }
                lws_callback_on_writable(wsi)
            }
        case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
            if let c = connection(wsi), let input, len >= 2 {
                let b = input.assumingMemoryBound(to: UInt8.self)
                c.closeCode = Int(b[0]) << 8 | Int(b[1])
            }
        case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
            guard let c = connection(wsi) else { return 0 }
            let text = input.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) } ?? "?"
            connectionEnded(c, error: text)
        case LWS_CALLBACK_CLIENT_CLOSED:
            guard let c = connection(wsi) else { return 0 }
            connectionEnded(c, error: nil)
        default:
            return lws_callback_http_dummy(wsi, reason, nil, input, len)
        }
        return 0
    }

    func connectionEnded(_ c: LoadClient, error: String?) {
        guard !c.closed else { return }
        c.closed = true
        c.wsi = nil
        guard phase != .done else { return }
        if c.away && !c.established {
            // A storm reconnect that failed before the WebSocket opened: retry (as a client would).
            if c.reconnectAttempts < 4 {
                stats.stormRetries += 1
                let now = monotonicNanos()
                push(TimedEvent(at: now + 100_000_000, kind: .reconnect, target: Int32(c.index)), now: now)
                return
            }
        }
        if !c.established {
            stats.connectErrors += 1
            if stats.connectErrorSamples.count < 5 { stats.connectErrorSamples.append(error ?? "closed before open") }
            return
        }
        let code = c.closeCode >= 0 ? String(c.closeCode) : (error.map { "error: \($0)" } ?? "no close frame")
        if c.slow {
            if c.closeCode == 4008 { stats.slowCut4008 += 1 } else { stats.slowClosedOtherwise += 1 }
            stats.closeCodes["slow:" + code, default: 0] += 1
        } else if c.group.removedSlot == c.slot && c.gotRemoved {
            stats.closeCodes["removed:" + code, default: 0] += 1
        } else {
            stats.unexpectedCloses += 1
            stats.closeCodes[code, default: 0] += 1
        }
    }

}
