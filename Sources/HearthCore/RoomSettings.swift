/// Who may write in the room's chat.
public enum ChatPolicy: String, CaseIterable, Hashable, Sendable {
    case everyone
    /// Members may write to staff only; staff may still write to the room.
    case staffOnly = "staff-only"
    /// Members may not write at all; staff may.
    case off
}

/// What happens to the group when the last staff member's connection drops.
public enum FacilitatorDropPolicy: String, CaseIterable, Hashable, Sendable {
    /// Members stay; they are told the facilitator is reconnecting; arrivals wait.
    case hold
    /// Admitted non-staff members are moved back to the waiting room.
    case waitingRoom = "waiting-room"
}

/// How a room carries its members' media (docs/protocol.md §11).
public enum MediaMode: String, CaseIterable, Hashable, Sendable {
    /// Peer to peer: members relay offers, answers and candidates to each other (`signal`).
    case mesh
    /// Through the node's selective forwarding unit (Janus): each member sends once.
    case sfu
    /// Mesh until more than `meshLimit` members are admitted, then SFU for the rest of the session.
    case auto
}

/// A room's settings: fixed at creation, some of them changeable by staff.
public struct RoomSettings: Hashable, Sendable {
    /// Most non-staff members admitted at once (staff do not count).
    public var capacity: Int = 12
    /// Most members in the waiting room at once (new arrivals beyond it are turned away).
    public var maxWaiting: Int = 50
    public var waitingRoom: Bool = true
    /// The consent/confidentiality agreement version a member must acknowledge before admission.
    public var consentVersion: String? = nil
    /// The agreement's text, shown to waiting members with its version.
    public var consentText: String? = nil
    /// Whether a member must state their current location (staff-only) before admission.
    public var requireLocation: Bool = false
    public var chatPolicy: ChatPolicy = .everyone
    /// Private messages between non-staff members.
    public var privateMessages: Bool = false
    /// Whether members may unmute themselves after staff muted them.
    public var selfUnmute: Bool = true
    /// The session's window: before `opensAt` members wait (staff may enter early); at
    /// `closesAt` the room ends by itself. Set when a room is created ahead of its session.
    public var opensAt: Instant? = nil
    public var closesAt: Instant? = nil
    /// How long a dropped member's seat is held, in milliseconds.
    public var graceMilliseconds: Int64 = 60_000
    public var facilitatorDrop: FacilitatorDropPolicy = .hold
    /// How long a room with no seat (none live, none held) stays open before it ends by
    /// itself, in milliseconds. For a room created ahead of its session the clock starts at
    /// `opensAt`. Without it, a room its members only left would stay open (and count against
    /// the node's room limit) until someone ended it.
    public var idleCloseMilliseconds: Int64 = 1_800_000
    /// How many recent events the room keeps to replay to resuming members. A member who
    /// missed more gets a fresh snapshot (with the chat history) instead.
    public var replayWindow: Int = 512
    /// How many chat messages the room keeps for members who arrive or resume.
    public var chatHistory: Int = 500
    public var maxChatLength: Int = 2000
    public var maxLocationLength: Int = 500
    public var maxReasonLength: Int = 500
    public var maxSignalBytes: Int = 16_384
    /// How the room carries media; `auto` switches to the SFU above `meshLimit` admitted members.
    public var media: MediaMode = .mesh
    /// With `media: auto`, the most admitted members (staff included) carried by a mesh.
    public var meshLimit: Int = 4

    public init() {}
}

/// The settings staff may change during a session (nil = unchanged).
public struct SettingsChange: Hashable, Sendable {
    public var chatPolicy: ChatPolicy?
    public var privateMessages: Bool?
    public var selfUnmute: Bool?
    public var waitingRoom: Bool?

    public init(
        chatPolicy: ChatPolicy? = nil, privateMessages: Bool? = nil, selfUnmute: Bool? = nil,
        waitingRoom: Bool? = nil
    ) {
        self.chatPolicy = chatPolicy
        self.privateMessages = privateMessages
        self.selfUnmute = selfUnmute
        self.waitingRoom = waitingRoom
    }

    public var isEmpty: Bool { chatPolicy == nil && privateMessages == nil && selfUnmute == nil && waitingRoom == nil }
}
