import Foundation
import HearthCore
import HearthStore
import HearthTransport
import HearthWire

// MARK: - Records (reader thread)

/// The endpoints about a session's records: attendance and the audit export (reader thread).
enum Records {
    /// A room is known to the records if the engine has it or the store holds rows of its
    /// session (attendance, or audit rows other than API calls and refused connections).
    static func attendance(
        _ id: RoomID, store: any RecordReading, engineKnows: Bool, engineEnded: Instant?, now: Instant
    ) throws(APIError) -> Answer {
        let report: AttendanceReport
        do {
            report = try AttendanceReport(room: id, store: store, endedAt: engineEnded, now: now)
        } catch {
            throw .internalError
        }
        guard engineKnows || report.hasSessionRecords else { throw .unknownRoom }
        return Answer(status: 200, body: report.json)
    }

    /// The export's `since` (loop thread, before any read).
    static func since(_ request: HTTPRequest) throws(APIError) -> Instant? {
        guard let text = Query(request.query)["since"] else { return nil }
        guard let ms = Int64(text), ms >= 0 else {
            throw .badRequest("Query parameter since must be milliseconds since the epoch (a whole number).")
        }
        return Instant(milliseconds: ms)
    }

    /// Bytes gathered before they go to the stream: each hand-over wakes the loop once.
    static let exportBatchBytes = 65_536

    /// The audit export, streamed: the status is decided first (is the room known?), then the
    /// rows are read with a cursor and encoded one by one into a bounded `HTTPBodyStream`, so
    /// neither the rows nor the body are ever all in memory and the loop only copies bytes out.
    /// The call is audited once the body is done (so an export never contains its own row).
    static func exportAudit(_ id: RoomID, since: Instant?, engineKnows: Bool, call: Call) {
        let store = call.store
        do {
            guard try engineKnows || store.containsAuditRecord(room: id, where: AttendanceReport.isSessionRecord) else {
                return call.respond(call.refused(.unknownRoom))
            }
        } catch {
            return call.respond(call.refused(.internalError))
        }
        let stream = HTTPBodyStream()
        call.respond(HTTPResponse(status: 200, contentType: "application/json", stream: stream))
        // Room ids are 1-64 of A-Z a-z 0-9 _ - (checked by the route): nothing to escape.
        var buffer = Array(#"{"room":""#.utf8) + Array(id.rawValue.utf8) + Array(#"","records":["#.utf8)
        var first = true
        do {
            try store.forEachAuditRecord(room: id, since: since) { row in
                if !first { buffer.append(UInt8(ascii: ",")) }
                first = false
                buffer += record(row).encoded()
                guard buffer.count >= exportBatchBytes else { return true }
                defer { buffer.removeAll(keepingCapacity: true) }
                return stream.write(buffer)
            }
        } catch {
            stream.fail()
            call.audit(
                .refused(.internalError), reason: "operator:\(call.operatorID) code:internal-error", room: nil,
                at: RoomHost.now())
            return
        }
        buffer += Array("]}".utf8)
        if !stream.isCancelled, stream.write(buffer) { stream.finish() }
        call.audit(.done, reason: "operator:\(call.operatorID)", room: nil, at: RoomHost.now())
    }

    static func record(_ row: StoredAudit) -> JSONValue {
        func text(_ s: String?) -> JSONValue { s.map(JSONValue.string) ?? .null }
        let r = row.record
        var code: String? = nil
        if case .refused(let c) = r.outcome { code = c.rawValue }
        return .object(
            [
                ("id", .integer(row.id)), ("at", .integer(r.at.milliseconds)), ("room", .string(r.room.rawValue)),
                ("action", .string(r.action)), ("outcome", .string(code == nil ? "done" : "refused")),
                ("code", text(code)), ("reason", text(r.reason)),
                ("actorUserId", text(r.actor?.userID.rawValue)), ("actorMember", text(r.actor?.id.description)),
                ("actorRole", text(r.actor?.role.rawValue)), ("subjectUserId", text(r.subject?.userID.rawValue)),
                ("subjectMember", text(r.subject?.id.description)), ("subjectRole", text(r.subject?.role.rawValue)),
                ("hash", .string(row.hash)),
            ] + (row.chain.map { [("chain", JSONValue.string($0))] } ?? []))
    }
}
