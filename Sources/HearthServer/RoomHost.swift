import Foundation
import HearthAuth
import HearthCore
import HearthStore
import HearthTransport
import HearthWire
import Logging

/// The imperative shell around the engine, confined to the transport's event-loop thread.
///
/// One message's path: the transport calls a `transport…` method; the connection's
/// `ConnectionStateMachine` decides what it means (`RoomHost+Connection.swift` performs its
/// actions; `RoomHost+Authentication.swift` verifies tokens and resume secrets); an engine
/// input is journaled and applied by `dispatch`; `run` performs the engine's effects: sends
/// (each message encoded once for all its recipients), closes, records, timers, ended rooms.
/// Acks of inputs whose journal entries are not committed yet wait in the `AckGate`, with
/// what those inputs send their senders. Recovery, /healthz and gauges, retention and ICE
/// servers have their own files.
final class RoomHost: TransportDelegate {
    var engine: Engine
    var timers = TimerQueue()
    /// The state machine of every open connection the shell has not forgotten.
    var connections: [SessionID: ConnectionStateMachine] = [:]
    /// The connections the hello timeout may close, oldest first (what `tick` looks at).
    var helloDeadlines = HelloDeadlines()
    let verifier: TokenVerifier
    let configuration: HearthConfiguration
    /// The node's records (audit, attendance): the embedded store (which is also the journal),
    /// or, in a cluster, the shared store.
    let store: any RecordStore
    /// Where inputs are journaled: `store` itself, or the cluster's shared journal.
    let journal: any JournalStore
    /// The cluster's shared store (`store: postgres`; `RoomHost+Cluster.swift`), or nil.
    let shared: SharedJournal?
    /// SIGTERM in a cluster: no more joins or claims while the node hands its rooms over.
    var draining = false
    /// The transport is stopping: departures are no longer paced (`depart`).
    var stopping = false
    /// Claims under way (cluster), with the joins waiting for each.
    var claiming: [RoomID: [PendingJoin]] = [:]
    /// Joins past the loop iteration's join budget, waiting for a later iteration.
    var pacer: JoinPacer
    /// How a finished claim comes back to the loop thread (set by `HearthServer`, or a test).
    var onClaimed: (@Sendable (RoomID, Result<SharedJournal.Claim, any Error>, ContinuousClock.Instant) -> Void)?
    let operations: OperationsAPI
    /// The web app at `/app/` (built in, or `web.root`).
    let webApp: WebApp
    /// Connection ids are `connectionBase + session id`: above every id in the journal, so a
    /// new connection is never taken for one from before a restart.
    let connectionBase: UInt64
    var acks = AckGate()
    var lastRetention = Instant(milliseconds: 0)
    let metrics: ServerMetrics
    let logger: Logger
    let startedAt = Date()
    let version: String
    var lastGaugeUpdate = Instant(milliseconds: 0)
    var reportedDrops = 0
    /// Open connections and failed-authentication budgets, per source address.
    var slots: AddressSlots
    let authFailures: FailureBudget
    /// Single-use (guest) token ids already used, until their token expires.
    var usedTokenIDs: [String: Instant] = [:]
    let connectionLimits: ConnectionStateMachine.Limits
    /// The SFU mode's control plane over Janus (nil: no media server configured; `RoomHost+SFU.swift`).
    var sfu: SFUBroker?
    /// The open link to Janus, and which one it is (events of an older link are ignored).
    var janus: JanusLink?
    var janusGeneration: UInt64 = 0
    var nextJanusAttempt = Instant(milliseconds: 0)
    var lastJanusKeepalive = Instant(milliseconds: 0)
    var janusWasUp = false
    /// How the link's reader thread hands events to the loop thread (set by `HearthServer`).
    var onJanusEvent: (@Sendable (UInt64, JanusLink.Event) -> Void)?

