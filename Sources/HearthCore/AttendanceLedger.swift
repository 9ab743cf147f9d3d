/// Attendance for one session, computed from its attendance records alone.
public struct AttendanceLedger: Hashable, Sendable {
    public struct Interval: Hashable, Sendable {
        public var start: Instant
        public var end: Instant
        public var milliseconds: Int64 { end - start }
    }

    /// Time in one breakout (it is also time in the room).
    public struct BreakoutInterval: Hashable, Sendable {
        public var breakout: BreakoutID
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
        /// Which breakout the member was in, when: within `inRoom`, in time order.
        public var breakouts: [BreakoutInterval] = []
        public var firstAdmitted: Instant? { inRoom.first?.start }
        public var lastLeft: Instant? { inRoom.last?.end }
        public var roomMilliseconds: Int64 { inRoom.reduce(0) { $0 + $1.milliseconds } }
        public var waitingMilliseconds: Int64 { waiting.reduce(0) { $0 + $1.milliseconds } }
        /// Time per breakout, in milliseconds, in order of first entry (a breakout entered
        /// twice is summed).
        public var timeInBreakouts: [(breakout: BreakoutID, milliseconds: Int64)] {
            var totals: [(breakout: BreakoutID, milliseconds: Int64)] = []
            for interval in breakouts {
                if let i = totals.firstIndex(where: { $0.breakout == interval.breakout }) {
                    totals[i].milliseconds += interval.milliseconds
                } else {
                    totals.append((interval.breakout, interval.milliseconds))
                }
            }
            return totals
        }

        /// Time per breakout, in milliseconds.
        public var breakoutMilliseconds: [BreakoutID: Int64] {
            Dictionary(uniqueKeysWithValues: timeInBreakouts.map { ($0.breakout, $0.milliseconds) })
        }
    }

    /// Per user, in order of first appearance.
    public private(set) var members: [Member] = []
    /// The breakouts' names, as staff named them.
    public private(set) var breakoutNames: [BreakoutID: String] = [:]

    /// Non-staff members who were ever admitted: the session's participant count.
    public var participantCount: Int { members.filter { !$0.role.isStaff && !$0.inRoom.isEmpty }.count }

    /// Builds the ledger. Intervals still open are closed at `until` (the session's end or now).
    public init(records: [AttendanceRecord], until: Instant) {
        var index: [UserID: Int] = [:]
        var openRoom: [UserID: Instant] = [:]
        var openWaiting: [UserID: Instant] = [:]
        var openBreakout: [UserID: (BreakoutID, Instant)] = [:]
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
            case .enterBreakout:
                if let breakout = record.breakout {
                    openBreakout[user] = (breakout, record.at)
                    if let name = record.breakoutName { breakoutNames[breakout] = name }
                }
            case .exitBreakout:
                if let (breakout, start) = openBreakout.removeValue(forKey: user), breakout == record.breakout {
                    members[i].breakouts.append(BreakoutInterval(breakout: breakout, start: start, end: record.at))
                }
            }
        }
        for (user, (breakout, start)) in openBreakout {
            members[index[user]!].breakouts.append(
                BreakoutInterval(breakout: breakout, start: start, end: max(start, until)))
        }
        for (user, start) in openRoom {
            Self.append(Interval(start: start, end: max(start, until)), to: &members[index[user]!].inRoom)
        }
        for (user, start) in openWaiting {
            Self.append(Interval(start: start, end: max(start, until)), to: &members[index[user]!].waiting)
        }
        for i in members.indices { members[i].breakouts = Self.clip(members[i].breakouts, to: members[i].inRoom) }
    }

    /// Breakout time counts only while in the room: a seat held past its exit (it left when
    /// its connection dropped) leaves its breakout then too. Touching intervals in the same
    /// breakout merge (a reconnect does not split one).
    static func clip(_ list: [BreakoutInterval], to room: [Interval]) -> [BreakoutInterval] {
        var out: [BreakoutInterval] = []
        for b in list.sorted(by: { ($0.start, $0.breakout) < ($1.start, $1.breakout) }) {
            for r in room {
                let start = max(b.start, r.start)
                let end = min(b.end, r.end)
                guard start < end else { continue }
                if let last = out.last, last.breakout == b.breakout, start <= last.end {
                    out[out.count - 1].end = max(last.end, end)
                } else {
                    out.append(BreakoutInterval(breakout: b.breakout, start: start, end: end))
                }
            }
        }
        return out
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
