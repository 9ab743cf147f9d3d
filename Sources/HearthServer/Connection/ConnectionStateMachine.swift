import HearthCore
import HearthWire

/// The life of one WebSocket connection, from open to close, as a pure state machine.
///
/// `RoomHost` feeds it what happens (a message arrived, a token was verified, time passed,
/// the transport closed) and performs the `Action`s it returns, in order; the machine does
/// no I/O, knows no transport and owns no clock (time is an argument). It owns the facts of
/// one connection: its room, when it opened, whether it joined, its bad-message count, its
/// command budget and until when it is authenticated. Token verification, the per-address
/// budgets, the journal and the engine stay with the shell.
struct ConnectionStateMachine {
    enum State: Equatable {
        /// Open; waiting for `hello` or `resume` (closed with 4408 if neither comes in time).
        case awaitingHello
        /// `hello` or `resume` arrived in time; the shell is verifying it, or holds it until the
        /// loop has time for it (`JoinPacer`). No hello timeout; a second one is refused.
        case verifying
        /// Joined a room (hello or resume accepted): its commands go to the engine.
        case joined
        /// The shell asked the transport to close it; further messages are ignored. A joined
        /// connection is still fed to the engine as disconnected when the transport closes.
        case closing(joined: Bool)
        /// Forgotten: nothing more it sends is read, and its end changes no room.
        case closed
    }

    /// What the shell must do, in order.
    enum Action: Equatable {
        case sendError(ErrorCode, rid: String?)
        case sendPong(rid: String?)
        case sendAck(rid: String?)
        /// Verify a `hello` token; answer with `joined(until:)` or one of the refusals.
        case verifyHello(token: String, rid: String?)
        /// Check a `resume` secret; answer with `joined(until:)` or one of the refusals.
        case verifyResume(secret: String, lastSeq: UInt64, rid: String?)
        /// Verify a `refresh` token; answer with `refreshed(until:)` or `refused`.
        case verifyRefresh(token: String, rid: String?)
        /// Journal and apply the command as an engine input.
        case applyCommand(ClientCommand, rid: String?)
        /// Hand an SFU message to the media broker (never journaled).
        case relaySFU(SFUClientMessage, rid: String?)
        /// Journal and apply `disconnected` for this connection.
        case applyDisconnected
        case close(code: UInt16, reason: String)
    }

    /// The limits a connection is held to (from the configuration).
    struct Limits: Equatable {
        /// Bad messages answered before the connection is closed with 1008.
        var maxMalformedMessages = 10
        /// Consecutive rate-limit refusals before the connection is closed with 4429.
        var maxStrikes = 50
        var helloTimeoutMilliseconds: Int64 = 5_000
        /// Close a joined connection (4401) once its token expired (plus leeway) unless refreshed.
        var requireRefresh = false
        var leewayMilliseconds: Int64 = 30_000
    }

    /// Where a signal goes, as the shell sees it: a signal also counts against the budget for
    /// its recipient, and is refused while the recipient's send queue is half full.
    enum SignalRecipient: Equatable {
        /// Not a seat of the room: only the connection's signalling budget applies.
        case unknown
        case seat(ParticipantID, queueHasRoom: Bool)
    }

    let room: RoomID
    let openedAt: Instant
    /// The per-address key of the peer (its limits are the shell's).
    let peer: String
    let limits: Limits
    private(set) var state: State = .awaitingHello
    private(set) var budget: CommandBudget
    private(set) var badMessages = 0
    /// When the token the connection last authenticated with expires.
    private(set) var authenticatedUntil: Instant?

    /// `opened`: a connection to `room` from `peer` at `at`.
    init(room: RoomID, peer: String, openedAt: Instant, budget: CommandBudget, limits: Limits) {
        self.room = room
        self.peer = peer
        self.openedAt = openedAt
        self.budget = budget
        self.limits = limits
    }

    var isJoined: Bool { state == .joined }

    /// A message that did not decode.
    mutating func receivedInvalid(_ code: ErrorCode, rid: String?) -> [Action] {
        guard isReading else { return [] }
        return refused(code, rid: rid)
    }

    /// A decoded message. `signal` describes the recipient of a signal command (nil otherwise).
    mutating func received(_ inbound: Inbound, at now: Instant, signal: SignalRecipient? = nil) -> [Action] {
        guard isReading else { return [] }
        switch inbound {
        case .ping(let rid):
            guard isJoined else { return refused(.helloRequired, rid: rid) }
            guard budget.allow(.control, now: now) else { return rateLimited(rid: rid) }
            return [.sendPong(rid: rid)]
        case .hello(let token, let rid):
            guard state == .awaitingHello else { return refused(.alreadyJoined, rid: rid) }
            state = .verifying
            return [.verifyHello(token: token, rid: rid)]
        case .resume(let secret, let lastSeq, let rid):
            guard state == .awaitingHello else { return refused(.alreadyJoined, rid: rid) }
            state = .verifying
            return [.verifyResume(secret: secret, lastSeq: lastSeq, rid: rid)]
        case .refresh(let token, let rid):
            guard isJoined else { return refused(.helloRequired, rid: rid) }
            guard budget.allow(.control, now: now) else { return rateLimited(rid: rid) }
            return [.verifyRefresh(token: token, rid: rid)]
        case .command(let command, let rid):
            guard isJoined else { return refused(.helloRequired, rid: rid) }
            guard withinBudget(command, signal: signal, at: now) else { return rateLimited(rid: rid) }
            return [.applyCommand(command, rid: rid)]
        case .sfu(let message, let rid):
            guard isJoined else { return refused(.helloRequired, rid: rid) }
            // Offers, answers and candidates to the media server count as signalling.
            guard budget.allow(.signal, now: now) else { return rateLimited(rid: rid) }
            return [.relaySFU(message, rid: rid)]
        }
    }

