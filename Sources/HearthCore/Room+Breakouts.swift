/// Breakouts (docs/protocol.md §10): staff split the group into small rooms inside the
/// session and bring it back. A member's breakout is `Seat.breakout`; who sees whom follows
/// from it (`sees`, `viewers(of:)`); every move goes through `relocate`.
extension Room {
    /// Most breakouts in one plan.
    public static let maxBreakouts = 50
    /// The longest breakout name, in bytes of UTF-8.
    public static let maxBreakoutNameBytes = 100
    /// The longest time limit (and warning), in seconds: four hours.
    public static let maxBreakoutSeconds = 14_400
    /// The warning before the time limit when `breakouts-open` names none, in seconds.
    public static let defaultBreakoutWarningSeconds = 60

    mutating func planBreakouts(
        _ entries: [BreakoutPlanEntry], automatic: Bool, by actor: Seat, rid: String?, at: Instant,
        into fx: inout [Effect]
    ) throws(Refusal) {
        if breakouts.plannedOpen { throw Refusal(.breakoutsOpen) }
        guard (1...Self.maxBreakouts).contains(entries.count) else { throw Refusal(.invalidArgument) }
        var named: Set<ParticipantID> = []
        for entry in entries {
            try checkText(entry.name, max: Self.maxBreakoutNameBytes)
            for pid in entry.members {
                let member = try target(pid, in: .room, nonStaff: true)
                guard named.insert(pid).inserted else { throw Refusal(.invalidArgument, subject: member) }
            }
        }
        var plan = entries.map { Breakouts.PlannedBreakout(id: breakouts.newID(), name: $0.name, members: $0.members) }
        if automatic {
            // Staff are never assigned automatically, nor is anyone pulled aside.
            var rest = ordered(.room).filter { !$0.isStaff && !named.contains($0.id) && !isPulledAside($0) }.map(\.id)
            var generator = SplitMix64(seed: UInt64(bitPattern: at.milliseconds) ^ seq ^ UInt64(breakouts.nextID))
            // Fisher-Yates by hand: the standard library's shuffle may change between Swift
            // versions, and a journal must replay the same assignment after an upgrade.
            for i in stride(from: rest.count - 1, to: 0, by: -1) {
                rest.swapAt(i, Int(generator.next() % UInt64(i + 1)))
            }
            for pid in rest {
                // Balanced: the first of the smallest breakouts gets the next member.
                let smallest = plan.indices.min { (plan[$0].members.count, $0) < (plan[$1].members.count, $1) }!
                plan[smallest].members.append(pid)
            }
        }
        breakouts.plan = plan
        let assigned = plan.reduce(0) { $0 + $1.members.count }
        audit(
            "breakouts-plan", at: at, actor: actor, subject: nil,
            reason: "\(plan.count) breakouts, \(assigned) assigned\(automatic ? ", automatic" : "")", into: &fx)
        publishBreakouts(into: &fx)
        ack(actor, rid: rid, into: &fx)
    }

