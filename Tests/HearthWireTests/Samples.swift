import HearthWire

// The view types have no public memberwise initialisers: build them through @testable.
@testable import HearthCore

/// Hand-built values of every server event, for encoding and schema tests.
enum Samples {
    static let t0 = Instant(milliseconds: 1_700_000_000_000)

    /// A `resumed` without a snapshot, in a breakout: `you` says where.
    static let resumedInABreakout = Resumed(
        you: SelfView(
            id: ParticipantID(2), role: .participant, alias: "Sam", placement: .room, breakout: BreakoutID(3)),
        resumeSecret: "s", seq: 9, gap: false, room: nil, waiting: nil, replayed: 0)

    static func member(_ n: UInt32, _ role: Role = .participant, staffView: Bool = false) -> MemberView {
        MemberView(
            id: ParticipantID(n), alias: "Alias \(n)", role: role, audio: true, video: false,
            handRaisedAt: n % 2 == 0 ? t0 + Int64(n) : nil, connected: n != 5,
            mediaGranted: role == .observer, chatGranted: false,
            userID: staffView ? UserID("user-\(n)") : nil, location: staffView ? "Home, Portland OR" : nil,
            consentVersion: staffView ? "2024-01" : nil)
    }

    static let state = RoomStateView(
        locked: false, staffPresent: true, spotlight: ParticipantID(3), chatPolicy: .everyone,
        privateMessages: false, selfUnmute: true, waitingRoom: true, capacity: 12)

    static let waitingView = WaitingView(
        id: ParticipantID(7), alias: "Alias 7", role: .guest, userID: UserID("user-7"), since: t0,
        consentVersion: nil, location: "Work", connected: true, ready: false)

    static let waitingStatus = WaitingStatus(
        reason: .waitingForOpening, consentVersion: "2024-01", consentText: "What is said here stays here.",
        opensAt: Instant(milliseconds: 1_700_000_600_000), consentAcknowledged: false,
        locationRequired: true, locationGiven: false)

    static let chatRoom = ChatMessage(
        id: MessageID(12), seq: 40, from: ParticipantID(2), fromAlias: "Alias 2", to: .room,
        text: "Hello \"everyone\" — 👋\nsecond line", at: t0 + 5)
    static let chatPrivate = ChatMessage(
        id: MessageID(13), seq: 41, from: ParticipantID(1), fromAlias: "Dr. K", to: .member(ParticipantID(2)),
        text: "Are you OK?", at: t0 + 6)
    static let chatDeleted = ChatMessage(
        id: MessageID(9), seq: 30, from: ParticipantID(4), fromAlias: "Alias 4", to: .staff, text: nil, at: t0 + 1)
    /// Room chat written in a breakout: it carries the breakout's id.
    static let chatInBreakout = ChatMessage(
        id: MessageID(14), seq: 50, from: ParticipantID(2), fromAlias: "Alias 2", to: .room, text: "Your turn",
        at: t0 + 12, breakout: BreakoutID(1))

    /// A member view in the staff view of someone in a breakout.
    static func member(_ n: UInt32, inBreakout breakout: UInt32) -> MemberView {
        var view = member(n, staffView: true)
        view.breakout = BreakoutID(breakout)
        return view
    }

    static let breakoutRef = BreakoutRef(
        id: BreakoutID(1), name: "Pair 1", kind: .planned, endsAt: Instant(milliseconds: 1_700_000_600_000))
    static let pullAsideRef = BreakoutRef(id: BreakoutID(3), name: "Pull-aside", kind: .pullAside, endsAt: nil)

    static let breakoutsOpen = BreakoutsView(
        plan: [],
        open: [
            BreakoutView(
                id: BreakoutID(1), name: "Pair 1", kind: .planned, members: [ParticipantID(1), ParticipantID(2)]),
            BreakoutView(id: BreakoutID(2), name: "Pair 2", kind: .planned, members: []),
            BreakoutView(
                id: BreakoutID(3), name: "Pull-aside", kind: .pullAside, members: [ParticipantID(4), ParticipantID(6)]),
        ],
        endsAt: Instant(milliseconds: 1_700_000_600_000))
    static let breakoutsPlanned = BreakoutsView(
        plan: [
            BreakoutView(id: BreakoutID(4), name: "Triad ✓", kind: .planned, members: [ParticipantID(2)]),
            BreakoutView(id: BreakoutID(5), name: "Pair \"B\"", kind: .planned, members: []),
        ],
        open: [], endsAt: nil)
    static let noBreakouts = BreakoutsView(plan: [], open: [], endsAt: nil)

