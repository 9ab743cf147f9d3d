/// Where a member's seat is.
public enum Placement: String, Hashable, Sendable {
    case waiting
    case room
}

/// A member as others in the room see them. Staff get the staff view, with `userID`,
/// `location` and consent; everyone else gets only the room-scoped id and the alias.
public struct MemberView: Hashable, Sendable {
    public var id: ParticipantID
    public var alias: String
    public var role: Role
    public var audio: Bool
    public var video: Bool
    /// When the hand went up (hands are lowered in that order); nil when down.
    public var handRaisedAt: Instant?
    /// False while the seat is held for a dropped connection.
    public var connected: Bool
    /// Observers only: what a facilitator granted.
    public var mediaGranted: Bool
    public var chatGranted: Bool
    // Staff view only:
    public var userID: UserID?
    public var location: String?
    public var consentVersion: String?
    /// The breakout the member is in (nil: the main room).
    public var breakout: BreakoutID?
}

/// A member in the waiting room, as staff see them (nobody else ever does).
public struct WaitingView: Hashable, Sendable {
    public var id: ParticipantID
    public var alias: String
    public var role: Role
    public var userID: UserID
    public var since: Instant
    /// The consent version acknowledged, if any.
    public var consentVersion: String?
    public var location: String?
    public var connected: Bool
    /// Whether admission requirements (consent, location) are met.
    public var ready: Bool
}

/// Why a waiting member waits.
public enum WaitingReason: String, Hashable, Sendable {
    case waitingForFacilitator = "waiting-for-facilitator"
    case waitingForAdmission = "waiting-for-admission"
    /// The room was created ahead of its session and has not opened yet.
    case waitingForOpening = "waiting-for-opening"
    case sentBack = "sent-back"
}

/// What a waiting member knows: only their own status.
public struct WaitingStatus: Hashable, Sendable {
    public var reason: WaitingReason
    public var consentVersion: String?
    /// The agreement's text, when the room has one.
    public var consentText: String? = nil
    /// When the session opens, while it has not.
    public var opensAt: Instant? = nil
    public var consentAcknowledged: Bool
    public var locationRequired: Bool
    public var locationGiven: Bool
}

/// The room's shared state as its admitted members see it.
public struct RoomStateView: Hashable, Sendable {
    public var locked: Bool
    public var staffPresent: Bool
    public var spotlight: ParticipantID?
    public var chatPolicy: ChatPolicy
    public var privateMessages: Bool
    public var selfUnmute: Bool
    public var waitingRoom: Bool
    public var capacity: Int
    /// How the room carries media now: `.mesh` or `.sfu` (never `.auto`).
    public var media: MediaMode = .mesh
}

public struct ChatMessage: Hashable, Sendable {
    public var id: MessageID
    public var seq: UInt64
    public var from: ParticipantID
    public var fromAlias: String
    public var to: ChatTarget
    /// Nil once staff deleted it (a tombstone).
    public var text: String?
    public var at: Instant
    /// The breakout it was written in, for room chat there (nil: the main room, or not room chat).
    public var breakout: BreakoutID? = nil
    public var deleted: Bool { text == nil }
}

public struct HelpRequest: Hashable, Sendable {
    public var id: ParticipantID
    public var at: Instant
}

/// Everything an admitted member needs to draw the room.
public struct RoomSnapshot: Hashable, Sendable {
    public var you: MemberView
    public var room: RoomStateView
    public var members: [MemberView]
    /// The chat messages this member may see, oldest first.
    public var chat: [ChatMessage]
    /// Staff only (nil for others).
    public var waiting: [WaitingView]?
    public var help: [HelpRequest]?
    /// The breakout you are in (nil: the main room).
    public var breakout: BreakoutRef? = nil
    /// Staff only: the breakouts (nil for others, and while there is neither plan nor breakout).
    public var breakouts: BreakoutsView? = nil
}

/// Who the connection is, as told to it.
public struct SelfView: Hashable, Sendable {
    public var id: ParticipantID
    public var role: Role
    public var alias: String
    public var placement: Placement
    /// The breakout you are in (nil: the main room or the waiting room).
    public var breakout: BreakoutID? = nil
}
