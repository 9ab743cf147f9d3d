import Crypto
import Foundation

@testable import HearthAuth

/// Builds raw compact JWS tokens for tests, signing with swift-crypto directly so each test can
/// craft any header (including hostile ones).
enum TestJWT {
    static let secret = "test-secret-that-is-at-least-32-bytes-long!"
    static let otherSecret = "another-secret-that-is-at-least-32-bytes!!"
    static let now = Date(timeIntervalSince1970: 1_700_000_000)

    static func b64url(_ data: Data) -> String {
        data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func json(_ object: [String: Any]) -> Data {
        // swiftlint:disable:next force_try
        try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }

    /// A complete, valid payload for room "room-1" at ``now``.
    static func claims(_ changes: [String: Any?] = [:]) -> [String: Any] {
        var claims: [String: Any] = [
            "sub": "user-1",
            "room": "room-1",
            "role": "participant",
            "name": "River",
            "iat": Int(now.timeIntervalSince1970),
            "exp": Int(now.timeIntervalSince1970) + 300,
        ]
        for (key, value) in changes {
            if let value { claims[key] = value } else { claims.removeValue(forKey: key) }
        }
        return claims
    }

    static func signingInput(header: [String: Any], payload: [String: Any]) -> String {
        b64url(json(header)) + "." + b64url(json(payload))
    }

    /// An HS256 token over a header and a payload given as raw bytes: JSON no encoder would
    /// write (duplicate members, NUL, invalid UTF-8), signed correctly.
    static func hs256(rawHeader: [UInt8], rawPayload: [UInt8], secret: String = secret) -> String {
        let input = b64url(Data(rawHeader)) + "." + b64url(Data(rawPayload))
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data(input.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return input + "." + b64url(Data(mac))
    }

    /// ``claims(_:)`` as raw JSON, its members in order, with `extra` (raw JSON members,
    /// e.g. `"sub":"x"`) appended inside the object.
    static func rawClaims(_ changes: [String: Any?] = [:], extra: String = "") -> [UInt8] {
        var text = String(decoding: json(claims(changes)), as: UTF8.self)
        if !extra.isEmpty { text = String(text.dropLast()) + "," + extra + "}" }
        return Array(text.utf8)
    }

    static func hs256(
        _ payload: [String: Any] = claims(), secret: String = secret,
        header: [String: Any] = ["alg": "HS256", "typ": "JWT"]
    ) -> String {
        hs256(payload, secretBytes: Array(secret.utf8), header: header)
    }

    static func hs256(_ payload: [String: Any], secretBytes: [UInt8], header: [String: Any]) -> String {
        let input = signingInput(header: header, payload: payload)
        let mac = HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: SymmetricKey(data: secretBytes))
        return input + "." + b64url(Data(mac))
    }

    static func eddsa(
        _ payload: [String: Any] = claims(), key: Curve25519.Signing.PrivateKey,
        header: [String: Any] = ["alg": "EdDSA", "typ": "JWT"]
    ) throws -> String {
        let input = signingInput(header: header, payload: payload)
        let signature = try key.signature(for: Data(input.utf8))
        return input + "." + b64url(signature)
    }

    static func es256(
        _ payload: [String: Any] = claims(), key: P256.Signing.PrivateKey,
        header: [String: Any] = ["alg": "ES256", "typ": "JWT"], der: Bool = false
    ) throws -> String {
        let input = signingInput(header: header, payload: payload)
        let signature = try key.signature(for: Data(input.utf8))
        return input + "." + b64url(der ? signature.derRepresentation : signature.rawRepresentation)
    }
}
