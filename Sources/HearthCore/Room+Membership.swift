/// Arrivals, drops, resumes, takeovers, grace expiry and idle expiry.
extension Room {
    /// A connection the shell authenticated presents its identity (`hello`).
    public mutating func connect(
        _ connection: ConnectionID, identity: Identity, credential: ResumeCredential, rid: String? = nil,
        at: Instant
    ) -> [Effect] {
        var fx: [Effect] = []
        arrive(connection, identity: identity, credential: credential, rid: rid, at: at, into: &fx)
        settleIdleTimer(at: at, into: &fx)
        return fx
    }

    /// `connect`'s work; `connect` then settles the idle timer, whatever the outcome (the
    /// arrival that creates a room may itself be turned away).
    private mutating func arrive(
        _ connection: ConnectionID, identity: Identity, credential: ResumeCredential, rid: String?, at: Instant,
        into fx: inout [Effect]
    ) {
        if isEnded {
            return refuseArrival(connection, .roomEnded, close: .ended, rid: rid, into: &fx)
        }
        if banned.contains(identity.userID) {
            refuseArrival(connection, .banned, close: .banned, rid: rid, into: &fx)
            return auditRefusedArrival(identity, .banned, at: at, into: &fx)
        }
        if let existing = seatOfUser[identity.userID] {
            // The same person again: a second device or a reconnect with a fresh token.
            let wasHeld = rebind(existing, to: connection, credential: credential, at: at, into: &fx)
            guard let seat = seats[existing] else { return }
            reply(.welcome(welcome(seat, secret: credential.secret)), to: connection, rid: rid, into: &fx)
            if wasHeld { memberChanged(existing, into: &fx) }
            return afterPresenceChange(at: at, into: &fx)
        }
        // A user who had a seat earlier in the session comes back as staff left them.
        let kept = sanctions[identity.userID]
        var identity = identity
        if let kept { identity.role = kept.role(given: identity.role) }
        if locked && !identity.role.isStaff {
            refuseArrival(connection, .roomLocked, close: .roomLocked, rid: rid, into: &fx)
            return auditRefusedArrival(identity, .roomLocked, at: at, into: &fx)
        }
        if !identity.role.isStaff && waitingCount >= settings.maxWaiting {
            refuseArrival(connection, .waitingRoomFull, close: .waitingRoomFull, rid: rid, into: &fx)
            return auditRefusedArrival(identity, .waitingRoomFull, at: at, into: &fx)
        }
        let pid = ParticipantID(nextSeat)
        nextSeat += 1
        var seat = Seat(
            id: pid, identity: identity, placement: identity.role.isStaff ? .room : .waiting,
            resumeHash: credential.hash, at: at)
        seat.connection = connection
        if seat.placement == .waiting { seat.waitingSince = at }
        if let kept {
            kept.apply(to: &seat)
            sanctions[identity.userID] = nil
        }
        seats[pid] = seat
        seatOfUser[identity.userID] = pid
        seatOfConnection[connection] = pid
        seatOfResumeHash[credential.hash] = pid
        audit("arrive", at: at, actor: seat, subject: seat, into: &fx)
        switch seat.placement {
        case .room:
            attendance(.enterRoom, seat, at: at, into: &fx)
            publishMember(seat, audience: viewers(of: seat).filter { $0 != pid }, into: &fx) { .memberJoined($0) }
        case .waiting:
            attendance(.enterWaiting, seat, at: at, into: &fx)
            publish(.waitingUpdated(waitingView(seat)), to: staffAudience, into: &fx)
        }
        reply(.welcome(welcome(seat, secret: credential.secret)), to: connection, rid: rid, into: &fx)
        afterPresenceChange(at: at, into: &fx)
        admitAutomatically(at: at, into: &fx)
    }

