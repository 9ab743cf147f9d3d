/// Where a chat message goes.
public enum ChatTarget: Hashable, Sendable {
    /// Everyone admitted to the room.
    case room
    /// Every staff member (and the sender).
    case staff
    /// One member (and the sender).
    case member(ParticipantID)
}

public enum SignalKind: String, CaseIterable, Hashable, Sendable {
    case offer, answer, ice
}

public enum MediaKind: String, CaseIterable, Hashable, Sendable {
    case audio, video
}

/// A command a member sends over its connection (after `hello`).
public enum ClientCommand: Hashable, Sendable {
    // Members
    case setMedia(audio: Bool?, video: Bool?)
    case raiseHand
    /// Lower a hand: one's own (nil), or, for staff, another member's.
    case lowerHand(ParticipantID?)
    case chat(to: ChatTarget, text: String)
    /// A WebRTC offer, answer or ICE candidate, relayed as opaque JSON text.
    case signal(to: ParticipantID, kind: SignalKind, payload: String)
    case requestHelp
    case acknowledgeConsent(version: String)
    case setLocation(String)
    case leave
    // Staff
    case admit(ParticipantID)
    case admitAll
    case deny(ParticipantID, reason: String?)
    case sendBack(ParticipantID)
    case messageWaitingRoom(String)
    case mute(ParticipantID, audio: Bool, video: Bool)
    case muteAll(video: Bool)
    case askUnmute(ParticipantID, audio: Bool, video: Bool)
    case remove(ParticipantID, ban: Bool, reason: String?)
    case setRole(ParticipantID, Role)
    /// Allow (or stop allowing) an observer to publish media and/or write to the room chat.
    case grant(ParticipantID, media: Bool, chat: Bool)
    case spotlight(ParticipantID?)
    case lowerAllHands
    case deleteChat(MessageID)
    case setLocked(Bool)
    case updateSettings(SettingsChange)
    case acknowledgeHelp(ParticipantID)
    case end
    // Staff: breakouts (docs/protocol.md §10)
    /// Plan the next breakouts: names and members by hand; `automatic` spreads the admitted
    /// non-staff members not named in any entry over the breakouts (balanced, in random order).
    case planBreakouts([BreakoutPlanEntry], automatic: Bool)
    /// Open the planned breakouts, optionally for a time (seconds), with a warning that many
    /// seconds before the end.
    case openBreakouts(durationSeconds: Int?, warningSeconds: Int?)
    /// Close every breakout (pull-asides too): everyone returns to the main room.
    case closeBreakouts
    case closeBreakout(BreakoutID)
    /// Move an admitted non-staff member into a breakout, or back to the main room (nil).
    case moveToBreakout(ParticipantID, BreakoutID?)
    /// A staff member goes into a breakout, or back to the main room (nil).
    case visitBreakout(BreakoutID?)
    /// A short message to everyone admitted, whichever breakout they are in.
    case broadcastToBreakouts(String)
    /// Open a private breakout for one member and the staff member who sends this.
    case pullAside(ParticipantID)

    /// The permission-table action this command needs, or nil when any member may send it.
    public var requiredPermission: PermissionAction? {
        switch self {
        case .setMedia: return nil  // turning media on is checked separately
        case .raiseHand: return .raiseHand
        case .lowerHand(let who): return who == nil ? nil : .lowerHands
        case .chat: return nil  // depends on the target
        case .signal: return .signal
        case .requestHelp: return .requestHelp
        case .acknowledgeConsent, .setLocation, .leave: return nil
        case .admit, .admitAll: return .admit
        case .deny: return .deny
        case .sendBack: return .sendBack
        case .messageWaitingRoom: return .messageWaitingRoom
        case .mute, .muteAll: return .mute
        case .askUnmute: return .askUnmute
        case .remove: return .remove
        case .setRole: return .changeRole
        case .grant: return .grant
        case .spotlight: return .spotlight
        case .lowerAllHands: return .lowerHands
        case .deleteChat: return .deleteChat
        case .setLocked: return .lock
        case .updateSettings: return .updateSettings
        case .acknowledgeHelp: return .acknowledgeHelp
        case .end: return .end
        case .planBreakouts, .openBreakouts, .closeBreakouts, .closeBreakout, .moveToBreakout, .visitBreakout,
            .broadcastToBreakouts, .pullAside:
            return .manageBreakouts
        }
    }

    /// The command's name, as used for its wire `type` and in audit records.
    public var name: String {
        switch self {
        case .setMedia: return "media"
        case .raiseHand: return "raise-hand"
        case .lowerHand: return "lower-hand"
        case .chat: return "chat"
        case .signal: return "signal"
        case .requestHelp: return "help"
        case .acknowledgeConsent: return "consent"
        case .setLocation: return "location"
        case .leave: return "leave"
        case .admit: return "admit"
        case .admitAll: return "admit-all"
        case .deny: return "deny"
        case .sendBack: return "send-back"
        case .messageWaitingRoom: return "message-waiting-room"
        case .mute: return "mute"
        case .muteAll: return "mute-all"
        case .askUnmute: return "ask-unmute"
        case .remove: return "remove"
        case .setRole: return "set-role"
        case .grant: return "grant"
        case .spotlight: return "spotlight"
        case .lowerAllHands: return "lower-all-hands"
        case .deleteChat: return "delete-chat"
        case .setLocked(let locked): return locked ? "lock" : "unlock"
        case .updateSettings: return "settings"
        case .acknowledgeHelp: return "acknowledge-help"
        case .end: return "end"
        case .planBreakouts: return "breakouts-plan"
        case .openBreakouts: return "breakouts-open"
        case .closeBreakouts: return "breakouts-close"
        case .closeBreakout: return "breakout-close"
        case .moveToBreakout: return "breakout-move"
        case .visitBreakout: return "breakout-visit"
        case .broadcastToBreakouts: return "breakout-broadcast"
        case .pullAside: return "pull-aside"
        }
    }

    /// Commands a member still in the waiting room may send.
    var allowedWhileWaiting: Bool {
        switch self {
        case .acknowledgeConsent, .setLocation, .leave, .requestHelp: return true
        default: return false
        }
    }
}
