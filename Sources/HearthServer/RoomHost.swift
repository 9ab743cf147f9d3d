import Foundation
import HearthAuth
import HearthCore
import HearthStore
import HearthTransport
import HearthWire
import Logging

/// Close codes the shell itself uses (the engine's are in `CloseReason`).
public enum ShellClose {
    public static let authenticationFailed: UInt16 = 4401
    public static let unknownEndpoint: UInt16 = 4404
    public static let helloTimeout: UInt16 = 4408
    public static let tooManyBadMessages: UInt16 = 1008
    public static let tryAgainLater: UInt16 = 1013
    public static let rateLimited: UInt16 = 4429
}

/// The imperative shell around the engine, confined to the transport's event-loop thread.
///
/// It turns transport events into engine inputs (authenticating `hello` on the way), and
/// runs the engine's effects: sends (each message encoded once for all its recipients),
/// closes, records and timers. It is the one owner of the `Engine` value. Every input it
/// gives the engine (except signalling) is journaled first, so a restart can rebuild the
/// rooms by replay.
final class RoomHost: TransportDelegate {
    struct Client {
        let room: RoomID
        let openedAt: Instant
        let peer: String
        var budget: CommandBudget
        var joined = false
        var badMessages = 0
        /// When the token the connection last authenticated with expires.
        var authenticatedUntil: Instant?
    }

    private var engine: Engine
    private var timers = TimerQueue()
    private var clients: [SessionID: Client] = [:]
    private let verifier: TokenVerifier
    private let configuration: HearthConfiguration
    private let store: Store
    private let operations: OperationsAPI
    /// Connection ids are `connectionBase + session id`: above every id in the journal, so a
    /// new connection is never taken for one from before a restart.
    private let connectionBase: UInt64
    /// Acks held until the journal entry of their command is committed, so an acknowledged
    /// chat message survives a crash; closes from the same input wait with them, so a
    /// connection is not closed before its ack.
    private enum Held {
        case ack(OutboundMessage, SessionID)
        case close(SessionID, code: UInt16, reason: String)
    }
    private var held: [(ticket: UInt64, action: Held)] = []
    private var lastRetention = Instant(milliseconds: 0)
    let metrics: ServerMetrics
    private let logger: Logger
    private let startedAt = Date()
    private let version: String
    private var lastGaugeUpdate = Instant(milliseconds: 0)
    /// Open connections and failed-authentication budgets, per source address.
    private var slots: AddressSlots
    private var authFailures: [String: TokenBucket] = [:]
    /// Single-use (guest) token ids already used, until their token expires.
    private var usedTokenIDs: [String: Instant] = [:]

    init(
        configuration: HearthConfiguration, verifier: TokenVerifier, store: Store, recovered: Recovery,
        metrics: ServerMetrics, logger: Logger, version: String
    ) {
        self.configuration = configuration
        self.verifier = verifier
        self.store = store
        self.metrics = metrics
        self.logger = logger
        self.version = version
        self.engine = recovered.engine
        self.connectionBase = recovered.connectionBase
        self.operations = OperationsAPI(configuration: configuration)
        self.slots = AddressSlots(limit: configuration.limits.maxConnectionsPerAddress)
        for (timer, at) in recovered.timers { timers.schedule(timer, at: at) }
    }

    /// The rooms rebuilt from the journal at start.
    struct Recovery {
        var engine: Engine
        var timers: [TimerID: Instant]
        var connectionBase: UInt64
        var entries: Int
    }

