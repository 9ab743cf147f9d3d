import HearthCore
import XCTest

@testable import HearthWire

/// One of every SFU message (docs/protocol.md §11), for the wire tests.
enum SFUSamples {
    static let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    static let server: [SFUServerMessage] = [
        .session(7, publish: true),
        .answer(session: 7, sdp: sdp),
        .offer(
            session: 7, sdp: sdp,
            streams: [
                SFUStream(mid: "0", member: ParticipantID(2), kind: .audio),
                SFUStream(mid: "1", member: ParticipantID(2), kind: .video),
            ]),
        .closedUnavailable,
    ]
    /// How many cases `SFUServerMessage` has: the switch fails to compile when one is added.
    static var serverCaseCount: Int {
        func index(_ m: SFUServerMessage) -> Int {
            switch m {
            case .session: 0
            case .answer: 1
            case .offer: 2
            case .closedUnavailable: 3
            }
        }
        return Set(server.map(index)).count
    }
    static let client: [SFUClientMessage] = [
        .publish(session: 7, sdp: sdp),
        .subscribe(session: 7, sdp: sdp),
        .candidate(
            session: 7, peer: .publish,
            SFUCandidate(
                candidate: "candidate:1 1 udp 2122260223 10.0.0.2 50000 typ host", sdpMid: "0", sdpMLineIndex: 0)),
        .candidate(session: 7, peer: .subscribe, nil),
    ]
}

final class SFUWireTests: XCTestCase {
    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    func testServerShapes() {
        XCTAssertEqual(
            text(WireEncoder.encode(SFUServerMessage.session(7, publish: false))),
            #"{"type":"sfu-session","session":7,"publish":false}"#)
        XCTAssertEqual(
            text(WireEncoder.encode(SFUSamples.server[2])),
            #"{"type":"sfu-offer","session":7,"sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n","streams":[{"mid":"0","member":"p2","kind":"audio"},{"mid":"1","member":"p2","kind":"video"}]}"#
        )
        XCTAssertEqual(
            text(WireEncoder.encode(SFUServerMessage.closedUnavailable)),
            #"{"type":"sfu-closed","reason":"unavailable"}"#)
    }

    func testClientMessagesRoundTripAndMatchTheSchema() throws {
        var items: [SchemaValidator.Item] = []
        for message in SFUSamples.client {
            let bytes = ClientMessageEncoder.encode(.sfu(message, rid: "r1"))
            XCTAssertEqual(try WireDecoder.decode(bytes).get(), .sfu(message, rid: "r1"), text(bytes))
            items.append(.init(definition: .client, json: text(bytes), label: message.type))
        }
        for message in SFUSamples.server {
            items.append(.init(definition: .server, json: text(WireEncoder.encode(message)), label: message.type))
        }
        try SchemaValidator.assert(items)
    }

    func testBadSFUMessagesAreRefusedByDecoderAndSchema() throws {
        let bad = [
            #"{"type":"sfu-publish","session":1}"#,
            #"{"type":"sfu-publish","session":-1,"sdp":"v=0"}"#,
            #"{"type":"sfu-publish","session":1,"sdp":""}"#,
            #"{"type":"sfu-subscribe","session":"1","sdp":"v=0"}"#,
            #"{"type":"sfu-candidate","session":1,"pc":"sideways","candidate":null}"#,
            #"{"type":"sfu-candidate","session":1,"pc":"publish"}"#,
            #"{"type":"sfu-candidate","session":1,"pc":"publish","candidate":"candidate:1"}"#,
            #"{"type":"sfu-candidate","session":1,"pc":"publish","candidate":{"candidate":"x","sdpMLineIndex":300}}"#,
            #"{"type":"sfu-publish","session":1,"sdp":""# + String(repeating: "x", count: 65_537) + #""}"#,
        ]
        for json in bad {
            guard case .failure(let error) = WireDecoder.decode(json) else {
                XCTFail("decoded: \(json.prefix(120))")
                continue
            }
            XCTAssertEqual(error.code, .badMessage, json)
        }
        try SchemaValidator.assert(
            bad.map { .init(definition: .client, json: $0, expectValid: false, label: String($0.prefix(60))) })
    }
}