    /// The smallest snapshot of a member in a breakout: only themselves.
    static let pairSnapshot = RoomSnapshot(
        you: member(2, inBreakout: 1), room: state, members: [member(2)], chat: [], waiting: nil, help: nil,
        breakout: breakoutRef)

    /// A staff member visiting a breakout: every member, with where each one is, and the breakouts.
    static let staffBreakoutSnapshot = RoomSnapshot(
        you: member(1, inBreakout: 1), room: state,
        members: [member(1, inBreakout: 1), member(2, inBreakout: 1), member(4, staffView: true)],
        chat: [chatInBreakout], waiting: [], help: [], breakout: breakoutRef, breakouts: breakoutsOpen)

    /// A member in a breakout: its members only, and where they are (no `breakouts`).
    static let memberBreakoutSnapshot = RoomSnapshot(
        you: member(2, inBreakout: 1), room: state, members: [member(1, .facilitator), member(2)],
        chat: [chatInBreakout], waiting: nil, help: nil, breakout: breakoutRef)

    static let staffSnapshot = RoomSnapshot(
        you: member(1, .facilitator, staffView: true), room: state,
        members: [
            member(1, .facilitator, staffView: true), member(2, staffView: true), member(4, .observer, staffView: true),
        ],
        chat: [chatDeleted, chatRoom, chatPrivate], waiting: [waitingView],
        help: [HelpRequest(id: ParticipantID(2), at: t0 + 9)])

    static let memberSnapshot = RoomSnapshot(
        you: member(2, staffView: true),
        room: RoomStateView(
            locked: true, staffPresent: false, spotlight: nil, chatPolicy: .staffOnly, privateMessages: true,
            selfUnmute: false, waitingRoom: false, capacity: 8),
        members: [member(1, .facilitator), member(2), member(5, .guest)], chat: [chatRoom], waiting: nil, help: nil)

    static let signalPayload =
        #"{"type":"offer","sdp":"v=0\r\no=- 46117 2 IN IP4 127.0.0.1\r\n","n":[1,2.5,true,null]}"#

    /// One or more samples of every `ServerEvent` case, wrapped as the engine would.
    static let events: [Message] = [
        Message(
            rid: "r1",
            event: .welcome(
                Welcome(
                    you: SelfView(id: ParticipantID(1), role: .facilitator, alias: "Dr. K", placement: .room),
                    resumeSecret: "s3cr3t-abc", seq: 17, room: staffSnapshot, waiting: nil))),
        Message(
            event: .welcome(
                Welcome(
                    you: SelfView(id: ParticipantID(7), role: .guest, alias: "Alias 7", placement: .waiting),
                    resumeSecret: "s3cr3t-def", seq: 0, room: nil, waiting: waitingStatus))),
        Message(
            rid: "r2",
            event: .resumed(
                Resumed(
                    you: SelfView(id: ParticipantID(2), role: .participant, alias: "Alias 2", placement: .room),
                    resumeSecret: "s3cr3t-ghi", seq: 99, gap: true, room: memberSnapshot, waiting: nil, replayed: 0))),
        Message(
            event: .resumed(
                Resumed(
                    you: SelfView(id: ParticipantID(7), role: .guest, alias: "Alias 7", placement: .waiting),
                    resumeSecret: "s3cr3t-jkl", seq: 99, gap: false, room: nil, waiting: waitingStatus, replayed: 3))),
        Message(rid: "r3", event: .resumed(resumedInABreakout)),
        Message(seq: 18, event: .admitted(memberSnapshot)),
        Message(seq: 19, event: .snapshot(staffSnapshot)),
        Message(seq: 20, event: .waiting(waitingStatus)),
        Message(
            seq: 21,
            event: .waiting(
                WaitingStatus(
                    reason: .sentBack, consentVersion: nil, consentAcknowledged: true, locationRequired: false,
                    locationGiven: false))),
        Message(seq: 22, event: .memberJoined(member(3))),
        Message(seq: 23, event: .memberJoined(member(3, staffView: true))),
        Message(seq: 24, event: .memberUpdated(member(4, .observer))),
        Message(seq: 25, event: .memberLeft(ParticipantID(3), reason: .facilitatorAway)),
        Message(seq: 26, event: .waitingUpdated(waitingView)),
        Message(seq: 27, event: .waitingLeft(ParticipantID(7), reason: .sentBack)),
        Message(seq: 28, event: .roomUpdated(state)),
        Message(seq: 40, event: .chat(chatRoom)),
        Message(seq: 41, event: .chat(chatPrivate)),
        Message(seq: 42, event: .chatDeleted(MessageID(12))),
        Message(event: .signal(from: ParticipantID(2), kind: .offer, payload: signalPayload)),
        Message(seq: 43, event: .waitingRoomMessage(text: "We start in 5 minutes.", at: t0 + 10)),
        Message(seq: 44, event: .unmuteRequested(audio: true, video: false)),
        Message(seq: 45, event: .helpRequested(HelpRequest(id: ParticipantID(2), at: t0 + 11))),
        Message(seq: 46, event: .helpAcknowledged(ParticipantID(2), by: ParticipantID(1))),
        Message(event: .denied(reason: "Not on today's list")),
        Message(event: .denied(reason: nil)),
        Message(event: .removed(reason: nil, banned: true)),
        Message(seq: 47, event: .ended(at: t0 + 3_600_000)),
        Message(seq: 48, event: .moved(breakout: breakoutRef, room: memberBreakoutSnapshot)),
        Message(seq: 49, event: .moved(breakout: pullAsideRef, room: staffBreakoutSnapshot)),
        Message(seq: 50, event: .moved(breakout: nil, room: memberSnapshot)),
        Message(seq: 51, event: .breakoutsUpdated(breakoutsOpen)),
        Message(seq: 52, event: .breakoutsUpdated(breakoutsPlanned)),
        Message(seq: 53, event: .breakoutsUpdated(noBreakouts)),
        Message(seq: 54, event: .breakoutsEnding(endsAt: Instant(milliseconds: 1_700_000_600_000))),
        Message(
            seq: 55,
            event: .breakoutBroadcast(from: ParticipantID(1), fromAlias: "Dr. K", text: "Two minutes left", at: t0 + 13)
        ),
        Message(seq: 56, event: .memberLeft(ParticipantID(3), reason: .moved)),
        Message(seq: 57, event: .memberUpdated(member(3, inBreakout: 2))),
        Message(seq: 58, event: .chat(chatInBreakout)),
        Message(seq: 59, event: .snapshot(staffBreakoutSnapshot)),
        Message(rid: "c-1", event: .ack(Ack())),
        Message(rid: "c-2", event: .ack(Ack(message: MessageID(13), seq: 41))),
        Message(rid: "c-3", event: .ack(Ack(admitted: [ParticipantID(7), ParticipantID(8)]))),
        Message(rid: "c-5", event: .ack(Ack(breakout: BreakoutID(3)))),
        Message(rid: "c-4", event: .error(.forbidden)),
        Message(event: .error(.internalError)),
    ]

