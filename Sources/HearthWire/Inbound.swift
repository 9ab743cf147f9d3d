import HearthCore

/// One decoded client message.
public enum Inbound: Equatable, Sendable {
    /// The first message of a new connection: a join token.
    case hello(token: String, rid: String?)
    /// The first message of a reconnecting connection: the seat's resume secret and the
    /// last `seq` the client processed.
    case resume(secret: String, lastSeq: UInt64, rid: String?)
    /// A fresh join token for a connection that has joined: re-authenticates it in place.
    case refresh(token: String, rid: String?)
    /// A liveness check the shell answers with `pong`.
    case ping(rid: String?)
    /// A command for the room engine.
    case command(ClientCommand, rid: String?)
    /// SFU mode: a message for the media broker, not the engine (docs/protocol.md §11).
    case sfu(SFUClientMessage, rid: String?)

    /// The request id to echo in the reply, if the client sent one.
    public var rid: String? {
        switch self {
        case .hello(_, let rid), .refresh(_, let rid), .resume(_, _, let rid), .ping(let rid), .command(_, let rid),
            .sfu(_, let rid):
            return rid
        }
    }
}

/// Why a client message was refused before it reached the engine. `rid` is the request id
/// when it could still be read, so the error reply can echo it.
public struct WireError: Error, Hashable {
    public var code: ErrorCode
    public var rid: String?

    public init(_ code: ErrorCode, rid: String? = nil) {
        self.code = code
        self.rid = rid
    }
}

/// Which of a member's two connections to the SFU.
public enum SFUPeer: String, Hashable, Sendable {
    /// The connection that sends the member's camera and microphone.
    case publish
    /// The connection that receives the others' media.
    case subscribe
}

/// A local ICE candidate as the browser gives it (`RTCIceCandidate.toJSON()`).
public struct SFUCandidate: Hashable, Sendable {
    public var candidate: String
    public var sdpMid: String?
    public var sdpMLineIndex: Int?

    public init(candidate: String, sdpMid: String?, sdpMLineIndex: Int?) {
        self.candidate = candidate
        self.sdpMid = sdpMid
        self.sdpMLineIndex = sdpMLineIndex
    }
}

/// The client's side of the SFU exchange: every message names its media session.
public enum SFUClientMessage: Hashable, Sendable {
    /// The publishing connection's offer.
    case publish(session: UInt64, sdp: String)
    /// The subscribing connection's answer to the last `sfu-offer`.
    case subscribe(session: UInt64, sdp: String)
    /// A local candidate (nil: end of candidates).
    case candidate(session: UInt64, peer: SFUPeer, SFUCandidate?)

    public var session: UInt64 {
        switch self {
        case .publish(let session, _), .subscribe(let session, _), .candidate(let session, _, _): return session
        }
    }

    /// Its `type` on the wire.
    public var type: String {
        switch self {
        case .publish: return "sfu-publish"
        case .subscribe: return "sfu-subscribe"
        case .candidate: return "sfu-candidate"
        }
    }
}
