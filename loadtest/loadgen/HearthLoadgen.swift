import ArgumentParser
import CLws
import Foundation
import HearthAuth

@main
struct HearthLoadgen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hearth-loadgen",
        abstract: "Open-loop TLS WebSocket load generator for hearthd (the real v1 protocol, whole groups).",
        subcommands: [Run.self, Merge.self], defaultSubcommand: Run.self)
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Play groups against a running hearthd.")

    @Option(help: "Server address.") var host = "127.0.0.1"
    @Option(help: "Server port.") var port = 8443
    @Option(help: "HS256 token secret (default: $HEARTH_TOKEN_SECRET).") var secret: String?
    @Flag(help: "Drive a peer relay (loadtest/peers) instead of hearthd: steady chat only, no auth.") var relay = false
    @Flag(help: "Plain ws:// instead of TLS (relay mode only).") var plain = false
    @Option(help: "Room id prefix (use a distinct one per generator process).") var roomPrefix = "lg"
    @Option(help: "First group number (several processes: give each its own range).") var groupOffset = 0
    @Option(help: "Groups played by this process.") var groups = 10
    @Option(help: "Connections per group, the facilitator included.") var groupSize = 10
    @Option(help: "Event-loop threads.") var threads = 1
    @Option(help: "New connections per second (open loop).") var connectRate = 200.0
    @Option(help: "Consent version the rooms require ('' for none).") var consent = "lg-1"
    @Flag(help: "Rooms without a waiting room (members are admitted automatically).") var noWaitingRoom = false
    @Flag(help: "Skip the WebRTC mesh signalling burst.") var noMesh = false
    @Option(help: "SDP size (bytes) of offers and answers.") var sdpBytes = 4000
    @Option(help: "ICE candidates per pair (half from each side).") var icePerPair = 10
    @Option(help: "ICE candidate message size (bytes).") var iceBytes = 200
    @Option(help: "Chat messages per member per second; a comma list runs one steady step per rate.")
    var chatRate = "0.5"
    @Option(help: "Chat message size (bytes).") var chatBytes = 200
    @Option(help: "Hand raise/lower toggles per member per second.") var handRate = 0.0
    @Option(help: "Facilitator spotlight toggles per group per second.") var controlRate = 0.0
    @Option(help: "Steady phase length (seconds).") var duration = 20.0
    @Option(help: "Knee search: stop after the first rate whose chat p99 exceeds this many ms.") var p99LimitMs = 0.0
    @Option(help: "Drain time after the steady phase (seconds).") var drain = 3.0
    @Option(help: "Pause between setup and the steady phase (seconds).") var settle = 1.0
    @Option(help: "Give up if the groups are not all ready after this long (seconds).") var setupTimeout = 120.0
    @Flag(help: "After the steady phase: mute-all, then remove one member, in every group.") var controlBurst = false
    @Option(help: "The control burst's intended times spread over this many seconds.") var controlSpread = 1.0
    @Option(
        help:
            "Breakouts: after the steady phase each facilitator opens this many (automatic), members renegotiate and chat in them, then all return (0: off)."
    )
    var breakouts = 0
    @Option(help: "Breakouts: fail if not every group is back and renegotiated after this long (seconds).")
    var breakoutTimeout = 60.0
    @Option(help: "Slow consumers per group (they stop reading).") var slowPerGroup = 0
    @Option(help: "Slow consumers stop reading this long into the steady phase (seconds).") var slowAfter = 2.0
    @Option(help: "...and read again after this long (seconds).") var slowPause = 20.0
    @Option(
        help:
            "Reconnect storm: this many seconds into the steady phase, stormed clients drop and resume (0: none; default $STORM_AT)."
    )
    var stormAt = environmentNumber("STORM_AT") ?? 0
    @Option(
        help:
            "Fraction of the groups whose every member drops (the rest are the unaffected rooms; default $STORM_GROUPS)."
    )
    var stormGroups = environmentNumber("STORM_GROUPS") ?? 0.9
    @Option(help: "Each dropped client reconnects after a uniform 0..<J s delay (default $STORM_JITTER).")
    var stormJitter = environmentNumber("STORM_JITTER") ?? 0
    @Option(help: "The storm fails if not every client is back after this long (seconds; default $STORM_TIMEOUT).")
    var stormTimeout = environmentNumber("STORM_TIMEOUT") ?? 60
    @Option(
        help:
            "1: a reconnect offers the dropped connection's TLS session (resumption, as a browser does); 0: full handshakes (default $STORM_TLS_RESUME, else 0)."
    )
    var stormTlsResume = environmentNumber("STORM_TLS_RESUME") ?? 0
    @Option(help: "First source address: 127.0.0.N.") var sourceBase = 2
    @Option(help: "Number of source addresses.") var sourceCount = 16
    @Option(help: "Refuse to open more connections than this.") var maxConnections = 19_000
    @Option(help: "Random seed (phases).") var seed: UInt64 = 1
    @Option(help: "Label for the summary line.") var label = "loadgen"
    @Option(help: "Write the merged figures (histograms included) as JSON here.") var json: String?

    func validate() throws {
        guard groups > 0, groupSize > 0, threads > 0, connectRate > 0, duration >= 0 else {
            throw ValidationError("groups, group-size, threads, connect-rate must be positive")
        }
        guard groups * groupSize <= maxConnections else {
            throw ValidationError("\(groups * groupSize) connections exceed --max-connections \(maxConnections)")
        }
        if relay {
            guard handRate == 0, controlRate == 0, !controlBurst, stormAt == 0, slowPerGroup == 0 else {
                throw ValidationError("relay mode plays steady chat only (no hands, controls, storm or slow consumers)")
            }
        } else if plain {
            throw ValidationError("--plain is for relay mode: hearthd speaks TLS only")
        }
        guard slowPerGroup < groupSize else { throw ValidationError("slow-per-group must be < group-size") }
        if breakouts != 0 {
            guard breakouts > 0, breakouts < groupSize, breakoutTimeout > 0 else {
                throw ValidationError("breakouts: 0 < breakouts < group-size, breakout-timeout > 0")
            }
            // Renegotiation is the mesh's; hands, spotlight and the other bursts would mix their
            // member-updated and room-updated with the moves'.
            guard !relay, !noMesh, handRate == 0, controlRate == 0, !controlBurst, stormAt == 0, slowPerGroup == 0
            else {
                throw ValidationError(
                    "breakouts run with the mesh, hand-rate 0, control-rate 0, no control burst, storm or slow consumers"
                )
            }
        }
        guard sourceBase >= 1, sourceBase + sourceCount <= 255 else { throw ValidationError("bad source range") }
        if stormAt > 0 {
            guard stormAt < duration, stormGroups >= 0, stormGroups <= 1, stormJitter >= 0, stormTimeout > 0 else {
                throw ValidationError("storm: 0 < storm-at < duration, storm-groups in 0...1, jitter >= 0, timeout > 0")
            }
            // Hand and spotlight counts would mix with the storm's own member-updated/room-updated.
            guard handRate == 0, controlRate == 0, slowPerGroup == 0, !controlBurst else {
                throw ValidationError(
                    "a reconnect storm runs with hand-rate 0, control-rate 0, no slow consumers, no control burst")
            }
        }
    }

    func run() throws {
        let limit = raiseFileLimit()
        let needed = groups * groupSize + 64
        guard needed <= limit else {
            throw ValidationError("need \(needed) file descriptors, the limit is \(limit)")
        }
        var plan = Plan()
        plan.host = host
        plan.port = port
        plan.secret = secret ?? ProcessInfo.processInfo.environment["HEARTH_TOKEN_SECRET"] ?? ""
        plan.relay = relay
        plan.plain = plain
        // The server's own rule for HS256 secrets (HearthAuth's TokenKey), checked before any work.
        guard relay || (try? TokenKey.hs256(secret: plan.secret)) != nil else {
            throw ValidationError(
                "a token secret of at least \(TokenKey.minimumHS256SecretBytes) bytes is required "
                    + "(--secret or HEARTH_TOKEN_SECRET)")
        }
        plan.roomPrefix = roomPrefix
        plan.groups = groups
        plan.groupSize = groupSize
        plan.threads = threads
        plan.connectRate = connectRate
        plan.consentVersion = consent.isEmpty ? nil : consent
        plan.waitingRoom = !noWaitingRoom
        plan.mesh = !noMesh && !relay
        plan.sdpBytes = sdpBytes
        plan.icePerPair = icePerPair
        plan.iceBytes = iceBytes
        plan.chatRates = chatRate.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !plan.chatRates.isEmpty, plan.chatRates.allSatisfy({ $0 >= 0 }) else {
            throw ValidationError("--chat-rate: one or more non-negative numbers, comma-separated")
        }
        plan.chatBytes = chatBytes
        plan.handRate = handRate
        plan.controlRate = controlRate
        plan.duration = duration
        plan.drain = drain
        plan.p99LimitMs = p99LimitMs
        plan.settle = settle
        plan.setupTimeout = setupTimeout
        plan.controlBurst = controlBurst
        plan.controlSpread = controlSpread
        plan.slowPerGroup = slowPerGroup
        plan.breakouts = breakouts
        plan.breakoutTimeout = breakoutTimeout
        plan.slowAfter = slowAfter
        plan.slowPause = slowPause
        plan.stormAt = stormAt
        plan.stormGroups = stormGroups
        plan.stormJitter = stormJitter
        plan.stormTimeout = stormTimeout
        plan.stormTLSResume = stormTlsResume != 0
        if stormAt > 0 { plan.serverPid = listenerPid(port: port) ?? 0 }
        plan.sourceBase = sourceBase
        plan.sourceCount = sourceCount
        plan.maxConnections = maxConnections
        plan.seed = seed
        plan.label = label

        emit(
            "hearth-loadgen: \(groups) groups x \(groupSize) = \(groups * groupSize) connections, "
                + "\(threads) thread(s), fd limit \(limit), connect \(connectRate)/s, chat \(chatRate)/s/member, "
                + "\(duration) s steady")
        if stormAt > 0 {
            emit(
                "reconnect storm: \(stormAt) s into the steady phase, \(stormGroups) of the groups drop, jitter 0..\(stormJitter) s"
            )
        }
        // A write to a socket the storm shut down must fail with EPIPE, not kill the process.
        signal(SIGPIPE, SIG_IGN)
        lws_set_log_level(Int32(LLL_ERR | LLL_WARN), nil)
        let started = Date()
        // Groups are striped over the threads; in a storm with several threads the unaffected
        // rooms get the last thread to themselves, so the storm's reconnect work (TLS handshakes on
        // the generator side) does not sit in the loop that measures them.
        var assignment = (0..<threads).map { w in
            Array(stride(from: groupOffset + w, to: groupOffset + groups, by: threads))
        }
        if stormAt > 0 && threads > 1 {
            let all = Array(groupOffset..<groupOffset + groups)
            let stormed = all.filter { plan.storms($0) }
            assignment = (0..<threads - 1).map { w in
                stride(from: w, to: stormed.count, by: threads - 1).map { stormed[$0] }
            }
            assignment.append(all.filter { !plan.storms($0) })
        }
        // Once per process, before any TLS: the server certificate's key is decoded the cheap way
        // (clws_shim.h; about 0.2 ms less of the generator's CPU per full handshake, RESULTS.md).
        if !plan.plain && clws_loadgen_legacy_ec_decoding() == 0 {
            FileHandle.standardError.write(
                Data("note: legacy EC key decoding unavailable; parsing as OpenSSL 3 does\n".utf8))
        }
        let sync = RunSync(workers: threads)
        let workers = (0..<threads).map { w in LoadWorker(plan: plan, index: w, groupIndices: assignment[w], sync: sync)
        }
        var threadIDs: [pthread_t] = []
        // The storm's stall probe: GET /healthz every 10 ms on its own thread and connection.
        let probe = stormAt > 0 ? HealthProbe(host: host, port: port, serverPid: plan.serverPid) : nil
        var probeThread = pthread_t()
        if let probe {
            guard
                pthread_create(&probeThread, nil, healthProbeThreadMain, Unmanaged.passUnretained(probe).toOpaque())
                    == 0
            else { throw ValidationError("pthread_create failed") }
        }
        for w in workers {
            var tid = pthread_t()
            let arg = Unmanaged.passRetained(w).toOpaque()
            guard pthread_create(&tid, nil, loadgenThreadMain, arg) == 0 else {
                Unmanaged<LoadWorker>.fromOpaque(arg).release()
                throw ValidationError("pthread_create failed")
            }
            threadIDs.append(tid)
        }
        for tid in threadIDs { pthread_join(tid, nil) }
        if let probe {
            probe.stop()
            pthread_join(probeThread, nil)
        }
        var steps: [Stats] = []
        var failures: [String] = []
        for w in workers {
            for (i, s) in w.steps.enumerated() {
                if i == steps.count { steps.append(Stats()) }
                steps[i].add(s)
            }
            failures += w.failures
        }
        if let probe {
            failures += probe.errors
            let windows = workers.compactMap(\.stormWindow)
            if let first = windows.first, first.step < steps.count {
                let start = windows.map(\.steadyStart).min()!
                let drop = windows.map(\.drop).min()!
                let end = windows.map(\.end).max()!
                splitStormSamples(workers, into: &steps[first.step], start: start, drop: drop, end: end)
                steps[first.step].stormTimeline = stormTimeline(
                    drop: drop, end: end, backTimes: workers.flatMap(\.backTimes),
                    unaffected: workers.flatMap(\.unaffectedSamples), health: probe.samples)
                steps[first.step].healthReconnects = probe.reconnects
                steps[first.step].healthProbeCPUs = probe.pinnedTo.isEmpty ? "generator's" : probe.pinnedTo
                for (at, rtt, lateness) in probe.samples {
                    if at >= start && at < drop {
                        steps[first.step].healthBefore.record(rtt / 1000)
                    } else if at >= drop && at <= end {
                        steps[first.step].healthDuring.record(rtt / 1000)
                        steps[first.step].healthWakeLagDuringMs = max(
                            steps[first.step].healthWakeLagDuringMs, Double(lateness) / 1e6)
                    }
                }
            }
        }
        let summary = PlanSummary(plan)
        if let json {
            let data = try JSONEncoder().encode(Report(plan: summary, steps: steps, failures: failures))
            try data.write(to: URL(fileURLWithPath: json))
        }
        let ok = reportSteps(steps, failures: failures, plan: summary, wall: Date().timeIntervalSince(started))
        if !ok { throw ExitCode(2) }
    }
}

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge the --json reports of several generator processes into one summary.")

    @Argument(help: "JSON reports written with --json.") var files: [String]

    func run() throws {
        var steps: [Stats] = []
        var failures: [String] = []
        var plan: PlanSummary?
        for f in files {
            let r = try JSONDecoder().decode(Report.self, from: Data(contentsOf: URL(fileURLWithPath: f)))
            for (i, s) in r.steps.enumerated() {
                if i == steps.count { steps.append(Stats()) }
                steps[i].add(s)
            }
            failures += r.failures
            if plan == nil {
                plan = r.plan
            } else {
                plan!.groups += r.plan.groups
            }
        }
        guard let plan else { throw ValidationError("no reports") }
        if !reportSteps(steps, failures: failures, plan: plan, wall: 0) { throw ExitCode(2) }
    }
}

