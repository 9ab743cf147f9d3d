import HearthCore
import HearthWire
import XCTest

@testable import HearthServer

/// The broker against a scripted Janus that answers as Janus 1.1's VideoRoom does (the replies'
/// shapes were taken from a real one; Tests/sfu runs the broker against the real thing).
final class SFUBrokerTests: XCTestCase {
    /// Answers every request the way Janus does, and records what it was asked.
    struct FakeJanus {
        var nextID: Int64 = 100
        var requests: [JSONValue] = []
        /// handle -> publisher feed (for subscriber joins: the feeds asked for).
        var feedsOfSubscriber: [Int64: [Int64]] = [:]
        var refuse: Set<String> = []

        mutating func id() -> Int64 {
            nextID += 1
            return nextID
        }

        static func string(_ v: JSONValue?) -> String? { if case .string(let s)? = v { s } else { nil } }
        static func int(_ v: JSONValue?) -> Int64? { if case .integer(let n)? = v { n } else { nil } }

        mutating func reply(to request: JSONValue) -> [JSONValue] {
            requests.append(request)
            let tx = JSONValue.string(Self.string(request["transaction"]) ?? "")
            let janus = Self.string(request["janus"]) ?? ""
            let handle = Self.int(request["handle_id"]) ?? 0
            func event(_ data: [(String, JSONValue)], jsep: JSONValue? = nil) -> JSONValue {
                var fields: [(String, JSONValue)] = [
                    ("janus", .string("event")), ("transaction", tx), ("sender", .integer(handle)),
                    ("plugindata", .object([("plugin", .string("janus.plugin.videoroom")), ("data", .object(data))])),
                ]
                if let jsep { fields.append(("jsep", jsep)) }
                return .object(fields)
            }
            func success(_ data: [(String, JSONValue)]) -> JSONValue {
                .object([
                    ("janus", .string("success")), ("transaction", tx),
                    ("plugindata", .object([("plugin", .string("janus.plugin.videoroom")), ("data", .object(data))])),
                ])
            }
            let ack = JSONValue.object([("janus", .string("ack")), ("transaction", tx)])
            switch janus {
            case "create", "attach":
                return [
                    .object([
                        ("janus", .string("success")), ("transaction", tx), ("data", .object([("id", .integer(id()))])),
                    ])
                ]
            case "message":
                let body = request["body"]
                let what = Self.string(body?["request"]) ?? ""
                if refuse.contains(what) {
                    return [
                        success([
                            ("videoroom", .string("event")), ("error_code", .integer(428)),
                            ("error", .string("No such feed")),
                        ])
                    ]
                }
                switch what {
                case "create":
                    return [success([("videoroom", .string("created")), ("room", body?["room"] ?? .null)])]
                case "moderate", "destroy":
                    return [success([("videoroom", .string(what == "destroy" ? "destroyed" : "success"))])]
                case "join" where Self.string(body?["ptype"]) == "publisher":
                    return [ack, event([("videoroom", .string("joined")), ("id", body?["id"] ?? .null)])]
                case "join", "update":
                    var feeds = feedsOfSubscriber[handle] ?? []
                    let list = what == "join" ? body?["streams"] : body?["subscribe"]
                    if case .array(let items)? = list { feeds += items.compactMap { Self.int($0["feed"]) } }
                    feedsOfSubscriber[handle] = feeds
                    var streams: [JSONValue] = []
                    for (i, feed) in feeds.enumerated() {
                        for (k, type) in ["audio", "video"].enumerated() {
                            streams.append(
                                .object([
                                    ("type", .string(type)), ("active", .bool(true)), ("mid", .string("\(2 * i + k)")),
                                    ("feed_id", .integer(feed)),
                                ]))
                        }
                    }
                    return [
                        ack,
                        event(
                            [
                                ("videoroom", .string(what == "join" ? "attached" : "updated")),
                                ("streams", .array(streams)),
                            ],
                            jsep: .object([("type", .string("offer")), ("sdp", .string("v=0 offer \(feeds)"))])),
                    ]
                case "configure":
                    return [
                        ack,
                        event(
                            [
                                ("videoroom", .string("event")), ("configured", .string("ok")),
                                (
                                    "streams",
                                    .array([
                                        .object([("type", .string("audio")), ("mid", .string("0"))]),
                                        .object([("type", .string("video")), ("mid", .string("1"))]),
                                    ])
                                ),
                            ], jsep: .object([("type", .string("answer")), ("sdp", .string("v=0 answer"))])),
                    ]
                case "start":
                    return [ack, event([("videoroom", .string("event")), ("started", .string("ok"))])]
                default:
                    return [ack]
                }
            default:
                return [ack]
            }
        }

