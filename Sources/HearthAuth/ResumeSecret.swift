import Crypto
import Foundation

/// Secrets that let a dropped member resume their seat.
///
/// The client receives the secret; the server keeps only its hash, so a leaked server-side
/// record cannot be replayed.
public enum ResumeSecret {
    /// 32 random bytes from the system CSPRNG (swift-crypto `SymmetricKey`), base64url without
    /// padding (43 characters), and its ``hash(_:)``.
    public static func generate() -> (secret: String, hash: String) {
        let key = SymmetricKey(size: .bits256)
        let secret = key.withUnsafeBytes { Base64URL.encode(Array($0)) }
        return (secret, hash(secret))
    }

    /// Lower-case hex SHA-256 of the secret's UTF-8 bytes (64 characters).
    public static func hash(_ secret: String) -> String {
        let digest = SHA256.hash(data: Array(secret.utf8))
        var hex: [UInt8] = []
        hex.reserveCapacity(2 * SHA256.byteCount)
        for byte in digest {
            hex.append(hexDigits[Int(byte >> 4)])
            hex.append(hexDigits[Int(byte & 0xF)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Whether `secret` hashes to `expectedHash`, compared in constant time.
    public static func matches(_ secret: String, hash expectedHash: String) -> Bool {
        let actual = Array(hash(secret).utf8)
        let expected = Array(expectedHash.lowercased().utf8)
        guard actual.count == expected.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(actual, expected) { difference |= a ^ b }
        return difference == 0
    }
}