    /// A connection presents a seat's resume secret (hashed by the shell) and the last
    /// sequence number it processed. On success the seat's secret is replaced by `credential`
    /// (made by the shell, handed back once in `resumed`): a secret works for one resume, so
    /// whoever copied an old one cannot take the seat. `credential` is nil only when replaying
    /// a journal entry written before secrets rotated (the seat then keeps its secret).
    public mutating func resume(
        _ connection: ConnectionID, resumeHash: String, credential: ResumeCredential?, lastSeq: UInt64,
        rid: String? = nil, at: Instant
    ) -> [Effect] {
        var fx: [Effect] = []
        if isEnded {
            refuseArrival(connection, .roomEnded, close: .ended, rid: rid, into: &fx)
            return fx
        }
        guard let pid = seatOfResumeHash[resumeHash], seats[pid] != nil, lastSeq <= seq else {
            reply(.error(.resumeFailed), to: connection, rid: rid, into: &fx)
            return fx
        }
        let wasHeld = rebind(pid, to: connection, credential: credential, at: at, into: &fx)
        guard let seat = seats[pid] else { return fx }
        // Replay what this seat missed, unless the window no longer reaches back that far.
        let gap = lastSeq + 1 < (log.first?.seq ?? seq + 1) && lastSeq < seq
        let missed = gap ? [] : log.filter { $0.seq > lastSeq && $0.audience.contains(pid) }.map(\.message)
        let resumed = Resumed(
            you: seat.selfView(), resumeSecret: credential?.secret ?? "", seq: seq, gap: gap,
            room: gap && seat.placement == .room ? snapshot(for: seat) : nil,
            waiting: seat.placement == .waiting ? waitingStatus(seat) : nil, replayed: missed.count)
        reply(.resumed(resumed), to: connection, rid: rid, into: &fx)
        for message in missed { fx.append(.send(message, to: [connection])) }
        if wasHeld { memberChanged(pid, into: &fx) }
        afterPresenceChange(at: at, into: &fx)
        return fx
    }

    /// The shell noticed that a connection is gone (clean close, drop or kill).
    public mutating func disconnected(_ connection: ConnectionID, at: Instant) -> [Effect] {
        var fx: [Effect] = []
        guard let pid = seatOfConnection.removeValue(forKey: connection), var seat = seats[pid] else { return fx }
        guard seat.connection == connection else { return fx }
        seat.connection = nil
        seat.heldSince = at
        seats[pid] = seat
        audit("drop", at: at, actor: seat, subject: seat, into: &fx)
        fx.append(.schedule(graceTimer(pid), at: at + settings.graceMilliseconds))
        memberChanged(pid, into: &fx)
        afterPresenceChange(at: at, into: &fx)
        return fx
    }

    /// A timer the room scheduled has come due.
    public mutating func timerFired(_ kind: TimerID.Kind, at: Instant) -> [Effect] {
        var fx: [Effect] = []
        switch kind {
        case .grace(let pid):
            guard let seat = seats[pid], !seat.isConnected, let since = seat.heldSince,
                at - since >= settings.graceMilliseconds
            else { return fx }
            audit("expire", at: at, actor: nil, subject: seat, into: &fx)
            vacate(pid, reason: .expired, at: at, into: &fx)
            afterPresenceChange(at: at, into: &fx)
        case .opens:
            guard isScheduled else { return fx }
            phase = .open
            fx.append(.audit(AuditRecord(at: at, room: id, actor: nil, subject: nil, action: "open")))
            for seat in ordered(.waiting) {
                publish(.waiting(waitingStatus(seat)), to: [seat.id], into: &fx)
            }
            admitAutomatically(at: at, into: &fx)
        case .closes:
            guard !isEnded else { return fx }
            endSession(by: nil, at: at, into: &fx)
        case .idle:
            guard !isEnded, seats.isEmpty, let due = idleDeadline, at >= due else { return fx }
            idleDeadline = nil  // fired: nothing left to cancel
            endSession(by: nil, reason: "idle", at: at, into: &fx)
        case .breakoutsWarning, .breakoutsEnd:
            breakoutTimerFired(kind, at: at, into: &fx)
        }
        return fx
    }

