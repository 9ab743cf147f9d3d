/// Everything a member may ask the room to do, as named in the permission table.
public enum PermissionAction: String, CaseIterable, Hashable, Sendable {
    // Members
    case publishMedia = "publish-media"
    case raiseHand = "raise-hand"
    case chatRoom = "chat-room"
    case chatStaff = "chat-staff"
    case chatPrivate = "chat-private"
    case signal
    case requestHelp = "request-help"
    // Staff
    case admit
    case deny
    case sendBack = "send-back"
    case messageWaitingRoom = "message-waiting-room"
    case mute
    case askUnmute = "ask-unmute"
    case remove
    case changeRole = "change-role"
    case grant
    case spotlight
    case lowerHands = "lower-hands"
    case deleteChat = "delete-chat"
    case lock
    case updateSettings = "update-settings"
    case acknowledgeHelp = "acknowledge-help"
    case end
    case manageBreakouts = "manage-breakouts"

    /// Privileged actions act on other members or on the room; a refusal of one is audited.
    public var isPrivileged: Bool {
        switch self {
        case .publishMedia, .raiseHand, .chatRoom, .chatStaff, .chatPrivate, .signal, .requestHelp:
            return false
        default:
            return true
        }
    }
}

/// One cell of the permission table.
public enum PermissionRule: String, Sendable {
    case allowed
    case denied
    /// Denied until a facilitator grants it to that member (observers' media and room chat).
    case byGrant = "by-grant"
}

/// The permission table (role × action): the single source of truth. `docs/protocol.md`
/// prints it, and a test checks that the document and this table agree.
public enum Permissions {
    public static func rule(_ role: Role, _ action: PermissionAction) -> PermissionRule {
        switch role {
        case .facilitator:
            return .allowed
        case .cofacilitator:
            switch action {
            case .changeRole, .grant, .end: return .denied
            default: return .allowed
            }
        case .participant, .guest:
            switch action {
            case .publishMedia, .raiseHand, .chatRoom, .chatStaff, .chatPrivate, .signal, .requestHelp:
                return .allowed
            default:
                return .denied
            }
        case .observer:
            switch action {
            case .publishMedia, .chatRoom: return .byGrant
            // Observers watch: they need signalling to receive the group's media.
            case .chatStaff, .signal, .raiseHand, .requestHelp: return .allowed
            default: return .denied
            }
        }
    }

    /// The table as Markdown, as printed in docs/protocol.md.
    public static func markdownTable() -> String {
        var lines = ["| action | " + Role.allCases.map(\.rawValue).joined(separator: " | ") + " |"]
        lines.append("|---|" + Role.allCases.map { _ in "---|" }.joined())
        for action in PermissionAction.allCases {
            let cells = Role.allCases.map { role -> String in
                switch rule(role, action) {
                case .allowed: return "yes"
                case .denied: return "no"
                case .byGrant: return "by grant"
                }
            }
            lines.append("| `\(action.rawValue)` | " + cells.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }
}
