import CJansson
import CLws

#if canImport(Glibc)
    import Glibc
#endif

typealias JSONValue = UnsafeMutablePointer<json_t>

/// One event-loop thread: an lws client context on its own libev loop (a foreign loop, as in
/// the server), many connections, the groups they play, and what they measured. Everything
/// here is confined to that thread; the main thread reads `stats` and `failures` after join.
final class Worker {
    enum Phase { case setup, steady, drain, control, done }

    let plan: Plan
    let index: Int
    /// The figures of the step in progress; `steps` holds the finished ones.
    var stats = Stats()
    var steps: [Stats] = []
    var failures: [String] = []
    private var step = 0
    private var chatRate: Double { plan.chatRates[step] }
    private var previousTotals = Totals()
    private var stepClosed = false
    /// Chat deliveries owed (recipients per message sent) and made, for the drain.
    private var liveExpected = 0
    private var liveUnique = 0
    var connections: [Connection] = []
    var groups: [Group] = []
    private var heap = EventHeap()
    private var context: OpaquePointer?
    private var loop: UnsafeMutableRawPointer?
    private let eventTimer: UnsafeMutablePointer<clws_timer>
    private let phaseTimer: UnsafeMutablePointer<clws_timer>
    private var eventTimerAt: UInt64 = .max
    private(set) var phase = Phase.setup
    private var t0: UInt64 = 0
    private var steadyStart: UInt64 = 0
    private var steadyEnd: UInt64 = 0
    private var drainEnd: UInt64 = 0
    private var controlDeadline: UInt64 = 0
    private var groupsReady = 0
    private var rng: XorShift
    private let pre = clws_pre()
    /// The lws retry/idle policy (validity timers off), alive while `run` is.
    private var retryPolicy: UnsafePointer<lws_retry_bo_t>?
    private var cStrings: [UnsafeMutablePointer<CChar>] = []
    private var sourceAddresses: [UnsafeMutablePointer<CChar>] = []
    private let offerPayload: String
    private let answerPayload: String
    private let icePerSide: Int
    // Reconnect storm.
    private var stormIntended: UInt64 = 0
    private var stormPending = 0
    private var stormDone = false
    private var stormDeadline: UInt64 = 0
    private var stormLastResumed: UInt64 = 0
    private var stormCPUAtDrop: (server: Double?, generator: Double) = (nil, 0)
    /// Unaffected rooms' chat deliveries (receipt, intended, latency µs) and the generator's
    /// 10 ms probe timer (intended, lateness ns): split at the drop instant and at all-back.
    private(set) var unaffectedSamples: [(UInt64, UInt64, UInt64)] = []
    private(set) var loopSamples: [(UInt64, UInt64)] = []
    /// The step, the steady start, the drop instant and the all-back moment (monotonic ns), once
    /// the storm is over: the main thread splits the /healthz probe's samples with them.
    private(set) var stormWindow: (step: Int, steadyStart: UInt64, drop: UInt64, end: UInt64)?