    init(
        configuration: HearthConfiguration, verifier: TokenVerifier, store: Store?, shared: SharedJournal? = nil,
        recovered: Recovery, metrics: ServerMetrics, logger: Logger, version: String, webApp: WebApp = .embedded()
    ) {
        self.configuration = configuration
        self.verifier = verifier
        // One of the two: the embedded store, or the cluster's shared one.
        self.store = shared ?? store!
        self.shared = shared
        self.journal = shared ?? store!
        self.metrics = metrics
        self.logger = logger
        self.version = version
        self.engine = recovered.engine
        self.connectionBase = recovered.connectionBase
        self.operations = OperationsAPI(configuration: configuration)
        self.webApp = webApp
        self.slots = AddressSlots(limit: configuration.limits.maxConnectionsPerAddress)
        self.pacer = JoinPacer(budget: .milliseconds(configuration.limits.joinBudgetMilliseconds))
        self.authFailures = FailureBudget(configuration.rateLimits)
        self.connectionLimits = ConnectionStateMachine.Limits(
            maxMalformedMessages: configuration.limits.maxMalformedMessages,
            maxStrikes: configuration.rateLimits.maxStrikes,
            helloTimeoutMilliseconds: Int64(configuration.limits.helloTimeoutSeconds) * 1000,
            requireRefresh: configuration.tokens.requireRefresh,
            leewayMilliseconds: Int64(configuration.tokens.leewaySeconds) * 1000)
        for (timer, at) in recovered.timers { timers.schedule(timer, at: at) }
        if configuration.sfu.isEnabled { sfu = Self.broker(configuration.sfu, now: Self.now()) }
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

    static func instant(_ date: Date) -> Instant { Instant(milliseconds: Int64(date.timeIntervalSince1970 * 1000)) }

    func connection(_ s: SessionID) -> ConnectionID { ConnectionID(connectionBase + s.rawValue) }
    /// The live session of a connection, or nil for one from before a restart (or, in a
    /// cluster, from another node: their ids lie outside `connectionBase ..< + 2^32`).
    func session(_ c: ConnectionID) -> SessionID? {
        c.rawValue >= connectionBase && c.rawValue - connectionBase < 1 << 32
            ? SessionID(rawValue: c.rawValue - connectionBase) : nil
    }

    /// `/v1/rooms/{room}`: room ids are opaque, 1–64 of `A-Z a-z 0-9 _ -`.
    static func room(fromPath path: String) -> RoomID? {
        let prefix = "/v1/rooms/"
        guard path.hasPrefix(prefix) else { return nil }
        return RoomID(validating: path.dropFirst(prefix.count))
    }

    // MARK: Transport events (forwarded to the methods below, which tests drive with a fake transport)

    func transportDidOpen(_ session: SessionID, path: String, peerAddress: String, transport: Transport) {
        opened(session, path: path, peerAddress: peerAddress, transport: transport)
    }

    func transportDidReceive(_ session: SessionID, text: UnsafeRawBufferPointer, transport: Transport) {
        received(session, text: text, transport: transport)
    }

    func transportDidClose(_ session: SessionID, transport: Transport) { closed(session, transport: transport) }

    func transportTick(_ transport: Transport) { tick(transport) }

    func transportIterationEnded(_ transport: Transport) { iterationEnded(transport: transport) }

    func opened(_ session: SessionID, path: String, peerAddress: String, transport: any ShellTransport) {
        if shared != nil { fence(transport) }
        let peerAddress = ClientAddress.limitKey(peerAddress)  // per-address limits: IPv6 by its /64
        let now = Self.now()
        guard let room = Self.room(fromPath: path) else {
            return turnAway(session, CloseCode.unknownEndpoint.rawValue, "unknown endpoint", transport: transport)
        }
        // Addresses that keep failing authentication are refused before any work is done.
        if !authFailures.allows(peerAddress, now: now) {
            metrics.refusal(ErrorCode.rateLimited.rawValue)
            return turnAway(
                session, CloseCode.rateLimited.rawValue, "too many failed authentications", transport: transport)
        }
        guard slots.take(session, address: peerAddress) else {
            metrics.refusal(ErrorCode.serverFull.rawValue)
            return turnAway(
                session, CloseCode.tryAgainLater.rawValue, "too many connections from this address",
                transport: transport)
        }
        connections[session] = ConnectionStateMachine(
            room: room, peer: peerAddress, openedAt: now,
            budget: CommandBudget(limits: configuration.rateLimits, now: now), limits: connectionLimits)
        helloDeadlines.opened(session, at: now)
        logger.debug("opened", metadata: ["session": "\(session)", "room": "\(room)"])
    }

    private func turnAway(_ session: SessionID, _ code: UInt16, _ reason: String, transport: any ShellTransport) {
        logger.info("closed: \(reason)", metadata: ["session": "\(session)"])
        metrics.close(code)
        transport.close(session, code: code, reason: reason)
    }

    func received(_ session: SessionID, text: UnsafeRawBufferPointer, transport: any ShellTransport) {
        if shared != nil { fence(transport) }
        guard connections[session] != nil else { return }
        metrics.bytesIn.increment(by: text.count)
        let at = Self.now()
        switch WireDecoder.decode(text) {
        case .failure(let error):
            metrics.messageIn("invalid")
            drive(session, at: at, transport: transport) { $0.receivedInvalid(error.code, rid: error.rid) }
        case .success(let inbound):
            metrics.messageIn(Self.metricName(inbound))
            let signal = signalRecipient(inbound, session: session, transport: transport)
            drive(session, at: at, transport: transport) { $0.received(inbound, at: at, signal: signal) }
        }
    }

    func closed(_ session: SessionID, transport: any ShellTransport) {
        // Every connection ends here once, also those the shell closed itself (and forgot).
        slots.release(session)
        guard connections[session] != nil else { return }
        drive(session, at: Self.now(), transport: transport) { $0.closed() }
        logger.debug("closed", metadata: ["session": "\(session)"])
    }

    func transportHTTP(_ request: HTTPRequest, transport: Transport) -> HTTPReply {
        if request.path.hasPrefix(OperationsAPI.prefix) {
            return operations.handle(
                request, backend: OperationsAccess(host: self, transport: transport), now: Self.now())
        }
        if let page = webApp.respond(to: request) { return .response(page) }
        return healthRoute(request, transport: transport)
    }

    func tick(_ transport: any ShellTransport) {
        let now = Self.now()
        for timer in timers.popDue(now) {
            dispatch(.timerFired(timer), room: timer.room, at: now, transport: transport)
        }
        releaseAcks(upTo: journal.committedTicket, transport: transport)
        // Connections that have not said hello (or resumed) in time: only those whose time is up
        // are looked at, not every open connection (10 ticks a second, thousands of connections).
        for session in helloDeadlines.takeDue(now: now, timeout: connectionLimits.helloTimeoutMilliseconds) {
            drive(session, at: now, transport: transport) { $0.tick(now: now) }
            if connections[session]?.state == .verifying { helloDeadlines.keep(session) }
        }
        // Expired tokens, when they must be refreshed: any joined connection's may expire.
        if connectionLimits.requireRefresh {
            for session in Array(connections.keys) {
                drive(session, at: now, transport: transport) { $0.tick(now: now) }
            }
        }
        if now - lastRetention >= 3_600_000 { applyRetention(now: now) }
        if sfu != nil { tickSFU(now: now, transport: transport) }
        if now - lastGaugeUpdate >= 1000 {
            updateGauges(transport)
            store.closeAuthenticationFailureInterval(at: now)
            usedTokenIDs = usedTokenIDs.filter { $0.value > now }
            authFailures.forgetRecovered(now: now)
        }
    }

    func transportWillStop(_ transport: Transport) {
        logger.info("stopping: telling every client to reconnect", metadata: ["connections": "\(connections.count)"])
        stopping = true
        departAllWaiting(transport: transport)
        journal.flush()
        janus?.shutDown()
    }

    // MARK: Operations

    /// Creates a room ahead of its session (journaled like every engine input). False when an
    /// open room has that id.
    func createRoom(_ id: RoomID, settings: RoomSettings, at: Instant, transport: any ShellTransport) -> Creation {
        if let shared {
            // In a cluster the room is written to the shared journal with no owner: the node its
            // first member reaches claims it. The answer shows it as the engine would create it.
            guard let entry = JournalEntry(.createRoom(id, settings: settings), room: id, at: at) else {
                return .unavailable
            }
            do {
                switch try shared.createRoom(entry) {
                case .exists: return .exists
                case .ended: return .ended
                case .created:
                    var scratch = Engine(defaultSettings: engine.defaultSettings)
                    _ = scratch.apply(.createRoom(id, settings: settings), at: at)
                    return scratch.rooms[id].map(Creation.created) ?? .unavailable
                }
            } catch {
                logger.error("room creation failed: the shared store is unreachable", metadata: ["error": "\(error)"])
                return .unavailable
            }
        }
        if let existing = engine.rooms[id] { return existing.isEnded ? .ended : .exists }
        dispatch(.createRoom(id, settings: settings), room: id, at: at, transport: transport)
        return engine.rooms[id].map(Creation.created) ?? .exists
    }

    enum Creation {
        case created(Room)
        case exists
        case ended
        /// The shared store could not be reached.
        case unavailable
    }

    /// Ends an open room for everyone. False when there is no such open room.
    func endRoom(_ id: RoomID, at: Instant, transport: any ShellTransport) -> Bool {
        guard engine.hasOpenRoom(id) else { return false }
        dispatch(.endRoom(id), room: id, at: at, transport: transport)
        return true
    }

    var rooms: [RoomID: Room] { engine.rooms }
    var defaultRoomSettings: RoomSettings { engine.defaultSettings }
    var recordStore: any RecordStore { store }

    // MARK: Engine

    /// Journals one engine input (signalling is never journaled), applies it, and carries out
    /// its effects. `room` is the room it goes to (the journal files entries by room).
    func dispatch(_ input: Engine.Input, room: RoomID, at: Instant, transport: any ShellTransport) {
        // In a cluster, nothing happens in a room this node does not hold (a dropped room's
        // late departures, timers): another node serves it.
        if let shared, !shared.owns(room) { return }
        let ticket = JournalEntry(input, room: room, at: at).map { journal.append($0) }
        let start = ContinuousClock.now
        let effects = engine.apply(input, at: at)
        metrics.dispatch.recordNanoseconds(Int64((ContinuousClock.now - start).components.attoseconds / 1_000_000_000))
        guard run(effects, ticket: ticket, room: room, transport: transport) else { return }
        if sfu != nil { syncSFU(room, transport: transport) }
    }

    /// Performs the engine's effects, in order. Acks (and closes) of an input whose journal
    /// entry is not committed yet wait in the `AckGate`, with what the input sends its sender
    /// (a chat's own copy goes out with its ack, in one write). In a cluster, nothing goes out if
    /// `room` was found taken over by a commit up to the one read here (then false: the room is
    /// dropped).
    func run(_ effects: [Effect], ticket: UInt64?, room: RoomID, transport: any ShellTransport) -> Bool {
        // Decided once: the writer commits concurrently, and an ack held here must not be
        // overtaken by a close of the same input that found the entry committed a moment later.
        let committed = journal.committedTicket
        // The writer, on its own thread, may have committed this very input's entry already,
        // fenced: a room lost by a commit up to `committed` is reported before that ticket
        // counts, so dropping the lost rooms now keeps an ack that did not hold from going out
        // for an entry that was never written.
        if let shared {
            fence(transport)
            guard shared.owns(room) else { return false }
        }
        // What earlier inputs held and is now committed goes first, so replies stay in order.
        if !acks.isEmpty { releaseAcks(upTo: committed, transport: transport) }
        // A journaled input that need not hold found every earlier ticket committed, and what
        // waited for them released just above: its closes cannot overtake anything held. (A
        // signal is not journaled and closes nothing; its sends wait behind what is held.)
        let hold = AckGate.mustHold(ticket: ticket, committed: committed)
        // The member this input acknowledges: what it sends them waits with the ack.
        let sender = hold ? ackedSession(effects) : nil
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
                    acks.hold(.ack(OutboundMessage(bytes), first), ticket: ticket)
                    continue
                }
                let inOrder: Bool
                switch message.event {
                case .error, .signal: inOrder = false
                default: inOrder = true
                }
                send(
                    bytes, type: message.event.type, to: sessions, transport: transport, inOrder: inOrder,
                    holdingFor: sender, ticket: ticket)
            case .close(let connection, let reason):
                guard let session = session(connection) else { continue }
                metrics.close(reason.code)
                if hold, let ticket {
                    acks.hold(.close(session, code: reason.code, reason: reason.rawValue), ticket: ticket)
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
            case .roomEnded(let room, let at):
                journal.markEnded(room, at: at)
            case .resumeRefused(let connection):
                guard let session = session(connection) else { continue }
                drive(session, at: Self.now(), transport: transport) { $0.resumeRefused() }
            }
        }
        return true
    }

    /// Carries out the held acks (and closes) whose inputs' journal entries are now committed.
    func releaseAcks(upTo committed: UInt64, transport: any ShellTransport) {
        // Rooms a commit up to `committed` found taken over are dropped first: their acks never go.
        if shared != nil { fence(transport) }
        for item in acks.release(upTo: committed) {
            switch item {
            case .ack(let message, let session):
                transport.send(message, to: session)
                metrics.messageOut("ack", count: 1)
            case .message(let message, let session):
                transport.send(message, to: session)
            case .close(let session, let code, let reason):
                transport.close(session, code: code, reason: reason)
            }
        }
    }

    /// The session the `ack` among `effects` goes to, if there is one.
    func ackedSession(_ effects: [Effect]) -> SessionID? {
        for effect in effects {
            if case .send(let message, let to) = effect, case .ack = message.event, let first = to.first {
                return session(first)
            }
        }
        return nil
    }

    /// Sends `bytes` to `sessions`. The copy for `sender` (the member whose input, with
    /// `ticket`, waits for its commit) is held with its ack; an `inOrder` message for any member
    /// with something held already waits behind that, so what a member receives keeps its order
    /// (and its `seq`s increase). Refusals, pongs and signalling are not in order: a
    /// `server-busy` must not wait for the commit it is about.
    func send(
        _ bytes: [UInt8], type: String, to sessions: [SessionID], transport: any ShellTransport,
        inOrder: Bool = true, holdingFor sender: SessionID? = nil, ticket: UInt64? = nil
    ) {
        guard !sessions.isEmpty else { return }
        let message = OutboundMessage(bytes)
        metrics.messageOut(type, count: sessions.count)
        metrics.bytesOut.increment(by: bytes.count * sessions.count)
        guard sessions.contains(where: { $0 == sender || (inOrder && acks.isWaiting($0)) }) else {
            return transport.send(message, toEach: sessions)
        }
        var now: [SessionID] = []
        now.reserveCapacity(sessions.count)
        for s in sessions {
            if s == sender, let ticket {
                acks.hold(.message(message, s), ticket: ticket)
            } else if inOrder && acks.isWaiting(s) {
                acks.holdBehind(.message(message, s))
            } else {
                now.append(s)
            }
        }
        if !now.isEmpty { transport.send(message, toEach: now) }
    }
}
