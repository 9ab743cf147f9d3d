/// Leaving, removing, roles, grants, the room's lock and settings, and ending the session
/// (docs/protocol.md §3.8, §3.9): the command handlers.
extension Room {
    mutating func leave(by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]) {
        audit("leave", at: at, actor: actor, subject: actor, into: &fx)
        ack(actor, rid: rid, into: &fx)
        fx.append(.close(actor.connection!, .left))
        vacate(actor.id, reason: .left, at: at, into: &fx)
        afterPresenceChange(at: at, into: &fx)
    }

    mutating func remove(
        _ pid: ParticipantID, ban: Bool, reason: String?, by actor: Seat, rid: String?, at: Instant,
        into fx: inout [Effect]
    ) throws(Refusal) {
        let subject = try target(pid, in: nil, nonStaff: true)
        try checkReason(reason)
        audit(ban ? "ban" : "remove", at: at, actor: actor, subject: subject, reason: reason, into: &fx)
        if ban { banned.insert(subject.userID) }
        if let connection = subject.connection {
            fx.append(.send(Message(event: .removed(reason: reason, banned: ban)), to: [connection]))
            fx.append(.close(connection, ban ? .banned : .removed))
        }
        vacate(pid, reason: .removed, at: at, into: &fx)
        ack(actor, rid: rid, into: &fx)
    }

    mutating func setRole(
        of pid: ParticipantID, to role: Role, by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]
    ) throws(Refusal) {
        let subject = try target(pid, in: .room, nonStaff: false)
        if subject.role == .facilitator && role != .facilitator
            && !seats.values.contains(where: { $0.role == .facilitator && $0.id != pid })
        {
            throw Refusal(.lastFacilitator, subject: subject)
        }
        // A demoted staff member becomes one of the group: capacity still holds.
        if subject.isStaff && !role.isStaff && admittedMemberCount >= settings.capacity {
            throw Refusal(.roomFull, subject: subject)
        }
        audit(
            "set-role", at: at, actor: actor, subject: subject, reason: "\(subject.role.rawValue)->\(role.rawValue)",
            into: &fx)
        // Staff's decision, not the token's: it stays with the user if they leave and come back.
        seats[pid]?.roleSetByStaff = true
        if subject.role != role {
            let wasStaff = subject.isStaff
            seats[pid]?.role = role
            if role != .observer {
                seats[pid]?.mediaGranted = false
                seats[pid]?.chatGranted = false
            }
            // A role that may not publish (an observer without a grant) stops publishing.
            if let seat = seats[pid], !seat.may(.publishMedia) {
                seats[pid]?.audio = false
                seats[pid]?.video = false
            }
            memberChanged(pid, into: &fx)
            if let seat = seats[pid], wasStaff != seat.isStaff {
                // Their view of the room changes (user ids, waiting room): send it whole.
                publish(.snapshot(snapshot(for: seat)), to: [pid], into: &fx)
            }
            afterPresenceChange(at: at, into: &fx)
        }
        ack(actor, rid: rid, into: &fx)
    }

    /// Allows (or stops allowing) an observer to publish media and write to the room chat.
    mutating func grant(
        _ pid: ParticipantID, media: Bool, chat: Bool, by actor: Seat, rid: String?, at: Instant,
        into fx: inout [Effect]
    ) throws(Refusal) {
        guard let subject = seats[pid] else { throw Refusal(.unknownMember) }
        guard subject.role == .observer else { throw Refusal(.invalidTarget, subject: subject) }
        seats[pid]?.mediaGranted = media
        seats[pid]?.chatGranted = chat
        if !media {
            seats[pid]?.audio = false
            seats[pid]?.video = false
        }
        audit("grant", at: at, actor: actor, subject: subject, reason: "media=\(media) chat=\(chat)", into: &fx)
        memberChanged(pid, into: &fx)
        ack(actor, rid: rid, into: &fx)
    }

    mutating func setLocked(_ value: Bool, by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]) {
        locked = value
        audit(value ? "lock" : "unlock", at: at, actor: actor, subject: nil, into: &fx)
        publishRoomState(into: &fx)
        ack(actor, rid: rid, into: &fx)
    }

    mutating func updateSettings(
        _ change: SettingsChange, by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]
    ) throws(Refusal) {
        guard !change.isEmpty else { throw Refusal(.invalidArgument) }
        if let v = change.chatPolicy { settings.chatPolicy = v }
        if let v = change.privateMessages { settings.privateMessages = v }
        if let v = change.selfUnmute { settings.selfUnmute = v }
        if let v = change.waitingRoom { settings.waitingRoom = v }
        audit("settings", at: at, actor: actor, subject: nil, reason: settingsDetail(change), into: &fx)
        publishRoomState(into: &fx)
        ack(actor, rid: rid, into: &fx)
        admitAutomatically(at: at, into: &fx)
    }

    /// The audit detail of a settings change: the settings it sets, as `name=value`.
    func settingsDetail(_ change: SettingsChange) -> String {
        var parts: [String] = []
        if let v = change.chatPolicy { parts.append("chatPolicy=\(v.rawValue)") }
        if let v = change.privateMessages { parts.append("privateMessages=\(v)") }
        if let v = change.selfUnmute { parts.append("selfUnmute=\(v)") }
        if let v = change.waitingRoom { parts.append("waitingRoom=\(v)") }
        return parts.joined(separator: " ")
    }

    /// Staff end the session.
    mutating func end(by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]) {
        ack(actor, rid: rid, into: &fx)
        endSession(by: actor, at: at, into: &fx)
    }

    /// Ends the session for everyone: told, closed, attendance finalised, nothing more accepted.
    /// `actor` is nil when the room ends by itself or by the operator; `reason` is a fixed
    /// detail for the audit trail (`idle` when the room ended by itself).
    mutating func endSession(by actor: Seat?, reason: String? = nil, at: Instant, into fx: inout [Effect]) {
        audit("end", at: at, actor: actor, subject: nil, reason: reason, into: &fx)
        let everyone = seats.values.sorted { $0.id < $1.id }
        publish(.ended(at: at), to: everyone.map(\.id), into: &fx)
        for seat in everyone {
            if let breakout = seat.breakout {
                attendance(.exitBreakout, seat, breakout: breakout, at: seat.leftAt(at), into: &fx)
            }
            switch seat.placement {
            case .room: attendance(.exitRoom, seat, at: seat.leftAt(at), into: &fx)
            case .waiting: attendance(.exitWaiting, seat, at: seat.leftAt(at), into: &fx)
            }
            if let connection = seat.connection {
                fx.append(.close(connection, .ended))
            } else {
                fx.append(.cancel(graceTimer(seat.id)))
            }
        }
        if idleDeadline != nil {
            idleDeadline = nil
            fx.append(.cancel(idleTimer))
        }
        stopTimeLimit(into: &fx)
        breakouts = Breakouts(nextID: breakouts.nextID)
        phase = .ended(at)
        seats = [:]
        sanctions = [:]
        seatOfUser = [:]
        seatOfConnection = [:]
        seatOfResumeHash = [:]
        help = [:]
        log = []
        chatLog = []
        spotlight = nil
    }
}
