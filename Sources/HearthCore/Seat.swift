/// A member's place in a room, held across dropped connections for the grace period.
public struct Seat: Hashable, Sendable {
    public let id: ParticipantID
    public let userID: UserID
    public var role: Role
    /// The role is staff's decision (`set-role`), not the token's: it outlives the seat.
    var roleSetByStaff = false
    public var alias: String
    public var placement: Placement
    /// The breakout an admitted seat is in (nil: the main room). A held seat keeps it.
    public var breakout: BreakoutID?
    /// Nil while the seat is held for a dropped connection.
    public var connection: ConnectionID?
    public var heldSince: Instant?
    var resumeHash: String
    public var audio = false
    public var video = false
    public var handRaisedAt: Instant?
    /// Media kinds staff turned off; with `selfUnmute` off the member may not turn them on.
    public var mutedByStaff: Set<MediaKind> = []
    public var mediaGranted = false
    public var chatGranted = false
    public var consentVersion: String?
    public var location: String?
    public var waitingSince: Instant?
    /// When the seat entered its current placement: a held seat's exit is never earlier.
    public var placedAt: Instant
    /// Sent back by staff: automatic admission skips them.
    public var sentBack = false

    init(id: ParticipantID, identity: Identity, placement: Placement, resumeHash: String, at: Instant) {
        self.placedAt = at
        self.id = id
        self.userID = identity.userID
        self.role = identity.role
        self.alias = identity.alias
        self.placement = placement
        self.resumeHash = resumeHash
    }

    public var party: Party { Party(userID: userID, id: id, role: role) }
    public var isConnected: Bool { connection != nil }
    public var isStaff: Bool { role.isStaff }

    /// Whether the role or a grant lets this member do `action`.
    public func may(_ action: PermissionAction) -> Bool {
        switch Permissions.rule(role, action) {
        case .allowed: return true
        case .denied: return false
        case .byGrant:
            switch action {
            case .publishMedia: return mediaGranted
            case .chatRoom: return chatGranted
            default: return false
            }
        }
    }

    func memberView(forStaff staff: Bool) -> MemberView {
        MemberView(
            id: id, alias: alias, role: role, audio: audio, video: video, handRaisedAt: handRaisedAt,
            connected: isConnected, mediaGranted: mediaGranted, chatGranted: chatGranted,
            userID: staff ? userID : nil, location: staff ? location : nil,
            consentVersion: staff ? consentVersion : nil, breakout: staff ? breakout : nil)
    }

    /// When a seat that is leaving for good left: when its connection dropped, if it was held.
    func leftAt(_ now: Instant) -> Instant {
        guard let heldSince else { return now }
        return max(heldSince, placedAt)
    }

    func selfView() -> SelfView {
        SelfView(id: id, role: role, alias: alias, placement: placement, breakout: breakout)
    }
}
