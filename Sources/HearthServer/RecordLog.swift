import Dispatch
import Foundation
import HearthCore

/// Appends audit and attendance records to JSON-lines files in the data directory, from a
/// writer queue of its own so the event-loop thread never waits on the disk.
///
/// `audit.jsonl` and `attendance.jsonl`: one record per line. They never hold chat text,
/// signalling payloads, locations or tokens (the engine's records carry none).
final class RecordLog: @unchecked Sendable {
    // The handles are touched only on `queue`.
    private let queue = DispatchQueue(label: "hearth.records")
    private let audit: FileHandle
    private let attendance: FileHandle

    init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        audit = try Self.openForAppend("\(directory)/audit.jsonl")
        attendance = try Self.openForAppend("\(directory)/attendance.jsonl")
    }

    private static func openForAppend(_ path: String) throws -> FileHandle {
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        handle.seekToEndOfFile()
        return handle
    }

    func append(_ record: AuditRecord) {
        queue.async { self.write(Self.object(record), to: self.audit) }
    }

    func append(_ record: AttendanceRecord) {
        queue.async { self.write(Self.object(record), to: self.attendance) }
    }

    /// A refused authentication: the room from the URL and the internal reason, never the token.
    func appendAuthenticationFailure(room: String, reason: String, at: Instant) {
        queue.async {
            let object: [String: Any] = [
                "at": at.milliseconds, "room": room, "action": "authenticate", "outcome": "refused",
                "code": ErrorCode.authenticationFailed.rawValue, "reason": reason,
            ]
            self.write(object, to: self.audit)
        }
    }

    /// Waits until everything appended so far is written.
    func flush() {
        queue.sync {
            try? audit.synchronize()
            try? attendance.synchronize()
        }
    }

    private func write(_ object: [String: Any], to handle: FileHandle) {
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        data.append(0x0A)
        handle.write(data)
    }

    static func party(_ p: Party?) -> Any {
        guard let p else { return NSNull() }
        return ["userId": p.userID.rawValue, "member": p.id.description, "role": p.role.rawValue]
    }

    static func object(_ r: AuditRecord) -> [String: Any] {
        var o: [String: Any] = [
            "at": r.at.milliseconds, "room": r.room.rawValue, "actor": party(r.actor), "subject": party(r.subject),
            "action": r.action,
        ]
        switch r.outcome {
        case .done: o["outcome"] = "done"
        case .refused(let code):
            o["outcome"] = "refused"
            o["code"] = code.rawValue
        }
        if let reason = r.reason { o["reason"] = reason }
        return o
    }

    static func object(_ r: AttendanceRecord) -> [String: Any] {
        ["at": r.at.milliseconds, "room": r.room.rawValue, "member": party(r.member), "kind": r.kind.rawValue]
    }
}
