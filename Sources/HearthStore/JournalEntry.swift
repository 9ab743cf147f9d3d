import HearthCore

/// One accepted engine input (`Engine.Input`) as the journal encodes it for crash recovery:
/// the input, the instant it was applied at, and the room it went to. `init?(_:room:at:)`
/// makes one from an input, `input` gives it back, and `JournalCoding` turns it into bytes.
///
/// Replaying a store's entries, in order, into a fresh `Engine` rebuilds the same rooms:
/// the engine is pure, so the same inputs at the same instants give the same state. What is
/// deliberately left out, because it changes no room state:
/// - request ids (`rid`): they only label direct replies to the sender;
/// - resume secrets: only their hash is kept (the secret goes to the client once, in
///   `welcome` or `resumed`, and replay hands the engine an empty secret);
/// - tokens: the shell verified the token before the input exists; only the identity
///   (user id, role, alias) and the room settings it carried are kept;
/// - signalling (`offer`/`answer`/`ice`): relayed, never stored. `JournaledCommand` cannot
///   hold one, so no journal entry can.
///
/// Every entry names its room so that ended rooms' journals can be compacted by room.
public enum JournalEntry: Hashable, Sendable {
    /// `hello`: an authenticated identity arrives.
    case connect(Connect)
    /// `resume`: a seat's secret, hashed by the shell, the hash of the secret that replaces it
    /// on success, and the last sequence number processed. `newResumeHash` is nil only in
    /// entries written before secrets rotated: replaying one keeps the seat's secret, as then.
    case resume(
        connection: ConnectionID, room: RoomID, resumeHash: String, newResumeHash: String? = nil, lastSeq: UInt64,
        at: Instant)
    /// A command from a joined connection (never signalling).
    case command(connection: ConnectionID, room: RoomID, command: JournaledCommand, at: Instant)
    /// The transport noticed that a joined connection is gone.
    case disconnected(connection: ConnectionID, room: RoomID, at: Instant)
    /// A timer the engine scheduled came due.
    case timerFired(TimerID, at: Instant)
    /// The operations API created a room with these settings.
    case createRoom(RoomID, settings: RoomSettings, at: Instant)
    /// The operations API ended a room.
    case endRoom(RoomID, at: Instant)

    /// The arguments of `Engine.connect`, less the resume secret and the request id.
    public struct Connect: Hashable, Sendable {
        public var connection: ConnectionID
        public var room: RoomID
        public var identity: Identity
        public var resumeHash: String
        /// The settings the room gets if this arrival creates it. Pass the full effective
        /// settings (the shell's defaults merged with the token's), not nil: replay must not
        /// depend on the defaults configured when the server restarts.
        public var settings: RoomSettings?
        public var at: Instant

        public init(
            connection: ConnectionID, room: RoomID, identity: Identity, resumeHash: String, settings: RoomSettings?,
            at: Instant
        ) {
            self.connection = connection
            self.room = room
            self.identity = identity
            self.resumeHash = resumeHash
            self.settings = settings
            self.at = at
        }
    }

    /// A journal entry for a member's command, or nil for signalling (which is never journaled).
    public static func command(
        _ command: ClientCommand, from connection: ConnectionID, room: RoomID, at: Instant
    ) -> JournalEntry? {
        guard let journaled = JournaledCommand(command) else { return nil }
        return .command(connection: connection, room: room, command: journaled, at: at)
    }

    public var room: RoomID {
        switch self {
        case .connect(let c): return c.room
        case .resume(_, let room, _, _, _, _): return room
        case .command(_, let room, _, _): return room
        case .disconnected(_, let room, _): return room
        case .timerFired(let timer, _): return timer.room
        case .createRoom(let room, _, _), .endRoom(let room, _): return room
        }
    }

    public var at: Instant {
        switch self {
        case .connect(let c): return c.at
        case .resume(_, _, _, _, _, let at): return at
        case .command(_, _, _, let at): return at
        case .disconnected(_, _, let at): return at
        case .timerFired(_, let at): return at
        case .createRoom(_, _, let at), .endRoom(_, let at): return at
        }
    }

    /// The connection the input came from (nil for timers).
    public var connection: ConnectionID? {
        switch self {
        case .connect(let c): return c.connection
        case .resume(let connection, _, _, _, _, _): return connection
        case .command(let connection, _, _, _): return connection
        case .disconnected(let connection, _, _): return connection
        case .timerFired, .createRoom, .endRoom: return nil
        }
    }

    /// The `kind` column of the journal table.
    public var kind: String {
        switch self {
        case .connect: return "connect"
        case .resume: return "resume"
        case .command: return "command"
        case .disconnected: return "disconnected"
        case .timerFired: return "timer"
        case .createRoom: return "create-room"
        case .endRoom: return "end-room"
        }
    }

