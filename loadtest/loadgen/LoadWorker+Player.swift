import CJansson
import CLws
import HearthCore

#if canImport(Glibc)
    import Glibc
#endif

// The protocol player: what each client does with a server message (consent, admission,
// the mesh offers and answers), and when a group is ready.
extension LoadWorker {
    func handleSignal(_ c: LoadClient, from: String, kind: String, now: UInt64) {
        stats.signalsReceived += 1
        guard let peer = c.group.slotByMember[from] else {
            failures.append("signal from an unknown member")
            return
        }
        // Breakouts: the sender must be in the receiver's room (breakout or main room).
        if c.boRound > 0 && connections[c.group.slots[peer]].room != c.room { stats.breakoutCrossRoom += 1 }
        switch kind {
        case "offer":
            c.peerPrimary[peer] = true
            sendSignal(c, to: from, kind: .answer)
        case "answer":
            c.peerPrimary[peer] = true
        default:
            c.peerICE[peer] += 1
        }
        checkPeer(c, peer, now: now)
    }

    func message(_ c: LoadClient, _ type: String, _ root: LoadJSON, now: UInt64) {
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
                send(c, .acknowledgeConsent(version: version))
            }
        case "waiting-updated":
            if c.slot == 0, let m = jget(root, "member") { considerAdmitting(c, m) }
        case "admitted":
            if let room = jget(root, "room") { admitted(c, room: room, now: now) }
        case "member-joined":
            learn(g, jget(root, "member"))
            joined(c, jget(root, "member"))
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
        case "moved":
            moved(c, root, now: now)
        case "breakouts":
            if c.slot == 0 { staffView(c.group, root, now: now) }
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

    func learn(_ g: LoadGroup, _ member: LoadJSON?) {
        guard let id = jstr(jget(member, "id")), let alias = jstr(jget(member, "alias")), alias.first == "s",
            let slot = Int(alias.dropFirst()), slot < plan.groupSize
        else { return }
        g.slotByMember[id] = slot
    }

    func considerAdmitting(_ fac: LoadClient, _ waiting: LoadJSON) {
        guard jbool(jget(waiting, "ready")) == true, let id = jstr(jget(waiting, "id")),
            !fac.group.admitRequested.contains(id)
        else { return }
        fac.group.admitRequested.insert(id)
        if let member = member(id) { send(fac, .admit(member)) }
    }

    func admitted(_ c: LoadClient, room: LoadJSON, now: UInt64) {
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
        if c.slot > 0 { send(c, .setMedia(audio: true, video: nil)) }
        if plan.mesh && plan.groupSize > 1 {
            for p in peers { sendSignal(c, to: p, kind: .offer) }
        } else {
            connectionNegotiated(c, now: now)
        }
    }

    /// Relay mode: an open connection is in its room (no hello, no waiting room, no mesh).
    func relayJoined(_ c: LoadClient, now: UInt64) {
        countAdmission(c, now: now)
        connectionNegotiated(c, now: now)
    }

    func countAdmission(_ c: LoadClient, now: UInt64) {
        c.admitted = true
        stats.admittedCount += 1
        stats.admitted.record(micros(now, c.connectIntended))
        stats.firstIntendedNs = stats.firstIntendedNs == 0 ? t0 : min(stats.firstIntendedNs, t0)
        stats.lastAdmittedNs = max(stats.lastAdmittedNs, now)
    }

    func checkPeer(_ c: LoadClient, _ peer: Int, now: UInt64) {
        guard !c.peerDone[peer], c.peerPrimary[peer], c.peerICE[peer] >= icePerSide else { return }
        c.peerDone[peer] = true
        c.peersNegotiated += 1
        if c.boRound > 0 {
            renegotiated(c, now: now)
        } else if c.peersNegotiated == c.groupSize - 1 {
            connectionNegotiated(c, now: now)
        }
    }

    func connectionNegotiated(_ c: LoadClient, now: UInt64) {
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
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
