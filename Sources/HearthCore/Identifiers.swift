/// A point in time, in milliseconds since the Unix epoch. The engine owns no clock:
/// every command arrives with the time the shell read from its own.
public struct Instant: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }

    public static func < (a: Instant, b: Instant) -> Bool { a.milliseconds < b.milliseconds }
    public static func + (a: Instant, ms: Int64) -> Instant { Instant(milliseconds: a.milliseconds + ms) }
    public static func - (a: Instant, b: Instant) -> Int64 { a.milliseconds - b.milliseconds }
    public var description: String { "t\(milliseconds)" }
}

/// The room's opaque id, as it appears in the URL path (never a name).
public struct RoomID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    /// An id as clients and operators may name one (`/v1/rooms/{room}`, `/api/v1/rooms/{room}`,
    /// a created room's `id`): 1–64 of `A-Z a-z 0-9 _ -`, so it never needs escaping. Nil otherwise.
    public init?<S: StringProtocol>(validating text: S) {
        guard Self.isValid(text) else { return nil }
        self.rawValue = String(text)
    }
    /// Whether `text` is a valid room id (see ``init(validating:)``).
    public static func isValid<S: StringProtocol>(_ text: S) -> Bool {
        (1...64).contains(text.utf8.count)
            && text.utf8.allSatisfy {
                ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 95
            }
    }
    public static func < (a: RoomID, b: RoomID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { rawValue }
}

/// The clinic's user id (the token's `sub`). Only staff ever see another member's.
public struct UserID: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }
}

/// A room-scoped participant id: what peers know each other by. Never reused in a room.
public struct ParticipantID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    public static func < (a: ParticipantID, b: ParticipantID) -> Bool { a.rawValue < b.rawValue }
    /// Wire form: `p` followed by the number, e.g. `p7`.
    public var description: String { "p\(rawValue)" }
    /// Parses the canonical wire form only (`p7`, not `p07` or `p+7`).
    public init?(wire: String) {
        guard wire.first == "p", let n = UInt32(wire.dropFirst()), wire == "p\(n)" else { return nil }
        self.rawValue = n
    }
}

/// One transport connection, named by the shell.
public struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public var description: String { "c\(rawValue)" }
}

/// A chat message's room-scoped id.
public struct MessageID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: MessageID, b: MessageID) -> Bool { a.rawValue < b.rawValue }
    /// Wire form: `m` followed by the number, e.g. `m12`.
    public var description: String { "m\(rawValue)" }
    /// Parses the canonical wire form only (`m12`, not `m012` or `m+12`).
    public init?(wire: String) {
        guard wire.first == "m", let n = UInt64(wire.dropFirst()), wire == "m\(n)" else { return nil }
        self.rawValue = n
    }
}

/// What the shell has already authenticated about a connection (from its join token).
public struct Identity: Hashable, Sendable {
    public var userID: UserID
    public var role: Role
    public var alias: String

    public init(userID: UserID, role: Role, alias: String) {
        self.userID = userID
        self.role = role
        self.alias = alias
    }
}

/// A resume credential made by the shell: the engine keeps only the hash, and hands
/// the secret back exactly once, in the `welcome` to the connection that earned it.
public struct ResumeCredential: Hashable, Sendable {
    public var secret: String
    public var hash: String
    public init(secret: String, hash: String) {
        self.secret = secret
        self.hash = hash
    }
}
