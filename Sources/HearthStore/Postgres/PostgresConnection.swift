import CLibpq
import Foundation

/// An error from PostgreSQL or from libpq (connection lost, statement refused).
public struct PostgresError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The SQLSTATE code when the server sent one (e.g. `23505`, a unique violation).
    public var state: String?
    public var message: String
    public var description: String { state.map { "\(message) (SQLSTATE \($0))" } ?? message }
}

/// One libpq connection, used by one thread at a time (libpq connections are not
/// thread-safe): text parameters in, text values out. Statements are short and sent with
/// `PQexecParams`, so parameters are never spliced into SQL. A broken connection is
/// reopened on the next call (`reconnect()`), and the call fails.
///
/// `@unchecked Sendable` only so a thread can be handed its connection: each of the shared
/// store's threads (the journal writer, the lease keeper) owns one, and the event loop's
/// calls share one behind a lock.
final class PostgresConnection: @unchecked Sendable {
    private let conninfo: String
    private var handle: OpaquePointer?

    /// Opens a connection. `conninfo` is libpq's (`host=… port=… dbname=… user=…`); a
    /// `connect_timeout` of 3 s is added unless it names one.
    init(conninfo: String) throws {
        self.conninfo = conninfo.contains("connect_timeout") ? conninfo : conninfo + " connect_timeout=3"
        try open()
    }

    deinit { if let handle { PQfinish(handle) } }

    private func open() throws {
        if let handle { PQfinish(handle) }
        handle = PQconnectdb(conninfo)
        guard let handle, PQstatus(handle) == CONNECTION_OK else {
            let message = handle.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
            throw PostgresError(state: nil, message: "cannot connect to PostgreSQL: \(Self.trim(message))")
        }
        // A statement that hangs must not hang the caller: a lock held by another node (a claim
        // waiting on a commit) is given up after 1 s (the caller retries; a claim on the event
        // loop then answers server-busy), any statement after 5 s; and a transaction left open
        // by a stopped process is ended by the server after 5 s, releasing its locks.
        _ = try? execute("SET statement_timeout = 5000")
        _ = try? execute("SET lock_timeout = 1000")
        _ = try? execute("SET idle_in_transaction_session_timeout = 5000")
        _ = try? execute("SET client_min_messages = warning")
    }

    /// Runs one statement with text parameters (nil is NULL); returns its rows, each a list of
    /// text values (nil for NULL). Throws on any error; after a connection failure the next
    /// call reconnects first.
    @discardableResult
    func execute(_ sql: String, _ parameters: [String?] = []) throws -> [[String?]] {
        if handle == nil || PQstatus(handle) != CONNECTION_OK { try open() }
        let result = Self.withCStrings(parameters) { values in
            PQexecParams(handle, sql, Int32(parameters.count), nil, values, nil, nil, 0)
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else {
            let message = result.map { String(cString: PQresultErrorMessage($0)) } ?? ""
            let state = result.flatMap { PQresultErrorField($0, Int32(UInt8(ascii: "C"))) }.map { String(cString: $0) }
            if PQstatus(handle) != CONNECTION_OK {
                PQfinish(handle)
                handle = nil
            }
            let text = Self.trim(message.isEmpty ? String(cString: PQerrorMessage(handle)) : message)
            throw PostgresError(state: state, message: text.isEmpty ? "the connection to PostgreSQL was lost" : text)
        }
        var rows: [[String?]] = []
        let count = PQntuples(result)
        let fields = PQnfields(result)
        rows.reserveCapacity(Int(count))
        for r in 0..<count {
            var row: [String?] = []
            row.reserveCapacity(Int(fields))
            for f in 0..<fields {
                row.append(PQgetisnull(result, r, f) == 1 ? nil : String(cString: PQgetvalue(result, r, f)))
            }
            rows.append(row)
        }
        return rows
    }

    /// Runs `body` inside BEGIN … COMMIT; rolls back if it throws.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            _ = try? execute("ROLLBACK")
            throw error
        }
    }

    private static func trim(_ s: String) -> String { s.trimmingCharacters(in: .whitespacesAndNewlines) }

    private static func withCStrings<R>(
        _ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R
    ) -> R {
        if strings.isEmpty { return body(nil) }
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0) } ?? nil }
        defer { for p in pointers { free(p) } }
        return pointers.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) { body($0) }
        }
    }
}
