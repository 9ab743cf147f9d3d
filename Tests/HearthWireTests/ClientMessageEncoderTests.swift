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
        // Breakouts: members always listed, `automatic` only when true, null for the main room.
        XCTAssertEqual(
            text(
                .command(
                    .planBreakouts(
                        [
                            BreakoutPlanEntry(name: "Pair 1", members: [ParticipantID(2), ParticipantID(3)]),
                            BreakoutPlanEntry(name: "Pair 2"),
                        ], automatic: true), rid: "g1")),
            #"{"type":"breakouts-plan","rid":"g1","breakouts":[{"name":"Pair 1","members":["p2","p3"]},"#
                + #"{"name":"Pair 2","members":[]}],"automatic":true}"#)
        XCTAssertEqual(
            text(.command(.planBreakouts([BreakoutPlanEntry(name: "A")], automatic: false), rid: nil)),
            #"{"type":"breakouts-plan","breakouts":[{"name":"A","members":[]}]}"#)
        XCTAssertEqual(
            text(.command(.openBreakouts(durationSeconds: 600, warningSeconds: 0), rid: nil)),
            #"{"type":"breakouts-open","durationSeconds":600,"warningSeconds":0}"#)
        XCTAssertEqual(
            text(.command(.openBreakouts(durationSeconds: nil, warningSeconds: nil), rid: nil)),
            #"{"type":"breakouts-open"}"#)
        XCTAssertEqual(text(.command(.closeBreakouts, rid: nil)), #"{"type":"breakouts-close"}"#)
        XCTAssertEqual(
            text(.command(.closeBreakout(BreakoutID(3)), rid: nil)), #"{"type":"breakout-close","breakout":"b3"}"#)
        XCTAssertEqual(
            text(.command(.moveToBreakout(ParticipantID(4), nil), rid: nil)),
            #"{"type":"breakout-move","member":"p4","breakout":null}"#)
        XCTAssertEqual(
            text(.command(.moveToBreakout(ParticipantID(4), BreakoutID(2)), rid: nil)),
            #"{"type":"breakout-move","member":"p4","breakout":"b2"}"#)
        XCTAssertEqual(
            text(.command(.visitBreakout(nil), rid: nil)), #"{"type":"breakout-visit","breakout":null}"#)
        XCTAssertEqual(
            text(.command(.visitBreakout(BreakoutID(1)), rid: nil)), #"{"type":"breakout-visit","breakout":"b1"}"#)
        XCTAssertEqual(
            text(.command(.broadcastToBreakouts("Back in 2"), rid: nil)),
            #"{"type":"breakout-broadcast","text":"Back in 2"}"#)
        XCTAssertEqual(text(.command(.pullAside(ParticipantID(4)), rid: nil)), #"{"type":"pull-aside","member":"p4"}"#)
        // Appending keeps what was there (a frame's headroom).
        var out: [UInt8] = [0, 0]
        ClientMessageEncoder.encode(.command(.raiseHand, rid: nil), appendingTo: &out)
        XCTAssertEqual(out, [0, 0] + Array(#"{"type":"raise-hand"}"#.utf8))
    }
}
