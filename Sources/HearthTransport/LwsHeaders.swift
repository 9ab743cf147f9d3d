import CLws

/// Reading a request's headers, query and peer out of lws (lws thread only, during the
/// connection's callbacks).
enum LwsHeaders {
    /// A header's value (repeated headers joined by lws), nil when absent.
    static func value(_ wsi: OpaquePointer, _ token: lws_token_indexes) -> String? {
        let n = Int(lws_hdr_total_length(wsi, token))
        guard n > 0 else { return nil }
        let capacity = n + 1
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: capacity) { buf -> String? in
            let copied = lws_hdr_copy(wsi, buf.baseAddress, Int32(capacity), token)
            guard copied >= 0 else { return nil }
            return String(decoding: UnsafeRawBufferPointer(start: buf.baseAddress, count: Int(copied)), as: UTF8.self)
        }
    }

    /// Every occurrence of a header, in order: lws keeps a repeated header as a chain of
    /// fragments (lws_hdr_copy would join them), so a duplicate shows up here as a second value.
    static func fragments(_ wsi: OpaquePointer, _ token: lws_token_indexes) -> [String] {
        var values: [String] = []
        var i: Int32 = 0
        while true {
            let n = Int(lws_hdr_fragment_length(wsi, token, i))
            let value = withUnsafeTemporaryAllocation(of: CChar.self, capacity: n + 1) { buf -> String? in
                let copied = lws_hdr_copy_fragment(wsi, buf.baseAddress, Int32(n + 1), token, i)
                guard copied >= 0 else { return nil }
                return String(
                    decoding: UnsafeRawBufferPointer(start: buf.baseAddress, count: Int(copied)), as: UTF8.self)
            }
            guard let value else { return values }
            values.append(value)
            i += 1
        }
    }

    /// The query: lws stores each URI argument as one fragment (URL-decoded); rejoined with "&"
    /// (lws_hdr_copy would join them with ",").
    static func query(_ wsi: OpaquePointer) -> String {
        var parts: [String] = []
        var i: Int32 = 0
        while true {
            let n = Int(lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i))
            if n <= 0 { break }
            let part = withUnsafeTemporaryAllocation(of: CChar.self, capacity: n + 1) { buf -> String? in
                let copied = lws_hdr_copy_fragment(wsi, buf.baseAddress, Int32(n + 1), WSI_TOKEN_HTTP_URI_ARGS, i)
                guard copied >= 0 else { return nil }
                return String(
                    decoding: UnsafeRawBufferPointer(start: buf.baseAddress, count: Int(copied)), as: UTF8.self)
            }
            guard let part else { break }
            parts.append(part)
            i += 1
        }
        return parts.joined(separator: "&")
    }

    /// The TCP peer's address, as text.
    static func peerAddress(_ wsi: OpaquePointer) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buf -> String in
            guard let p = lws_get_peer_simple(wsi, buf.baseAddress, 64) else { return "" }
            return String(cString: p)
        }
    }
}

extension Worker {
    /// The request's path as sent (TLS: the observed request line), or, on the internal Unix
    /// socket, as a proxy that refuses non-canonical paths forwarded it. Nil when unreadable.
    func requestPath(_ wsi: OpaquePointer) -> String? {
        if let internalVhost, lws_get_vhost(wsi) == internalVhost { return RequestLine.parsedPath(wsi) }
        return RequestLine.take(wsi).map { String($0.path) }
    }

    /// The client's address: the TCP peer, or the address a trusted proxy forwarded.
    func clientAddress(_ wsi: OpaquePointer) -> String {
        if let internalVhost, lws_get_vhost(wsi) == internalVhost {
            return ClientAddress.resolve(
                fromTrustedSocket: LwsHeaders.value(wsi, WSI_TOKEN_X_FORWARDED_FOR),
                trustedProxies: configuration.trustedProxies)
        }
        let peer = LwsHeaders.peerAddress(wsi)
        guard !configuration.trustedProxies.isEmpty else { return peer }
        return ClientAddress.resolve(
            peer: peer, forwardedFor: LwsHeaders.value(wsi, WSI_TOKEN_X_FORWARDED_FOR),
            trustedProxies: configuration.trustedProxies)
    }
}
