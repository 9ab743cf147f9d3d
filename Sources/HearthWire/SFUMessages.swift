import CJansson
import HearthCore

/// One stream of a subscription offer: its transceiver `mid`, the member it comes from, its kind.
public struct SFUStream: Hashable, Sendable {
    public var mid: String
    public var member: ParticipantID
    public var kind: MediaKind

    public init(mid: String, member: ParticipantID, kind: MediaKind) {
        self.mid = mid
        self.member = member
        self.kind = kind
    }
}

/// What the media broker tells one client in SFU mode (docs/protocol.md §11). None of these
/// carries a `seq`: like `signal`, they are never logged or replayed.
public enum SFUServerMessage: Hashable, Sendable {
    /// A new media session: close the old connections; publish if `publish`.
    case session(UInt64, publish: Bool)
    /// The media server's answer to the client's publish offer.
    case answer(session: UInt64, sdp: String)
    /// An offer for the client's subscribing connection, with the member behind each stream.
    case offer(session: UInt64, sdp: String, streams: [SFUStream])
    /// The media session ended without a new one: the media server is unreachable.
    case closedUnavailable

    public var type: String {
        switch self {
        case .session: return "sfu-session"
        case .answer: return "sfu-answer"
        case .offer: return "sfu-offer"
        case .closedUnavailable: return "sfu-closed"
        }
    }
}

extension WireEncoder {
    /// One SFU message as a text frame.
    public static func encode(_ message: SFUServerMessage) -> [UInt8] {
        let root = ObjectBuilder()
        defer { cj_decref(root.object) }
        root.set("type", string: message.type)
        switch message {
        case .session(let session, let publish):
            root.set("session", integer: session)
            root.set("publish", bool: publish)
        case .answer(let session, let sdp):
            root.set("session", integer: session)
            root.set("sdp", string: sdp)
        case .offer(let session, let sdp, let streams):
            root.set("session", integer: session)
            root.set("sdp", string: sdp)
            let list = json_array()
            for stream in streams {
                let o = ObjectBuilder()
                o.set("mid", string: stream.mid)
                o.set("member", JSON.id(stream.member))
                o.set("kind", string: stream.kind.rawValue)
                json_array_append_new(list, o.object)
            }
            root.set("streams", list)
        case .closedUnavailable:
            root.set("reason", string: "unavailable")
        }
        var out: [UInt8] = []
        JSON.dump(root.object, flags: cj_compact_flags(), appendingTo: &out)
        return out
    }
}
