/// Every error the room can answer a client with. The raw value is the stable wire
/// code; `docs/protocol.md` lists them all (a test checks that it does).
public enum ErrorCode: String, CaseIterable, Hashable, Sendable, Error {
    // Engine
    case forbidden
    case notAdmitted = "not-admitted"
    case unknownMember = "unknown-member"
    case unknownMessage = "unknown-message"
    case invalidTarget = "invalid-target"
    case roomFull = "room-full"
    case roomLocked = "room-locked"
    case roomEnded = "room-ended"
    case banned
    case consentRequired = "consent-required"
    case consentMismatch = "consent-mismatch"
    case locationRequired = "location-required"
    case noConsentRequired = "no-consent-required"
    case noStaffPresent = "no-staff-present"
    case lastFacilitator = "last-facilitator"
    case chatDisabled = "chat-disabled"
    case privateMessagesDisabled = "private-messages-disabled"
    case tooLong = "too-long"
    case emptyText = "empty-text"
    case peerUnavailable = "peer-unavailable"
    case selfUnmuteDisabled = "self-unmute-disabled"
    case resumeFailed = "resume-failed"
    case invalidArgument = "invalid-argument"
    // Shell and wire (the engine never emits these; listed so there is one enum of codes)
    case badJSON = "bad-json"
    case badMessage = "bad-message"
    case unknownType = "unknown-type"
    case helloRequired = "hello-required"
    case alreadyJoined = "already-joined"
    case authenticationFailed = "authentication-failed"
    case rateLimited = "rate-limited"
    case internalError = "internal-error"

    /// A short, fixed English message for the code: never contains client data.
    public var message: String {
        switch self {
        case .forbidden: return "Your role does not allow this action."
        case .notAdmitted: return "You must be admitted to the room first."
        case .unknownMember: return "No such member in this room."
        case .unknownMessage: return "No such chat message in this room."
        case .invalidTarget: return "This action cannot be applied to that member."
        case .roomFull: return "The room is at capacity."
        case .roomLocked: return "The room is locked."
        case .roomEnded: return "The session has ended."
        case .banned: return "You were removed from this session."
        case .consentRequired: return "The member has not acknowledged the current consent agreement."
        case .consentMismatch: return "That is not the consent version this room requires."
        case .locationRequired: return "The member has not stated their location."
        case .noConsentRequired: return "This room requires no consent acknowledgement."
        case .noStaffPresent: return "No facilitator is present."
        case .lastFacilitator: return "The last facilitator cannot be demoted."
        case .chatDisabled: return "Chat is not open to you under the room's chat policy."
        case .privateMessagesDisabled: return "Private messages between members are off in this room."
        case .tooLong: return "The text is longer than the room allows."
        case .emptyText: return "The text is empty."
        case .peerUnavailable: return "That member is not connected to the room."
        case .selfUnmuteDisabled: return "Staff muted you; wait until they ask you to unmute."
        case .resumeFailed: return "The seat cannot be resumed; join again."
        case .invalidArgument: return "A field has a value that is not allowed."
        case .badJSON: return "The message is not valid JSON."
        case .badMessage: return "The message is missing a field or has a field of the wrong type."
        case .unknownType: return "Unknown message type."
        case .helloRequired: return "The first message must be hello (or resume)."
        case .alreadyJoined: return "This connection has already joined."
        case .authenticationFailed: return "Authentication failed."
        case .rateLimited: return "Too many messages; slow down."
        case .internalError: return "Internal server error."
        }
    }
}