    /// Replays the journal into a fresh engine. Connections journaled as live did not survive
    /// the restart: each is fed (and journaled) as dropped now, so its seat is held for the
    /// grace period and its resume secret works.
    static func recover(from store: Store, configuration: HearthConfiguration, now: Instant) throws -> Recovery {
        var engine = Engine(defaultSettings: roomSettings(configuration))
        let entries = try store.replay()
        let result = JournalEntry.replay(entries, into: &engine)
        var timers = result.timers
        for connection in result.connections {
            guard let room = engine.room(of: connection) else { continue }
            let entry = JournalEntry.disconnected(connection: connection, room: room, at: now)
            store.append(entry)
            for effect in entry.apply(to: &engine) {
                switch effect {
                case .schedule(let timer, let at): timers[timer] = at
                case .cancel(let timer): timers[timer] = nil
                case .audit(let record): store.append(record)
                case .attendance(let record): store.append(record)
                case .send, .close: break
                }
            }
        }
        let marked = try store.endedRooms()
        for (id, room) in engine.rooms {
            if case .ended(let at) = room.phase, marked[id] == nil { store.markEnded(id, at: at) }
        }
        return Recovery(
            engine: engine, timers: timers, connectionBase: result.maxConnectionID + 1, entries: result.entries)
    }

    static func roomSettings(_ c: HearthConfiguration) -> RoomSettings { c.roomSettings }

    /// Room settings from the token, applied only when its arrival creates the room.
    func settings(from claims: JoinClaims) -> RoomSettings {
        HearthConfiguration.roomSettings(engine.defaultSettings, applying: claims)
    }