        /// Janus's `webrtcup` for a publisher handle.
        static func webrtcup(_ handle: Int64) -> JSONValue {
            .object([("janus", .string("webrtcup")), ("sender", .integer(handle))])
        }
    }

    struct Rig {
        var broker = SFUBroker(
            settings: .init(apiSecret: "api", adminKey: "admin", roomSecret: "rs", idBase: 1_000_000))
        var janus = FakeJanus()
        var sent: [ConnectionID: [SFUServerMessage]] = [:]
        var refusals: [(ErrorCode, ConnectionID)] = []
        var janusErrors: [String] = []

        /// Performs actions; Janus's replies are fed back until nothing more happens.
        mutating func run(_ actions: [SFUBroker.Action]) {
            var queue = actions
            var steps = 0
            while !queue.isEmpty {
                steps += 1
                precondition(steps < 10_000, "the broker and the fake Janus loop")
                let action = queue.removeFirst()
                switch action {
                case .janus(let request):
                    for reply in janus.reply(to: request) { queue += broker.received(reply) }
                case .send(let message, let connection): sent[connection, default: []].append(message)
                case .refuse(let code, _, let connection): refusals.append((code, connection))
                case .janusError(let request, _, _): janusErrors.append(request)
                }
            }
        }

        mutating func take(_ c: ConnectionID) -> [SFUServerMessage] {
            defer { sent[c] = [] }
            return sent[c] ?? []
        }

        func asked(_ what: String) -> [JSONValue] {
            janus.requests.filter { FakeJanus.string($0["body"]?["request"]) == what }
        }

        /// The publisher handle Janus gave a member (from its join).
        func publisherHandle(_ pid: ParticipantID) -> Int64? {
            janus.requests.first {
                FakeJanus.string($0["body"]?["ptype"]) == "publisher"
                    && FakeJanus.string($0["body"]?["display"]) == pid.description
            }.flatMap { FakeJanus.int($0["handle_id"]) }
        }
    }

    let room = RoomID("r1")
    let (p1, p2, p3) = (ParticipantID(1), ParticipantID(2), ParticipantID(3))
    let (c1, c2, c3) = (ConnectionID(11), ConnectionID(12), ConnectionID(13))

    func seat(_ c: ConnectionID, space: BreakoutID? = nil, publish: Bool = true, audio: Bool = true) -> SFUSeat {
        SFUSeat(connection: c, space: space, publish: publish, audio: publish && audio, video: publish)
    }

    func session(_ messages: [SFUServerMessage]) -> (UInt64, Bool)? {
        for case .session(let s, let publish) in messages { return (s, publish) }
        return nil
    }

    /// Link up, two members planned, each publishing, each media up.
    func twoPublishing() -> (Rig, s1: UInt64, s2: UInt64) {
        var rig = Rig()
        rig.run(rig.broker.linkUp())
        XCTAssertTrue(rig.broker.isUp)
        rig.run(rig.broker.plan(room, [p1: seat(c1), p2: seat(c2)]))
        let s1 = session(rig.take(c1))!.0
        let s2 = session(rig.take(c2))!.0
        for (pid, c, s) in [(p1, c1, s1), (p2, c2, s2)] {
            rig.run(
                rig.broker.client(
                    .publish(session: s, sdp: "v=0 offer"), member: .init(room: room, id: pid), from: c, rid: nil))
            XCTAssertTrue(rig.sent[c, default: []].contains(.answer(session: s, sdp: "v=0 answer")))
            rig.run(rig.broker.received(FakeJanus.webrtcup(rig.publisherHandle(pid)!)))
        }
        return (rig, s1, s2)
    }

    func testMembersGetASessionOnlyOnceTheirPublisherJoinedTheirSpacesRoom() {
        var rig = Rig()
        rig.run(rig.broker.plan(room, [p1: seat(c1)]))
        XCTAssertTrue(rig.janus.requests.isEmpty, "nothing is asked of a Janus that is not there")
        rig.run(rig.broker.linkUp())
        XCTAssertEqual(rig.asked("create").count, 1, "one VideoRoom for the main room")
        XCTAssertEqual(FakeJanus.string(rig.asked("create")[0]["body"]?["admin_key"]), "admin")
        XCTAssertEqual(FakeJanus.string(rig.janus.requests[0]["apisecret"]), "api")
        let (s, publish) = session(rig.take(c1))!
        XCTAssertTrue(publish)
        XCTAssertGreaterThan(s, 0)
    }

