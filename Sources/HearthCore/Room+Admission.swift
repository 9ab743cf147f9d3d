/// The waiting room and admission (docs/protocol.md §3.2): the command handlers. Admitting a
/// seat itself (`admitSeat`, `admitAutomatically`) is in Room+Membership.
extension Room {
    mutating func acknowledgeConsent(
        version: String, by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]
    ) throws(Refusal) {
        guard let required = settings.consentVersion else { throw Refusal(.noConsentRequired) }
        guard version == required else { throw Refusal(.consentMismatch) }
        seats[actor.id]?.consentVersion = version
        audit("consent", at: at, actor: actor, subject: actor, reason: version, into: &fx)
        memberStatusChanged(actor.id, into: &fx)
        ack(actor, rid: rid, into: &fx)
        admitAutomatically(at: at, into: &fx)
    }

    mutating func setLocation(
        _ text: String, by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]
    ) throws(Refusal) {
        try checkText(text, max: settings.maxLocationLength)
        seats[actor.id]?.location = text
        audit("location", at: at, actor: actor, subject: actor, into: &fx)
        memberStatusChanged(actor.id, into: &fx)
        ack(actor, rid: rid, into: &fx)
        admitAutomatically(at: at, into: &fx)
    }

    mutating func admit(
        _ pid: ParticipantID, by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]
    ) throws(Refusal) {
        if let error = admitSeat(pid, by: actor, at: at, into: &fx) { throw Refusal(error, subject: seats[pid]) }
        ack(actor, rid: rid, Ack(admitted: [pid]), into: &fx)
    }

    /// Admits every waiting member who meets the requirements, in id order, until the room is full.
    mutating func admitAll(by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]) {
        var admitted: [ParticipantID] = []
        for seat in ordered(.waiting) where meetsRequirements(seat) == nil {
            let error = admitSeat(seat.id, by: actor, at: at, into: &fx)
            if error == .roomFull { break }
            if error == nil { admitted.append(seat.id) }
        }
        audit("admit-all", at: at, actor: actor, subject: nil, into: &fx)
        ack(actor, rid: rid, Ack(admitted: admitted), into: &fx)
    }

    mutating func deny(
        _ pid: ParticipantID, reason: String?, by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]
    ) throws(Refusal) {
        let subject = try target(pid, in: .waiting, nonStaff: true)
        try checkReason(reason)
        audit("deny", at: at, actor: actor, subject: subject, reason: reason, into: &fx)
        if let connection = subject.connection {
            fx.append(.send(Message(event: .denied(reason: reason)), to: [connection]))
            fx.append(.close(connection, .denied))
        }
        vacate(pid, reason: .denied, at: at, into: &fx)
        ack(actor, rid: rid, into: &fx)
    }

    mutating func sendBack(
        _ pid: ParticipantID, by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]
    ) throws(Refusal) {
        let subject = try target(pid, in: .room, nonStaff: true)
        audit("send-back", at: at, actor: actor, subject: subject, into: &fx)
        moveToWaitingRoom(pid, reason: .sentBack, at: at, into: &fx)
        ack(actor, rid: rid, into: &fx)
    }

    mutating func messageWaitingRoom(
        _ text: String, by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]
    ) throws(Refusal) {
        try checkText(text, max: settings.maxChatLength)
        audit("message-waiting-room", at: at, actor: actor, subject: nil, into: &fx)
        for pid in waitingAudience {
            publish(.waitingRoomMessage(text: text, at: at), to: [pid], into: &fx)
        }
        ack(actor, rid: rid, into: &fx)
    }

    /// A waiting member's own status changed (consent, location): tell them and staff.
    mutating func memberStatusChanged(_ pid: ParticipantID, into fx: inout [Effect]) {
        guard let seat = seats[pid] else { return }
        memberChanged(pid, into: &fx)
        if seat.placement == .waiting { publish(.waiting(waitingStatus(seat)), to: [pid], into: &fx) }
    }
}
