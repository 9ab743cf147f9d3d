import Foundation
import GRDB
import HearthCore
import XCTest

@testable import HearthStore

final class AuditTests: XCTestCase {
    let room = RoomID("group-1")

    func party(_ user: String, _ id: UInt32, _ role: Role) -> Party {
        Party(userID: UserID(user), id: ParticipantID(id), role: role)
    }

    /// A realistic sequence: arrivals, an admission, a refused command, a removal with a
    /// reason, an automatic expiry (no actor), an authentication failure.
    func records() -> [AuditRecord] {
        let fac = party("staff-1", 1, .facilitator)
        let sam = party("patient-7", 2, .participant)
        let kim = party("patient-9", 3, .participant)
        var out: [AuditRecord] = []
        var t: Int64 = 10_000
        func add(
            _ actor: Party?, _ subject: Party?, _ action: String, _ outcome: AuditRecord.Outcome = .done,
            _ reason: String? = nil, room: RoomID? = nil
        ) {
            t += 1_000
            out.append(
                AuditRecord(
                    at: Instant(milliseconds: t), room: room ?? self.room, actor: actor, subject: subject,
                    action: action, outcome: outcome, reason: reason))
        }
        add(fac, fac, "arrive")
        add(sam, sam, "arrive")
        add(kim, kim, "arrive")
        add(fac, sam, "admit")
        add(sam, nil, "mute", .refused(.forbidden))
        add(fac, kim, "admit")
        add(fac, kim, "remove", .done, "disruptive; \"quoted\" ünïcødé")
        add(sam, sam, "drop")
        add(nil, sam, "expire")
        add(fac, fac, "set-role", .done, "participant->cofacilitator", room: RoomID("other-room"))
        add(nil, nil, Store.authenticateAction, .refused(.authenticationFailed), "expired")
        return out
    }

    func filled() throws -> (Store, [AuditRecord]) {
        let (store, _) = try openStore(self)
        let records = records()
        for r in records { store.append(r) }
        store.append(
            AttendanceRecord(
                at: Instant(milliseconds: 1), room: room, member: party("p", 2, .participant), kind: .enterWaiting))
        store.flush()
        return (store, records)
    }

    /// The chain's hash is a stored format: every existing trail is verified against it. These
    /// are the hashes of `records()` chained from the genesis, as the first implementation
    /// computed them; a change that moves any of them breaks every stored trail.
    func testTheHashOfARowIsStable() {
        var prev = AuditChain.genesis
        var hashes: [String] = []
        for (i, record) in records().enumerated() {
            prev = AuditChain.hash(prev: prev, id: Int64(i + 1), record: record)
            hashes.append(prev)
        }
        XCTAssertEqual(hashes, Self.pinnedHashes)
        XCTAssertEqual(
            AuditChain.genesis(chain: "room:group-1"), Self.pinnedGenesis, "a shared store's first prev_hash")
        // A malformed previous hash is hashed as its bytes, never as the hash it resembles.
        XCTAssertNotEqual(
            AuditChain.hash(prev: "0" + AuditChain.genesis.dropFirst(2), id: 1, record: records()[0]), hashes[0])
    }

    static let pinnedHashes: [String] = [
        "c81c3a85f174321ba6d1b8571ff6af58bb22b85e9081207f52aa1649a23a6688",
        "fc1385fa975f8cb8a455187cccaf27fc36ee0602ba5af398fdab8ba2be1fd140",
        "0e91ac5465a58a85c45e82908f9fd7c155ffe5c420c78336a625e03a4f3bcb62",
        "5da2e1dc554c6745d6f800b60403149948f63011ffaf2b3d39f312ed94fde0e3",
        "c343d3bb5c66d7df7194b5163e4a249748463d4ded16e81ee41586412bc5363b",
        "df8c33d5209b510487d64403d5d3175a420377f0fef9a5a734373499365d4146",
        "aa1776b4d8c536f8f217515f4f097a848cf2f7638f1ae36f701ec5f0d7ca6578",
        "3a63347e87f050f45132062b9f2f6d7cb407bc81ed256f79584e7f2b631ecafa",
        "22a722f21364a05177e54ac8c8f7984989a8c85a484b0c6783fd8e5c12e24e54",
        "c47ed396f2668328f9fd5aa47521b952e38ddb46dd128062c7cfe6fa7f73a66b",
        "411b9adc87dbca4f385e65df5b878ce97ba2369076abcdb81d98ae87d098242f",
    ]
    static let pinnedGenesis = "7275e948b9d4e7c2a4a4cb66b86c0afbba36d1d4b92849345cb078318da9c45f"