    mutating func openBreakouts(
        durationSeconds: Int?, warningSeconds: Int?, by actor: Seat, rid: String?, at: Instant,
        into fx: inout [Effect]
    ) throws(Refusal) {
        if breakouts.plannedOpen { throw Refusal(.breakoutsOpen) }
        guard !breakouts.plan.isEmpty else { throw Refusal(.noBreakoutPlan) }
        if let d = durationSeconds, !(1...Self.maxBreakoutSeconds).contains(d) { throw Refusal(.invalidArgument) }
        if let w = warningSeconds, !(0...Self.maxBreakoutSeconds).contains(w) { throw Refusal(.invalidArgument) }
        let plan = breakouts.plan
        breakouts.plan = []
        breakouts.open += plan.map { Breakout(id: $0.id, name: $0.name, kind: .planned) }
        breakouts.open.sort { $0.id < $1.id }
        if let d = durationSeconds {
            let endsAt = at + Int64(d) * 1000
            breakouts.endsAt = endsAt
            fx.append(.schedule(breakoutsEndTimer, at: endsAt))
            let warning = warningSeconds ?? Self.defaultBreakoutWarningSeconds
            if warning > 0 && warning < d {
                fx.append(
                    .schedule(
                        breakoutsWarningTimer, at: Instant(milliseconds: endsAt.milliseconds - Int64(warning) * 1000)))
            }
        }
        audit(
            "breakouts-open", at: at, actor: actor, subject: nil,
            reason: "\(plan.count) breakouts" + (durationSeconds.map { ", \($0) s" } ?? ""), into: &fx)
        var moves: [Move] = []
        for planned in plan {
            for pid in planned.members {
                // Whoever left, was sent back, became staff or was pulled aside since the plan stays put.
                guard let seat = seats[pid], seat.placement == .room, !seat.isStaff, !isPulledAside(seat) else {
                    continue
                }
                moves.append(Move(seat, to: planned.id))
            }
        }
        relocate(moves, by: actor, at: at, into: &fx)
        publishBreakouts(into: &fx)
        ack(actor, rid: rid, into: &fx)
    }

