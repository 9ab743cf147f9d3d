import GRDB
import HearthCore

/// What the embedded store's writer writes, and how (one SQLite transaction per batch).
extension Store {
    /// What the writer is handed (one type for both stores: `WriteOperation`).
    typealias Operation = WriteOperation

    /// Writes one batch in one transaction, rolled back if any of it fails. `BEGIN` and
    /// `COMMIT` are cached statements: GRDB's `write` compiles both anew every transaction,
    /// and caching them took 8% off the writer thread's CPU at 15k deliveries/s
    /// (loadtest/RESULTS.md, "part 3 once more").
    static func commit(_ batch: [Operation], _ db: Database) throws {
        try db.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute()
        do {
            try write(batch, db)
            try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
        } catch {
            // As GRDB's `inTransaction` does: roll back, and report the first error.
            try? db.rollback()
            throw error
        }
    }

    /// Writes one batch inside the transaction `commit` opened.
    private static func write(_ batch: [Operation], _ db: Database) throws {
        var head: (baseID: Int64, baseHash: String, lastID: Int64, lastHash: String, count: Int)? = nil
        func loadHead() throws -> (baseID: Int64, baseHash: String, lastID: Int64, lastHash: String, count: Int) {
            if let head { return head }
            // Both statements on the head run once per transaction: cached, not compiled each time.
            // Columns by position: by name, each is a case-insensitive search of the row's columns.
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(
                        sql: "SELECT base_id, base_hash, last_id, last_hash, count FROM audit_head WHERE id = 1"))
            else {
                throw DatabaseError(message: "audit_head row missing")
            }
            return (row[0], row[1], row[2], row[3], row[4])
        }
        for operation in batch {
            switch operation {
            case .journal(let entry):
                try Schema.insertJournal(entry, db)
            case .audit(let record):
                var h = try loadHead()
                let id = h.lastID + 1
                h.lastHash = try Schema.insertAudit(record, id: id, prevHash: h.lastHash, db)
                h.lastID = id
                h.count += 1
                head = h
            case .attendance(let record):
                try Schema.insertAttendance(record, db)
            case .ended(let room, let at):
                try db.execute(
                    sql: "INSERT OR REPLACE INTO room_end (room, ended_at) VALUES (?, ?)",
                    arguments: [room.rawValue, at.milliseconds])
            case .compact(let cutoff):
                try db.execute(
                    sql: """
                        DELETE FROM journal WHERE room IN (SELECT room FROM room_end WHERE ended_at < ?);
                        DELETE FROM room_end WHERE ended_at < ?;
                        """,
                    arguments: [cutoff.milliseconds, cutoff.milliseconds])
            case .pruneAudit(let cutoff):
                var h = try loadHead()
                // The oldest rows up to the first one at or after the cutoff (a prefix, so
                // the rest of the chain stays whole).
                let firstKept =
                    try Int64.fetchOne(
                        db, sql: "SELECT MIN(id) FROM audit WHERE at >= ?", arguments: [cutoff.milliseconds])
                    ?? (h.lastID + 1)
                guard firstKept > h.baseID else { continue }
                let newBase: String =
                    firstKept > h.lastID
                    ? h.lastHash
                    : try String.fetchOne(db, sql: "SELECT prev_hash FROM audit WHERE id = ?", arguments: [firstKept])
                        ?? h.lastHash
                try db.execute(sql: "DELETE FROM audit WHERE id < ?", arguments: [firstKept])
                h.count -= db.changesCount
                h.baseID = firstKept
                h.baseHash = newBase
                head = h
            case .pruneAttendance(let cutoff):
                try db.execute(sql: "DELETE FROM attendance WHERE at < ?", arguments: [cutoff.milliseconds])
            }
        }
        if let h = head {
            try db.cachedStatement(
                sql: """
                    UPDATE audit_head SET base_id = ?, base_hash = ?, last_id = ?, last_hash = ?, count = ?
                    WHERE id = 1
                    """
            ).execute(arguments: [h.baseID, h.baseHash, h.lastID, h.lastHash, h.count])
        }
    }
}
