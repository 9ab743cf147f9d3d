import Foundation

/// The claims of a verified join token: who is joining which room, in which role, and the room
/// settings the backend chose when it created the room.
///
/// Roles are plain strings at this layer (HearthAuth does not depend on the room engine); the
/// verifier only admits the five roles in ``JoinClaims/knownRoles``.
///
/// Wire format (the JWT payload; all keys are top-level claims):
///
/// | claim             | type           | required |
/// |-------------------|----------------|----------|
/// | `sub`             | string (user id) | yes    |
/// | `room`            | string         | yes      |
/// | `role`            | string         | yes      |
/// | `name`            | string (display alias) | yes |
/// | `exp`             | NumericDate    | yes      |
/// | `nbf`, `iat`      | NumericDate    | no       |
/// | `jti`             | string         | no       |
/// | `capacity`        | integer ≥ 1    | no       |
/// | `waitingRoom`, `requireLocation`, `privateMessages`, `selfUnmute` | boolean | no |
/// | `consentVersion`  | string         | no       |
/// | `chatPolicy`      | `"everyone"` \| `"staff-only"` \| `"off"` | no |
public struct JoinClaims: Sendable, Equatable {
    /// The five roles a join token may carry.
    public static let knownRoles: Set<String> = [
        "facilitator", "cofacilitator", "participant", "guest", "observer",
    ]
    /// The chat policies a join token may carry.
    public static let knownChatPolicies: Set<String> = ["everyone", "staff-only", "off"]

    /// The user id (`sub`).
    public var sub: String
    public var room: String
    public var role: String
    /// The display alias shown to the group.
    public var name: String
    public var exp: Date
    public var nbf: Date?
    public var iat: Date?
    public var jti: String?

    // Room settings the backend may set at room creation (nil = server default).
    public var capacity: Int?
    public var waitingRoom: Bool?
    public var consentVersion: String?
    public var requireLocation: Bool?
    public var chatPolicy: String?
    public var privateMessages: Bool?
    public var selfUnmute: Bool?

    public init(
        sub: String, room: String, role: String, name: String, exp: Date,
        nbf: Date? = nil, iat: Date? = nil, jti: String? = nil,
        capacity: Int? = nil, waitingRoom: Bool? = nil, consentVersion: String? = nil,
        requireLocation: Bool? = nil, chatPolicy: String? = nil, privateMessages: Bool? = nil,
        selfUnmute: Bool? = nil
    ) {
        self.sub = sub
        self.room = room
        self.role = role
        self.name = name
        self.exp = exp
        self.nbf = nbf
        self.iat = iat
        self.jti = jti
        self.capacity = capacity
        self.waitingRoom = waitingRoom
        self.consentVersion = consentVersion
        self.requireLocation = requireLocation
        self.chatPolicy = chatPolicy
        self.privateMessages = privateMessages
        self.selfUnmute = selfUnmute
    }
}