/// Reports every step (run-wide failures are reported with the last); false if any failed.
func reportSteps(_ steps: [Stats], failures: [String], plan: PlanSummary, wall: Double) -> Bool {
    guard !steps.isEmpty else {
        return report(
            stats: Stats(), failures: failures + ["no step finished"], plan: plan, label: plan.label, wall: wall)
    }
    var ok = true
    for (i, s) in steps.enumerated() {
        let label = plan.chatRates.count > 1 ? "\(plan.label)-rate=\(formatRate(s.stepRate))" : plan.label
        let last = i == steps.count - 1
        ok =
            report(
                stats: s, failures: last ? failures : [], plan: plan, label: label, wall: last ? wall : 0, last: last)
            && ok
    }
    return ok
}

func formatRate(_ r: Double) -> String {
    r == r.rounded() ? String(Int(r)) : "\(r)"
}

struct PlanSummary: Codable {
    var label: String
    var groups: Int
    var groupSize: Int
    var chatRates: [Double]
    var duration: Double
    var controlBurst: Bool
    var slowPerGroup: Int
    var handRate: Double
    var controlRate: Double
    var p99LimitMs: Double
    var stormAt: Double = 0
    var stormJitter: Double = 0
    var stormTLSResume = false
    var breakouts = 0
    var relay = false

