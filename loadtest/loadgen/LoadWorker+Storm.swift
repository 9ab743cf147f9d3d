import CLws

#if canImport(Glibc)
    import Glibc
#endif

extension LoadWorker {
    // MARK: - Reconnect storm

    /// The drop instant: every stormed connection's TCP connection vanishes without a close
    /// frame. `SO_LINGER {on, 0}`, `shutdown(SHUT_RDWR)` (FIN at once), then the close, which
    /// linger 0 turns into an RST. Each client then reconnects after its jitter over a new TLS
    /// connection.
    func beginStorm(at intended: UInt64) {
        stormIntended = intended
        stormDeadline = intended + UInt64(plan.stormTimeout * 1e9)
        stormCPUAtDrop = (plan.serverPid > 0 ? processCPUSeconds(plan.serverPid) : nil, ownCPUSeconds())
        let t0 = monotonicNanos()
        for c in connections where c.stormed {
            stats.stormClients += 1
            stormPending += 1
            c.echoedAtDrop = c.lastFrom[c.slot]
            c.sentAtDrop = c.chatSent
            c.ownConfirmed = c.echoedAtDrop
            stats.stormInDoubt += Int(c.sentAtDrop - c.echoedAtDrop)
            if plan.stormTLSResume, let ssl = c.ssl {
                // The session with the server's latest ticket (TLS 1.3 sends them after the
                // handshake; the connection has read them long since). OpenSSL marks the
                // session of a connection freed without a shutdown as not resumable; a browser
                // keeps it across a network drop, so the shutdown flags are set (nothing is sent).
                c.tlsSession = SSL_get1_session(ssl)
                SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN)
            }
            releaseLink(c, abort: true)
            c.away = true
            c.established = false
            c.closed = true
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

    func clientResumed(_ c: LoadClient, _ root: LoadJSON, now: UInt64) {
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
    func clientBack(_ c: LoadClient, now: UInt64) {
        guard !c.back else { return }
        c.back = true
        c.backAt = now
        stats.stormBack += 1
        stats.stormBackHist.record(micros(now, stormIntended))
        backTimes.append(now)
        c.droppedWithConnection = c.sentAtDrop - max(min(c.ownConfirmed, c.sentAtDrop), c.echoedAtDrop)
        stats.stormDroppedWithConnection += Int(c.droppedWithConnection)
        liveExpected -= Int(c.droppedWithConnection) * c.group.recipients
        stormPending -= 1
        if stormPending == 0 { endStorm(now: now) }
    }

    /// All back (or the storm timed out). The main thread splits the unaffected rooms' samples
    /// and the loop probe's at the drop instant and this moment (every worker's window).
    func endStorm(now: UInt64) {
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
}
