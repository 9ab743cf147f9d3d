import CLws
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Settings for one ``Transport``: where to listen, which certificate to use,
/// and the per-session limits.
///
/// The transport is TLS-only (TLS 1.2 and 1.3); plaintext connections to the
/// port are never served.
public struct TransportConfiguration: Sendable {
    /// Address to listen on, for example `"127.0.0.1"` or `"0.0.0.0"`.
    public var host: String
    /// TCP port to listen on (1...65535; 0 is not supported).
    public var port: Int
    /// PEM certificate (chain) file.
    public var certificatePath: String
    /// PEM private key file (RSA or EC).
    public var privateKeyPath: String
    /// Largest reassembled inbound text message, in bytes. A message that would
    /// exceed it is refused before it is buffered (close 1009 "message too big").
    public var maxMessageBytes: Int = 65_536
    /// Most messages queued for one session; one more closes it with 4008.
    public var sendQueueMaxMessages: Int = 1024
    /// Most bytes queued for one session; more closes it with 4008
    /// ("send queue overflow"). A peer that does not read is dropped 5 s later.
    public var sendQueueMaxBytes: Int = 1 << 20
    /// The kernel send buffer of each WebSocket connection (SO_SNDBUF; the kernel doubles it),
    /// 0 for the kernel's auto-tuning (up to net.ipv4.tcp_wmem's maximum, 4 MiB on Debian).
    /// A client that stops reading then holds at most this much kernel memory, and its
    /// backlog reaches the send queue (and its 4008 cut-off) instead of hiding in the kernel.
    public var socketSendBufferBytes: Int = 0
    /// Seconds without hearing from the peer (any frame or pong) before the server pings.
    public var pingIntervalSeconds: Int = 20
    /// Seconds without hearing from the peer before the connection is dropped.
    public var hangupSeconds: Int = 40
    /// Most pieces (fragments, or lws deliveries) one message may arrive in: empty fragments
    /// count nothing toward `maxMessageBytes`, so their number is capped (close 1009).
    public var maxFragmentsPerMessage: Int = 4096
    /// Period of ``TransportDelegate/transportTick(_:)``, in milliseconds.
    public var tickMilliseconds: Int = 100
    /// Allowed `Origin` values for WebSocket upgrades (exact, case-insensitive
    /// match, e.g. `"https://app.example.com"`). Empty, or holding `"*"`, allows every origin.
    /// Upgrades with another Origin are refused with HTTP 403; upgrades with no
    /// Origin header (non-browser clients) are allowed.
    public var allowedOrigins: [String] = []
    /// Proxies whose `X-Forwarded-For` is believed (see ``ClientAddress/resolve(peer:forwardedFor:trustedProxies:)``):
    /// the peer address the delegate gets is then the client's. Empty: the TCP peer is the client.
    public var trustedProxies: [IPNetwork] = []
    /// The TLS 1.2 cipher suites, in OpenSSL's cipher-list syntax. TLS 1.3 suites are OpenSSL's
    /// defaults (all AEAD with forward secrecy) and are not affected.
    public var tls12Ciphers: String = TransportConfiguration.defaultTLS12Ciphers
    /// ECDHE key exchange with an AEAD cipher only (NIST SP 800-52r2): no RSA key exchange (no
    /// forward secrecy), no CBC, no SHA-1 MACs.
    public static let defaultTLS12Ciphers =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        + "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
    /// A second listener in plaintext on this Unix socket path, for a reverse proxy on the same
    /// machine (HAProxy terminates TLS): the socket's permissions (0660, its directory's) decide
    /// who may connect, and the proxy's `X-Forwarded-For` names the client. Never on TCP.
    public var internalSocketPath: String?
    /// Largest HTTP request body accepted (bigger requests get 413).
    public var maxHTTPBodyBytes: Int = 65_536
    /// Accepted connections that have not yet sent a request (TLS handshake, then the upgrade
    /// or HTTP request line and headers) that the listener holds at once; past it, it accepts
    /// no more until one gets there or closes, and the rest wait in the kernel's accept queue
    /// (0: no bound). See `Listener`.
    public var maxHandshakesInFlight: Int = 1024
    /// libwebsockets' own log mask (`LLL_ERR` = 1, `LLL_WARN` = 2,
    /// `LLL_NOTICE` = 4, `LLL_INFO` = 8). Lines go to a `Logger` labelled
    /// `hearth.lws`. Notice and above are very chatty with libev.
    public var libraryLogMask: Int32 = 1 | 2

