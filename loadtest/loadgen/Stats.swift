import Histogram

/// Latencies are recorded in microseconds (highest trackable: 10 minutes).
typealias LatencyHistogram = Histogram<UInt64>

func newHistogram() -> LatencyHistogram {
    LatencyHistogram(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
}

/// Everything one worker measured; merged across workers (and processes, via JSON) by `add`.
struct Stats: Codable {
    // Latency histograms (µs).
    var chatDelivery = newHistogram()  // every chat delivery: receipt - intended send time
    var chatLastRecipient = newHistogram()  // per chat message: the last recipient's receipt - intended
    var chatAck = newHistogram()  // per chat message: its ack's receipt (after the journal commit) - intended
    var sendLag = newHistogram()  // generator lateness: actual send - intended (should stay small)
    var handshake = newHistogram()  // intended connect -> WebSocket established (TCP + TLS 1.3 + upgrade)
    var welcome = newHistogram()  // intended connect -> welcome
    var admitted = newHistogram()  // intended connect -> in the room
    var negotiated = newHistogram()  // group start (facilitator's intended connect) -> whole mesh negotiated
    var controlDelivery = newHistogram()  // steady-phase spotlight toggles: each room-updated delivery
    var muteAllFanout = newHistogram()  // per group: intended mute-all -> last recipient saw every mute
    var removeFanout = newHistogram()  // per group: intended remove -> last recipient saw member-left
    // Reconnect storm (per stormed client; the drop instant is the storm's intended time).
    var stormResume = newHistogram()  // drop instant -> `resumed`
    var stormResumeFromReconnect = newHistogram()  // the client's intended reconnect (drop + jitter) -> `resumed`
    var stormBackHist = newHistogram()  // drop instant -> `resumed` and every replayed event received
    var stormHandshake = newHistogram()  // intended reconnect -> WebSocket open (TCP + TLS + upgrade)
    var unaffectedBefore = newHistogram()  // chat in unaffected rooms, intended in [steady start, drop)
    var unaffectedDuring = newHistogram()  // ... intended in [drop, all back]
    var healthBefore = newHistogram()  // GET /healthz round trip every 10 ms, sent before the drop (steady phase)
    var healthDuring = newHistogram()  // ... sent between the drop and all back
    // Breakouts (per group).
    var breakoutOpened = newHistogram()  // intended open -> every member renegotiated in its breakout
    var breakoutClosed = newHistogram()  // close sent -> the whole group renegotiated in the main room

    // Counters.
    var connections = 0
    var connectErrors = 0
    var established = 0
    var welcomed = 0
    var admittedCount = 0
    var groups = 0
    var groupsReady = 0
    var chatSent = 0
    var chatExpected = 0
    var chatDelivered = 0
    var chatDuplicated = 0
    var chatReordered = 0
    var chatLost = 0
    /// Chat messages (sent in the step) whose `ack` came back; acks that named no chat awaited.
    var chatAcked = 0
    var chatAckUnmatched = 0
    var handSent = 0
    var handExpected = 0
    var handDelivered = 0
    var controlSent = 0
    var controlExpected = 0
    var controlDelivered = 0
    var signalsSent = 0
    var signalsReceived = 0
    var framesReceived = 0
    var messagesReceived = 0
    var bytesReceived = 0
    var seqViolations = 0
    var ringOverflows = 0
    var unexpectedCloses = 0
    var muteGroupsDone = 0
    var removeGroupsDone = 0
    var slowConnections = 0
    var slowCut4008 = 0
    var slowClosedOtherwise = 0
    var slowStillOpen = 0
    var steadySeconds = 0.0
    var stepRate = 0.0
    /// Deliveries (chat + hands + spotlight) received before the steady phase's end: delivered/s.
    var deliveredInWindow = 0
    /// First intended connect and last admission (monotonic ns): achieved admissions per second.
    var firstIntendedNs: UInt64 = 0
    var lastAdmittedNs: UInt64 = 0
    var overLimit = false
    var drainSeconds = 0.0
    var errorCodes: [String: Int] = [:]
    var closeCodes: [String: Int] = [:]
    var connectErrorSamples: [String] = []
    // Reconnect storm counters.
    var stormClients = 0
    var stormResumed = 0
    var stormBack = 0
    var stormGaps = 0
    var stormReplayed = 0
    var stormRetries = 0
    /// Storm reconnects whose TLS session was resumed (with `--storm-tls-resume 1`).
    var stormTLSResumed = 0
    /// Why storm reconnects failed before they opened (the first few).
    var stormRetrySamples: [String] = []
    var stormInDoubt = 0
    /// Chat slots of clients already back that the stormed loop reached over `LoadWorker.stormChatLateLimit` late.
    var stormChatSkippedLate = 0
    var stormDroppedWithConnection = 0
    var unexpectedDeliveries = 0
    // Breakouts counters.
    var breakoutGroupsOpened = 0
    var breakoutGroupsRenegotiated = 0
    var breakoutGroupsDone = 0
    /// Chats and signals received from someone not in the receiver's room (must stay 0).
    var breakoutCrossRoom = 0
    var breakoutChatSent = 0
    var breakoutChatExpected = 0
    var breakoutChatDelivered = 0
    var breakoutChatLost = 0
    /// Seconds from the drop instant until the last client resumed / was back with its replay.
    var stormAllResumedSeconds = 0.0
    var stormAllBackSeconds = 0.0
    /// How long the generator took to drop every stormed socket (ms).
    var stormDropLoopMs = 0.0
    /// Largest gap between consecutive chat receipts in the unaffected rooms (ms), before the
    /// drop and between the drop and all back; and the generator's own largest loop lateness
    /// (a 10 ms probe timer) over the same windows.
    var unaffectedGapBeforeMs = 0.0
    var unaffectedGapDuringMs = 0.0
    var loopLagBeforeMs = 0.0
    var loopLagDuringMs = 0.0
    var loopLagUnaffectedDuringMs = 0.0
    /// The /healthz probe: reconnects (a connection that ended without a response) and its own largest
    /// wake-up lateness during the storm (ms; its CPU is shared with the generator).
    var healthReconnects = 0
    var healthWakeLagDuringMs = 0.0
    var healthProbeCPUs = ""
    /// CPU over the storm (drop -> all back), % of one core: the server (utime+stime from
    /// /proc; -1 if unknown) and this generator process (getrusage). Near 100%: that side is
    /// what limits how fast the storm resolves.
    var stormServerCPU = -1.0
    var stormGeneratorCPU = 0.0
    /// The storm over time (set once, by the main thread, for the step the storm was in).
    var stormTimeline: [StormTimelineBin] = []

    /// Clears the steady-phase figures (histograms and counters) for the next rate step.
    mutating func resetSteadyFigures() {
        chatDelivery = newHistogram()
        chatLastRecipient = newHistogram()
        chatAck = newHistogram()
        sendLag = newHistogram()
        controlDelivery = newHistogram()
        chatSent = 0
        chatAcked = 0
        chatAckUnmatched = 0
        chatDelivered = 0
        deliveredInWindow = 0
        chatDuplicated = 0
        chatReordered = 0
        handSent = 0
        handDelivered = 0
        controlSent = 0
        controlDelivered = 0
        framesReceived = 0
        messagesReceived = 0
        bytesReceived = 0
        // The storm belongs to the step it happened in.
        let fresh = Stats()
        stormResume = fresh.stormResume
        stormResumeFromReconnect = fresh.stormResumeFromReconnect
        stormBackHist = fresh.stormBackHist
        stormHandshake = fresh.stormHandshake
        unaffectedBefore = fresh.unaffectedBefore
        unaffectedDuring = fresh.unaffectedDuring
        (stormClients, stormResumed, stormBack, stormGaps, stormReplayed) = (0, 0, 0, 0, 0)
        (stormRetries, stormInDoubt, stormDroppedWithConnection, unexpectedDeliveries) = (0, 0, 0, 0)
        stormTLSResumed = 0
        stormChatSkippedLate = 0
        stormRetrySamples = []
        (stormAllResumedSeconds, stormAllBackSeconds, stormDropLoopMs) = (0, 0, 0)
        (unaffectedGapBeforeMs, unaffectedGapDuringMs, loopLagBeforeMs, loopLagDuringMs) = (0, 0, 0, 0)
        loopLagUnaffectedDuringMs = 0
    }

    /// Takes the control burst's figures (which come after the last step closed) and the
    /// run-wide cumulative counters from `o`, the worker's live figures.
    mutating func take(controlFrom o: Stats) {
        muteAllFanout = o.muteAllFanout
        removeFanout = o.removeFanout
        muteGroupsDone = o.muteGroupsDone
        removeGroupsDone = o.removeGroupsDone
        unexpectedCloses = o.unexpectedCloses
        seqViolations = o.seqViolations
        errorCodes = o.errorCodes
        closeCodes = o.closeCodes
        // The breakouts phase comes after the last step too.
        breakoutOpened = o.breakoutOpened
        breakoutClosed = o.breakoutClosed
        breakoutGroupsOpened = o.breakoutGroupsOpened
        breakoutGroupsRenegotiated = o.breakoutGroupsRenegotiated
        breakoutGroupsDone = o.breakoutGroupsDone
        breakoutCrossRoom = o.breakoutCrossRoom
        breakoutChatSent = o.breakoutChatSent
        breakoutChatExpected = o.breakoutChatExpected
        breakoutChatDelivered = o.breakoutChatDelivered
        breakoutChatLost = o.breakoutChatLost
        signalsSent = o.signalsSent
        signalsReceived = o.signalsReceived
    }

    mutating func add(_ o: Stats) {
        chatDelivery.add(o.chatDelivery)
        chatLastRecipient.add(o.chatLastRecipient)
        chatAck.add(o.chatAck)
        sendLag.add(o.sendLag)
        handshake.add(o.handshake)
        welcome.add(o.welcome)
        admitted.add(o.admitted)
        negotiated.add(o.negotiated)
        controlDelivery.add(o.controlDelivery)
        muteAllFanout.add(o.muteAllFanout)
        removeFanout.add(o.removeFanout)
        stormResume.add(o.stormResume)
        stormResumeFromReconnect.add(o.stormResumeFromReconnect)
        stormBackHist.add(o.stormBackHist)
        stormHandshake.add(o.stormHandshake)
        unaffectedBefore.add(o.unaffectedBefore)
        unaffectedDuring.add(o.unaffectedDuring)
        healthBefore.add(o.healthBefore)
        breakoutOpened.add(o.breakoutOpened)
        breakoutClosed.add(o.breakoutClosed)
        breakoutGroupsOpened += o.breakoutGroupsOpened
        breakoutGroupsRenegotiated += o.breakoutGroupsRenegotiated
        breakoutGroupsDone += o.breakoutGroupsDone
        breakoutCrossRoom += o.breakoutCrossRoom
        breakoutChatSent += o.breakoutChatSent
        breakoutChatExpected += o.breakoutChatExpected
        breakoutChatDelivered += o.breakoutChatDelivered
        breakoutChatLost += o.breakoutChatLost
        healthDuring.add(o.healthDuring)
        healthReconnects += o.healthReconnects
        healthWakeLagDuringMs = max(healthWakeLagDuringMs, o.healthWakeLagDuringMs)
        if healthProbeCPUs.isEmpty { healthProbeCPUs = o.healthProbeCPUs }
        stormServerCPU = max(stormServerCPU, o.stormServerCPU)
        stormGeneratorCPU = max(stormGeneratorCPU, o.stormGeneratorCPU)
        if stormTimeline.isEmpty { stormTimeline = o.stormTimeline }
        stormClients += o.stormClients
        stormResumed += o.stormResumed
        stormBack += o.stormBack
        stormGaps += o.stormGaps
        stormReplayed += o.stormReplayed
        stormRetries += o.stormRetries
        stormTLSResumed += o.stormTLSResumed
        stormRetrySamples += o.stormRetrySamples.prefix(max(0, 5 - stormRetrySamples.count))
        stormInDoubt += o.stormInDoubt
        stormChatSkippedLate += o.stormChatSkippedLate
        stormDroppedWithConnection += o.stormDroppedWithConnection
        unexpectedDeliveries += o.unexpectedDeliveries
        stormAllResumedSeconds = max(stormAllResumedSeconds, o.stormAllResumedSeconds)
        stormAllBackSeconds = max(stormAllBackSeconds, o.stormAllBackSeconds)
        stormDropLoopMs = max(stormDropLoopMs, o.stormDropLoopMs)
        unaffectedGapBeforeMs = max(unaffectedGapBeforeMs, o.unaffectedGapBeforeMs)
        unaffectedGapDuringMs = max(unaffectedGapDuringMs, o.unaffectedGapDuringMs)
        loopLagBeforeMs = max(loopLagBeforeMs, o.loopLagBeforeMs)
        loopLagDuringMs = max(loopLagDuringMs, o.loopLagDuringMs)
        loopLagUnaffectedDuringMs = max(loopLagUnaffectedDuringMs, o.loopLagUnaffectedDuringMs)
        connections += o.connections
        connectErrors += o.connectErrors
        established += o.established
        welcomed += o.welcomed
        admittedCount += o.admittedCount
        groups += o.groups
        groupsReady += o.groupsReady
        chatSent += o.chatSent
        chatExpected += o.chatExpected
        chatDelivered += o.chatDelivered
        chatDuplicated += o.chatDuplicated
        chatReordered += o.chatReordered
        chatLost += o.chatLost
        chatAcked += o.chatAcked
        chatAckUnmatched += o.chatAckUnmatched
        handSent += o.handSent
        handExpected += o.handExpected
        handDelivered += o.handDelivered
        controlSent += o.controlSent
        controlExpected += o.controlExpected
        controlDelivered += o.controlDelivered
        signalsSent += o.signalsSent
        signalsReceived += o.signalsReceived
        framesReceived += o.framesReceived
        messagesReceived += o.messagesReceived
        bytesReceived += o.bytesReceived
        seqViolations += o.seqViolations
        ringOverflows += o.ringOverflows
        unexpectedCloses += o.unexpectedCloses
        muteGroupsDone += o.muteGroupsDone
        removeGroupsDone += o.removeGroupsDone
        slowConnections += o.slowConnections
        slowCut4008 += o.slowCut4008
        slowClosedOtherwise += o.slowClosedOtherwise
        slowStillOpen += o.slowStillOpen
        steadySeconds = max(steadySeconds, o.steadySeconds)
        stepRate = o.stepRate
        deliveredInWindow += o.deliveredInWindow
        if o.firstIntendedNs > 0 {
            firstIntendedNs = firstIntendedNs == 0 ? o.firstIntendedNs : min(firstIntendedNs, o.firstIntendedNs)
        }
        lastAdmittedNs = max(lastAdmittedNs, o.lastAdmittedNs)
        overLimit = overLimit || o.overLimit
        drainSeconds = max(drainSeconds, o.drainSeconds)
        for (k, v) in o.errorCodes { errorCodes[k, default: 0] += v }
        for (k, v) in o.closeCodes { closeCodes[k, default: 0] += v }
        connectErrorSamples += o.connectErrorSamples.prefix(max(0, 5 - connectErrorSamples.count))
    }
}

func ms(_ us: UInt64) -> String {
    let v = Double(us) / 1000
    if v < 10 { return String(format3(v)) }
    if v < 1000 { return String(format1(v)) }
    return String(Int(v.rounded()))
}

func format3(_ v: Double) -> String { formatFixed(v, 3) }
func format1(_ v: Double) -> String { formatFixed(v, 1) }

func formatFixed(_ v: Double, _ digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let r = (v * scale).rounded() / scale
    var s = "\(r)"
    if let dot = s.firstIndex(of: ".") {
        let decimals = s.distance(from: dot, to: s.endIndex) - 1
        if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
    } else if digits > 0 {
        s += "." + String(repeating: "0", count: digits)
    }
    return s
}

/// "p50=.. p99=.. p99.9=.. max=.. (n=..)" in milliseconds.
func describe(_ h: LatencyHistogram) -> String {
    guard h.totalCount > 0 else { return "n=0" }
    return "p50=\(ms(h.valueAtPercentile(50))) p99=\(ms(h.valueAtPercentile(99))) "
        + "p99.9=\(ms(h.valueAtPercentile(99.9))) max=\(ms(h.max)) ms (n=\(h.totalCount))"
}
