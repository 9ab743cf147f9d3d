import HearthCore
import HearthStore
import HearthTransport
import HearthWire

/// Drives the connections' state machines and performs the actions they return.
extension RoomHost {
    /// Feeds one input to a connection's state machine, keeps (or forgets) the machine, and
    /// performs its actions in order. `input` runs inside an access to `connections`: it may
    /// only call the machine's own methods (every caller passes one such call).
    func drive(
        _ session: SessionID, at: Instant, transport: any ShellTransport,
        _ input: (inout ConnectionStateMachine) -> [ConnectionStateMachine.Action]
    ) {
        // In place (`values[index]`), not copied out and stored back: a copy would share the
        // machine's command budget with the dictionary's, so the first change to the budget
        // (every command takes from it) copied the budget's whole table, for every message.
        guard let index = connections.index(forKey: session) else { return }
        let actions = input(&connections.values[index])
        let room = connections.values[index].room
        if connections.values[index].state == .closed { connections.remove(at: index) }
        for action in actions {
            perform(action, session: session, room: room, at: at, transport: transport)
        }
    }

    private func perform(
        _ action: ConnectionStateMachine.Action, session: SessionID, room: RoomID, at: Instant,
        transport: any ShellTransport
    ) {
        switch action {
        case .sendError(let code, let rid):
            metrics.refusal(code.rawValue)
            send(
                WireEncoder.encodeError(code, rid: rid), type: "error", to: [session], transport: transport,
                inOrder: false)
        case .sendPong(let rid):
            send(WireEncoder.encodePong(rid: rid), type: "pong", to: [session], transport: transport, inOrder: false)
        case .sendAck(let rid):
            send(
                WireEncoder.encode(Message(rid: rid, event: .ack(Ack()))), type: "ack", to: [session],
                transport: transport)
        case .verifyHello(let token, let rid):
            join(.hello(session, token: token, rid: rid), at: at, transport: transport)
        case .verifyResume(let secret, let lastSeq, let rid):
            join(.resume(session, secret: secret, lastSeq: lastSeq, rid: rid), at: at, transport: transport)
        case .verifyRefresh(let token, let rid):
            refresh(session, token: token, rid: rid, at: at, transport: transport)
        case .applyCommand(let command, let rid):
            // A stalled store refuses new work, but a member may always leave; signalling is
            // not journaled, so it goes on.
            if JournaledCommand(command) != nil, command != .leave, !journal.acceptsNewWork || !store.acceptsNewWork {
                metrics.refusal(ErrorCode.serverBusy.rawValue)
                send(
                    WireEncoder.encodeError(.serverBusy, rid: rid), type: "error", to: [session], transport: transport,
                    inOrder: false)
                return
            }
            dispatch(.command(command, from: connection(session), rid: rid), room: room, at: at, transport: transport)
        case .relaySFU(let message, let rid):
            relaySFU(message, rid: rid, from: session, room: room, transport: transport)
        case .applyDisconnected:
            depart(session, room: room, at: at, transport: transport)
        case .close(let code, let reason):
            metrics.close(code)
            transport.close(session, code: code, reason: reason)
        }
    }

    /// A `hello` or `resume` to verify: now, or (past the iteration's join budget) at the end of
    /// a later iteration, in arrival order (`JoinPacer`).
    func join(_ join: PendingJoin, at: Instant, transport: any ShellTransport) {
        guard pacer.admitsJoinNow else {
            pacer.wait(.join(join))
            metrics.joinsDeferred.increment()
            return
        }
        run(join, at: at, transport: transport)
    }

    /// A joined connection closed: the engine hears of it now, or (past the iteration's budget,
    /// or behind joins and departures already waiting) at the end of a later iteration, after
    /// the waiting joins (`JoinPacer`). Until then the member shows as present; what is sent to
    /// it goes nowhere, and a resume replays it. A stopping server tells the engine at once.
    func depart(_ session: SessionID, room: RoomID, at: Instant, transport: any ShellTransport) {
        guard pacer.admitsDepartureNow || stopping else {
            pacer.wait(.departure(Departure(session: session, room: room)))
            metrics.departuresDeferred.increment()
            return
        }
        runDeparture(session, room: room, at: at, transport: transport)
    }

    private func runDeparture(_ session: SessionID, room: RoomID, at: Instant, transport: any ShellTransport) {
        let started = ContinuousClock.now
        dispatch(.disconnected(connection(session)), room: room, at: at, transport: transport)
        pacer.ran(ContinuousClock.now - started)
    }

