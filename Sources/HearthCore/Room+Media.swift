/// Media, hands, spotlight and help (docs/protocol.md §3.6): the command handlers.
extension Room {
    mutating func setMedia(
        audio: Bool?, video: Bool?, by actor: Seat, rid: String?, into fx: inout [Effect]
    ) throws(Refusal) {
        guard audio != nil || video != nil else { throw Refusal(.invalidArgument) }
        let turningOn = [(audio, MediaKind.audio), (video, MediaKind.video)].compactMap { $0.0 == true ? $0.1 : nil }
        if !turningOn.isEmpty {
            if !actor.may(.publishMedia) { throw Refusal(.forbidden) }
            if !settings.selfUnmute && !actor.isStaff && turningOn.contains(where: actor.mutedByStaff.contains) {
                throw Refusal(.selfUnmuteDisabled)
            }
        }
        var seat = actor
        if let audio { seat.audio = audio }
        if let video { seat.video = video }
        if seat.audio != actor.audio || seat.video != actor.video {
            seats[actor.id] = seat
            memberChanged(actor.id, into: &fx)
        }
        ack(actor, rid: rid, into: &fx)
    }

    mutating func raiseHand(by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]) {
        if actor.handRaisedAt == nil {
            seats[actor.id]?.handRaisedAt = at
            memberChanged(actor.id, into: &fx)
        }
        ack(actor, rid: rid, into: &fx)
    }

    mutating func lowerOwnHand(by actor: Seat, rid: String?, into fx: inout [Effect]) {
        if actor.handRaisedAt != nil {
            seats[actor.id]?.handRaisedAt = nil
            memberChanged(actor.id, into: &fx)
        }
        ack(actor, rid: rid, into: &fx)
    }

    /// Staff lower another member's hand.
    mutating func lowerHand(
        of pid: ParticipantID, by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]
    ) throws(Refusal) {
        let subject = try target(pid, in: .room, nonStaff: false)
        if subject.handRaisedAt != nil {
            seats[pid]?.handRaisedAt = nil
            memberChanged(pid, into: &fx)
        }
        audit("lower-hand", at: at, actor: actor, subject: subject, into: &fx)
        ack(actor, rid: rid, into: &fx)
    }

    mutating func lowerAllHands(by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]) {
        for seat in ordered(.room) where seat.handRaisedAt != nil {
            seats[seat.id]?.handRaisedAt = nil
            memberChanged(seat.id, into: &fx)
        }
        audit("lower-all-hands", at: at, actor: actor, subject: nil, into: &fx)
        ack(actor, rid: rid, into: &fx)
    }

    mutating func mute(
        _ pid: ParticipantID, audio: Bool, video: Bool, by actor: Seat, rid: String?, at: Instant,
        into fx: inout [Effect]
    ) throws(Refusal) {
        guard audio || video else { throw Refusal(.invalidArgument) }
        let subject = try target(pid, in: .room, nonStaff: true)
        muteSeat(pid, audio: audio, video: video, into: &fx)
        audit("mute", at: at, actor: actor, subject: subject, reason: mediaDetail(audio, video), into: &fx)
        ack(actor, rid: rid, into: &fx)
    }

    mutating func muteAll(video: Bool, by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]) {
        for seat in ordered(.room) where !seat.isStaff {
            muteSeat(seat.id, audio: true, video: video, into: &fx)
        }
        audit("mute-all", at: at, actor: actor, subject: nil, reason: mediaDetail(true, video), into: &fx)
        ack(actor, rid: rid, into: &fx)
    }

    mutating func askUnmute(
        _ pid: ParticipantID, audio: Bool, video: Bool, by actor: Seat, rid: String?, at: Instant,
        into fx: inout [Effect]
    ) throws(Refusal) {
        guard audio || video else { throw Refusal(.invalidArgument) }
        let subject = try target(pid, in: .room, nonStaff: true)
        if audio { seats[pid]?.mutedByStaff.remove(.audio) }
        if video { seats[pid]?.mutedByStaff.remove(.video) }
        audit("ask-unmute", at: at, actor: actor, subject: subject, reason: mediaDetail(audio, video), into: &fx)
        publish(.unmuteRequested(audio: audio, video: video), to: [pid], into: &fx)
        ack(actor, rid: rid, into: &fx)
    }

    /// Spotlights a member, or clears the spotlight (nil).
    mutating func spotlight(
        _ pid: ParticipantID?, by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]
    ) throws(Refusal) {
        var subject: Seat?
        if let pid { subject = try target(pid, in: .room, nonStaff: false) }
        spotlight = pid
        audit("spotlight", at: at, actor: actor, subject: subject, into: &fx)
        publishRoomState(into: &fx)
        ack(actor, rid: rid, into: &fx)
    }

    mutating func requestHelp(by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]) {
        help[actor.id] = at
        audit("help", at: at, actor: actor, subject: actor, into: &fx)
        publish(.helpRequested(HelpRequest(id: actor.id, at: at)), to: staffAudience, into: &fx)
        ack(actor, rid: rid, into: &fx)
    }

    mutating func acknowledgeHelp(
        of pid: ParticipantID, by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]
    ) throws(Refusal) {
        guard let subject = seats[pid] else { throw Refusal(.unknownMember) }
        guard help.removeValue(forKey: pid) != nil else { throw Refusal(.invalidTarget, subject: subject) }
        audit("acknowledge-help", at: at, actor: actor, subject: subject, into: &fx)
        var audience = staffAudience
        if !audience.contains(pid) { audience.append(pid) }
        publish(.helpAcknowledged(pid, by: actor.id), to: audience, into: &fx)
        ack(actor, rid: rid, into: &fx)
    }

    /// Turns a member's media off and marks it muted by staff.
    mutating func muteSeat(_ pid: ParticipantID, audio: Bool, video: Bool, into fx: inout [Effect]) {
        guard var seat = seats[pid] else { return }
        let before = seat
        if audio {
            seat.audio = false
            seat.mutedByStaff.insert(.audio)
        }
        if video {
            seat.video = false
            seat.mutedByStaff.insert(.video)
        }
        seats[pid] = seat
        if before.audio != seat.audio || before.video != seat.video { memberChanged(pid, into: &fx) }
    }

    /// The audit detail of a mute: "audio", "video" or "audio+video".
    func mediaDetail(_ audio: Bool, _ video: Bool) -> String {
        [audio ? "audio" : nil, video ? "video" : nil].compactMap { $0 }.joined(separator: "+")
    }
}
