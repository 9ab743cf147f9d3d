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
