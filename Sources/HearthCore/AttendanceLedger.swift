/// Attendance for one session, computed from its attendance records alone.
public struct AttendanceLedger: Hashable, Sendable {
    public struct Interval: Hashable, Sendable {
        public var start: Instant
        public var end: Instant
        public var milliseconds: Int64 { end - start }
    }

    public struct Member: Hashable, Sendable {
        public var userID: UserID
        public var role: Role
        /// Time in the room; reconnects within the grace period are already merged.
        public var inRoom: [Interval] = []
        public var waiting: [Interval] = []
        public var firstAdmitted: Instant? { inRoom.first?.start }
        public var lastLeft: Instant? { inRoom.last?.end }
        public var roomMilliseconds: Int64 { inRoom.reduce(0) { $0 + $1.milliseconds } }
        public var waitingMilliseconds: Int64 { waiting.reduce(0) { $0 + $1.milliseconds } }
    }

    /// Per user, in order of first appearance.
    public private(set) var members: [Member] = []

    /// Non-staff members who were ever admitted: the session's participant count.
    public var participantCount: Int { members.filter { !$0.role.isStaff && !$0.inRoom.isEmpty }.count }

    /// Builds the ledger. Intervals still open are closed at `until` (the session's end or now).
    public init(records: [AttendanceRecord], until: Instant) {
        var index: [UserID: Int] = [:]
        var openRoom: [UserID: Instant] = [:]
        var openWaiting: [UserID: Instant] = [:]
        for record in records.sorted(by: { $0.at < $1.at }) {
            let user = record.member.userID
            let i: Int
            if let existing = index[user] {
                i = existing
            } else {
                i = members.count
                index[user] = i
                members.append(Member(userID: user, role: record.member.role))
            }
            members[i].role = record.member.role
            switch record.kind {
            case .enterRoom: openRoom[user] = record.at
            case .enterWaiting: openWaiting[user] = record.at
            case .exitRoom:
                if let start = openRoom.removeValue(forKey: user) {
                    Self.append(Interval(start: start, end: record.at), to: &members[i].inRoom)
                }
            case .exitWaiting:
                if let start = openWaiting.removeValue(forKey: user) {
                    Self.append(Interval(start: start, end: record.at), to: &members[i].waiting)
                }
            }
        }
        for (user, start) in openRoom {
            Self.append(Interval(start: start, end: max(start, until)), to: &members[index[user]!].inRoom)
        }
        for (user, start) in openWaiting {
            Self.append(Interval(start: start, end: max(start, until)), to: &members[index[user]!].waiting)
        }
    }

    /// Appends in time order, merging an interval that touches the previous one.
    static func append(_ interval: Interval, to list: inout [Interval]) {
        list.append(interval)
        list.sort { $0.start < $1.start }
        var merged: [Interval] = []
        for next in list {
            if let last = merged.last, next.start <= last.end {
                merged[merged.count - 1].end = max(last.end, next.end)
            } else {
                merged.append(next)
            }
        }
        list = merged
    }
}