    func testOffersAndAnswersAreRelayedAndSubscriptionsWaitForMedia() {
        var (rig, s1, s2) = twoPublishing()
        // Each subscribes to the other once the other's media is up.
        let offers1 = rig.take(c1).compactMap { m -> [SFUStream]? in
            if case .offer(let s, _, let streams) = m, s == s1 { return streams } else { return nil }
        }
        XCTAssertEqual(offers1.last?.map(\.member), [p2, p2])
        XCTAssertEqual(offers1.last?.map(\.kind), [.audio, .video])
        let offers2 = rig.take(c2).compactMap { m -> [SFUStream]? in
            if case .offer(let s, _, let streams) = m, s == s2 { return streams } else { return nil }
        }
        XCTAssertEqual(offers2.last?.map(\.member), [p1, p1])
        // The answer goes to Janus as `start` with the jsep.
        rig.run(
            rig.broker.client(
                .subscribe(session: s1, sdp: "v=0 answer1"), member: .init(room: room, id: p1), from: c1, rid: nil))
        XCTAssertEqual(FakeJanus.string(rig.asked("start").last?["jsep"]?["sdp"]), "v=0 answer1")
        // A third member's media arriving updates the others' subscriptions.
        rig.run(rig.broker.plan(room, [p1: seat(c1), p2: seat(c2), p3: seat(c3)]))
        let s3 = session(rig.take(c3))!.0
        rig.run(
            rig.broker.client(
                .publish(session: s3, sdp: "v=0 offer"), member: .init(room: room, id: p3), from: c3, rid: nil))
        rig.run(rig.broker.received(FakeJanus.webrtcup(rig.publisherHandle(p3)!)))
        XCTAssertFalse(rig.asked("update").isEmpty)
        let streams = rig.take(c1).compactMap { m -> [SFUStream]? in
            if case .offer(_, _, let streams) = m { return streams } else { return nil }
        }.last
        XCTAssertEqual(Set(streams?.map(\.member) ?? []), [p2, p3])
        XCTAssertTrue(rig.janusErrors.isEmpty, "\(rig.janusErrors)")
    }

    func testALateArrivalSubscribesAtOnceToThoseAlreadyPublishing() {
        var (rig, _, _) = twoPublishing()
        rig.run(rig.broker.plan(room, [p1: seat(c1), p2: seat(c2), p3: seat(c3)]))
        let messages = rig.take(c3)
        let s3 = session(messages)!.0
        let streams = messages.compactMap { m -> [SFUStream]? in
            if case .offer(let s, _, let streams) = m, s == s3 { return streams } else { return nil }
        }.last
        XCTAssertEqual(Set(streams?.map(\.member) ?? []), [p1, p2], "before p3 publishes anything")
    }

    func testTheRosterDecidesWhatJanusForwards() {
        var rig = Rig()
        rig.run(rig.broker.linkUp())
        rig.run(rig.broker.plan(room, [p1: seat(c1, audio: false)]))
        let s1 = session(rig.take(c1))!.0
        rig.run(
            rig.broker.client(.publish(session: s1, sdp: "v=0"), member: .init(room: room, id: p1), from: c1, rid: nil))
        // Muted from the start: audio (mid 0) is moderated as soon as Janus knows the mids.
        let first = rig.asked("moderate")
        XCTAssertEqual(first.count, 1)
        XCTAssertEqual(FakeJanus.string(first[0]["body"]?["mid"]), "0")
        XCTAssertEqual(first[0]["body"]?["mute"], .bool(true))
        XCTAssertEqual(FakeJanus.string(first[0]["body"]?["secret"]), "rs")
        // The member turns audio on: unmuted in Janus; staff mute it: muted again; no repeats.
        rig.run(rig.broker.plan(room, [p1: seat(c1, audio: true)]))
        rig.run(rig.broker.plan(room, [p1: seat(c1, audio: true)]))
        rig.run(rig.broker.plan(room, [p1: seat(c1, audio: false)]))
        XCTAssertEqual(rig.asked("moderate").map { $0["body"]?["mute"] }, [.bool(true), .bool(false), .bool(true)])
    }

