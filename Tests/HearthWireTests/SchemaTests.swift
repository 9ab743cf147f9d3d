import Foundation
import HearthCore
import HearthWire
import XCTest

/// The encoder's output and sample client messages against docs/protocol.schema.json.
final class SchemaTests: XCTestCase {
    func testEverySampleEventMatchesTheSchema() throws {
        var items: [SchemaValidator.Item] = []
        for (i, message) in Samples.events.enumerated() {
            for ice in [[], Samples.iceServers] {
                items.append(
                    .init(
                        definition: .server,
                        json: String(decoding: WireEncoder.encode(message, iceServers: ice), as: UTF8.self),
                        label: "sample \(i) \(message.event.type)"))
            }
        }
        for code in ErrorCode.allCases {
            items.append(
                .init(
                    definition: .server, json: String(decoding: WireEncoder.encodeError(code, rid: "r"), as: UTF8.self),
                    label: "error \(code.rawValue)"))
        }
        items.append(
            .init(
                definition: .server, json: String(decoding: WireEncoder.encodePong(rid: "r"), as: UTF8.self),
                label: "pong"))
        items.append(
            .init(
                definition: .server, json: String(decoding: WireEncoder.encodePong(rid: nil), as: UTF8.self),
                label: "pong"))
        try SchemaValidator.assert(items)
    }

    func testSchemaRejectsLeaksAndMistakes() throws {
        let bad: [String] = [
            // A field the protocol does not have (e.g. a leaked staff field in a waiting status).
            #"{"type":"waiting","seq":1,"status":{"reason":"sent-back","consentAcknowledged":true,"locationRequired":false,"locationGiven":false,"location":"Home"}}"#,
            #"{"type":"member-left","seq":1,"member":"p3","reason":"left","userId":"u3"}"#,
            #"{"type":"chat","seq":1,"message":{"id":"m1","seq":1,"from":"p1","fromAlias":"a","to":"room","text":"x","deleted":false,"at":1,"userId":"u"}}"#,
            #"{"type":"ack","rid":"r","seq":3}"#,
            #"{"type":"signal","seq":3,"from":"p1","kind":"ice","payload":{}}"#,
            // Wrong values.
            #"{"type":"member-left","seq":1,"member":"3","reason":"left"}"#,
            #"{"type":"member-left","seq":1,"member":"p3","reason":"gone"}"#,
            #"{"type":"error","code":"nope","message":"x"}"#,
            #"{"type":"chat-deleted","seq":1,"message":"p5"}"#,
            #"{"type":"ended","seq":1,"at":"yesterday"}"#,
            #"{"type":"nonsense"}"#,
            #"{"type":"welcome","you":{"id":"p1","role":"facilitator","alias":"a","placement":"room"},"lastSeq":0,"iceServers":[]}"#,
            // Breakouts: `moved` always says where (null: the main room); ids are canonical.
            #"{"type":"moved","seq":1,"room":{"you":{"id":"p1","alias":"a","role":"guest","audio":false,"video":false,"connected":true,"mediaGranted":false,"chatGranted":false},"state":{"locked":false,"staffPresent":true,"chatPolicy":"everyone","privateMessages":false,"selfUnmute":true,"waitingRoom":true,"capacity":1,"media":"mesh"},"members":[],"chat":[]}}"#,
            #"{"type":"breakouts-ending","seq":1,"endsAt":"soon"}"#,
            #"{"type":"breakouts","seq":1,"breakouts":{"plan":[],"open":[{"id":"b01","name":"A","kind":"planned","members":[]}]}}"#,
            #"{"type":"breakouts","seq":1,"breakouts":{"plan":[],"open":[{"id":"b1","name":"A","kind":"secret","members":[]}]}}"#,
            #"{"type":"breakouts","seq":1,"breakouts":{"open":[]}}"#,
            #"{"type":"breakout-broadcast","seq":1,"from":"p1","text":"x","at":1}"#,
            #"{"type":"ack","rid":"r","breakout":"3"}"#,
            #"{"type":"member-left","seq":1,"member":"p3","reason":"moved","breakout":"b2"}"#,
        ]
        try SchemaValidator.assert(
            bad.enumerated().map { .init(definition: .server, json: $1, expectValid: false, label: "bad server \($0)") }
        )
    }

