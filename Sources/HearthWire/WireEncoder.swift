import CJansson
import HearthCore

/// A STUN or TURN server for the client's `RTCPeerConnection`, sent in `welcome` and `resumed`.
public struct ICEServer: Sendable, Hashable {
    public var urls: [String]
    public var username: String?
    public var credential: String?

    public init(urls: [String], username: String? = nil, credential: String? = nil) {
        self.urls = urls
        self.username = username
        self.credential = credential
    }
}

/// Encodes server messages as compact JSON objects, one per call, with no trailing newline
/// (the transport joins several messages in one frame with `\n`).
///
/// Each message is encoded once, whatever the number of recipients, so the cost is one
/// jansson tree and one serialisation, copied once into the output array (`JSON.dump`; no C
/// string). Sanity figure, not a benchmark: a room `chat` event (187 bytes) takes 33 jansson
/// allocations, all released before returning; keys are static literals, ids are formatted
/// on the stack. A signal payload is parsed back once to embed it as JSON. The encoder writes
/// exactly what the engine put in the event: it never adds data (the engine decides who
/// sees staff-only fields such as `userId` and `location`).
public enum WireEncoder {
    public static func encode(_ message: Message, iceServers: [ICEServer] = []) -> [UInt8] {
        var out: [UInt8] = []
        encode(message, iceServers: iceServers, appendingTo: &out)
        return out
    }

    /// Appends the encoded message to `out`: lets the transport reserve its frame headroom
    /// (e.g. `LWS_PRE` bytes) in front, or join several messages, without another copy.
    public static func encode(_ message: Message, iceServers: [ICEServer] = [], appendingTo out: inout [UInt8]) {
        let root = ObjectBuilder()
        defer { cj_decref(root.object) }
        root.set("type", string: message.event.type)
        if let seq = message.seq { root.set("seq", integer: seq) }
        root.set("rid", optionalString: message.rid)
        fields(of: message.event, iceServers: iceServers, into: root)
        out.reserveCapacity(out.count + 256)
        JSON.dump(root.object, flags: cj_compact_flags(), appendingTo: &out)
    }

    /// `{"type":"error","rid":…,"code":…,"message":…}`: for replies the shell makes itself.
    public static func encodeError(_ code: ErrorCode, rid: String?) -> [UInt8] {
        encode(Message(rid: rid, event: .error(code)))
    }

    /// `{"type":"pong","rid":…}`: the reply to `ping`.
    public static func encodePong(rid: String?) -> [UInt8] {
        let root = ObjectBuilder()
        defer { cj_decref(root.object) }
        root.set("type", string: "pong")
        root.set("rid", optionalString: rid)
        var out: [UInt8] = []
        JSON.dump(root.object, flags: cj_compact_flags(), appendingTo: &out)
        return out
    }

    // MARK: Events

