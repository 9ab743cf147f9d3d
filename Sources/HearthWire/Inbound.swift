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

    /// The request id to echo in the reply, if the client sent one.
    public var rid: String? {
        switch self {
        case .hello(_, let rid), .refresh(_, let rid), .resume(_, _, let rid), .ping(let rid), .command(_, let rid):
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
