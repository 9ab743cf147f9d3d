import CJansson
import HearthCore

#if canImport(Glibc)
    import Glibc
#endif

// The `breakouts` scenario (loadtest/README.md): after the steady phase every facilitator plans
// `plan.breakouts` breakouts (automatic assignment) and opens them. Each member, on its `moved`,
// renegotiates media with the members its new roster shows (offer, answer and ICE per pair: of
// two members the one with the higher id offers, and every member offers to the facilitator, so
// each pair negotiates once whether the server moves members one by one, later ones arriving as
// `member-joined`, or all at once, each `moved` carrying the whole roster), then sends one chat
// in its breakout. When the whole
// group is renegotiated and every breakout chat has arrived, the facilitator closes all; each
// member's `moved` back brings the main room's roster and the whole group renegotiates there.
// Measured per group: intended open -> every member renegotiated in its breakout, and close ->
// the whole group renegotiated in the main room. Anything delivered across rooms (a chat or a
// signal from someone not in the receiver's room) is counted and fails the run, as does any
// breakout chat lost.
extension LoadWorker {
    static let breakoutTextKey = Array("\"text\":\"lb|".utf8)

    func beginBreakouts(now: UInt64) {
        phase = .breakouts
        let base = now + 500_000_000
        let spread = plan.controlSpread * 1e9
        for g in groups {
            let at = base + UInt64(spread * Double(g.local) / Double(max(1, groups.count)))
            push(TimedEvent(at: at, kind: .breakoutsOpen, target: Int32(g.slots[0])), now: now)
        }
        breakoutDeadline = base + UInt64(spread) + UInt64(plan.breakoutTimeout * 1e9)
        emit("PHASE breakouts-start \(wallMillis() + 500)")
    }

    /// The facilitator plans the breakouts (the server assigns the members) and opens them.
    func openBreakouts(_ fac: LoadClient, intended: UInt64) {
        let g = fac.group
        guard g.boRound == 0, fac.admitted, !fac.closed else { return }
        g.boRound = 1
        g.openIntended = intended
        fac.boRound = 1
        stats.breakoutGroupsOpened += 1
        let entries = (0..<plan.breakouts).map { BreakoutPlanEntry(name: "r\($0)") }
        send(fac, .planBreakouts(entries, automatic: true))
        send(fac, .openBreakouts(durationSeconds: nil, warningSeconds: nil))
    }

    /// `moved`: a new room and its roster. Media starts afresh: offers to everyone already there.
    func moved(_ c: LoadClient, _ root: LoadJSON, now: UInt64) {
        let g = c.group
        guard g.boRound > 0 else {
            failures.append("moved before any breakout was opened")
            return
        }
        let id = jstr(jget(jget(root, "breakout"), "id"))
        guard id == nil || id.flatMap(BreakoutID.init(wire:)) != nil else {
            failures.append("moved into a breakout without a valid id")
            return
        }
        c.room = id.flatMap(BreakoutID.init(wire:))?.rawValue ?? 0
        if (g.boRound == 1) != (c.room != 0) {
            failures.append("moved \(c.room == 0 ? "to the main room" : "into a breakout") in round \(g.boRound)")
        }
        c.boRound = g.boRound
        resetPeers(c)
        if let known = g.assignment[c.memberID], g.boRound == 1, known != c.room {
            failures.append("a member's moved and the staff view disagree on its breakout")
        }
        var peers: [String] = []
        if let members = jget(jget(root, "room"), "members") {
            for i in 0..<json_array_size(members) {
                let m = json_array_get(members, i)
                learn(g, m)
                if let peer = jstr(jget(m, "id")), peer != c.memberID { peers.append(peer) }
            }
        }
        for p in peers { offer(c, to: p) }
        renegotiated(c, now: now)  // a breakout of one has nobody to negotiate with
    }

    /// `member-joined` in a breakouts round: someone came into this member's room.
    func joined(_ c: LoadClient, _ member: LoadJSON?) {
        guard c.boRound > 0, c.slot != 0, let id = jstr(jget(member, "id")) else { return }
        offer(c, to: id)
    }

    /// An offer to `peer` once per round, if this side is the one that offers: to the
    /// facilitator always, to another member when this member's id is the higher.
    func offer(_ c: LoadClient, to peer: String) {
        guard let slot = c.group.slotByMember[peer], !c.offered[slot] else { return }
        if slot != 0 {
            guard let mine = Int(c.memberID.dropFirst()), let theirs = Int(peer.dropFirst()), mine > theirs else {
                return
            }
        }
        c.offered[slot] = true
        sendSignal(c, to: peer, kind: .offer)
    }

