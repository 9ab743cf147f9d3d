/// Why a member left the room or the waiting room, as told to the others.
public enum LeaveReason: String, Hashable, Sendable {
    case left
    /// Their connection dropped and the grace period ran out.
    case expired
    case removed
    case admitted
    case denied
    case sentBack = "sent-back"
    case facilitatorAway = "facilitator-away"
    case ended
    /// Moved into another breakout or back to the main room (and out of your sight).
    case moved
}

/// The first reply to a successful `hello`.
public struct Welcome: Hashable, Sendable {
    public var you: SelfView
    /// The seat's resume secret: given once, here; the engine keeps only its hash.
    public var resumeSecret: String
    /// The room's last sequence number: resume from here.
    public var seq: UInt64
    public var room: RoomSnapshot?
    public var waiting: WaitingStatus?
}

/// The reply to a successful `resume`: then every missed event follows, in order.
public struct Resumed: Hashable, Sendable {
    public var you: SelfView
    /// The seat's new resume secret: each secret works for one resume (the one this answers).
    public var resumeSecret: String
    public var seq: UInt64
    /// True when missed events fell out of the replay window: `room` then holds a fresh snapshot.
    public var gap: Bool
    public var room: RoomSnapshot?
    public var waiting: WaitingStatus?
    /// How many missed events follow.
    public var replayed: Int
}

/// The answer to a command sent with a `rid`.
public struct Ack: Hashable, Sendable {
    public var message: MessageID? = nil
    public var seq: UInt64? = nil
    public var admitted: [ParticipantID]? = nil
    /// `pull-aside`: the private breakout it opened.
    public var breakout: BreakoutID? = nil
    public init(
        message: MessageID? = nil, seq: UInt64? = nil, admitted: [ParticipantID]? = nil, breakout: BreakoutID? = nil
    ) {
        self.message = message
        self.seq = seq
        self.admitted = admitted
        self.breakout = breakout
    }
}

/// Everything the server tells a client.
/// `indirect`: events sit in every room's replay log, so each costs a pointer there, not its
/// largest case's size.
public indirect enum ServerEvent: Hashable, Sendable {
    case welcome(Welcome)
    case resumed(Resumed)
    /// You were admitted (or your view changed, e.g. a new role): here is the whole room.
    case admitted(RoomSnapshot)
    case snapshot(RoomSnapshot)
    /// Your status in the waiting room.
    case waiting(WaitingStatus)
    case memberJoined(MemberView)
    case memberUpdated(MemberView)
    case memberLeft(ParticipantID, reason: LeaveReason)
    /// Staff only.
    case waitingUpdated(WaitingView)
    case waitingLeft(ParticipantID, reason: LeaveReason)
    case roomUpdated(RoomStateView)
    case chat(ChatMessage)
    case chatDeleted(MessageID)
    case signal(from: ParticipantID, kind: SignalKind, payload: String)
    case waitingRoomMessage(text: String, at: Instant)
    case unmuteRequested(audio: Bool, video: Bool)
    /// Staff only.
    case helpRequested(HelpRequest)
    case helpAcknowledged(ParticipantID, by: ParticipantID)
    case denied(reason: String?)
    case removed(reason: String?, banned: Bool)
    case ended(at: Instant)
    /// Breakouts (docs/protocol.md §10). You moved: where you are now and that room's roster.
    case moved(breakout: BreakoutRef?, room: RoomSnapshot)
    /// Staff only: the breakouts changed (plan, open, who is where, the end time).
    case breakoutsUpdated(BreakoutsView)
    /// The planned breakouts return to the main room at `endsAt`.
    case breakoutsEnding(endsAt: Instant)
    /// Staff's message to every breakout.
    case breakoutBroadcast(from: ParticipantID, fromAlias: String, text: String, at: Instant)
    case ack(Ack)
    case error(ErrorCode)

    /// The wire `type` of the event.
    public var type: String {
        switch self {
        case .welcome: return "welcome"
        case .resumed: return "resumed"
        case .admitted: return "admitted"
        case .snapshot: return "snapshot"
        case .waiting: return "waiting"
        case .memberJoined: return "member-joined"
        case .memberUpdated: return "member-updated"
        case .memberLeft: return "member-left"
        case .waitingUpdated: return "waiting-updated"
        case .waitingLeft: return "waiting-left"
        case .roomUpdated: return "room-updated"
        case .chat: return "chat"
        case .chatDeleted: return "chat-deleted"
        case .signal: return "signal"
        case .waitingRoomMessage: return "waiting-room-message"
        case .unmuteRequested: return "unmute-requested"
        case .helpRequested: return "help-requested"
        case .helpAcknowledged: return "help-acknowledged"
        case .denied: return "denied"
        case .removed: return "removed"
        case .ended: return "ended"
        case .moved: return "moved"
        case .breakoutsUpdated: return "breakouts"
        case .breakoutsEnding: return "breakouts-ending"
        case .breakoutBroadcast: return "breakout-broadcast"
        case .ack: return "ack"
        case .error: return "error"
        }
    }
}

/// One message for one or more connections. `seq` is set on events the room logs
/// for replay; direct replies (welcome, ack, error) and signalling carry none.
public struct Message: Hashable, Sendable {
    public var seq: UInt64?
    public var rid: String?
    public var event: ServerEvent

    public init(seq: UInt64? = nil, rid: String? = nil, event: ServerEvent) {
        self.seq = seq
        self.rid = rid
        self.event = event
    }
}