    func testClientMessagesMatchTheSchema() throws {
        var items: [SchemaValidator.Item] = Samples.commands.map {
            .init(definition: .client, json: $0.json, label: "command \($0.command.name)")
        }
        items += [
            #"{"type":"hello","token":"eyJhbGciOiJFUzI1NiJ9.e30.sig","rid":"h1"}"#,
            #"{"type":"resume","secret":"abc","lastSeq":17}"#,
            #"{"type":"ping"}"#, #"{"type":"ping","rid":"p-9"}"#,
        ].map { .init(definition: .client, json: $0, label: $0) }
        // What the schema rejects, the decoder rejects too.
        let bad = [
            #"{"type":"admit","member":"x"}"#, #"{"type":"admit","member":"p01"}"#,
            #"{"type":"chat","to":"all","text":"x"}"#,
            #"{"type":"resume","secret":"s","lastSeq":-1}"#, #"{"type":"set-role","member":"p1","role":"admin"}"#,
            #"{"type":"spotlight"}"#, #"{"type":"ping","rid":""# + String(repeating: "x", count: 65) + #""}"#,
            #"{"type":"dance"}"#, #"{"type":"grant","member":"p1","media":true}"#,
            #"{"type":"signal","to":"p1","kind":"pranswer","payload":{}}"#, #"{"type":"mute","member":"p1","audio":1}"#,
            #"{"type":"breakout-close","breakout":"b01"}"#, #"{"type":"breakout-close","breakout":7}"#,
            #"{"type":"breakout-move","member":"p2"}"#, #"{"type":"breakout-visit"}"#,
            #"{"type":"breakouts-plan","breakouts":[{"members":["p2"]}]}"#,
            #"{"type":"breakouts-plan","breakouts":[{"name":"A","members":["x2"]}]}"#,
            #"{"type":"breakouts-plan","breakouts":{"name":"A"}}"#,
            #"{"type":"breakouts-open","durationSeconds":"600"}"#,
            #"{"type":"breakout-broadcast"}"#, #"{"type":"pull-aside","member":null}"#,
        ]
        for json in bad {
            if case .success = WireDecoder.decode(json) { XCTFail("decoder accepted \(json)") }
            items.append(.init(definition: .client, json: json, expectValid: false, label: "bad client"))
        }
        try SchemaValidator.assert(items)
    }

