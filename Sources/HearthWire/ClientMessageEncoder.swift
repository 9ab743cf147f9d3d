import CJansson
import HearthCore

/// Encodes client messages (`Inbound`) as compact JSON objects: the inverse of ``WireDecoder``,
/// for clients written in Swift (the load generator `hearth-loadgen`) and for tests.
///
/// `WireDecoder.decode(ClientMessageEncoder.encode(m))` gives `m` back for every message (a
/// test checks each command). Keys come in the order the protocol documents them: `type`,
/// `rid`, then the command's fields. Optional fields that are nil are left out; a signal's
/// payload (compact JSON text) is embedded as the JSON value it is.
public enum ClientMessageEncoder {
    public static func encode(_ message: Inbound) -> [UInt8] {
        var out: [UInt8] = []
        encode(message, appendingTo: &out)
        return out
    }

    /// Appends the encoded message to `out`: lets a client reserve its frame headroom (e.g.
    /// `LWS_PRE` bytes) in front without another copy.
    public static func encode(_ message: Inbound, appendingTo out: inout [UInt8]) {
        let root = ObjectBuilder()
        defer { cj_decref(root.object) }
        switch message {
        case .hello(let token, let rid):
            envelope(root, "hello", rid)
            root.set("token", string: token)
        case .refresh(let token, let rid):
            envelope(root, "refresh", rid)
            root.set("token", string: token)
        case .resume(let secret, let lastSeq, let rid):
            envelope(root, "resume", rid)
            root.set("secret", string: secret)
            root.set("lastSeq", integer: lastSeq)
        case .ping(let rid):
            envelope(root, "ping", rid)
        case .command(let command, let rid):
            envelope(root, command.name, rid)
            fields(of: command, into: root)
        case .sfu(let sfu, let rid):
            envelope(root, sfu.type, rid)
            root.set("session", integer: sfu.session)
            switch sfu {
            case .publish(_, let sdp), .subscribe(_, let sdp):
                root.set("sdp", string: sdp)
            case .candidate(_, let peer, let candidate):
                root.set("pc", string: peer.rawValue)
                if let candidate {
                    let c = ObjectBuilder()
                    c.set("candidate", string: candidate.candidate)
                    c.set("sdpMid", optionalString: candidate.sdpMid)
                    if let index = candidate.sdpMLineIndex { c.set("sdpMLineIndex", integer: index) }
                    root.set("candidate", c.object)
                } else {
                    root.set("candidate", cj_null())
                }
            }
        }
        out.reserveCapacity(out.count + 128)
        JSON.dump(root.object, flags: cj_compact_flags(), appendingTo: &out)
    }

    private static func envelope(_ o: ObjectBuilder, _ type: String, _ rid: String?) {
        o.set("type", string: type)
        o.set("rid", optionalString: rid)
    }

    static func fields(of command: ClientCommand, into o: ObjectBuilder) {
        switch command {
        case .setMedia(let audio, let video):
            if let audio { o.set("audio", bool: audio) }
            if let video { o.set("video", bool: video) }
        case .raiseHand, .requestHelp, .leave, .admitAll, .lowerAllHands, .setLocked, .end, .closeBreakouts:
            break
        case .lowerHand(let member):
            if let member { o.set("member", JSON.id(member)) }
        case .chat(let to, let text):
            switch to {
            case .room: o.set("to", string: "room")
            case .staff: o.set("to", string: "staff")
            case .member(let id): o.set("to", JSON.id(id))
            }
            o.set("text", string: text)
        case .signal(let to, let kind, let payload):
            o.set("to", JSON.id(to))
            o.set("kind", string: kind.rawValue)
            o.set("payload", WireEncoder.embedded(payload))
        case .acknowledgeConsent(let version):
            o.set("version", string: version)
        case .setLocation(let text), .messageWaitingRoom(let text), .broadcastToBreakouts(let text):
            o.set("text", string: text)
        case .admit(let member), .sendBack(let member), .acknowledgeHelp(let member), .pullAside(let member):
            o.set("member", JSON.id(member))
        case .deny(let member, let reason):
            o.set("member", JSON.id(member))
            o.set("reason", optionalString: reason)
        case .mute(let member, let audio, let video), .askUnmute(let member, let audio, let video):
            o.set("member", JSON.id(member))
            o.set("audio", bool: audio)
            o.set("video", bool: video)
        case .muteAll(let video):
            if video { o.set("video", bool: true) }
        case .remove(let member, let ban, let reason):
            o.set("member", JSON.id(member))
            if ban { o.set("ban", bool: true) }
            o.set("reason", optionalString: reason)
        case .setRole(let member, let role):
            o.set("member", JSON.id(member))
            o.set("role", string: role.rawValue)
        case .grant(let member, let media, let chat):
            o.set("member", JSON.id(member))
            o.set("media", bool: media)
            o.set("chat", bool: chat)
        case .spotlight(let member):
            // `null` clears the spotlight: the key is required either way.
            o.set("member", member.flatMap { JSON.id($0) } ?? cj_null())
        case .deleteChat(let message):
            o.set("message", JSON.id(message))
        case .updateSettings(let change):
            if let policy = change.chatPolicy { o.set("chatPolicy", string: policy.rawValue) }
            if let value = change.privateMessages { o.set("privateMessages", bool: value) }
            if let value = change.selfUnmute { o.set("selfUnmute", bool: value) }
            if let value = change.waitingRoom { o.set("waitingRoom", bool: value) }
        case .planBreakouts(let entries, let automatic):
            o.set(
                "breakouts",
                WireEncoder.array(entries) { entry in
                    let e = ObjectBuilder()
                    e.set("name", string: entry.name)
                    e.set("members", WireEncoder.ids(entry.members))
                    return e.object
                })
            if automatic { o.set("automatic", bool: true) }
        case .openBreakouts(let duration, let warning):
            if let duration { o.set("durationSeconds", integer: duration) }
            if let warning { o.set("warningSeconds", integer: warning) }
        case .closeBreakout(let breakout):
            o.set("breakout", JSON.id(breakout))
        case .moveToBreakout(let member, let breakout):
            o.set("member", JSON.id(member))
            o.set("breakout", breakout.flatMap { JSON.id($0) } ?? cj_null())
        case .visitBreakout(let breakout):
            o.set("breakout", breakout.flatMap { JSON.id($0) } ?? cj_null())
        }
    }
}
