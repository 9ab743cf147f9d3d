import Foundation
import HearthCore

/// A cluster's records in PostgreSQL, read by a process that is not a node (`hearthd audit
/// verify`, `hearthd attendance` with `store: postgres`): one connection, no lease, no writer.
public final class SharedRecords: RecordReading {
    private let connection: PostgresConnection

    public init(conninfo: String) throws {
        connection = try PostgresConnection(conninfo: conninfo)
    }

    public func verifyAudit() throws -> AuditVerification { try SharedRecordSQL.verify(connection) }
    public func forEachAuditRecord(room: RoomID?, since: Instant?, _ body: (StoredAudit) throws -> Bool) throws {
        try SharedRecordSQL.forEachAudit(room: room, since: since, connection, body)
    }
    public func attendanceRecords(room: RoomID) throws -> [AttendanceRecord] {
        try SharedRecordSQL.attendance(room: room, connection)
    }
    public func endedAt(_ room: RoomID) throws -> Instant? { try SharedRecordSQL.endedAt(room, connection) }
    public func close() {}
}

/// The records' SQL: audit rows in hash chains (one per room, `room:<id>`, written only by the
/// room's owner, and one per node, `node:<name>`, for what belongs to no room this node holds),
/// each chain's head in `hearth_audit_chain`, and attendance rows.
///
/// A chain is written by one node at a time: a room chain only inside a transaction that holds
/// the room's owner row `FOR SHARE` at this node's epoch (so no other node can claim the room
/// until it commits), a node chain only by its node. The head row is locked `FOR UPDATE` while
/// a batch extends the chain, which also orders it against a retention prune.
enum SharedRecordSQL {
    static let statements = [
        """
        CREATE TABLE IF NOT EXISTS hearth_audit (
            chain text NOT NULL, n bigint NOT NULL, at_ms bigint NOT NULL, room text NOT NULL,
            action text NOT NULL, outcome text NOT NULL, code text, reason text,
            actor_user text, actor_member bigint, actor_role text,
            subject_user text, subject_member bigint, subject_role text,
            prev_hash text NOT NULL, hash text NOT NULL, PRIMARY KEY (chain, n))
        """,
        "CREATE INDEX IF NOT EXISTS hearth_audit_room ON hearth_audit (room, at_ms)",
        """
        CREATE TABLE IF NOT EXISTS hearth_audit_chain (
            chain text PRIMARY KEY, base_n bigint NOT NULL, base_hash text NOT NULL,
            last_n bigint NOT NULL, last_hash text NOT NULL, count bigint NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS hearth_attendance (
            id bigserial PRIMARY KEY, room text NOT NULL, at_ms bigint NOT NULL, member_user text NOT NULL,
            member_id bigint NOT NULL, member_role text NOT NULL, kind text NOT NULL, breakout bigint,
            breakout_name text)
        """,
        "CREATE INDEX IF NOT EXISTS hearth_attendance_room ON hearth_attendance (room, id)",
    ]

    // MARK: Writing (the writer thread, inside its transaction)

    /// Appends `records` to their chains (`chain(record)` names each one's).
    static func appendAudit(
        _ records: [AuditRecord], chain: (AuditRecord) -> String, _ connection: PostgresConnection
    ) throws {
        guard !records.isEmpty else { return }
        let chains = records.map(chain)
        let names = Array(Set(chains)).sorted()
        var heads: [String: (n: Int64, hash: String, base: Bool)] = [:]
        for row in try connection.execute(
            "SELECT chain, last_n, last_hash FROM hearth_audit_chain WHERE chain = ANY($1::text[]) FOR UPDATE",
            [PostgresArray.text(names)])
        {
            if let name = row[0], let n = row[1].flatMap({ Int64($0) }), let hash = row[2] {
                heads[name] = (n, hash, false)
            }
        }
        for name in names where heads[name] == nil { heads[name] = (0, AuditChain.genesis(chain: name), true) }
        var columns = [[String?]](repeating: [], count: 16)
        var added: [String: Int] = [:]
        for (record, name) in zip(records, chains) {
            var head = heads[name]!
            let n = head.n + 1
            let hash = AuditChain.hash(prev: head.hash, id: n, record: record)
            var code: String? = nil
            var outcome = "done"
            if case .refused(let c) = record.outcome {
                outcome = "refused"
                code = c.rawValue
            }
            let values: [String?] = [
                name, String(n), String(record.at.milliseconds), record.room.rawValue, record.action, outcome, code,
                record.reason, record.actor?.userID.rawValue, record.actor.map { String($0.id.rawValue) },
                record.actor?.role.rawValue, record.subject?.userID.rawValue,
                record.subject.map { String($0.id.rawValue) }, record.subject?.role.rawValue, head.hash, hash,
            ]
            for (i, v) in values.enumerated() { columns[i].append(v) }
            head.n = n
            head.hash = hash
            heads[name] = head
            added[name, default: 0] += 1
        }
        try connection.execute(
            """
            INSERT INTO hearth_audit (chain, n, at_ms, room, action, outcome, code, reason, actor_user, actor_member,
                actor_role, subject_user, subject_member, subject_role, prev_hash, hash)
            SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::text[], $9::text[], $10::bigint[], $11::text[], $12::text[], $13::bigint[],
                $14::text[], $15::text[], $16::text[])
            """, columns.map(PostgresArray.text))
        for name in names {
            let head = heads[name]!
            if head.base {
                try connection.execute(
                    """
                    INSERT INTO hearth_audit_chain (chain, base_n, base_hash, last_n, last_hash, count)
                    VALUES ($1, 1, $2, $3, $4, $5)
                    """,
                    [name, AuditChain.genesis(chain: name), String(head.n), head.hash, String(added[name] ?? 0)])
            } else {
                try connection.execute(
                    "UPDATE hearth_audit_chain SET last_n = $2, last_hash = $3, count = count + $4 WHERE chain = $1",
                    [name, String(head.n), head.hash, String(added[name] ?? 0)])
            }
        }
    }

