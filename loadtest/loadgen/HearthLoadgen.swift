import ArgumentParser
import CLws
import Foundation

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
    @Option(help: "Slow consumers per group (they stop reading).") var slowPerGroup = 0
    @Option(help: "Slow consumers stop reading this long into the steady phase (seconds).") var slowAfter = 2.0
    @Option(help: "...and read again after this long (seconds).") var slowPause = 20.0
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
        guard slowPerGroup < groupSize else { throw ValidationError("slow-per-group must be < group-size") }
        guard sourceBase >= 1, sourceBase + sourceCount <= 255 else { throw ValidationError("bad source range") }
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
        guard plan.secret.utf8.count >= 32 else {
            throw ValidationError("a token secret of at least 32 bytes is required (--secret or HEARTH_TOKEN_SECRET)")
        }
        plan.roomPrefix = roomPrefix
        plan.groups = groups
        plan.groupSize = groupSize
        plan.threads = threads
        plan.connectRate = connectRate
        plan.consentVersion = consent.isEmpty ? nil : consent
        plan.waitingRoom = !noWaitingRoom
        plan.mesh = !noMesh
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
        plan.slowAfter = slowAfter
        plan.slowPause = slowPause
        plan.sourceBase = sourceBase
        plan.sourceCount = sourceCount
        plan.maxConnections = maxConnections
        plan.seed = seed
        plan.label = label

        emit(
            "hearth-loadgen: \(groups) groups x \(groupSize) = \(groups * groupSize) connections, "
                + "\(threads) thread(s), fd limit \(limit), connect \(connectRate)/s, chat \(chatRate)/s/member, "
                + "\(duration) s steady")
        lws_set_log_level(Int32(LLL_ERR | LLL_WARN), nil)
        let started = Date()
        let workers = (0..<threads).map { w in
            Worker(
                plan: plan, index: w,
                groupIndices: Array(stride(from: groupOffset + w, to: groupOffset + groups, by: threads)))
        }
        var threadIDs: [pthread_t] = []
        for w in workers {
            var tid = pthread_t()
            let arg = Unmanaged.passRetained(w).toOpaque()
            guard pthread_create(&tid, nil, loadgenThreadMain, arg) == 0 else {
                Unmanaged<Worker>.fromOpaque(arg).release()
                throw ValidationError("pthread_create failed")
            }
            threadIDs.append(tid)
        }
        for tid in threadIDs { pthread_join(tid, nil) }
        var steps: [Stats] = []
        var failures: [String] = []
        for w in workers {
            for (i, s) in w.steps.enumerated() {
                if i == steps.count { steps.append(Stats()) }
                steps[i].add(s)
            }
            failures += w.failures
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
        p99LimitMs = p.p99LimitMs
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
    print("send lag         \(describe(s.sendLag))  [generator lateness, included in the latencies]")
    print("hands            sent \(s.handSent), expected \(s.handExpected), delivered \(s.handDelivered)")
    print(
        "spotlight        sent \(s.controlSent), expected \(s.controlExpected), delivered \(s.controlDelivered); \(describe(s.controlDelivery))"
    )
    if plan.controlBurst && last {
        print("mute-all fanout  \(describe(s.muteAllFanout))  [per group: intended -> every member saw every mute]")
        print("remove fanout    \(describe(s.removeFanout))  [per group: intended -> everyone saw member-left]")
    }
    if plan.slowPerGroup > 0 {
        print(
            "slow consumers   \(s.slowConnections): cut off with 4008 \(s.slowCut4008), closed otherwise \(s.slowClosedOtherwise), still open \(s.slowStillOpen)"
        )
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
            + "reordered=\(s.chatReordered)")
    fflush(nil)
    return problems.isEmpty
}