    static func fields(of event: ServerEvent, iceServers: [ICEServer], into o: ObjectBuilder) {
        switch event {
        case .welcome(let welcome):
            o.set("you", selfView(welcome.you))
            o.set("resumeSecret", string: welcome.resumeSecret)
            o.set("lastSeq", integer: welcome.seq)
            if let room = welcome.room { o.set("room", snapshot(room)) }
            if let waiting = welcome.waiting { o.set("waiting", waitingStatus(waiting)) }
            o.set("iceServers", ice(iceServers))
        case .resumed(let resumed):
            o.set("you", selfView(resumed.you))
            o.set("resumeSecret", string: resumed.resumeSecret)
            o.set("lastSeq", integer: resumed.seq)
            o.set("gap", bool: resumed.gap)
            o.set("replayed", integer: resumed.replayed)
            if let room = resumed.room { o.set("room", snapshot(room)) }
            if let waiting = resumed.waiting { o.set("waiting", waitingStatus(waiting)) }
            o.set("iceServers", ice(iceServers))
        case .admitted(let room), .snapshot(let room):
            o.set("room", snapshot(room))
        case .waiting(let status):
            o.set("status", waitingStatus(status))
        case .memberJoined(let member), .memberUpdated(let member):
            o.set("member", memberView(member))
        case .memberLeft(let id, let reason), .waitingLeft(let id, let reason):
            o.set("member", JSON.id(id))
            o.set("reason", string: reason.rawValue)
        case .waitingUpdated(let waiting):
            o.set("member", waitingView(waiting))
        case .roomUpdated(let state):
            o.set("state", roomState(state))
        case .chat(let message):
            o.set("message", chatMessage(message))
        case .chatDeleted(let id):
            o.set("message", JSON.id(id))
        case .signal(let from, let kind, let payload):
            o.set("from", JSON.id(from))
            o.set("kind", string: kind.rawValue)
            o.set("payload", embedded(payload))
        case .waitingRoomMessage(let text, let at):
            o.set("text", string: text)
            o.set("at", integer: at.milliseconds)
        case .unmuteRequested(let audio, let video):
            o.set("audio", bool: audio)
            o.set("video", bool: video)
        case .helpRequested(let request):
            o.set("member", JSON.id(request.id))
            o.set("at", integer: request.at.milliseconds)
        case .helpAcknowledged(let id, let by):
            o.set("member", JSON.id(id))
            o.set("by", JSON.id(by))
        case .denied(let reason):
            o.set("reason", optionalString: reason)
        case .removed(let reason, let banned):
            o.set("reason", optionalString: reason)
            o.set("banned", bool: banned)
        case .ended(let at):
            o.set("at", integer: at.milliseconds)
        case .moved(let breakout, let room):
            o.set("breakout", breakout.map(breakoutRef) ?? cj_null())
            o.set("room", snapshot(room))
        case .breakoutsUpdated(let view):
            o.set("breakouts", breakoutsView(view))
        case .breakoutsEnding(let endsAt):
            o.set("endsAt", integer: endsAt.milliseconds)
        case .breakoutBroadcast(let from, let fromAlias, let text, let at):
            o.set("from", JSON.id(from))
            o.set("fromAlias", string: fromAlias)
            o.set("text", string: text)
            o.set("at", integer: at.milliseconds)
        case .ack(let ack):
            if let id = ack.message { o.set("message", JSON.id(id)) }
            if let id = ack.breakout { o.set("breakout", JSON.id(id)) }
            // Not `seq`: that key is the envelope's, and an ack is not a logged event.
            if let seq = ack.seq { o.set("messageSeq", integer: seq) }
            if let admitted = ack.admitted { o.set("admitted", ids(admitted)) }
        case .error(let code):
            o.set("code", string: code.rawValue)
            o.set("message", string: code.message)
        }
    }