    static func appendAttendance(_ records: [AttendanceRecord], _ connection: PostgresConnection) throws {
        guard !records.isEmpty else { return }
        var columns = [[String?]](repeating: [], count: 8)
        for r in records {
            let values: [String?] = [
                r.room.rawValue, String(r.at.milliseconds), r.member.userID.rawValue, String(r.member.id.rawValue),
                r.member.role.rawValue, r.kind.rawValue, r.breakout.map { String($0.rawValue) }, r.breakoutName,
            ]
            for (i, v) in values.enumerated() { columns[i].append(v) }
        }
        try connection.execute(
            """
            INSERT INTO hearth_attendance (room, at_ms, member_user, member_id, member_role, kind, breakout,
                breakout_name)
            SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[],
                $7::bigint[], $8::text[])
            """, columns.map(PostgresArray.text))
    }

    /// Retention: removes each chain's oldest rows up to its first row at or after `cutoff`
    /// (a prefix, so the rest stays whole) and moves the chain's start in its head.
    static func pruneAudit(before cutoff: Instant, _ connection: PostgresConnection) throws {
        let ms = String(cutoff.milliseconds)
        let candidates = try connection.execute(
            """
            SELECT chain, COALESCE(MIN(n) FILTER (WHERE at_ms >= $1), MAX(n) + 1) AS keep
            FROM hearth_audit GROUP BY chain HAVING MIN(n) < COALESCE(MIN(n) FILTER (WHERE at_ms >= $1), MAX(n) + 1)
            """, [ms])
        for row in candidates {
            guard let chain = row[0], let keep = row[1] else { continue }
            let head = try connection.execute(
                "SELECT last_n, last_hash FROM hearth_audit_chain WHERE chain = $1 FOR UPDATE", [chain])
            guard let lastHash = head.first?[1] else { continue }
            let base =
                try connection.execute("SELECT prev_hash FROM hearth_audit WHERE chain = $1 AND n = $2", [chain, keep])
                .first?[0] ?? lastHash
            let deleted = try connection.execute(
                "DELETE FROM hearth_audit WHERE chain = $1 AND n < $2 RETURNING n", [chain, keep]
            ).count
            try connection.execute(
                "UPDATE hearth_audit_chain SET base_n = $2, base_hash = $3, count = count - $4 WHERE chain = $1",
                [chain, keep, base, String(deleted)])
        }
    }

    static func pruneAttendance(before cutoff: Instant, _ connection: PostgresConnection) throws {
        try connection.execute("DELETE FROM hearth_attendance WHERE at_ms < $1", [String(cutoff.milliseconds)])
    }

    // MARK: Reading

    static func forEachAudit(
        room: RoomID?, since: Instant?, _ connection: PostgresConnection, _ body: (StoredAudit) throws -> Bool
    ) throws {
        let rows = try connection.execute(
            """
            SELECT chain, n, at_ms, room, action, outcome, code, reason, actor_user, actor_member, actor_role,
                subject_user, subject_member, subject_role, prev_hash, hash
            FROM hearth_audit WHERE ($1::text IS NULL OR room = $1) AND at_ms >= $2 ORDER BY at_ms, chain, n
            """, [room?.rawValue, String(since?.milliseconds ?? Int64.min)])
        for row in rows {
            guard try body(try stored(row)) else { return }
        }
    }

    static func attendance(room: RoomID, _ connection: PostgresConnection) throws -> [AttendanceRecord] {
        try connection.execute(
            """
            SELECT id, at_ms, room, member_user, member_id, member_role, kind, breakout, breakout_name
            FROM hearth_attendance WHERE room = $1 ORDER BY id
            """, [room.rawValue]
        ).map { row in
            let id = row[0].flatMap { Int64($0) } ?? 0
            guard let at = row[1].flatMap({ Int64($0) }), let room = row[2], let user = row[3],
                let member = row[4].flatMap({ UInt32($0) }), let role = row[5].flatMap(Role.init(rawValue:)),
                let kind = row[6].flatMap(AttendanceRecord.Kind.init(rawValue:))
            else {
                throw StoreError.corruptRecord(table: "hearth_attendance", id: id, reason: "unknown or missing value")
            }
            return AttendanceRecord(
                at: Instant(milliseconds: at), room: RoomID(room),
                member: Party(userID: UserID(user), id: ParticipantID(member), role: role), kind: kind,
                breakout: row[7].flatMap { UInt32($0) }.map(BreakoutID.init), breakoutName: row[8])
        }
    }

