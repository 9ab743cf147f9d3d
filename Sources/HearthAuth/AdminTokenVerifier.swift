import Crypto
import Foundation

/// The claims of a verified operations-API (admin) token.
///
/// Wire format (the JWT payload):
///
/// | claim   | type                 | required |
/// |---------|----------------------|----------|
/// | `sub`   | string (operator id) | yes      |
/// | `scope` | `"hearth-admin"`     | yes      |
/// | `exp`   | NumericDate          | yes      |
/// | `iat`   | NumericDate          | yes      |
/// | `nbf`   | NumericDate          | no       |
/// | `jti`   | string               | no       |
public struct AdminClaims: Sendable, Equatable {
    /// The operator id (`sub`): who made the call, written to the audit trail.
    public var sub: String
    public var exp: Date
    public var iat: Date
    public var nbf: Date?
    public var jti: String?

    public init(sub: String, exp: Date, iat: Date, nbf: Date? = nil, jti: String? = nil) {
        self.sub = sub
        self.exp = exp
        self.iat = iat
        self.nbf = nbf
        self.jti = jti
    }
}

/// Verifies admin tokens for the operations API, synchronously, with keys of their own.
///
/// It shares the join-token verifier's parsing, header rules and signature checks
/// (``TokenVerifier``: algorithm allow-list, `none` refused, key by `kid`, `alg` matching the
/// key's kind, no `crit`), and its time rules. On top:
///
/// - `scope` must be exactly `"hearth-admin"`: a member join token, even one signed with an
///   admin key, has no such scope and is refused (`missing_claim:scope`).
/// - `sub` (the operator id), `exp` and `iat` are required; `nbf` and `jti` are optional.
/// - The keys are the configuration's `admin.keys`, never the join-token keys, so an admin
///   token cannot join a room (and has no `room`, `role` or `name` anyway), and a join token
///   cannot reach the API.
///
/// Refusals are ``TokenError/invalid(_:)`` with a reason for the audit trail only.
public struct AdminTokenVerifier: Sendable {
    /// The one scope an admin token must carry.
    public static let scope = "hearth-admin"

    private let keys: [TokenKey]
    public let leewaySeconds: Int
    public let maxLifetimeSeconds: Int

    public init(keys: [TokenKey], leewaySeconds: Int = 30, maxLifetimeSeconds: Int = 3600) {
        self.keys = keys
        self.leewaySeconds = max(0, leewaySeconds)
        self.maxLifetimeSeconds = max(0, maxLifetimeSeconds)
    }

    /// Verifies `token` at time `now`.
    public func verify(_ token: String, now: Date) -> Result<AdminClaims, TokenError> {
        do {
            return .success(try check(token, now: now))
        } catch {
            return .failure(error)
        }
    }

    private func check(_ token: String, now: Date) throws(TokenError) -> AdminClaims {
        guard !keys.isEmpty else { throw .invalid(.unknownKid) }
        let payload = try TokenVerifier.verifiedPayload(token, keys: keys, as: AdminWirePayload.self)

        if let bad = payload.typeErrors.first { throw .invalid(.invalidClaim(bad)) }
        guard let scope = payload.scope else { throw .invalid(.missingClaim("scope")) }
        guard scope == Self.scope else { throw .invalid(.invalidClaim("scope")) }
        guard let sub = payload.sub else { throw .invalid(.missingClaim("sub")) }
        guard let exp = payload.exp else { throw .invalid(.missingClaim("exp")) }
        guard let iat = payload.iat else { throw .invalid(.missingClaim("iat")) }
        try TokenVerifier.checkText(sub, claim: "sub")
        if let jti = payload.jti { try TokenVerifier.checkText(jti, claim: "jti") }
        for (claim, value) in [("exp", Optional(exp)), ("nbf", payload.nbf), ("iat", Optional(iat))] {
            if let value, !value.isFinite { throw .invalid(.invalidClaim(claim)) }
        }
        try TokenVerifier.checkTimes(
            exp: exp, nbf: payload.nbf, iat: iat, now: now, leewaySeconds: leewaySeconds,
            maxLifetimeSeconds: maxLifetimeSeconds)
        return AdminClaims(
            sub: sub, exp: Date(timeIntervalSince1970: exp), iat: Date(timeIntervalSince1970: iat),
            nbf: payload.nbf.map { Date(timeIntervalSince1970: $0) }, jti: payload.jti)
    }
}

/// Mints HS256 admin tokens: for `hearthd admin-token` (development) and tests. Production
/// operators get theirs from the clinic's identity system.
public struct AdminTokenMinter: Sendable {
    private let secret: SymmetricKey
    public let kid: String?

    /// - Throws: ``TokenKeyError/notASigningKey`` unless `key` is an HS256 key.
    public init(key: TokenKey) throws(TokenKeyError) {
        guard case .hs256(let secret) = key.material else { throw .notASigningKey }
        self.secret = secret
        self.kid = key.kid
    }

    /// A compact JWS with `sub`, `scope: "hearth-admin"`, `iat` (now) and `exp` (now + ttl),
    /// NumericDates in whole seconds.
    public func mint(operator sub: String, now: Date, ttlSeconds: Int, jti: String? = nil) -> String {
        var header: [String: String] = ["alg": "HS256", "typ": "JWT"]
        if let kid { header["kid"] = kid }
        let iat = now.timeIntervalSince1970.rounded(.down)
        var payload = AdminWirePayload()
        payload.sub = sub
        payload.scope = AdminTokenVerifier.scope
        payload.iat = iat
        payload.exp = iat + Double(ttlSeconds)
        payload.jti = jti
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let headerJSON: Data
        let payloadJSON: Data
        do {
            headerJSON = try encoder.encode(header)
            payloadJSON = try encoder.encode(payload)
        } catch {
            preconditionFailure("encoding admin token JSON failed: \(error)")
        }
        let signingInput = Base64URL.encode(headerJSON) + "." + Base64URL.encode(payloadJSON)
        let mac = HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: secret)
        return signingInput + "." + Base64URL.encode(Data(mac))
    }
}

/// The admin JWT payload as it arrives: every field optional so the verifier can name the
/// missing claim; a claim of the wrong JSON type is recorded in `typeErrors` by name.
struct AdminWirePayload: TokenPayload, Encodable {
    var sub: String?
    var scope: String?
    var exp: Double?
    var nbf: Double?
    var iat: Double?
    var jti: String?
    var typeErrors: [String] = []

    enum CodingKeys: String, CodingKey { case sub, scope, exp, nbf, iat, jti }

    init() {}

    init(claims c: inout TokenClaims) {
        sub = c.string("sub")
        scope = c.string("scope")
        exp = c.number("exp")
        nbf = c.number("nbf")
        iat = c.number("iat")
        jti = c.string("jti")
        typeErrors = c.typeErrors
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(sub, forKey: .sub)
        try c.encodeIfPresent(scope, forKey: .scope)
        try c.encodeIfPresent(exp.flatMap { Int64(exactly: $0) }, forKey: .exp)
        try c.encodeIfPresent(nbf.flatMap { Int64(exactly: $0) }, forKey: .nbf)
        try c.encodeIfPresent(iat.flatMap { Int64(exactly: $0) }, forKey: .iat)
        try c.encodeIfPresent(jti, forKey: .jti)
    }
}
