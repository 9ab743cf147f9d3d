import Crypto
import ExtrasBase64
import Foundation
import JWTKit

/// Verifies join tokens (compact JWS / JWT) synchronously.
///
/// ## Why not `JWTKeyCollection`
///
/// jwt-kit 5's `JWTKeyCollection` is an `actor` and its `verify` is `async`, and its per-algorithm
/// signers (`HMACSigner`, `EdDSASigner`, `ECDSASigner`, `JWTSigner`) are internal to the module.
/// The server calls this verifier from its libwebsockets event-loop thread, which is a plain C
/// thread and cannot `await`; blocking it on a semaphore while a task runs the actor would
/// risk stalls and deadlocks. So this type splits the work:
///
/// - **Parsing** uses jwt-kit's public, synchronous `DefaultJWTParser.getTokenParts` to split the
///   segments, swift-extras-base64 (jwt-kit's own base64 library, with jwt-kit's options) to
///   decode them, and jansson (``TokenJSON``) for the header (`WireHeader`: the fields read
///   below) and the payload: strict JSON, duplicate member names refused.
/// - **Signature checks** call swift-crypto directly: `HMAC<SHA256>.isValidAuthenticationCode`
///   (constant-time) for HS256, `Curve25519.Signing.PublicKey.isValidSignature` for EdDSA, and
///   `P256.Signing.PublicKey.isValidSignature` over the SHA-256 digest, with the JWS raw `r‖s`
///   signature, for ES256. No cryptography is written here.
/// - **Claim checks** (times, lifetime, room, role, settings) are plain comparisons below.
///
/// The type is an immutable `Sendable` value: any thread may call ``verify(_:now:expectedRoom:)``
/// concurrently, and it never blocks or suspends.
///
/// ## Rules
///
/// - `alg` must be `HS256`, `EdDSA` or `ES256`; `none` (any spelling) is refused.
/// - The key is chosen by `kid`; a token without `kid` uses the key without `kid`.
/// - `alg` must match the chosen key's kind (no algorithm confusion).
/// - A header with `crit` is refused; `typ` is optional and not checked.
/// - `sub`, `room`, `role`, `name` (non-empty strings) and `exp` are required.
/// - `exp` must not be past by more than the leeway; `nbf` and `iat` must not be in the future
///   by more than the leeway.
/// - `exp - iat` must not exceed `maxLifetimeSeconds`; without `iat`, `exp - now` must not
///   exceed `maxLifetimeSeconds + leewaySeconds` (the leeway absorbs the issuer's clock skew).
/// - `room` must equal the room the client asked to join; `role` must be one of the five roles.
/// - Room settings, when present, must be sane (`capacity` 1...10 000, a known `chatPolicy`).
public struct TokenVerifier: Sendable {
    /// Tokens longer than this are refused before parsing.
    public static let maxTokenBytes = 8192
    /// Longest accepted `sub`, `room`, `name`, `jti` and `consentVersion` (in UTF-8 bytes).
    public static let maxClaimBytes = 512

    private let keys: [TokenKey]
    public let leewaySeconds: Int
    public let maxLifetimeSeconds: Int

    public init(keys: [TokenKey], leewaySeconds: Int = 30, maxLifetimeSeconds: Int = 600) {
        self.keys = keys
        self.leewaySeconds = max(0, leewaySeconds)
        self.maxLifetimeSeconds = max(0, maxLifetimeSeconds)
    }

    /// Verifies `token` for a client asking to join `expectedRoom` at time `now`.
    public func verify(_ token: String, now: Date, expectedRoom: String) -> Result<JoinClaims, TokenError> {
        do {
            return .success(try check(token, now: now, expectedRoom: expectedRoom))
        } catch {
            return .failure(error)
        }
    }