    func testRefusals() {
        var (rig, s1, _) = twoPublishing()
        let k1 = SFUMemberKey(room: room, id: p1)
        rig.run(rig.broker.client(.publish(session: s1 + 99, sdp: "v=0"), member: k1, from: c1, rid: "r"))
        rig.run(rig.broker.client(.publish(session: s1, sdp: "v=0"), member: k1, from: c2, rid: "r"))
        rig.run(
            rig.broker.client(.publish(session: 1, sdp: "v=0"), member: .init(room: room, id: p3), from: c3, rid: "r"))
        XCTAssertEqual(rig.refusals.map(\.0), [.sfuStale, .sfuUnavailable, .sfuUnavailable])
        // A member who may not publish gets a session to receive only, and is refused publishing.
        rig.refusals = []
        rig.run(rig.broker.plan(room, [p1: seat(c1), p2: seat(c2), p3: seat(c3, publish: false)]))
        let (s3, publish) = session(rig.take(c3))!
        XCTAssertFalse(publish)
        rig.run(
            rig.broker.client(.publish(session: s3, sdp: "v=0"), member: .init(room: room, id: p3), from: c3, rid: "r"))
        XCTAssertEqual(rig.refusals.map(\.0), [.forbidden])
        // Candidates for a connection Janus does not have yet are dropped, not refused.
        rig.run(
            rig.broker.client(
                .candidate(session: s3, peer: .publish, nil), member: .init(room: room, id: p3), from: c3, rid: nil))
        XCTAssertEqual(rig.refusals.count, 1)
    }

    func testLeavingDetachesAndAnEmptySpaceLosesItsRoom() {
        var (rig, _, _) = twoPublishing()
        let before = rig.janus.requests.count
        rig.run(rig.broker.plan(room, [p1: seat(c1)]))
        let detaches = rig.janus.requests[before...].filter { FakeJanus.string($0["janus"]) == "detach" }
        XCTAssertEqual(detaches.count, 2, "p2's publisher and subscriber")
        XCTAssertTrue(rig.asked("destroy").isEmpty)
        rig.run(rig.broker.plan(room, [:]))
        XCTAssertEqual(rig.asked("destroy").count, 1)
        XCTAssertFalse(rig.broker.knows(room))
    }

    func testABreakoutMoveIsANewSessionInAnotherRoom() {
        var (rig, s1, _) = twoPublishing()
        rig.run(rig.broker.plan(room, [p1: seat(c1, space: BreakoutID(1)), p2: seat(c2)]))
        XCTAssertEqual(rig.asked("create").count, 2, "the breakout's own VideoRoom")
        let (new, _) = session(rig.take(c1))!
        XCTAssertGreaterThan(new, s1)
        let rooms = rig.janus.requests.filter { FakeJanus.string($0["body"]?["ptype"]) == "publisher" }
            .compactMap { FakeJanus.int($0["body"]?["room"]) }
        XCTAssertEqual(Set(rooms).count, 2)
    }

    func testLosingTheLinkTellsMembersAndItsReturnRebuildsEverything() {
        var (rig, _, _) = twoPublishing()
        rig.run(rig.broker.linkDown())
        XCTAssertFalse(rig.broker.isUp)
        XCTAssertEqual(rig.take(c1).last, .closedUnavailable)
        XCTAssertEqual(rig.take(c2).last, .closedUnavailable)
        rig.run(rig.broker.plan(room, [p1: seat(c1), p2: seat(c2, audio: false)]))
        XCTAssertTrue(rig.take(c1).isEmpty, "nothing happens while it is down")
        rig.run(rig.broker.linkUp())
        XCTAssertNotNil(session(rig.take(c1)))
        XCTAssertNotNil(session(rig.take(c2)))
        XCTAssertEqual(rig.asked("create").count, 2, "the room was made again on the new link")
    }

    func testAJanusErrorIsReportedAndTheNegotiationEnds() {
        var rig = Rig()
        rig.janus.refuse = ["update"]
        rig.run(rig.broker.linkUp())
        rig.run(rig.broker.plan(room, [p1: seat(c1), p2: seat(c2)]))
        XCTAssertTrue(rig.janusErrors.isEmpty)
        rig.janus.refuse = ["create"]
        rig.run(rig.broker.plan(RoomID("r2"), [p3: seat(c3)]))
        XCTAssertEqual(rig.janusErrors, ["create"])
        XCTAssertTrue(rig.take(c3).isEmpty, "no session without a room")
    }

    /// The requests among actions that ask the VideoRoom plugin for `what`.
    func requests(_ actions: [SFUBroker.Action], _ what: String) -> [SFUBroker.Action] {
        actions.filter {
            if case .janus(let r) = $0 { FakeJanus.string(r["body"]?["request"]) == what } else { false }
        }
    }

