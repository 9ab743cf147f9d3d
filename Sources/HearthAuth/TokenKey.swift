import Crypto
import Foundation
import JWTKit

/// A key that join tokens may be verified with, optionally named by a `kid`.
///
/// A ``TokenVerifier`` holds several keys at once and picks one by the token header's `kid`;
/// a key without a `kid` is the default key, used for tokens whose header has no `kid`.
///
/// The key's kind fixes the one algorithm it accepts: an HS256 key only verifies `alg: HS256`,
/// an EdDSA public key only `alg: EdDSA`, an ES256 public key only `alg: ES256`. Public keys are
/// held as swift-crypto key types, never as byte strings, so their bytes can never be used as an
/// HMAC secret (the classic algorithm-confusion attack).
///
/// `description` and `dump()` never show key material.
public struct TokenKey: Sendable, CustomStringConvertible, CustomReflectable {
    /// The JWS `alg` a key accepts.
    public enum Algorithm: String, Sendable, CaseIterable {
        case hs256 = "HS256"
        case eddsa = "EdDSA"
        case es256 = "ES256"
    }

    enum Material: Sendable {
        case hs256(SymmetricKey)
        case eddsa(Curve25519.Signing.PublicKey)
        case es256(P256.Signing.PublicKey)
    }

    /// Shortest HS256 secret accepted: 32 bytes (256 bits, the size of the SHA-256 output, as
    /// RFC 7518 §3.2 requires).
    public static let minimumHS256SecretBytes = 32

    public let kid: String?
    let material: Material

    public var algorithm: Algorithm {
        switch material {
        case .hs256: .hs256
        case .eddsa: .eddsa
        case .es256: .es256
        }
    }

    init(kid: String?, material: Material) {
        self.kid = kid
        self.material = material
    }

    /// An HS256 shared secret (at least ``minimumHS256SecretBytes`` bytes).
    public static func hs256(secret: [UInt8], kid: String? = nil) throws(TokenKeyError) -> TokenKey {
        guard secret.count >= minimumHS256SecretBytes else {
            throw .secretTooShort(minimumBytes: minimumHS256SecretBytes)
        }
        return TokenKey(kid: kid, material: .hs256(SymmetricKey(data: secret)))
    }

    /// An HS256 shared secret given as text; its UTF-8 bytes are the key.
    public static func hs256(secret: String, kid: String? = nil) throws(TokenKeyError) -> TokenKey {
        try hs256(secret: Array(secret.utf8), kid: kid)
    }

    /// An Ed25519 public key, given as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) block, or as the
    /// 32 raw bytes (the JWK `x` value) in base64url or standard base64, with or without padding.
    public static func eddsaPublic(_ encoded: String, kid: String? = nil) throws(TokenKeyError) -> TokenKey {
        let text = encoded.trimmingCharacters(in: .whitespacesAndNewlines)
        let raw: [UInt8]
        if text.hasPrefix("-----BEGIN") {
            // jwt-kit parses the PEM (via swift-crypto's CryptoExtras).
            guard let key = try? EdDSA.PublicKey(pem: text) else {
                throw .invalidPublicKey(algorithm: .eddsa)
            }
            raw = Array(key.rawRepresentation)
        } else {
            guard let bytes = Base64URL.decodeLenient(text) else {
                throw .invalidPublicKey(algorithm: .eddsa)
            }
            raw = bytes
        }
        return try eddsaPublic(rawRepresentation: raw, kid: kid)
    }

    /// An Ed25519 public key from its 32 raw bytes.
    public static func eddsaPublic(rawRepresentation: [UInt8], kid: String? = nil) throws(TokenKeyError) -> TokenKey {
        guard rawRepresentation.count == 32,
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: rawRepresentation)
        else {
            throw .invalidPublicKey(algorithm: .eddsa)
        }
        return TokenKey(kid: kid, material: .eddsa(key))
    }

    /// A P-256 public key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) block.
    public static func es256Public(pem: String, kid: String? = nil) throws(TokenKeyError) -> TokenKey {
        guard let key = try? P256.Signing.PublicKey(pemRepresentation: pem) else {
            throw .invalidPublicKey(algorithm: .es256)
        }
        return TokenKey(kid: kid, material: .es256(key))
    }

    /// Builds a key from configuration-style fields: `algorithm` is `HS256`, `EdDSA` or `ES256`;
    /// HS256 needs `secret`, the others need `publicKey` (see ``eddsaPublic(_:kid:)`` and
    /// ``es256Public(pem:kid:)`` for the accepted encodings).
    public init(algorithm: String, secret: String?, publicKey: String?, kid: String?) throws(TokenKeyError) {
        guard let alg = Algorithm(rawValue: algorithm) else { throw .unknownAlgorithm(algorithm) }
        switch alg {
        case .hs256:
            guard let secret, !secret.isEmpty else { throw .missingSecret }
            self = try .hs256(secret: secret, kid: kid)
        case .eddsa:
            guard let publicKey, !publicKey.isEmpty else { throw .missingPublicKey(algorithm: alg) }
            self = try .eddsaPublic(publicKey, kid: kid)
        case .es256:
            guard let publicKey, !publicKey.isEmpty else { throw .missingPublicKey(algorithm: alg) }
            self = try .es256Public(pem: publicKey, kid: kid)
        }
    }

    public var description: String {
        "TokenKey(kid: \(kid.map { "\"\($0)\"" } ?? "nil"), algorithm: \(algorithm.rawValue))"
    }

    public var customMirror: Mirror {
        Mirror(self, children: ["kid": kid as Any, "algorithm": algorithm], displayStyle: .struct)
    }
}

/// Why a ``TokenKey`` could not be built. Messages never include key material.
public enum TokenKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    case secretTooShort(minimumBytes: Int)
    case missingSecret
    case missingPublicKey(algorithm: TokenKey.Algorithm)
    case invalidPublicKey(algorithm: TokenKey.Algorithm)
    case unknownAlgorithm(String)
    /// Only HS256 keys can sign (``TokenMinter``); public keys only verify.
    case notASigningKey

    public var description: String {
        switch self {
        case .secretTooShort(let n): "HS256 secret is too short: it must be at least \(n) bytes"
        case .missingSecret: "HS256 key has no secret"
        case .missingPublicKey(let alg): "\(alg.rawValue) key has no publicKey"
        case .invalidPublicKey(let alg): "\(alg.rawValue) publicKey could not be parsed"
        case .unknownAlgorithm(let name):
            "unknown algorithm \"\(name)\" (expected one of HS256, EdDSA, ES256)"
        case .notASigningKey: "only an HS256 key can mint tokens"
        }
    }
}