    func testChainVerifiesAndExportsRoundTrip() throws {
        let (store, records) = try filled()
        XCTAssertEqual(try store.verifyAudit(), .ok(count: records.count))
        let stored = try store.auditRecords(room: nil)
        XCTAssertEqual(stored.map(\.record), records)
        XCTAssertEqual(stored.map(\.id), Array(1...Int64(records.count)))
        XCTAssertEqual(stored[0].prevHash, String(repeating: "0", count: 64))
        for i in 1..<stored.count { XCTAssertEqual(stored[i].prevHash, stored[i - 1].hash) }

        XCTAssertEqual(try store.auditRecords(room: room).count, records.count - 1)
        let since = try store.auditRecords(room: room, since: Instant(milliseconds: 17_000))
        XCTAssertEqual(since.map(\.record.action), ["remove", "drop", "expire", "authenticate"])
        XCTAssertEqual(since.last?.record.reason, "expired")
        XCTAssertEqual(since.last?.record.outcome, .refused(.authenticationFailed))
    }

    /// Empty text is stored as empty text, not as NULL (the writer binds its values itself), and
    /// each kind of value reads back as written, in the audit and the attendance tables alike.
    func testEmptyTextAndEveryValueKindRoundTrip() throws {
        let (store, _) = try openStore(self)
        let blank = Party(userID: UserID(""), id: ParticipantID(UInt32.max), role: .participant)
        let record = AuditRecord(
            at: Instant(milliseconds: -5), room: RoomID(""), actor: blank, subject: nil, action: "remove",
            outcome: .refused(.forbidden), reason: "")
        let attendance = AttendanceRecord(
            at: Instant(milliseconds: Int64.max), room: RoomID(""), member: blank, kind: .enterBreakout,
            breakout: BreakoutID(7), breakoutName: "")
        store.append(record)
        store.append(attendance)
        XCTAssertTrue(store.flush(timeout: 10), "not written: \(store.statistics.lastError ?? "")")
        XCTAssertEqual(try store.auditRecords(room: nil).map(\.record), [record])
        XCTAssertEqual(try store.verifyAudit(), .ok(count: 1))
        XCTAssertEqual(try store.attendanceRecords(room: RoomID("")), [attendance])
    }

    func testAuthenticationFailureIsAnAuditRow() throws {
        let (store, _) = try openStore(self)
        store.appendAuthenticationFailure(
            room: room, reason: "bad-signature", address: "10.0.0.1", at: Instant(milliseconds: 5))
        store.flush()
        let rows = try store.auditRecords(room: room)
        XCTAssertEqual(rows.count, 1)
        XCTAssertEqual(
            rows[0].record,
            AuditRecord(
                at: Instant(milliseconds: 5), room: room, actor: nil, subject: nil, action: "authenticate",
                outcome: .refused(.authenticationFailed), reason: "bad-signature address:10.0.0.1"))
        XCTAssertEqual(try store.verifyAudit(), .ok(count: 1))
    }

    func testChainContinuesAcrossReopenAndManyTransactions() throws {
        let (store, path) = try openStore(self)
        for r in records() {
            store.append(r)
            store.flush()  // one transaction each
        }
        store.close()
        let reopened = try Store(path: path)
        for r in records() { reopened.append(r) }
        reopened.flush()
        XCTAssertEqual(try reopened.verifyAudit(), .ok(count: 2 * records().count))
    }

    func testEditingAFieldIsDetectedAtThatRow() throws {
        let (store, _) = try filled()
        // The append-only trigger refuses edits; an intruder drops it first.
        XCTAssertThrowsError(try store.rawExecute("UPDATE audit SET reason = 'x' WHERE id = 7"))
        try store.rawExecute("DROP TRIGGER audit_append_only")
        try store.rawExecute("UPDATE audit SET reason = 'polite' WHERE id = 7")
        XCTAssertBroken(try store.verifyAudit(), at: 7, containing: "edited")
    }

    func testEditingEachColumnIsDetected() throws {
        let edits = [
            "at = at + 1", "room = 'x'", "action = 'admit'", "outcome = 'done', code = NULL", "code = 'banned'",
            "reason = 'r'", "actor_user = 'someone-else'", "actor_member = 9", "actor_role = 'facilitator'",
            "subject_user = 'z'", "subject_member = 8", "subject_role = 'guest'", "prev_hash = hash",
        ]
        for edit in edits {
            let (store, _) = try filled()
            try store.rawExecute("DROP TRIGGER audit_append_only")
            try store.rawExecute("UPDATE audit SET \(edit) WHERE id = 5")
            XCTAssertBroken(try store.verifyAudit(), at: 5, containing: "row 5", edit)
        }
    }

