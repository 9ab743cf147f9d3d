import HearthCore

/// What the shared store's writer writes, and how: a batch of chat in one statement, anything
/// else in one transaction fenced by the owner rows (see `SharedJournal`, "Fenced group commit").
extension SharedJournal {
    /// What the writer is handed (one type for both stores: `WriteOperation`).
    typealias Operation = WriteOperation

    func write(_ batch: [Operation], _ connection: PostgresConnection) throws {
        var journal: [JournalEntry] = []
        var audits: [AuditRecord] = []
        var attendances: [AttendanceRecord] = []
        var maintenance: [Operation] = []
        for operation in batch {
            switch operation {
            case .journal(let entry): journal.append(entry)
            case .audit(let record): audits.append(record)
            case .attendance(let record): attendances.append(record)
            case .ended, .compact, .pruneAudit, .pruneAttendance: maintenance.append(operation)
            }
        }
        let holdings = lock.withLock { owned }
        // Numbers from the rooms' next, advanced only once the batch is written (a failed
        // batch is retried with the same numbers).
        var next: [RoomID: Int64] = [:]
        var rows = JournalRows()
        for entry in journal {
            // A room the shell forgot (dropped or lost) is never written again.
            guard let holding = holdings[entry.room] else { continue }
            let n = next[entry.room] ?? holding.next
            next[entry.room] = n + 1
            try rows.append(entry, epoch: holding.epoch, n: n)
        }
        var written = Set<RoomID>()
        if audits.isEmpty && attendances.isEmpty && maintenance.isEmpty {
            // The common batch (chat): one statement, its own transaction, one round trip.
            if !rows.isEmpty {
                for row in try connection.execute(Self.appendSQL, [node] + rows.parameters) {
                    if let room = row[0] { written.insert(RoomID(room)) }
                }
            }
        } else {
            try connection.transaction {
                // The rooms of the batch this node still holds at its epochs, locked against a
                // claim until the commit: only their journal, chains and attendance are written.
                var touched = Set(rows.rooms)
                for r in audits where holdings[r.room] != nil { touched.insert(r.room.rawValue) }
                for r in attendances where holdings[r.room] != nil { touched.insert(r.room.rawValue) }
                let held = try lockHeld(touched.sorted(), holdings, connection)
                let kept = rows.filtered { held.contains($0) }
                if !kept.isEmpty {
                    try connection.execute(
                        "INSERT INTO hearth_journal (room, epoch, n, at_ms, kind, body) SELECT * FROM unnest("
                            + "$1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[])",
                        kept.parameters)
                }
                written = Set(kept.rooms.map(RoomID.init))
                // A record of a room this node does not hold goes to the node's own chain: never lost.
                let nodeChain = "node:\(node)"
                try SharedRecordSQL.appendAudit(
                    audits, chain: { held.contains($0.room.rawValue) ? "room:\($0.room)" : nodeChain }, connection)
                try SharedRecordSQL.appendAttendance(
                    attendances.filter { held.contains($0.room.rawValue) }, connection)
                for operation in maintenance { try maintain(operation, connection) }
            }
        }
        // Rooms in the batch that were not written: another node holds them now. Reported
        // before the writer counts these tickets as committed.
        lock.withLock {
            for (room, n) in next where owned[room]?.epoch == holdings[room]?.epoch {
                if written.contains(room) {
                    owned[room]?.next = n
                } else {
                    owned[room] = nil
                    lost.append(room)
                }
            }
        }
    }

    /// The rooms among `rooms` whose owner row is still this node's at the epoch it claimed,
    /// locked `FOR SHARE` until the transaction ends.
    private func lockHeld(
        _ rooms: [String], _ holdings: [RoomID: Ownership], _ connection: PostgresConnection
    ) throws -> Set<String> {
        guard !rooms.isEmpty else { return [] }
        let epochs = rooms.map { String(holdings[RoomID($0)]?.epoch ?? -1) }
        let result = try connection.execute(
            """
            SELECT o.room FROM hearth_room o JOIN unnest($2::text[], $3::bigint[]) AS r(room, epoch)
                ON o.room = r.room AND o.epoch = r.epoch
            WHERE o.node = $1 FOR SHARE OF o
            """, [node, PostgresArray.text(rooms), PostgresArray.text(epochs)])
        return Set(result.compactMap { $0[0] })
    }

    private func maintain(_ operation: Operation, _ connection: PostgresConnection) throws {
        switch operation {
        case .journal, .audit, .attendance: break
        case .ended(let room, let at):
            try connection.execute(
                """
                INSERT INTO hearth_room_end (room, ended_at) VALUES ($1, $2)
                ON CONFLICT (room) DO UPDATE SET ended_at = excluded.ended_at
                """, [room.rawValue, String(at.milliseconds)])
        case .compact(let cutoff):
            let ms = String(cutoff.milliseconds)
            for table in ["hearth_journal", "hearth_room"] {
                try connection.execute(
                    "DELETE FROM \(table) WHERE room IN (SELECT room FROM hearth_room_end WHERE ended_at < $1)", [ms])
            }
            try connection.execute("DELETE FROM hearth_room_end WHERE ended_at < $1", [ms])
        case .pruneAudit(let cutoff):
            try SharedRecordSQL.pruneAudit(before: cutoff, connection)
        case .pruneAttendance(let cutoff):
            try SharedRecordSQL.pruneAttendance(before: cutoff, connection)
        }
    }
}
