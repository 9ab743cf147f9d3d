import XCTest

@testable import hearth_loadgen

/// The generator's own client side of RFC 6455 (`WebSocketFraming`, `WebSocketFrameReader`):
/// what it sends must be what a server accepts, and what a server sends must come out whole,
/// however the reads cut it.
final class WebSocketFramingTests: XCTestCase {

    /// RFC 6455 section 1.3's example key and accept value.
    func testAcceptValueOfTheRFCExample() {
        XCTAssertEqual(WebSocketFraming.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        XCTAssertEqual(WebSocketFraming.key(Array("the sample nonce".utf8)), "dGhlIHNhbXBsZSBub25jZQ==")
    }

    func testUpgradeRequestOffersTheSubprotocolOnlyWhenAsked() {
        let hearth = String(
            decoding: WebSocketFraming.upgradeRequest(
                path: "/v1/rooms/r", host: "localhost", key: "k", protocol: "hearth.v1"),
            as: UTF8.self)
        XCTAssertTrue(hearth.hasPrefix("GET /v1/rooms/r HTTP/1.1\r\nHost: localhost\r\n"))
        XCTAssertTrue(hearth.contains("\r\nSec-WebSocket-Key: k\r\nSec-WebSocket-Version: 13\r\n"))
        XCTAssertTrue(hearth.contains("\r\nSec-WebSocket-Protocol: hearth.v1\r\n"))
        XCTAssertTrue(hearth.hasSuffix("\r\n\r\n"))
        let relay = String(
            decoding: WebSocketFraming.upgradeRequest(path: "/relay/r", host: "localhost", key: "k", protocol: nil),
            as: UTF8.self)
        XCTAssertFalse(relay.contains("Sec-WebSocket-Protocol"))
    }

    func response(_ lines: [String]) -> [UInt8] { Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8) }

    func testResponseChecks() {
        let key = "dGhlIHNhbXBsZSBub25jZQ=="
        let accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        let good = response([
            "HTTP/1.1 101 Switching Protocols", "Upgrade: WebSocket", "Connection: Upgrade",
            "sec-websocket-accept:  \(accept) ", "Sec-WebSocket-Protocol: hearth.v1",
        ])
        XCTAssertEqual(WebSocketFraming.headLength(good), good.count)
        XCTAssertEqual(WebSocketFraming.headLength(Array(good.dropLast())), nil)
        XCTAssertNil(WebSocketFraming.refusal(ofHead: good[...], key: key, protocol: "hearth.v1"))
        // Each way a response can fail to open the WebSocket that was asked for.
        XCTAssertEqual(
            WebSocketFraming.refusal(ofHead: good[...], key: key, protocol: nil),
            "subprotocol hearth.v1, asked for none")
        XCTAssertEqual(
            WebSocketFraming.refusal(ofHead: good[...], key: "AAAAAAAAAAAAAAAAAAAAAA==", protocol: "hearth.v1"),
            "a wrong Sec-WebSocket-Accept")
        let refused = response(["HTTP/1.1 401 Unauthorized", "Content-Length: 0"])
        XCTAssertEqual(
            WebSocketFraming.refusal(ofHead: refused[...], key: key, protocol: nil),
            "upgrade refused: HTTP/1.1 401 Unauthorized")
        let noUpgrade = response(["HTTP/1.1 101 Switching Protocols", "Sec-WebSocket-Accept: \(accept)"])
        XCTAssertEqual(
            WebSocketFraming.refusal(ofHead: noUpgrade[...], key: key, protocol: nil), "no Upgrade: websocket")
        let relay = response([
            "HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Sec-WebSocket-Accept: \(accept)",
        ])
        XCTAssertNil(WebSocketFraming.refusal(ofHead: relay[...], key: key, protocol: nil))
    }

