import Foundation
import HearthCore
import HearthTransport
import HearthWire

/// The SFU mode's shell: feeds the `SFUBroker` the rooms' plans, the clients' SFU messages and
/// Janus's messages, and performs its actions (requests to Janus over the `JanusLink`, messages
/// to clients). The link is opened from `tick` (again 1 s after it is lost) and kept alive there.
extension RoomHost {
    static func broker(_ sfu: HearthConfiguration.SFU, now: Instant) -> SFUBroker {
        var generator = SystemRandomNumberGenerator()
        let secret = (0..<4).map { _ in String(generator.next(), radix: 16) }.joined()
        // VideoRoom and feed ids from this run are above any earlier run's on the same Janus.
        return SFUBroker(
            settings: SFUBroker.Settings(
                apiSecret: sfu.apiSecret ?? "", adminKey: sfu.adminKey ?? "", roomSecret: secret,
                idBase: UInt64(max(0, now.milliseconds)) * 1000))
    }

    /// After every input to a room: the broker gets the room's plan (it ignores an unchanged one).
    func syncSFU(_ id: RoomID, transport: any ShellTransport) {
        guard sfu != nil else { return }
        let room = engine.rooms[id]
        guard room?.usesSFU == true || sfu!.knows(id) else { return }
        perform(sfu!.plan(id, room?.sfuPlan ?? [:]), transport: transport)
    }

    /// A client's SFU message: only an admitted member of a room in SFU mode may send one.
    func relaySFU(
        _ message: SFUClientMessage, rid: String?, from session: SessionID, room id: RoomID,
        transport: any ShellTransport
    ) {
        let connection = connection(session)
        guard sfu != nil, let room = engine.rooms[id], room.usesSFU, !room.isEnded else {
            return perform([.refuse(.sfuUnavailable, rid: rid, to: connection)], transport: transport)
        }
        guard let seat = room.seat(of: connection), seat.placement == .room else {
            return perform([.refuse(.notAdmitted, rid: rid, to: connection)], transport: transport)
        }
        perform(
            sfu!.client(message, member: SFUMemberKey(room: id, id: seat.id), from: connection, rid: rid),
            transport: transport)
    }

    /// Opens the link when it is down (at most once a second), and keeps Janus's session alive.
    func tickSFU(now: Instant, transport: any ShellTransport) {
        guard sfu != nil, let path = configuration.sfu.janusSocket else { return }
        if janus == nil {
            guard now >= nextJanusAttempt else { return }
            nextJanusAttempt = now + 1000
            janusGeneration += 1
            switch JanusLink.connect(path: path, generation: janusGeneration, onEvent: onJanusEvent ?? { _, _ in }) {
            case .success(let link):
                janus = link
                logger.info("media server connected", metadata: ["socket": "\(path)"])
                perform(sfu!.linkUp(), transport: transport)
            case .failure(let error):
                if janusWasUp || lastJanusKeepalive.milliseconds == 0 {
                    logger.warning(
                        "media server unreachable; SFU rooms have no media until it is back",
                        metadata: ["socket": "\(path)", "error": "\(error)"])
                    janusWasUp = false
                    lastJanusKeepalive = now
                }
            }
            return
        }
        if sfu!.isUp && !janusWasUp { janusWasUp = true }
        if now - lastJanusKeepalive >= 20_000 {
            lastJanusKeepalive = now
            perform(sfu!.keepalive(), transport: transport)
        }
    }

    /// An event of the link's reader thread, on the loop thread.
    func janusEvent(_ event: JanusLink.Event, generation: UInt64, transport: any ShellTransport) {
        guard sfu != nil, generation == janusGeneration else { return }
        switch event {
        case .message(let bytes):
            guard let reply = JSONValue.parse(bytes) else { return }
            perform(sfu!.received(reply), transport: transport)
        case .down:
            janus = nil
            janusWasUp = true  // log the next failure to connect
            nextJanusAttempt = Self.now() + 1000
            logger.warning("media server link lost; SFU members are told, and it is retried every second")
            perform(sfu!.linkDown(), transport: transport)
        }
    }

    func perform(_ actions: [SFUBroker.Action], transport: any ShellTransport) {
        for action in actions {
            switch action {
            case .janus(let request):
                janus?.send(request.encoded())
            case .send(let message, let connection):
                guard let session = session(connection) else { continue }
                send(WireEncoder.encode(message), type: message.type, to: [session], transport: transport)
            case .refuse(let code, let rid, let connection):
                guard let session = session(connection) else { continue }
                metrics.refusal(code.rawValue)
                send(
                    WireEncoder.encodeError(code, rid: rid), type: "error", to: [session], transport: transport,
                    inOrder: false)
            case .janusError(let request, let code, let reason):
                logger.warning(
                    "media server refused a request",
                    metadata: ["request": "\(request)", "code": "\(code)", "reason": "\(reason)"])
            }
        }
    }
}