    /// Index of each case: fails to compile when ServerEvent gains a case, so `events` stays complete.
    static func caseIndex(_ event: ServerEvent) -> Int {
        switch event {
        case .welcome: return 0
        case .resumed: return 1
        case .admitted: return 2
        case .snapshot: return 3
        case .waiting: return 4
        case .memberJoined: return 5
        case .memberUpdated: return 6
        case .memberLeft: return 7
        case .waitingUpdated: return 8
        case .waitingLeft: return 9
        case .roomUpdated: return 10
        case .chat: return 11
        case .chatDeleted: return 12
        case .signal: return 13
        case .waitingRoomMessage: return 14
        case .unmuteRequested: return 15
        case .helpRequested: return 16
        case .helpAcknowledged: return 17
        case .denied: return 18
        case .removed: return 19
        case .ended: return 20
        case .ack: return 21
        case .error: return 22
        case .moved: return 23
        case .breakoutsUpdated: return 24
        case .breakoutsEnding: return 25
        case .breakoutBroadcast: return 26
        }
    }
    static let caseCount = 27

    /// Every ServerEvent `type` string (from the samples, checked complete by `caseIndex`).
    static var eventTypes: [String] {
        var seen: [String] = []
        for message in events where !seen.contains(message.event.type) { seen.append(message.event.type) }
        return seen
    }

    static let iceServers = [
        ICEServer(urls: ["stun:stun.example.org:3478"]),
        ICEServer(
            urls: ["turns:turn.example.org:5349?transport=tcp", "turn:turn.example.org:3478"],
            username: "1700000000:p1", credential: "b64cred=="),
    ]