    /// `hello` or `resume` accepted: the connection joined, authenticated until `until`
    /// (nil: a resume, which carries no token).
    mutating func joined(until: Instant?) {
        guard state == .verifying else { return }
        state = .joined
        if let until { authenticatedUntil = until }
    }

    /// A `refresh` token verified for the same user: authenticated until `until`.
    mutating func refreshed(until: Instant, rid: String?) -> [Action] {
        guard isJoined else { return [] }
        authenticatedUntil = until
        return [.sendAck(rid: rid)]
    }

    /// The shell refused the `hello` or `resume` being verified, keeping the connection open: it
    /// may try again (the refusal counts as a bad message).
    mutating func joinRefused(_ code: ErrorCode, rid: String?) -> [Action] {
        if state == .verifying { state = .awaitingHello }
        return refused(code, rid: rid)
    }

    /// Bad input (or a refused token on a connection that stays open): an error, and a close
    /// with 1008 once the connection keeps sending it.
    mutating func refused(_ code: ErrorCode, rid: String?) -> [Action] {
        badMessages += 1
        guard badMessages > limits.maxMalformedMessages else { return [.sendError(code, rid: rid)] }
        let joined = isJoined
        state = .closing(joined: joined)
        return [
            .sendError(code, rid: rid),
            .close(code: CloseCode.tooManyBadMessages.rawValue, reason: "too many bad messages"),
        ]
    }

    /// A refusal decided by the shell (the address's authentication budget is spent) that
    /// counts as a strike against the connection's budget.
    mutating func refusedByBudget(rid: String?) -> [Action] {
        if state == .verifying { state = .awaitingHello }  // a refused join: it may try again
        budget.refused()
        return rateLimited(rid: rid)
    }

    /// A join that cannot go on (authentication failed, server busy or full, resume refused):
    /// the error goes out, then the connection is closed and forgotten.
    mutating func refusedAndClosed(_ code: ErrorCode, rid: String?, close: UInt16, reason: String) -> [Action] {
        state = .closed
        return [.sendError(code, rid: rid), .close(code: close, reason: reason)]
    }

    /// The engine refused a `resume` (it already sent `resume-failed`): closed and forgotten.
    mutating func resumeRefused() -> [Action] {
        state = .closed
        return [.close(code: CloseCode.authenticationFailed.rawValue, reason: "resume failed")]
    }

    /// Time passed: a connection that has not joined in time, or whose token expired when
    /// refresh is required, is closed.
    mutating func tick(now: Instant) -> [Action] {
        switch state {
        case .awaitingHello where now - openedAt >= limits.helloTimeoutMilliseconds:
            state = .closed
            return [.close(code: CloseCode.helloTimeout.rawValue, reason: "hello timeout")]
        case .joined where limits.requireRefresh:
            guard let until = authenticatedUntil, now - until > limits.leewayMilliseconds else { return [] }
            authenticatedUntil = nil
            state = .closing(joined: true)
            return [.close(code: CloseCode.authenticationFailed.rawValue, reason: "token expired")]
        default:
            return []
        }
    }

    /// The transport closed the connection (whoever started it). A joined one leaves its room.
    mutating func closed() -> [Action] {
        defer { state = .closed }
        switch state {
        case .joined, .closing(joined: true): return [.applyDisconnected]
        case .awaitingHello, .verifying, .closing(joined: false), .closed: return []
        }
    }

    private var isReading: Bool {
        switch state {
        case .awaitingHello, .verifying, .joined: return true
        case .closing, .closed: return false
        }
    }

    /// Answers a message over its budget; closes the connection when the abuse goes on.
    private mutating func rateLimited(rid: String?) -> [Action] {
        guard budget.strikes >= limits.maxStrikes else { return [.sendError(.rateLimited, rid: rid)] }
        state = .closing(joined: isJoined)
        return [
            .sendError(.rateLimited, rid: rid), .close(code: CloseCode.rateLimited.rawValue, reason: "rate limited"),
        ]
    }

    private mutating func withinBudget(_ command: ClientCommand, signal: SignalRecipient?, at now: Instant) -> Bool {
        guard case .signal = command, case .seat(let to, let queueHasRoom) = signal else {
            return budget.allow(CommandKind(command), now: now)
        }
        guard budget.allowSignal(to: to, now: now) else { return false }
        guard queueHasRoom else {
            budget.refused()
            return false
        }
        return true
    }
}