    /// The journal entry of an engine input applied at `at`, or nil for an input never
    /// journaled (signalling). `room` is the room the input goes to (the shell's knowledge for
    /// a command or a disconnect); the request id and the resume secrets are dropped.
    public init?(_ input: Engine.Input, room: RoomID, at: Instant) {
        switch input {
        case .connect(let connection, let room, let identity, let credential, let settings, _):
            self = .connect(
                Connect(
                    connection: connection, room: room, identity: identity, resumeHash: credential.hash,
                    settings: settings, at: at))
        case .resume(let connection, let room, let resumeHash, let credential, let lastSeq, _):
            self = .resume(
                connection: connection, room: room, resumeHash: resumeHash, newResumeHash: credential?.hash,
                lastSeq: lastSeq, at: at)
        case .command(let command, let connection, _):
            guard let journaled = JournaledCommand(command) else { return nil }
            self = .command(connection: connection, room: room, command: journaled, at: at)
        case .disconnected(let connection):
            self = .disconnected(connection: connection, room: room, at: at)
        case .timerFired(let timer):
            self = .timerFired(timer, at: at)
        case .createRoom(let room, let settings):
            self = .createRoom(room, settings: settings, at: at)
        case .endRoom(let room):
            self = .endRoom(room, at: at)
        }
    }

    /// The engine input this entry records (applied at `at`), as replay feeds it: resume
    /// secrets are empty (only their hashes were kept) and there is no request id.
    public var input: Engine.Input {
        switch self {
        case .connect(let c):
            return .connect(
                c.connection, room: c.room, identity: c.identity,
                credential: ResumeCredential(secret: "", hash: c.resumeHash), settings: c.settings, rid: nil)
        case .resume(let connection, let room, let resumeHash, let newResumeHash, let lastSeq, _):
            return .resume(
                connection, room: room, resumeHash: resumeHash,
                credential: newResumeHash.map { ResumeCredential(secret: "", hash: $0) }, lastSeq: lastSeq, rid: nil)
        case .command(let connection, _, let command, _):
            return .command(command.command, from: connection, rid: nil)
        case .disconnected(let connection, _, _):
            return .disconnected(connection)
        case .timerFired(let timer, _):
            return .timerFired(timer)
        case .createRoom(let room, let settings, _):
            return .createRoom(room, settings: settings)
        case .endRoom(let room, _):
            return .endRoom(room)
        }
    }

    /// Feeds this input to the engine, as the shell did when it was accepted.
    @discardableResult
    public func apply(to engine: inout Engine) -> [Effect] { engine.apply(input, at: at) }
}

/// A `ClientCommand` that may be journaled: any command but `.signal`.
public struct JournaledCommand: Hashable, Sendable {
    public let command: ClientCommand

    /// Nil for `.signal`: signalling payloads are relayed and never stored.
    public init?(_ command: ClientCommand) {
        if case .signal = command { return nil }
        self.command = command
    }
}

/// What replaying a journal into an engine leaves behind besides the rooms.
public struct ReplayResult: Sendable {
    /// The timers still pending after the last entry (scheduled and neither cancelled nor
    /// fired), with when they are due. Due times may already be past: fire those at once.
    public var timers: [TimerID: Instant]
    /// Connections the rebuilt engine still believes connected. None of them survived the
    /// restart: the shell should feed (and journal) `disconnected` for each, so their
    /// seats are held for the grace period and their resume secrets work.
    public var connections: [ConnectionID]
    /// The highest connection id in the journal: new connection ids must be above it, or a
    /// new connection could be taken for a journaled one.
    public var maxConnectionID: UInt64
    /// How many entries were applied.
    public var entries: Int
}

extension JournalEntry {
    /// Replays `entries`, in order, into `engine`, discarding every effect except timers.
    /// The sends, closes and records were carried out (and the records stored) the first time.
    public static func replay(_ entries: [JournalEntry], into engine: inout Engine) -> ReplayResult {
        var timers: [TimerID: Instant] = [:]
        var maxConnection: UInt64 = 0
        var seen = Set<ConnectionID>()
        for entry in entries {
            if let connection = entry.connection {
                maxConnection = max(maxConnection, connection.rawValue)
                seen.insert(connection)
            }
            for effect in entry.apply(to: &engine) {
                switch effect {
                case .schedule(let timer, let at): timers[timer] = at
                case .cancel(let timer): timers[timer] = nil
                case .send, .close, .audit, .attendance, .roomEnded, .resumeRefused: break
                }
            }
            if case .timerFired(let timer, _) = entry { timers[timer] = nil }
        }
        let live = seen.filter { engine.room(of: $0) != nil }.sorted { $0.rawValue < $1.rawValue }
        return ReplayResult(timers: timers, connections: live, maxConnectionID: maxConnection, entries: entries.count)
    }
}
