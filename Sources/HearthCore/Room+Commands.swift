/// Commands from connected members: the permission check, then one handler each. The
/// handlers live by theme: Room+Media (media, hands, spotlight, help), Room+Chat (chat and
/// signalling), Room+Admission (the waiting room) and Room+Moderation (members and the room).
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
        do throws(Refusal) {
            if let action = command.requiredPermission, !actor.may(action) { throw Refusal(.forbidden) }
            try perform(command, by: actor, rid: rid, at: at, into: &fx)
        } catch {
            answerRefusal(error, of: command, by: actor, rid: rid, at: at, into: &fx)
        }
        return fx
    }

    /// Why a command was refused: the error the sender gets, and the member it was aimed at
    /// (for the audit record). A handler throws it before it changes anything.
    struct Refusal: Error {
        var code: ErrorCode
        var subject: Seat?

        init(_ code: ErrorCode, subject: Seat? = nil) {
            self.code = code
            self.subject = subject
        }
    }

    /// Runs one command's handler. The handler checks its own preconditions first and throws
    /// a `Refusal` before it changes anything.
    mutating func perform(
        _ command: ClientCommand, by actor: Seat, rid: String?, at: Instant, into fx: inout [Effect]
    ) throws(Refusal) {
        switch command {
        case .setMedia(let audio, let video): try setMedia(audio: audio, video: video, by: actor, rid: rid, into: &fx)
        case .raiseHand: raiseHand(by: actor, rid: rid, at: at, into: &fx)
        case .lowerHand(nil): lowerOwnHand(by: actor, rid: rid, into: &fx)
        case .lowerHand(let pid?): try lowerHand(of: pid, by: actor, rid: rid, at: at, into: &fx)
        case .lowerAllHands: lowerAllHands(by: actor, rid: rid, at: at, into: &fx)
        case .chat(let to, let text): try chat(to: to, text: text, by: actor, rid: rid, at: at, into: &fx)
        case .signal(let to, let kind, let payload):
            try signal(to: to, kind: kind, payload: payload, by: actor, rid: rid, into: &fx)
        case .requestHelp: requestHelp(by: actor, rid: rid, at: at, into: &fx)
        case .acknowledgeHelp(let pid): try acknowledgeHelp(of: pid, by: actor, rid: rid, at: at, into: &fx)
        case .acknowledgeConsent(let version):
            try acknowledgeConsent(version: version, by: actor, rid: rid, at: at, into: &fx)
        case .setLocation(let text): try setLocation(text, by: actor, rid: rid, at: at, into: &fx)
        case .leave: leave(by: actor, rid: rid, at: at, into: &fx)
        case .admit(let pid): try admit(pid, by: actor, rid: rid, at: at, into: &fx)
        case .admitAll: admitAll(by: actor, rid: rid, at: at, into: &fx)
        case .deny(let pid, let reason): try deny(pid, reason: reason, by: actor, rid: rid, at: at, into: &fx)
        case .sendBack(let pid): try sendBack(pid, by: actor, rid: rid, at: at, into: &fx)
        case .messageWaitingRoom(let text): try messageWaitingRoom(text, by: actor, rid: rid, at: at, into: &fx)
        case .mute(let pid, let audio, let video):
            try mute(pid, audio: audio, video: video, by: actor, rid: rid, at: at, into: &fx)
        case .muteAll(let video): muteAll(video: video, by: actor, rid: rid, at: at, into: &fx)
        case .askUnmute(let pid, let audio, let video):
            try askUnmute(pid, audio: audio, video: video, by: actor, rid: rid, at: at, into: &fx)
        case .remove(let pid, let ban, let reason):
            try remove(pid, ban: ban, reason: reason, by: actor, rid: rid, at: at, into: &fx)
        case .setRole(let pid, let role): try setRole(of: pid, to: role, by: actor, rid: rid, at: at, into: &fx)
        case .grant(let pid, let media, let chat):
            try grant(pid, media: media, chat: chat, by: actor, rid: rid, at: at, into: &fx)
        case .spotlight(let pid): try spotlight(pid, by: actor, rid: rid, at: at, into: &fx)
        case .deleteChat(let mid): try deleteChat(mid, by: actor, rid: rid, at: at, into: &fx)
        case .setLocked(let value): setLocked(value, by: actor, rid: rid, at: at, into: &fx)
        case .updateSettings(let change): try updateSettings(change, by: actor, rid: rid, at: at, into: &fx)
        case .end: end(by: actor, rid: rid, at: at, into: &fx)
        case .planBreakouts(let entries, let automatic):
            try planBreakouts(entries, automatic: automatic, by: actor, rid: rid, at: at, into: &fx)
        case .openBreakouts(let duration, let warning):
            try openBreakouts(
                durationSeconds: duration, warningSeconds: warning, by: actor, rid: rid, at: at, into: &fx)
        case .closeBreakouts: try closeBreakouts(by: actor, rid: rid, at: at, into: &fx)
        case .closeBreakout(let id): try closeBreakout(id, by: actor, rid: rid, at: at, into: &fx)
        case .moveToBreakout(let pid, let id): try moveToBreakout(pid, id, by: actor, rid: rid, at: at, into: &fx)
        case .visitBreakout(let id): try visitBreakout(id, by: actor, rid: rid, at: at, into: &fx)
        case .broadcastToBreakouts(let text): try broadcastToBreakouts(text, by: actor, rid: rid, at: at, into: &fx)
        case .pullAside(let pid): try pullAside(pid, by: actor, rid: rid, at: at, into: &fx)
        }
    }

    /// Answers a refused command; audits it when the action is privileged or the role lacked it.
    func answerRefusal(
        _ refusal: Refusal, of command: ClientCommand, by actor: Seat, rid: String?, at: Instant,
        into fx: inout [Effect]
    ) {
        reply(.error(refusal.code), to: actor.connection!, rid: rid, into: &fx)
        if refusal.code == .forbidden || command.requiredPermission?.isPrivileged == true {
            audit(
                command.name, at: at, actor: actor, subject: refusal.subject, outcome: .refused(refusal.code),
                into: &fx)
        }
    }

    func ack(_ actor: Seat, rid: String?, _ ack: Ack = Ack(), into fx: inout [Effect]) {
        guard let rid, let connection = actor.connection else { return }
        reply(.ack(ack), to: connection, rid: rid, into: &fx)
    }

    /// Looks up the member a command targets; staff-only actions may not target staff.
    func target(_ pid: ParticipantID, in placement: Placement?, nonStaff: Bool) throws(Refusal) -> Seat {
        guard let seat = seats[pid] else { throw Refusal(.unknownMember) }
        if let placement, seat.placement != placement { throw Refusal(.invalidTarget, subject: seat) }
        if nonStaff && seat.isStaff { throw Refusal(.invalidTarget, subject: seat) }
        return seat
    }

    /// Refuses text that is blank or longer than `max` bytes.
    func checkText(_ text: String, max: Int) throws(Refusal) {
        if text.allSatisfy(\.isWhitespace) { throw Refusal(.emptyText) }
        if text.utf8.count > max { throw Refusal(.tooLong) }
    }

    /// Refuses a staff-given reason longer than the room allows.
    func checkReason(_ reason: String?) throws(Refusal) {
        if let reason, reason.utf8.count > settings.maxReasonLength { throw Refusal(.tooLong) }
    }
}