    /// Why OpenSSL refuses `list` as a TLS 1.2 cipher list (it selects no cipher suite), or nil.
    public static func tls12CipherProblem(_ list: String) -> String? {
        if list.isEmpty { return "must not be empty" }
        if list.utf8.contains(where: { $0 < 0x21 || $0 > 0x7E }) { return "must be one OpenSSL cipher list, no blanks" }
        guard let context = SSL_CTX_new(TLS_server_method()) else { return "OpenSSL could not check it" }
        defer { SSL_CTX_free(context) }
        return SSL_CTX_set_cipher_list(context, list) == 1
            ? nil : "\"\(list)\" selects no TLS 1.2 cipher suite OpenSSL knows"
    }

    public init(host: String, port: Int, certificatePath: String, privateKeyPath: String) {
        self.host = host
        self.port = port
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
    }
}

/// Opaque WebSocket session identifier. The low 4 bits carry the index of the
/// worker (lws context) that owns the session; the rest is a counter.
public struct SessionID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public var description: String { "s\(rawValue)" }
}

/// One encoded outbound message, shared by all its recipients (encode once,
/// enqueue the same instance for every session). Immutable.
///
/// Queued messages are coalesced into one text frame joined by `"\n"`
/// (newline-delimited JSON). A message that is empty or contains a newline is
/// never coalesced; it always travels alone in its own frame.
public final class OutboundMessage: Sendable {
    /// The UTF-8 payload.
    public let bytes: [UInt8]
    /// True when the message may share a frame with others.
    public let isBatchable: Bool

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        // memchr, not `contains`: a byte-at-a-time scan cost about 2,000 instructions per chat
        // (loadtest/instructions), for a line feed a compact JSON encoding never writes.
        self.isBatchable = bytes.withUnsafeBytes { b in
            guard let base = b.baseAddress, b.count > 0 else { return false }
            return memchr(base, 0x0A, b.count) == nil
        }
    }

    public convenience init(_ text: String) {
        self.init(Array(text.utf8))
    }
}

