import Foundation
import HearthAuth
import HearthCore
import HearthStore
import HearthTransport

/// `hello`, `resume` and `refresh`: the checks that need the shell (token verification,
/// per-address failure budgets, single-use guest tokens, the node's room limit), after the
/// connection's state machine asked for them.
extension RoomHost {
    /// `roomHeld`: the room's claim has just finished (`RoomHost+Cluster.swift`), do not ask again.
    func hello(
        _ session: SessionID, token: String, rid: String?, at: Instant, transport: any ShellTransport,
        roomHeld: Bool = false
    ) {
        guard let machine = connections[session] else { return }
        let room = machine.room
        guard authFailures.allows(machine.peer, now: at) else {
            return overAuthenticationBudget(session, rid: rid, at: at, transport: transport)
        }
        let date = Date(timeIntervalSince1970: Double(at.milliseconds) / 1000)
        switch verifier.verify(token, now: date, expectedRoom: room.rawValue) {
        case .failure(let error):
            // One answer whatever failed; the reason goes to the audit trail only.
            store.appendAuthenticationFailure(
                room: room, reason: error.reason.description, address: machine.peer, at: at)
            authFailures.spend(machine.peer, now: at)
            logger.info("authentication failed", metadata: ["session": "\(session)", "reason": "\(error.reason)"])
            refuseAndClose(
                session, .authenticationFailed, rid: rid, close: CloseCode.authenticationFailed.rawValue,
                reason: "authentication failed", at: at, transport: transport)
        case .success(let claims):
            guard let role = Role(rawValue: claims.role) else {
                return drive(session, at: at, transport: transport) { $0.joinRefused(.authenticationFailed, rid: rid) }
            }
            // In a cluster, the room must be this node's (claimed and rebuilt if need be).
            if !roomHeld {
                switch hold(
                    room, creating: true, pending: .hello(session, token: token, rid: rid), at: at, transport: transport
                ) {
                case .held: break
                case .claiming: return  // run again when the claim is done
                case .elsewhere: return elsewhere(session, rid: rid, at: at, transport: transport)
                }
            }
            guard connections[session] != nil else { return }  // closed meanwhile (the node's lease lapsed)
            // Guest invitations are single use, for the token's lifetime (the verifier refuses a
            // guest token without `jti`); in a cluster, across every node.
            if role == .guest, let jti = claims.jti {
                let reused: Bool
                if usedTokenIDs[jti] != nil {
                    reused = true
                } else if let shared {
                    do {
                        reused = try !shared.useToken(jti, room: room, expires: Self.instant(claims.exp))
                    } catch {
                        logger.error(
                            "token check failed: the shared store is unreachable", metadata: ["error": "\(error)"])
                        return elsewhere(session, rid: rid, at: at, transport: transport)
                    }
                } else {
                    reused = false
                }
                guard !reused else {
                    store.appendAuthenticationFailure(room: room, reason: "token_reused", address: machine.peer, at: at)
                    return refuseAndClose(
                        session, .tokenReused, rid: rid, close: CloseCode.authenticationFailed.rawValue,
                        reason: "token reused", at: at, transport: transport)
                }
                usedTokenIDs[jti] = Self.instant(claims.exp)
            }
            if engine.rooms[room] == nil && engine.openRoomCount >= configuration.limits.maxRooms {
                return refuseAndClose(
                    session, .serverFull, rid: rid, close: CloseCode.tryAgainLater.rawValue, reason: "server full",
                    at: at,
                    transport: transport)
            }
            connections[session]?.joined(until: Self.instant(claims.exp))
            let identity = Identity(userID: UserID(claims.sub), role: role, alias: claims.name)
            let (secret, hash) = ResumeSecret.generate()
            // The full effective settings are journaled: replay must not depend on the defaults.
            let input = Engine.Input.connect(
                connection(session), room: room, identity: identity,
                credential: ResumeCredential(secret: secret, hash: hash), settings: settings(from: claims), rid: rid)
            dispatch(input, room: room, at: at, transport: transport)
        }
    }

