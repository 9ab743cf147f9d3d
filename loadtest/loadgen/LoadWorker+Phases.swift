import CLws

#if canImport(Glibc)
    import Glibc
#endif

// The run's phases (setup, steady steps, drain, control) and the timed actions of the
// open-loop schedule.
extension LoadWorker {
    func phaseTick(now: UInt64) {
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
                } else if plan.breakouts > 0 {
                    beginBreakouts(now: now)
                } else {
                    finish()
                }
            }
        case .control:
            if groups.allSatisfy({ $0.muteComplete && $0.removeComplete }) || now > controlDeadline {
                finish()
            }
        case .breakouts:
            if groups.allSatisfy(\.finished) || now > breakoutDeadline { endBreakouts() }
        case .done:
            break
        }
    }

    func beginSteady(now: UInt64) {
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

    func beginControl(now: UInt64) {
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

    func finish() {
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

    func perform(_ e: TimedEvent, now: UInt64) {
        let c = connections[Int(e.target)]
        switch e.kind {
        case .connect:
            connect(c)
        case .chat:
            guard e.at < steadyEnd, phase == .steady else { return }
            // No chat while away: a slot intended between the drop and the client's return is
            // skipped, also when this loop reaches it only after the client is back (a loop
            // behind its schedule would otherwise send every such slot at once on return).
            let missed = c.stormed && e.at >= stormIntended && e.at < c.backAt
            // Nor, after the drop, a stormed client's slot this loop reaches over 250 ms late:
            // busy with thousands of client handshakes, the loop falls seconds behind, and the
            // slots of the clients already back would all go out together once it catches up, a
            // burst no real clients make (each sends on its own clock).
            let behind = c.stormed && e.at >= stormIntended && now > e.at + LoadWorker.stormChatLateLimit
            if c.admitted && !c.closed && !c.away && !missed {
                if behind {
                    stats.stormChatSkippedLate += 1
                } else {
                    sendChat(c, intended: e.at, now: now)
                }
            }
            push(TimedEvent(at: e.at + UInt64(1e9 / chatRate), kind: .chat, target: e.target), now: now)
        case .hand:
            guard e.at < steadyEnd, phase == .steady else { return }
            if c.admitted && !c.closed {
                c.handUp.toggle()
                c.handsSent += 1
                stats.handSent += 1
                send(c, c.handUp ? .raiseHand : .lowerHand(nil))
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
                send(c, .spotlight(g.spotlightOn ? member(target) : nil))
            }
            push(TimedEvent(at: e.at + UInt64(1e9 / plan.controlRate), kind: .spotlight, target: e.target), now: now)
        case .muteAll:
            c.group.muteIntended = e.at
            send(c, .muteAll(video: false))
        case .remove:
            let g = c.group
            let victim = connections[g.slots[g.slots.count - 1]]
            g.removedSlot = victim.slot
            g.removeIntended = e.at
            if let id = member(victim.memberID) { send(c, .remove(id, ban: false, reason: nil)) }
        case .slowStop:
            if c.isOpen, !c.closed {
                c.stoppedReading = true
                watch(c)
            }
        case .slowResume:
            if c.isOpen, !c.closed {
                c.stoppedReading = false
                watch(c)
                readLink(c)
            }
        case .breakoutsOpen:
            openBreakouts(c, intended: e.at)
        case .storm:
            beginStorm(at: e.at)
        case .reconnect:
            guard c.away, phase != .done else { return }
            c.reconnectAttempts += 1
            c.closed = false
            c.closeCode = -1
            connect(c)
        case .openDeadline:
            openDeadlinePassed(c, now: now)
        case .tick:
            let t = monotonicNanos()
            loopSamples.append((e.at, t > e.at ? t - e.at : 0))
            if e.at < steadyEnd && phase == .steady {
                push(TimedEvent(at: e.at + 10_000_000, kind: .tick, target: 0), now: t)
            }
        }
    }
}