    /// Client frames: final, masked (key 0, so the payload follows as it is), and the three
    /// length encodings at their edges.
    func testWrittenFrameHeaders() {
        for (length, header) in [
            (0, [0x81, 0x80]), (125, [0x81, 0xFD]), (126, [0x81, 0xFE, 0x00, 0x7E]),
            (65535, [0x81, 0xFE, 0xFF, 0xFF]), (65536, [0x81, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] as [(Int, [UInt8])] {
            var out: [UInt8] = []
            WebSocketFraming.appendHeader(opcode: WebSocketFraming.opText, length: length, to: &out)
            XCTAssertEqual(out, header + [0, 0, 0, 0], "length \(length)")
        }
        var close: [UInt8] = []
        WebSocketFraming.appendClose(code: 1000, to: &close)
        XCTAssertEqual(close, [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8])
    }

    /// A server frame (unmasked).
    func serverFrame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
        var out: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        if payload.count < 126 {
            out.append(UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            out += [126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            out.append(127)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((payload.count >> shift) & 0xFF)) }
        }
        return out + payload
    }

    enum Seen: Equatable {
        case message(String), ping([UInt8]), pong, close(Int?)
    }

    /// Feeds `bytes` to a reader in pieces cut at `cuts`, collecting what it hands on.
    func read(_ bytes: [UInt8], cuts: [Int], reader: inout WebSocketFrameReader) throws(WebSocketReadError) -> [Seen] {
        var seen: [Seen] = []
        var start = 0
        for end in cuts + [bytes.count] where end >= start {
            let piece = Array(bytes[start..<end])
            let result = piece.withUnsafeBytes { b in
                Result { () throws(WebSocketReadError) in
                    try reader.read(b) { event in
                        switch event {
                        case .message(let p): seen.append(.message(String(decoding: p, as: UTF8.self)))
                        case .ping(let p): seen.append(.ping(Array(p)))
                        case .pong: seen.append(.pong)
                        case .close(let code): seen.append(.close(code))
                        }
                    }
                }
            }
            try result.get()
            start = end
        }
        return seen
    }

    /// Every length encoding, a fragmented message with a ping between its fragments, and a
    /// close: the same events whether the bytes come in one read or are cut at every offset.
    func testFramesComeOutWholeHoweverTheReadsCutThem() throws {
        let long = String(repeating: "x", count: 300)
        let huge = String(repeating: "y", count: 70_000)
        var stream: [UInt8] = []
        stream += serverFrame(WebSocketFraming.opText, Array("{\"type\":\"chat\"}".utf8))
        stream += serverFrame(WebSocketFraming.opText, Array(long.utf8))
        stream += serverFrame(WebSocketFraming.opText, Array("frag".utf8), fin: false)
        stream += serverFrame(WebSocketFraming.opPing, [1, 2, 3])
        stream += serverFrame(WebSocketFraming.opContinuation, Array("ment".utf8), fin: false)
        stream += serverFrame(WebSocketFraming.opContinuation, Array("ed".utf8))
        stream += serverFrame(WebSocketFraming.opPong, [])
        stream += serverFrame(WebSocketFraming.opText, Array(huge.utf8))
        stream += serverFrame(WebSocketFraming.opClose, [0x0F, 0xA8])  // 4008
        let expected: [Seen] = [
            .message("{\"type\":\"chat\"}"), .message(long), .ping([1, 2, 3]), .message("fragmented"), .pong,
            .message(huge), .close(4008),
        ]
        var whole = WebSocketFrameReader()
        XCTAssertEqual(try read(stream, cuts: [], reader: &whole), expected)
        XCTAssertEqual(whole.pendingBytes, 0)
        // Cut in two at every offset of the first 400 bytes and around the long frame's header.
        for cut in Array(1..<400) + Array(stream.count - 70_020..<stream.count - 69_990) {
            var reader = WebSocketFrameReader()
            XCTAssertEqual(try read(stream, cuts: [cut], reader: &reader), expected, "cut at \(cut)")
        }
        // Byte by byte.
        var slow = WebSocketFrameReader()
        XCTAssertEqual(try read(stream, cuts: Array(1..<stream.count), reader: &slow), expected)
        XCTAssertEqual(slow.pendingBytes, 0)
    }

    func testCloseWithoutACode() throws {
        var reader = WebSocketFrameReader()
        XCTAssertEqual(try read(serverFrame(WebSocketFraming.opClose, []), cuts: [], reader: &reader), [.close(nil)])
    }

    /// Each frame a server may not send is refused with its own error.
    func testFramesAServerMayNotSend() {
        let cases: [([UInt8], WebSocketReadError)] = [
            ([0x81, 0x82, 0, 0, 0, 0, 0x61, 0x62], .maskedFrame),
            ([0xC1, 0x01, 0x61], .reservedBits),
            ([0x83, 0x00], .unknownOpcode(3)),
            (serverFrame(WebSocketFraming.opPing, [], fin: false), .badControlFrame),
            (serverFrame(WebSocketFraming.opPing, [UInt8](repeating: 0, count: 126)), .badControlFrame),
            (serverFrame(WebSocketFraming.opClose, [3]), .badControlFrame),
            (serverFrame(WebSocketFraming.opContinuation, [0x61]), .unexpectedContinuation),
            (
                serverFrame(WebSocketFraming.opText, [0x61], fin: false) + serverFrame(WebSocketFraming.opText, [0x62]),
                .interleavedMessage
            ),
            ([0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 0], .tooLarge(Int.max)),
        ]
        for (bytes, error) in cases {
            var reader = WebSocketFrameReader()
            XCTAssertThrowsError(try read(bytes, cuts: [], reader: &reader), "\(bytes.prefix(4))") {
                XCTAssertEqual($0 as? WebSocketReadError, error)
            }
        }
        var small = WebSocketFrameReader(maxMessage: 10)
        XCTAssertThrowsError(
            try read(serverFrame(WebSocketFraming.opText, Array("01234567890".utf8)), cuts: [], reader: &small)
        ) {
            XCTAssertEqual($0 as? WebSocketReadError, .tooLarge(11))
        }
        var joined = WebSocketFrameReader(maxMessage: 10)
        let fragments =
            serverFrame(WebSocketFraming.opText, Array("012345".utf8), fin: false)
            + serverFrame(WebSocketFraming.opContinuation, Array("67890".utf8))
        XCTAssertThrowsError(try read(fragments, cuts: [], reader: &joined)) {
            XCTAssertEqual($0 as? WebSocketReadError, .tooLarge(11))
        }
    }
}
