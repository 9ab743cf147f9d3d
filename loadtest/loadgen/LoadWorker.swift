import CLws
import Foundation
import HearthAuth
import HearthCore
import HearthWire

#if canImport(Glibc)
    import Glibc
#endif

/// One event-loop thread: a libev loop with an lws context on it for its timers (a foreign
/// loop, as in the server), many connections, the groups they play, and what they measured.
/// Everything here is confined to that thread; the main thread reads `stats` and `failures`
/// after join.
///
/// This file holds the context, the loop and the timers; the extensions hold the connections'
/// sockets, TLS and frames (`+Link`), the run's phases (`+Phases`), the protocol player
/// (`+Player`), sending (`+Send`), receiving (`+Receive`), the reconnect storm (`+Storm`) and
/// the per-step checks (`+Measurement`).
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
    var cStrings: [UnsafeMutablePointer<CChar>] = []
    /// Where connections go from (127.0.0.N, spread over the source addresses) and to.
    var sourceAddresses: [sockaddr_in] = []
    var serverAddress = sockaddr_in()
    /// The connections' TLS context (nil in plain mode), the buffer messages are read into, the
    /// connections with frames queued this loop iteration, and the watcher that flushes them.
    var sslContext: OpaquePointer?
    let readBuffer = UnsafeMutableRawPointer.allocate(byteCount: LoadWorker.readBufferSize, alignment: 16)
    /// Where a TLS connection's read() goes before OpenSSL decrypts it into `readBuffer`.
    let socketBuffer = UnsafeMutableRawPointer.allocate(byteCount: LoadWorker.readBufferSize, alignment: 16)
    var dirtyLinks: [Int32] = []
    let flusher: UnsafeMutablePointer<clws_prepare>
    /// A message encoded before it is framed (`+Send`).
    var scratch: [UInt8] = []
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
    /// How late (ns) the stormed loop may reach a chat slot after the drop and still send it.
    /// At 1 s, the slots 0.25–1 s late still went out together at all back, and that half
    /// second's unaffected-room p99 was 148–175 ms against 43–50 ms at 250 ms (RESULTS.md).
    static let stormChatLateLimit: UInt64 = 250_000_000
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
        flusher = .allocate(capacity: 1)
        flusher.initialize(to: clws_prepare())
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
            var source = sockaddr_in()
            source.sin_family = sa_family_t(AF_INET)
            _ = inet_pton(AF_INET, "127.0.0.\(plan.sourceBase + i)", &source.sin_addr)
            sourceAddresses.append(source)
        }
        if let server = LoadWorker.ipv4(host: plan.host, port: plan.port) {
            serverAddress = server
        } else {
            failures.append("cannot resolve \(plan.host) to an IPv4 address")
        }
        for g in groupIndices {
            let room = "\(plan.roomPrefix)-\(g)"
            let group = LoadGroup(
                local: groups.count, room: room, path: plan.relay ? "/relay/\(room)" : "/v1/rooms/\(room)")
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
        eventTimer.deallocate()
        phaseTimer.deallocate()
        flusher.deallocate()
        readBuffer.deallocate()
        socketBuffer.deallocate()
    }

    /// `host:port` as an IPv4 socket address (a literal, else the first IPv4 address of the name).
    static func ipv4(host: String, port: Int) -> sockaddr_in? {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
        if inet_pton(AF_INET, host, &address.sin_addr) == 1 { return address }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &found) == 0, let first = found, let a = first.pointee.ai_addr else {
            return nil
        }
        defer { freeaddrinfo(found) }
        address.sin_addr = a.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
        return address
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
        // lws runs the timers only; the connections are the generator's own (`+Link`).
        protocols[0].name = cs("hearth-loadgen")
        protocols[0].callback = lws_callback_http_dummy

        guard let loop = clws_ev_loop_new() else {
            failures.append("cannot create the libev loop")
            return
        }
        self.loop = loop
        let foreignLoops = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 1)
        foreignLoops.initialize(to: loop)
        defer { foreignLoops.deallocate() }

        var info = lws_context_creation_info()
        info.port = -1  // CONTEXT_PORT_NO_LISTEN: client only
        info.protocols = UnsafePointer(protocols)
        info.options = CLWS_OPT_DO_SSL_GLOBAL_INIT | CLWS_OPT_LIBEV | CLWS_OPT_DISABLE_OS_CA_CERTS
        info.foreign_loops = foreignLoops
        info.user = Unmanaged.passUnretained(self).toOpaque()
        guard let ctx = lws_create_context(&info) else {
            clws_ev_loop_destroy(loop)
            failures.append("lws_create_context failed (is libwebsockets-evlib-ev installed?)")
            return
        }
        context = ctx
        // The server's certificate is a throwaway self-signed one: it is not verified, and no CA
        // store is loaded (with one, OpenSSL 3 listed /etc/ssl/certs for every handshake).
        if !plan.plain {
            sslContext = clws_loadgen_ssl_ctx()
            if sslContext == nil { failures.append("cannot create the TLS client context") }
        }
        clws_prepare_start(loop, flusher, loadgenFlushCallback, Unmanaged.passUnretained(self).toOpaque())

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

        clws_prepare_stop(loop, flusher)
        for c in connections { releaseLink(c) }
        if let sslContext { SSL_CTX_free(sslContext) }
        sslContext = nil
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
        guard let failure = openLink(c, now: monotonicNanos()), !c.closed else { return }
        c.closed = true
        stats.connectErrors += 1
        if stats.connectErrorSamples.count < 5 { stats.connectErrorSamples.append(failure) }
    }

    /// The WebSocket is open: a new member says hello (or, against a peer relay, is joined at
    /// once); a reconnect in the storm resumes its held seat from the last seq processed.
    func opened(_ c: LoadClient) {
        let now = monotonicNanos()
        c.link = .open
        c.established = true
        if c.away {
            stats.stormHandshake.record(micros(now, c.reconnectIntended))
            if let ssl = c.ssl, SSL_session_reused(ssl) == 1 { stats.stormTLSResumed += 1 }
            send(c, .resume(secret: c.resumeSecret, lastSeq: UInt64(max(0, c.lastEventSeq)), rid: "resume"))
            return
        }
        stats.established += 1
        stats.handshake.record(micros(now, c.connectIntended))
        if plan.relay {
            relayJoined(c, now: now)
        } else {
            send(c, .hello(token: c.token, rid: "hello"))
        }
    }

    func connectionEnded(_ c: LoadClient, error: String?) {
        guard !c.closed else { return }
        c.closed = true
        guard phase != .done else { return }
        if c.away && !c.established {
            // A storm reconnect that failed before the WebSocket opened: retry (as a client would).
            if c.reconnectAttempts < 4 {
                stats.stormRetries += 1
                if stats.stormRetrySamples.count < 5 { stats.stormRetrySamples.append(error ?? "closed before open") }
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