/// A plain (non-upgrade) HTTP/1.1 request.
public struct HTTPRequest: Sendable {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`, `OPTIONS`, `HEAD`.
    public var method: String
    /// The request target's path (without the query) exactly as the client sent it: not
    /// percent-decoded, not normalised (`"/a//b"` stays so). Empty when the request line could
    /// not be read as sent (the transport then answers 400 itself).
    public var path: String
    /// Query arguments, each URL-decoded by libwebsockets, joined by `&`
    /// (`"a=1&b=x y"`); empty if none.
    public var query: String
    /// A subset of request headers, names lower-cased: `authorization`,
    /// `content-type`, `if-none-match`, `origin`, `user-agent`, `x-forwarded-for`.
    public var headers: [String: String]
    /// Request body (POST/PUT/PATCH with a Content-Length, at most
    /// ``TransportConfiguration/maxHTTPBodyBytes``); empty otherwise.
    public var body: [UInt8]
    /// Peer IP address.
    public var peerAddress: String
    /// The exchange this request belongs to: what ``Transport/respond(to:with:)`` answers when
    /// the delegate deferred the response.
    public var exchange: HTTPExchangeID

    public init(
        method: String, path: String, query: String = "", headers: [String: String] = [:],
        body: [UInt8] = [], peerAddress: String = "", exchange: HTTPExchangeID = HTTPExchangeID(rawValue: 0)
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.peerAddress = peerAddress
        self.exchange = exchange
    }
}

/// Identifies one HTTP request/response exchange of a transport, so that a response worked out
/// on another thread can be handed back (``Transport/respond(to:with:)``).
public struct HTTPExchangeID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public var description: String { "h\(rawValue & ~(1 << 63))" }
}

/// The delegate's answer to an ``HTTPRequest``: the response now, or later.
public enum HTTPReply: Sendable {
    /// Answer with this response at once.
    case response(HTTPResponse)
    /// The response is being worked out elsewhere (for example a read of the disk on another
    /// thread): the delegate calls ``Transport/respond(to:with:)`` for the request's
    /// ``HTTPRequest/exchange`` later, on the lws thread (from a ``Transport/post(_:)`` job).
    /// The connection waits meanwhile; the loop does not.
    case deferred
}

/// The response to an ``HTTPRequest``: with `Content-Length` for a `body`, or, for a `stream`,
/// as the stream produces it (`Transfer-Encoding: chunked`), with the route's own `headers`,
/// and `Cache-Control: no-store` unless those set a `cache-control`. A `HEAD` request gets the
/// headers only.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]
    /// When set, the body comes from this stream instead of `body`.
    public var stream: HTTPBodyStream?
    /// Extra response headers (name, value), written in order after the transport's own. Each
    /// must pass ``headerProblem(name:value:)``: a response with a header that does not is a bug
    /// in its route, and the transport answers 500 instead (and logs it).
    public var headers: [(String, String)]

    public init(status: Int, contentType: String, body: [UInt8], headers: [(String, String)] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.stream = nil
        self.headers = headers
    }

    /// A response whose body `stream` produces on another thread.
    public init(status: Int, contentType: String, stream: HTTPBodyStream, headers: [(String, String)] = []) {
        self.status = status
        self.contentType = contentType
        self.body = []
        self.stream = stream
        self.headers = headers
    }

    public init(
        status: Int, contentType: String = "text/plain; charset=utf-8", text: String,
        headers: [(String, String)] = []
    ) {
        self.init(status: status, contentType: contentType, body: Array(text.utf8), headers: headers)
    }

    /// Headers the transport writes itself (set `contentType` for `content-type`), or that
    /// belong to one connection hop and must not be set by a route (RFC 9110 §7.6.1).
    public static let reservedHeaderNames: Set<String> = [
        "content-length", "content-type", "transfer-encoding", "connection", "keep-alive",
        "proxy-connection", "te", "trailer", "upgrade", "server",
    ]

    /// Why a route may not send the header `name: value`, or nil when it may: the name must be
    /// an RFC 9110 token and not one of ``reservedHeaderNames`` (any case); the value must not
    /// hold CR, LF, NUL or another control character but tab (no header injection).
    public static func headerProblem(name: String, value: String) -> String? {
        if name.isEmpty { return "empty header name" }
        let tokenSymbols = Set("!#$%&'*+-.^_`|~".utf8)
        let isToken = name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || tokenSymbols.contains(c)
        }
        if !isToken { return "header name \"\(name)\" is not a token" }
        if reservedHeaderNames.contains(name.lowercased()) {
            return "header \(name.lowercased()) is the transport's own"
        }
        if value.utf8.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) {
            return "the value of header \(name.lowercased()) holds a control character"
        }
        return nil
    }
}

/// Monotonic counters of one transport (read on the lws thread).
public struct TransportCounters: Sendable, Equatable {
    /// Complete inbound text messages delivered / their bytes.
    public var messagesIn: UInt64 = 0
    public var bytesIn: UInt64 = 0
    /// Outbound messages written / payload bytes written (including the
    /// newline separators of coalesced frames) / WebSocket frames written.
    public var messagesOut: UInt64 = 0
    public var bytesOut: UInt64 = 0
    public var framesOut: UInt64 = 0
    public var sessionsOpened: UInt64 = 0
    /// TCP connections accepted on the TLS listener, and `accept` calls that failed (out of
    /// descriptors or memory; the listener then pauses until the next tick).
    public var connectionsAccepted: UInt64 = 0
    public var acceptFailures: UInt64 = 0
    /// Loop iterations whose accept budget ran out (`AcceptBudget`): the listener left the
    /// rest of its queue to the next iteration.
    public var acceptDeferrals: UInt64 = 0
    /// The loop thread's CPU time in TLS handshakes (nanoseconds), as far as the accept budget
    /// has counted it (`Worker.chargeHandshakes`).
    public var handshakeNanoseconds: UInt64 = 0
    public var sessionsClosed: UInt64 = 0
    /// Sessions closed with 4008 because their send queue overflowed.
    public var queueOverflowCloses: UInt64 = 0
    /// Sessions closed with 1009 (inbound message over the limit).
    public var oversizeCloses: UInt64 = 0
    /// Sessions closed with 1003 (binary frame received).
    public var binaryCloses: UInt64 = 0
    /// Sessions hung up because they did not answer keepalive pings.
    public var keepaliveHangups: UInt64 = 0
    /// WebSocket upgrades refused by the Origin allowlist.
    public var originRejections: UInt64 = 0
    /// Upgrades to anything but WebSocket (`h2c`) refused with 400.
    public var upgradeRejections: UInt64 = 0
    /// Requests refused because their request line could not be read as sent (too long, or
    /// a second request on a connection): 400 for plain HTTP, an empty path for WebSocket.
    public var unreadableRequestLines: UInt64 = 0
    /// Plain HTTP requests answered.
    public var httpRequests: UInt64 = 0
    /// HTTP requests refused for their framing before any route saw them: an ambiguous or
    /// missing `Content-Length`, a `Transfer-Encoding`, or a body over the limit (400, 411, 413;
    /// the connection is closed).
    public var httpFramingRefusals: UInt64 = 0

