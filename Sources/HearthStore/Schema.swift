import GRDB
import GRDBSQLite
import HearthCore

/// The tables, their migrations, and the mapping between rows and HearthCore's records.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE journal (
                        seq INTEGER PRIMARY KEY,
                        room TEXT NOT NULL,
                        at INTEGER NOT NULL,
                        kind TEXT NOT NULL,
                        body TEXT NOT NULL
                    );
                    CREATE INDEX journal_room ON journal(room);

                    CREATE TABLE room_end (
                        room TEXT PRIMARY KEY,
                        ended_at INTEGER NOT NULL
                    );

                    CREATE TABLE audit (
                        id INTEGER PRIMARY KEY,
                        at INTEGER NOT NULL,
                        room TEXT NOT NULL,
                        action TEXT NOT NULL,
                        outcome TEXT NOT NULL,
                        code TEXT,
                        reason TEXT,
                        actor_user TEXT,
                        actor_member INTEGER,
                        actor_role TEXT,
                        subject_user TEXT,
                        subject_member INTEGER,
                        subject_role TEXT,
                        prev_hash TEXT NOT NULL,
                        hash TEXT NOT NULL
                    );
                    CREATE INDEX audit_room_at ON audit(room, at);
                    -- Append-only: an edit needs this trigger dropped first. (Retention deletes
                    -- the oldest rows; the hash chain catches any other deletion.)
                    CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit
                    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;

                    -- The chain's start (after retention) and end, updated in the same
                    -- transaction as the rows, so deleting the last rows is detected too.
                    CREATE TABLE audit_head (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        base_id INTEGER NOT NULL,
                        base_hash TEXT NOT NULL,
                        last_id INTEGER NOT NULL,
                        last_hash TEXT NOT NULL,
                        count INTEGER NOT NULL
                    );

                    CREATE TABLE attendance (
                        id INTEGER PRIMARY KEY,
                        at INTEGER NOT NULL,
                        room TEXT NOT NULL,
                        member_user TEXT NOT NULL,
                        member_id INTEGER NOT NULL,
                        member_role TEXT NOT NULL,
                        kind TEXT NOT NULL
                    );
                    CREATE INDEX attendance_room ON attendance(room, id);
                    """)
            try db.execute(
                sql: "INSERT INTO audit_head VALUES (1, 1, ?, 0, ?, 0)",
                arguments: [AuditChain.genesis, AuditChain.genesis])
        }
        // Breakouts: which breakout an enter-breakout/exit-breakout row is about, and its name.
        migrator.registerMigration("v2-breakouts") { db in
            try db.execute(sql: "ALTER TABLE attendance ADD COLUMN breakout INTEGER")
            try db.execute(sql: "ALTER TABLE attendance ADD COLUMN breakout_name TEXT")
        }
        return migrator
    }

    // MARK: Rows to records

    static func auditRecord(_ row: Row) throws -> AuditRecord {
        let id: Int64 = row["id"]
        func fail(_ reason: String) -> StoreError { .corruptRecord(table: "audit", id: id, reason: reason) }
        func party(_ prefix: String) throws -> Party? {
            let user: String? = row["\(prefix)_user"]
            let member: Int64? = row["\(prefix)_member"]
            let role: String? = row["\(prefix)_role"]
            if user == nil && member == nil && role == nil { return nil }
            guard let user, let member, let role, let r = Role(rawValue: role), let m = UInt32(exactly: member) else {
                throw fail("incomplete or unknown \(prefix)")
            }
            return Party(userID: UserID(user), id: ParticipantID(m), role: r)
        }
        let outcome: AuditRecord.Outcome
        let outcomeText: String = row["outcome"]
        let code: String? = row["code"]
        switch (outcomeText, code) {
        case ("done", nil): outcome = .done
        case ("refused", let code?):
            guard let c = ErrorCode(rawValue: code) else { throw fail("unknown code \(code)") }
            outcome = .refused(c)
        default: throw fail("unknown outcome \(outcomeText)")
        }
        return AuditRecord(
            at: Instant(milliseconds: row["at"]), room: RoomID(row["room"]), actor: try party("actor"),
            subject: try party("subject"), action: row["action"], outcome: outcome, reason: row["reason"])
    }

    static func attendanceRecord(_ row: Row) throws -> AttendanceRecord {
        let id: Int64 = row["id"]
        let role: String = row["member_role"]
        let kind: String = row["kind"]
        let member: Int64 = row["member_id"]
        guard let r = Role(rawValue: role), let k = AttendanceRecord.Kind(rawValue: kind),
            let m = UInt32(exactly: member)
        else { throw StoreError.corruptRecord(table: "attendance", id: id, reason: "unknown role, kind or member") }
        let breakout: Int64? = row["breakout"]
        return AttendanceRecord(
            at: Instant(milliseconds: row["at"]), room: RoomID(row["room"]),
            member: Party(userID: UserID(row["member_user"]), id: ParticipantID(m), role: r), kind: k,
            breakout: breakout.flatMap { UInt32(exactly: $0) }.map(BreakoutID.init), breakoutName: row["breakout_name"])
    }

    // MARK: Records to rows (on the writer thread, inside its transaction)

    /// A value of a row `insert` writes.
    enum Value {
        case integer(Int64)
        case text(String)
        case null

        init(_ text: String?) { self = text.map { .text($0) } ?? .null }
        init(_ integer: Int64?) { self = integer.map { .integer($0) } ?? .null }
    }

    /// Runs one cached insert statement with `values` bound by SQLite's own calls. GRDB's
    /// `execute(arguments:)` boxes each value and runs its statement observation around every
    /// statement: about 17% of the writer thread's instructions (`hearth-store-bench` under
    /// callgrind), for rows nothing observes. Only the writer's inserts come here; their
    /// transaction is GRDB's, as every other statement is.
    static func insert(_ sql: String, _ values: [Value], _ db: Database) throws {
        let handle = try db.cachedStatement(sql: sql).sqliteStatement
        defer { sqlite3_reset(handle) }
        func check(_ code: Int32, _ expected: Int32) throws {
            guard code != expected else { return }
            throw DatabaseError(
                resultCode: ResultCode(rawValue: code),
                message: String(cString: sqlite3_errmsg(sqlite3_db_handle(handle))),
                sql: sql)
        }
        // One value per parameter, as GRDB checked: a missing one would keep the last row's.
        guard sqlite3_bind_parameter_count(handle) == values.count else {
            throw DatabaseError(
                resultCode: .SQLITE_RANGE,
                message: "\(values.count) values for \(sqlite3_bind_parameter_count(handle)) parameters", sql: sql)
        }
        for (i, value) in values.enumerated() {
            let index = Int32(i + 1)
            switch value {
            case .integer(let v): try check(sqlite3_bind_int64(handle, index, v), SQLITE_OK)
            case .null: try check(sqlite3_bind_null(handle, index), SQLITE_OK)
            case .text(var s):
                // A nil address (an empty string's may be) would bind NULL: bind "" explicitly.
                let code = s.withUTF8 { utf8 in
                    if utf8.isEmpty { return sqlite3_bind_text(handle, index, "", 0, transient) }
                    return utf8.withMemoryRebound(to: CChar.self) {
                        sqlite3_bind_text(handle, index, $0.baseAddress, Int32($0.count), transient)
                    }
                }
                try check(code, SQLITE_OK)
            }
        }
        try check(sqlite3_step(handle), SQLITE_DONE)
    }

    /// SQLite copies a value bound with this destructor before the bind call returns.
    private static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

    static func insertJournal(_ entry: JournalEntry, _ db: Database) throws {
        try insert(
            "INSERT INTO journal (room, at, kind, body) VALUES (?, ?, ?, ?)",
            [
                .text(entry.room.rawValue), .integer(entry.at.milliseconds), .text(entry.kind),
                .text(try JournalCoding.encode(entry)),
            ],
            db)
    }

    static func insertAudit(_ r: AuditRecord, id: Int64, prevHash: String, _ db: Database) throws -> String {
        let hash = AuditChain.hash(prev: prevHash, id: id, record: r)
        var code: String? = nil
        let outcome: String
        switch r.outcome {
        case .done: outcome = "done"
        case .refused(let c):
            outcome = "refused"
            code = c.rawValue
        }
        try insert(
            """
            INSERT INTO audit (id, at, room, action, outcome, code, reason, actor_user, actor_member, actor_role,
                subject_user, subject_member, subject_role, prev_hash, hash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .integer(id), .integer(r.at.milliseconds), .text(r.room.rawValue), .text(r.action), .text(outcome),
                Value(code), Value(r.reason),
                Value(r.actor?.userID.rawValue), Value(r.actor.map { Int64($0.id.rawValue) }),
                Value(r.actor?.role.rawValue),
                Value(r.subject?.userID.rawValue), Value(r.subject.map { Int64($0.id.rawValue) }),
                Value(r.subject?.role.rawValue), .text(prevHash), .text(hash),
            ], db)
        return hash
    }

    static func insertAttendance(_ r: AttendanceRecord, _ db: Database) throws {
        try insert(
            """
            INSERT INTO attendance (at, room, member_user, member_id, member_role, kind, breakout, breakout_name)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .integer(r.at.milliseconds), .text(r.room.rawValue), .text(r.member.userID.rawValue),
                .integer(Int64(r.member.id.rawValue)), .text(r.member.role.rawValue), .text(r.kind.rawValue),
                Value(r.breakout.map { Int64($0.rawValue) }), Value(r.breakoutName),
            ], db)
    }
}
