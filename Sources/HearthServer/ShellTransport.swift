import HearthTransport

/// What the shell asks of the transport. `RoomHost` talks to this protocol rather than to
/// the concrete `Transport`, so unit tests can drive it with a fake one.
protocol ShellTransport: AnyObject {
    func send(_ message: OutboundMessage, to session: SessionID)
    func send(_ message: OutboundMessage, toEach sessions: [SessionID])
    func close(_ session: SessionID, code: UInt16, reason: String)
    func queuedBytes(_ session: SessionID) -> Int?
    func queuedMessages(_ session: SessionID) -> Int?
    var openSessionCount: Int { get }
    var counters: TransportCounters { get }
    /// Another loop iteration at once, instead of waiting for I/O (work is waiting).
    func requestIteration()
}

extension Transport: ShellTransport {
    func send(_ message: OutboundMessage, toEach sessions: [SessionID]) { send(message, to: sessions) }
}