    /// Closes every breakout, pull-asides included: everyone returns to the main room.
    mutating func closeBreakouts(by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]) throws(Refusal) {
        guard !breakouts.open.isEmpty else { throw Refusal(.breakoutsClosed) }
        audit(
            "breakouts-close", at: at, actor: actor, subject: nil, reason: "\(breakouts.open.count) breakouts",
            into: &fx)
        closeAll(where: { _ in true }, by: actor, at: at, into: &fx)
        ack(actor, rid: rid, into: &fx)
    }

    mutating func closeBreakout(
        _ id: BreakoutID, by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]
    ) throws(Refusal) {
        guard let breakout = breakouts.breakout(id) else { throw Refusal(.unknownBreakout) }
        audit("breakout-close", at: at, actor: actor, subject: nil, reason: id.description, into: &fx)
        // Back where they came from when pulled aside (if that is still open), else the main room.
        let moves = spaceAudience(id).compactMap { pid in
            seats[pid].map {
                Move($0, to: breakout.returns[pid].flatMap { breakouts.breakout($0) != nil && $0 != id ? $0 : nil })
            }
        }
        relocate(moves, closing: [id], by: actor, at: at, into: &fx)
        publishBreakouts(into: &fx)
        ack(actor, rid: rid, into: &fx)
    }

    mutating func moveToBreakout(
        _ pid: ParticipantID, _ destination: BreakoutID?, by actor: Seat, rid: String?, at: Instant,
        into fx: inout [Effect]
    ) throws(Refusal) {
        let subject = try target(pid, in: .room, nonStaff: true)
        if let destination, breakouts.breakout(destination) == nil { throw Refusal(.unknownBreakout, subject: subject) }
        relocate([Move(subject, to: destination)], by: actor, at: at, into: &fx)
        if subject.breakout != destination { publishBreakouts(into: &fx) }
        ack(actor, rid: rid, into: &fx)
    }

    mutating func visitBreakout(
        _ destination: BreakoutID?, by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]
    ) throws(Refusal) {
        if let destination, breakouts.breakout(destination) == nil { throw Refusal(.unknownBreakout) }
        relocate([Move(actor, to: destination)], by: actor, at: at, into: &fx)
        if actor.breakout != destination { publishBreakouts(into: &fx) }
        ack(actor, rid: rid, into: &fx)
    }

    mutating func broadcastToBreakouts(
        _ text: String, by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]
    ) throws(Refusal) {
        guard !breakouts.open.isEmpty else { throw Refusal(.breakoutsClosed) }
        try checkText(text, max: settings.maxChatLength)
        audit("breakout-broadcast", at: at, actor: actor, subject: nil, into: &fx)
        publish(
            .breakoutBroadcast(from: actor.id, fromAlias: actor.alias, text: text, at: at), to: roomAudience, into: &fx)
        ack(actor, rid: rid, into: &fx)
    }

    /// One member and the staff member who sends this go into a new private breakout at once.
    mutating func pullAside(
        _ pid: ParticipantID, by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]
    ) throws(Refusal) {
        let subject = try target(pid, in: .room, nonStaff: true)
        if isPulledAside(subject) { throw Refusal(.invalidTarget, subject: subject) }
        let id = breakouts.newID()
        var returns: [ParticipantID: BreakoutID] = [:]
        if let from = subject.breakout { returns[pid] = from }
        if let from = actor.breakout { returns[actor.id] = from }
        breakouts.open.append(Breakout(id: id, name: "Pull-aside", kind: .pullAside, returns: returns))
        breakouts.open.sort { $0.id < $1.id }
        audit("pull-aside", at: at, actor: actor, subject: subject, reason: id.description, into: &fx)
        relocate([Move(subject, to: id), Move(actor, to: id)], by: actor, at: at, into: &fx)
        publishBreakouts(into: &fx)
        ack(actor, rid: rid, Ack(breakout: id), into: &fx)
    }

    /// The planned breakouts' timers.
    mutating func breakoutTimerFired(_ kind: TimerID.Kind, at: Instant, into fx: inout [Effect]) {
        guard breakouts.plannedOpen, let endsAt = breakouts.endsAt else { return }
        switch kind {
        case .breakoutsWarning:
            let audience = ids(.room) { $0.isStaff || breakoutKind($0.breakout) == .planned }
            publish(.breakoutsEnding(endsAt: endsAt), to: audience, into: &fx)
        case .breakoutsEnd:
            guard at >= endsAt else { return }
            audit("breakouts-close", at: at, actor: nil, subject: nil, reason: "time-limit", into: &fx)
            closeAll(where: { $0.kind == .planned }, by: nil, at: at, into: &fx)
        default:
            return
        }
    }

    // MARK: Moving

    /// One seat to move, where to, and the audit action that records it.
    struct Move {
        var seat: ParticipantID
        var destination: BreakoutID?
        var action: String

        /// A staff member moves themselves (`breakout-visit`); members are moved (`breakout-move`).
        init(_ seat: Seat, to destination: BreakoutID?) {
            self.seat = seat.id
            self.destination = destination
            self.action = seat.isStaff ? "breakout-visit" : "breakout-move"
        }
    }

    /// Moves admitted seats, all at once: each one's attendance and audit record first; then,
    /// with everyone in place, `moved` to each with the roster it now has, `member-left` to the
    /// members of the room it left, `member-joined` to those of the room it entered (members
    /// moved in the same batch learn each other from their `moved`), and `member-updated` to
    /// staff (who see every room). A move to where the seat already is changes nothing but is
    /// audited (`b1->b1`): every privileged command leaves a record.
    ///
    /// `closing`: breakouts that close with this batch. They go from the open list once their
    /// members are out (with their attendance, which names them) and before anyone is told, so
    /// no `moved` shows a breakout as open that is already gone.
    mutating func relocate(
        _ moves: [Move], closing: Set<BreakoutID> = [], by actor: Seat?, at: Instant, into fx: inout [Effect]
    ) {
        var moved: [(id: ParticipantID, origin: BreakoutID?)] = []
        for move in moves {
            guard var seat = seats[move.seat], seat.placement == .room else { continue }
            let origin = seat.breakout
            audit(
                move.action, at: at, actor: actor, subject: seat,
                reason: "\(origin?.description ?? "main")->\(move.destination?.description ?? "main")", into: &fx)
            guard origin != move.destination else { continue }
            if let origin { attendance(.exitBreakout, seat, breakout: origin, at: at, into: &fx) }
            seat.breakout = move.destination
            seats[move.seat] = seat
            if let destination = move.destination {
                attendance(.enterBreakout, seat, breakout: destination, at: at, into: &fx)
            }
            moved.append((move.seat, origin))
        }
        if !closing.isEmpty {
            breakouts.open.removeAll { closing.contains($0.id) }
            if !breakouts.plannedOpen { stopTimeLimit(into: &fx) }
        }
        let movedIDs = Set(moved.map(\.id))
        for (id, origin) in moved {
            guard let seat = seats[id] else { continue }
            var left: [ParticipantID] = []
            var joined: [ParticipantID] = []
            var staff: [ParticipantID] = []
            for other in ordered(.room) where !movedIDs.contains(other.id) {
                if other.isStaff {
                    staff.append(other.id)
                } else if other.breakout == origin {
                    left.append(other.id)
                } else if other.breakout == seat.breakout {
                    joined.append(other.id)
                }
            }
            publish(.memberLeft(id, reason: .moved), to: left, into: &fx)
            publishMember(seat, audience: joined, into: &fx) { .memberJoined($0) }
            publishMember(seat, audience: staff, into: &fx) { .memberUpdated($0) }
        }
        for (id, _) in moved {
            guard let seat = seats[id] else { continue }
            publish(.moved(breakout: breakoutRef(seat.breakout), room: snapshot(for: seat)), to: [id], into: &fx)
        }
        // Who has the spotlit member in their roster changed: everyone learns the spotlight anew.
        if let spotlight, movedIDs.contains(spotlight) { publishRoomState(into: &fx) }
    }

    /// Everyone in the breakouts that pass `include` returns to the main room; those
    /// breakouts close (and the time limit stops when no planned breakout is left).
    mutating func closeAll(where include: (Breakout) -> Bool, by actor: Seat?, at: Instant, into fx: inout [Effect]) {
        let closing = Set(breakouts.open.filter(include).map(\.id))
        let moves = ordered(.room).filter { $0.breakout.map(closing.contains) == true }.map { Move($0, to: nil) }
        relocate(moves, closing: closing, by: actor, at: at, into: &fx)
        publishBreakouts(into: &fx)
    }

    /// Forgets the planned breakouts' end and cancels its timers.
    mutating func stopTimeLimit(into fx: inout [Effect]) {
        guard breakouts.endsAt != nil else { return }
        breakouts.endsAt = nil
        fx.append(.cancel(breakoutsWarningTimer))
        fx.append(.cancel(breakoutsEndTimer))
    }

    /// A seat left the room (for good, or for the waiting room; the caller took it out of
    /// its breakout): the breakout's attendance record, and, for good, out of the plan.
    mutating func leaveBreakout(_ seat: Seat, forGood: Bool, at: Instant, into fx: inout [Effect]) {
        var changed = false
        if let breakout = seat.breakout {
            attendance(.exitBreakout, seat, breakout: breakout, at: at, into: &fx)
            changed = true
        }
        if forGood {
            for i in breakouts.plan.indices where breakouts.plan[i].members.contains(seat.id) {
                breakouts.plan[i].members.removeAll { $0 == seat.id }
                changed = true
            }
        }
        if changed { publishBreakouts(into: &fx) }
    }

    /// Tells staff how the breakouts stand.
    mutating func publishBreakouts(into fx: inout [Effect]) {
        publish(.breakoutsUpdated(breakoutsView), to: staffAudience, into: &fx)
    }

    func isPulledAside(_ seat: Seat) -> Bool { breakoutKind(seat.breakout) == .pullAside }

    func breakoutKind(_ id: BreakoutID?) -> Breakout.Kind? { id.flatMap { breakouts.breakout($0)?.kind } }

    var breakoutsWarningTimer: TimerID { TimerID(room: id, kind: .breakoutsWarning) }
    var breakoutsEndTimer: TimerID { TimerID(room: id, kind: .breakoutsEnd) }
}

/// A small deterministic generator for the automatic assignment: the engine has no source
/// of randomness of its own, and a replayed journal must assign exactly as the first run did.
/// Seeded from the input's time and the room's counters, so each plan shuffles differently.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