    private func check(_ token: String, now: Date, expectedRoom: String) throws(TokenError) -> JoinClaims {
        // 1–3. Parse, header rules, key by kid, signature (shared with `AdminTokenVerifier`).
        let payload = try Self.verifiedPayload(token, keys: keys, as: WirePayload.self)

        // 4. Claims.
        if let bad = payload.typeErrors.first { throw .invalid(.invalidClaim(bad)) }
        guard let sub = payload.sub else { throw .invalid(.missingClaim("sub")) }
        guard let room = payload.room else { throw .invalid(.missingClaim("room")) }
        guard let role = payload.role else { throw .invalid(.missingClaim("role")) }
        guard let name = payload.name else { throw .invalid(.missingClaim("name")) }
        guard let exp = payload.exp else { throw .invalid(.missingClaim("exp")) }
        try Self.checkText(sub, claim: "sub")
        try Self.checkText(room, claim: "room")
        try Self.checkText(role, claim: "role")
        try Self.checkText(name, claim: "name")
        if let jti = payload.jti { try Self.checkText(jti, claim: "jti") }
        if let consent = payload.consentVersion { try Self.checkText(consent, claim: "consentVersion") }
        for (claim, value) in [("exp", Optional(exp)), ("nbf", payload.nbf), ("iat", payload.iat)] {
            if let value, !value.isFinite { throw .invalid(.invalidClaim(claim)) }
        }

        try Self.checkTimes(
            exp: exp, nbf: payload.nbf, iat: payload.iat, now: now, leewaySeconds: leewaySeconds,
            maxLifetimeSeconds: maxLifetimeSeconds)

        guard room == expectedRoom else { throw .invalid(.wrongRoom) }
        guard JoinClaims.knownRoles.contains(role) else { throw .invalid(.unknownRole) }
        // A guest's invitation is single use: without an id it could not be told apart from its reuse.
        if role == "guest" && payload.jti == nil { throw .invalid(.missingClaim("jti")) }

        if let capacity = payload.capacity, !(1...10_000).contains(capacity) {
            throw .invalid(.invalidClaim("capacity"))
        }
        if let policy = payload.chatPolicy, !JoinClaims.knownChatPolicies.contains(policy) {
            throw .invalid(.invalidClaim("chatPolicy"))
        }

        return JoinClaims(
            sub: sub, room: room, role: role, name: name,
            exp: Date(timeIntervalSince1970: exp),
            nbf: payload.nbf.map { Date(timeIntervalSince1970: $0) },
            iat: payload.iat.map { Date(timeIntervalSince1970: $0) },
            jti: payload.jti,
            capacity: payload.capacity, waitingRoom: payload.waitingRoom,
            consentVersion: payload.consentVersion, requireLocation: payload.requireLocation,
            chatPolicy: payload.chatPolicy, privateMessages: payload.privateMessages,
            selfUnmute: payload.selfUnmute)
    }

    static func checkText(_ value: String, claim: String) throws(TokenError) {
        guard !value.isEmpty, value.utf8.count <= maxClaimBytes else { throw .invalid(.invalidClaim(claim)) }
    }

    /// jwt-kit's segment splitter (its JSON decoder is not used), made once: making one makes a
    /// `JSONDecoder`.
    private static let parser = DefaultJWTParser()

    /// Steps 1–3 of every verification, for join and admin tokens alike: size limit, parsing
    /// (jwt-kit), the header rules (algorithm allow-list, no `crit`, key by `kid`, `alg`
    /// matching the key's kind) and the signature (swift-crypto). Returns the decoded payload,
    /// whose claims the caller checks.
    static func verifiedPayload<Payload: TokenPayload>(
        _ token: String, keys: [TokenKey], as _: Payload.Type
    ) throws(TokenError) -> Payload {
        let bytes = Array(token.utf8)
        guard !bytes.isEmpty, bytes.count <= maxTokenBytes else { throw .invalid(.malformed) }

        // 1. Parse: three segments (jwt-kit), base64url (swift-extras-base64), JSON (jansson).
        let header: WireHeader
        let payload: Payload
        let signature: Data
        let signingInput: ArraySlice<UInt8>
        do {
            let parts = try parser.getTokenParts(bytes)
            guard !parts.header.isEmpty, !parts.payload.isEmpty else {
                throw TokenError.invalid(.malformed)
            }
            signingInput = bytes[..<parts.payload.endIndex]
            let base64URL: Base64.DecodingOptions = [.base64UrlAlphabet, .omitPaddingCharacter]
            guard let headerJSON = TokenJSON(try Base64.decode(bytes: parts.header, options: base64URL)),
                let payloadJSON = TokenJSON(try Base64.decode(bytes: parts.payload, options: base64URL))
            else { throw TokenError.invalid(.malformed) }
            signature = Data(try Base64.decode(bytes: parts.signature, options: base64URL))
            header = WireHeader(headerJSON)
            var claims = TokenClaims(payloadJSON)
            payload = Payload(claims: &claims)
        } catch {
            throw .invalid(.malformed)
        }

        // 2. Header: algorithm allow-list, no extensions, key by kid, alg matches key kind.
        guard let algName = header.alg else {
            throw .invalid(header.hasAlg ? .algorithmNotAllowed : .malformed)
        }
        guard let alg = TokenKey.Algorithm(rawValue: algName) else { throw .invalid(.algorithmNotAllowed) }
        guard !header.hasCrit else { throw .invalid(.unsupportedHeader) }
        let kid = header.kid
        if header.hasKid && kid == nil { throw .invalid(.malformed) }  // kid present but not a string
        guard let key = keys.first(where: { $0.kid == kid }) else { throw .invalid(.unknownKid) }
        guard key.algorithm == alg else { throw .invalid(.algorithmMismatch) }

        // 3. Signature (swift-crypto).
        guard isValid(signature: signature, over: signingInput, with: key.material) else {
            throw .invalid(.badSignature)
        }
        return payload
    }

    /// The time rules shared by join and admin tokens: `exp` not past, `nbf` and `iat` not in
    /// the future (each beyond the leeway), and the lifetime (`exp - iat`, or `exp - now`
    /// without `iat`) within `maxLifetimeSeconds`.
    static func checkTimes(
        exp: Double, nbf: Double?, iat: Double?, now: Date, leewaySeconds: Int, maxLifetimeSeconds: Int
    ) throws(TokenError) {
        let nowSeconds = now.timeIntervalSince1970
        let leeway = Double(leewaySeconds)
        if nowSeconds > exp + leeway { throw .invalid(.expired) }
        if let nbf, nbf > nowSeconds + leeway { throw .invalid(.notYetValid) }
        if let iat, iat > nowSeconds + leeway { throw .invalid(.issuedInFuture) }
        if let iat {
            if exp - iat > Double(maxLifetimeSeconds) { throw .invalid(.lifetimeTooLong) }
        } else if exp - nowSeconds > Double(maxLifetimeSeconds) + leeway {
            throw .invalid(.lifetimeTooLong)
        }
    }

