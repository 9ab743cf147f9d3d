import CLws
import Logging

/// One plain HTTP/1.1 request/response in flight (lws thread only).
final class HTTPExchange {
    let wsi: OpaquePointer
    var request: HTTPRequest
    /// The delegate deferred its answer: waiting for `Transport.respond(to:with:)`.
    var deferred = false
    var responding = false
    /// The status line and headers still to write (a deferred response: they go out from
    /// HTTP_WRITEABLE, not from the callback that received the request).
    var pendingHead: ResponseHead?
    /// Body bytes to write, from `offset`; refilled from `stream` when it has one.
    var response: [UInt8] = []
    var offset = 0
    var stream: HTTPBodyStream?
    var streamEnded = false
    /// `Transfer-Encoding: chunked` framing of a streamed body.
    var chunked = false
    var closeAfterResponse = false

    init(wsi: OpaquePointer, request: HTTPRequest) {
        self.wsi = wsi
        self.request = request
    }

    /// What goes into a response's head.
    struct ResponseHead {
        var status: Int
        var contentType: String
        /// The body's length; nil for a streamed body (chunked).
        var length: Int?
        /// The route's own headers (``HTTPResponse/headers``), already checked.
        var headers: [(String, String)]
    }
}

/// The plain HTTP side of the worker: a request's routing to the delegate, its body, and the
/// response (fixed, deferred or streamed), one request per connection.
extension Worker {
    private static let methodNames = ["GET", "POST", "OPTIONS", "PUT", "PATCH", "DELETE", "CONNECT", "HEAD"]

    /// Largest piece of a response body written in one `lws_write`.
    private static let httpChunk = 16_384
    /// A response that makes no progress for this long (its deferred answer or the next piece of
    /// a streamed body does not come, or the client does not read) is dropped. lws's own timeout
    /// for an HTTP transaction (set when the request arrives) would cut off any response taking
    /// longer than a few seconds, however steadily it goes; each step forward re-arms this one.
    static let httpProgressTimeoutSeconds: Int32 = 60

    private func exchange(_ user: UnsafeMutableRawPointer?) -> (UInt64, HTTPExchange)? {
        guard let user else { return nil }
        let id = user.load(as: UInt64.self)
        guard id & Worker.exchangeTag != 0, let ex = exchanges[id] else { return nil }
        return (id, ex)
    }

    // MARK: - Request

    /// LWS_CALLBACK_HTTP: a request's headers are in.
    func httpBegin(_ wsi: OpaquePointer, _ user: UnsafeMutableRawPointer?) -> Int32 {
        guard let user, isServing else { return -1 }
        var uri: UnsafeMutablePointer<CChar>?
        var uriLength: Int32 = 0
        let m = Int(lws_http_get_uri_and_method(wsi, &uri, &uriLength))
        // lws's HTTP/1.1 parser knows these methods only (it refuses others itself); a higher
        // index would be HTTP/2's `:path`, which cannot come with HTTP/2 off.
        let method = m >= 0 && m < Worker.methodNames.count ? Worker.methodNames[m] : "GET"
        // Routes see the path as sent, never lws's decoded and normalised one (RequestLine.swift).
        let requested = requestPath(wsi)
        let path = requested ?? ""
        var headers: [String: String] = [:]
        for (name, token) in [
            ("authorization", WSI_TOKEN_HTTP_AUTHORIZATION),
            ("content-type", WSI_TOKEN_HTTP_CONTENT_TYPE),
            ("if-none-match", WSI_TOKEN_HTTP_IF_NONE_MATCH),
            ("origin", WSI_TOKEN_ORIGIN),
            ("user-agent", WSI_TOKEN_HTTP_USER_AGENT),
            ("x-forwarded-for", WSI_TOKEN_X_FORWARDED_FOR),
        ] {
            if let v = LwsHeaders.value(wsi, token) { headers[name] = v }
        }
        let contentLengths = LwsHeaders.fragments(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH)
        let framing = Worker.bodyFraming(
            method: method, contentLengths: contentLengths,
            hasTransferEncoding: !LwsHeaders.fragments(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING).isEmpty)
        let contentLength: Int
        if case .length(let n) = framing { contentLength = n } else { contentLength = 0 }
        let id = Worker.exchangeTag | nextExchange
        nextExchange += 1
        let request = HTTPRequest(
            method: method, path: path, query: LwsHeaders.query(wsi),
            headers: headers, body: [], peerAddress: clientAddress(wsi), exchange: HTTPExchangeID(rawValue: id))
        // lws delivers a body (HTTP_BODY... then HTTP_BODY_COMPLETION) for any POST (even with
        // Content-Length: 0) and for a positive Content-Length. (PUT and PATCH without one, which
        // lws would also read a body for, are refused below.)
        let expectsBody = method == "POST" || contentLength > 0
        user.storeBytes(of: id, as: UInt64.self)
        let ex = HTTPExchange(wsi: wsi, request: request)
        exchanges[id] = ex
        // One request per connection: the next one's request line would not be seen as sent.
        ex.closeAfterResponse = true
        if requested == nil {
            counters.unreadableRequestLines += 1
            logger.info("http request refused: request line not readable as sent")
            return respond(wsi, ex, HTTPResponse(status: 400, text: "bad request line\n"))
        }
        // A request whose body cannot be delimited without doubt is refused and its connection
        // closed: a proxy in front may have read the body differently, and whatever follows on
        // the connection could be taken for a request (desync, request smuggling).
        let refusal: (status: Int, text: String)?
        switch framing {
        case .ambiguous: refusal = (400, "ambiguous or invalid Content-Length\n")
        case .transferEncoding: refusal = (400, "Transfer-Encoding is not supported: send Content-Length\n")
        case .lengthRequired: refusal = (411, "Content-Length required\n")
        case .length(let n) where n > configuration.maxHTTPBodyBytes: refusal = (413, "request body too large\n")
        case .length: refusal = nil
        }
        if let refusal {
            counters.httpFramingRefusals += 1
            logger.info("http request refused", metadata: ["status": "\(refusal.status)"])
            ex.closeAfterResponse = true
            return respond(wsi, ex, HTTPResponse(status: refusal.status, text: refusal.text))
        }
        if expectsBody { return 0 }
        return respond(wsi, ex, nil)
    }

