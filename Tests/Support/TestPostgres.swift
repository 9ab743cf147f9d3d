import Foundation

// Shared by the test targets that need a real PostgreSQL (the shared store's suite, the shell's
// cluster tests).

public struct TestPostgresError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The PostgreSQL the tests use: `HEARTH_TEST_POSTGRES` (a libpq conninfo) if set, otherwise
/// one started once per test process with scripts/postgres-temp in a temporary directory and
/// stopped at exit.
public enum TestPostgres {
    nonisolated(unsafe) private static var cached: Result<String, Error>?
    private static let lock = NSLock()

    public static func conninfo() throws -> String {
        try lock.withLock {
            if let cached { return try cached.get() }
            let result = Result { try start() }
            cached = result
            return try result.get()
        }
    }

    private static func start() throws -> String {
        if let given = ProcessInfo.processInfo.environment["HEARTH_TEST_POSTGRES"], !given.isEmpty { return given }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let script = root.appendingPathComponent("scripts/postgres-temp").path
        let dir = "/tmp/hearth-store-pg-\(getpid())"
        let output = try run(script, ["start", dir])
        atexit_dir = dir
        atexit_script = script
        atexit {
            _ = try? TestPostgres.run(atexit_script, ["stop", atexit_dir])
            try? FileManager.default.removeItem(atPath: atexit_dir)
        }
        guard let line = output.split(separator: "\n").last, line.contains("port=") else {
            throw TestPostgresError("scripts/postgres-temp printed no conninfo: \(output)")
        }
        return String(line)
    }

    /// Runs `path arguments…` and returns its standard output. posix_spawn and waitpid, not
    /// Foundation's `Process`, whose wait was seen to hang here once the script's own child (the
    /// PostgreSQL server) outlived it. Output goes to a file: the server would hold a pipe open.
    public static func run(_ path: String, _ arguments: [String]) throws -> String {
        let outPath = NSTemporaryDirectory() + "hearth-postgres-temp-\(getpid()).out"
        defer { try? FileManager.default.removeItem(atPath: outPath) }
        let command = ([path] + arguments).map { "'\($0)'" }.joined(separator: " ") + " > '\(outPath)'"
        let argv: [UnsafeMutablePointer<CChar>?] = ["/bin/sh", "-c", command].map { (s: String) in strdup(s) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ) == 0 else {
            throw TestPostgresError("cannot run \(path)")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        guard status == 0 else {
            throw TestPostgresError("\(path) \(arguments) exited with status \(status)")
        }
        return (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    }
}

nonisolated(unsafe) private var atexit_dir = ""
nonisolated(unsafe) private var atexit_script = ""
