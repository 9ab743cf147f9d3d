extension LoadWorker {
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
    func closeStep() {
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

    func verify(into t: inout Totals) {
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