    static func isValid(signature: Data, over input: ArraySlice<UInt8>, with material: TokenKey.Material) -> Bool {
        switch material {
        case .hs256(let secret):
            return HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: input, using: secret)
        case .eddsa(let publicKey):
            guard signature.count == 64 else { return false }
            return publicKey.isValidSignature(signature, for: input)
        case .es256(let publicKey):
            guard signature.count == 64,
                let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return publicKey.isValidSignature(ecdsa, for: SHA256.hash(data: input))
        }
    }
}

/// The JOSE header fields the verifier reads: `alg` and `kid` when they are strings, and whether
/// `alg`, `kid` and `crit` are present at all (of any type, `null` included).
struct WireHeader {
    var alg: String?
    var kid: String?
    var hasAlg: Bool
    var hasKid: Bool
    var hasCrit: Bool

    init(_ json: borrowing TokenJSON) {
        hasAlg = json.contains("alg")
        hasKid = json.contains("kid")
        hasCrit = json.contains("crit")
        if case .string(let value) = json["alg"] { alg = value }
        if case .string(let value) = json["kid"] { kid = value }
    }
}

/// The JWT payload as it arrives. Every field is optional so the verifier can name the missing
/// claim; a present claim of the wrong JSON type is recorded in `typeErrors` (by claim name, never
/// by value) instead of failing the whole decode.
struct WirePayload: TokenPayload, Encodable {
    var sub: String?
    var room: String?
    var role: String?
    var name: String?
    var exp: Double?
    var nbf: Double?
    var iat: Double?
    var jti: String?
    var capacity: Int?
    var waitingRoom: Bool?
    var consentVersion: String?
    var requireLocation: Bool?
    var chatPolicy: String?
    var privateMessages: Bool?
    var selfUnmute: Bool?
    var typeErrors: [String] = []

    enum CodingKeys: String, CodingKey {
        case sub, room, role, name, exp, nbf, iat, jti
        case capacity, waitingRoom, consentVersion, requireLocation, chatPolicy, privateMessages,
            selfUnmute
    }

    init(claims c: inout TokenClaims) {
        sub = c.string("sub")
        room = c.string("room")
        role = c.string("role")
        name = c.string("name")
        exp = c.number("exp")
        nbf = c.number("nbf")
        iat = c.number("iat")
        jti = c.string("jti")
        capacity = c.integer("capacity")
        waitingRoom = c.bool("waitingRoom")
        consentVersion = c.string("consentVersion")
        requireLocation = c.bool("requireLocation")
        chatPolicy = c.string("chatPolicy")
        privateMessages = c.bool("privateMessages")
        selfUnmute = c.bool("selfUnmute")
        typeErrors = c.typeErrors
    }

    init(_ claims: JoinClaims) {
        sub = claims.sub
        room = claims.room
        role = claims.role
        name = claims.name
        exp = claims.exp.timeIntervalSince1970.rounded(.down)
        nbf = claims.nbf.map { $0.timeIntervalSince1970.rounded(.down) }
        iat = claims.iat.map { $0.timeIntervalSince1970.rounded(.down) }
        jti = claims.jti
        capacity = claims.capacity
        waitingRoom = claims.waitingRoom
        consentVersion = claims.consentVersion
        requireLocation = claims.requireLocation
        chatPolicy = claims.chatPolicy
        privateMessages = claims.privateMessages
        selfUnmute = claims.selfUnmute
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(sub, forKey: .sub)
        try c.encodeIfPresent(room, forKey: .room)
        try c.encodeIfPresent(role, forKey: .role)
        try c.encodeIfPresent(name, forKey: .name)
        // NumericDate: whole seconds, written as JSON integers.
        try c.encodeIfPresent(exp.flatMap { Int64(exactly: $0) }, forKey: .exp)
        try c.encodeIfPresent(nbf.flatMap { Int64(exactly: $0) }, forKey: .nbf)
        try c.encodeIfPresent(iat.flatMap { Int64(exactly: $0) }, forKey: .iat)
        try c.encodeIfPresent(jti, forKey: .jti)
        try c.encodeIfPresent(capacity, forKey: .capacity)
        try c.encodeIfPresent(waitingRoom, forKey: .waitingRoom)
        try c.encodeIfPresent(consentVersion, forKey: .consentVersion)
        try c.encodeIfPresent(requireLocation, forKey: .requireLocation)
        try c.encodeIfPresent(chatPolicy, forKey: .chatPolicy)
        try c.encodeIfPresent(privateMessages, forKey: .privateMessages)
        try c.encodeIfPresent(selfUnmute, forKey: .selfUnmute)
    }
}