    /// Every command, as the wire would carry it, with the command the decoder must produce.
    static let commands: [(json: String, command: ClientCommand)] = [
        (#"{"type":"media","audio":true}"#, .setMedia(audio: true, video: nil)),
        (#"{"type":"media","audio":false,"video":true}"#, .setMedia(audio: false, video: true)),
        (#"{"type":"media"}"#, .setMedia(audio: nil, video: nil)),
        (#"{"type":"raise-hand"}"#, .raiseHand),
        (#"{"type":"lower-hand"}"#, .lowerHand(nil)),
        (#"{"type":"lower-hand","member":null}"#, .lowerHand(nil)),
        (#"{"type":"lower-hand","member":"p3"}"#, .lowerHand(ParticipantID(3))),
        (#"{"type":"chat","to":"room","text":"hi"}"#, .chat(to: .room, text: "hi")),
        (#"{"type":"chat","to":"staff","text":"I'm struggling"}"#, .chat(to: .staff, text: "I'm struggling")),
        (#"{"type":"chat","to":"p12","text":"é ✓"}"#, .chat(to: .member(ParticipantID(12)), text: "é ✓")),
        (
            #"{"type":"signal","to":"p2","kind":"offer","payload":{"type":"offer","sdp":"v=0\r\n"}}"#,
            .signal(to: ParticipantID(2), kind: .offer, payload: #"{"type":"offer","sdp":"v=0\r\n"}"#)
        ),
        (
            #"{"type":"signal","to":"p2","kind":"answer","payload": { "sdp" : "x" } }"#,
            .signal(to: ParticipantID(2), kind: .answer, payload: #"{"sdp":"x"}"#)
        ),
        (
            #"{"type":"signal","to":"p0","kind":"ice","payload":null}"#,
            .signal(to: ParticipantID(0), kind: .ice, payload: "null")
        ),
        (#"{"type":"help"}"#, .requestHelp),
        (#"{"type":"consent","version":"2024-01"}"#, .acknowledgeConsent(version: "2024-01")),
        (#"{"type":"location","text":"Home"}"#, .setLocation("Home")),
        (#"{"type":"leave"}"#, .leave),
        (#"{"type":"admit","member":"p7"}"#, .admit(ParticipantID(7))),
        (#"{"type":"admit-all"}"#, .admitAll),
        (#"{"type":"deny","member":"p7"}"#, .deny(ParticipantID(7), reason: nil)),
        (#"{"type":"deny","member":"p7","reason":"not today"}"#, .deny(ParticipantID(7), reason: "not today")),
        (#"{"type":"send-back","member":"p4"}"#, .sendBack(ParticipantID(4))),
        (#"{"type":"message-waiting-room","text":"5 min"}"#, .messageWaitingRoom("5 min")),
        (#"{"type":"mute","member":"p4"}"#, .mute(ParticipantID(4), audio: true, video: false)),
        (
            #"{"type":"mute","member":"p4","audio":false,"video":true}"#,
            .mute(ParticipantID(4), audio: false, video: true)
        ),
        (#"{"type":"mute-all"}"#, .muteAll(video: false)),
        (#"{"type":"mute-all","video":true}"#, .muteAll(video: true)),
        (#"{"type":"ask-unmute","member":"p4"}"#, .askUnmute(ParticipantID(4), audio: true, video: false)),
        (#"{"type":"ask-unmute","member":"p4","video":true}"#, .askUnmute(ParticipantID(4), audio: true, video: true)),
        (#"{"type":"remove","member":"p4"}"#, .remove(ParticipantID(4), ban: false, reason: nil)),
        (
            #"{"type":"remove","member":"p4","ban":true,"reason":"abuse"}"#,
            .remove(ParticipantID(4), ban: true, reason: "abuse")
        ),
        (#"{"type":"set-role","member":"p4","role":"cofacilitator"}"#, .setRole(ParticipantID(4), .cofacilitator)),
        (
            #"{"type":"grant","member":"p9","media":true,"chat":false}"#,
            .grant(ParticipantID(9), media: true, chat: false)
        ),
        (#"{"type":"spotlight","member":"p3"}"#, .spotlight(ParticipantID(3))),
        (#"{"type":"spotlight","member":null}"#, .spotlight(nil)),
        (#"{"type":"lower-all-hands"}"#, .lowerAllHands),
        (#"{"type":"delete-chat","message":"m5"}"#, .deleteChat(MessageID(5))),
        (#"{"type":"lock"}"#, .setLocked(true)),
        (#"{"type":"unlock"}"#, .setLocked(false)),
        (#"{"type":"settings","chatPolicy":"staff-only"}"#, .updateSettings(SettingsChange(chatPolicy: .staffOnly))),
        (
            #"{"type":"settings","chatPolicy":"off","privateMessages":true,"selfUnmute":false,"waitingRoom":false}"#,
            .updateSettings(
                SettingsChange(chatPolicy: .off, privateMessages: true, selfUnmute: false, waitingRoom: false))
        ),
        (#"{"type":"acknowledge-help","member":"p2"}"#, .acknowledgeHelp(ParticipantID(2))),
        (#"{"type":"end"}"#, .end),
        (
            #"{"type":"breakouts-plan","breakouts":[{"name":"Pair 1","members":["p2","p3"]},{"name":"Pair 2"}],"automatic":true}"#,
            .planBreakouts(
                [
                    BreakoutPlanEntry(name: "Pair 1", members: [ParticipantID(2), ParticipantID(3)]),
                    BreakoutPlanEntry(name: "Pair 2"),
                ], automatic: true)
        ),
        (
            #"{"type":"breakouts-plan","breakouts":[{"name":"Triad ✓","members":[]}],"automatic":false}"#,
            .planBreakouts([BreakoutPlanEntry(name: "Triad ✓")], automatic: false)
        ),
        (
            #"{"type":"breakouts-plan","breakouts":[{"name":"A","members":null,"note":1}],"automatic":null}"#,
            .planBreakouts([BreakoutPlanEntry(name: "A")], automatic: false)
        ),
        (#"{"type":"breakouts-plan","breakouts":[]}"#, .planBreakouts([], automatic: false)),
        (
            #"{"type":"breakouts-open","durationSeconds":600,"warningSeconds":60}"#,
            .openBreakouts(durationSeconds: 600, warningSeconds: 60)
        ),
        (#"{"type":"breakouts-open"}"#, .openBreakouts(durationSeconds: nil, warningSeconds: nil)),
        (
            #"{"type":"breakouts-open","durationSeconds":null,"warningSeconds":0}"#,
            .openBreakouts(durationSeconds: nil, warningSeconds: 0)
        ),
        (
            // Out of range, but integers: the engine refuses them (invalid-argument), not the wire.
            #"{"type":"breakouts-open","durationSeconds":-5,"warningSeconds":99999}"#,
            .openBreakouts(durationSeconds: -5, warningSeconds: 99999)
        ),
        (#"{"type":"breakouts-close"}"#, .closeBreakouts),
        (#"{"type":"breakout-close","breakout":"b2"}"#, .closeBreakout(BreakoutID(2))),
        (#"{"type":"breakout-close","breakout":"b4294967295"}"#, .closeBreakout(BreakoutID(UInt32.max))),
        (#"{"type":"breakout-move","member":"p4","breakout":"b1"}"#, .moveToBreakout(ParticipantID(4), BreakoutID(1))),
        (#"{"type":"breakout-move","member":"p4","breakout":null}"#, .moveToBreakout(ParticipantID(4), nil)),
        (#"{"type":"breakout-visit","breakout":"b0"}"#, .visitBreakout(BreakoutID(0))),
        (#"{"type":"breakout-visit","breakout":null}"#, .visitBreakout(nil)),
        (#"{"type":"breakout-broadcast","text":"Two minutes left"}"#, .broadcastToBreakouts("Two minutes left")),
        (#"{"type":"pull-aside","member":"p4"}"#, .pullAside(ParticipantID(4))),
    ]

    /// Index of each command case: fails to compile when ClientCommand gains a case.
    static func commandIndex(_ command: ClientCommand) -> Int {
        switch command {
        case .setMedia: return 0
        case .raiseHand: return 1
        case .lowerHand: return 2
        case .chat: return 3
        case .signal: return 4
        case .requestHelp: return 5
        case .acknowledgeConsent: return 6
        case .setLocation: return 7
        case .leave: return 8
        case .admit: return 9
        case .admitAll: return 10
        case .deny: return 11
        case .sendBack: return 12
        case .messageWaitingRoom: return 13
        case .mute: return 14
        case .muteAll: return 15
        case .askUnmute: return 16
        case .remove: return 17
        case .setRole: return 18
        case .grant: return 19
        case .spotlight: return 20
        case .lowerAllHands: return 21
        case .deleteChat: return 22
        case .setLocked: return 23
        case .updateSettings: return 24
        case .acknowledgeHelp: return 25
        case .end: return 26
        case .planBreakouts: return 27
        case .openBreakouts: return 28
        case .closeBreakouts: return 29
        case .closeBreakout: return 30
        case .moveToBreakout: return 31
        case .visitBreakout: return 32
        case .broadcastToBreakouts: return 33
        case .pullAside: return 34
        }
    }
    static let commandCaseCount = 35

    /// Every command name (`lock` and `unlock` both), from the table above.
    static var commandNames: [String] {
        var seen: [String] = []
        for (_, command) in commands where !seen.contains(command.name) { seen.append(command.name) }
        return seen
    }
}
