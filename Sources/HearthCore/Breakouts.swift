/// A breakout's room-scoped id: what staff commands name it by. Never reused in a room.
public struct BreakoutID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    public static func < (a: BreakoutID, b: BreakoutID) -> Bool { a.rawValue < b.rawValue }
    /// Wire form: `b` followed by the number, e.g. `b3`.
    public var description: String { "b\(rawValue)" }
    /// Parses the canonical wire form only (`b3`, not `b03` or `b+3`).
    public init?(wire: String) {
        guard wire.first == "b", let n = UInt32(wire.dropFirst()), wire == "b\(n)" else { return nil }
        self.rawValue = n
    }
}

/// One breakout of a plan as staff send it: its name and the members put in it by hand.
public struct BreakoutPlanEntry: Hashable, Sendable {
    public var name: String
    public var members: [ParticipantID]

    public init(name: String, members: [ParticipantID] = []) {
        self.name = name
        self.members = members
    }
}

/// An open breakout: a small room inside the session.
public struct Breakout: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        /// Opened from the plan with the others (`breakouts-open`); the time limit applies.
        case planned
        /// A private check-in one staff member opened for one member (`pull-aside`).
        case pullAside = "pull-aside"
    }

    public let id: BreakoutID
    public var name: String
    public var kind: Kind
    /// Pull-aside only: the breakout each of its two members came from (absent: the main
    /// room). Closing it sends them back there, if that breakout is still open.
    var returns: [ParticipantID: BreakoutID] = [:]
}

/// Everything about a room's breakouts: the plan staff are preparing, the breakouts open
/// now, and when the planned ones end. Which member is where is the seat's `breakout`.
public struct Breakouts: Hashable, Sendable {
    /// The plan for the next opening (ids given at planning), empty when there is none.
    public internal(set) var plan: [PlannedBreakout] = []
    /// Open breakouts, in id order: the planned ones (while open) and any pull-asides.
    public internal(set) var open: [Breakout] = []
    /// When the planned breakouts return by themselves (nil: no time limit or not open).
    public internal(set) var endsAt: Instant?
    var nextID: UInt32 = 1

    public struct PlannedBreakout: Hashable, Sendable {
        public var id: BreakoutID
        public var name: String
        public var members: [ParticipantID]
    }

    /// Whether the planned breakouts are open (pull-asides do not count).
    public var plannedOpen: Bool { open.contains { $0.kind == .planned } }

    public func breakout(_ id: BreakoutID) -> Breakout? { open.first { $0.id == id } }

    mutating func newID() -> BreakoutID {
        defer { nextID += 1 }
        return BreakoutID(nextID)
    }
}

/// Where a member is, as told to them: the breakout's id, name and kind, and when it ends.
public struct BreakoutRef: Hashable, Sendable {
    public var id: BreakoutID
    public var name: String
    public var kind: Breakout.Kind
    public var endsAt: Instant?
}

/// One breakout (planned or open) as staff see it, with its members.
public struct BreakoutView: Hashable, Sendable {
    public var id: BreakoutID
    public var name: String
    public var kind: Breakout.Kind
    public var members: [ParticipantID]
}

/// The room's breakouts as staff see them (nobody else does).
public struct BreakoutsView: Hashable, Sendable {
    /// The plan for the next opening (empty when there is none).
    public var plan: [BreakoutView]
    /// The breakouts open now, with who is in each (visiting staff included).
    public var open: [BreakoutView]
    public var endsAt: Instant?
}
