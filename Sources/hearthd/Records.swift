import ArgumentParser
import Foundation
import HearthCore
import HearthServer
import HearthStore

/// Where the records are: a cluster's PostgreSQL (`--postgres`, or the configuration's
/// `store: postgres`), or the embedded store in `--data-dir` or the configuration's data directory.
struct StoreOption: ParsableArguments {
    @OptionGroup var options: ConfigOption
    @Option(name: .customLong("data-dir"), help: "Data directory (overrides the configuration).") var dataDir: String?
    @Option(
        name: .customLong("postgres"),
        help: "A cluster's shared store: libpq connection string (overrides the configuration; or HEARTH_POSTGRES).")
    var postgres: String?

    func open() throws -> any RecordReading {
        if let postgres { return try SharedRecords(conninfo: postgres) }
        if dataDir == nil {
            let configuration = try options.load()
            if configuration.store == .postgres, let conninfo = configuration.postgres.conninfo {
                return try SharedRecords(conninfo: conninfo)
            }
        }
        let directory = try dataDir ?? options.load().dataDirectory
        let path = "\(directory)/\(Store.fileName)"
        guard FileManager.default.fileExists(atPath: path) else {
            throw ValidationError("no store at \(path)")
        }
        return try Store(path: path)
    }
}

enum RecordFormat: String, ExpressibleByArgument, CaseIterable {
    case jsonl, json, csv
}

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The audit trail: verify its hash chain, or export a session's records.",
        subcommands: [Verify.self, Export.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the hash chain: prints \"ok\" or the first broken link (exit 1).")
        @OptionGroup var store: StoreOption

        func run() throws {
            let s = try store.open()
            defer { s.close() }
            switch try s.verifyAudit() {
            case .ok(let count):
                print("ok (\(count) records)")
            case .broken(let id, let reason):
                print("broken at record \(id): \(reason)")
                throw ExitCode(1)
            }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a room's audit records.")
        @OptionGroup var store: StoreOption
        @Option(help: "Room id.") var room: String
        @Option(help: "Only records at or after this time (milliseconds since the epoch).") var since: Int64?
        @Option(help: "jsonl (one JSON record per line; json is the same) or csv.") var format: RecordFormat = .jsonl

        func run() throws {
            let s = try store.open()
            defer { s.close() }
            let rows = try s.auditRecords(room: RoomID(room), since: since.map(Instant.init(milliseconds:)))
            let header = [
                "id", "at", "room", "action", "outcome", "code", "reason", "actorUserId", "actorMember", "actorRole",
                "subjectUserId", "subjectMember", "subjectRole", "hash",
            ]
            if format == .csv { print(header.joined(separator: ",")) }
            for row in rows {
                let r = row.record
                var code: String?
                if case .refused(let c) = r.outcome { code = c.rawValue }
                let values: [String?] = [
                    String(row.id), String(r.at.milliseconds), r.room.rawValue, r.action,
                    code == nil ? "done" : "refused", code, r.reason, r.actor?.userID.rawValue,
                    r.actor?.id.description, r.actor?.role.rawValue, r.subject?.userID.rawValue,
                    r.subject?.id.description, r.subject?.role.rawValue, row.hash,
                ]
                print(format == .csv ? csvLine(values) : jsonLine(zip(header, values)))
            }
        }
    }
}

struct Attendance: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A session's attendance: per member, time in the room (reconnects merged) and waiting.")
    @OptionGroup var store: StoreOption
    @Option(help: "Room id.") var room: String
    @Option(help: "csv, json or jsonl (json and jsonl: the operations API's attendance object, on one line).")
    var format: RecordFormat = .csv

    func run() throws {
        let s = try store.open()
        defer { s.close() }
        // The same report as `GET /api/v1/rooms/{id}/attendance` (docs/api.md).
        let report = try AttendanceReport(
            room: RoomID(room), store: s, now: Instant(milliseconds: Int64(Date().timeIntervalSince1970 * 1000)))
        switch format {
        case .csv:
            print(AttendanceReport.csvHeader.joined(separator: ","))
            for row in report.csvRows { print(csvLine(row)) }
            print(report.csvSummary)
        case .json, .jsonl:
            print(report.jsonText)
        }
        // The audit trail must tell the same story: a mismatch is a failure, not a footnote.
        if !report.matchesAuditTrail {
            FileHandle.standardError.write(Data("attendance does not match the audit trail\n".utf8))
            throw ExitCode(2)
        }
    }
}

func csvLine(_ values: [String?]) -> String {
    values.map { v -> String in
        guard let v else { return "" }
        if v.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) {
            return "\"" + v.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return v
    }.joined(separator: ",")
}

func jsonLine<S: Sequence>(_ pairs: S) -> String where S.Element == (String, String?) {
    var object: [String: Any] = [:]
    for (k, v) in pairs { object[k] = v ?? NSNull() }
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    return String(decoding: data, as: UTF8.self)
}
