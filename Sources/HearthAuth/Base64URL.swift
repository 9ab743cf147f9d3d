import ExtrasBase64
import Foundation

/// base64url (RFC 4648 §5) without padding, as JWS uses. Encoding only; decoding of token
/// segments is done by jwt-kit's parser.
enum Base64URL {
    /// swift-extras-base64 (jwt-kit's own base64 library): Foundation's `base64EncodedString`
    /// followed by two `replacingOccurrences` took about 2% of a join's server CPU (perf, a
    /// resume secret per join).
    static func encode(_ bytes: some DataProtocol) -> String {
        Base64.encodeToString(bytes: Array(bytes), options: [.base64UrlAlphabet, .omitPaddingCharacter])
    }

    /// Decodes base64url or standard base64, with or without padding (for keys in config files).
    static func decodeLenient(_ text: String) -> [UInt8]? {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.hasSuffix("=") { s.removeLast() }
        switch s.count % 4 {
        case 0: break
        case 2: s += "=="
        case 3: s += "="
        default: return nil
        }
        return Data(base64Encoded: s).map { Array($0) }
    }
}