    /// The facilitator's `breakouts` (staff view): once the breakouts are open, who is in which.
    func staffView(_ g: LoadGroup, _ root: LoadJSON, now: UInt64) {
        guard g.boRound == 1, g.assignment.isEmpty, let open = jget(jget(root, "breakouts"), "open"),
            json_array_size(open) > 0
        else { return }
        var sizes: [Int] = []
        for i in 0..<json_array_size(open) {
            let b = json_array_get(open, i)
            guard let id = jstr(jget(b, "id")).flatMap(BreakoutID.init(wire:)), let members = jget(b, "members") else {
                failures.append("a breakout in the staff view without id or members")
                return
            }
            sizes.append(json_array_size(members))
            for j in 0..<json_array_size(members) {
                if let m = jstr(json_array_get(members, j)) { g.assignment[m] = id.rawValue }
            }
        }
        if g.assignment.count != plan.groupSize - 1 || sizes.count != plan.breakouts {
            failures.append(
                "staff view: \(g.assignment.count) members in \(sizes.count) breakouts, "
                    + "expected \(plan.groupSize - 1) in \(plan.breakouts)")
        }
        // Every member chats once in its breakout, to everyone there (itself included).
        g.bchatExpected = sizes.reduce(0) { $0 + $1 * $1 }
        stats.breakoutChatExpected += g.bchatExpected
        for i in g.slots.dropFirst() { renegotiated(connections[i], now: now) }
    }

    func resetPeers(_ c: LoadClient) {
        for i in 0..<c.groupSize {
            c.peerPrimary[i] = false
            c.peerICE[i] = 0
            c.peerDone[i] = false
            c.offered[i] = false
        }
        c.peersNegotiated = 0
    }

    /// Whether `c` has negotiated with everyone in its room this round; the group's figures
    /// when it is the last one.
    func renegotiated(_ c: LoadClient, now: UInt64) {
        let g = c.group
        guard c.boRound > c.boDoneRound, !(c.boRound == 1 && c.slot == 0) else { return }
        let expected: Int
        if c.boRound == 1 {
            guard !g.assignment.isEmpty else { return }  // the staff view tells the breakout's size
            expected = g.assignment.values.filter { $0 == c.room }.count - 1
        } else {
            expected = plan.groupSize - 1
        }
        guard c.peersNegotiated >= expected else { return }
        c.boDoneRound = c.boRound
        g.boDone += 1
        if c.boRound == 1 {
            sendBreakoutChat(c)
            if g.boDone == plan.groupSize - 1 {
                g.renegotiated = true
                stats.breakoutGroupsRenegotiated += 1
                stats.breakoutOpened.record(micros(now, g.openIntended))
                closeWhenDone(g, now: now)
            }
        } else if g.boDone == plan.groupSize {
            g.finished = true
            stats.breakoutGroupsDone += 1
            stats.breakoutClosed.record(micros(now, g.closeIntended))
        }
    }

    /// `lb|<group>|<slot>|<room>|`: one chat in the sender's breakout.
    func sendBreakoutChat(_ c: LoadClient) {
        c.bchatSent += 1
        stats.breakoutChatSent += 1
        send(c, .chat(to: .room, text: "lb|\(c.group.local)|\(c.slot)|\(c.room)|"))
    }

    func breakoutChat(_ c: LoadClient, _ b: UnsafePointer<UInt8>, _ n: Int, from start: Int, now: UInt64) {
        var i = start
        var fields: [UInt64] = []
        for _ in 0..<3 {
            var v: UInt64 = 0
            while i < n, b[i] >= 48, b[i] <= 57 {
                v = v &* 10 &+ UInt64(b[i] - 48)
                i += 1
            }
            guard i < n, b[i] == 124 else {  // '|'
                failures.append("a breakout chat the generator did not write")
                return
            }
            i += 1
            fields.append(v)
        }
        let g = c.group
        guard Int(fields[0]) == g.local, Int(fields[1]) < c.groupSize else {
            failures.append("chat delivered to the wrong room")
            return
        }
        guard UInt32(fields[2]) == c.room else {
            stats.breakoutCrossRoom += 1
            return
        }
        c.bchatFrom[Int(fields[1])] += 1
        g.bchatReceived += 1
        stats.breakoutChatDelivered += 1
        closeWhenDone(g, now: now)
    }

    /// Round 1 over (everyone renegotiated, every breakout chat arrived): the facilitator
    /// closes all breakouts and starts afresh in the main room too.
    func closeWhenDone(_ g: LoadGroup, now: UInt64) {
        guard g.boRound == 1, g.renegotiated, !g.closeSent, g.bchatReceived >= g.bchatExpected else { return }
        let fac = connections[g.slots[0]]
        g.closeSent = true
        g.boRound = 2
        g.boDone = 0
        g.closeIntended = now
        fac.boRound = 2
        resetPeers(fac)
        send(fac, .closeBreakouts)
    }

    /// The phase is over (every group back, or the deadline): breakout chat owed and missing.
    func endBreakouts() {
        var lost = 0
        for g in groups where !g.assignment.isEmpty {
            for r in g.slots.dropFirst().map({ connections[$0] }) {
                for s in g.slots.dropFirst().map({ connections[$0] })
                where g.assignment[s.memberID] == g.assignment[r.memberID] {
                    lost += max(0, s.bchatSent - r.bchatFrom[s.slot])
                }
            }
        }
        stats.breakoutChatLost = lost
        let done = groups.filter(\.finished).count
        if done < groups.count {
            failures.append(
                "breakouts: \(groups.filter(\.renegotiated).count)/\(groups.count) groups renegotiated in their "
                    + "breakouts, \(done)/\(groups.count) back and renegotiated in the main room after "
                    + "\(plan.breakoutTimeout) s")
        }
        emit("PHASE breakouts-done \(wallMillis()) groups=\(done)/\(groups.count)")
        finish()
    }
}
