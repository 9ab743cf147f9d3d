/// Why the room closes a connection. `closeCode` is the WebSocket close code the shell uses,
/// and the raw value the close reason text.
public enum CloseReason: String, CaseIterable, Hashable, Sendable {
    case ended = "session ended"
    case left = "left"
    case removed = "removed"
    case banned = "banned"
    case denied = "denied"
    case takenOver = "taken over by another connection"
    case roomLocked = "room locked"
    case waitingRoomFull = "waiting room full"

    public var closeCode: CloseCode {
        switch self {
        case .ended: return .ended
        case .left: return .left
        case .removed: return .removed
        case .banned: return .banned
        case .denied: return .denied
        case .takenOver: return .takenOver
        case .roomLocked: return .roomLocked
        case .waitingRoomFull: return .waitingRoomFull
        }
    }

    /// `closeCode` as the number the transport sends.
    public var code: UInt16 { closeCode.rawValue }
}

/// A timer the room asks the shell to run. Timers are effects: the engine has no clock.
public struct TimerID: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// A dropped member's seat stops being held.
        case grace(ParticipantID)
        /// A room created ahead of its session opens.
        case opens
        /// A room's session window closes: the room ends.
        case closes
        /// A room with no seat (none live, none held) since the timer was set ends by itself.
        case idle
        /// The warning before the planned breakouts' time limit.
        case breakoutsWarning
        /// The planned breakouts' time limit: everyone in them returns.
        case breakoutsEnd
    }

    public var room: RoomID
    public var kind: Kind

    public init(room: RoomID, kind: Kind) {
        self.room = room
        self.kind = kind
    }

    public var description: String {
        switch kind {
        case .grace(let id): return "\(room)/grace/\(id)"
        case .opens: return "\(room)/opens"
        case .closes: return "\(room)/closes"
        case .idle: return "\(room)/idle"
        case .breakoutsWarning: return "\(room)/breakouts-warning"
        case .breakoutsEnd: return "\(room)/breakouts-end"
        }
    }
}

/// What the shell must do after the engine handled an input, in order.
public enum Effect: Hashable, Sendable {
    case send(Message, to: [ConnectionID])
    case close(ConnectionID, CloseReason)
    case audit(AuditRecord)
    case attendance(AttendanceRecord)
    case schedule(TimerID, at: Instant)
    case cancel(TimerID)
    /// The room has just ended (last of the input's effects): the shell records when.
    case roomEnded(RoomID, at: Instant)
    /// A `resume` was refused (after its `resume-failed` error): the connection belongs to no
    /// room, and the shell closes it.
    case resumeRefused(ConnectionID)
}
