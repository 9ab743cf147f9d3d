import CLws

#if canImport(Glibc)
    import Glibc
#endif

/// The client side of RFC 6455 as the generator speaks it: the upgrade request and the check of
/// its response, frames written and frames read. No I/O: `ClientLink` moves the bytes.
///
/// The generator reads up to 150k messages a second on one core; libwebsockets' client parsed
/// them byte by byte through its state machine (29% of the generator's CPU at 60k deliveries/s,
/// loadtest/RESULTS.md). Here a frame's header is read once and its payload is handed on where
/// it lies in the read buffer.
enum WebSocketFraming {
    static let acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    static let opContinuation: UInt8 = 0x0
    static let opText: UInt8 = 0x1
    static let opBinary: UInt8 = 0x2
    static let opClose: UInt8 = 0x8
    static let opPing: UInt8 = 0x9
    static let opPong: UInt8 = 0xA

    /// The upgrade request (`protocol`: the subprotocol offered, none for a peer relay).
    static func upgradeRequest(path: String, host: String, key: String, protocol: String?) -> [UInt8] {
        var s = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        s += "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
        if let `protocol` { s += "Sec-WebSocket-Protocol: \(`protocol`)\r\n" }
        s += "\r\n"
        return Array(s.utf8)
    }

    /// `Sec-WebSocket-Accept` for a key: base64 of SHA-1 over the key and the RFC's GUID.
    static func acceptValue(forKey key: String) -> String {
        let input = Array((key + acceptGUID).utf8)
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        _ = EVP_Digest(input, input.count, &digest, &length, EVP_sha1(), nil)
        return base64(digest[..<Int(length)])
    }

    /// A request key: 16 bytes, base64.
    static func key(_ bytes: [UInt8]) -> String { base64(bytes[...]) }

    static func base64(_ bytes: ArraySlice<UInt8>) -> String {
        var out = [UInt8](repeating: 0, count: 4 * ((bytes.count + 2) / 3) + 1)
        let n = bytes.withUnsafeBufferPointer { EVP_EncodeBlock(&out, $0.baseAddress, Int32($0.count)) }
        return String(decoding: out[..<Int(max(0, n))], as: UTF8.self)
    }

    /// The length of the response head (through its blank line) once `bytes` holds all of it.
    static func headLength(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 3..<bytes.count where bytes[i] == 10 && bytes[i - 1] == 13 && bytes[i - 2] == 10 && bytes[i - 3] == 13
        {
            return i + 1
        }
        return nil
    }

    /// Why a response head does not open the WebSocket that was asked for; nil if it does:
    /// status 101, `Upgrade: websocket`, the key's accept value, and the subprotocol offered.
    static func refusal(ofHead head: ArraySlice<UInt8>, key: String, protocol: String?) -> String? {
        let text = String(decoding: head, as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: true).makeIterator()
        guard let status = lines.next() else { return "an empty response" }
        let parts = status.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1] == "101" else {
            return "upgrade refused: \(status.prefix(60))"
        }
        var fields: [String: String] = [:]
        while let line = lines.next() {
            guard let colon = line.firstIndex(of: ":") else { return "a malformed header line" }
            var value = line[line.index(after: colon)...]
            while value.first == " " || value.first == "\t" { value = value.dropFirst() }
            while value.last == " " || value.last == "\t" { value = value.dropLast() }
            fields[line[..<colon].lowercased()] = String(value)
        }
        guard fields["upgrade"]?.lowercased() == "websocket" else { return "no Upgrade: websocket" }
        guard fields["sec-websocket-accept"] == acceptValue(forKey: key) else { return "a wrong Sec-WebSocket-Accept" }
        guard fields["sec-websocket-protocol"] == `protocol` else {
            return "subprotocol \(fields["sec-websocket-protocol"] ?? "none"), asked for \(`protocol` ?? "none")"
        }
        return nil
    }

    /// Appends a frame header for a final frame of `length` payload bytes, masked with the key
    /// 0. RFC 6455 asks clients for unpredictable keys, against cache poisoning in proxies
    /// between browser and server; the generator talks to a loopback server with nothing in
    /// between, and the server's unmasking costs the same for any key. So the payload follows
    /// as it is.
    static func appendHeader(opcode: UInt8, length: Int, to out: inout [UInt8]) {
        out.append(0x80 | opcode)
        if length < 126 {
            out.append(0x80 | UInt8(length))
        } else if length <= 0xFFFF {
            out.append(0x80 | 126)
            out.append(UInt8(length >> 8))
            out.append(UInt8(length & 0xFF))
        } else {
            out.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) {
                out.append(UInt8((UInt64(length) >> UInt64(shift)) & 0xFF))
            }
        }
        out.append(contentsOf: [0, 0, 0, 0] as [UInt8])
    }

    /// A close frame with a status code.
    static func appendClose(code: UInt16, to out: inout [UInt8]) {
        appendHeader(opcode: opClose, length: 2, to: &out)
        out.append(UInt8(code >> 8))
        out.append(UInt8(code & 0xFF))
    }
}

