import HearthCore
import HearthStore
import HearthTransport

/// A node of a cluster (`store: postgres`): it serves only the rooms it holds in the shared
/// store. It claims a room when a member's `hello` or `resume` (or an operations call) for it
/// arrives, and rebuilds the room by replaying the room's journal exactly as start-up recovery
/// does. It drops a room, closing the room's sessions with 1012 so its members resume where the
/// proxy sends them, when a commit finds the room taken over by another node, and drops every
/// room when its own lease lapsed (a stopped or cut-off node). With the embedded store every
/// room is this node's, and none of this runs.
extension RoomHost {
    enum Hold {
        /// The room is this node's (claimed now or before).
        case held
        /// A claim of the room is under way: the join waits for it (`claimed`).
        case claiming
        /// Another node holds the room and its lease is live, or the shared store cannot be
        /// reached: the client should try again.
        case elsewhere
    }

    /// What waits in the `JoinPacer` for a loop iteration with budget left.
    enum PacedWork {
        case join(PendingJoin)
        case departure(Departure)

        var session: SessionID {
            switch self {
            case .join(let join): return join.session
            case .departure(let departure): return departure.session
            }
        }
    }

    /// A joined connection closed: the engine's `disconnected` for it, still to run.
    struct Departure {
        var session: SessionID
        var room: RoomID
    }

    /// A `hello` or `resume` waiting: for its room's claim (run again once the room is this
    /// node's), or for a loop iteration with join budget left (`JoinPacer`).
    enum PendingJoin {
        case hello(SessionID, token: String, rid: String?)
        case resume(SessionID, secret: String, lastSeq: UInt64, rid: String?)

        var session: SessionID {
            switch self {
            case .hello(let session, _, _), .resume(let session, _, _, _): return session
            }
        }
        var rid: String? {
            switch self {
            case .hello(_, _, let rid), .resume(_, _, _, let rid): return rid
            }
        }
    }

    /// Makes sure this node holds `room`. If it does not, a claim starts (or is under way) and
    /// `pending`, if any, waits for it: the claim's statements, the read of the room's journal
    /// and its decoding run on the shared store's claim thread, not on this one; `claimed` then
    /// replays the room here and runs the waiting joins again. `creating`: a room no node has
    /// seen is claimed too (a `hello` creates rooms; a `resume` or an operations call does not,
    /// and a room that does not exist is then `.held` with nothing in it: the caller finds no
    /// room, as on a single node).
    func hold(
        _ room: RoomID, creating: Bool = false, pending: PendingJoin? = nil, at: Instant, transport: any ShellTransport
    ) -> Hold {
        guard let shared else { return .held }
        fence(transport)
        if claiming[room] != nil {
            if let pending { claiming[room]?.append(pending) }
            return .claiming
        }
        if shared.owns(room) { return .held }
        // No claims while draining, or without a live lease (another node could take the room
        // straight back).
        guard !draining, !shared.leaseLapsed, let onClaimed else { return .elsewhere }
        claiming[room] = pending.map { [$0] } ?? []
        let started = ContinuousClock.now
        shared.claim(room, creating: creating) { result in onClaimed(room, result, started) }
        return .claiming
    }