    /// Shared by a process's workers in a storm: the steady phase starts in all of them at once.
    private let sync: RunSync
    private var reportedReady = false

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
        offerPayload = Worker.sdp(kind: "offer", bytes: plan.sdpBytes)
        answerPayload = Worker.sdp(kind: "answer", bytes: plan.sdpBytes)
        let minter = TokenMinter(secret: plan.secret)
        for i in 0..<plan.sourceCount {
            sourceAddresses.append(strdup("127.0.0.\(plan.sourceBase + i)"))
        }
        for g in groupIndices {
            let room = "\(plan.roomPrefix)-\(g)"
            let group = Group(
                local: groups.count, room: room, path: strdup(plan.relay ? "/relay/\(room)" : "/v1/rooms/\(room)"))
            for slot in 0..<plan.groupSize {
                let slow = slot >= plan.groupSize - plan.slowPerGroup && slot > 0
                let token =
                    plan.relay
                    ? ""
                    : minter.mint(
                        user: "\(room)-u\(slot)", room: room, role: slot == 0 ? "facilitator" : "participant",
                        name: "s\(slot)", consentVersion: plan.consentVersion, capacity: max(12, plan.groupSize),
                        waitingRoom: plan.waitingRoom)
                let c = Connection(
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

    static func from(_ wsi: OpaquePointer) -> Worker? {
        guard let ctx = lws_get_context(wsi), let p = lws_context_user(ctx) else { return nil }
        return Unmanaged<Worker>.fromOpaque(p).takeUnretainedValue()
    }

    private func cs(_ s: String) -> UnsafePointer<CChar> {
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

    private func sul(_ t: UnsafeMutablePointer<clws_timer>) -> UnsafeMutablePointer<lws_sorted_usec_list_t> {
        UnsafeMutableRawPointer(t).assumingMemoryBound(to: lws_sorted_usec_list_t.self)
    }

    private func schedule(_ t: UnsafeMutablePointer<clws_timer>, afterMicros us: Int64) {
        guard let context else { return }
        t.pointee.owner = Unmanaged.passUnretained(self).toOpaque()
        lws_sul_schedule(context, 0, sul(t), loadgenTimerCallback, max(0, us))
    }

    private func armEventTimer(now: UInt64) {
        guard let top = heap.top else {
            eventTimerAt = .max
            return
        }
        if top.at == eventTimerAt { return }
        eventTimerAt = top.at
        schedule(eventTimer, afterMicros: top.at > now ? Int64((top.at - now) / 1000) : 0)
    }

    private func push(_ e: TimedEvent, now: UInt64) {
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

    private func phaseTick(now: UInt64) {
        switch phase {
        case .setup:
            if groupsReady == groups.count && !reportedReady {
                reportedReady = true
                sync.ready.add(1, ordering: .sequentiallyConsistent)
            }
            if groupsReady == groups.count
                && (plan.stormAt == 0 || sync.ready.load(ordering: .sequentiallyConsistent) == sync.workers)
            {
                beginSteady(now: now)
            } else if now > t0 + UInt64(plan.setupTimeout * 1e9) {
                failures.append(
                    "setup timed out after \(plan.setupTimeout) s: \(groupsReady)/\(groups.count) groups ready, "
                        + "\(stats.established) established, \(stats.admittedCount) admitted")
                finish()
            }
        case .steady:
            if now >= steadyEnd {
                phase = .drain
                emit("PHASE steady-end \(wallMillis()) step=\(step)")
            }
        case .drain:
            // Drain at least `drain` s, and on until every chat message sent has reached every
            // recipient (at most 30 s more): only what never arrives counts as lost.
            if now >= drainEnd && (liveUnique < liveExpected && now < drainEnd + 30_000_000_000) { return }
            if now >= drainEnd && stormIntended > 0 && !stormDone {
                if now < stormDeadline { return }
                endStorm(now: now)
            }
            if now >= drainEnd {
                stats.drainSeconds = Double(now - steadyEnd) / 1e9
                closeStep()
                let failed =
                    steps.last.map { $0.chatLost > 0 || $0.unexpectedCloses > 0 || !$0.errorCodes.isEmpty } ?? true
                if plan.p99LimitMs > 0, let last = steps.last,
                    Double(last.chatDelivery.valueAtPercentile(99)) / 1000 > plan.p99LimitMs
                {
                    steps[steps.count - 1].overLimit = true
                    if step + 1 < plan.chatRates.count {
                        emit(
                            "PHASE knee \(wallMillis()) rate=\(chatRate): chat p99 over \(plan.p99LimitMs) ms, stopping"
                        )
                        finish()
                        return
                    }
                }
                if failed && step + 1 < plan.chatRates.count {
                    failures.append("step at \(chatRate)/s failed: the remaining rates were not run")
                    finish()
                } else if step + 1 < plan.chatRates.count {
                    step += 1
                    beginSteady(now: now)
                } else if plan.controlBurst {
                    beginControl(now: now)
                } else {
                    finish()
                }
            }
        case .control:
            if groups.allSatisfy({ $0.muteComplete && $0.removeComplete }) || now > controlDeadline {
                finish()
            }
        case .done:
            break
        }
    }

    private func beginSteady(now: UInt64) {
        phase = .steady
        stepClosed = false
        // The previous step's periodic sends (due after its end) must not run on in this one.
        heap.removeAll { $0.kind == .chat || $0.kind == .hand || $0.kind == .spotlight }
        eventTimerAt = .max
        armEventTimer(now: now)
        steadyStart = now + UInt64(plan.settle * 1e9)
        if step == 0 && plan.stormAt > 0 {
            // One steady start for every worker of the process (the first one sets it).
            let (exchanged, original) = sync.steadyStart.compareExchange(
                expected: 0, desired: steadyStart, ordering: .sequentiallyConsistent)
            if !exchanged { steadyStart = max(original, now) }
        }
        steadyEnd = steadyStart + UInt64(plan.duration * 1e9)
        drainEnd = steadyEnd + UInt64(plan.drain * 1e9)
        if step == 0 {
            emit("PHASE setup-done \(wallMillis()) groups=\(groups.count) connections=\(connections.count)")
        }
        emit("PHASE steady-start \(wallMillis() + Int64(plan.settle * 1000)) step=\(step) rate=\(chatRate)")
        func phaseOffset(_ rate: Double) -> UInt64 {
            UInt64(Double.random(in: 0..<(1e9 / rate), using: &rng))
        }
        for c in connections where !c.slow {
            if chatRate > 0 {
                push(TimedEvent(at: steadyStart + phaseOffset(chatRate), kind: .chat, target: Int32(c.index)), now: now)
            }
            if plan.handRate > 0 && c.slot > 0 {
                push(
                    TimedEvent(at: steadyStart + phaseOffset(plan.handRate), kind: .hand, target: Int32(c.index)),
                    now: now)
            }
            if plan.controlRate > 0 && c.slot == 0 && plan.groupSize > 1 {
                push(
                    TimedEvent(
                        at: steadyStart + phaseOffset(plan.controlRate), kind: .spotlight, target: Int32(c.index)),
                    now: now)
            }
        }
        if step == 0 && plan.stormAt > 0 {
            push(TimedEvent(at: steadyStart + UInt64(plan.stormAt * 1e9), kind: .storm, target: 0), now: now)
            push(TimedEvent(at: steadyStart, kind: .tick, target: 0), now: now)
        }
        for c in connections where c.slow && step == 0 {
            let stop = steadyStart + UInt64(plan.slowAfter * 1e9)
            push(TimedEvent(at: stop, kind: .slowStop, target: Int32(c.index)), now: now)
            push(
                TimedEvent(at: stop + UInt64(plan.slowPause * 1e9), kind: .slowResume, target: Int32(c.index)), now: now
            )
        }
    }

    private func beginControl(now: UInt64) {
        phase = .control
        let base = now + 500_000_000
        let spread = plan.controlSpread * 1e9
        for g in groups {
            let at = base + UInt64(spread * Double(g.local) / Double(max(1, groups.count)))
            push(TimedEvent(at: at, kind: .muteAll, target: Int32(g.slots[0])), now: now)
            push(TimedEvent(at: at + 2_000_000_000, kind: .remove, target: Int32(g.slots[0])), now: now)
        }
        controlDeadline = base + UInt64(spread) + 2_000_000_000 + UInt64(plan.controlTimeout * 1e9)
        emit("PHASE control-start \(wallMillis() + 500)")
    }

    private func finish() {
        guard phase != .done else { return }
        let unfinishedStep = phase != .control && !stepClosed
        phase = .done
        heap.removeAll()
        if unfinishedStep {
            closeStep()
        } else {
            // The control burst's figures belong to the last step.
            var totals = Totals()
            verify(into: &totals)
            steps[steps.count - 1].take(controlFrom: stats)
            steps[steps.count - 1].slowStillOpen = totals.slowStillOpen
        }
        emit("PHASE done \(wallMillis())")
        if let loop { clws_ev_break_all(loop) }
    }

    // MARK: - Timed actions

    private func perform(_ e: TimedEvent, now: UInt64) {
        let c = connections[Int(e.target)]
        switch e.kind {
        case .connect:
            connect(c)
        case .chat:
            guard e.at < steadyEnd, phase == .steady else { return }
            if c.admitted && !c.closed && !c.away { sendChat(c, intended: e.at, now: now) }
            push(TimedEvent(at: e.at + UInt64(1e9 / chatRate), kind: .chat, target: e.target), now: now)
        case .hand:
            guard e.at < steadyEnd, phase == .steady else { return }
            if c.admitted && !c.closed {
                c.handUp.toggle()
                c.handsSent += 1
                stats.handSent += 1
                send(c, c.handUp ? "{\"type\":\"raise-hand\"}" : "{\"type\":\"lower-hand\"}")
            }
            push(TimedEvent(at: e.at + UInt64(1e9 / plan.handRate), kind: .hand, target: e.target), now: now)
        case .spotlight:
            guard e.at < steadyEnd, phase == .steady else { return }
            let g = c.group
            if c.admitted && !c.closed, let target = connections[g.slots[1]].memberID.nonEmpty {
                g.spotlightOn.toggle()
                g.controlsSent += 1
                g.lastControlIntended = e.at
                stats.controlSent += 1
                send(
                    c,
                    g.spotlightOn
                        ? "{\"type\":\"spotlight\",\"member\":\"\(target)\"}"
                        : "{\"type\":\"spotlight\",\"member\":null}")
            }
            push(TimedEvent(at: e.at + UInt64(1e9 / plan.controlRate), kind: .spotlight, target: e.target), now: now)
        case .muteAll:
            c.group.muteIntended = e.at
            send(c, "{\"type\":\"mute-all\"}")
        case .remove:
            let g = c.group
            let victim = connections[g.slots[g.slots.count - 1]]
            g.removedSlot = victim.slot
            g.removeIntended = e.at
            send(c, "{\"type\":\"remove\",\"member\":\"\(victim.memberID)\"}")
        case .slowStop:
            if let wsi = c.wsi, !c.closed {
                c.stoppedReading = true
                _ = lws_rx_flow_control(wsi, 0)
            }
        case .slowResume:
            if let wsi = c.wsi, !c.closed {
                c.stoppedReading = false
                _ = lws_rx_flow_control(wsi, 1)
            }
        case .storm:
            beginStorm(at: e.at)
        case .reconnect:
            guard c.away, phase != .done else { return }
            c.reconnectAttempts += 1
            c.closed = false
            c.closeCode = -1
            connect(c)
        case .tick:
            let t = monotonicNanos()
            loopSamples.append((e.at, t > e.at ? t - e.at : 0))
            if e.at < steadyEnd && phase == .steady {
                push(TimedEvent(at: e.at + 10_000_000, kind: .tick, target: 0), now: t)
            }
        }
    }

    // MARK: - Reconnect storm

    /// The drop instant: every stormed connection's TCP connection vanishes without a close
    /// frame. `SO_LINGER {on, 0}` then `shutdown(SHUT_RDWR)` on the lws socket: the shutdown
    /// sends FIN at once and forbids any further write on the socket, so lws can no longer send a
    /// close frame; when lws then closes the fd, linger 0 turns the close into an RST. The old wsi
    /// is detached first (its opaque user data cleared), so its own close callback is ignored
    /// here. Each client then reconnects after its jitter over a new TLS connection.
    private func beginStorm(at intended: UInt64) {
        stormIntended = intended
        stormDeadline = intended + UInt64(plan.stormTimeout * 1e9)
        stormCPUAtDrop = (plan.serverPid > 0 ? processCPUSeconds(plan.serverPid) : nil, ownCPUSeconds())
        let t0 = monotonicNanos()
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        for c in connections where c.stormed {
            stats.stormClients += 1
            stormPending += 1
            c.echoedAtDrop = c.lastFrom[c.slot]
            c.sentAtDrop = c.chatSent
            c.ownConfirmed = c.echoedAtDrop
            stats.stormInDoubt += Int(c.sentAtDrop - c.echoedAtDrop)
            if let wsi = c.wsi, !c.closed {
                let fd = lws_get_socket_fd(wsi)
                lws_set_opaque_user_data(wsi, nil)
                if fd >= 0 {
                    _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                    _ = shutdown(fd, Int32(SHUT_RDWR))
                }
            }
            c.wsi = nil
            c.away = true
            c.established = false
            c.closed = true
            c.rx.removeAll(keepingCapacity: true)
            c.outbox.removeAll()
            c.outHead = 0
            let jitter = plan.stormJitter > 0 ? Double.random(in: 0..<plan.stormJitter, using: &rng) : 0
            c.reconnectIntended = intended + UInt64(jitter * 1e9)
            heap.push(TimedEvent(at: c.reconnectIntended, kind: .reconnect, target: Int32(c.index)))
        }
        stats.stormDropLoopMs = Double(monotonicNanos() - t0) / 1e6
        eventTimerAt = .max
        armEventTimer(now: monotonicNanos())
        emit(
            "PHASE storm-drop \(wallMillis()) clients=\(stats.stormClients) jitter=\(plan.stormJitter) "
                + "drop-loop-ms=\(formatFixed(stats.stormDropLoopMs, 1))")
        if stormPending == 0 { endStorm(now: monotonicNanos()) }
    }

    private func clientResumed(_ c: Connection, _ root: JSONValue, now: UInt64) {
        guard c.away, !c.resumed else { return }
        c.resumed = true
        // Each resume secret works once: the next resume needs the one `resumed` carries.
        if let secret = jstr(jget(root, "resumeSecret")) { c.resumeSecret = secret }
        c.away = false
        stats.stormResumed += 1
        stats.stormResume.record(micros(now, stormIntended))
        stats.stormResumeFromReconnect.record(micros(now, c.reconnectIntended))
        stormLastResumed = max(stormLastResumed, now)
        if jbool(jget(root, "gap")) == true { stats.stormGaps += 1 }
        c.replayLeft = Int(jint(jget(root, "replayed")) ?? 0)
        stats.stormReplayed += c.replayLeft
        if c.replayLeft == 0 { clientBack(c, now: now) }
    }

    /// Resumed and every replayed event received: the in-doubt messages are settled (the server
    /// accepted exactly those whose own copy came back to the sender).
    private func clientBack(_ c: Connection, now: UInt64) {
        guard !c.back else { return }
        c.back = true
        stats.stormBack += 1
        stats.stormBackHist.record(micros(now, stormIntended))
        c.droppedWithConnection = c.sentAtDrop - max(min(c.ownConfirmed, c.sentAtDrop), c.echoedAtDrop)
        stats.stormDroppedWithConnection += Int(c.droppedWithConnection)
        liveExpected -= Int(c.droppedWithConnection) * c.group.recipients
        stormPending -= 1
        if stormPending == 0 { endStorm(now: now) }
    }

    /// All back (or the storm timed out). The main thread splits the unaffected rooms' samples
    /// and the loop probe's at the drop instant and this moment (every worker's window).
    private func endStorm(now: UInt64) {
        guard !stormDone else { return }
        stormDone = true
        stormWindow = (step, steadyStart, stormIntended, now)
        let wall = max(Double(now - stormIntended) / 1e9, 0.001)
        guard stats.stormClients > 0 else { return }
        stats.stormGeneratorCPU = 100 * (ownCPUSeconds() - stormCPUAtDrop.generator) / wall
        if let before = stormCPUAtDrop.server, let after = processCPUSeconds(plan.serverPid) {
            stats.stormServerCPU = 100 * (after - before) / wall
        }
        stats.stormAllBackSeconds = Double(now - stormIntended) / 1e9
        stats.stormAllResumedSeconds = stormLastResumed > 0 ? Double(stormLastResumed - stormIntended) / 1e9 : 0
        if stormPending > 0 {
            failures.append(
                "reconnect storm: \(stormPending) of \(stats.stormClients) clients not back after \(plan.stormTimeout) s"
            )
        }
        emit(
            "PHASE storm-back \(wallMillis()) back=\(stats.stormBack)/\(stats.stormClients) "
                + "after=\(formatFixed(stats.stormAllBackSeconds, 3))s")
    }

    private func connect(_ c: Connection) {
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

    private func connection(_ wsi: OpaquePointer) -> Connection? {
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
                send(c, "{\"type\":\"resume\",\"secret\":\"\(c.resumeSecret)\",\"lastSeq\":\(c.lastEventSeq)}")
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
                send(c, "{\"type\":\"hello\",\"token\":\"\(c.token)\"}")
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

    private func connectionEnded(_ c: Connection, error: String?) {
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

    // MARK: - Sending

    private func send(_ c: Connection, _ text: String) {
        guard let wsi = c.wsi, !c.closed else { return }
        var bytes = [UInt8](repeating: 0, count: pre)
        bytes.append(contentsOf: text.utf8)
        c.outbox.append(bytes)
        if c.outbox.count - c.outHead == 1 { lws_callback_on_writable(wsi) }
    }

    private func sendChat(_ c: Connection, intended: UInt64, now: UInt64) {
        c.chatSent += 1
        let n = c.chatSent
        let r = Int(n) & (Connection.ringSize - 1)
        if c.ringRemaining[r] > 0 { stats.ringOverflows += 1 }
        c.ringSeq[r] = n
        c.ringRemaining[r] = Int32(c.group.recipients)
        c.ringMax[r] = 0
        liveExpected += c.group.recipients
        let head = "{\"type\":\"chat\",\"to\":\"room\",\"text\":\"lg|\(c.group.local)|\(c.slot)|\(n)|\(intended)|"
        let pad = max(1, plan.chatBytes - head.utf8.count - 2)
        send(c, head + String(repeating: "x", count: pad) + "\"}")
        stats.chatSent += 1
        stats.sendLag.record(micros(now, intended))
    }

    private func sendSignal(_ c: Connection, to peer: String, kind: String) {
        if kind == "offer" || kind == "answer" {
            send(
                c,
                "{\"type\":\"signal\",\"to\":\"\(peer)\",\"kind\":\"\(kind)\",\"payload\":"
                    + (kind == "offer" ? offerPayload : answerPayload) + "}")
            stats.signalsSent += 1
        }
        for i in 0..<icePerSide {
            let head =
                "{\"type\":\"signal\",\"to\":\"\(peer)\",\"kind\":\"ice\",\"payload\":{\"candidate\":\"candidate:"
                + "\(c.slot)\(i) 1 udp 2122260223 192.0.2.\(c.slot + 1) \(50000 + i) typ host generation 0 ufrag lg"
            let tail = "\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0}}"
            let pad = max(0, plan.iceBytes - head.utf8.count - tail.utf8.count)
            send(c, head + String(repeating: "x", count: pad) + tail)
            stats.signalsSent += 1
        }
    }

    static func sdp(kind: String, bytes: Int) -> String {
        var s = "v=0\\r\\no=- 4611731400430051336 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\n"
        var line = 0
        while s.utf8.count < bytes {
            s += "a=x-lg-\(line):abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnop\\r\\n"
            line += 1
        }
        return "{\"type\":\"\(kind)\",\"sdp\":\"\(s)\"}"
    }

    // MARK: - Receiving

    private func receive(_ c: Connection, _ frame: UnsafeRawBufferPointer) {
        guard let base = frame.baseAddress, frame.count > 0 else { return }
        let now = monotonicNanos()
        stats.framesReceived += 1
        stats.bytesReceived += frame.count
        var start = 0
        while start < frame.count {
            let rest = frame.count - start
            let nl = memchr(base + start, 0x0A, rest)
            let end = nl.map { base.distance(to: UnsafeRawPointer($0)) } ?? frame.count
            if end > start { line(c, base + start, end - start, now: now) }
            start = end + 1
        }
    }

    private static let typePrefix = Array("{\"type\":\"".utf8)
    private static let chatType = Array("chat\"".utf8)
    private static let seqKey = Array("\"seq\":".utf8)
    private static let textKey = Array("\"text\":\"lg|".utf8)

    private func line(_ c: Connection, _ p: UnsafeRawPointer, _ n: Int, now: UInt64) {
        stats.messagesReceived += 1
        let b = p.assumingMemoryBound(to: UInt8.self)
        let tp = Worker.typePrefix
        if n > tp.count + 5 && memcmp(p, tp, tp.count) == 0 && memcmp(p + tp.count, Worker.chatType, 5) == 0 {
            let seq = Worker.integer(after: Worker.seqKey, in: b, n, limit: 40)
            if let seq { checkSeq(c, Int64(seq)) }
            chat(c, b, n, now: now)
            if seq != nil && c.replayLeft > 0 { replayedEvent(c, now: now) }
            return
        }
        if n > Worker.signalPrefix.count && memcmp(p, Worker.signalPrefix, Worker.signalPrefix.count) == 0,
            signal(c, b, n, now: now)
        {
            return
        }
        guard let root = json_loadb(p.assumingMemoryBound(to: CChar.self), n, 0, nil) else {
            failures.append("unparsable message from the server")
            return
        }
        defer { cj_decref(root) }
        let seq = jint(jget(root, "seq"))
        if let seq { checkSeq(c, seq) }
        guard let type = jstr(jget(root, "type")) else { return }
        message(c, type, root, now: now)
        if seq != nil && c.replayLeft > 0 { replayedEvent(c, now: now) }
    }

    /// One replayed (logged) event after `resumed`; the last one brings the client back.
    private func replayedEvent(_ c: Connection, now: UInt64) {
        c.replayLeft -= 1
        if c.replayLeft == 0 { clientBack(c, now: now) }
    }

    private static let signalPrefix = Array("{\"type\":\"signal\",\"from\":\"".utf8)

    /// Fast path for relayed signals (most of the setup traffic; their SDP need not be parsed):
    /// `{"type":"signal","from":"pN","kind":"K",...`. Returns false if the layout differs.
    private func signal(_ c: Connection, _ b: UnsafePointer<UInt8>, _ n: Int, now: UInt64) -> Bool {
        var i = Worker.signalPrefix.count
        let fromStart = i
        while i < n && b[i] != 34 { i += 1 }  // '"'
        let from = String(decoding: UnsafeBufferPointer(start: b + fromStart, count: i - fromStart), as: UTF8.self)
        let kindKey = Array("\",\"kind\":\"".utf8)
        guard i + kindKey.count + 3 < n, memcmp(b + i, kindKey, kindKey.count) == 0 else { return false }
        let k = b[i + kindKey.count]
        let kind = k == 111 ? "offer" : k == 97 ? "answer" : k == 105 ? "ice" : ""  // o, a, i
        guard !kind.isEmpty else { return false }
        handleSignal(c, from: from, kind: kind, now: now)
        return true
    }

    private func handleSignal(_ c: Connection, from: String, kind: String, now: UInt64) {
        stats.signalsReceived += 1
        guard let peer = c.group.slotByMember[from] else {
            failures.append("signal from an unknown member")
            return
        }
        switch kind {
        case "offer":
            c.peerPrimary[peer] = true
            sendSignal(c, to: from, kind: "answer")
        case "answer":
            c.peerPrimary[peer] = true
        default:
            c.peerICE[peer] += 1
        }
        checkPeer(c, peer, now: now)
    }

    private func checkSeq(_ c: Connection, _ seq: Int64) {
        if seq <= c.lastEventSeq { stats.seqViolations += 1 }
        c.lastEventSeq = max(c.lastEventSeq, seq)
    }

    /// Parses the decimal integer after `key` (searched in the first `limit` bytes).
    private static func integer(after key: [UInt8], in b: UnsafePointer<UInt8>, _ n: Int, limit: Int) -> UInt64? {
        guard let hit = find(key, in: b, min(n, limit)) else { return nil }
        var i = hit + key.count
        var v: UInt64 = 0
        var digits = 0
        while i < n, b[i] >= 48, b[i] <= 57 {
            v = v &* 10 &+ UInt64(b[i] - 48)
            i += 1
            digits += 1
        }
        return digits > 0 ? v : nil
    }

    /// The offset of `key` in the first `n` bytes of `b` (memmem is not visible through Glibc).
    private static func find(_ key: [UInt8], in b: UnsafePointer<UInt8>, _ n: Int) -> Int? {
        guard let first = key.first, n >= key.count else { return nil }
        var i = 0
        let last = n - key.count
        while i <= last {
            guard let hit = memchr(b + i, Int32(first), last - i + 1) else { return nil }
            let at = UnsafeRawPointer(b).distance(to: UnsafeRawPointer(hit))
            if memcmp(b + at, key, key.count) == 0 { return at }
            i = at + 1
        }
        return nil
    }

    private func chat(_ c: Connection, _ b: UnsafePointer<UInt8>, _ n: Int, now: UInt64) {
        let key = Worker.textKey
        guard let hit = Worker.find(key, in: b, n) else { return }
        var i = hit + key.count
        var fields: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for f in 0..<4 {
            var v: UInt64 = 0
            while i < n, b[i] >= 48, b[i] <= 57 {
                v = v &* 10 &+ UInt64(b[i] - 48)
                i += 1
            }
            guard i < n, b[i] == 124 else { return }  // '|'
            i += 1
            switch f {
            case 0: fields.0 = v
            case 1: fields.1 = v
            case 2: fields.2 = v
            default: fields.3 = v
            }
        }
        let (groupLocal, senderSlot, seq, intended) = (Int(fields.0), Int(fields.1), UInt32(fields.2), fields.3)
        guard groupLocal == c.group.local, senderSlot < c.groupSize else {
            failures.append("chat delivered to the wrong room")
            return
        }
        if c.slow { return }
        let latency = micros(now, intended)
        stats.chatDelivered += 1
        if now <= steadyEnd { stats.deliveredInWindow += 1 }
        stats.chatDelivery.record(latency)
        let last = c.lastFrom[senderSlot]
        if seq == last {
            stats.chatDuplicated += 1
            return
        } else if seq < last {
            stats.chatReordered += 1
            return
        }
        c.lastFrom[senderSlot] = seq
        c.receivedFrom[senderSlot] += 1
        liveUnique += 1
        if c.stormed && senderSlot == c.slot && seq <= c.sentAtDrop { c.ownConfirmed = max(c.ownConfirmed, seq) }
        if plan.stormAt > 0 && !c.group.stormed { unaffectedSamples.append((now, intended, latency)) }
        let sender = connections[c.group.slots[senderSlot]]
        let r = Int(seq) & (Connection.ringSize - 1)
        if sender.ringSeq[r] == seq && sender.ringRemaining[r] > 0 {
            sender.ringMax[r] = max(sender.ringMax[r], latency)
            sender.ringRemaining[r] -= 1
            if sender.ringRemaining[r] == 0 { stats.chatLastRecipient.record(sender.ringMax[r]) }
        }
    }

    private func message(_ c: Connection, _ type: String, _ root: JSONValue, now: UInt64) {
        let g = c.group
        switch type {
        case "resumed":
            clientResumed(c, root, now: now)
        case "welcome":
            c.resumeSecret = jstr(jget(root, "resumeSecret")) ?? ""
            stats.welcomed += 1
            stats.welcome.record(micros(now, c.connectIntended))
            let you = jget(root, "you")
            c.memberID = jstr(jget(you, "id")) ?? ""
            g.slotByMember[c.memberID] = c.slot
            if let room = jget(root, "room"), jstr(jget(you, "placement")) == "room" {
                admitted(c, room: room, now: now)
            } else if let waiting = jget(root, "waiting"), let version = jstr(jget(waiting, "consentVersion")),
                jbool(jget(waiting, "consentAcknowledged")) != true
            {
                send(c, "{\"type\":\"consent\",\"version\":\"\(version)\"}")
            }
        case "waiting-updated":
            if c.slot == 0, let m = jget(root, "member") { considerAdmitting(c, m) }
        case "admitted":
            if let room = jget(root, "room") { admitted(c, room: room, now: now) }
        case "member-joined":
            learn(g, jget(root, "member"))
        case "signal":
            guard let from = jstr(jget(root, "from")), let kind = jstr(jget(root, "kind")) else {
                failures.append("signal without from/kind")
                return
            }
            handleSignal(c, from: from, kind: kind, now: now)
        case "member-updated":
            if phase == .control {
                let m = jget(root, "member")
                if jbool(jget(m, "audio")) == false && !c.muteDone && g.muteIntended > 0 {
                    c.mutesSeen += 1
                    if c.mutesSeen == c.groupSize - 1 {
                        c.muteDone = true
                        g.muteRecipientsDone += 1
                        if g.muteRecipientsDone == c.groupSize {
                            g.muteComplete = true
                            stats.muteGroupsDone += 1
                            stats.muteAllFanout.record(micros(now, g.muteIntended))
                        }
                    }
                }
            } else if (phase == .steady || phase == .drain) && plan.handRate > 0 {
                if !c.slow {
                    c.handUpdates += 1
                    stats.handDelivered += 1
                    if now <= steadyEnd { stats.deliveredInWindow += 1 }
                }
            }
        case "member-left":
            if phase == .control, g.removeIntended > 0, !c.removeSeen, c.slot != g.removedSlot {
                c.removeSeen = true
                g.removeRecipientsDone += 1
                if g.removeRecipientsDone == c.groupSize - 1 {
                    g.removeComplete = true
                    stats.removeGroupsDone += 1
                    stats.removeFanout.record(micros(now, g.removeIntended))
                }
            }
        case "removed":
            c.gotRemoved = true
        case "room-updated":
            if (phase == .steady || phase == .drain) && g.controlsSent > 0 && !c.slow {
                c.controlUpdates += 1
                stats.controlDelivered += 1
                if now <= steadyEnd { stats.deliveredInWindow += 1 }
                stats.controlDelivery.record(micros(now, g.lastControlIntended))
            }
        case "error":
            let code = jstr(jget(root, "code")) ?? "?"
            stats.errorCodes[code, default: 0] += 1
        default:
            break
        }
    }

    private func learn(_ g: Group, _ member: JSONValue?) {
        guard let id = jstr(jget(member, "id")), let alias = jstr(jget(member, "alias")), alias.first == "s",
            let slot = Int(alias.dropFirst()), slot < plan.groupSize
        else { return }
        g.slotByMember[id] = slot
    }

    private func considerAdmitting(_ fac: Connection, _ waiting: JSONValue) {
        guard jbool(jget(waiting, "ready")) == true, let id = jstr(jget(waiting, "id")),
            !fac.group.admitRequested.contains(id)
        else { return }
        fac.group.admitRequested.insert(id)
        send(fac, "{\"type\":\"admit\",\"member\":\"\(id)\"}")
    }

    private func admitted(_ c: Connection, room: JSONValue, now: UInt64) {
        guard !c.admitted else { return }
        countAdmission(c, now: now)
        let g = c.group
        let members = jget(room, "members")
        var peers: [String] = []
        if let members {
            for i in 0..<json_array_size(members) {
                let m = json_array_get(members, i)
                learn(g, m)
                if let id = jstr(jget(m, "id")), id != c.memberID { peers.append(id) }
            }
        }
        if c.slot == 0, let waiting = jget(room, "waiting") {
            for i in 0..<json_array_size(waiting) {
                if let w = json_array_get(waiting, i) { considerAdmitting(c, w) }
            }
        }
        if c.slot > 0 { send(c, "{\"type\":\"media\",\"audio\":true}") }
        if plan.mesh && plan.groupSize > 1 {
            for p in peers { sendSignal(c, to: p, kind: "offer") }
        } else {
            connectionNegotiated(c, now: now)
        }
    }

    /// Relay mode: an open connection is in its room (no hello, no waiting room, no mesh).
    private func relayJoined(_ c: Connection, now: UInt64) {
        countAdmission(c, now: now)
        connectionNegotiated(c, now: now)
    }

    private func countAdmission(_ c: Connection, now: UInt64) {
        c.admitted = true
        stats.admittedCount += 1
        stats.admitted.record(micros(now, c.connectIntended))
        stats.firstIntendedNs = stats.firstIntendedNs == 0 ? t0 : min(stats.firstIntendedNs, t0)
        stats.lastAdmittedNs = max(stats.lastAdmittedNs, now)
    }

    private func checkPeer(_ c: Connection, _ peer: Int, now: UInt64) {
        guard !c.peerDone[peer], c.peerPrimary[peer], c.peerICE[peer] >= icePerSide else { return }
        c.peerDone[peer] = true
        c.peersNegotiated += 1
        if c.peersNegotiated == c.groupSize - 1 { connectionNegotiated(c, now: now) }
    }

    private func connectionNegotiated(_ c: Connection, now: UInt64) {
        guard !c.negotiated else { return }
        c.negotiated = true
        let g = c.group
        g.negotiatedConnections += 1
        if g.negotiatedConnections == plan.groupSize && !g.ready {
            g.ready = true
            groupsReady += 1
            stats.groupsReady += 1
            stats.negotiated.record(micros(now, g.startIntended))
        }
    }

    // MARK: - Steps and verification

    /// Cumulative per-connection counts at a step's end.
    struct Totals {
        var chatExpected = 0
        var chatLost = 0
        var handExpected = 0
        var controlExpected = 0
        var slowStillOpen = 0
        var unexpected = 0
    }

    /// Ends the step in progress: its expected/lost counts are the cumulative ones minus the
    /// previous step's; its histograms and delivery counters were fresh at the step's start.
    private func closeStep() {
        var totals = Totals()
        verify(into: &totals)
        var s = stats
        s.chatExpected = totals.chatExpected - previousTotals.chatExpected
        s.chatLost = totals.chatLost - previousTotals.chatLost
        s.handExpected = totals.handExpected - previousTotals.handExpected
        s.controlExpected = totals.controlExpected - previousTotals.controlExpected
        s.slowStillOpen = totals.slowStillOpen
        s.unexpectedDeliveries = totals.unexpected - previousTotals.unexpected
        s.steadySeconds = steadyStart > 0 ? plan.duration : 0
        s.stepRate = chatRate
        previousTotals = totals
        steps.append(s)
        stepClosed = true
        // The next step starts with fresh steady-phase figures; setup figures carry over.
        stats.resetSteadyFigures()
    }

    private func verify(into t: inout Totals) {
        for g in groups {
            let members = g.slots.map { connections[$0] }
            let handToggles = members.filter { !$0.slow }.reduce(0) { $0 + $1.handsSent }
            for r in members where !r.slow {
                for s in members where !s.slow {
                    // In-doubt messages the server never accepted (the storm) are owed to nobody.
                    let sent = s.chatSent - s.droppedWithConnection
                    let got = r.receivedFrom[s.slot]
                    t.chatExpected += Int(sent)
                    if got < sent { t.chatLost += Int(sent - got) }
                    if got > sent { t.unexpected += Int(got - sent) }
                }
                t.handExpected += handToggles
                t.controlExpected += g.controlsSent
            }
            for c in members where c.slow && !c.closed { t.slowStillOpen += 1 }
        }
    }
}

@inline(__always)
func micros(_ now: UInt64, _ intended: UInt64) -> UInt64 { now > intended ? (now - intended) / 1000 : 0 }

@inline(__always)
func jget(_ o: JSONValue?, _ key: String) -> JSONValue? {
    guard let o else { return nil }
    return json_object_get(o, key)
}

func jstr(_ o: JSONValue?) -> String? {
    guard let o, cj_is_string(o) != 0, let p = json_string_value(o) else { return nil }
    return String(cString: p)
}

func jbool(_ o: JSONValue?) -> Bool? {
    guard let o, cj_is_boolean(o) != 0 else { return nil }
    return cj_is_true(o) != 0
}

func jint(_ o: JSONValue?) -> Int64? {
    guard let o, cj_is_integer(o) != 0 else { return nil }
    return Int64(json_integer_value(o))
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
