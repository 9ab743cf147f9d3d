/// All the rooms of one node, and which room each connection belongs to.
///
/// A thin router over `Room`: it creates a room on its first arrival, sends each input to
/// its room, and forgets connections once they are gone. Still pure: no I/O, no clock.
public struct Engine: Sendable {
    public private(set) var rooms: [RoomID: Room] = [:]
    var roomOfConnection: [ConnectionID: RoomID] = [:]
    public var defaultSettings: RoomSettings

    public init(defaultSettings: RoomSettings = RoomSettings()) {
        self.defaultSettings = defaultSettings
    }

    /// Every input the engine takes, as one value: what the shell journals, replays, fuzzes
    /// and applies. Time is not part of it: it is the `at` of `apply(_:at:)`.
    public enum Input: Hashable, Sendable {
        /// `hello`: an authenticated identity arrives. `settings` apply only if this creates the room.
        case connect(
            ConnectionID, room: RoomID, identity: Identity, credential: ResumeCredential, settings: RoomSettings?,
            rid: String?)
        /// `resume`: a seat's secret (hashed by the shell), the credential that replaces it on
        /// success (nil: keep the seat's; see `Room.resume`), and the last sequence number processed.
        case resume(
            ConnectionID, room: RoomID, resumeHash: String, credential: ResumeCredential?, lastSeq: UInt64,
            rid: String?)
        /// A command from a connection.
        case command(ClientCommand, from: ConnectionID, rid: String?)
        /// The transport noticed that a connection is gone.
        case disconnected(ConnectionID)
        /// A timer the engine scheduled came due.
        case timerFired(TimerID)
        /// The operations API creates a room ahead of its session, with its settings.
        case createRoom(RoomID, settings: RoomSettings)
        /// The operations API ends a room for everyone.
        case endRoom(RoomID)
    }

    /// Applies one input at `at`: the one way into the engine. An input that changes nothing
    /// (a `createRoom` of an open room, an `endRoom` of no open room) gives no effects.
    public mutating func apply(_ input: Input, at: Instant) -> [Effect] {
        switch input {
        case .connect(let connection, let room, let identity, let credential, let settings, let rid):
            return connect(
                connection, room: room, identity: identity, credential: credential, settings: settings, rid: rid, at: at
            )
        case .resume(let connection, let room, let resumeHash, let credential, let lastSeq, let rid):
            return resume(
                connection, room: room, resumeHash: resumeHash, credential: credential, lastSeq: lastSeq, rid: rid,
                at: at)
        case .command(let command, let connection, let rid):
            return handle(command, from: connection, rid: rid, at: at)
        case .disconnected(let connection):
            return disconnected(connection, at: at)
        case .timerFired(let timer):
            return timerFired(timer, at: at)
        case .createRoom(let room, let settings):
            return createRoom(room, settings: settings, at: at) ?? []
        case .endRoom(let room):
            return endRoom(room, at: at) ?? []
        }
    }

    /// Whether a room with this id exists and has not ended.
    public func hasOpenRoom(_ id: RoomID) -> Bool { rooms[id].map { !$0.isEnded } ?? false }

    /// The room a connection has joined (or tried to), if any.
    public func room(of connection: ConnectionID) -> RoomID? { roomOfConnection[connection] }

    /// `hello`: an authenticated identity arrives. `settings` apply only if this creates the room.
    public mutating func connect(
        _ connection: ConnectionID, room id: RoomID, identity: Identity, credential: ResumeCredential,
        settings: RoomSettings? = nil, rid: String? = nil, at: Instant
    ) -> [Effect] {
        roomOfConnection[connection] = id
        return withRoom(id, creating: settings ?? defaultSettings, at: at) {
            $0.connect(connection, identity: identity, credential: credential, rid: rid, at: at)
        }
    }

    /// `resume`: a seat's secret (hashed by the shell), the credential that replaces it on
    /// success (see `Room.resume`), and the last sequence number processed.
    public mutating func resume(
        _ connection: ConnectionID, room id: RoomID, resumeHash: String, credential: ResumeCredential?,
        lastSeq: UInt64, rid: String? = nil, at: Instant
    ) -> [Effect] {
        guard rooms[id] != nil else {
            return [
                .send(Message(rid: rid, event: .error(.resumeFailed)), to: [connection]), .resumeRefused(connection),
            ]
        }
        var effects = withRoom(id, creating: defaultSettings, at: at) {
            $0.resume(connection, resumeHash: resumeHash, credential: credential, lastSeq: lastSeq, rid: rid, at: at)
        }
        // A failed resume leaves the connection free to say hello: it belongs to no room yet.
        if rooms[id]?.seat(of: connection) != nil {
            roomOfConnection[connection] = id
        } else {
            effects.append(.resumeRefused(connection))
        }
        return effects
    }

