import Crypto
import Foundation

/// Mints HS256 join tokens: for the `hearthd token` development command and for tests.
///
/// Production tokens come from the backend; this exists so a newcomer can try the server with
/// the development key. Minting is synchronous (jwt-kit's signing path is `async`, see
/// ``TokenVerifier``): the JSON is encoded with Foundation, the MAC computed with swift-crypto's
/// `HMAC<SHA256>`.
public struct TokenMinter: Sendable {
    private let secret: SymmetricKey
    public let kid: String?

    /// - Throws: ``TokenKeyError/notASigningKey`` unless `key` is an HS256 key.
    public init(key: TokenKey) throws(TokenKeyError) {
        guard case .hs256(let secret) = key.material else { throw .notASigningKey }
        self.secret = secret
        self.kid = key.kid
    }

    /// Convenience: an HS256 minter from a secret (at least 32 bytes) and an optional `kid`.
    public init(secret: String, kid: String? = nil) throws(TokenKeyError) {
        try self.init(key: .hs256(secret: secret, kid: kid))
    }

    /// Returns a compact JWS: `{"alg":"HS256","typ":"JWT"[,"kid":…]}` over the claims
    /// (NumericDates as whole seconds, rounded down; nil claims omitted).
    public func mint(claims: JoinClaims) -> String {
        var header: [String: String] = ["alg": "HS256", "typ": "JWT"]
        if let kid { header["kid"] = kid }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let headerJSON: Data
        let payloadJSON: Data
        do {
            headerJSON = try encoder.encode(header)
            payloadJSON = try encoder.encode(WirePayload(claims))
        } catch {
            // Strings, integers and booleans always encode.
            preconditionFailure("encoding join token JSON failed: \(error)")
        }
        let signingInput = Base64URL.encode(headerJSON) + "." + Base64URL.encode(payloadJSON)
        let mac = HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: secret)
        return signingInput + "." + Base64URL.encode(Data(mac))
    }
}