    init(_ p: Plan) {
        label = p.label
        groups = p.groups
        groupSize = p.groupSize
        chatRates = p.chatRates
        duration = p.duration
        controlBurst = p.controlBurst
        slowPerGroup = p.slowPerGroup
        handRate = p.handRate
        controlRate = p.controlRate
        relay = p.relay
        p99LimitMs = p.p99LimitMs
        stormAt = p.stormAt
        stormJitter = p.stormJitter
        stormTLSResume = p.stormTLSResume
        breakouts = p.breakouts
    }
}

struct Report: Codable {
    var plan: PlanSummary
    var steps: [Stats]
    var failures: [String]
}

/// Prints the result block and the one-line summary; returns false (and says why) on any failure.
func report(
    stats s: Stats, failures: [String], plan: PlanSummary, label: String, wall: Double, last: Bool = true
) -> Bool {
    var problems = failures
    if s.connectErrors > 0 { problems.append("\(s.connectErrors) connections failed: \(s.connectErrorSamples)") }
    if s.groupsReady < s.groups { problems.append("only \(s.groupsReady)/\(s.groups) groups got ready") }
    if s.chatLost > 0 { problems.append("LOST \(s.chatLost) chat deliveries") }
    if s.chatDuplicated > 0 { problems.append("DUPLICATED \(s.chatDuplicated) chat deliveries") }
    if s.chatReordered > 0 { problems.append("REORDERED \(s.chatReordered) chat deliveries") }
    if s.seqViolations > 0 { problems.append("\(s.seqViolations) event seq values not increasing") }
    if s.ringOverflows > 0 { problems.append("\(s.ringOverflows) last-recipient ring overflows") }
    if s.unexpectedCloses > 0 { problems.append("\(s.unexpectedCloses) unexpected closes: \(s.closeCodes)") }
    if !s.errorCodes.isEmpty { problems.append("server errors: \(s.errorCodes)") }
    if s.controlDelivered != s.controlExpected {
        problems.append("spotlight updates: expected \(s.controlExpected), delivered \(s.controlDelivered)")
    }
    if plan.slowPerGroup == 0 && s.handDelivered != s.handExpected {
        problems.append("hand updates: expected \(s.handExpected), delivered \(s.handDelivered)")
    }
    if plan.controlBurst && last && (s.muteGroupsDone < s.groups || s.removeGroupsDone < s.groups) {
        problems.append(
            "control burst incomplete: mute-all \(s.muteGroupsDone)/\(s.groups), remove \(s.removeGroupsDone)/\(s.groups)"
        )
    }
    if s.slowStillOpen > 0 { problems.append("\(s.slowStillOpen) slow consumers were never cut off") }
    if !plan.relay {
        // hearthd acknowledges every chat once it is journaled; only a storm's drop and a slow
        // consumer's cut-off lose acks in flight.
        if plan.stormAt == 0 && plan.slowPerGroup == 0 && s.chatAcked < s.chatSent {
            problems.append("MISSING \(s.chatSent - s.chatAcked) chat acks")
        }
        if s.chatAckUnmatched > 0 { problems.append("\(s.chatAckUnmatched) acks named no chat awaiting one") }
    }
    if s.unexpectedDeliveries > 0 { problems.append("\(s.unexpectedDeliveries) chat deliveries more than were owed") }
    let breakouts = plan.breakouts > 0 && last
    if breakouts {
        if s.breakoutGroupsDone < s.groups {
            problems.append(
                "breakouts: only \(s.breakoutGroupsRenegotiated)/\(s.groups) groups renegotiated in their breakouts, "
                    + "\(s.breakoutGroupsDone)/\(s.groups) back in the main room")
        }
        if s.breakoutCrossRoom > 0 { problems.append("\(s.breakoutCrossRoom) chats or signals delivered across rooms") }
        if s.breakoutChatLost > 0 { problems.append("LOST \(s.breakoutChatLost) breakout chat deliveries") }
        if s.breakoutChatDelivered != s.breakoutChatExpected {
            problems.append("breakout chat: expected \(s.breakoutChatExpected), delivered \(s.breakoutChatDelivered)")
        }
    }
    let storm = s.stormClients > 0
    if storm {
        if s.stormResumed < s.stormClients {
            problems.append("storm: only \(s.stormResumed)/\(s.stormClients) resumed")
        }
        if s.stormBack < s.stormClients {
            problems.append("storm: only \(s.stormBack)/\(s.stormClients) got their whole replay")
        }
        if s.stormGaps > 0 { problems.append("storm: \(s.stormGaps) resumes with gap=true (no replay)") }
    } else if plan.stormAt > 0 && last {
        problems.append("the reconnect storm did not happen")
    }

    let secs = max(s.steadySeconds, 0.001)
    let deliveredPerSec = Double(s.deliveredInWindow) / secs
    print("---- result: \(label)")
    print("groups           \(s.groups) x \(plan.groupSize) (\(s.connections) connections), ready \(s.groupsReady)")
    print(
        "connections      established \(s.established), welcomed \(s.welcomed), admitted \(s.admittedCount), connect errors \(s.connectErrors)"
    )
    print("handshake        \(describe(s.handshake))  [intended connect -> WebSocket open]")
    print("welcome          \(describe(s.welcome))")
    print("admitted         \(describe(s.admitted))")
    if s.lastAdmittedNs > s.firstIntendedNs && s.firstIntendedNs > 0 {
        let span = Double(s.lastAdmittedNs - s.firstIntendedNs) / 1e9
        print(
            "admissions/s     \(formatFixed(Double(s.admittedCount) / span, 0)) achieved (\(s.admittedCount) admitted, first "
                + "intended connect -> last admission \(formatFixed(span, 2)) s)")
    }
    print("negotiated       \(describe(s.negotiated))  [group start -> whole mesh negotiated]")
    print("signals          sent \(s.signalsSent), received \(s.signalsReceived)")
    print(
        "chat             sent \(s.chatSent), expected \(s.chatExpected), delivered-unique \(s.chatExpected - s.chatLost), lost \(s.chatLost), dup \(s.chatDuplicated), reordered \(s.chatReordered)"
    )
    print("chat delivery    \(describe(s.chatDelivery))")
    print("last recipient   \(describe(s.chatLastRecipient))")
    if !plan.relay {
        print(
            "chat acks        \(s.chatAcked) of \(s.chatSent) sent, unmatched \(s.chatAckUnmatched); "
                + "\(describe(s.chatAck))  [intended send -> its ack, sent once journaled]")
    }
    print("send lag         \(describe(s.sendLag))  [generator lateness, included in the latencies]")
    print("hands            sent \(s.handSent), expected \(s.handExpected), delivered \(s.handDelivered)")
    print(
        "spotlight        sent \(s.controlSent), expected \(s.controlExpected), delivered \(s.controlDelivered); \(describe(s.controlDelivery))"
    )
    if plan.controlBurst && last {
        print("mute-all fanout  \(describe(s.muteAllFanout))  [per group: intended -> every member saw every mute]")
        print("remove fanout    \(describe(s.removeFanout))  [per group: intended -> everyone saw member-left]")
    }
    if breakouts {
        print(
            "breakouts        \(plan.breakouts) per group (automatic): opened in \(s.breakoutGroupsOpened) groups, "
                + "renegotiated in their breakouts \(s.breakoutGroupsRenegotiated), back and renegotiated in the main room "
                + "\(s.breakoutGroupsDone)")
        print(
            "open -> media    \(describe(s.breakoutOpened))  [per group: intended open -> every member renegotiated in its breakout]"
        )
        print(
            "close -> media   \(describe(s.breakoutClosed))  [per group: close sent -> all renegotiated in the main room]"
        )
        print(
            "breakout chat    sent \(s.breakoutChatSent), expected \(s.breakoutChatExpected), delivered \(s.breakoutChatDelivered), "
                + "lost \(s.breakoutChatLost)")
        print("across rooms     \(s.breakoutCrossRoom)  [chats and signals from someone not in the receiver's room]")
    }
    if plan.slowPerGroup > 0 {
        print(
            "slow consumers   \(s.slowConnections): cut off with 4008 \(s.slowCut4008), closed otherwise \(s.slowClosedOtherwise), still open \(s.slowStillOpen)"
        )
    }
    if storm {
        print(
            "storm            \(s.stormClients) clients dropped (no close frame: SO_LINGER 0 + shutdown), jitter 0..\(formatFixed(plan.stormJitter, 1)) s; "
                + "drop loop \(formatFixed(s.stormDropLoopMs, 1)) ms; reconnect retries \(s.stormRetries)"
                + (s.stormRetrySamples.isEmpty ? "" : " (\(s.stormRetrySamples.joined(separator: "; ")))") + "; "
                + (plan.stormTLSResume
                    ? "TLS sessions offered, resumed \(s.stormTLSResumed)" : "full TLS handshakes (no session offered)")
        )
        print(
            "all back         \(formatFixed(s.stormAllBackSeconds, 3)) s after the drop (last resumed after \(formatFixed(s.stormAllResumedSeconds, 3)) s); "
                + "resumed \(s.stormResumed), back with replay \(s.stormBack), gaps \(s.stormGaps)")
        print(
            "storm CPU        server \(s.stormServerCPU < 0 ? "?" : formatFixed(s.stormServerCPU, 0) + "%"), "
                + "generator \(formatFixed(s.stormGeneratorCPU, 0))% of one core from the drop to all back")
        print("storm handshake  \(describe(s.stormHandshake))  [intended reconnect -> WebSocket open]")
        print("resume (drop)    \(describe(s.stormResume))  [drop instant -> resumed]")
        print(
            "resume (own)     \(describe(s.stormResumeFromReconnect))  [intended reconnect (drop + jitter) -> resumed]")
        print("back             \(describe(s.stormBackHist))  [drop instant -> resumed + every replayed event]")
        print(
            "replay           \(s.stormReplayed) events replayed; own chat in doubt at the drop \(s.stormInDoubt), "
                + "never accepted (dropped with the socket) \(s.stormDroppedWithConnection); "
                + "chat slots skipped, reached over \(LoadWorker.stormChatLateLimit / 1_000_000) ms late \(s.stormChatSkippedLate)"
        )
        print("unaffected before \(describe(s.unaffectedBefore))  [chat in untouched rooms, intended before the drop]")
        print("unaffected storm  \(describe(s.unaffectedDuring))  [... intended between the drop and all back]")
        print(
            "healthz before   \(describe(s.healthBefore))  [GET /healthz round trip every 10 ms, each on a TLS "
                + "connection opened before its clock starts, probe thread on CPU \(s.healthProbeCPUs) (the server's)]")
        print(
            "healthz storm    \(describe(s.healthDuring))  [... sent between the drop and all back; probe reconnects "
                + "\(s.healthReconnects), its own wake-up lateness max \(formatFixed(s.healthWakeLagDuringMs, 1)) ms]")
        print(
            "stall            largest gap between chat receipts in untouched rooms: before \(formatFixed(s.unaffectedGapBeforeMs, 1)) ms, "
                + "storm \(formatFixed(s.unaffectedGapDuringMs, 1)) ms")
        print(
            "generator loops  largest lateness of a 10 ms timer: before \(formatFixed(s.loopLagBeforeMs, 1)) ms; in the storm "
                + "\(formatFixed(s.loopLagDuringMs, 1)) ms in the loop playing the stormed rooms, "
                + "\(formatFixed(s.loopLagUnaffectedDuringMs, 1)) ms in the one playing the unaffected rooms")
        if !s.stormTimeline.isEmpty {
            print(
                "storm timeline   [bin start s from the drop | stormed clients back by the bin's end | unaffected-room chat "
                    + "intended in the bin: n, p99, max ms | /healthz sent in the bin: n, max ms]")
        }
        for b in s.stormTimeline {
            print(
                "timeline \(formatFixed(b.start, 1)) back=\(b.back)/\(s.stormClients) unaffected n=\(b.unaffectedCount) "
                    + "p99=\(formatFixed(b.unaffectedP99Ms, 1)) max=\(formatFixed(b.unaffectedMaxMs, 1)) "
                    + "healthz n=\(b.healthzCount) max=\(formatFixed(b.healthzMaxMs, 1))")
        }
    }
    print("close codes      \(s.closeCodes)")
    print("received         \(s.messagesReceived) messages in \(s.framesReceived) frames, \(s.bytesReceived) bytes")
    print(
        "delivered/s      \(formatFixed(deliveredPerSec, 0)) (chat+hands+spotlight received during the \(formatFixed(secs, 1)) s "
            + "step; all arrived \(formatFixed(s.drainSeconds, 1)) s after it)")
    if s.overLimit { print("knee             chat p99 over the \(plan.p99LimitMs) ms limit at this rate") }
    if wall > 0 { print("wall time        \(formatFixed(wall, 1)) s") }
    for p in problems { print("FAIL: \(p)") }
    let h = s.chatDelivery
    print(
        "\(label): \(problems.isEmpty ? (s.overLimit ? "over-p99-limit" : "ok") : "FAILED") connections=\(s.connections) delivered/s=\(formatFixed(deliveredPerSec, 0)) "
            + "p50_ms=\(ms(h.valueAtPercentile(50))) p99_ms=\(ms(h.valueAtPercentile(99))) "
            + "p999_ms=\(ms(h.valueAtPercentile(99.9))) max_ms=\(ms(h.max)) "
            + "last_p99_ms=\(ms(s.chatLastRecipient.valueAtPercentile(99))) "
            + "handshake_p99_ms=\(ms(s.handshake.valueAtPercentile(99))) "
            + "negotiated_p99_ms=\(ms(s.negotiated.valueAtPercentile(99))) lost=\(s.chatLost) dup=\(s.chatDuplicated) "
            + "reordered=\(s.chatReordered)"
            + (plan.relay ? "" : " ack_p99_ms=\(ms(s.chatAck.valueAtPercentile(99)))")
            + (storm
                ? " storm_clients=\(s.stormClients) all_back_s=\(formatFixed(s.stormAllBackSeconds, 3)) "
                    + "resume_p50_ms=\(ms(s.stormResume.valueAtPercentile(50))) resume_p99_ms=\(ms(s.stormResume.valueAtPercentile(99))) "
                    + "resume_max_ms=\(ms(s.stormResume.max)) "
                    + "unaffected_p99_before_ms=\(ms(s.unaffectedBefore.valueAtPercentile(99))) "
                    + "unaffected_p99_storm_ms=\(ms(s.unaffectedDuring.valueAtPercentile(99))) "
                    + "healthz_max_ms=\(ms(s.healthDuring.max)) server_cpu_pct=\(formatFixed(s.stormServerCPU, 0)) "
                    + "generator_cpu_pct=\(formatFixed(s.stormGeneratorCPU, 0)) "
                    + "stall_gap_ms=\(formatFixed(s.unaffectedGapDuringMs, 1)) loop_lag_ms=\(formatFixed(s.loopLagDuringMs, 1))"
                : "")
            + (breakouts
                ? " breakout_groups=\(s.breakoutGroupsDone) open_p50_ms=\(ms(s.breakoutOpened.valueAtPercentile(50))) "
                    + "open_p99_ms=\(ms(s.breakoutOpened.valueAtPercentile(99))) "
                    + "close_p50_ms=\(ms(s.breakoutClosed.valueAtPercentile(50))) "
                    + "close_p99_ms=\(ms(s.breakoutClosed.valueAtPercentile(99))) cross_room=\(s.breakoutCrossRoom) "
                    + "breakout_chat_lost=\(s.breakoutChatLost)"
                : ""))
    fflush(nil)
    return problems.isEmpty
}

