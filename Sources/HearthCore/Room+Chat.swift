/// Chat and signalling (docs/protocol.md §3.7): the command handlers.
extension Room {
    mutating func chat(
        to: ChatTarget, text: String, by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]
    ) throws(Refusal) {
        try checkText(text, max: settings.maxChatLength)
        let audience = try chatAudience(to, from: actor)
        let mid = MessageID(nextMessage)
        nextMessage += 1
        let message = ChatMessage(
            id: mid, seq: seq + 1, from: actor.id, fromAlias: actor.alias, to: to, text: text, at: at,
            breakout: to == .room ? actor.breakout : nil)
        publish(.chat(message), to: audience, into: &fx)
        chatLog.append(StoredChat(message: message, audience: audience))
        // Trimmed in batches, so keeping history costs O(1) per message.
        if chatLog.count > settings.chatHistory * 2 { chatLog.removeFirst(chatLog.count - settings.chatHistory) }
        ack(actor, rid: rid, Ack(message: mid, seq: message.seq), into: &fx)
    }

    /// Who receives a chat message to `to` from `actor`, under the role's permissions and the
    /// room's chat policy.
    func chatAudience(_ to: ChatTarget, from actor: Seat) throws(Refusal) -> [ParticipantID] {
        let policy = settings.chatPolicy
        switch to {
        case .room:
            if !actor.may(.chatRoom) { throw Refusal(.forbidden) }
            if !actor.isStaff && policy != .everyone { throw Refusal(.chatDisabled) }
            // The room one is in: a breakout's chat stays with those in it.
            return spaceAudience(actor.breakout)
        case .staff:
            if !actor.may(.chatStaff) { throw Refusal(.forbidden) }
            if !actor.isStaff && policy == .off { throw Refusal(.chatDisabled) }
            return staffAudience.contains(actor.id) ? staffAudience : staffAudience + [actor.id]
        case .member(let pid):
            guard let target = seats[pid], target.placement == .room else { throw Refusal(.unknownMember) }
            if pid == actor.id { throw Refusal(.invalidTarget, subject: target) }
            // Between members, nothing crosses breakouts; staff and messages to staff do.
            if !actor.isStaff && !target.isStaff && target.breakout != actor.breakout {
                throw Refusal(.unknownMember)
            }
            if !actor.isStaff {
                if target.isStaff {
                    if !actor.may(.chatStaff) { throw Refusal(.forbidden) }
                    if policy == .off { throw Refusal(.chatDisabled) }
                } else {
                    if !actor.may(.chatPrivate) { throw Refusal(.forbidden) }
                    if policy != .everyone { throw Refusal(.chatDisabled) }
                    if !settings.privateMessages { throw Refusal(.privateMessagesDisabled) }
                }
            }
            return [actor.id, pid].sorted()
        }
    }

    /// Staff delete a chat message: its text is gone for everyone who received it.
    mutating func deleteChat(
        _ mid: MessageID, by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]
    ) throws(Refusal) {
        guard let index = chatLog.firstIndex(where: { $0.message.id == mid }) else {
            throw Refusal(.unknownMessage)
        }
        let author = seats[chatLog[index].message.from]
        if chatLog[index].message.text != nil {
            chatLog[index].message.text = nil
            publish(.chatDeleted(mid), to: chatLog[index].audience.filter { seats[$0] != nil }, into: &fx)
        }
        audit("delete-chat", at: at, actor: actor, subject: author, reason: mid.description, into: &fx)
        ack(actor, rid: rid, into: &fx)
    }

    func signal(
        to pid: ParticipantID, kind: SignalKind, payload: String, by actor: Seat, rid: String?,
        into fx: inout [Effect]
    ) throws(Refusal) {
        if payload.utf8.count > settings.maxSignalBytes { throw Refusal(.tooLong) }
        guard let target = seats[pid], target.placement == .room, sees(actor, target) else {
            throw Refusal(.unknownMember)
        }
        if pid == actor.id { throw Refusal(.invalidTarget, subject: target) }
        // Media stays within one breakout (or the main room): staff signal where they are.
        if target.breakout != actor.breakout { throw Refusal(.otherBreakout, subject: target) }
        guard let connection = target.connection else { throw Refusal(.peerUnavailable) }
        // Relayed, never logged: a resumed peer renegotiates its media anyway.
        fx.append(.send(Message(event: .signal(from: actor.id, kind: kind, payload: payload)), to: [connection]))
        ack(actor, rid: rid, into: &fx)
    }
}