/// What a server sent, frame by frame. Payloads point into the buffer given to `read` (or into
/// the reader's own storage) and are valid only during the handler's call.
enum WebSocketEvent {
    /// A whole text or binary message (fragments joined).
    case message(UnsafeRawBufferPointer)
    case ping(UnsafeRawBufferPointer)
    case pong
    /// A close frame, with its status code if it has one.
    case close(code: Int?)
}

/// A frame the server may not send (the connection is then closed as a protocol error).
enum WebSocketReadError: Error, Equatable {
    case maskedFrame
    case reservedBits
    case unknownOpcode(UInt8)
    case badControlFrame
    case unexpectedContinuation
    case interleavedMessage
    case tooLarge(Int)
}

/// Splits the bytes a server sends into frames and messages. A frame that is complete in the
/// buffer given to `read` is handed on in place; only a frame cut by the end of a read is
/// copied (into `partial`), and only a fragmented message is joined (into `message`).
struct WebSocketFrameReader {
    /// The largest message accepted (the server's own limit is far lower).
    let maxMessage: Int
    private var partial: [UInt8] = []
    private var message: [UInt8] = []
    private var inMessage = false

    init(maxMessage: Int = 16 << 20) { self.maxMessage = maxMessage }

    /// Bytes held back: a frame not yet complete.
    var pendingBytes: Int { partial.count }

    mutating func read(_ input: UnsafeRawBufferPointer, _ handle: (WebSocketEvent) -> Void) throws(WebSocketReadError) {
        if partial.isEmpty {
            let used = try frames(in: input, handle)
            if used < input.count { partial.append(contentsOf: input[used...]) }
            return
        }
        partial.append(contentsOf: input)
        var carried: [UInt8] = []
        swap(&carried, &partial)
        let result = carried.withUnsafeBytes { b in
            Result { () throws(WebSocketReadError) in try frames(in: b, handle) }
        }
        carried.removeFirst(try result.get())
        swap(&carried, &partial)
    }

    /// Handles every complete frame in `b`; returns the bytes used.
    private mutating func frames(in b: UnsafeRawBufferPointer, _ handle: (WebSocketEvent) -> Void)
        throws(WebSocketReadError) -> Int
    {
        var at = 0
        let n = b.count
        while n - at >= 2 {
            let b0 = b[at]
            let b1 = b[at + 1]
            if b1 & 0x80 != 0 { throw .maskedFrame }
            if b0 & 0x70 != 0 { throw .reservedBits }
            var length = Int(b1 & 0x7F)
            var head = 2
            if length == 126 {
                guard n - at >= 4 else { break }
                length = Int(b[at + 2]) << 8 | Int(b[at + 3])
                head = 4
            } else if length == 127 {
                guard n - at >= 10 else { break }
                var v: UInt64 = 0
                for i in 2..<10 { v = v << 8 | UInt64(b[at + i]) }
                guard v <= UInt64(maxMessage) else { throw .tooLarge(Int(clamping: v)) }
                length = Int(v)
                head = 10
            }
            guard length <= maxMessage else { throw .tooLarge(length) }
            guard n - at >= head + length else { break }
            let payload = UnsafeRawBufferPointer(rebasing: b[(at + head)..<(at + head + length)])
            try frame(fin: b0 & 0x80 != 0, opcode: b0 & 0x0F, payload, handle)
            at += head + length
        }
        return at
    }

    private mutating func frame(
        fin: Bool, opcode: UInt8, _ payload: UnsafeRawBufferPointer, _ handle: (WebSocketEvent) -> Void
    ) throws(WebSocketReadError) {
        switch opcode {
        case WebSocketFraming.opText, WebSocketFraming.opBinary:
            if inMessage { throw .interleavedMessage }
            if fin {
                handle(.message(payload))
            } else {
                message.removeAll(keepingCapacity: true)
                message.append(contentsOf: payload)
                inMessage = true
            }
        case WebSocketFraming.opContinuation:
            guard inMessage else { throw .unexpectedContinuation }
            guard message.count + payload.count <= maxMessage else { throw .tooLarge(message.count + payload.count) }
            message.append(contentsOf: payload)
            if fin {
                inMessage = false
                message.withUnsafeBytes { handle(.message($0)) }
                message.removeAll(keepingCapacity: true)
            }
        case WebSocketFraming.opClose, WebSocketFraming.opPing, WebSocketFraming.opPong:
            guard fin, payload.count <= 125 else { throw .badControlFrame }
            if opcode == WebSocketFraming.opPing {
                handle(.ping(payload))
            } else if opcode == WebSocketFraming.opPong {
                handle(.pong)
            } else {
                guard payload.count != 1 else { throw .badControlFrame }
                handle(.close(code: payload.count >= 2 ? Int(payload[0]) << 8 | Int(payload[1]) : nil))
            }
        default:
            throw .unknownOpcode(opcode)
        }
    }
}
