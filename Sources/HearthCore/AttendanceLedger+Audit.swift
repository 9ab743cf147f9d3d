extension AttendanceLedger {
    /// Recomputes attendance from the audit trail alone: every membership change is audited
    /// (arrive, admit, deny, send-back, facilitator-away, leave, remove, ban, drop, resume,
    /// takeover, expire, end, and each breakout-move and breakout-visit with `from->to` as its
    /// reason; `b1->b1` moved nobody), so the intervals follow from it. Breakout names are not in the audit trail. A test checks that this
    /// agrees with the ledger built from the attendance records.
    public init(auditRecords: [AuditRecord], until: Instant) {
        struct Presence {
            var party: Party
            var placement: Placement
            var placedAt: Instant
            var heldSince: Instant?
            var breakout: BreakoutID?
            /// Leaving for good: when the seat left (a held seat left when it dropped).
            func leftAt(_ now: Instant) -> Instant {
                guard let heldSince else { return now }
                return max(heldSince, placedAt)
            }
        }
        var present: [ParticipantID: Presence] = [:]
        var records: [AttendanceRecord] = []
        func record(_ kind: AttendanceRecord.Kind, _ p: Presence, _ at: Instant, _ room: RoomID) {
            records.append(AttendanceRecord(at: at, room: room, member: p.party, kind: kind))
        }
        func leaveBreakout(_ p: inout Presence, _ at: Instant, _ room: RoomID) {
            guard let b = p.breakout else { return }
            records.append(AttendanceRecord(at: at, room: room, member: p.party, kind: .exitBreakout, breakout: b))
            p.breakout = nil
        }
        func exit(_ id: ParticipantID, _ now: Instant, _ room: RoomID) {
            guard var p = present.removeValue(forKey: id) else { return }
            leaveBreakout(&p, p.leftAt(now), room)
            record(p.placement == .room ? .exitRoom : .exitWaiting, p, p.leftAt(now), room)
        }
        for r in auditRecords {
            guard r.outcome == .done else { continue }
            let subject = r.subject
            switch r.action {
            case "arrive":
                guard let s = subject else { continue }
                let p = Presence(party: s, placement: s.role.isStaff ? .room : .waiting, placedAt: r.at)
                present[s.id] = p
                record(p.placement == .room ? .enterRoom : .enterWaiting, p, r.at, r.room)
            case "admit":
                guard let s = subject, var p = present[s.id] else { continue }
                record(.exitWaiting, p, r.at, r.room)
                p.placement = .room
                p.placedAt = r.at
                present[s.id] = p
                record(.enterRoom, p, r.at, r.room)
            case "send-back", "facilitator-away":
                guard let s = subject, var p = present[s.id] else { continue }
                leaveBreakout(&p, r.at, r.room)
                record(.exitRoom, p, r.at, r.room)
                p.placement = .waiting
                p.placedAt = r.at
                present[s.id] = p
                record(.enterWaiting, p, r.at, r.room)
            case "breakout-move", "breakout-visit":
                guard let s = subject, var p = present[s.id], let move = r.reason?.split(separator: ">"),
                    move.count == 2, move[0] != move[1]
                else { continue }
                leaveBreakout(&p, r.at, r.room)
                if let to = BreakoutID(wire: String(move[1])) {
                    p.breakout = to
                    records.append(
                        AttendanceRecord(at: r.at, room: r.room, member: p.party, kind: .enterBreakout, breakout: to))
                }
                present[s.id] = p
            case "drop":
                if let s = subject { present[s.id]?.heldSince = r.at }
            case "resume", "takeover":
                if let s = subject { present[s.id]?.heldSince = nil }
            case "set-role":
                if let s = subject,
                    let role = r.reason?.split(separator: ">").last.flatMap({ Role(rawValue: String($0)) })
                {
                    present[s.id]?.party.role = role
                }
            case "leave", "expire", "deny", "remove", "ban":
                if let s = subject { exit(s.id, r.at, r.room) }
            case "end":
                for id in present.keys.sorted() { exit(id, r.at, r.room) }
            default:
                continue
            }
        }
        self.init(records: records, until: until)
    }
}