    /// A claim finished (posted back to this thread): on success the room is rebuilt here, and
    /// the joins that waited for it run again; otherwise they are told to try again (1013).
    func claimed(
        _ room: RoomID, _ result: Result<SharedJournal.Claim, any Error>, started: ContinuousClock.Instant,
        transport: any ShellTransport
    ) {
        guard let shared else { return }
        let waiting = claiming.removeValue(forKey: room) ?? []
        fence(transport)
        var held = false
        switch result {
        case .failure(let error):
            logger.error("claim failed: the shared store is unreachable", metadata: ["error": "\(error)"])
        case .success(.heldElsewhere(let node)):
            logger.info("claim refused: another node holds the room", metadata: ["room": "\(room)", "node": "\(node)"])
        case .success(.unknown):
            held = true
        case .success(.owned(let epoch, let entries)):
            if draining || shared.leaseLapsed {
                shared.forget(room)  // claimed too late: this node is handing its rooms over
                break
            }
            let read = ContinuousClock.now - started
            let replayStarted = ContinuousClock.now
            adopt(room, entries: entries, at: Self.now(), transport: transport)
            metrics.claims.increment()
            held = true
            logger.info(
                "room claimed",
                metadata: [
                    "room": "\(room)", "epoch": "\(epoch)", "entries": "\(entries.count)",
                    "read": "\(read)", "replay": "\(ContinuousClock.now - replayStarted)",
                ])
        }
        let now = Self.now()
        for join in waiting {
            switch join {
            case .hello(let session, let token, let rid):
                guard connections[session]?.state == .verifying else { continue }
                if held {
                    hello(session, token: token, rid: rid, at: now, transport: transport, roomHeld: true)
                } else {
                    elsewhere(session, rid: rid, at: now, transport: transport)
                }
            case .resume(let session, let secret, let lastSeq, let rid):
                guard connections[session]?.state == .verifying else { continue }
                if held {
                    resume(
                        session, secret: secret, lastSeq: lastSeq, rid: rid, at: now, transport: transport,
                        roomHeld: true)
                } else {
                    elsewhere(session, rid: rid, at: now, transport: transport)
                }
            }
        }
    }

    /// A `hello` or `resume` for a room another node of the cluster holds (or while the shared
    /// store cannot be reached): `server-busy` and 1013, so the client retries; by then the
    /// proxy sends it to the room's node.
    func elsewhere(_ session: SessionID, rid: String?, at: Instant, transport: any ShellTransport) {
        refuseAndClose(
            session, .serverBusy, rid: rid, close: CloseCode.tryAgainLater.rawValue,
            reason: "room is served by another node", at: at, transport: transport)
    }

    /// Rebuilds `room` from its journal: replays it into the engine (a copy the node held
    /// before is discarded first), re-arms its timers, and feeds every connection the journal
    /// still has live as dropped now (journaled under the new epoch), so its seat is held for
    /// the grace period and its resume secret works here.
    private func adopt(_ room: RoomID, entries: [JournalEntry], at: Instant, transport: any ShellTransport) {
        engine.forgetRoom(room)
        timers.cancelAll(in: room)
        let result = JournalEntry.replay(entries, into: &engine)
        for (timer, due) in result.timers { timers.schedule(timer, at: due) }
        for connection in result.connections where engine.room(of: connection) == room {
            dispatch(.disconnected(connection), room: room, at: at, transport: transport)
        }
    }

    /// Drops what the shared store says this node may no longer serve: rooms a commit found
    /// taken over, or every room once the lease lapsed. Runs before any held ack is released
    /// and before any client input is read, so nothing of a lost room is acknowledged.
    func fence(_ transport: any ShellTransport) {
        guard let shared else { return }
        if shared.leaseLapsed {
            let rooms = Array(engine.rooms.keys)
            logger.warning(
                "lease lapsed: dropping every room (their members resume on the node that claims them)",
                metadata: ["rooms": "\(rooms.count)"])
            shared.forgetAll()
            for room in rooms { drop(room, transport: transport) }
            // Connections still saying hello belong to no room yet: close them too.
            for session in Array(connections.keys) { closeMoved(session, transport: transport) }
            shared.acknowledgeLapse()
        }
        for room in shared.takeLostRooms() {
            logger.warning("room taken over by another node: dropping it", metadata: ["room": "\(room)"])
            metrics.roomsLost.increment()
            drop(room, transport: transport)
        }
    }

    /// Forgets `room` here: its sessions are closed with 1012 (their held acks are never
    /// sent), its timers cancelled, its media torn down.
    private func drop(_ room: RoomID, transport: any ShellTransport) {
        shared?.forget(room)
        for (session, machine) in connections where machine.room == room {
            closeMoved(session, transport: transport)
        }
        engine.forgetRoom(room)
        timers.cancelAll(in: room)
        if sfu != nil { syncSFU(room, transport: transport) }
    }

    private func closeMoved(_ session: SessionID, transport: any ShellTransport) {
        connections[session] = nil
        acks.discard(session)
        metrics.close(CloseCode.serviceRestart.rawValue)
        transport.close(session, code: CloseCode.serviceRestart.rawValue, reason: "room moved to another node")
    }
}