    func testAlteringAStoredHashIsDetectedAtThatRow() throws {
        let (store, _) = try filled()
        try store.rawExecute("DROP TRIGGER audit_append_only")
        try store.rawExecute("UPDATE audit SET hash = '\(String(repeating: "a", count: 64))' WHERE id = 4")
        XCTAssertBroken(try store.verifyAudit(), at: 4, containing: "edited")
    }

    /// An intruder who edits a row and recomputes its hash breaks the link to the next row.
    func testEditingARowAndRehashingItIsDetectedAtTheNextRow() throws {
        let (store, _) = try filled()
        var row = try store.auditRecords(room: nil).first { $0.id == 4 }!
        row.record.actor = nil
        let hash = AuditChain.hash(prev: row.prevHash, id: 4, record: row.record)
        try store.rawExecute("DROP TRIGGER audit_append_only")
        try store.rawExecute(
            "UPDATE audit SET actor_user = NULL, actor_member = NULL, actor_role = NULL, hash = '\(hash)' WHERE id = 4")
        XCTAssertBroken(try store.verifyAudit(), at: 5, containing: "prev_hash")
    }

    func testInsertingARowIsDetected() throws {
        let (store, _) = try filled()
        let last = try store.auditRecords(room: nil).last!
        // Appended after the end, even with a correct link and hash, but not in the head.
        let forged = AuditRecord(
            at: Instant(milliseconds: 99_999), room: room, actor: party("staff-1", 1, .facilitator),
            subject: party("patient-7", 2, .participant), action: "admit")
        let id = last.id + 1
        let hash = AuditChain.hash(prev: last.hash, id: id, record: forged)
        try store.rawExecute(
            """
            INSERT INTO audit (id, at, room, action, outcome, actor_user, actor_member, actor_role, subject_user,
                subject_member, subject_role, prev_hash, hash)
            VALUES (\(id), 99999, '\(room)', 'admit', 'done', 'staff-1', 1, 'facilitator', 'patient-7', 2,
                'participant', '\(last.hash)', '\(hash)')
            """)
        XCTAssertBroken(try store.verifyAudit(), at: id, containing: "inserted")
    }

    func testInsertingARowInTheMiddleIsDetected() throws {
        let (store, _) = try filled()
        // Make room at id 6 by moving the later rows up, then forge a row there.
        try store.rawExecute("DROP TRIGGER audit_append_only")
        try store.rawExecute("UPDATE audit SET id = id + 100 WHERE id >= 6")
        try store.rawExecute("UPDATE audit SET id = id - 99 WHERE id >= 106")
        let prev = try store.auditRecords(room: nil).first { $0.id == 5 }!
        try store.rawExecute(
            """
            INSERT INTO audit (id, at, room, action, outcome, prev_hash, hash)
            VALUES (6, 1, '\(room)', 'admit', 'done', '\(prev.hash)', '\(String(repeating: "b", count: 64))')
            """)
        XCTAssertBroken(try store.verifyAudit(), at: 6, containing: "row 6")
    }

    func testInsertingARowBeforeTheFirstIsDetected() throws {
        let (store, _) = try filled()
        try store.rawExecute(
            "INSERT INTO audit (id, at, room, action, outcome, prev_hash, hash) VALUES (0, 1, 'r', 'a', 'done', 'x', 'y')"
        )
        XCTAssertBroken(try store.verifyAudit(), at: 0, containing: "inserted")
    }

    func testDeletingAMiddleRowIsDetectedAndNamed() throws {
        let (store, _) = try filled()
        try store.rawExecute("DELETE FROM audit WHERE id = 6")
        XCTAssertBroken(try store.verifyAudit(), at: 6, containing: "row 6 is missing")
    }

    func testDeletingTheFirstRowIsDetected() throws {
        let (store, _) = try filled()
        try store.rawExecute("DELETE FROM audit WHERE id = 1")
        XCTAssertBroken(try store.verifyAudit(), at: 1, containing: "row 1 is missing")
    }

    func testDeletingTheLastRowIsDetected() throws {
        let (store, records) = try filled()
        let last = Int64(records.count)
        try store.rawExecute("DELETE FROM audit WHERE id = \(last)")
        XCTAssertBroken(try store.verifyAudit(), at: last, containing: "row \(last) is missing")
    }

    func testDeletingTheLastRowsAndRewindingTheHeadCountIsDetected() throws {
        let (store, records) = try filled()
        let last = Int64(records.count)
        try store.rawExecute("DELETE FROM audit WHERE id = \(last)")
        try store.rawExecute("UPDATE audit_head SET last_id = last_id - 1, count = count - 1")
        XCTAssertBroken(try store.verifyAudit(), at: last - 1, containing: "head")
    }

    func testDeletingEveryRowIsDetected() throws {
        let (store, records) = try filled()
        try store.rawExecute("DELETE FROM audit")
        XCTAssertBroken(try store.verifyAudit(), at: 1, containing: "rows 1–\(records.count) are missing")
    }