    static func endedAt(_ room: RoomID, _ connection: PostgresConnection) throws -> Instant? {
        try connection.execute("SELECT ended_at FROM hearth_room_end WHERE room = $1", [room.rawValue])
            .first?[0].flatMap { Int64($0) }.map(Instant.init(milliseconds:))
    }

    /// Walks every chain from its start (`base_n`, `base_hash`) to its head.
    static func verify(_ connection: PostgresConnection) throws -> AuditVerification {
        var total = 0
        let chains = try connection.execute(
            "SELECT chain, base_n, base_hash, last_n, last_hash, count FROM hearth_audit_chain ORDER BY chain")
        for head in chains {
            guard let chain = head[0], let baseN = head[1].flatMap({ Int64($0) }), let baseHash = head[2],
                let lastN = head[3].flatMap({ Int64($0) }), let lastHash = head[4],
                let count = head[5].flatMap({ Int($0) })
            else { return .broken(atID: 0, reason: "a chain's head row is incomplete") }
            var expected = baseN
            var previous = baseHash
            var seen = 0
            for row in try connection.execute(
                """
                SELECT chain, n, at_ms, room, action, outcome, code, reason, actor_user, actor_member, actor_role,
                    subject_user, subject_member, subject_role, prev_hash, hash
                FROM hearth_audit WHERE chain = $1 ORDER BY n
                """, [chain])
            {
                let n = row[1].flatMap { Int64($0) } ?? -1
                guard n == expected else {
                    return .broken(
                        atID: n,
                        reason: n < expected
                            ? "chain \(chain): row \(n) precedes the chain's start (row \(expected)): inserted"
                            : "chain \(chain): row \(expected) is missing (deleted) before row \(n)")
                }
                let stored: StoredAudit
                do {
                    stored = try Self.stored(row)
                } catch {
                    return .broken(atID: n, reason: "chain \(chain): row \(n) is not a valid record: \(error)")
                }
                guard stored.prevHash == previous else {
                    return .broken(
                        atID: n, reason: "chain \(chain): row \(n)'s prev_hash does not match the row before it")
                }
                guard AuditChain.hash(prev: previous, id: n, record: stored.record) == stored.hash else {
                    return .broken(atID: n, reason: "chain \(chain): row \(n)'s contents do not match its hash: edited")
                }
                previous = stored.hash
                expected += 1
                seen += 1
            }
            guard lastN == expected - 1, lastHash == previous, count == seen else {
                return .broken(
                    atID: expected,
                    reason: "chain \(chain): the head (\(count) rows to row \(lastN)) does not match the rows "
                        + "(\(seen) to row \(expected - 1)): rows deleted at the end, or inserted")
            }
            total += seen
        }
        // A row in no chain (its head deleted) is a tampering too.
        if let orphan = try connection.execute(
            "SELECT a.chain, MIN(a.n) FROM hearth_audit a LEFT JOIN hearth_audit_chain c USING (chain) "
                + "WHERE c.chain IS NULL GROUP BY a.chain LIMIT 1"
        ).first {
            return .broken(
                atID: orphan[1].flatMap { Int64($0) } ?? 0,
                reason: "chain \(orphan[0] ?? "?") has rows but no head: its head was deleted")
        }
        return .ok(count: total)
    }

    private static func stored(_ row: [String?]) throws -> StoredAudit {
        let n = row[1].flatMap { Int64($0) } ?? 0
        func fail(_ reason: String) -> StoreError { .corruptRecord(table: "hearth_audit", id: n, reason: reason) }
        func party(_ user: String?, _ member: String?, _ role: String?) throws -> Party? {
            if user == nil && member == nil && role == nil { return nil }
            guard let user, let m = member.flatMap({ UInt32($0) }), let r = role.flatMap(Role.init(rawValue:)) else {
                throw fail("incomplete or unknown party")
            }
            return Party(userID: UserID(user), id: ParticipantID(m), role: r)
        }
        let outcome: AuditRecord.Outcome
        switch (row[5], row[6]) {
        case ("done", nil): outcome = .done
        case ("refused", let code?):
            guard let c = ErrorCode(rawValue: code) else { throw fail("unknown code \(code)") }
            outcome = .refused(c)
        default: throw fail("unknown outcome")
        }
        guard let at = row[2].flatMap({ Int64($0) }), let room = row[3], let action = row[4], let prev = row[14],
            let hash = row[15]
        else { throw fail("missing value") }
        let record = AuditRecord(
            at: Instant(milliseconds: at), room: RoomID(room), actor: try party(row[8], row[9], row[10]),
            subject: try party(row[11], row[12], row[13]), action: action, outcome: outcome, reason: row[7])
        return StoredAudit(id: n, record: record, prevHash: prev, hash: hash, chain: row[0])
    }
}
