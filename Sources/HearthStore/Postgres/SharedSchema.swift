import HearthCore

// The shared store's tables and statements, and the helpers that put a batch into them
// (`SharedJournal` runs them; `SharedRecordSQL` has the records').

extension SharedJournal {
    static let renewSQL = """
        INSERT INTO hearth_lease (node, expires) VALUES ($1, now() + make_interval(secs => $2::float8))
        ON CONFLICT (node) DO UPDATE SET expires = excluded.expires
        """

    /// Takes the room: new (epoch 1), already this node's, or its owner's lease is gone.
    static let claimSQL = """
        INSERT INTO hearth_room (room, node, epoch) VALUES ($1, $2, 1)
        ON CONFLICT (room) DO UPDATE SET node = excluded.node, epoch = hearth_room.epoch + 1, since = now()
        WHERE hearth_room.node = excluded.node
           OR NOT EXISTS (SELECT 1 FROM hearth_lease l WHERE l.node = hearth_room.node AND l.expires > now())
        RETURNING node, epoch
        """

    /// `claimSQL` for a room that must exist already.
    static let reclaimSQL = """
        UPDATE hearth_room o SET node = $2, epoch = o.epoch + 1, since = now()
        WHERE o.room = $1 AND (o.node = $2
           OR NOT EXISTS (SELECT 1 FROM hearth_lease l WHERE l.node = o.node AND l.expires > now()))
        RETURNING node, epoch
        """

    /// The fenced group commit: only the entries of rooms this node holds at their epochs.
    static let appendSQL = """
        WITH batch AS (
            SELECT * FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::text[])
                AS b(room, epoch, n, at_ms, kind, body)),
        owned AS (
            SELECT o.room FROM hearth_room o
            JOIN (SELECT DISTINCT room, epoch FROM batch) r ON o.room = r.room AND o.epoch = r.epoch
            WHERE o.node = $1
            FOR SHARE OF o)
        INSERT INTO hearth_journal (room, epoch, n, at_ms, kind, body)
        SELECT b.room, b.epoch, b.n, b.at_ms, b.kind, b.body FROM batch b JOIN owned USING (room)
        RETURNING room
        """
}

/// A batch's journal rows, column by column (the `unnest` parameters).
struct JournalRows {
    var rooms: [String] = []
    var epochs: [String] = []
    var numbers: [String] = []
    var ats: [String] = []
    var kinds: [String] = []
    var bodies: [String] = []

    var isEmpty: Bool { rooms.isEmpty }

    mutating func append(_ entry: JournalEntry, epoch: Int64, n: Int64) throws {
        rooms.append(entry.room.rawValue)
        epochs.append(String(epoch))
        numbers.append(String(n))
        ats.append(String(entry.at.milliseconds))
        kinds.append(entry.kind)
        bodies.append(try JournalCoding.encode(entry))
    }

    func filtered(_ keep: (String) -> Bool) -> JournalRows {
        var out = JournalRows()
        for i in rooms.indices where keep(rooms[i]) {
            out.rooms.append(rooms[i])
            out.epochs.append(epochs[i])
            out.numbers.append(numbers[i])
            out.ats.append(ats[i])
            out.kinds.append(kinds[i])
            out.bodies.append(bodies[i])
        }
        return out
    }

    /// room, epoch, n, at_ms, kind, body.
    var parameters: [String?] { [rooms, epochs, numbers, ats, kinds, bodies].map(PostgresArray.text) }
}

/// PostgreSQL array literals in text format (`{"a","b",NULL}`), for `unnest` parameters.
enum PostgresArray {
    static func text(_ values: [String]) -> String { text(values.map { Optional($0) }) }

    static func text(_ values: [String?]) -> String {
        var out = "{"
        out.reserveCapacity(values.reduce(2) { $0 + ($1?.utf8.count ?? 4) + 3 })
        for (i, value) in values.enumerated() {
            if i > 0 { out += "," }
            guard let value else {
                out += "NULL"
                continue
            }
            out += "\""
            for c in value.unicodeScalars {
                if c == "\"" || c == "\\" { out += "\\" }
                out.unicodeScalars.append(c)
            }
            out += "\""
        }
        return out + "}"
    }
}

/// The shared store's tables (created when missing, by the first node to start).
enum SharedSchema {
    static let statements = [
        """
        CREATE TABLE IF NOT EXISTS hearth_node (
            name text PRIMARY KEY, number serial UNIQUE, incarnation bigint NOT NULL DEFAULT 0)
        """,
        "CREATE TABLE IF NOT EXISTS hearth_lease (node text PRIMARY KEY, expires timestamptz NOT NULL)",
        """
        CREATE TABLE IF NOT EXISTS hearth_room (
            room text PRIMARY KEY, node text NOT NULL, epoch bigint NOT NULL,
            since timestamptz NOT NULL DEFAULT now())
        """,
        """
        CREATE TABLE IF NOT EXISTS hearth_journal (
            room text NOT NULL, n bigint NOT NULL, epoch bigint NOT NULL, at_ms bigint NOT NULL,
            kind text NOT NULL, body text NOT NULL, PRIMARY KEY (room, n))
        """,
        """
        CREATE TABLE IF NOT EXISTS hearth_used_token (
            jti text PRIMARY KEY, room text NOT NULL, expires_ms bigint NOT NULL)
        """,
        "CREATE TABLE IF NOT EXISTS hearth_room_end (room text PRIMARY KEY, ended_at bigint NOT NULL)",
    ]
}
