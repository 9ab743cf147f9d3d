import HearthCore
import HearthStore
import HearthWire

/// A session's attendance as operators get it: the ledger from the attendance records, checked
/// against a recomputation from the audit trail. One report for `GET /api/v1/rooms/{id}/attendance`
/// and `hearthd attendance` (docs/api.md, "Attendance"; README, "Records"), so both print the same
/// object and the same minutes.
public struct AttendanceReport: Sendable {
    public let room: RoomID
    /// When the session ended, or nil while it is open (open intervals then run to `now`).
    public let endedAt: Instant?
    public let ledger: AttendanceLedger
    /// Whether the audit trail alone gives the same members and intervals.
    public let matchesAuditTrail: Bool
    /// Whether the store holds rows of the session (attendance, or audit rows of the engine).
    public let hasSessionRecords: Bool

    /// Reads the session's records. `endedAt`: the end the engine knows, if any; otherwise the
    /// store's end mark is read.
    public init(room: RoomID, store: any RecordReading, endedAt: Instant? = nil, now: Instant) throws {
        let records = try store.attendanceRecords(room: room)
        let audit = try store.auditRecords(room: room).map(\.record)
        let ended = try endedAt ?? store.endedAt(room)
        let until = ended ?? now
        self.room = room
        self.endedAt = ended
        ledger = AttendanceLedger(records: records, until: until)
        matchesAuditTrail = AttendanceLedger(auditRecords: audit, until: until).members == ledger.members
        hasSessionRecords = !records.isEmpty || audit.contains(where: Self.isSessionRecord)
    }

    /// Whether a row comes from a session (the engine), not from a refused connection or an API
    /// call naming the room: only sessions make a room known to the records.
    static func isSessionRecord(_ record: AuditRecord) -> Bool {
        !record.action.hasPrefix("api:") && record.action != Store.authenticateAction
            && record.action != AuthenticationFailureFolding.summaryAction
    }

    /// Minutes rounded to two decimals (the JSON number and the CSV column).
    static func minutes(_ ms: Int64) -> Double { (Double(ms) / 600).rounded() / 100 }

    /// The JSON object, keys in the order docs/api.md shows.
    var json: JSONValue {
        let members: [JSONValue] = ledger.members.map { m in
            .object([
                ("userId", .string(m.userID.rawValue)), ("role", .string(m.role.rawValue)),
                ("firstAdmitted", m.firstAdmitted.map { .integer($0.milliseconds) } ?? .null),
                ("lastLeft", m.lastLeft.map { .integer($0.milliseconds) } ?? .null),
                ("intervals", .integer(Int64(m.inRoom.count))),
                ("minutesInRoom", .number(Self.minutes(m.roomMilliseconds))),
                ("minutesWaiting", .number(Self.minutes(m.waitingMilliseconds))),
                ("msInRoom", .integer(m.roomMilliseconds)), ("msWaiting", .integer(m.waitingMilliseconds)),
                (
                    "breakouts",
                    .array(
                        m.timeInBreakouts.map { id, ms in
                            .object([
                                ("id", .string(id.description)),
                                ("name", ledger.breakoutNames[id].map { .string($0) } ?? .null),
                                ("minutes", .number(Self.minutes(ms))), ("ms", .integer(ms)),
                            ])
                        })
                ),
            ])
        }
        return .object([
            ("room", .string(room.rawValue)), ("participantCount", .integer(Int64(ledger.participantCount))),
            ("endedAt", endedAt.map { .integer($0.milliseconds) } ?? .null), ("members", .array(members)),
            ("matchesAuditTrail", .bool(matchesAuditTrail)),
        ])
    }

    /// The JSON object on one line (compact).
    public var jsonText: String { json.text }

    public static let csvHeader = [
        "userId", "role", "firstAdmitted", "lastLeft", "intervals", "minutesInRoom", "minutesWaiting", "msInRoom",
        "msWaiting", "msInBreakouts", "breakoutMs",
    ]

    /// One CSV row per member (columns as ``csvHeader``; absent values empty).
    public var csvRows: [[String?]] {
        ledger.members.map { m in
            [
                m.userID.rawValue, m.role.rawValue, m.firstAdmitted.map { String($0.milliseconds) },
                m.lastLeft.map { String($0.milliseconds) }, String(m.inRoom.count),
                Self.twoDecimals(Self.minutes(m.roomMilliseconds)),
                Self.twoDecimals(Self.minutes(m.waitingMilliseconds)), String(m.roomMilliseconds),
                String(m.waitingMilliseconds), String(m.timeInBreakouts.reduce(0) { $0 + $1.milliseconds }),
                m.timeInBreakouts.map { "\($0.breakout)=\($0.milliseconds)" }.joined(separator: ";"),
            ]
        }
    }

    /// The CSV's closing comment line.
    public var csvSummary: String {
        "# room \(room.rawValue): \(ledger.participantCount) participants; "
            + "ended: \(endedAt.map { String($0.milliseconds) } ?? "no"); "
            + "matches the audit trail: \(matchesAuditTrail ? "yes" : "no")"
    }

    /// `1.5` as `1.50`: always two decimals, without Foundation's locale-aware formatting.
    static func twoDecimals(_ minutes: Double) -> String {
        let hundredths = Int64((minutes * 100).rounded())
        let whole = hundredths / 100
        let fraction = hundredths % 100
        return "\(whole).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