    /// How a request's body is delimited, from its headers.
    enum BodyFraming: Equatable {
        /// `Content-Length` (0 when there is none and none is needed).
        case length(Int)
        /// More than one `Content-Length`, or one that is not a plain decimal number.
        case ambiguous
        /// A `Transfer-Encoding` (lws 4.1 cannot read chunked request bodies).
        case transferEncoding
        /// A POST, PUT or PATCH without `Content-Length`.
        case lengthRequired
    }

    static func bodyFraming(method: String, contentLengths: [String], hasTransferEncoding: Bool)
        -> BodyFraming
    {
        if contentLengths.count > 1 { return .ambiguous }
        if hasTransferEncoding { return .transferEncoding }
        guard let value = contentLengths.first else {
            // HTTP/1.1 cannot delimit the body otherwise.
            let needsBody = method == "POST" || method == "PUT" || method == "PATCH"
            return needsBody ? .lengthRequired : .length(0)
        }
        let text = value.utf8.drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 }
        guard !text.isEmpty, text.allSatisfy({ $0 >= 48 && $0 <= 57 }),
            let n = Int(String(decoding: text.reversed(), as: UTF8.self))
        else {
            return .ambiguous
        }
        return .length(n)
    }

    func httpBody(_ user: UnsafeMutableRawPointer?, _ input: UnsafeMutableRawPointer?, _ len: Int) -> Int32 {
        guard let (_, ex) = exchange(user) else { return -1 }
        if ex.responding || ex.deferred { return 0 }  // discarding the body of a refused request
        if ex.request.body.count + len > configuration.maxHTTPBodyBytes { return -1 }
        if len > 0, let input { ex.request.body.append(contentsOf: UnsafeRawBufferPointer(start: input, count: len)) }
        return 0
    }

    func httpBodyComplete(_ wsi: OpaquePointer, _ user: UnsafeMutableRawPointer?) -> Int32 {
        guard let (_, ex) = exchange(user) else { return -1 }
        if ex.responding || ex.deferred { return 0 }
        return respond(wsi, ex, nil)
    }

    // MARK: - Response

    /// Asks the delegate (unless the transport answers itself with `fixed`), then writes the
    /// status line and headers now and the body from HTTP_WRITEABLE (separate writes, the last
    /// one LWS_WRITE_HTTP_FINAL). A deferred answer comes later through `completeDeferred`.
    private func respond(_ wsi: OpaquePointer, _ ex: HTTPExchange, _ fixed: HTTPResponse?) -> Int32 {
        let response: HTTPResponse
        if let fixed {
            response = fixed
        } else if let delegate {
            switch delegate.transportHTTP(ex.request, transport: transport) {
            case .response(let r):
                response = r
            case .deferred:
                // lws arms its 5 s transaction timeout after this callback returns: the writable
                // callback this asks for comes after that and re-arms ours instead.
                ex.deferred = true
                lws_callback_on_writable(wsi)
                return 0
            }
        } else {
            response = HTTPResponse(status: 503, text: "unavailable\n")
        }
        start(ex, response)
        guard let head = ex.pendingHead else { return -1 }
        ex.pendingHead = nil
        if writeHead(ex, head) != 0 { return -1 }
        lws_callback_on_writable(wsi)
        return 0
    }

    /// `Transport.respond(to:with:)`: the answer to a deferred request. Its headers go out from
    /// the next HTTP_WRITEABLE (this runs outside the exchange's own callbacks).
    func completeDeferred(_ id: UInt64, _ response: HTTPResponse) {
        guard isServing, let ex = exchanges[id], ex.deferred else {
            response.stream?.cancel()
            return
        }
        ex.deferred = false
        start(ex, response)
        armProgressTimeout(ex)
        lws_callback_on_writable(ex.wsi)
    }

    /// A streamed body has more to write (posted by its producer's wake-up).
    func resumeStream(_ id: UInt64) {
        guard let ex = exchanges[id], ex.responding, ex.stream != nil else { return }
        lws_callback_on_writable(ex.wsi)
    }

    /// Sets the exchange up to write `response`: a HEAD gets the headers only. A response whose
    /// own headers break the rules (``HTTPResponse/headerProblem(name:value:)``) is a bug in its
    /// route: it is replaced by a 500, and logged.
    private func start(_ ex: HTTPExchange, _ proposed: HTTPResponse) {
        var response = proposed
        if let problem = response.headers.lazy.compactMap({ HTTPResponse.headerProblem(name: $0.0, value: $0.1) })
            .first
        {
            logger.error("http response replaced by 500: bad header", metadata: ["problem": "\(problem)"])
            response.stream?.cancel()
            response = HTTPResponse(status: 500, text: "internal error: bad response header\n")
        }
        counters.httpRequests += 1
        ex.responding = true
        let isHead = ex.request.method == "HEAD"
        ex.pendingHead = HTTPExchange.ResponseHead(
            status: response.status, contentType: response.contentType,
            length: response.stream == nil ? response.body.count : nil, headers: response.headers)
        ex.response = isHead ? [] : response.body
        ex.offset = 0
        if let stream = response.stream {
            if isHead {
                stream.cancel()
                ex.streamEnded = true
            } else {
                ex.stream = stream
                ex.chunked = true
                let id = ex.request.exchange.rawValue
                stream.attach { [weak transport = self.transport] in transport?.post { $0.resumeHTTPStream(id) } }
            }
        }
    }

    /// Writes the status line and headers: lws's common ones, the route's own, then
    /// `cache-control: no-store` unless the route set a cache-control itself.
    private func writeHead(_ ex: HTTPExchange, _ h: HTTPExchange.ResponseHead) -> Int32 {
        let wsi = ex.wsi
        let extra = h.headers.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 }
        ensureScratch(4096 + extra)
        let start = (scratch + pre).assumingMemoryBound(to: UInt8.self)
        let end = start + 4000 + extra
        var p: UnsafeMutablePointer<UInt8>? = start
        func add(_ name: String, _ value: String) -> Bool {
            lws_add_http_header_by_name(wsi, name, value, Int32(value.utf8.count), &p, end) == 0
        }
        if let length = h.length {
            if lws_add_http_common_headers(wsi, UInt32(h.status), h.contentType, lws_filepos_t(length), &p, end) != 0 {
                return -1
            }
        } else {
            // A streamed body: no length (lws_add_http_common_headers would add
            // `connection: close` for that); it is framed as chunks.
            if lws_add_http_header_status(wsi, UInt32(h.status), &p, end) != 0 { return -1 }
            if !add("content-type:", h.contentType) { return -1 }
            if ex.chunked && !add("transfer-encoding:", "chunked") { return -1 }
        }
        for (name, value) in h.headers {
            if !add(name + ":", value) { return -1 }
        }
        if !h.headers.contains(where: { $0.0.lowercased() == "cache-control" }) && !add("cache-control:", "no-store") {
            return -1
        }
        if ex.closeAfterResponse && !add("connection:", "close") { return -1 }
        if lws_finalize_write_http_header(wsi, start, &p, end) != 0 { return -1 }
        return 0
    }

    /// HTTP_WRITEABLE: the head of a deferred response, or the next piece of the body.
    func httpWriteable(_ wsi: OpaquePointer, _ user: UnsafeMutableRawPointer?) -> Int32 {
        guard let (id, ex) = exchange(user) else { return 0 }
        if ex.deferred {
            armProgressTimeout(ex)
            return 0
        }
        guard ex.responding else { return 0 }
        // One write per writable callback: the head, then the body from the next.
        if let head = ex.pendingHead {
            ex.pendingHead = nil
            if writeHead(ex, head) != 0 { return -1 }
            lws_callback_on_writable(wsi)
            return 0
        }
        if ex.offset == ex.response.count, let stream = ex.stream, !ex.streamEnded {
            switch stream.take(max: 4 * Worker.httpChunk) {
            case .waiting:
                return 0  // the producer's next write wakes us (resumeStream)
            case .failed:
                logger.notice("http response cut off: its body could not be produced")
                return -1  // the client sees an incomplete response, never a truncated "complete" one
            case .bytes(let bytes, let last):
                ex.response = bytes
                ex.offset = 0
                ex.streamEnded = last
            }
        }
        let remaining = ex.response.count - ex.offset
        let chunk = min(remaining, Worker.httpChunk)
        let isLast = ex.offset + chunk == ex.response.count && (ex.stream == nil || ex.streamEnded)
        // Chunked framing around the bytes: "<hex size>\r\n" bytes "\r\n", and after the last
        // "0\r\n\r\n". Assembled in the scratch buffer with plain copies.
        let prefix: [UInt8] = ex.chunked && chunk > 0 ? Array((String(chunk, radix: 16) + "\r\n").utf8) : []
        var suffix: [UInt8] = ex.chunked && chunk > 0 ? [0x0D, 0x0A] : []
        if ex.chunked && isLast { suffix += Array("0\r\n\r\n".utf8) }
        let size = prefix.count + chunk + suffix.count
        if size > 0 {
            ensureScratch(size)
            var p = scratch + pre
            prefix.withUnsafeBytes { if let base = $0.baseAddress { p.copyMemory(from: base, byteCount: $0.count) } }
            p += prefix.count
            ex.response.withUnsafeBytes { b in
                if chunk > 0, let base = b.baseAddress { p.copyMemory(from: base + ex.offset, byteCount: chunk) }
            }
            p += chunk
            suffix.withUnsafeBytes { if let base = $0.baseAddress { p.copyMemory(from: base, byteCount: $0.count) } }
            let n = lws_write(
                wsi, (scratch + pre).assumingMemoryBound(to: UInt8.self), size,
                isLast ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP)
            if n < 0 { return -1 }
        }
        ex.offset += chunk
        if !isLast {
            armProgressTimeout(ex)
            lws_callback_on_writable(wsi)
            return 0
        }
        exchanges[id] = nil
        ex.stream?.cancel()  // done: drops the wake-up closure
        user?.storeBytes(of: 0, as: UInt64.self)
        if ex.closeAfterResponse { return -1 }
        return lws_http_transaction_completed(wsi) != 0 ? -1 : 0
    }

    /// (Re)arms `httpProgressTimeoutSeconds` for a response that is waiting or under way.
    private func armProgressTimeout(_ ex: HTTPExchange) {
        lws_set_timeout(ex.wsi, PENDING_TIMEOUT_HTTP_CONTENT, Worker.httpProgressTimeoutSeconds)
    }

    /// CLOSED_HTTP (or WSI_DESTROY): the exchange is gone; a streamed body's producer stops.
    func httpClosed(_ user: UnsafeMutableRawPointer?) {
        guard let user else { return }
        let id = user.load(as: UInt64.self)
        if id & Worker.exchangeTag != 0 {
            exchanges.removeValue(forKey: id)?.stream?.cancel()
            user.storeBytes(of: 0, as: UInt64.self)
        }
    }
}