/// A number from the environment (how `loadtest/run` passes a scenario's STORM_* keys).
func environmentNumber(_ name: String) -> Double? {
    ProcessInfo.processInfo.environment[name].flatMap { Double($0.trimmingCharacters(in: .whitespaces)) }
}

/// Splits the unaffected rooms' chat deliveries (by intended time) and receipt gaps, and each
/// loop's 10 ms probe lateness, at the storm's drop instant and its all-back moment.
func splitStormSamples(_ workers: [LoadWorker], into s: inout Stats, start: UInt64, drop: UInt64, end: UInt64) {
    var receipts: [UInt64] = []
    for w in workers {
        for (receipt, intended, latency) in w.unaffectedSamples {
            if intended >= start && intended < drop {
                s.unaffectedBefore.record(latency)
            } else if intended >= drop && intended <= end {
                s.unaffectedDuring.record(latency)
            }
            receipts.append(receipt)
        }
        let stormLoop = w.connections.contains { $0.stormed }
        for (at, lateness) in w.loopSamples {
            let v = Double(lateness) / 1e6
            if at >= start && at < drop {
                s.loopLagBeforeMs = max(s.loopLagBeforeMs, v)
            } else if at >= drop && at <= end {
                if stormLoop {
                    s.loopLagDuringMs = max(s.loopLagDuringMs, v)
                } else {
                    s.loopLagUnaffectedDuringMs = max(s.loopLagUnaffectedDuringMs, v)
                }
            }
        }
    }
    receipts.sort()
    for (previous, receipt) in zip(receipts, receipts.dropFirst()) where previous >= start {
        let gap = Double(receipt - previous) / 1e6
        if receipt <= drop {
            s.unaffectedGapBeforeMs = max(s.unaffectedGapBeforeMs, gap)
        } else if previous <= end {
            s.unaffectedGapDuringMs = max(s.unaffectedGapDuringMs, gap)
        }
    }
}