    /// `resume`: journaled and run only when the secret names a seat of this room (a refused
    /// resume changes nothing); a wrong secret counts as a failed authentication. A refused
    /// resume closes the connection (4401, or 4000 for an ended room): a guesser gets one try
    /// per connection, and a client joins again with `hello` on a new one. A resume the engine
    /// still refuses (a lastSeq from the future) comes back as `.resumeRefused`, closed alike.
    func resume(
        _ session: SessionID, secret: String, lastSeq: UInt64, rid: String?, at: Instant, transport: any ShellTransport,
        roomHeld: Bool = false
    ) {
        guard let machine = connections[session] else { return }
        let room = machine.room
        guard authFailures.allows(machine.peer, now: at) else {
            return overAuthenticationBudget(session, rid: rid, at: at, transport: transport)
        }
        if !roomHeld {
            let pending = PendingJoin.resume(session, secret: secret, lastSeq: lastSeq, rid: rid)
            switch hold(room, pending: pending, at: at, transport: transport) {
            case .held: break
            case .claiming: return  // run again when the claim is done
            case .elsewhere: return elsewhere(session, rid: rid, at: at, transport: transport)
            }
        }
        guard connections[session] != nil else { return }  // closed meanwhile (the node's lease lapsed)
        if engine.rooms[room]?.isEnded == true {
            let ended = CloseReason.ended
            return refuseAndClose(
                session, .roomEnded, rid: rid, close: ended.code, reason: ended.rawValue, at: at, transport: transport)
        }
        let hash = ResumeSecret.hash(secret)
        guard let existing = engine.rooms[room], existing.hasSeat(resumeHash: hash) else {
            store.appendAuthenticationFailure(
                room: room, reason: "resume_secret_unknown", address: machine.peer, at: at)
            authFailures.spend(machine.peer, now: at)
            return refuseAndClose(
                session, .resumeFailed, rid: rid, close: CloseCode.authenticationFailed.rawValue,
                reason: "resume failed",
                at: at, transport: transport)
        }
        connections[session]?.joined(until: nil)
        // Each secret works once: the seat gets a new one, sent in `resumed`.
        let (newSecret, newHash) = ResumeSecret.generate()
        let input = Engine.Input.resume(
            connection(session), room: room, resumeHash: hash,
            credential: ResumeCredential(secret: newSecret, hash: newHash), lastSeq: lastSeq, rid: rid)
        dispatch(input, room: room, at: at, transport: transport)
    }

    /// A fresh token for the same user on a joined connection: extends its authentication.
    func refresh(_ session: SessionID, token: String, rid: String?, at: Instant, transport: any ShellTransport) {
        guard let machine = connections[session] else { return }
        let room = machine.room
        // Past the address's budget the token is not even verified; the connection keeps its
        // previous authentication, as after a refused refresh.
        guard authFailures.allows(machine.peer, now: at) else {
            return drive(session, at: at, transport: transport) { $0.refusedByBudget(rid: rid) }
        }
        let date = Date(timeIntervalSince1970: Double(at.milliseconds) / 1000)
        let seat = engine.rooms[room]?.seat(of: connection(session))
        switch verifier.verify(token, now: date, expectedRoom: room.rawValue) {
        case .success(let claims) where seat != nil && claims.sub == seat!.userID.rawValue:
            drive(session, at: at, transport: transport) { $0.refreshed(until: Self.instant(claims.exp), rid: rid) }
        case .success:
            store.appendAuthenticationFailure(room: room, reason: "refresh_other_user", address: machine.peer, at: at)
            authFailures.spend(machine.peer, now: at)
            drive(session, at: at, transport: transport) { $0.refused(.authenticationFailed, rid: rid) }
        case .failure(let error):
            store.appendAuthenticationFailure(
                room: room, reason: error.reason.description, address: machine.peer, at: at)
            authFailures.spend(machine.peer, now: at)
            drive(session, at: at, transport: transport) { $0.refused(.authenticationFailed, rid: rid) }
        }
    }

    /// A `hello` or `resume` from an address past its failed-authentication budget.
    private func overAuthenticationBudget(
        _ session: SessionID, rid: String?, at: Instant, transport: any ShellTransport
    ) {
        logger.info("refused: too many failed authentications", metadata: ["session": "\(session)"])
        refuseAndClose(
            session, .rateLimited, rid: rid, close: CloseCode.rateLimited.rawValue,
            reason: "too many failed authentications", at: at, transport: transport)
    }
}