    /// Everything a real room sends during a session, encoded and validated.
    func testEngineOutputMatchesTheSchema() throws {
        var settings = RoomSettings()
        settings.consentVersion = "v1"
        settings.requireLocation = true
        var room = Room(id: RoomID("r1"), settings: settings, at: Samples.t0)
        var now = Samples.t0
        var sent: [Message] = []
        func run(_ effects: [Effect]) {
            for case .send(let message, _) in effects { sent.append(message) }
            now = now + 1000
        }
        func join(_ c: UInt64, _ user: String, _ role: Role) {
            run(
                room.connect(
                    ConnectionID(c), identity: Identity(userID: UserID(user), role: role, alias: "A \(user)"),
                    credential: ResumeCredential(secret: "secret-\(user)", hash: "hash-\(user)"), rid: "h\(c)", at: now)
            )
        }
        func send(_ c: UInt64, _ command: ClientCommand, rid: String? = "r") {
            run(room.handle(command, from: ConnectionID(c), rid: rid, at: now))
        }
        join(1, "fac", .facilitator)
        join(2, "pat", .participant)
        send(2, .acknowledgeConsent(version: "v1"))
        send(2, .setLocation("Home"))
        send(1, .admit(ParticipantID(2)))
        join(3, "obs", .observer)
        send(3, .acknowledgeConsent(version: "v1"))
        send(3, .setLocation("Office"))
        send(1, .admitAll)
        send(2, .chat(to: .room, text: "hello"))
        send(2, .chat(to: .staff, text: "to staff"), rid: nil)
        send(1, .chat(to: .member(ParticipantID(2)), text: "hi"))
        send(2, .raiseHand)
        send(1, .lowerAllHands)
        send(2, .signal(to: ParticipantID(1), kind: .offer, payload: #"{"type":"offer","sdp":"v=0"}"#))
        send(2, .setMedia(audio: true, video: true))
        send(1, .grant(ParticipantID(3), media: true, chat: true))
        send(1, .mute(ParticipantID(2), audio: true, video: true))
        send(1, .askUnmute(ParticipantID(2), audio: true, video: false))
        send(1, .spotlight(ParticipantID(2)))
        send(1, .spotlight(nil))
        send(1, .setLocked(true))
        send(1, .setLocked(false))
        send(1, .updateSettings(SettingsChange(chatPolicy: .staffOnly, privateMessages: true)))
        send(1, .deleteChat(MessageID(1)))
        send(2, .requestHelp)
        send(1, .acknowledgeHelp(ParticipantID(2)))
        send(1, .setRole(ParticipantID(2), .cofacilitator))
        send(1, .setRole(ParticipantID(2), .participant))
        send(2, .admit(ParticipantID(3)))  // forbidden
        join(4, "gst", .guest)
        send(1, .messageWaitingRoom("Soon"))
        send(1, .deny(ParticipantID(4), reason: "Not today"))
        run(room.disconnected(ConnectionID(2), at: now))
        run(
            room.resume(
                ConnectionID(5), resumeHash: "hash-pat",
                credential: ResumeCredential(secret: "secret-pat-2", hash: "hash-pat-2"),
                lastSeq: 3, rid: "res", at: now))
        send(1, .sendBack(ParticipantID(2)))
        send(1, .admit(ParticipantID(2)))
        send(1, .remove(ParticipantID(3), ban: true, reason: "rules"))
        send(5, .leave)
        join(6, "pat2", .participant)
        run(room.timerFired(.grace(ParticipantID(99)), at: now))
        // Breakouts: two pairs by hand and automatically, a time limit with its warning, chat
        // and signalling inside a pair, a visit, a broadcast, a pull-aside, a drop and resume.
        join(7, "m7", .participant)
        join(8, "m8", .guest)
        join(9, "m9", .participant)
        for c: UInt64 in [7, 8, 9] {
            send(c, .acknowledgeConsent(version: "v1"))
            send(c, .setLocation("Home"))
        }
        send(1, .admitAll)
        func pid(_ user: String) -> ParticipantID { room.seat(ofUser: UserID(user))!.id }
        let (m7, m8, m9) = (pid("m7"), pid("m8"), pid("m9"))
        send(
            1,
            .planBreakouts(
                [BreakoutPlanEntry(name: "Pair 1", members: [m7]), BreakoutPlanEntry(name: "Pair 2")], automatic: true))
        send(1, .openBreakouts(durationSeconds: 600, warningSeconds: 60))
        send(7, .chat(to: .room, text: "in the pair"))
        send(1, .chat(to: .room, text: "main room"))
        send(1, .visitBreakout(room.seats[m7]?.breakout))
        send(1, .chat(to: .member(m7), text: "visiting"))
        send(1, .broadcastToBreakouts("Two minutes"))
        send(1, .signal(to: m8, kind: .offer, payload: "{}"))
        send(1, .pullAside(m9))
        let pullAside = try XCTUnwrap(room.seats[m9]?.breakout)
        run(room.disconnected(ConnectionID(9), at: now))
        run(
            room.resume(
                ConnectionID(10), resumeHash: "hash-m9",
                credential: ResumeCredential(secret: "secret-m9-2", hash: "hash-m9-2"), lastSeq: 1, rid: "res9", at: now
            ))
        run(room.timerFired(.breakoutsWarning, at: now))
        run(room.timerFired(.breakoutsEnd, at: now + 600_000))
        send(1, .closeBreakout(pullAside))
        send(1, .moveToBreakout(m7, nil))
        send(1, .closeBreakouts)  // breakouts-closed
        send(1, .end)

        let types = Set(sent.map(\.event.type))
        for expected in [
            "welcome", "resumed", "admitted", "snapshot", "waiting", "member-joined", "member-updated", "member-left",
            "waiting-updated", "waiting-left", "room-updated", "chat", "chat-deleted", "signal", "waiting-room-message",
            "unmute-requested", "help-requested", "help-acknowledged", "denied", "removed", "ended", "ack", "error",
            "moved", "breakouts", "breakouts-ending", "breakout-broadcast",
        ] {
            XCTAssertTrue(types.contains(expected), "the scenario produced no \(expected)")
        }
        try SchemaValidator.assert(
            sent.enumerated().map {
                .init(
                    definition: .server,
                    json: String(decoding: WireEncoder.encode($1, iceServers: Samples.iceServers), as: UTF8.self),
                    label: "engine message \($0)")
            })
    }
}