    /// The relayed signalling payload as the JSON value it was (the decoder produced the
    /// text with `json_dumps`, so it parses; anything else is sent as `null`).
    static func embedded(_ payload: String) -> JSONPointer? {
        var payload = payload
        let value = payload.withUTF8 { utf8 -> JSONPointer? in
            guard let base = utf8.baseAddress else { return nil }
            return json_loadb(
                UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self), utf8.count, cj_any_decode_flags(), nil)
        }
        return value ?? cj_null()
    }

    // MARK: Views

    static func selfView(_ view: SelfView) -> JSONPointer {
        let o = ObjectBuilder()
        o.set("id", JSON.id(view.id))
        o.set("role", string: view.role.rawValue)
        o.set("alias", string: view.alias)
        o.set("placement", string: view.placement.rawValue)
        if let breakout = view.breakout { o.set("breakout", JSON.id(breakout)) }
        return o.object
    }

    static func memberView(_ view: MemberView) -> JSONPointer {
        let o = ObjectBuilder()
        o.set("id", JSON.id(view.id))
        o.set("alias", string: view.alias)
        o.set("role", string: view.role.rawValue)
        o.set("audio", bool: view.audio)
        o.set("video", bool: view.video)
        if let at = view.handRaisedAt { o.set("handRaisedAt", integer: at.milliseconds) }
        o.set("connected", bool: view.connected)
        o.set("mediaGranted", bool: view.mediaGranted)
        o.set("chatGranted", bool: view.chatGranted)
        if let user = view.userID { o.set("userId", string: user.rawValue) }
        o.set("location", optionalString: view.location)
        o.set("consentVersion", optionalString: view.consentVersion)
        if let breakout = view.breakout { o.set("breakout", JSON.id(breakout)) }
        return o.object
    }

    static func waitingView(_ view: WaitingView) -> JSONPointer {
        let o = ObjectBuilder()
        o.set("id", JSON.id(view.id))
        o.set("alias", string: view.alias)
        o.set("role", string: view.role.rawValue)
        o.set("userId", string: view.userID.rawValue)
        o.set("since", integer: view.since.milliseconds)
        o.set("consentVersion", optionalString: view.consentVersion)
        o.set("location", optionalString: view.location)
        o.set("connected", bool: view.connected)
        o.set("ready", bool: view.ready)
        return o.object
    }

    static func waitingStatus(_ status: WaitingStatus) -> JSONPointer {
        let o = ObjectBuilder()
        o.set("reason", string: status.reason.rawValue)
        o.set("consentVersion", optionalString: status.consentVersion)
        o.set("consentText", optionalString: status.consentText)
        o.set("consentAcknowledged", bool: status.consentAcknowledged)
        if let opensAt = status.opensAt { o.set("opensAt", integer: opensAt.milliseconds) }
        o.set("locationRequired", bool: status.locationRequired)
        o.set("locationGiven", bool: status.locationGiven)
        return o.object
    }

    static func roomState(_ state: RoomStateView) -> JSONPointer {
        let o = ObjectBuilder()
        o.set("locked", bool: state.locked)
        o.set("staffPresent", bool: state.staffPresent)
        if let spotlight = state.spotlight { o.set("spotlight", JSON.id(spotlight)) }
        o.set("chatPolicy", string: state.chatPolicy.rawValue)
        o.set("privateMessages", bool: state.privateMessages)
        o.set("selfUnmute", bool: state.selfUnmute)
        o.set("waitingRoom", bool: state.waitingRoom)
        o.set("capacity", integer: state.capacity)
        o.set("media", string: state.media.rawValue)
        return o.object
    }

    static func chatMessage(_ message: ChatMessage) -> JSONPointer {
        let o = ObjectBuilder()
        o.set("id", JSON.id(message.id))
        o.set("seq", integer: message.seq)
        o.set("from", JSON.id(message.from))
        o.set("fromAlias", string: message.fromAlias)
        switch message.to {
        case .room: o.set("to", string: "room")
        case .staff: o.set("to", string: "staff")
        case .member(let id): o.set("to", JSON.id(id))
        }
        o.set("text", optionalString: message.text)
        o.set("deleted", bool: message.deleted)
        o.set("at", integer: message.at.milliseconds)
        if let breakout = message.breakout { o.set("breakout", JSON.id(breakout)) }
        return o.object
    }

    static func breakoutRef(_ ref: BreakoutRef) -> JSONPointer {
        let o = ObjectBuilder()
        o.set("id", JSON.id(ref.id))
        o.set("name", string: ref.name)
        o.set("kind", string: ref.kind.rawValue)
        if let endsAt = ref.endsAt { o.set("endsAt", integer: endsAt.milliseconds) }
        return o.object
    }

    static func breakoutsView(_ view: BreakoutsView) -> JSONPointer {
        func breakout(_ b: BreakoutView) -> JSONPointer {
            let o = ObjectBuilder()
            o.set("id", JSON.id(b.id))
            o.set("name", string: b.name)
            o.set("kind", string: b.kind.rawValue)
            o.set("members", ids(b.members))
            return o.object
        }
        let o = ObjectBuilder()
        o.set("plan", array(view.plan, breakout))
        o.set("open", array(view.open, breakout))
        if let endsAt = view.endsAt { o.set("endsAt", integer: endsAt.milliseconds) }
        return o.object
    }

    static func snapshot(_ snapshot: RoomSnapshot) -> JSONPointer {
        let o = ObjectBuilder()
        o.set("you", memberView(snapshot.you))
        o.set("state", roomState(snapshot.room))
        o.set("members", array(snapshot.members, memberView))
        o.set("chat", array(snapshot.chat, chatMessage))
        if let waiting = snapshot.waiting { o.set("waiting", array(waiting, waitingView)) }
        if let help = snapshot.help {
            o.set(
                "help",
                array(help) { request in
                    let h = ObjectBuilder()
                    h.set("member", JSON.id(request.id))
                    h.set("at", integer: request.at.milliseconds)
                    return h.object
                })
        }
        if let breakout = snapshot.breakout { o.set("breakout", breakoutRef(breakout)) }
        if let breakouts = snapshot.breakouts { o.set("breakouts", breakoutsView(breakouts)) }
        return o.object
    }

    static func ice(_ servers: [ICEServer]) -> JSONPointer {
        array(servers) { server in
            let o = ObjectBuilder()
            o.set("urls", array(server.urls) { JSON.string($0) })
            o.set("username", optionalString: server.username)
            o.set("credential", optionalString: server.credential)
            return o.object
        }
    }

    static func ids(_ ids: [ParticipantID]) -> JSONPointer {
        array(ids) { JSON.id($0) }
    }

    static func array<T>(_ items: [T], _ element: (T) -> JSONPointer?) -> JSONPointer {
        let a = json_array()!
        for item in items {
            if let value = element(item) { json_array_append_new(a, value) }
        }
        return a
    }
}
