import Crypto
import HearthCore

/// An audit row as stored: the record, its row id and its link in the hash chain.
public struct StoredAudit: Hashable, Sendable {
    /// The row's number in its chain (the embedded store has one chain; a cluster's shared
    /// store has one per room, `room:<id>`, and one per node, `node:<name>`).
    public var id: Int64
    /// The chain, in a cluster's shared store (nil: the embedded store's one chain).
    public var chain: String?
    public var record: AuditRecord
    /// Hex SHA-256 of the previous row (64 zeros before the first row ever written).
    public var prevHash: String
    /// Hex SHA-256 of `prevHash` followed by the canonical serialization of this row.
    public var hash: String

    public init(id: Int64, record: AuditRecord, prevHash: String, hash: String, chain: String? = nil) {
        self.id = id
        self.chain = chain
        self.record = record
        self.prevHash = prevHash
        self.hash = hash
    }
}

/// The result of checking the audit trail's hash chain.
public enum AuditVerification: Hashable, Sendable {
    /// Every row links to the one before it, every row's hash matches its contents, and
    /// the head (last id, last hash, count) matches the last row.
    case ok(count: Int)
    /// The first broken link: the row where the chain stops holding, and why.
    case broken(atID: Int64, reason: String)
}

/// The hash chain over audit rows.
///
/// `hash = SHA-256(prev_hash_bytes || canonical(row))`, where `canonical` is a fixed,
/// unambiguous byte layout of every stored field, the row id included (so rows cannot be
/// renumbered or moved): a format version byte, then each field as a tag byte (0 = nil,
/// 1 = present) followed, when present, by an 8-byte big-endian integer or a 4-byte
/// big-endian length and UTF-8 bytes. Changing this layout invalidates every stored chain:
/// bump `version` and keep the old layout to verify old rows.
enum AuditChain {
    static let version: UInt8 = 1
    static let genesis = String(repeating: "0", count: 64)

    /// The first `prev_hash` of a shared store's chain: binds the chain's rows to its name, so
    /// rows cannot be moved from one chain to another unnoticed.
    static func genesis(chain: String) -> String {
        hex(SHA256.hash(data: Array("hearth-audit-chain:\(chain)".utf8)))
    }

    static func hash(prev: String, id: Int64, record: AuditRecord) -> String {
        var input = bytes(hex: prev)
        input.reserveCapacity(input.count + 160)
        appendCanonical(id: id, record: record, to: &input)
        return hex(SHA256.hash(data: input))
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for b in bytes {
            out.append(hexDigits[Int(b >> 4)])
            out.append(hexDigits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Appends `canonical(row)` (the layout above) to `out`: the hash's input is the previous
    /// hash's bytes and this, in one buffer.
    static func appendCanonical(id: Int64, record r: AuditRecord, to out: inout [UInt8]) {
        out.append(version)
        func int(_ v: Int64?) {
            guard let v else { return out.append(0) }
            out.append(1)
            withUnsafeBytes(of: UInt64(bitPattern: v).bigEndian) { out.append(contentsOf: $0) }
        }
        func text(_ s: String?) {
            guard let s else { return out.append(0) }
            out.append(1)
            withUnsafeBytes(of: UInt32(s.utf8.count).bigEndian) { out.append(contentsOf: $0) }
            out.append(contentsOf: s.utf8)
        }
        func party(_ p: Party?) {
            text(p?.userID.rawValue)
            int(p.map { Int64($0.id.rawValue) })
            text(p?.role.rawValue)
        }
        int(id)
        int(r.at.milliseconds)
        text(r.room.rawValue)
        party(r.actor)
        party(r.subject)
        text(r.action)
        switch r.outcome {
        case .done:
            text("done")
            text(nil)
        case .refused(let code):
            text("refused")
            text(code.rawValue)
        }
        text(r.reason)
    }

    /// Bytes of a hex string; a malformed one hashes as its UTF-8 bytes (and so never matches).
    static func bytes(hex: String) -> [UInt8] {
        let utf8 = Array(hex.utf8)
        guard utf8.count % 2 == 0 else { return utf8 }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return utf8 }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        default: return nil
        }
    }
}