    func testRetentionPruneKeepsTheRestVerifiable() throws {
        let (store, records) = try filled()
        // Rows at 11_000 … 21_000: keep those at or after 15_000 (ids 5…).
        store.pruneAudit(before: Instant(milliseconds: 15_000))
        store.flush()
        XCTAssertEqual(try store.verifyAudit(), .ok(count: records.count - 4))
        XCTAssertEqual(try store.auditRecords(room: nil).first?.id, 5)
        // Deleting below the new start is still caught.
        try store.rawExecute("DELETE FROM audit WHERE id = 5")
        XCTAssertBroken(try store.verifyAudit(), at: 5, containing: "row 5 is missing")
        try store.rawExecute("DELETE FROM audit")
        store.append(records[0])
        store.flush()
        XCTAssertBroken(try store.verifyAudit(), at: 5, containing: "missing")
    }

    func testPruningEverythingThenAppendingContinuesTheChain() throws {
        let (store, records) = try filled()
        store.pruneAudit(before: Instant(milliseconds: Int64.max))
        store.flush()
        XCTAssertEqual(try store.verifyAudit(), .ok(count: 0))
        store.append(records[0])
        store.flush()
        XCTAssertEqual(try store.verifyAudit(), .ok(count: 1))
        XCTAssertEqual(try store.auditRecords(room: nil).map(\.id), [Int64(records.count + 1)])
    }

    func testAttendanceRoundTripsAndPrunes() throws {
        let (store, _) = try openStore(self)
        let member = party("patient-7", 2, .participant)
        let kinds: [AttendanceRecord.Kind] = [.enterWaiting, .exitWaiting, .enterRoom, .exitRoom]
        let records = kinds.enumerated().map { i, kind in
            AttendanceRecord(at: Instant(milliseconds: Int64(i * 1000)), room: room, member: member, kind: kind)
        }
        for r in records { store.append(r) }
        store.append(
            AttendanceRecord(at: Instant(milliseconds: 5), room: RoomID("x"), member: member, kind: .enterRoom))
        store.flush()
        XCTAssertEqual(try store.attendanceRecords(room: room), records)
        store.pruneAttendance(before: Instant(milliseconds: 2000))
        store.flush()
        XCTAssertEqual(try store.attendanceRecords(room: room), Array(records[2...]))
        XCTAssertEqual(try store.attendanceRecords(room: RoomID("x")), [])
    }
}

func XCTAssertBroken(
    _ result: @autoclosure () throws -> AuditVerification, at id: Int64, containing text: String,
    _ message: String = "", file: StaticString = #filePath, line: UInt = #line
) {
    do {
        let result = try result()
        guard case .broken(let atID, let reason) = result else {
            return XCTFail("not detected: \(result) \(message)", file: file, line: line)
        }
        XCTAssertEqual(atID, id, "\(reason) \(message)", file: file, line: line)
        XCTAssertTrue(reason.contains(text), "\"\(reason)\" lacks \"\(text)\" \(message)", file: file, line: line)
    } catch {
        XCTFail("verify threw \(error)", file: file, line: line)
    }
}

/// The writer's own binding (`Schema.insert`): every value kind, and the wrong number of values.
final class InsertTests: XCTestCase {
    func testValuesAreBoundAsWrittenAndAMissingOneIsRefused() throws {
        let queue = try DatabaseQueue()
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (a INTEGER, b TEXT, c TEXT)")
            let sql = "INSERT INTO t (a, b, c) VALUES (?, ?, ?)"
            try Schema.insert(sql, [.integer(Int64.min), .text(""), .null], db)
            try Schema.insert(sql, [.integer(7), .text("naïve 🙂"), Schema.Value(String?.none)], db)
            XCTAssertThrowsError(try Schema.insert(sql, [.integer(8), .text("two of three")], db)) {
                XCTAssertEqual(($0 as? DatabaseError)?.resultCode, .SQLITE_RANGE)
            }
            XCTAssertThrowsError(try Schema.insert(sql, [.integer(9), .null, .null, .null], db))
            let rows = try Row.fetchAll(db, sql: "SELECT a, b, c, typeof(b), typeof(c) FROM t ORDER BY rowid")
            XCTAssertEqual(rows.count, 2, "a refused insert writes nothing")
            XCTAssertEqual(rows[0][0] as Int64, Int64.min)
            XCTAssertEqual(rows[0][1] as String, "")
            XCTAssertEqual(rows[0][3] as String, "text")
            XCTAssertEqual(rows[0][4] as String, "null")
            XCTAssertEqual(rows[1][1] as String, "naïve 🙂")
        }
    }
}
