import CLws
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The reconnect storm's stall probe: its own thread, a blocking TLS connection (OpenSSL) to the
/// server, `GET /healthz` every `interval`. hearthd answers every plain HTTP request with
/// `connection: close` (one request per connection), so after each such response the probe
/// opens a new connection before the next request's clock starts: the handshake is never in a
/// round trip. (libssl is reached through `dlsym`: the target does not link OpenSSL itself, and
/// libssl is already loaded by libwebsockets.) The server answers it
/// on its lws service thread, the one that runs the rooms, so a round trip that takes long means
/// that loop was busy (or stalled) for about that long. Samples are read after the thread ends.
final class HealthProbe: @unchecked Sendable {
    let host: String
    let port: Int
    let interval: UInt64
    /// Run on the server's CPUs (its affinity mask), not the generator's: the probe then waits
    /// for the server, not for the generator's busy loop. Empty if that failed.
    let serverPid: Int32
    private(set) var pinnedTo = ""
    let stopFlag = Atomic<Bool>(false)
    /// (intended send time, round trip ns, wake-up lateness ns); all monotonic.
    private(set) var samples: [(UInt64, UInt64, UInt64)] = []
    private(set) var reconnects = 0
    private(set) var errors: [String] = []

    init(host: String, port: Int, serverPid: Int32, intervalMillis: Int = 10) {
        self.host = host
        self.port = port
        self.serverPid = serverPid
        interval = UInt64(intervalMillis) * 1_000_000
    }

    func stop() { stopFlag.store(true, ordering: .relaxed) }

    func run() {
        if serverPid > 0 { pinnedTo = HealthProbe.followAffinity(of: serverPid) }
        guard let ssl = LibSSL() else {
            errors.append("healthz probe: libssl.so.3 not found")
            return
        }
        guard let method = ssl.clientMethod(), let ctx = ssl.ctxNew(method) else {
            errors.append("healthz probe: SSL_CTX_new failed")
            return
        }
        defer { ssl.ctxFree(ctx) }
        loop(ssl, ctx)
    }

    /// Gives the calling thread the affinity mask of `pid` (sched_get/setaffinity are GNU
    /// extensions Glibc does not import: looked up with dlsym); returns the CPU list or "".
    static func followAffinity(of pid: Int32) -> String {
        typealias AffinityFn = @convention(c) (Int32, Int, UnsafeMutableRawPointer?) -> Int32
        guard let h = dlopen(nil, RTLD_NOW), let g = dlsym(h, "sched_getaffinity"),
            let s = dlsym(h, "sched_setaffinity")
        else { return "" }
        let get = unsafeBitCast(g, to: AffinityFn.self)
        let set = unsafeBitCast(s, to: AffinityFn.self)
        var mask = [UInt8](repeating: 0, count: 128)  // cpu_set_t: 1024 bits
        let ok = mask.withUnsafeMutableBytes { get(pid, 128, $0.baseAddress) == 0 && set(0, 128, $0.baseAddress) == 0 }
        guard ok else { return "" }
        var cpus: [String] = []
        for cpu in 0..<1024 where mask[cpu / 8] & UInt8(1 << (cpu % 8)) != 0 { cpus.append(String(cpu)) }
        return cpus.joined(separator: ",")
    }

    private func loop(_ lib: LibSSL, _ ctx: OpaquePointer) {
        let request = Array("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n".utf8)
        var ssl: OpaquePointer?
        var fd: Int32 = -1
        var buffer = [UInt8](repeating: 0, count: 4096)
        var next = monotonicNanos()
        while !stopFlag.load(ordering: .relaxed) {
            if ssl == nil {
                (ssl, fd) = open(lib, ctx)
                if ssl == nil {
                    usleep(100_000)
                    next = monotonicNanos()
                    continue
                }
            }
            var now = monotonicNanos()
            var intended = now
            var lateness: UInt64 = 0
            if now < next {
                // Wake-up lateness: how late this thread got its CPU back after sleeping.
                var ts = timespec(tv_sec: Int((next - now) / 1_000_000_000), tv_nsec: Int((next - now) % 1_000_000_000))
                nanosleep(&ts, nil)
                now = monotonicNanos()
                intended = next
                lateness = now > next ? now - next : 0
            }
            // A round trip longer than the interval delays the next request (one at a time).
            next = max(next + interval, now)
            let ok = request.withUnsafeBytes { lib.write(ssl, $0.baseAddress, Int32($0.count)) } == Int32(request.count)
            var got: [UInt8] = []
            var complete = false
            while ok && !complete {
                let n = buffer.withUnsafeMutableBytes { lib.read(ssl, $0.baseAddress, Int32($0.count)) }
                if n <= 0 { break }
                got += buffer[0..<Int(n)]
                complete = HealthProbe.responseComplete(got)
            }
            if complete {
                samples.append((intended, monotonicNanos() - now, lateness))
                if HealthProbe.closesConnection(got) {
                    lib.free(ssl)
                    close(fd)
                    ssl = nil
                }
            } else {
                // The connection ended without a whole response: count it and reconnect.
                reconnects += 1
                lib.free(ssl)
                close(fd)
                ssl = nil
            }
        }
        if ssl != nil {
            lib.free(ssl)
            close(fd)
        }
    }

