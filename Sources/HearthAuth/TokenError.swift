/// Why a join token was refused.
///
/// There is deliberately only one public failure, ``invalid(_:)``: the server must answer every
/// refusal the same way so a caller cannot probe which check failed. The attached ``Reason`` is
/// for the audit trail and server logs only. Neither the error nor the reason ever contains the
/// token or any claim value, so both are safe to log.
public enum TokenError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalid(Reason)

    /// Why the token was refused (for logs and the audit trail; never send it to the client).
    public enum Reason: Sendable, Equatable, CustomStringConvertible {
        /// Not three base64url segments of JSON, oversized, or a claim of the wrong JSON type.
        case malformed
        /// `alg` is `none`, missing, or not one of HS256/EdDSA/ES256.
        case algorithmNotAllowed
        /// `alg` does not match the kind of the key selected by `kid` (algorithm confusion).
        case algorithmMismatch
        /// The header carries `crit` (no JWS extensions are understood).
        case unsupportedHeader
        /// No key with the token's `kid` (or no default key for a token without `kid`).
        case unknownKid
        case badSignature
        case missingClaim(String)
        /// A claim is present but has an unacceptable value (empty, too long, out of range).
        case invalidClaim(String)
        case expired
        case notYetValid
        /// `iat` lies in the future (beyond leeway).
        case issuedInFuture
        case lifetimeTooLong
        case wrongRoom
        case unknownRole

        /// A stable, log-friendly code, e.g. `expired` or `missing_claim:sub`.
        public var description: String {
            switch self {
            case .malformed: "malformed"
            case .algorithmNotAllowed: "algorithm_not_allowed"
            case .algorithmMismatch: "algorithm_mismatch"
            case .unsupportedHeader: "unsupported_header"
            case .unknownKid: "unknown_kid"
            case .badSignature: "bad_signature"
            case .missingClaim(let name): "missing_claim:\(name)"
            case .invalidClaim(let name): "invalid_claim:\(name)"
            case .expired: "expired"
            case .notYetValid: "not_yet_valid"
            case .issuedInFuture: "issued_in_future"
            case .lifetimeTooLong: "lifetime_too_long"
            case .wrongRoom: "wrong_room"
            case .unknownRole: "unknown_role"
            }
        }
    }

    /// The internal reason (for logs only).
    public var reason: Reason {
        switch self {
        case .invalid(let reason): reason
        }
    }

    /// Always `"invalid token"`: interpolating the error into a client message reveals nothing.
    public var description: String { "invalid token" }
}