    public init() {}
}

/// Errors thrown by ``Transport/init(configuration:delegate:logger:)`` and
/// ``Transport/start()``.
public enum TransportError: Error, CustomStringConvertible, Sendable {
    case invalidConfiguration(String)
    case certificateUnreadable(path: String)
    case privateKeyUnreadable(path: String)
    case cannotBind(host: String, port: Int, reason: String)
    case contextCreationFailed(String)
    case threadCreationFailed(errno: Int32)
    case alreadyStarted

    public var description: String {
        switch self {
        case .invalidConfiguration(let m): return "invalid transport configuration: \(m)"
        case .certificateUnreadable(let p): return "TLS certificate file is missing or unreadable: \(p)"
        case .privateKeyUnreadable(let p): return "TLS private key file is missing or unreadable: \(p)"
        case .cannotBind(let h, let p, let r): return "cannot listen on \(h):\(p): \(r)"
        case .contextCreationFailed(let m): return "libwebsockets context creation failed: \(m)"
        case .threadCreationFailed(let e): return "cannot create the transport thread (errno \(e))"
        case .alreadyStarted: return "transport already started or stopped"
        }
    }
}

/// Receives transport events. Every method is called ONLY on the lws thread,
/// so implementations may call the lws-thread-only members of ``Transport``
/// directly.
public protocol TransportDelegate: AnyObject {
    /// A WebSocket session is established. `path` is the request path without the query,
    /// exactly as sent (not percent-decoded or normalised), e.g. `"/v1/rooms/abc"`; empty when
    /// the request line could not be read as sent. `peerAddress` is the client's address (see
    /// ``TransportConfiguration/trustedProxies``).
    func transportDidOpen(_ session: SessionID, path: String, peerAddress: String, transport: Transport)
    /// One whole text message (fragments reassembled, valid UTF-8). The buffer
    /// is only valid during the call.
    func transportDidReceive(_ session: SessionID, text: UnsafeRawBufferPointer, transport: Transport)
    /// Called exactly once for every session that was opened, however it ended.
    /// Sends to the session are ignored from here on.
    func transportDidClose(_ session: SessionID, transport: Transport)
    /// Any plain HTTP request on the same port (not a WebSocket upgrade), once its body has
    /// arrived. Answer at once, or defer and call ``Transport/respond(to:with:)`` later: the lws
    /// thread must never wait (on the disk, a lock held elsewhere, …) inside this call.
    func transportHTTP(_ request: HTTPRequest, transport: Transport) -> HTTPReply
    /// Called every ``TransportConfiguration/tickMilliseconds``.
    func transportTick(_ transport: Transport)
    /// Graceful shutdown begins: last chance to send final messages or closes.
    /// Afterwards every open session is closed with 1001 "server restarting".
    func transportWillStop(_ transport: Transport)
    /// The end of a loop iteration, after every callback of the iteration and before the queued
    /// output is written (default: nothing). Work the delegate put off runs here; if some is
    /// still left, ``Transport/requestIteration()`` keeps the loop from sleeping.
    func transportIterationEnded(_ transport: Transport)
}

extension TransportDelegate {
    public func transportIterationEnded(_ transport: Transport) {}
}