    /// Starts the idle timer when the room has no seat (none live, none held), stops it when a
    /// seat arrives. Called wherever the room can become empty or stop being empty: the room
    /// is created, a seat arrives, a seat goes.
    mutating func settleIdleTimer(at: Instant, into fx: inout [Effect]) {
        guard !isEnded else { return }
        if seats.isEmpty {
            guard idleDeadline == nil else { return }
            // A room created ahead of its session is not idle before it opens.
            let due = max(at, settings.opensAt ?? at) + settings.idleCloseMilliseconds
            idleDeadline = due
            fx.append(.schedule(idleTimer, at: due))
        } else if idleDeadline != nil {
            idleDeadline = nil
            fx.append(.cancel(idleTimer))
        }
    }

    // MARK: Helpers

    /// An arrival turned away before it had a seat (participant id 0 in the record).
    func auditRefusedArrival(_ identity: Identity, _ code: ErrorCode, at: Instant, into fx: inout [Effect]) {
        let party = Party(userID: identity.userID, id: ParticipantID(0), role: identity.role)
        fx.append(
            .audit(
                AuditRecord(
                    at: at, room: id, actor: party, subject: party, action: "arrive", outcome: .refused(code))))
    }

    func welcome(_ seat: Seat, secret: String) -> Welcome {
        Welcome(
            you: seat.selfView(), resumeSecret: secret, seq: seq,
            room: seat.placement == .room ? snapshot(for: seat) : nil,
            waiting: seat.placement == .waiting ? waitingStatus(seat) : nil)
    }

    /// Turns away a `hello` or `resume` that gets no seat: the error, then the close.
    func refuseArrival(
        _ connection: ConnectionID, _ code: ErrorCode, close: CloseReason, rid: String?, into fx: inout [Effect]
    ) {
        reply(.error(code), to: connection, rid: rid, into: &fx)
        fx.append(.close(connection, close))
    }

    /// Moves a seat onto a new connection, closing the one it had (a takeover) or ending
    /// its hold. A new credential replaces the old one. Returns whether the seat was held;
    /// the caller tells the room once the connection has had its reply.
    mutating func rebind(
        _ pid: ParticipantID, to connection: ConnectionID, credential: ResumeCredential?, at: Instant,
        into fx: inout [Effect]
    ) -> Bool {
        guard var seat = seats[pid] else { return false }
        if let old = seat.connection {
            seatOfConnection[old] = nil
            fx.append(.close(old, .takenOver))
            audit("takeover", at: at, actor: seat, subject: seat, into: &fx)
        } else {
            fx.append(.cancel(graceTimer(pid)))
            audit("resume", at: at, actor: seat, subject: seat, into: &fx)
        }
        if let credential {
            seatOfResumeHash[seat.resumeHash] = nil
            seat.resumeHash = credential.hash
            seatOfResumeHash[credential.hash] = pid
        }
        let wasHeld = !seat.isConnected
        seat.connection = connection
        seat.heldSince = nil
        seats[pid] = seat
        seatOfConnection[connection] = pid
        return wasHeld
    }

    /// Takes a seat out of the room for good, with its attendance and the others told.
    mutating func vacate(_ pid: ParticipantID, reason: LeaveReason, at: Instant, into fx: inout [Effect]) {
        guard let present = seats[pid] else { return }
        // Its roster is the one it leaves: the members of its breakout (or main room) and staff.
        let audience = present.placement == .room ? viewers(of: present).filter { $0 != pid } : []
        guard let seat = seats.removeValue(forKey: pid) else { return }
        leaveBreakout(seat, forGood: true, at: seat.leftAt(at), into: &fx)
        defer { settleIdleTimer(at: at, into: &fx) }
        sanctions[seat.userID] = Sanctions(keptFrom: seat)
        seatOfUser[seat.userID] = nil
        seatOfResumeHash[seat.resumeHash] = nil
        if let connection = seat.connection { seatOfConnection[connection] = nil }
        if !seat.isConnected { fx.append(.cancel(graceTimer(pid))) }
        help[pid] = nil
        if spotlight == pid {
            spotlight = nil
            publishRoomState(into: &fx)
        }
        // A held seat left when its connection dropped, not when the room noticed.
        switch seat.placement {
        case .room:
            attendance(.exitRoom, seat, at: seat.leftAt(at), into: &fx)
            publish(.memberLeft(pid, reason: reason), to: audience, into: &fx)
        case .waiting:
            attendance(.exitWaiting, seat, at: seat.leftAt(at), into: &fx)
            publish(.waitingLeft(pid, reason: reason), to: staffAudience, into: &fx)
        }
    }