    static func now() -> Instant {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Instant(milliseconds: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
    }

    func connection(_ s: SessionID) -> ConnectionID { ConnectionID(connectionBase + s.rawValue) }
    /// The live session of a connection, or nil for one from before a restart.
    func session(_ c: ConnectionID) -> SessionID? {
        c.rawValue >= connectionBase ? SessionID(rawValue: c.rawValue - connectionBase) : nil
    }

    /// `/v1/rooms/{room}`: room ids are opaque, 1–64 of `A-Z a-z 0-9 _ -`.
    static func room(fromPath path: String) -> RoomID? {
        let prefix = "/v1/rooms/"
        guard path.hasPrefix(prefix) else { return nil }
        return RoomID(validating: path.dropFirst(prefix.count))
    }

    // MARK: Transport events

    func transportDidOpen(_ session: SessionID, path: String, peerAddress: String, transport: Transport) {
        let peerAddress = ClientAddress.limitKey(peerAddress)  // per-address limits: IPv6 by its /64
        let now = Self.now()
        guard let room = Self.room(fromPath: path) else {
            return turnAway(session, ShellClose.unknownEndpoint, "unknown endpoint", transport: transport)
        }
        // Addresses that keep failing authentication are refused before any work is done.
        if var bucket = authFailures[peerAddress], !bucket.available(now: now) {
            authFailures[peerAddress] = bucket
            metrics.refusal(ErrorCode.rateLimited.rawValue)
            return turnAway(session, ShellClose.rateLimited, "too many failed authentications", transport: transport)
        }
        guard slots.take(session, address: peerAddress) else {
            metrics.refusal(ErrorCode.serverFull.rawValue)
            return turnAway(
                session, ShellClose.tryAgainLater, "too many connections from this address", transport: transport)
        }
        clients[session] = Client(
            room: room, openedAt: now, peer: peerAddress,
            budget: CommandBudget(limits: configuration.rateLimits, now: now))
        logger.debug("opened", metadata: ["session": "\(session)", "room": "\(room)"])
    }

    /// Refuses new work while the store's queue is at its bound (a stalled disk): the client
    /// tries again later. A join (`hello`, `resume`) is also closed with 1013; a command is not.
    private func busy(_ session: SessionID, rid: String?, transport: Transport, close: Bool = true) {
        metrics.refusal(ErrorCode.serverBusy.rawValue)
        send(WireEncoder.encodeError(.serverBusy, rid: rid), type: "error", to: [session], transport: transport)
        guard close else { return }
        clients[session] = nil
        metrics.close(ShellClose.tryAgainLater)
        transport.close(session, code: ShellClose.tryAgainLater, reason: "server busy")
    }

    private func turnAway(_ session: SessionID, _ code: UInt16, _ reason: String, transport: Transport) {
        logger.info("closed: \(reason)", metadata: ["session": "\(session)"])
        metrics.close(code)
        transport.close(session, code: code, reason: reason)
    }

    func transportDidReceive(_ session: SessionID, text: UnsafeRawBufferPointer, transport: Transport) {
        guard var client = clients[session] else { return }
        metrics.bytesIn.increment(by: text.count)
        let at = Self.now()
        switch WireDecoder.decode(text) {
        case .failure(let error):
            metrics.messageIn("invalid")
            refuse(session, &client, error.code, rid: error.rid, transport: transport)
        case .success(let inbound):
            switch inbound {
            case .ping(let rid):
                metrics.messageIn("ping")
                guard client.joined else {
                    return refuse(session, &client, .helloRequired, rid: rid, transport: transport)
                }
                guard client.budget.allow(.control, now: at) else {
                    return rateLimited(session, &client, rid: rid, transport: transport)
                }
                clients[session] = client
                send(WireEncoder.encodePong(rid: rid), type: "pong", to: [session], transport: transport)
            case .hello(let token, let rid):
                metrics.messageIn("hello")
                if client.joined { return refuse(session, &client, .alreadyJoined, rid: rid, transport: transport) }
                guard store.acceptsNewWork else { return busy(session, rid: rid, transport: transport) }
                hello(session, &client, token: token, rid: rid, at: at, transport: transport)
            case .refresh(let token, let rid):
                metrics.messageIn("refresh")
                guard client.joined else {
                    return refuse(session, &client, .helloRequired, rid: rid, transport: transport)
                }
                guard client.budget.allow(.control, now: at) else {
                    return rateLimited(session, &client, rid: rid, transport: transport)
                }
                refresh(session, &client, token: token, rid: rid, at: at, transport: transport)
            case .resume(let secret, let lastSeq, let rid):
                metrics.messageIn("resume")
                if client.joined { return refuse(session, &client, .alreadyJoined, rid: rid, transport: transport) }
                guard store.acceptsNewWork else { return busy(session, rid: rid, transport: transport) }
                resume(session, &client, secret: secret, lastSeq: lastSeq, rid: rid, at: at, transport: transport)
            case .command(let command, let rid):
                metrics.messageIn(command.name)
                guard client.joined else {
                    return refuse(session, &client, .helloRequired, rid: rid, transport: transport)
                }
                guard withinBudget(command, &client, at: at, transport: transport) else {
                    return rateLimited(session, &client, rid: rid, transport: transport)
                }
                clients[session] = client
                let entry = JournalEntry.command(command, from: connection(session), room: client.room, at: at)
                if entry != nil, command != .leave, !store.acceptsNewWork {
                    return busy(session, rid: rid, transport: transport, close: false)
                }
                dispatch(entry, transport) { $0.handle(command, from: connection(session), rid: rid, at: at) }
                if case .end = command, engine.rooms[client.room]?.isEnded == true {
                    store.markEnded(client.room, at: at)
                }
            }
        }
    }

    func transportDidClose(_ session: SessionID, transport: Transport) {
        // Every connection ends here once, also those the shell closed itself (and forgot).
        slots.release(session)
        guard let client = clients.removeValue(forKey: session) else { return }
        if client.joined {
            let at = Self.now()
            let entry = JournalEntry.disconnected(connection: connection(session), room: client.room, at: at)
            dispatch(entry, transport) { $0.disconnected(connection(session), at: at) }
        }
        logger.debug("closed", metadata: ["session": "\(session)"])
    }

    func transportHTTP(_ request: HTTPRequest, transport: Transport) -> HTTPReply {
        if request.path.hasPrefix(OperationsAPI.prefix) {
            return operations.handle(
                request, backend: OperationsAccess(host: self, transport: transport), now: Self.now())
        }
        // HEAD is answered as GET would be; the transport sends the headers only.
        switch (request.method == "HEAD" ? "GET" : request.method, request.path) {
        case ("GET", "/healthz"):
            let uptime = Int(Date().timeIntervalSince(startedAt))
            // A backlogged store refuses new joins: 503 tells a load balancer to send them elsewhere.
            let accepting = store.acceptsNewWork
            let status = accepting ? "ok" : "backlogged"
            let journal = #"{"queued":\#(store.queued),"limit":\#(store.queueLimit),"status":"\#(status)"}"#
            let body =
                #"{"status":"\#(status)","version":"\#(version)","uptimeSeconds":\#(uptime),"connections":\#(clients.count),"rooms":\#(engine.rooms.count),"journal":\#(journal)}"#
            return .response(HTTPResponse(status: accepting ? 200 : 503, contentType: "application/json", text: body))
        case ("GET", "/metrics"):
            updateGauges(transport)
            return .response(
                HTTPResponse(status: 200, contentType: "text/plain; version=0.0.4", body: metrics.exposition()))
        default:
            return .response(
                HTTPResponse(
                    status: 404, contentType: "application/json",
                    text: #"{"code":"not-found","message":"No such endpoint."}"#))
        }
    }

    func transportTick(_ transport: Transport) {
        let now = Self.now()
        for timer in timers.popDue(now) {
            dispatch(.timerFired(timer, at: now), transport) { $0.timerFired(timer, at: now) }
            switch timer.kind {
            case .closes, .idle:
                if engine.rooms[timer.room]?.isEnded == true { store.markEnded(timer.room, at: now) }
            case .grace, .opens:
                break
            }
        }
        releaseAcks(upTo: store.committedTicket, transport: transport)
        // Connections that have not said hello (or resumed) in time.
        let deadline = Int64(configuration.limits.helloTimeoutSeconds) * 1000
        for (session, client) in clients where !client.joined && now - client.openedAt >= deadline {
            clients[session] = nil
            metrics.close(ShellClose.helloTimeout)
            transport.close(session, code: ShellClose.helloTimeout, reason: "hello timeout")
        }
        if configuration.tokens.requireRefresh {
            let leeway = Int64(configuration.tokens.leewaySeconds) * 1000
            for (session, client) in clients where client.joined {
                if let until = client.authenticatedUntil, now.milliseconds > until.milliseconds + leeway {
                    clients[session]?.authenticatedUntil = nil
                    metrics.close(ShellClose.authenticationFailed)
                    transport.close(session, code: ShellClose.authenticationFailed, reason: "token expired")
                }
            }
        }
        if now - lastRetention >= 3_600_000 { applyRetention(now: now) }
        if now - lastGaugeUpdate >= 1000 {
            updateGauges(transport)
            store.closeAuthenticationFailureInterval(at: now)
            usedTokenIDs = usedTokenIDs.filter { $0.value > now }
            authFailures = authFailures.filter { _, bucket in
                var b = bucket
                return !b.isFull(now: now)
            }
        }
    }

    func transportWillStop(_ transport: Transport) {
        logger.info("stopping: telling every client to reconnect", metadata: ["connections": "\(clients.count)"])
        store.flush()
    }

    // MARK: Operations

    /// Creates a room ahead of its session (journaled like every engine input). False when an
    /// open room has that id.
    func createRoom(_ id: RoomID, settings: RoomSettings, at: Instant, transport: Transport) -> Bool {
        var created = false
        dispatch(.createRoom(id, settings: settings, at: at), transport) { engine in
            guard let effects = engine.createRoom(id, settings: settings, at: at) else { return [] }
            created = true
            return effects
        }
        return created
    }

    /// Ends an open room for everyone. False when there is no such open room.
    func endRoom(_ id: RoomID, at: Instant, transport: Transport) -> Bool {
        guard let room = engine.rooms[id], !room.isEnded else { return false }
        dispatch(.endRoom(id, at: at), transport) { $0.endRoom(id, at: at) ?? [] }
        store.markEnded(id, at: at)
        return true
    }

    var rooms: [RoomID: Room] { engine.rooms }
    var defaultRoomSettings: RoomSettings { engine.defaultSettings }
    var recordStore: Store { store }

    // MARK: Engine

    private func hello(
        _ session: SessionID, _ client: inout Client, token: String, rid: String?, at: Instant, transport: Transport
    ) {
        guard withinAuthenticationBudget(client.peer, at: at) else {
            return overAuthenticationBudget(session, rid: rid, transport: transport)
        }
        let date = Date(timeIntervalSince1970: Double(at.milliseconds) / 1000)
        switch verifier.verify(token, now: date, expectedRoom: client.room.rawValue) {
        case .failure(let error):
            // One answer whatever failed; the reason goes to the audit trail only.
            store.appendAuthenticationFailure(
                room: client.room, reason: error.reason.description, address: client.peer, at: at)
            spendAuthenticationBudget(client.peer, at: at)
            logger.info("authentication failed", metadata: ["session": "\(session)", "reason": "\(error.reason)"])
            refuseAndClose(
                session, .authenticationFailed, rid: rid, close: ShellClose.authenticationFailed,
                reason: "authentication failed", transport: transport)
        case .success(let claims):
            guard let role = Role(rawValue: claims.role) else {
                return refuse(session, &client, .authenticationFailed, rid: rid, transport: transport)
            }
            // Guest invitations are single use, for the token's lifetime (the verifier refuses a
            // guest token without `jti`).
            if role == .guest, let jti = claims.jti {
                guard usedTokenIDs[jti] == nil else {
                    store.appendAuthenticationFailure(
                        room: client.room, reason: "token_reused", address: client.peer, at: at)
                    return refuseAndClose(
                        session, .tokenReused, rid: rid, close: ShellClose.authenticationFailed,
                        reason: "token reused", transport: transport)
                }
                usedTokenIDs[jti] = Instant(milliseconds: Int64(claims.exp.timeIntervalSince1970 * 1000))
            }
            if engine.rooms[client.room] == nil && openRoomCount >= configuration.limits.maxRooms {
                return refuseAndClose(
                    session, .serverFull, rid: rid, close: ShellClose.tryAgainLater, reason: "server full",
                    transport: transport)
            }
            client.joined = true
            client.authenticatedUntil = Self.instant(claims.exp)
            clients[session] = client
            let identity = Identity(userID: UserID(claims.sub), role: role, alias: claims.name)
            let (secret, hash) = ResumeSecret.generate()
            let settings = settings(from: claims)
            let entry = JournalEntry.connect(
                .init(
                    connection: connection(session), room: client.room, identity: identity, resumeHash: hash,
                    settings: settings, at: at))
            dispatch(entry, transport) {
                $0.connect(
                    connection(session), room: client.room, identity: identity,
                    credential: ResumeCredential(secret: secret, hash: hash), settings: settings, rid: rid, at: at)
            }
        }
    }

    /// `resume`: journaled and run only when the secret names a seat of this room (a refused
    /// resume changes nothing); a wrong secret counts as a failed authentication. A refused
    /// resume closes the connection (4401, or 4000 for an ended room): a guesser gets one try
    /// per connection, and a client joins again with `hello` on a new one.
    private func resume(
        _ session: SessionID, _ client: inout Client, secret: String, lastSeq: UInt64, rid: String?, at: Instant,
        transport: Transport
    ) {
        guard withinAuthenticationBudget(client.peer, at: at) else {
            return overAuthenticationBudget(session, rid: rid, transport: transport)
        }
        if engine.rooms[client.room]?.isEnded == true {
            let ended = CloseReason.ended
            return refuseAndClose(
                session, .roomEnded, rid: rid, close: ended.code, reason: ended.rawValue, transport: transport)
        }
        let hash = ResumeSecret.hash(secret)
        guard let room = engine.rooms[client.room], room.hasSeat(resumeHash: hash) else {
            store.appendAuthenticationFailure(
                room: client.room, reason: "resume_secret_unknown", address: client.peer, at: at)
            spendAuthenticationBudget(client.peer, at: at)
            return refuseAndClose(
                session, .resumeFailed, rid: rid, close: ShellClose.authenticationFailed, reason: "resume failed",
                transport: transport)
        }
        client.joined = true
        clients[session] = client
        // Each secret works once: the seat gets a new one, sent in `resumed`.
        let (newSecret, newHash) = ResumeSecret.generate()
        let entry = JournalEntry.resume(
            connection: connection(session), room: client.room, resumeHash: hash, newResumeHash: newHash,
            lastSeq: lastSeq, at: at)
        dispatch(entry, transport) {
            $0.resume(
                connection(session), room: client.room, resumeHash: hash,
                credential: ResumeCredential(secret: newSecret, hash: newHash), lastSeq: lastSeq, rid: rid, at: at)
        }
        // A resume the engine still refused (a lastSeq from the future) got `resume-failed`
        // from it: closed like the others.
        if engine.rooms[client.room]?.seat(of: connection(session)) == nil {
            clients[session] = nil
            metrics.close(ShellClose.authenticationFailed)
            transport.close(session, code: ShellClose.authenticationFailed, reason: "resume failed")
        }
    }

    /// Whether the address may still try to authenticate: checked before every `hello`,
    /// `resume` and `refresh`, so connections opened before the budget ran out get no
    /// verification (nor audit row) either.
    private func withinAuthenticationBudget(_ peer: String, at: Instant) -> Bool {
        guard var bucket = authFailures[peer] else { return true }
        defer { authFailures[peer] = bucket }
        return bucket.available(now: at)
    }

    /// A `hello` or `resume` from an address past its failed-authentication budget.
    private func overAuthenticationBudget(_ session: SessionID, rid: String?, transport: Transport) {
        logger.info("refused: too many failed authentications", metadata: ["session": "\(session)"])
        refuseAndClose(
            session, .rateLimited, rid: rid, close: ShellClose.rateLimited,
            reason: "too many failed authentications", transport: transport)
    }

    /// One failed authentication from an address: past its budget, it is refused early.
    private func spendAuthenticationBudget(_ peer: String, at: Instant) {
        let limits = configuration.rateLimits
        var bucket =
            authFailures[peer]
            ?? TokenBucket(burst: limits.authFailureBurst, perSecond: limits.authFailuresPerSecond, now: at)
        _ = bucket.take(now: at)
        authFailures[peer] = bucket
    }

    static func instant(_ date: Date) -> Instant { Instant(milliseconds: Int64(date.timeIntervalSince1970 * 1000)) }

    /// A fresh token for the same user on a joined connection: extends its authentication.
    private func refresh(
        _ session: SessionID, _ client: inout Client, token: String, rid: String?, at: Instant, transport: Transport
    ) {
        // Past the address's budget the token is not even verified; the connection keeps its
        // previous authentication, as after a refused refresh.
        guard withinAuthenticationBudget(client.peer, at: at) else {
            client.budget.refused()
            return rateLimited(session, &client, rid: rid, transport: transport)
        }
        let date = Date(timeIntervalSince1970: Double(at.milliseconds) / 1000)
        let seat = engine.rooms[client.room]?.seat(of: connection(session))
        switch verifier.verify(token, now: date, expectedRoom: client.room.rawValue) {
        case .success(let claims) where seat != nil && claims.sub == seat!.userID.rawValue:
            client.authenticatedUntil = Self.instant(claims.exp)
            clients[session] = client
            send(
                WireEncoder.encode(Message(rid: rid, event: .ack(Ack()))), type: "ack", to: [session],
                transport: transport)
        case .success:
            store.appendAuthenticationFailure(
                room: client.room, reason: "refresh_other_user", address: client.peer, at: at)
            spendAuthenticationBudget(client.peer, at: at)
            refuse(session, &client, .authenticationFailed, rid: rid, transport: transport)
        case .failure(let error):
            store.appendAuthenticationFailure(
                room: client.room, reason: error.reason.description, address: client.peer, at: at)
            spendAuthenticationBudget(client.peer, at: at)
            refuse(session, &client, .authenticationFailed, rid: rid, transport: transport)
        }
    }

    private var openRoomCount: Int { engine.openRoomCount }

    /// Answers a command over its budget; closes the connection when the abuse goes on.
    private func rateLimited(_ session: SessionID, _ client: inout Client, rid: String?, transport: Transport) {
        metrics.refusal(ErrorCode.rateLimited.rawValue)
        clients[session] = client
        send(WireEncoder.encodeError(.rateLimited, rid: rid), type: "error", to: [session], transport: transport)
        if client.budget.strikes >= configuration.rateLimits.maxStrikes {
            metrics.close(ShellClose.rateLimited)
            transport.close(session, code: ShellClose.rateLimited, reason: "rate limited")
        }
    }

    /// Whether a command is within the connection's budgets. A signal also counts against the
    /// budget for its recipient, and is refused while the recipient's send queue is half full:
    /// no sender can push another member into a 4008 close.
    private func withinBudget(
        _ command: ClientCommand, _ client: inout Client, at: Instant, transport: Transport
    ) -> Bool {
        guard case .signal(let to, _, let payload) = command,
            let target = engine.rooms[client.room]?.seats[to]
        else { return client.budget.allow(CommandKind(command), now: at) }
        guard client.budget.allowSignal(to: to, now: at) else { return false }
        guard let connection = target.connection, let recipient = session(connection) else { return true }
        let limits = configuration.limits
        // The relayed message is the payload plus a small envelope.
        let bytes = (transport.queuedBytes(recipient) ?? 0) + payload.utf8.count + 128
        let messages = (transport.queuedMessages(recipient) ?? 0) + 1
        guard bytes <= limits.sendQueueMaxBytes / 2, messages <= max(1, limits.sendQueueMaxMessages / 2) else {
            client.budget.refused()
            return false
        }
        return true
    }

    /// Answers a message with an error and closes the connection (the error goes out first);
    /// the connection is forgotten at once, so nothing more it sends is read.
    private func refuseAndClose(
        _ session: SessionID, _ code: ErrorCode, rid: String?, close: UInt16, reason: String, transport: Transport
    ) {
        metrics.refusal(code.rawValue)
        send(WireEncoder.encodeError(code, rid: rid), type: "error", to: [session], transport: transport)
        clients[session] = nil
        metrics.close(close)
        transport.close(session, code: close, reason: reason)
    }

    /// Answers bad input with an error; closes the connection when it keeps coming.
    private func refuse(
        _ session: SessionID, _ client: inout Client, _ code: ErrorCode, rid: String?, transport: Transport
    ) {
        metrics.refusal(code.rawValue)
        send(WireEncoder.encodeError(code, rid: rid), type: "error", to: [session], transport: transport)
        client.badMessages += 1
        clients[session] = client
        if client.badMessages > configuration.limits.maxMalformedMessages {
            metrics.close(ShellClose.tooManyBadMessages)
            transport.close(session, code: ShellClose.tooManyBadMessages, reason: "too many bad messages")
        }
    }

    /// Journals one engine input (signalling is never journaled), runs it, and carries out
    /// its effects.
    private func dispatch(_ entry: JournalEntry?, _ transport: Transport, _ input: (inout Engine) -> [Effect]) {
        let ticket = entry.map { store.append($0) }
        let start = ContinuousClock.now
        let effects = input(&engine)
        metrics.dispatch.recordNanoseconds(Int64((ContinuousClock.now - start).components.attoseconds / 1_000_000_000))
        run(effects, ticket: ticket, transport: transport)
    }

    private func run(_ effects: [Effect], ticket: UInt64?, transport: Transport) {
        // Decided once: the writer commits concurrently, and an ack held here must not be
        // overtaken by a close of the same input that found the entry committed a moment later.
        let committed = store.committedTicket
        // What earlier inputs held and is now committed goes first, so replies stay in order.
        if !held.isEmpty { releaseAcks(upTo: committed, transport: transport) }
        let hold = ticket.map { $0 > committed } ?? false
        for effect in effects {
            switch effect {
            case .send(let message, let to):
                let ice: [ICEServer]
                switch message.event {
                case .welcome, .resumed: ice = iceServers(for: to.first)
                default: ice = []
                }
                if case .error(let code) = message.event { metrics.refusal(code.rawValue) }
                let sessions = to.compactMap(session)
                let bytes = WireEncoder.encode(message, iceServers: ice)
                if case .ack = message.event, hold, let ticket, let first = sessions.first {
                    held.append((ticket, .ack(OutboundMessage(bytes), first)))
                    continue
                }
                send(bytes, type: message.event.type, to: sessions, transport: transport)
            case .close(let connection, let reason):
                guard let session = session(connection) else { continue }
                metrics.close(reason.code)
                if hold, let ticket {
                    held.append((ticket, .close(session, code: reason.code, reason: reason.rawValue)))
                } else {
                    transport.close(session, code: reason.code, reason: reason.rawValue)
                }
            case .audit(let record):
                store.append(record)
            case .attendance(let record):
                store.append(record)
            case .schedule(let timer, let at):
                timers.schedule(timer, at: at)
            case .cancel(let timer):
                timers.cancel(timer)
            }
        }
    }

    /// Carries out the held acks (and closes) whose inputs' journal entries are now committed.
    func releaseAcks(upTo committed: UInt64, transport: Transport) {
        var released = 0
        for (ticket, action) in held {
            guard ticket <= committed else { break }
            released += 1
            switch action {
            case .ack(let message, let session):
                transport.send(message, to: session)
                metrics.messageOut("ack", count: 1)
            case .close(let session, let code, let reason):
                transport.close(session, code: code, reason: reason)
            }
        }
        if released > 0 { held.removeFirst(released) }
    }

    /// Retention: ended rooms' journals, and audit and attendance records past their age.
    private func applyRetention(now: Instant) {
        lastRetention = now
        let r = configuration.retention
        let endedCutoff = now + (-Int64(r.endedRoomHours) * 3_600_000)
        engine.dropEndedRooms(before: endedCutoff)
        store.compact(roomsEndedBefore: endedCutoff)
        store.pruneAudit(before: now + (-Int64(r.auditDays) * 86_400_000))
        store.pruneAttendance(before: now + (-Int64(r.attendanceDays) * 86_400_000))
    }

    private func send(_ bytes: [UInt8], type: String, to sessions: [SessionID], transport: Transport) {
        guard !sessions.isEmpty else { return }
        let message = OutboundMessage(bytes)
        transport.send(message, to: sessions)
        metrics.messageOut(type, count: sessions.count)
        metrics.bytesOut.increment(by: bytes.count * sessions.count)
    }

    /// The ICE servers a client should use, with short-lived TURN credentials (coturn's
    /// REST scheme) named after the connection, not the person.
    private func iceServers(for connection: ConnectionID?) -> [ICEServer] {
        configuration.ice.servers.map { server in
            guard server.turn, let secret = configuration.ice.turnSecret else { return ICEServer(urls: server.urls) }
            let user = "c\(connection?.rawValue ?? 0)"
            let (username, password) = turnCredentials(
                secret: secret, user: user, ttlSeconds: configuration.ice.turnTTLSeconds, now: Date())
            return ICEServer(urls: server.urls, username: username, credential: password)
        }
    }

    private func updateGauges(_ transport: Transport) {
        lastGaugeUpdate = Self.now()
        metrics.connections.record(transport.openSessionCount)
        var open = 0
        var inRoom = 0
        var waiting = 0
        for room in engine.rooms.values where !room.isEnded {
            open += 1
            for seat in room.seats.values {
                if seat.placement == .room { inRoom += 1 } else { waiting += 1 }
            }
        }
        metrics.rooms.record(open)
        metrics.membersInRoom.record(inRoom)
        metrics.membersWaiting.record(waiting)
        metrics.journalQueued.record(store.queued)
        metrics.addressesConnected.record(slots.addressCount)
        metrics.addressesFailingAuthentication.record(authFailures.count)
        metrics.sendQueueDrops.increment(by: Int(transport.counters.queueOverflowCloses) - reportedDrops)
        reportedDrops = Int(transport.counters.queueOverflowCloses)
    }
    private var reportedDrops = 0
}
