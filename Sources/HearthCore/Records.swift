/// A member as named in the records: the user id is kept there (staff-level data).
public struct Party: Hashable, Sendable {
    public var userID: UserID
    public var id: ParticipantID
    public var role: Role

    public init(userID: UserID, id: ParticipantID, role: Role) {
        self.userID = userID
        self.id = id
        self.role = role
    }
}

/// One audit record. Never carries chat text, signalling payloads, locations or tokens.
public struct AuditRecord: Hashable, Sendable {
    public enum Outcome: Hashable, Sendable {
        case done
        case refused(ErrorCode)
    }

    public var at: Instant
    public var room: RoomID
    /// Who did it; nil when the room itself did (grace expiry, automatic admission, end).
    public var actor: Party?
    public var subject: Party?
    /// What happened: a command name (`admit`, `mute`, …) or a membership event
    /// (`arrive`, `drop`, `resume`, `takeover`, `expire`).
    public var action: String
    public var outcome: Outcome
    /// Staff-written reason (deny, remove), or a short fixed detail (`participant->cofacilitator`).
    public var reason: String?

    public init(
        at: Instant, room: RoomID, actor: Party?, subject: Party?, action: String,
        outcome: Outcome = .done, reason: String? = nil
    ) {
        self.at = at
        self.room = room
        self.actor = actor
        self.subject = subject
        self.action = action
        self.outcome = outcome
        self.reason = reason
    }
}

/// One attendance transition. Reconnects within the grace period produce none, so the
/// ledger's intervals already have those gaps merged.
public struct AttendanceRecord: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        case enterWaiting = "enter-waiting"
        case exitWaiting = "exit-waiting"
        case enterRoom = "enter-room"
        case exitRoom = "exit-room"
        /// Within the room: into a breakout and out of it (the time still counts as in the room).
        case enterBreakout = "enter-breakout"
        case exitBreakout = "exit-breakout"
    }

    public var at: Instant
    public var room: RoomID
    public var member: Party
    public var kind: Kind
    /// For enter-breakout and exit-breakout: which breakout, and its name (as staff named it).
    public var breakout: BreakoutID?
    public var breakoutName: String?

    public init(
        at: Instant, room: RoomID, member: Party, kind: Kind, breakout: BreakoutID? = nil, breakoutName: String? = nil
    ) {
        self.at = at
        self.room = room
        self.member = member
        self.kind = kind
        self.breakout = breakout
        self.breakoutName = breakoutName
    }
}