    /// Reacts when staff presence changed since the last input.
    mutating func afterPresenceChange(at: Instant, into fx: inout [Effect]) {
        let present = staffPresent
        guard present != staffWasPresent else { return }
        staffWasPresent = present
        if !present && settings.facilitatorDrop == .waitingRoom {
            for seat in ordered(.room) where !seat.isStaff {
                audit("facilitator-away", at: at, actor: nil, subject: seat, into: &fx)
                moveToWaitingRoom(seat.id, reason: .facilitatorAway, at: at, into: &fx)
            }
        }
        publishRoomState(into: &fx)
        for seat in ordered(.waiting) {
            publish(.waiting(waitingStatus(seat)), to: [seat.id], into: &fx)
        }
        if present { admitAutomatically(at: at, into: &fx) }
    }

    mutating func moveToWaitingRoom(
        _ pid: ParticipantID, reason: LeaveReason, at: Instant, into fx: inout [Effect]
    ) {
        guard let present = seats[pid], present.placement == .room else { return }
        let audience = viewers(of: present).filter { $0 != pid }
        seats[pid]?.breakout = nil
        leaveBreakout(present, forGood: false, at: at, into: &fx)
        guard var seat = seats[pid] else { return }
        attendance(.exitRoom, seat, at: at, into: &fx)
        seat.placement = .waiting
        seat.placedAt = at
        seat.waitingSince = at
        seat.handRaisedAt = nil
        // Nobody publishes from the waiting room.
        seat.audio = false
        seat.video = false
        seat.sentBack = reason == .sentBack
        seats[pid] = seat
        help[pid] = nil
        attendance(.enterWaiting, seat, at: at, into: &fx)
        publish(.memberLeft(pid, reason: reason), to: audience, into: &fx)
        if spotlight == pid {
            spotlight = nil
            publishRoomState(into: &fx)
        }
        publish(.waitingUpdated(waitingView(seat)), to: staffAudience, into: &fx)
        publish(.waiting(waitingStatus(seat)), to: [pid], into: &fx)
    }

    /// Admits a waiting member whose requirements are met; the caller checked permissions.
    mutating func admitSeat(_ pid: ParticipantID, by actor: Seat?, at: Instant, into fx: inout [Effect]) -> ErrorCode? {
        guard var seat = seats[pid] else { return .unknownMember }
        guard seat.placement == .waiting else { return .invalidTarget }
        if !isOpen { return .roomNotOpen }
        if let unmet = meetsRequirements(seat) { return unmet }
        if !seat.isStaff && admittedMemberCount >= settings.capacity { return .roomFull }
        attendance(.exitWaiting, seat, at: at, into: &fx)
        seat.placement = .room
        seat.placedAt = at
        seat.waitingSince = nil
        seat.sentBack = false
        seats[pid] = seat
        attendance(.enterRoom, seat, at: at, into: &fx)
        audit("admit", at: at, actor: actor, subject: seat, into: &fx)
        publish(.waitingLeft(pid, reason: .admitted), to: staffAudience, into: &fx)
        publishMember(seat, audience: viewers(of: seat).filter { $0 != pid }, into: &fx) { .memberJoined($0) }
        publish(.admitted(snapshot(for: seat)), to: [pid], into: &fx)
        return nil
    }

    /// With the waiting room turned off, members who meet the requirements go straight in
    /// while staff are present.
    mutating func admitAutomatically(at: Instant, into fx: inout [Effect]) {
        guard !settings.waitingRoom, staffPresent, isOpen else { return }
        let candidates = ordered(.waiting).filter { !$0.sentBack }.sorted {
            ($0.waitingSince ?? createdAt, $0.id) < ($1.waitingSince ?? createdAt, $1.id)
        }
        for seat in candidates where meetsRequirements(seat) == nil {
            if admitSeat(seat.id, by: nil, at: at, into: &fx) == .roomFull { break }
        }
    }
}
