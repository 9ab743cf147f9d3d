import Foundation
import HearthCore
import HearthWire
import XCTest

final class WireEncoderTests: XCTestCase {
    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    func object(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let value = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        return try XCTUnwrap(value as? [String: Any], "not an object: \(text(bytes))", file: file, line: line)
    }

    func testSamplesCoverEveryEvent() {
        XCTAssertEqual(
            Set(Samples.events.map { Samples.caseIndex($0.event) }).count, Samples.caseCount,
            "a ServerEvent case has no sample")
    }

    func testExactShapes() {
        XCTAssertEqual(
            text(WireEncoder.encode(Message(rid: "r1", event: .error(.roomFull)))),
            #"{"type":"error","rid":"r1","code":"room-full","message":"The room is at capacity."}"#)
        XCTAssertEqual(
            text(WireEncoder.encodeError(.badJSON, rid: nil)),
            #"{"type":"error","code":"bad-json","message":"The message is not valid JSON."}"#)
        XCTAssertEqual(text(WireEncoder.encodePong(rid: "k")), #"{"type":"pong","rid":"k"}"#)
        XCTAssertEqual(text(WireEncoder.encodePong(rid: nil)), #"{"type":"pong"}"#)
        XCTAssertEqual(
            text(WireEncoder.encode(Message(seq: 7, event: .memberLeft(ParticipantID(3), reason: .sentBack)))),
            #"{"type":"member-left","seq":7,"member":"p3","reason":"sent-back"}"#)
        XCTAssertEqual(
            text(WireEncoder.encode(Message(seq: 41, event: .chat(Samples.chatPrivate)))),
            #"{"type":"chat","seq":41,"message":{"id":"m13","seq":41,"from":"p1","fromAlias":"Dr. K","to":"p2","#
                + #""text":"Are you OK?","deleted":false,"at":1700000000006}}"#)
        XCTAssertEqual(
            text(WireEncoder.encode(Message(seq: 30, event: .chat(Samples.chatDeleted)))),
            #"{"type":"chat","seq":30,"message":{"id":"m9","seq":30,"from":"p4","fromAlias":"Alias 4","to":"staff","#
                + #""deleted":true,"at":1700000000001}}"#)
        XCTAssertEqual(
            text(WireEncoder.encode(Message(rid: "c", event: .ack(Ack(message: MessageID(13), seq: 41))))),
            #"{"type":"ack","rid":"c","message":"m13","messageSeq":41}"#)
        XCTAssertEqual(
            text(WireEncoder.encode(Message(rid: "c", event: .ack(Ack(admitted: []))))),
            #"{"type":"ack","rid":"c","admitted":[]}"#)
        XCTAssertEqual(
            text(
                WireEncoder.encode(
                    Message(event: .signal(from: ParticipantID(2), kind: .ice, payload: #"{"a":[1,"x"]}"#)))),
            #"{"type":"signal","from":"p2","kind":"ice","payload":{"a":[1,"x"]}}"#)
        XCTAssertEqual(
            text(
                WireEncoder.encode(Message(seq: 4_294_967_296, event: .chatDeleted(MessageID(UInt64(UInt32.max) + 1))))),
            #"{"type":"chat-deleted","seq":4294967296,"message":"m4294967296"}"#)
        XCTAssertEqual(
            text(
                WireEncoder.encode(
                    Message(seq: 1, event: .helpAcknowledged(ParticipantID(UInt32.max), by: ParticipantID(0))))),
            #"{"type":"help-acknowledged","seq":1,"member":"p4294967295","by":"p0"}"#)
        XCTAssertEqual(
            text(WireEncoder.encode(Message(seq: 2, event: .memberUpdated(Samples.member(5))))),
            #"{"type":"member-updated","seq":2,"member":{"id":"p5","alias":"Alias 5","role":"participant","#
                + #""audio":true,"video":false,"connected":false,"mediaGranted":false,"chatGranted":false}}"#)
    }

    /// Breakout events and fields, byte for byte.
    func testBreakoutShapes() {
        let endsAt = Instant(milliseconds: 1_700_000_600_000)
        XCTAssertEqual(
            text(WireEncoder.encode(Message(seq: 54, event: .breakoutsEnding(endsAt: endsAt)))),
            #"{"type":"breakouts-ending","seq":54,"endsAt":1700000600000}"#)
        XCTAssertEqual(
            text(
                WireEncoder.encode(
                    Message(
                        seq: 55,
                        event: .breakoutBroadcast(
                            from: ParticipantID(1), fromAlias: "Dr. K", text: "Two \"minutes\"\nleft", at: Samples.t0)))
            ),
            #"{"type":"breakout-broadcast","seq":55,"from":"p1","fromAlias":"Dr. K","text":"Two \"minutes\"\nleft","#
                + #""at":1700000000000}"#)
        XCTAssertEqual(
            text(WireEncoder.encode(Message(seq: 51, event: .breakoutsUpdated(Samples.breakoutsOpen)))),
            #"{"type":"breakouts","seq":51,"breakouts":{"plan":[],"open":["#
                + #"{"id":"b1","name":"Pair 1","kind":"planned","members":["p1","p2"]},"#
                + #"{"id":"b2","name":"Pair 2","kind":"planned","members":[]},"#
                + #"{"id":"b3","name":"Pull-aside","kind":"pull-aside","members":["p4","p6"]}],"#
                + #""endsAt":1700000600000}}"#)
        XCTAssertEqual(
            text(WireEncoder.encode(Message(seq: 52, event: .breakoutsUpdated(Samples.breakoutsPlanned)))),
            #"{"type":"breakouts","seq":52,"breakouts":{"plan":["#
                + #"{"id":"b4","name":"Triad ✓","kind":"planned","members":["p2"]},"#
                + #"{"id":"b5","name":"Pair \"B\"","kind":"planned","members":[]}],"open":[]}}"#)
        XCTAssertEqual(
            text(WireEncoder.encode(Message(seq: 53, event: .breakoutsUpdated(Samples.noBreakouts)))),
            #"{"type":"breakouts","seq":53,"breakouts":{"plan":[],"open":[]}}"#)
        XCTAssertEqual(
            text(WireEncoder.encode(Message(seq: 56, event: .memberLeft(ParticipantID(3), reason: .moved)))),
            #"{"type":"member-left","seq":56,"member":"p3","reason":"moved"}"#)
        XCTAssertEqual(
            text(WireEncoder.encode(Message(rid: "g4", event: .ack(Ack(breakout: BreakoutID(3)))))),
            #"{"type":"ack","rid":"g4","breakout":"b3"}"#)
        XCTAssertEqual(
            text(WireEncoder.encode(Message(rid: "c", event: .ack(Ack(breakout: BreakoutID(UInt32.max)))))),
            #"{"type":"ack","rid":"c","breakout":"b4294967295"}"#)
        // Staff see where each member is; the field is absent for the main room.
        XCTAssertEqual(
            text(WireEncoder.encode(Message(seq: 57, event: .memberUpdated(Samples.member(3, inBreakout: 2))))),
            #"{"type":"member-updated","seq":57,"member":{"id":"p3","alias":"Alias 3","role":"participant","#
                + #""audio":true,"video":false,"connected":true,"mediaGranted":false,"chatGranted":false,"#
                + #""userId":"user-3","location":"Home, Portland OR","consentVersion":"2024-01","breakout":"b2"}}"#)
        XCTAssertEqual(
            text(WireEncoder.encode(Message(seq: 58, event: .chat(Samples.chatInBreakout)))),
            #"{"type":"chat","seq":58,"message":{"id":"m14","seq":50,"from":"p2","fromAlias":"Alias 2","to":"room","#
                + #""text":"Your turn","deleted":false,"at":1700000000012,"breakout":"b1"}}"#)
    }

    /// `moved` carries where the member is (null: the main room, the one null a server message
    /// has outside a signalling payload) and the whole room as seen from there.
    func testTheSelfViewSaysWhichBreakout() {
        XCTAssertEqual(
            text(WireEncoder.encode(Message(rid: "r1", event: .resumed(Samples.resumedInABreakout)))),
            #"{"type":"resumed","rid":"r1","you":{"id":"p2","role":"participant","alias":"Sam","placement":"room","#
                + #""breakout":"b3"},"resumeSecret":"s","lastSeq":9,"gap":false,"replayed":0,"iceServers":[]}"#)
    }

    func testMovedShapes() throws {
        let snapshot = Samples.pairSnapshot
        let youAndMembers =
            #""you":{"id":"p2","alias":"Alias 2","role":"participant","audio":true,"video":false,"handRaisedAt":1700000000002,"#
            + #""connected":true,"mediaGranted":false,"chatGranted":false,"userId":"user-2","location":"Home, Portland OR","#
            + #""consentVersion":"2024-01","breakout":"b1"},"#
            + #""state":{"locked":false,"staffPresent":true,"spotlight":"p3","chatPolicy":"everyone","privateMessages":false,"#
            + #""selfUnmute":true,"waitingRoom":true,"capacity":12,"media":"mesh"},"#
            + #""members":[{"id":"p2","alias":"Alias 2","role":"participant","audio":true,"video":false,"#
            + #""handRaisedAt":1700000000002,"connected":true,"mediaGranted":false,"chatGranted":false}],"chat":[]"#
        XCTAssertEqual(
            text(WireEncoder.encode(Message(seq: 48, event: .moved(breakout: Samples.breakoutRef, room: snapshot)))),
            #"{"type":"moved","seq":48,"breakout":{"id":"b1","name":"Pair 1","kind":"planned","endsAt":1700000600000},"#
                + #""room":{"# + youAndMembers
                + #","breakout":{"id":"b1","name":"Pair 1","kind":"planned","endsAt":1700000600000}}}"#)
        var main = snapshot
        main.you.breakout = nil
        main.breakout = nil
        XCTAssertEqual(
            text(WireEncoder.encode(Message(seq: 50, event: .moved(breakout: nil, room: main)))),
            #"{"type":"moved","seq":50,"breakout":null,"room":{"#
                + youAndMembers.replacingOccurrences(of: #","breakout":"b1""#, with: "") + "}}")
        // A pull-aside has no end time; staff get the breakouts in their snapshot.
        let staff = try object(
            WireEncoder.encode(
                Message(seq: 49, event: .moved(breakout: Samples.pullAsideRef, room: Samples.staffBreakoutSnapshot))))
        XCTAssertEqual(
            staff["breakout"] as? NSDictionary,
            ["id": "b3", "name": "Pull-aside", "kind": "pull-aside"] as NSDictionary)
        let room = try XCTUnwrap(staff["room"] as? [String: Any])
        XCTAssertNotNil(room["breakouts"])
        XCTAssertEqual((room["members"] as? [[String: Any]])?.compactMap { $0["breakout"] as? String }, ["b1", "b1"])
    }

    /// Members never get the staff-only breakout fields.
    func testMemberViewsOfBreakoutsHaveNoStaffFields() throws {
        let moved = try object(
            WireEncoder.encode(
                Message(seq: 1, event: .moved(breakout: Samples.breakoutRef, room: Samples.memberBreakoutSnapshot))))
        let room = try XCTUnwrap(moved["room"] as? [String: Any])
        XCTAssertNil(room["breakouts"])
        XCTAssertNil(room["waiting"])
        for member in try XCTUnwrap(room["members"] as? [[String: Any]]) {
            XCTAssertNil(member["breakout"])
            XCTAssertNil(member["userId"])
        }
        // One's own view says where one is.
        XCTAssertEqual((room["you"] as? [String: Any])?["breakout"] as? String, "b1")
        XCTAssertEqual((room["breakout"] as? [String: Any])?["id"] as? String, "b1")
    }

    func testEveryTypeIsTheEventType() throws {
        for message in Samples.events {
            let bytes = WireEncoder.encode(message, iceServers: Samples.iceServers)
            let json = try object(bytes)
            XCTAssertEqual(json["type"] as? String, message.event.type)
            XCTAssertEqual((json["seq"] as? NSNumber)?.uint64Value, message.seq)
            XCTAssertEqual(json["rid"] as? String, message.rid)
            // One line each: the transport separates messages with "\n".
            XCTAssertFalse(bytes.contains(0x0A), text(bytes))
            XCTAssertEqual(bytes.first, UInt8(ascii: "{"))
            XCTAssertEqual(bytes.last, UInt8(ascii: "}"))
            // Only welcome and resumed carry ICE servers.
            let hasICE = message.event.type == "welcome" || message.event.type == "resumed"
            XCTAssertEqual(json["iceServers"] != nil, hasICE, message.event.type)
        }
    }

    func testICEServers() throws {
        let welcome = Samples.events[0]
        let json = try object(WireEncoder.encode(welcome, iceServers: Samples.iceServers))
        let servers = try XCTUnwrap(json["iceServers"] as? [[String: Any]])
        XCTAssertEqual(servers.count, 2)
        XCTAssertEqual(servers[0]["urls"] as? [String], ["stun:stun.example.org:3478"])
        XCTAssertNil(servers[0]["username"])
        XCTAssertEqual(servers[1]["username"] as? String, "1700000000:p1")
        XCTAssertEqual(servers[1]["credential"] as? String, "b64cred==")
        let none = try object(WireEncoder.encode(welcome))
        XCTAssertEqual((none["iceServers"] as? [Any])?.count, 0)
    }

    func testStaffOnlyFieldsOnlyWhenInTheView() throws {
        let plain = try object(WireEncoder.encode(Message(seq: 1, event: .memberJoined(Samples.member(3)))))
        let member = try XCTUnwrap(plain["member"] as? [String: Any])
        for key in ["userId", "location", "consentVersion", "handRaisedAt"] { XCTAssertNil(member[key], key) }
        let staff = try object(
            WireEncoder.encode(Message(seq: 1, event: .memberJoined(Samples.member(4, staffView: true)))))
        let staffMember = try XCTUnwrap(staff["member"] as? [String: Any])
        XCTAssertEqual(staffMember["userId"] as? String, "user-4")
        XCTAssertEqual(staffMember["location"] as? String, "Home, Portland OR")
        XCTAssertEqual(staffMember["consentVersion"] as? String, "2024-01")
        XCTAssertEqual((staffMember["handRaisedAt"] as? NSNumber)?.int64Value, Samples.t0.milliseconds + 4)
        // A member's snapshot has no waiting room and no help list.
        let admitted = try object(WireEncoder.encode(Message(seq: 1, event: .admitted(Samples.memberSnapshot))))
        let room = try XCTUnwrap(admitted["room"] as? [String: Any])
        XCTAssertNil(room["waiting"])
        XCTAssertNil(room["help"])
        XCTAssertNil((room["state"] as? [String: Any])?["spotlight"])
    }

    func testAppendingKeepsHeadroom() {
        var out = [UInt8](repeating: 0, count: 16)
        WireEncoder.encode(Message(event: .error(.rateLimited)), appendingTo: &out)
        XCTAssertEqual(out.prefix(16), [UInt8](repeating: 0, count: 16)[...])
        XCTAssertEqual(Array(out.dropFirst(16)), WireEncoder.encode(Message(event: .error(.rateLimited))))
    }

    /// A 16 KB offer is relayed whole: messages around and past the size of the encoder's
    /// scratch buffer (4 KB) come out complete, after any headroom already in the buffer.
    func testMessagesLargerThanTheScratchBufferComeOutWhole() throws {
        for sdpLength in [10, 4_000, 4_100, 16_000] {
            let sdp = String(repeating: "a=candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host\\r\\n", count: 1)
                .padding(toLength: sdpLength, withPad: "x", startingAt: 0)
            let payload = #"{"type":"offer","sdp":""# + sdp + #""}"#
            let message = Message(event: .signal(from: ParticipantID(1), kind: .offer, payload: payload))
            var out = [UInt8](repeating: 7, count: 16)
            WireEncoder.encode(message, appendingTo: &out)
            XCTAssertEqual(out.prefix(16), [UInt8](repeating: 7, count: 16)[...])
            let encoded = Array(out.dropFirst(16))
            XCTAssertEqual(encoded, WireEncoder.encode(message))
            XCTAssertEqual(
                text(encoded), #"{"type":"signal","from":"p1","kind":"offer","payload":"# + payload + "}",
                "payload of \(payload.utf8.count) bytes")
        }
    }

    func testSignalPayloadRoundTrip() throws {
        let payloads = [
            #"{"type":"offer","sdp":"v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"}"#,
            #"{"candidate":"candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 0.0.0.0 rport 0","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"a/b+c"}"#,
            #"{"nested":{"list":[1,-2,3.5,-0.25,true,false,null,"é\u2028\"\\"],"empty":{},"none":[]}}"#,
            #"null"#, #""just text""#, #"[]"#, #"0"#,
        ]
        for original in payloads {
            let inbound = WireDecoder.decode(#"{"type":"signal","to":"p2","kind":"offer","payload":"# + original + "}")
            guard case .success(.command(.signal(let to, let kind, let payload), nil)) = inbound else {
                XCTFail("not decoded: \(original)")
                continue
            }
            // What the engine relays, re-encoded for the peer.
            let out = WireEncoder.encode(Message(event: .signal(from: ParticipantID(1), kind: kind, payload: payload)))
            XCTAssertEqual(to, ParticipantID(2))
            let relayed = try object(out)
            XCTAssertEqual(relayed["from"] as? String, "p1")
            XCTAssertEqual(relayed["kind"] as? String, "offer")
            let expected = try JSONSerialization.jsonObject(with: Data(original.utf8), options: [.fragmentsAllowed])
            XCTAssertEqual(relayed["payload"] as? NSObject, expected as? NSObject, original)
            // Byte for byte, the compact form is stable through decode and encode.
            XCTAssertTrue(text(out).hasSuffix(#","payload":"# + payload + "}"), text(out))
        }
    }

    func testRealsKeepTheirValue() throws {
        // jansson writes reals with 17 significant digits: the same double, maybe other digits.
        guard
            case .success(.command(.signal(_, _, let payload), _)) = WireDecoder.decode(
                #"{"type":"signal","to":"p2","kind":"ice","payload":[0.1,1e-7,1.0]}"#)
        else { return XCTFail("not decoded") }
        XCTAssertEqual(payload, "[0.10000000000000001,9.9999999999999995e-8,1.0]")
        let values = payload.dropFirst().dropLast().split(separator: ",").compactMap { Double($0) }
        XCTAssertEqual(values, [0.1, 1e-7, 1.0])
    }

    func testUnparsablePayloadBecomesNull() {
        XCTAssertEqual(
            text(WireEncoder.encode(Message(event: .signal(from: ParticipantID(1), kind: .ice, payload: "{nope")))),
            #"{"type":"signal","from":"p1","kind":"ice","payload":null}"#)
        XCTAssertEqual(
            text(WireEncoder.encode(Message(event: .signal(from: ParticipantID(1), kind: .ice, payload: "")))),
            #"{"type":"signal","from":"p1","kind":"ice","payload":null}"#)
    }

    func testStringsAreEscaped() throws {
        let nasty = "\"},{\"type\":\"error\"\n\u{0}\u{1F}\\ \u{2028} 🙂"
        let bytes = WireEncoder.encode(Message(seq: 1, event: .waitingRoomMessage(text: nasty, at: Samples.t0)))
        XCTAssertFalse(bytes.contains(0x0A))
        XCTAssertEqual(try object(bytes)["text"] as? String, nasty)
    }
}
