#if canImport(Glibc)
    import Glibc
#endif

/// An IPv4 or IPv6 address. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack
/// socket reports for an IPv4 peer) is the IPv4 address.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 (IPv6), network order.
    public let bytes: [UInt8]

    /// Parses a literal address (`192.0.2.1`, `2001:db8::1`); nil for anything else (names,
    /// ports, brackets, zone ids).
    public init?(_ text: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            let all = withUnsafeBytes(of: &v6) { Array($0) }
            let mapped = all[0..<10].allSatisfy { $0 == 0 } && all[10] == 0xFF && all[11] == 0xFF
            bytes = mapped ? Array(all[12..<16]) : all
        } else {
            return nil
        }
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    public var isIPv4: Bool { bytes.count == 4 }

    /// The canonical text form (RFC 5952 for IPv6).
    public var description: String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET6_ADDRSTRLEN)) { buf -> String in
            var copy = bytes
            let ok = copy.withUnsafeMutableBytes { raw in
                inet_ntop(isIPv4 ? AF_INET : AF_INET6, raw.baseAddress, buf.baseAddress, socklen_t(buf.count)) != nil
            }
            return ok ? String(cString: buf.baseAddress!) : ""
        }
    }

    /// The address with every bit after the first `prefixLength` cleared.
    func masked(_ prefixLength: Int) -> IPAddress {
        var out = bytes
        for i in out.indices {
            let keep = max(0, min(8, prefixLength - i * 8))
            out[i] &= keep == 8 ? 0xFF : ~(0xFF >> keep)
        }
        return IPAddress(bytes: out)
    }
}

/// An address block in CIDR notation: `10.0.0.0/8`, `2001:db8::/32`, or one address
/// (`192.0.2.1`, the same as `/32`; `::1`, the same as `/128`).
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    /// Nil unless `text` is an address, optionally followed by `/` and a prefix length that
    /// fits it (0...32 for IPv4, 0...128 for IPv6). Bits after the prefix are ignored.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let bits = address.bytes.count * 8
        var length = bits
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), parts[1].count <= 3,
                let n = Int(parts[1]), n <= bits
            else { return nil }
            // `::ffff:0:0/96` style prefixes of mapped addresses would need the IPv6 length.
            if address.isIPv4 && String(parts[0]).contains(":") { return nil }
            length = n
        }
        self.address = address.masked(length)
        self.prefixLength = length
    }

    public func contains(_ other: IPAddress) -> Bool {
        other.bytes.count == address.bytes.count && other.masked(prefixLength) == address
    }

    public var description: String { "\(address)/\(prefixLength)" }
}

/// Who a connection comes from, and under which key the per-address limits count it.
public enum ClientAddress {
    /// The client's address for a connection from `peer`. A peer inside `trustedProxies` is a
    /// proxy: the client is then the rightmost `X-Forwarded-For` entry that is not itself a
    /// trusted proxy (entries to its left were written by the client and can be anything). A
    /// peer outside them is the client, whatever the header says. When every entry is a trusted
    /// proxy, the leftmost is the client; when the header is missing, or the entry found is not
    /// an IP address, the nearest trusted hop is kept (a broken proxy chain is not trusted
    /// further).
    /// The client behind a proxy on the internal Unix socket (trusted by the socket's
    /// permissions): the rightmost `X-Forwarded-For` hop that is not itself a trusted proxy;
    /// `unix` when the proxy sent none.
    public static func resolve(fromTrustedSocket forwardedFor: String?, trustedProxies: [IPNetwork]) -> String {
        guard let forwardedFor else { return "unix" }
        var client: IPAddress?
        for entry in forwardedFor.split(separator: ",").reversed() {
            guard let hop = parseHop(entry) else { break }
            client = hop
            if !trustedProxies.contains(where: { $0.contains(hop) }) { break }
        }
        return client?.description ?? "unix"
    }

    public static func resolve(peer: String, forwardedFor: String?, trustedProxies: [IPNetwork]) -> String {
        guard !trustedProxies.isEmpty, let peerAddress = IPAddress(peer),
            trustedProxies.contains(where: { $0.contains(peerAddress) }),
            let forwardedFor
        else { return peer }
        var client = peerAddress
        for entry in forwardedFor.split(separator: ",").reversed() {
            guard let hop = parseHop(entry) else { break }
            client = hop
            if !trustedProxies.contains(where: { $0.contains(hop) }) { break }
        }
        return client.description
    }

    /// The key the per-address limits (connections per address, failed authentications) count
    /// a client under: an IPv4 address as it is, an IPv6 address by its /64 (one subscriber's
    /// network: a single host can use any address in it). Anything else is its own key.
    public static func limitKey(_ address: String) -> String {
        guard let ip = IPAddress(address) else { return address }
        return ip.isIPv4 ? ip.description : "\(ip.masked(64))/64"
    }

    /// One `X-Forwarded-For` entry: an address, optionally in brackets and with a port
    /// (`192.0.2.1:4711`, `[2001:db8::1]:4711`), with surrounding blanks.
    static func parseHop(_ entry: Substring) -> IPAddress? {
        var text = entry.trimmingBlanks()
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let rest = text[text.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && rest.dropFirst().allSatisfy(\.isNumber)) else { return nil }
            text = text[text.index(after: text.startIndex)..<close]
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            guard text[text.index(after: colon)...].allSatisfy(\.isNumber) else { return nil }
            text = text[..<colon]
        }
        return IPAddress(String(text))
    }
}

extension Substring {
    fileprivate func trimmingBlanks() -> Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return s
    }
}
