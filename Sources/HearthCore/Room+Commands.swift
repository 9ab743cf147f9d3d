/// Commands from connected members: the permission check, then one handler each.
extension Room {
    /// Handles one command from a connection. A refused command changes nothing and
    /// answers the sender with an error (and, for a privileged action, an audit record).
    public mutating func handle(
        _ command: ClientCommand, from connection: ConnectionID, rid: String? = nil, at: Instant
    ) -> [Effect] {
        var fx: [Effect] = []
        if isEnded {
            reply(.error(.roomEnded), to: connection, rid: rid, into: &fx)
            return fx
        }
        guard let actor = seat(of: connection) else {
            reply(.error(.notAdmitted), to: connection, rid: rid, into: &fx)
            return fx
        }
        if actor.placement == .waiting && !command.allowedWhileWaiting {
            reply(.error(.notAdmitted), to: connection, rid: rid, into: &fx)
            return fx
        }
        if let action = command.action, !actor.may(action) {
            refused(command, .forbidden, actor: actor, subject: nil, rid: rid, at: at, into: &fx)
            return fx
        }
        let outcome = perform(command, actor: actor, rid: rid, at: at, into: &fx)
        if case .failure(let refusal) = outcome {
            refused(command, refusal.code, actor: actor, subject: refusal.subject, rid: rid, at: at, into: &fx)
        }
        return fx
    }

    struct Refusal: Error {
        var code: ErrorCode
        var subject: Seat?
    }

    /// Answers a refused command; audits it when the action is privileged or the role lacked it.
    func refused(
        _ command: ClientCommand, _ code: ErrorCode, actor: Seat, subject: Seat?, rid: String?, at: Instant,
        into fx: inout [Effect]
    ) {
        reply(.error(code), to: actor.connection!, rid: rid, into: &fx)
        if code == .forbidden || command.action?.isPrivileged == true {
            audit(command.name, at: at, actor: actor, subject: subject, outcome: .refused(code), into: &fx)
        }
    }

    func ack(_ actor: Seat, rid: String?, _ ack: Ack = Ack(), into fx: inout [Effect]) {
        guard let rid, let connection = actor.connection else { return }
        reply(.ack(ack), to: connection, rid: rid, into: &fx)
    }

    /// Looks up the member a command targets; staff-only actions may not target staff.
    func target(_ pid: ParticipantID, in placement: Placement?, nonStaff: Bool) -> Result<Seat, Refusal> {
        guard let seat = seats[pid] else { return .failure(Refusal(code: .unknownMember)) }
        if let placement, seat.placement != placement { return .failure(Refusal(code: .invalidTarget, subject: seat)) }
        if nonStaff && seat.isStaff { return .failure(Refusal(code: .invalidTarget, subject: seat)) }
        return .success(seat)
    }

    func checkText(_ text: String, max: Int) -> ErrorCode? {
        if text.allSatisfy(\.isWhitespace) { return .emptyText }
        if text.utf8.count > max { return .tooLong }
        return nil
    }

