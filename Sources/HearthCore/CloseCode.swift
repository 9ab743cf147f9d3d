/// Every WebSocket close code the server sends, whichever layer sends it: the room (through
/// `CloseReason`), the shell around it, the transport, or libwebsockets itself. The one list
/// of codes: docs/protocol.md §8 prints them all, and a test checks that it prints these and
/// no other.
public enum CloseCode: UInt16, CaseIterable, Hashable, Sendable {
    // Sent by libwebsockets itself.
    /// Normal closure: the answer to a client's own close.
    case normal = 1000
    /// A text frame that is not valid UTF-8.
    case invalidUTF8 = 1007

    // The transport.
    /// The server is restarting or shutting down: reconnect and `resume`.
    case serverRestarting = 1001
    /// A binary frame: only text frames are supported.
    case binaryFrame = 1003
    /// A message over the size limit, or in too many fragments.
    case messageTooBig = 1009
    /// The connection's send queue overflowed (a client that does not read fast enough).
    case sendQueueOverflow = 4008

    // The shell.
    /// Policy violation: too many bad messages.
    case tooManyBadMessages = 1008
    /// The server is at capacity, its store is backlogged, one address has too many connections,
    /// or (in a cluster) another node still holds the room.
    case tryAgainLater = 1013
    /// In a cluster: this node no longer serves the room (another node took it over, or this
    /// node's lease lapsed). Reconnect and `resume`: the proxy sends you to the room's node.
    case serviceRestart = 1012
    /// A bad or expired token, a single-use invitation used again, or a failed `resume`.
    case authenticationFailed = 4401
    /// The path is not a room's endpoint.
    case unknownEndpoint = 4404
    /// No `hello` or `resume` in time after connecting.
    case helloTimeout = 4408
    /// Too many messages, or too many failed authentications from the address.
    case rateLimited = 4429

    // The room (see `CloseReason`).
    case ended = 4000
    case left = 4001
    case removed = 4002
    case banned = 4003
    case denied = 4004
    case takenOver = 4005
    case roomLocked = 4006
    case waitingRoomFull = 4007
}
