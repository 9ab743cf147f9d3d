import HearthCore
import HearthWire
import XCTest

final class WireDecoderTests: XCTestCase {
    func testEveryCommandDecodes() {
        var covered = Set<Int>()
        for (json, command) in Samples.commands {
            XCTAssertEqual(WireDecoder.decode(json), .success(.command(command, rid: nil)), json)
            covered.insert(Samples.commandIndex(command))
            // The same with a rid, which is echoed whatever the command.
            let withRID = "{\"rid\":\"q-1\"," + json.dropFirst()
            XCTAssertEqual(WireDecoder.decode(withRID), .success(.command(command, rid: "q-1")), withRID)
            // The wire type is the engine's own command name.
            XCTAssertTrue(json.hasPrefix(#"{"type":""# + command.name + "\""), json)
        }
        XCTAssertEqual(covered.count, Samples.commandCaseCount, "a ClientCommand case has no decoding sample")
    }

    func testSessionMessages() {
        XCTAssertEqual(
            WireDecoder.decode(#"{"type":"hello","token":"eyJ.x.y"}"#), .success(.hello(token: "eyJ.x.y", rid: nil)))
        XCTAssertEqual(
            WireDecoder.decode(#"{"rid":"1","type":"hello","token":"t"}"#), .success(.hello(token: "t", rid: "1")))
        XCTAssertEqual(
            WireDecoder.decode(#"{"type":"resume","secret":"s","lastSeq":0}"#),
            .success(.resume(secret: "s", lastSeq: 0, rid: nil)))
        XCTAssertEqual(
            WireDecoder.decode(#"{"type":"resume","secret":"s","lastSeq":9223372036854775807,"rid":"r"}"#),
            .success(.resume(secret: "s", lastSeq: UInt64(Int64.max), rid: "r")))
        XCTAssertEqual(
            WireDecoder.decode(#"{"type":"refresh","token":"t2","rid":"x"}"#), .success(.refresh(token: "t2", rid: "x"))
        )
        XCTAssertEqual(WireDecoder.decode(#"{"type":"refresh"}"#), .failure(WireError(.badMessage)))
        XCTAssertEqual(WireDecoder.decode(#"{"type":"ping"}"#), .success(.ping(rid: nil)))
        XCTAssertEqual(WireDecoder.decode(#" { "type" : "ping" , "rid" : "p" } "#), .success(.ping(rid: "p")))
        // Unknown fields are ignored.
        XCTAssertEqual(WireDecoder.decode(#"{"type":"ping","v":2,"x":{"y":[1]}}"#), .success(.ping(rid: nil)))
        XCTAssertEqual(WireDecoder.decode(#"{"type":"ping"}"#).map(\.rid), .success(nil))
    }

    func testInputForms() {
        let json = #"{"type":"raise-hand","rid":"b"}"#
        let expected: Result<Inbound, WireError> = .success(.command(.raiseHand, rid: "b"))
        XCTAssertEqual(WireDecoder.decode(Array(json.utf8)), expected)
        XCTAssertEqual(Array(json.utf8).withUnsafeBytes { WireDecoder.decode($0) }, expected)
        XCTAssertEqual(WireDecoder.decode(UnsafeRawBufferPointer(start: nil, count: 0)), .failure(WireError(.badJSON)))
    }

    func testNotJSON() {
        let cases: [String] = [
            "", " ", "hello", "{", #"{"type":"ping""#, #"{"type":"ping",}"#, #"{'type':'ping'}"#,
            #"{"type":"ping"} trailing"#, #"{"type":"ping"}{"type":"ping"}"#, #"{"type":"ping"}\n{"type":"ping"}"#,
            "42", #""ping""#, "null", "true", "[]", #"[{"type":"ping"}]"#,
            // Duplicate keys: which one counts would differ between parsers.
            #"{"type":"ping","type":"leave"}"#, #"{"type":"chat","to":"room","text":"a","text":"b"}"#,
            // NUL inside a string.
            #"{"type":"chat","to":"room","text":"a\u0000b"}"#,
            // A lone surrogate escape.
            #"{"type":"chat","to":"room","text":"\ud800"}"#,
            #"{"type":"resume","secret":"s","lastSeq":NaN}"#,
        ]
        for text in cases {
            XCTAssertEqual(WireDecoder.decode(text), .failure(WireError(.badJSON)), text)
        }
    }

    func testInvalidUTF8() {
        let prefix = Array(#"{"type":"chat","to":"room","text":""#.utf8)
        let suffix = Array(#""}"#.utf8)
        for bad: [UInt8] in [[0xFF], [0xC3], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80]] {
            XCTAssertEqual(WireDecoder.decode(prefix + bad + suffix), .failure(WireError(.badJSON)), "\(bad)")
        }
        // Invalid bytes in a key, too.
        XCTAssertEqual(
            WireDecoder.decode(Array(#"{"type":"ping",""#.utf8) + [0xFE] + Array(#"":1}"#.utf8)),
            .failure(WireError(.badJSON)))
        // Valid multi-byte UTF-8 passes through unchanged.
        XCTAssertEqual(
            WireDecoder.decode(prefix + Array("ñ 中 🎉".utf8) + suffix),
            .success(.command(.chat(to: .room, text: "ñ 中 🎉"), rid: nil)))
    }

    func testEnvelopeErrors() {
        let cases: [(String, WireError)] = [
            ("{}", WireError(.badMessage)),
            (#"{"rid":"a"}"#, WireError(.badMessage, rid: "a")),
            (#"{"type":5,"rid":"a"}"#, WireError(.badMessage, rid: "a")),
            (#"{"type":null,"rid":"a"}"#, WireError(.badMessage, rid: "a")),
            (#"{"type":["ping"]}"#, WireError(.badMessage)),
            (#"{"type":"dance","rid":"r9"}"#, WireError(.unknownType, rid: "r9")),
            (#"{"rid":"r9","type":"dance"}"#, WireError(.unknownType, rid: "r9")),
            (#"{"type":"dance"}"#, WireError(.unknownType)),
            (#"{"type":"Chat","rid":"x"}"#, WireError(.unknownType, rid: "x")),
            (#"{"type":"setMedia"}"#, WireError(.unknownType)),
            (#"{"type":"pong"}"#, WireError(.unknownType)),
            (#"{"type":"welcome"}"#, WireError(.unknownType)),
            (#"{"type":""}"#, WireError(.unknownType)),
            // A rid that cannot be echoed is not echoed.
            (#"{"type":"ping","rid":5}"#, WireError(.badMessage)),
            (#"{"type":"ping","rid":null}"#, WireError(.badMessage)),
            (#"{"type":"ping","rid":""}"#, WireError(.badMessage)),
            (#"{"type":"dance","rid":{"a":1}}"#, WireError(.badMessage)),
            (#"{"type":"ping","rid":""# + String(repeating: "r", count: 65) + #""}"#, WireError(.badMessage)),
            // 22 × 3 bytes: 22 characters but 66 bytes.
            (#"{"type":"ping","rid":""# + String(repeating: "€", count: 22) + #""}"#, WireError(.badMessage)),
        ]
        for (text, error) in cases {
            XCTAssertEqual(WireDecoder.decode(text), .failure(error), text)
        }
        let longest = String(repeating: "r", count: 64)
        XCTAssertEqual(
            WireDecoder.decode(#"{"type":"ping","rid":""# + longest + #""}"#), .success(.ping(rid: longest)))
    }

    func testFieldErrorsEchoRID() {
        let cases: [String] = [
            // Missing fields.
            #"{"type":"hello"}"#, #"{"type":"hello","token":null}"#, #"{"type":"resume","lastSeq":1}"#,
            #"{"type":"resume","secret":"s"}"#, #"{"type":"chat","to":"room"}"#, #"{"type":"chat","text":"x"}"#,
            #"{"type":"signal","to":"p2","kind":"offer"}"#, #"{"type":"signal","kind":"offer","payload":{}}"#,
            #"{"type":"consent"}"#, #"{"type":"location"}"#, #"{"type":"admit"}"#, #"{"type":"deny"}"#,
            #"{"type":"send-back"}"#, #"{"type":"message-waiting-room"}"#, #"{"type":"mute"}"#,
            #"{"type":"ask-unmute"}"#, #"{"type":"remove"}"#, #"{"type":"set-role","member":"p1"}"#,
            #"{"type":"grant","member":"p9","media":true}"#, #"{"type":"grant","member":"p9","chat":true}"#,
            #"{"type":"spotlight"}"#, #"{"type":"delete-chat"}"#, #"{"type":"acknowledge-help"}"#,
            // Wrong types.
            #"{"type":"hello","token":42}"#, #"{"type":"media","audio":"yes"}"#, #"{"type":"media","video":1}"#,
            #"{"type":"chat","to":"room","text":5}"#, #"{"type":"chat","to":3,"text":"x"}"#,
            #"{"type":"chat","to":"room","text":["x"]}"#, #"{"type":"admit","member":7}"#,
            #"{"type":"mute","member":"p4","audio":"true"}"#, #"{"type":"mute-all","video":0}"#,
            #"{"type":"remove","member":"p4","ban":"no"}"#, #"{"type":"remove","member":"p4","reason":1}"#,
            #"{"type":"deny","member":"p4","reason":{}}"#, #"{"type":"grant","member":"p9","media":1,"chat":0}"#,
            #"{"type":"settings","privateMessages":"on"}"#, #"{"type":"consent","version":2024}"#,
            #"{"type":"location","text":false}"#, #"{"type":"spotlight","member":3}"#,
            // Bad values.
            #"{"type":"admit","member":"x"}"#, #"{"type":"admit","member":"p"}"#, #"{"type":"admit","member":"p-1"}"#,
            #"{"type":"admit","member":"p+1"}"#, #"{"type":"admit","member":"p01"}"#,
            #"{"type":"admit","member":"P1"}"#,
            #"{"type":"admit","member":" p1"}"#, #"{"type":"admit","member":"p1 "}"#,
            #"{"type":"admit","member":"p1.0"}"#,
            #"{"type":"admit","member":"p4294967296"}"#, #"{"type":"admit","member":"m1"}"#,
            #"{"type":"admit","member":"p99999999999999999999999"}"#,
            #"{"type":"delete-chat","message":"p5"}"#, #"{"type":"delete-chat","message":"m"}"#,
            #"{"type":"delete-chat","message":"m18446744073709551616"}"#, #"{"type":"delete-chat","message":5}"#,
            #"{"type":"set-role","member":"p1","role":"admin"}"#,
            #"{"type":"set-role","member":"p1","role":"Facilitator"}"#,
            #"{"type":"signal","to":"p2","kind":"candidate","payload":{}}"#,
            #"{"type":"signal","to":"room","kind":"offer","payload":{}}"#,
            #"{"type":"chat","to":"everyone","text":"x"}"#, #"{"type":"chat","to":"p","text":"x"}"#,
            #"{"type":"settings","chatPolicy":"none"}"#, #"{"type":"settings","chatPolicy":"staffOnly"}"#,
            #"{"type":"resume","secret":"s","lastSeq":-1}"#, #"{"type":"resume","secret":"s","lastSeq":1.0}"#,
            #"{"type":"resume","secret":"s","lastSeq":"5"}"#, #"{"type":"resume","secret":"s","lastSeq":1e3}"#,
        ]
        for text in cases {
            XCTAssertEqual(WireDecoder.decode(text), .failure(WireError(.badMessage)), text)
            let withRID = #"{"rid":"e1","# + text.dropFirst()
            XCTAssertEqual(WireDecoder.decode(withRID), .failure(WireError(.badMessage, rid: "e1")), withRID)
        }
    }

    /// Breakout commands: what the engine needs is decoded exactly; anything else is `bad-message`.
    func testBreakoutCommandFieldErrors() {
        let cases: [String] = [
            // Breakout ids: canonical `b<n>` only, fitting 32 bits, and a string.
            #"{"type":"breakout-close","breakout":"b01"}"#, #"{"type":"breakout-close","breakout":"x1"}"#,
            #"{"type":"breakout-close","breakout":7}"#, #"{"type":"breakout-close","breakout":"b"}"#,
            #"{"type":"breakout-close","breakout":"B1"}"#, #"{"type":"breakout-close","breakout":"b+1"}"#,
            #"{"type":"breakout-close","breakout":"b-1"}"#, #"{"type":"breakout-close","breakout":" b1"}"#,
            #"{"type":"breakout-close","breakout":"b1.0"}"#, #"{"type":"breakout-close","breakout":"p1"}"#,
            #"{"type":"breakout-close","breakout":"b4294967296"}"#, #"{"type":"breakout-close","breakout":["b1"]}"#,
            #"{"type":"breakout-close","breakout":null}"#, #"{"type":"breakout-close"}"#,
            #"{"type":"breakout-visit","breakout":"b01"}"#, #"{"type":"breakout-visit","breakout":7}"#,
            #"{"type":"breakout-visit","breakout":"main"}"#, #"{"type":"breakout-visit"}"#,
            // breakout-move: the member and the `breakout` key (null for the main room) are both required.
            #"{"type":"breakout-move","member":"p2"}"#, #"{"type":"breakout-move","breakout":"b1"}"#,
            #"{"type":"breakout-move","member":"p2","breakout":"x1"}"#,
            #"{"type":"breakout-move","member":"p2","breakout":7}"#,
            #"{"type":"breakout-move","member":"p02","breakout":"b1"}"#,
            #"{"type":"breakout-move","member":null,"breakout":"b1"}"#,
            #"{"type":"breakout-move","member":"p2","breakout":false}"#,
            // breakouts-plan: an array of objects, each with a string name and member ids.
            #"{"type":"breakouts-plan"}"#, #"{"type":"breakouts-plan","breakouts":null}"#,
            #"{"type":"breakouts-plan","breakouts":{"name":"A"}}"#, #"{"type":"breakouts-plan","breakouts":"A"}"#,
            #"{"type":"breakouts-plan","breakouts":["A"]}"#, #"{"type":"breakouts-plan","breakouts":[{}]}"#,
            #"{"type":"breakouts-plan","breakouts":[{"members":["p2"]}]}"#,
            #"{"type":"breakouts-plan","breakouts":[{"name":null}]}"#,
            #"{"type":"breakouts-plan","breakouts":[{"name":7}]}"#,
            #"{"type":"breakouts-plan","breakouts":[{"name":"A"},null]}"#,
            #"{"type":"breakouts-plan","breakouts":[{"name":"A","members":"p2"}]}"#,
            #"{"type":"breakouts-plan","breakouts":[{"name":"A","members":["p02"]}]}"#,
            #"{"type":"breakouts-plan","breakouts":[{"name":"A","members":["x2"]}]}"#,
            #"{"type":"breakouts-plan","breakouts":[{"name":"A","members":[2]}]}"#,
            #"{"type":"breakouts-plan","breakouts":[{"name":"A","members":["p2",null]}]}"#,
            #"{"type":"breakouts-plan","breakouts":[{"name":"A"}],"automatic":"yes"}"#,
            #"{"type":"breakouts-plan","breakouts":[{"name":"A"}],"automatic":1}"#,
            // breakouts-open: whole JSON integers only.
            #"{"type":"breakouts-open","durationSeconds":600.5}"#,
            #"{"type":"breakouts-open","durationSeconds":600.0}"#,
            #"{"type":"breakouts-open","durationSeconds":"600"}"#, #"{"type":"breakouts-open","durationSeconds":true}"#,
            #"{"type":"breakouts-open","durationSeconds":6e2}"#, #"{"type":"breakouts-open","warningSeconds":"60"}"#,
            #"{"type":"breakouts-open","warningSeconds":1.5}"#, #"{"type":"breakouts-open","warningSeconds":[60]}"#,
            // Texts and members.
            #"{"type":"breakout-broadcast"}"#, #"{"type":"breakout-broadcast","text":null}"#,
            #"{"type":"breakout-broadcast","text":5}"#, #"{"type":"pull-aside"}"#,
            #"{"type":"pull-aside","member":"p"}"#, #"{"type":"pull-aside","member":4}"#,
            #"{"type":"pull-aside","member":null}"#,
        ]
        for text in cases {
            XCTAssertEqual(WireDecoder.decode(text), .failure(WireError(.badMessage)), text)
            let withRID = #"{"rid":"e1","# + text.dropFirst()
            XCTAssertEqual(WireDecoder.decode(withRID), .failure(WireError(.badMessage, rid: "e1")), withRID)
        }
    }

    /// A plan's list is read up to one entry past `Room.maxBreakouts`: the engine refuses a
    /// longer plan (invalid-argument) without the decoder building all of it.
    func testLongBreakoutPlanIsCutForTheEngineToRefuse() throws {
        let entries = (1...500).map { #"{"name":"B\#($0)","members":["p\#($0)"]}"# }.joined(separator: ",")
        let decoded = WireDecoder.decode(#"{"type":"breakouts-plan","breakouts":["# + entries + "]}")
        guard case .success(.command(.planBreakouts(let plan, automatic: false), rid: nil)) = decoded else {
            return XCTFail("not decoded: \(decoded)")
        }
        XCTAssertEqual(plan.count, Room.maxBreakouts + 1)
        XCTAssertEqual(plan.last, BreakoutPlanEntry(name: "B51", members: [ParticipantID(51)]))
        // The whole message is still checked as JSON (a duplicate key anywhere is bad-json).
        XCTAssertEqual(
            WireDecoder.decode(#"{"type":"breakouts-plan","breakouts":[{"name":"A","name":"B"}]}"#),
            .failure(WireError(.badJSON)))
    }

    func testHugeIntegerIsBadMessage() {
        // Valid JSON whose number does not fit 64 bits: the parser stops, so no rid is known.
        for text in [
            #"{"type":"resume","secret":"s","lastSeq":99999999999999999999999,"rid":"r"}"#,
            #"{"type":"resume","secret":"s","lastSeq":18446744073709551615}"#,
            #"{"type":"ping","x":-99999999999999999999999}"#,
        ] {
            XCTAssertEqual(WireDecoder.decode(text), .failure(WireError(.badMessage)), text)
        }
    }

    func testDepthLimit() {
        let bomb = String(repeating: "[", count: 10_000)
        XCTAssertEqual(WireDecoder.decode(bomb), .failure(WireError(.badMessage)))
        XCTAssertEqual(
            WireDecoder.decode(String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)),
            .failure(WireError(.badMessage)))
        XCTAssertEqual(WireDecoder.decode(String(repeating: "{\"a\":", count: 5_000)), .failure(WireError(.badMessage)))

        func signal(nesting: Int) -> String {
            #"{"type":"signal","to":"p2","kind":"ice","payload":"# + String(repeating: "[", count: nesting)
                + String(repeating: "]", count: nesting) + "}"
        }
        // The top-level object counts as one level.
        let deepest = WireDecoder.maxDepth - 1
        XCTAssertEqual(
            WireDecoder.decode(signal(nesting: deepest)),
            .success(
                .command(
                    .signal(
                        to: ParticipantID(2), kind: .ice,
                        payload: String(repeating: "[", count: deepest) + String(repeating: "]", count: deepest)),
                    rid: nil)))
        XCTAssertEqual(WireDecoder.decode(signal(nesting: deepest + 1)), .failure(WireError(.badMessage)))
        // More opening brackets than levels (one in a string) still nest only as deep as they do.
        XCTAssertEqual(
            WireDecoder.decode(
                #"{"type":"signal","to":"p2","kind":"ice","payload":{"a":"{","b":"#
                    + String(repeating: "[", count: deepest - 1)
                    + String(repeating: "]", count: deepest - 1) + "}}"),
            .success(
                .command(
                    .signal(
                        to: ParticipantID(2), kind: .ice,
                        payload: #"{"a":"{","b":"# + String(repeating: "[", count: deepest - 1)
                            + String(repeating: "]", count: deepest - 1) + "}"),
                    rid: nil)))
        // Brackets inside strings (escaped quotes included) are text, not nesting.
        let text = #"x\" "# + String(repeating: "[{", count: 200)
        XCTAssertEqual(
            WireDecoder.decode(#"{"type":"chat","to":"room","text":""# + text + #""}"#),
            .success(.command(.chat(to: .room, text: #"x" "# + String(repeating: "[{", count: 200)), rid: nil)))
    }

    func testSignalPayloadIsCompactJSON() throws {
        let json =
            #"{"type":"signal","to":"p2","kind":"ice","payload": {"candidate" : "candidate:1 1 UDP 2122 192.0.2.1 54321 typ host", "sdpMLineIndex" : 0, "sdpMid":"0", "u":"\u00e9\/"} }"#
        guard case .success(.command(.signal(_, _, let payload), _)) = WireDecoder.decode(json) else {
            return XCTFail("not decoded")
        }
        XCTAssertEqual(
            payload,
            #"{"candidate":"candidate:1 1 UDP 2122 192.0.2.1 54321 typ host","sdpMLineIndex":0,"sdpMid":"0","u":"é/"}"#)
        for (value, compact) in [("\"text\"", "\"text\""), ("12", "12"), ("true", "true"), ("[1, 2]", "[1,2]")] {
            XCTAssertEqual(
                WireDecoder.decode(#"{"type":"signal","to":"p2","kind":"ice","payload":"# + value + "}"),
                .success(.command(.signal(to: ParticipantID(2), kind: .ice, payload: compact), rid: nil)))
        }
    }
}
