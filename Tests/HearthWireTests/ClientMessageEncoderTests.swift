import HearthCore
import HearthWire
import XCTest

final class ClientMessageEncoderTests: XCTestCase {
    func testEveryCommandSurvivesEncodingAndDecoding() {
        var covered = Set<Int>()
        for (json, command) in Samples.commands {
            for rid in [nil, "q-1"] {
                let message = Inbound.command(command, rid: rid)
                let bytes = ClientMessageEncoder.encode(message)
                XCTAssertEqual(WireDecoder.decode(bytes), .success(message), json)
            }
            covered.insert(Samples.commandIndex(command))
        }
        XCTAssertEqual(covered.count, Samples.commandCaseCount, "a ClientCommand case has no encoding sample")
    }

    func testSessionMessagesSurviveEncodingAndDecoding() {
        let messages: [Inbound] = [
            .hello(token: "eyJ.x.y", rid: nil), .hello(token: "t", rid: "1"),
            .resume(secret: "s", lastSeq: 0, rid: nil), .resume(secret: "s", lastSeq: UInt64(Int64.max), rid: "r"),
            .refresh(token: "t2", rid: "x"), .ping(rid: nil), .ping(rid: "p"),
        ]
        for message in messages {
            XCTAssertEqual(WireDecoder.decode(ClientMessageEncoder.encode(message)), .success(message))
        }
    }

    /// The exact bytes: `type` first and compact, which the load generator relies on to size its
    /// chat messages and which keeps frames as small as the documented examples.
    func testCompactFormWithTypeFirst() {
        func text(_ message: Inbound) -> String {
            String(decoding: ClientMessageEncoder.encode(message), as: UTF8.self)
        }
        XCTAssertEqual(
            text(.command(.chat(to: .room, text: "hi"), rid: nil)), #"{"type":"chat","to":"room","text":"hi"}"#)
        XCTAssertEqual(text(.hello(token: "t", rid: "r")), #"{"type":"hello","rid":"r","token":"t"}"#)
        XCTAssertEqual(text(.command(.spotlight(nil), rid: nil)), #"{"type":"spotlight","member":null}"#)
        XCTAssertEqual(
            text(.command(.signal(to: ParticipantID(2), kind: .ice, payload: #"{"candidate":"c"}"#), rid: nil)),
            #"{"type":"signal","to":"p2","kind":"ice","payload":{"candidate":"c"}}"#)
        // Appending keeps what was there (a frame's headroom).
        var out: [UInt8] = [0, 0]
        ClientMessageEncoder.encode(.command(.raiseHand, rid: nil), appendingTo: &out)
        XCTAssertEqual(out, [0, 0] + Array(#"{"type":"raise-hand"}"#.utf8))
    }
}