    private func run(_ join: PendingJoin, at: Instant, transport: any ShellTransport) {
        guard acceptsNewWork else { return busy(join.session, rid: join.rid, at: at, transport: transport) }
        let started = ContinuousClock.now
        switch join {
        case .hello(let session, let token, let rid):
            hello(session, token: token, rid: rid, at: at, transport: transport)
        case .resume(let session, let secret, let lastSeq, let rid):
            resume(session, secret: secret, lastSeq: lastSeq, rid: rid, at: at, transport: transport)
        }
        pacer.ran(ContinuousClock.now - started)
    }

    /// The end of a loop iteration: waiting joins and departures run while the budget lasts
    /// (joins whose connection has closed meanwhile are dropped); if some still wait, the loop
    /// is asked for another iteration at once instead of sleeping.
    func iterationEnded(transport: any ShellTransport) {
        guard pacer.waitingCount > 0 else { return pacer.iterationEnded() }
        let now = Self.now()
        while let work = pacer.nextWaiting() {
            runWaiting(work, at: now, transport: transport)
        }
        pacer.iterationEnded()
        if pacer.waitingCount > 0 { transport.requestIteration() }
    }

    /// The server is stopping: the engine hears of every waiting departure now, so that the
    /// journal and the records have them; waiting joins are dropped (their connections close).
    func departAllWaiting(transport: any ShellTransport) {
        let now = Self.now()
        for case .departure(let departure) in pacer.takeAll() {
            runDeparture(departure.session, room: departure.room, at: now, transport: transport)
        }
    }

    private func runWaiting(_ work: PacedWork, at now: Instant, transport: any ShellTransport) {
        switch work {
        case .join(let join):
            guard connections[join.session]?.state == .verifying else { return }
            run(join, at: now, transport: transport)
        case .departure(let departure):
            runDeparture(departure.session, room: departure.room, at: now, transport: transport)
        }
    }

    /// Whether a join may start: the journal and the records are not backlogged, and (in a
    /// cluster) the node is not handing its rooms over.
    var acceptsNewWork: Bool { journal.acceptsNewWork && store.acceptsNewWork && !draining }

    /// Refuses a join while the store's queue is at its bound (a stalled disk), or while the
    /// room is held by another node of a cluster: the client tries again later (1013).
    func busy(_ session: SessionID, rid: String?, at: Instant, transport: any ShellTransport) {
        refuseAndClose(
            session, .serverBusy, rid: rid, close: CloseCode.tryAgainLater.rawValue, reason: "server busy", at: at,
            transport: transport)
    }

    /// Answers a join with an error and closes the connection (the error goes out first);
    /// the connection is forgotten at once, so nothing more it sends is read.
    func refuseAndClose(
        _ session: SessionID, _ code: ErrorCode, rid: String?, close: UInt16, reason: String, at: Instant,
        transport: any ShellTransport
    ) {
        drive(session, at: at, transport: transport) {
            $0.refusedAndClosed(code, rid: rid, close: close, reason: reason)
        }
    }

    /// For a signal to a seat of the connection's room: that seat, and whether its send queue
    /// has room for the relayed message (it is refused while the queue is half full, so no
    /// sender can push another member into a 4008 close). Nil for other messages.
    func signalRecipient(
        _ inbound: Inbound, session: SessionID, transport: any ShellTransport
    ) -> ConnectionStateMachine.SignalRecipient? {
        guard case .command(.signal(let to, _, let payload), _) = inbound else { return nil }
        guard let room = connections[session]?.room, let target = engine.rooms[room]?.seats[to] else {
            return .unknown
        }
        guard let connection = target.connection, let recipient = self.session(connection) else {
            return .seat(to, queueHasRoom: true)
        }
        let limits = configuration.limits
        // The relayed message is the payload plus a small envelope.
        let bytes = (transport.queuedBytes(recipient) ?? 0) + payload.utf8.count + 128
        let messages = (transport.queuedMessages(recipient) ?? 0) + 1
        return .seat(
            to,
            queueHasRoom: bytes <= limits.sendQueueMaxBytes / 2 && messages <= max(1, limits.sendQueueMaxMessages / 2))
    }

    static func metricName(_ inbound: Inbound) -> String {
        switch inbound {
        case .ping: return "ping"
        case .hello: return "hello"
        case .refresh: return "refresh"
        case .resume: return "resume"
        case .command(let command, _): return command.name
        case .sfu(let message, _): return message.type
        }
    }
}
