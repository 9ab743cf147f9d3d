import CLws
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Monotonic nanoseconds (CLOCK_MONOTONIC is system-wide: comparable across generator processes).
@inline(__always)
func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Wall-clock milliseconds since the epoch (phase markers for the runner's /proc samples).
func wallMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Writes a line to stdout and flushes (the runner reads phase markers as they happen).
func emit(_ line: String) {
    print(line)
    fflush(nil)
}

/// Raises the soft file-descriptor limit to the hard limit; returns the new soft limit.
func raiseFileLimit() -> Int {
    var rl = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0 else { return 1024 }
    if rl.rlim_cur < rl.rlim_max {
        rl.rlim_cur = rl.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
        _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
    }
    return Int(rl.rlim_cur)
}

/// A small deterministic PRNG (xorshift64*), one per worker: phases and jitter are reproducible.
struct XorShift: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}

/// HS256 join tokens (the claims HearthAuth's verifier reads), MAC from OpenSSL's one-shot HMAC.
struct TokenMinter {
    let key: [UInt8]

    init(secret: String) { key = Array(secret.utf8) }

    func mint(
        user: String, room: String, role: String, name: String, consentVersion: String?, capacity: Int,
        waitingRoom: Bool
    ) -> String {
        let now = Int(time(nil))
        var payload =
            "{\"capacity\":\(capacity),"
        if let consentVersion { payload += "\"consentVersion\":\"\(consentVersion)\"," }
        payload +=
            "\"exp\":\(now + 590),\"iat\":\(now - 5),\"name\":\"\(name)\",\"role\":\"\(role)\","
            + "\"room\":\"\(room)\",\"sub\":\"\(user)\",\"waitingRoom\":\(waitingRoom)}"
        let input =
            Self.base64url(Array("{\"alg\":\"HS256\",\"typ\":\"JWT\"}".utf8)) + "."
            + Self.base64url(Array(payload.utf8))
        var mac = [UInt8](repeating: 0, count: 32)
        var macLength: UInt32 = 0
        let data = Array(input.utf8)
        key.withUnsafeBytes { k in
            data.withUnsafeBufferPointer { d in
                _ = HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), d.baseAddress, d.count, &mac, &macLength)
            }
        }
        return input + "." + Self.base64url(Array(mac.prefix(Int(macLength))))
    }

    static func base64url(_ bytes: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var i = 0
        while i + 2 < bytes.count {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [table[Int(v >> 18 & 63)], table[Int(v >> 12 & 63)], table[Int(v >> 6 & 63)], table[Int(v & 63)]]
            i += 3
        }
        if bytes.count - i == 1 {
            let v = UInt32(bytes[i]) << 16
            out += [table[Int(v >> 18 & 63)], table[Int(v >> 12 & 63)]]
        } else if bytes.count - i == 2 {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [table[Int(v >> 18 & 63)], table[Int(v >> 12 & 63)], table[Int(v >> 6 & 63)]]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The pid of the process listening on 127.0.0.1:`port` (or 0.0.0.0), found through
/// /proc/net/tcp and the /proc/PID/fd links of this user's processes; nil if not found.
func listenerPid(port: Int) -> Int32? {
    guard let tcp = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return nil }
    let hexPort = String(format: "%04X", port)
    var inode = ""
    for line in tcp.split(separator: "\n").dropFirst() {
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        // local_address rem_address st ... inode (field 9)
        guard f.count > 9, f[3] == "0A", f[1].hasSuffix(":" + hexPort),
            f[1].hasPrefix("0100007F") || f[1].hasPrefix("00000000")
        else { continue }
        inode = String(f[9])
        break
    }
    guard !inode.isEmpty, let pids = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
    let target = "socket:[\(inode)]"
    for p in pids {
        guard let pid = Int32(p), let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(p)/fd") else {
            continue
        }
        for fd in fds
        where (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(p)/fd/\(fd)")) == target {
            return pid
        }
    }
    return nil
}

/// utime + stime of a process in seconds (/proc/PID/stat), nil if it cannot be read.
func processCPUSeconds(_ pid: Int32) -> Double? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return nil }
    // Fields after "comm)": state is field 3, utime and stime are fields 14 and 15.
    let f = stat[stat.index(after: close)...].split(separator: " ")
    guard f.count > 12, let u = Double(f[11]), let s = Double(f[12]) else { return nil }
    return (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// This process's user + system CPU seconds (all threads).
func ownCPUSeconds() -> Double {
    var r = rusage()
    getrusage(RUSAGE_SELF.rawValue, &r)
    return Double(r.ru_utime.tv_sec) + Double(r.ru_utime.tv_usec) / 1e6 + Double(r.ru_stime.tv_sec)
        + Double(r.ru_stime.tv_usec) / 1e6
}