    mutating func perform(
        _ command: ClientCommand, actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]
    ) -> Result<Void, Refusal> {
        switch command {
        case .setMedia(let audio, let video):
            return setMedia(actor, audio: audio, video: video, rid: rid, into: &fx)
        case .raiseHand:
            if actor.handRaisedAt == nil {
                seats[actor.id]?.handRaisedAt = at
                memberChanged(actor.id, into: &fx)
            }
            ack(actor, rid: rid, into: &fx)
        case .lowerHand(nil):
            if actor.handRaisedAt != nil {
                seats[actor.id]?.handRaisedAt = nil
                memberChanged(actor.id, into: &fx)
            }
            ack(actor, rid: rid, into: &fx)
        case .lowerHand(let pid?):
            let subject: Seat
            switch target(pid, in: .room, nonStaff: false) {
            case .success(let s): subject = s
            case .failure(let r): return .failure(r)
            }
            if subject.handRaisedAt != nil {
                seats[pid]?.handRaisedAt = nil
                memberChanged(pid, into: &fx)
            }
            audit(command.name, at: at, actor: actor, subject: subject, into: &fx)
            ack(actor, rid: rid, into: &fx)
        case .lowerAllHands:
            for seat in ordered(.room) where seat.handRaisedAt != nil {
                seats[seat.id]?.handRaisedAt = nil
                memberChanged(seat.id, into: &fx)
            }
            audit(command.name, at: at, actor: actor, subject: nil, into: &fx)
            ack(actor, rid: rid, into: &fx)
        case .chat(let to, let text):
            return chat(actor, to: to, text: text, rid: rid, at: at, into: &fx)
        case .signal(let to, let kind, let payload):
            return signal(actor, to: to, kind: kind, payload: payload, rid: rid, into: &fx)
        case .requestHelp:
            help[actor.id] = at
            audit(command.name, at: at, actor: actor, subject: actor, into: &fx)
            publish(.helpRequested(HelpRequest(id: actor.id, at: at)), to: staffAudience, into: &fx)
            ack(actor, rid: rid, into: &fx)
        case .acknowledgeHelp(let pid):
            guard let subject = seats[pid] else { return .failure(Refusal(code: .unknownMember)) }
            guard help.removeValue(forKey: pid) != nil else {
                return .failure(Refusal(code: .invalidTarget, subject: subject))
            }
            audit(command.name, at: at, actor: actor, subject: subject, into: &fx)
            var audience = staffAudience
            if !audience.contains(pid) { audience.append(pid) }
            publish(.helpAcknowledged(pid, by: actor.id), to: audience, into: &fx)
            ack(actor, rid: rid, into: &fx)
        case .acknowledgeConsent(let version):
            guard let required = settings.consentVersion else { return .failure(Refusal(code: .noConsentRequired)) }
            guard version == required else { return .failure(Refusal(code: .consentMismatch)) }
            seats[actor.id]?.consentVersion = version
            audit("consent", at: at, actor: actor, subject: actor, reason: version, into: &fx)
            memberStatusChanged(actor.id, into: &fx)
            ack(actor, rid: rid, into: &fx)
            admitAutomatically(at: at, into: &fx)
        case .setLocation(let text):
            if let error = checkText(text, max: settings.maxLocationLength) { return .failure(Refusal(code: error)) }
            seats[actor.id]?.location = text
            audit("location", at: at, actor: actor, subject: actor, into: &fx)
            memberStatusChanged(actor.id, into: &fx)
            ack(actor, rid: rid, into: &fx)
            admitAutomatically(at: at, into: &fx)
        case .leave:
            audit(command.name, at: at, actor: actor, subject: actor, into: &fx)
            ack(actor, rid: rid, into: &fx)
            fx.append(.close(actor.connection!, .left))
            vacate(actor.id, reason: .left, at: at, into: &fx)
            afterPresenceChange(at: at, into: &fx)
        case .admit(let pid):
            if let error = admit(pid, by: actor, at: at, into: &fx) {
                return .failure(Refusal(code: error, subject: seats[pid]))
            }
            ack(actor, rid: rid, Ack(admitted: [pid]), into: &fx)
        case .admitAll:
            var admitted: [ParticipantID] = []
            for seat in ordered(.waiting) where meetsRequirements(seat) == nil {
                let error = admit(seat.id, by: actor, at: at, into: &fx)
                if error == .roomFull { break }
                if error == nil { admitted.append(seat.id) }
            }
            audit(command.name, at: at, actor: actor, subject: nil, into: &fx)
            ack(actor, rid: rid, Ack(admitted: admitted), into: &fx)
        case .deny(let pid, let reason):
            return deny(actor, pid, reason: reason, rid: rid, at: at, into: &fx)
        case .sendBack(let pid):
            switch target(pid, in: .room, nonStaff: true) {
            case .failure(let r): return .failure(r)
            case .success(let subject):
                audit(command.name, at: at, actor: actor, subject: subject, into: &fx)
                moveToWaitingRoom(pid, reason: .sentBack, at: at, into: &fx)
                ack(actor, rid: rid, into: &fx)
            }
        case .messageWaitingRoom(let text):
            if let error = checkText(text, max: settings.maxChatLength) { return .failure(Refusal(code: error)) }
            audit(command.name, at: at, actor: actor, subject: nil, into: &fx)
            for pid in waitingAudience {
                publish(.waitingRoomMessage(text: text, at: at), to: [pid], into: &fx)
            }
            ack(actor, rid: rid, into: &fx)
        case .mute(let pid, let audio, let video):
            guard audio || video else { return .failure(Refusal(code: .invalidArgument)) }
            switch target(pid, in: .room, nonStaff: true) {
            case .failure(let r): return .failure(r)
            case .success(let subject):
                mute(pid, audio: audio, video: video, into: &fx)
                audit(
                    command.name, at: at, actor: actor, subject: subject, reason: mediaDetail(audio, video), into: &fx)
                ack(actor, rid: rid, into: &fx)
            }
        case .muteAll(let video):
            for seat in ordered(.room) where !seat.isStaff {
                mute(seat.id, audio: true, video: video, into: &fx)
            }
            audit(command.name, at: at, actor: actor, subject: nil, reason: mediaDetail(true, video), into: &fx)
            ack(actor, rid: rid, into: &fx)
        case .askUnmute(let pid, let audio, let video):
            guard audio || video else { return .failure(Refusal(code: .invalidArgument)) }
            switch target(pid, in: .room, nonStaff: true) {
            case .failure(let r): return .failure(r)
            case .success(let subject):
                if audio { seats[pid]?.mutedByStaff.remove(.audio) }
                if video { seats[pid]?.mutedByStaff.remove(.video) }
                audit(
                    command.name, at: at, actor: actor, subject: subject, reason: mediaDetail(audio, video), into: &fx)
                publish(.unmuteRequested(audio: audio, video: video), to: [pid], into: &fx)
                ack(actor, rid: rid, into: &fx)
            }
        case .remove(let pid, let ban, let reason):
            return remove(actor, pid, ban: ban, reason: reason, rid: rid, at: at, into: &fx)
        case .setRole(let pid, let role):
            return setRole(actor, pid, role: role, rid: rid, at: at, into: &fx)
        case .grant(let pid, let media, let chat):
            guard let subject = seats[pid] else { return .failure(Refusal(code: .unknownMember)) }
            guard subject.role == .observer else { return .failure(Refusal(code: .invalidTarget, subject: subject)) }
            seats[pid]?.mediaGranted = media
            seats[pid]?.chatGranted = chat
            if !media {
                seats[pid]?.audio = false
                seats[pid]?.video = false
            }
            audit(
                command.name, at: at, actor: actor, subject: subject, reason: "media=\(media) chat=\(chat)", into: &fx)
            memberChanged(pid, into: &fx)
            ack(actor, rid: rid, into: &fx)
        case .spotlight(let pid):
            var subject: Seat?
            if let pid {
                switch target(pid, in: .room, nonStaff: false) {
                case .failure(let r): return .failure(r)
                case .success(let s): subject = s
                }
            }
            spotlight = pid
            audit(command.name, at: at, actor: actor, subject: subject, into: &fx)
            publish(.roomUpdated(roomState), to: roomAudience, into: &fx)
            ack(actor, rid: rid, into: &fx)
        case .deleteChat(let mid):
            guard let index = chatLog.firstIndex(where: { $0.message.id == mid }) else {
                return .failure(Refusal(code: .unknownMessage))
            }
            let author = seats[chatLog[index].message.from]
            if chatLog[index].message.text != nil {
                chatLog[index].message.text = nil
                publish(.chatDeleted(mid), to: chatLog[index].audience.filter { seats[$0] != nil }, into: &fx)
            }
            audit(command.name, at: at, actor: actor, subject: author, reason: mid.description, into: &fx)
            ack(actor, rid: rid, into: &fx)
        case .setLocked(let value):
            locked = value
            audit(command.name, at: at, actor: actor, subject: nil, into: &fx)
            publish(.roomUpdated(roomState), to: roomAudience, into: &fx)
            ack(actor, rid: rid, into: &fx)
        case .updateSettings(let change):
            guard !change.isEmpty else { return .failure(Refusal(code: .invalidArgument)) }
            if let v = change.chatPolicy { settings.chatPolicy = v }
            if let v = change.privateMessages { settings.privateMessages = v }
            if let v = change.selfUnmute { settings.selfUnmute = v }
            if let v = change.waitingRoom { settings.waitingRoom = v }
            audit(command.name, at: at, actor: actor, subject: nil, reason: settingsDetail(change), into: &fx)
            publish(.roomUpdated(roomState), to: roomAudience, into: &fx)
            ack(actor, rid: rid, into: &fx)
            admitAutomatically(at: at, into: &fx)
        case .end:
            ack(actor, rid: rid, into: &fx)
            end(by: actor, at: at, into: &fx)
        }
        return .success(())
    }

    func mediaDetail(_ audio: Bool, _ video: Bool) -> String {
        [audio ? "audio" : nil, video ? "video" : nil].compactMap { $0 }.joined(separator: "+")
    }

    func settingsDetail(_ change: SettingsChange) -> String {
        var parts: [String] = []
        if let v = change.chatPolicy { parts.append("chatPolicy=\(v.rawValue)") }
        if let v = change.privateMessages { parts.append("privateMessages=\(v)") }
        if let v = change.selfUnmute { parts.append("selfUnmute=\(v)") }
        if let v = change.waitingRoom { parts.append("waitingRoom=\(v)") }
        return parts.joined(separator: " ")
    }

    /// A waiting member's own status changed (consent, location): tell them and staff.
    mutating func memberStatusChanged(_ pid: ParticipantID, into fx: inout [Effect]) {
        guard let seat = seats[pid] else { return }
        memberChanged(pid, into: &fx)
        if seat.placement == .waiting { publish(.waiting(waitingStatus(seat)), to: [pid], into: &fx) }
    }

    mutating func mute(_ pid: ParticipantID, audio: Bool, video: Bool, into fx: inout [Effect]) {
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

    mutating func setMedia(
        _ actor: Seat, audio: Bool?, video: Bool?, rid: String?, into fx: inout [Effect]
    ) -> Result<Void, Refusal> {
        guard audio != nil || video != nil else { return .failure(Refusal(code: .invalidArgument)) }
        let turningOn = [(audio, MediaKind.audio), (video, MediaKind.video)].compactMap { $0.0 == true ? $0.1 : nil }
        if !turningOn.isEmpty {
            if !actor.may(.publishMedia) { return .failure(Refusal(code: .forbidden)) }
            if !settings.selfUnmute && !actor.isStaff && turningOn.contains(where: actor.mutedByStaff.contains) {
                return .failure(Refusal(code: .selfUnmuteDisabled))
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
        return .success(())
    }

    mutating func chat(
        _ actor: Seat, to: ChatTarget, text: String, rid: String?, at: Instant, into fx: inout [Effect]
    ) -> Result<Void, Refusal> {
        if let error = checkText(text, max: settings.maxChatLength) { return .failure(Refusal(code: error)) }
        let policy = settings.chatPolicy
        let audience: [ParticipantID]
        switch to {
        case .room:
            if !actor.may(.chatRoom) { return .failure(Refusal(code: .forbidden)) }
            if !actor.isStaff && policy != .everyone { return .failure(Refusal(code: .chatDisabled)) }
            audience = roomAudience
        case .staff:
            if !actor.may(.chatStaff) { return .failure(Refusal(code: .forbidden)) }
            if !actor.isStaff && policy == .off { return .failure(Refusal(code: .chatDisabled)) }
            audience = staffAudience.contains(actor.id) ? staffAudience : staffAudience + [actor.id]
        case .member(let pid):
            guard let target = seats[pid], target.placement == .room else {
                return .failure(Refusal(code: .unknownMember))
            }
            if pid == actor.id { return .failure(Refusal(code: .invalidTarget, subject: target)) }
            if !actor.isStaff {
                if target.isStaff {
                    if !actor.may(.chatStaff) { return .failure(Refusal(code: .forbidden)) }
                    if policy == .off { return .failure(Refusal(code: .chatDisabled)) }
                } else {
                    if !actor.may(.chatPrivate) { return .failure(Refusal(code: .forbidden)) }
                    if policy != .everyone { return .failure(Refusal(code: .chatDisabled)) }
                    if !settings.privateMessages { return .failure(Refusal(code: .privateMessagesDisabled)) }
                }
            }
            audience = [actor.id, pid].sorted()
        }
        let mid = MessageID(nextMessage)
        nextMessage += 1
        let message = ChatMessage(
            id: mid, seq: seq + 1, from: actor.id, fromAlias: actor.alias, to: to, text: text, at: at)
        publish(.chat(message), to: audience, into: &fx)
        chatLog.append(StoredChat(message: message, audience: audience))
        // Trimmed in batches, so keeping history costs O(1) per message.
        if chatLog.count > settings.chatHistory * 2 { chatLog.removeFirst(chatLog.count - settings.chatHistory) }
        ack(actor, rid: rid, Ack(message: mid, seq: message.seq), into: &fx)
        return .success(())
    }

    func signal(
        _ actor: Seat, to pid: ParticipantID, kind: SignalKind, payload: String, rid: String?,
        into fx: inout [Effect]
    ) -> Result<Void, Refusal> {
        if payload.utf8.count > settings.maxSignalBytes { return .failure(Refusal(code: .tooLong)) }
        guard let target = seats[pid], target.placement == .room else {
            return .failure(Refusal(code: .unknownMember))
        }
        if pid == actor.id { return .failure(Refusal(code: .invalidTarget, subject: target)) }
        guard let connection = target.connection else { return .failure(Refusal(code: .peerUnavailable)) }
        // Relayed, never logged: a resumed peer renegotiates its media anyway.
        fx.append(.send(Message(event: .signal(from: actor.id, kind: kind, payload: payload)), to: [connection]))
        ack(actor, rid: rid, into: &fx)
        return .success(())
    }

    mutating func deny(
        _ actor: Seat, _ pid: ParticipantID, reason: String?, rid: String?, at: Instant, into fx: inout [Effect]
    ) -> Result<Void, Refusal> {
        let subject: Seat
        switch target(pid, in: .waiting, nonStaff: true) {
        case .failure(let r): return .failure(r)
        case .success(let s): subject = s
        }
        if let reason, reason.utf8.count > settings.maxReasonLength { return .failure(Refusal(code: .tooLong)) }
        audit("deny", at: at, actor: actor, subject: subject, reason: reason, into: &fx)
        if let connection = subject.connection {
            fx.append(.send(Message(event: .denied(reason: reason)), to: [connection]))
            fx.append(.close(connection, .denied))
        }
        vacate(pid, reason: .denied, at: at, into: &fx)
        ack(actor, rid: rid, into: &fx)
        return .success(())
    }

    mutating func remove(
        _ actor: Seat, _ pid: ParticipantID, ban: Bool, reason: String?, rid: String?, at: Instant,
        into fx: inout [Effect]
    ) -> Result<Void, Refusal> {
        let subject: Seat
        switch target(pid, in: nil, nonStaff: true) {
        case .failure(let r): return .failure(r)
        case .success(let s): subject = s
        }
        if let reason, reason.utf8.count > settings.maxReasonLength { return .failure(Refusal(code: .tooLong)) }
        audit(ban ? "ban" : "remove", at: at, actor: actor, subject: subject, reason: reason, into: &fx)
        if ban { banned.insert(subject.userID) }
        if let connection = subject.connection {
            fx.append(.send(Message(event: .removed(reason: reason, banned: ban)), to: [connection]))
            fx.append(.close(connection, ban ? .banned : .removed))
        }
        vacate(pid, reason: .removed, at: at, into: &fx)
        ack(actor, rid: rid, into: &fx)
        return .success(())
    }

    mutating func setRole(
        _ actor: Seat, _ pid: ParticipantID, role: Role, rid: String?, at: Instant, into fx: inout [Effect]
    ) -> Result<Void, Refusal> {
        let subject: Seat
        switch target(pid, in: .room, nonStaff: false) {
        case .failure(let r): return .failure(r)
        case .success(let s): subject = s
        }
        if subject.role == .facilitator && role != .facilitator
            && !seats.values.contains(where: { $0.role == .facilitator && $0.id != pid })
        {
            return .failure(Refusal(code: .lastFacilitator, subject: subject))
        }
        // A demoted staff member becomes one of the group: capacity still holds.
        if subject.isStaff && !role.isStaff && admittedMemberCount >= settings.capacity {
            return .failure(Refusal(code: .roomFull, subject: subject))
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
        return .success(())
    }

    /// Ends the session for everyone: told, closed, attendance finalised, nothing more accepted.
    /// `reason` is a fixed detail for the audit trail (`idle` when the room ended by itself).
    mutating func end(by actor: Seat?, reason: String? = nil, at: Instant, into fx: inout [Effect]) {
        audit("end", at: at, actor: actor, subject: nil, reason: reason, into: &fx)
        let everyone = seats.values.sorted { $0.id < $1.id }
        publish(.ended(at: at), to: everyone.map(\.id), into: &fx)
        for seat in everyone {
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
