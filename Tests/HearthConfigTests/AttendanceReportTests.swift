import Foundation
import HearthCore
import HearthStore
import XCTest

@testable import HearthServer

final class AttendanceReportTests: XCTestCase {
    private let t0 = Instant(milliseconds: 1_795_944_560_000)

    private func store() throws -> Store {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hearth-report-\(UUID())").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return try Store(directory: dir, commitWindow: 0)
    }

    func testTheAPIAndTheCommandLinePrintTheSameMinutes() throws {
        let s = try store()
        defer { s.close() }
        let room = RoomID("rep-1")
        let member = Party(userID: UserID("patient-7"), id: ParticipantID(2), role: .participant)
        s.append(AttendanceRecord(at: t0, room: room, member: member, kind: .enterWaiting))
        s.append(AttendanceRecord(at: t0 + 19, room: room, member: member, kind: .exitWaiting))
        s.append(AttendanceRecord(at: t0 + 19, room: room, member: member, kind: .enterRoom))
        s.append(AttendanceRecord(at: t0 + 1059, room: room, member: member, kind: .exitRoom))
        s.flush()
        let report = try AttendanceReport(room: room, store: s, endedAt: t0 + 2000, now: t0 + 5000)
        XCTAssertEqual(
            report.jsonText,
            #"{"room":"rep-1","participantCount":1,"endedAt":1795944562000,"members":[{"userId":"patient-7","#
                + #""role":"participant","firstAdmitted":1795944560019,"lastLeft":1795944561059,"intervals":1,"#
                + #""minutesInRoom":0.02,"minutesWaiting":0.0,"msInRoom":1040,"msWaiting":19,"breakouts":[]}],"#
                + #""matchesAuditTrail":false}"#)
        XCTAssertEqual(
            report.csvRows,
            [
                [
                    "patient-7", "participant", "1795944560019", "1795944561059", "1", "0.02", "0.00", "1040", "19",
                    "0", "",
                ]
            ])
        XCTAssertEqual(
            report.csvSummary, "# room rep-1: 1 participants; ended: 1795944562000; matches the audit trail: no")
        XCTAssertTrue(report.hasSessionRecords)
    }

    /// Time in breakouts is time in the room; the report says which breakout, by id and name.
    func testBreakoutTimeIsReportedPerBreakoutWithItsName() throws {
        let s = try store()
        defer { s.close() }
        let room = RoomID("rep-2")
        let member = Party(userID: UserID("patient-7"), id: ParticipantID(2), role: .participant)
        func add(_ at: Int64, _ kind: AttendanceRecord.Kind, _ b: UInt32? = nil, _ name: String? = nil) {
            s.append(
                AttendanceRecord(
                    at: t0 + at, room: room, member: member, kind: kind, breakout: b.map(BreakoutID.init),
                    breakoutName: name))
        }
        add(0, .enterRoom)
        add(60_000, .enterBreakout, 1, "Pair, one")
        add(180_000, .exitBreakout, 1, "Pair, one")
        add(180_000, .enterBreakout, 4, "Pull-aside")
        add(210_000, .exitBreakout, 4, "Pull-aside")
        add(300_000, .enterBreakout, 1, "Pair, one")
        add(330_000, .exitBreakout, 1, "Pair, one")
        add(400_000, .exitRoom)
        s.flush()
        let report = try AttendanceReport(room: room, store: s, endedAt: t0 + 400_000, now: t0 + 500_000)
        XCTAssertTrue(
            report.jsonText.contains(
                #""msInRoom":400000,"msWaiting":0,"breakouts":[{"id":"b1","name":"Pair, one","minutes":2.5,"ms":150000},"#
                    + #"{"id":"b4","name":"Pull-aside","minutes":0.5,"ms":30000}]}"#), report.jsonText)
        XCTAssertEqual(report.csvRows.first?.suffix(3), ["0", "180000", "b1=150000;b4=30000"])
    }

    func testARoomWithoutRecordsHasNoSessionRecordsAndRunsToNow() throws {
        let s = try store()
        defer { s.close() }
        s.append(AuditRecord(at: t0, room: RoomID("empty"), actor: nil, subject: nil, action: "api:get-room"))
        s.flush()
        let report = try AttendanceReport(room: RoomID("empty"), store: s, now: t0)
        XCTAssertFalse(report.hasSessionRecords, "API calls naming a room do not make a session")
        XCTAssertNil(report.endedAt)
        XCTAssertTrue(report.matchesAuditTrail)
        XCTAssertEqual(report.csvSummary, "# room empty: 0 participants; ended: no; matches the audit trail: yes")
    }

    func testMinutesAreRoundedOnceAndPrintedWithTwoDecimals() {
        XCTAssertEqual(AttendanceReport.minutes(1069), 0.02)
        XCTAssertEqual(AttendanceReport.minutes(90_000), 1.5)
        XCTAssertEqual(AttendanceReport.twoDecimals(AttendanceReport.minutes(90_000)), "1.50")
        XCTAssertEqual(AttendanceReport.twoDecimals(AttendanceReport.minutes(0)), "0.00")
        XCTAssertEqual(AttendanceReport.twoDecimals(AttendanceReport.minutes(3_600_000 * 25 + 300)), "1500.01")
        // 0.5 hundredths: both formats show the rounded value, not one each.
        XCTAssertEqual(AttendanceReport.twoDecimals(AttendanceReport.minutes(300)), "0.01")
    }
}