    // Janus handles requests on a pool of threads: two sent together may be handled in either
    // order. A VideoRoom's destroy must not go out before Janus answered its create (it could
    // overtake it, be refused "No such room", and leave the room on Janus).
    func testARoomDroppedWhileJanusCreatesItIsDestroyedOnceCreated() {
        var rig = Rig()
        rig.run(rig.broker.linkUp())
        let creating = rig.broker.plan(room, [p1: seat(c1)])
        XCTAssertEqual(requests(creating, "create").count, 1)
        let dropped = rig.broker.plan(room, [:])
        XCTAssertTrue(requests(dropped, "destroy").isEmpty, "nothing to destroy before Janus has it")
        // Needed again before Janus answered: a new room is made.
        let again = rig.broker.plan(room, [p1: seat(c1)])
        XCTAssertEqual(requests(again, "create").count, 1)
        rig.run(creating)
        let destroyed = rig.asked("destroy")
        XCTAssertEqual(destroyed.count, 1, "the first room, once created")
        XCTAssertEqual(destroyed.first?["body"]?["room"], rig.asked("create").first?["body"]?["room"])
        XCTAssertTrue(rig.take(c1).isEmpty, "no session in the dropped room")
        rig.run(again)
        XCTAssertEqual(rig.asked("destroy").count, 1)
        XCTAssertNotNil(session(rig.take(c1)), "a session in the new room")
        XCTAssertTrue(rig.janusErrors.isEmpty)
    }

    func testAFailedCreateOfADroppedRoomLeavesItsSuccessorAlone() {
        var rig = Rig()
        rig.run(rig.broker.linkUp())
        rig.janus.refuse = ["create"]
        let first = rig.broker.plan(room, [p1: seat(c1)])
        _ = rig.broker.plan(room, [:])
        let second = rig.broker.plan(room, [p1: seat(c1)])
        rig.run(first)
        XCTAssertEqual(rig.janusErrors, ["create"])
        XCTAssertTrue(rig.asked("destroy").isEmpty)
        rig.janus.refuse = []
        rig.run(second)
        XCTAssertNotNil(session(rig.take(c1)), "the second room was not forgotten with the first")
    }

    // A mute and an unmute in quick succession: the second waits for Janus's answer to the first.
    func testModeratesOfOneKindGoOneAtATime() {
        var (rig, _, _) = twoPublishing()
        let before = rig.asked("moderate").count
        let mute = rig.broker.plan(room, [p1: seat(c1, audio: false), p2: seat(c2)])
        XCTAssertEqual(requests(mute, "moderate").count, 1)
        let unmute = rig.broker.plan(room, [p1: seat(c1), p2: seat(c2, audio: false)])
        XCTAssertEqual(requests(unmute, "moderate").count, 1, "p2's mute goes; p1's unmute waits")
        rig.run(unmute)
        XCTAssertEqual(rig.asked("moderate").count, before + 1)
        rig.run(mute)
        let sent = rig.asked("moderate")[before...].map { ($0["body"]?["id"], $0["body"]?["mute"]) }
        XCTAssertEqual(sent.count, 3)
        XCTAssertEqual(sent.map(\.1), [.bool(true), .bool(true), .bool(false)], "p2 muted, p1 muted, then p1 unmuted")
        XCTAssertEqual(sent[1].0, sent[2].0)
        // Back and forth before the answer: only the last state is sent, once.
        let off = rig.broker.plan(room, [p1: seat(c1, audio: false), p2: seat(c2, audio: false)])
        XCTAssertTrue(
            requests(rig.broker.plan(room, [p1: seat(c1, audio: true), p2: seat(c2, audio: false)]), "moderate").isEmpty
        )
        XCTAssertTrue(
            requests(rig.broker.plan(room, [p1: seat(c1, audio: false), p2: seat(c2, audio: false)]), "moderate")
                .isEmpty)
        rig.run(off)
        XCTAssertEqual(rig.asked("moderate").count, before + 4, "the mute; the answer finds the plan muted")
    }

    // A refused moderate is reported and does not hold back the next one of its kind.
    func testARefusedModerateDoesNotHoldBackTheNext() {
        var (rig, _, _) = twoPublishing()
        let before = rig.asked("moderate").count
        rig.janus.refuse = ["moderate"]
        rig.run(rig.broker.plan(room, [p1: seat(c1, audio: false), p2: seat(c2)]))
        XCTAssertEqual(rig.janusErrors, ["moderate"])
        rig.janus.refuse = []
        rig.run(rig.broker.plan(room, [p1: seat(c1), p2: seat(c2)]))
        let sent = rig.asked("moderate")[before...].map { $0["body"]?["mute"] }
        XCTAssertEqual(sent, [.bool(true), .bool(false)], "the unmute went once the refusal was answered")
    }
}