    private func open(_ lib: LibSSL, _ ctx: OpaquePointer) -> (OpaquePointer?, Int32) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return (nil, -1) }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        _ = inet_pton(AF_INET, host, &addr.sin_addr)
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0, let ssl = lib.new(ctx) else {
            if errors.count < 3 { errors.append("healthz probe: connect failed (errno \(errno))") }
            close(fd)
            return (nil, -1)
        }
        _ = lib.setFd(ssl, fd)
        guard lib.connect(ssl) == 1 else {
            if errors.count < 3 { errors.append("healthz probe: TLS handshake failed") }
            lib.free(ssl)
            close(fd)
            return (nil, -1)
        }
        return (ssl, fd)
    }

    /// Headers complete and `Content-Length` bytes of body (or a chunked body's last chunk).
    /// Whether a response's head says `connection: close`.
    static func closesConnection(_ b: [UInt8]) -> Bool {
        let end = Array("\r\n\r\n".utf8)
        guard b.count >= 4, let h = (0...(b.count - 4)).first(where: { Array(b[$0..<$0 + 4]) == end }) else {
            return false
        }
        return String(decoding: b[0..<h], as: UTF8.self).lowercased().split(separator: "\r\n").contains {
            $0.replacingOccurrences(of: " ", with: "") == "connection:close"
        }
    }

    static func responseComplete(_ b: [UInt8]) -> Bool {
        let end = Array("\r\n\r\n".utf8)
        guard b.count >= 4, let h = (0...(b.count - 4)).first(where: { Array(b[$0..<$0 + 4]) == end }) else {
            return false
        }
        let head = String(decoding: b[0..<h], as: UTF8.self).lowercased()
        for line in head.split(separator: "\r\n") where line.hasPrefix("content-length:") {
            let v = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
            return b.count - (h + 4) >= v
        }
        if head.contains("transfer-encoding: chunked") {
            return String(decoding: b[(h + 4)...], as: UTF8.self).contains("\r\n0\r\n\r\n")
                || String(decoding: b[(h + 4)...], as: UTF8.self).hasPrefix("0\r\n\r\n")
        }
        return true
    }
}

/// The few libssl calls the probe makes, looked up at run time.
struct LibSSL {
    typealias MethodFn = @convention(c) () -> OpaquePointer?
    typealias CtxNewFn = @convention(c) (OpaquePointer?) -> OpaquePointer?
    typealias CtxFreeFn = @convention(c) (OpaquePointer?) -> Void
    typealias NewFn = @convention(c) (OpaquePointer?) -> OpaquePointer?
    typealias FreeFn = @convention(c) (OpaquePointer?) -> Void
    typealias SetFdFn = @convention(c) (OpaquePointer?, Int32) -> Int32
    typealias ConnectFn = @convention(c) (OpaquePointer?) -> Int32
    typealias WriteFn = @convention(c) (OpaquePointer?, UnsafeRawPointer?, Int32) -> Int32
    typealias ReadFn = @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, Int32) -> Int32

    let clientMethod: MethodFn
    let ctxNew: CtxNewFn
    let ctxFree: CtxFreeFn
    let new: NewFn
    let free: FreeFn
    let setFd: SetFdFn
    let connect: ConnectFn
    let write: WriteFn
    let read: ReadFn

    init?() {
        guard let h = dlopen("libssl.so.3", RTLD_NOW) else { return nil }
        func f<T>(_ name: String, _: T.Type) -> T? {
            dlsym(h, name).map { unsafeBitCast($0, to: T.self) }
        }
        guard let a = f("TLS_client_method", MethodFn.self), let b = f("SSL_CTX_new", CtxNewFn.self),
            let c = f("SSL_CTX_free", CtxFreeFn.self), let d = f("SSL_new", NewFn.self),
            let e = f("SSL_free", FreeFn.self), let g = f("SSL_set_fd", SetFdFn.self),
            let i = f("SSL_connect", ConnectFn.self), let j = f("SSL_write", WriteFn.self),
            let k = f("SSL_read", ReadFn.self)
        else { return nil }
        (clientMethod, ctxNew, ctxFree, new, free, setFd, connect, write, read) = (a, b, c, d, e, g, i, j, k)
    }
}
