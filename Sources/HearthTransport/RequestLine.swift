import CLws

#if canImport(Glibc)
    import Glibc
#endif

// The request target as the client sent it.
//
// libwebsockets 4.1.6 percent-decodes and normalises the request path while it parses the
// request line (lws_parse_urldecode: `%74` -> `t`, `//` -> `/`, `/./` -> `/`, `/x/../` -> `/`)
// and keeps only the result: no API and no callback sees the bytes the client sent. Routing
// on the normalised path lets `/v1/rooms/bys%74ander` join room `bystander` and
// `/api/v1/rooms/x%2Faudit` reach the audit route, past a proxy whose rules match the raw path.
//
// So the plaintext is observed where libwebsockets reads it: this process's `SSL_read` wraps
// OpenSSL's (the dynamic linker binds libwebsockets' calls to the executable's definition
// first) and keeps, for each server-side TLS connection, the bytes up to the first newline,
// in the connection's SSL object (C shim: `clws_request_line_*`, freed by OpenSSL with it).
// The transport takes that line once, for the connection's first request; it serves one
// request per connection (HTTP/1.1 only: ALPN offers no h2, `Upgrade: h2c` is refused, plain
// HTTP responses close the connection), so the line it reads is the line it routes.

/// OpenSSL's `SSL_read`, found past this executable's own definition.
nonisolated(unsafe) private let opensslRead: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32) -> Int32 =
    {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: -1), "SSL_read") else {  // RTLD_NEXT
            fatalError("SSL_read not found in the loaded libraries")
        }
        return unsafeBitCast(
            symbol, to: (@convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32) -> Int32).self)
    }()

/// The SSL ex_data slot of the request line.
let requestLineIndex: Int32 = clws_request_line_index()

/// `SSL_read` for the whole process: OpenSSL's, plus the first request line of each server
/// connection kept aside (a few instructions per call once it is complete).
@_cdecl("SSL_read")
public func hearthObservedSSLRead(_ ssl: OpaquePointer?, _ buffer: UnsafeMutableRawPointer?, _ count: Int32) -> Int32 {
    let n = opensslRead(ssl, buffer, count)
    if n > 0, let ssl, let buffer {
        clws_request_line_observe(ssl, requestLineIndex, buffer.assumingMemoryBound(to: UInt8.self), n)
    }
    return n
}

/// True when the process's `SSL_read` (the one libwebsockets binds to) is
/// ``hearthObservedSSLRead(_:_:_:)``: the executable must export it (Package.swift's
/// `--export-dynamic-symbol=SSL_read`). Without it no request line is ever seen and every
/// request would be refused, so the transport refuses to start instead.
var requestLinesAreObserved: Bool {
    guard let found = dlsym(nil, "SSL_read") else { return false }  // RTLD_DEFAULT
    let ours: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32) -> Int32 = hearthObservedSSLRead
    return found == unsafeBitCast(ours, to: UnsafeMutableRawPointer.self)
}

/// The first request line of an HTTP/1.1 connection, parsed.
struct RequestLine: Equatable {
    var method: String
    /// The request target exactly as sent, query included.
    var target: String

    /// The path of the target (before `?`), as sent: no percent-decoding, no normalisation.
    var path: Substring {
        guard let q = target.firstIndex(of: "?") else { return target[...] }
        return target[..<q]
    }

    /// `METHOD SP request-target SP HTTP/1.x CRLF` (RFC 9112 §3); nil for anything else.
    init?(_ bytes: UnsafeRawBufferPointer) {
        var line = bytes[...]
        guard line.last == 0x0A else { return nil }
        line = line.dropLast()
        if line.last == 0x0D { line = line.dropLast() }
        let parts = line.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty,
            parts[2].elementsEqual("HTTP/1.1".utf8) || parts[2].elementsEqual("HTTP/1.0".utf8),
            parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return nil }
        method = String(decoding: parts[0], as: UTF8.self)
        target = String(decoding: parts[1], as: UTF8.self)
    }

    init(method: String, target: String) {
        self.method = method
        self.target = target
    }

    /// The first request line of `wsi`'s connection, once: later calls (a second request on
    /// the connection), a line that was too long or not read in full, and connections without
    /// TLS or carried in HTTP/2 get nil.
    /// The path of a request on the internal (plaintext Unix socket) listener: there is no TLS
    /// to observe, so it is the path as libwebsockets parsed it, decoded and normalised. The
    /// proxy in front must let through only paths that decoding leaves as they are (no `%`,
    /// `//`, `/./`, `/../`): deploy/cluster/haproxy.cfg refuses the others, so the path it
    /// routed on is the path served here.
    static func parsedPath(_ wsi: OpaquePointer) -> String? {
        var uri: UnsafeMutablePointer<CChar>?
        var length: Int32 = 0
        guard lws_http_get_uri_and_method(wsi, &uri, &length) >= 0, let uri, length > 0 else { return nil }
        let path = String(decoding: UnsafeRawBufferPointer(start: uri, count: Int(length)), as: UTF8.self)
        guard path.hasPrefix("/"), path.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        return path
    }

    static func take(_ wsi: OpaquePointer) -> RequestLine? {
        guard lws_get_network_wsi(wsi) == wsi, let ssl = lws_get_ssl(wsi) else { return nil }
        var bytes: UnsafePointer<CChar>?
        var length: Int32 = 0
        let state = clws_request_line_take(ssl, requestLineIndex, &bytes, &length)
        defer { clws_request_line_release(ssl, requestLineIndex) }
        guard state == 1, let bytes else { return nil }
        return RequestLine(UnsafeRawBufferPointer(start: bytes, count: Int(length)))
    }
}