    public mutating func handle(
        _ command: ClientCommand, from connection: ConnectionID, rid: String? = nil, at: Instant
    ) -> [Effect] {
        guard let id = roomOfConnection[connection], rooms[id] != nil else {
            return [.send(Message(rid: rid, event: .error(.helloRequired)), to: [connection])]
        }
        return withRoom(id, creating: defaultSettings, at: at) {
            $0.handle(command, from: connection, rid: rid, at: at)
        }
    }

    public mutating func disconnected(_ connection: ConnectionID, at: Instant) -> [Effect] {
        guard let id = roomOfConnection.removeValue(forKey: connection), rooms[id] != nil else { return [] }
        return withRoom(id, creating: defaultSettings, at: at) { $0.disconnected(connection, at: at) }
    }

    public mutating func timerFired(_ timer: TimerID, at: Instant) -> [Effect] {
        guard rooms[timer.room] != nil else { return [] }
        return withRoom(timer.room, creating: defaultSettings, at: at) { $0.timerFired(timer.kind, at: at) }
    }

    /// Runs `body` on the room, creating it if needed. An existing room is changed in place in
    /// the dictionary (through its index: one hashed lookup, no removal and insertion), so its
    /// storage stays uniquely referenced and is never copied. An input that ends the room adds
    /// `.roomEnded` after the room's own effects.
    mutating func withRoom(
        _ id: RoomID, creating settings: RoomSettings, at: Instant, _ body: (inout Room) -> [Effect]
    ) -> [Effect] {
        if let index = rooms.index(forKey: id) {
            return Self.run(&rooms.values[index], id, body)
        }
        var room = Room(id: id, settings: settings, at: at)
        let effects = Self.run(&room, id, body)
        rooms[id] = room
        return effects
    }

    private static func run(_ room: inout Room, _ id: RoomID, _ body: (inout Room) -> [Effect]) -> [Effect] {
        let wasEnded = room.isEnded
        var effects = body(&room)
        room.settleMediaMode(into: &effects)
        if !wasEnded, case .ended(let endedAt) = room.phase { effects.append(.roomEnded(id, at: endedAt)) }
        return effects
    }

    /// The operations API creates a room ahead of its session, with its settings. Returns nil
    /// (and changes nothing) when a room with that id is open.
    public mutating func createRoom(_ id: RoomID, settings: RoomSettings, at: Instant) -> [Effect]? {
        if let existing = rooms[id], !existing.isEnded { return nil }
        var room = Room(id: id, settings: settings, at: at)
        var fx = [.audit(AuditRecord(at: at, room: id, actor: nil, subject: nil, action: "create"))] + room.windowTimers
        room.settleIdleTimer(at: at, into: &fx)
        rooms[id] = room
        return fx
    }

    /// The operations API ends a room for everyone. Nil when there is no such open room.
    public mutating func endRoom(_ id: RoomID, at: Instant) -> [Effect]? {
        guard let room = rooms[id], !room.isEnded else { return nil }
        return withRoom(id, creating: defaultSettings, at: at) { $0.endByOperator(at: at) }
    }

    /// Rooms not ended: what the node's room limit (`limits.maxRooms`) counts. Ended rooms the
    /// engine still keeps (until retention forgets them) do not count.
    public var openRoomCount: Int { rooms.values.reduce(0) { $0 + ($1.isEnded ? 0 : 1) } }

    /// Forgets ended rooms that ended before `cutoff` (their records live in the shell's store).
    /// Forgets a room and its connections, whatever its phase: in a cluster, the room moved to
    /// another node (which rebuilds it from the journal).
    public mutating func forgetRoom(_ id: RoomID) {
        guard rooms.removeValue(forKey: id) != nil else { return }
        roomOfConnection = roomOfConnection.filter { $0.value != id }
    }

    public mutating func dropEndedRooms(before cutoff: Instant) {
        rooms = rooms.filter { _, room in
            if case .ended(let at) = room.phase { return at >= cutoff }
            return true
        }
    }
}
