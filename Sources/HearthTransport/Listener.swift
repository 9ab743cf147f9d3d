import CLws

#if canImport(Glibc)
    import Glibc
#endif

/// The TLS listen socket. The transport owns it, not libwebsockets, for what happens when the
/// process runs out of descriptors.
///
/// lws 4.1.6's own listener, when `accept` fails with EMFILE, logs an error and returns with the
/// connection still waiting; its level-triggered watcher fires again at once. Measured with a
/// descriptor limit of 64 and 100 waiting connections (loadtest/RESULTS.md, issue 16 part 2):
/// the loop used 3.0 s of CPU in 3 s, wrote 509,000 log lines, and served no room meanwhile.
/// Here the worker stops the watcher until its next tick (100 ms) and logs once in 10 s.
///
/// Otherwise it behaves as lws's listener: every waiting connection is accepted in one go and
/// handed to lws (`lws_adopt_socket_vhost`, which gives it TLS, HTTP and the WebSocket upgrade
/// exactly as lws's own listener does). Accepting only some per loop iteration, to keep a
/// reconnect storm's handshakes from stalling the rooms, was built and measured; it did not pay
/// and is not here (branch `accept-pacing`, and RESULTS.md).
///
/// One bound stays: the connections still in their handshake (accepted, no request yet) that
/// the worker holds at once (`TransportConfiguration.maxHandshakesInFlight`). lws 4.1.6 gives
/// each one a pending timeout in one sorted list per thread and inserts by walking it from the
/// head, so a storm's thousands of handshakes in flight cost time quadratic in their number:
/// with 9,000 reconnecting clients that list took a third of the loop and the storm never
/// ended (RESULTS.md, issue 16 part 4). At the bound the worker stops this watcher; it starts
/// it again when a connection sends its request or closes.
final class Listener {
    /// The kernel's accept queue (capped by `net.core.somaxconn`, 4096 by default).
    static let backlog: Int32 = 4096

    let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    deinit { close() }

    /// A socket bound to `host:port` and listening. `host` is an IPv4 or IPv6 literal or a
    /// name (resolved with `getaddrinfo`: its first IPv4 address, else its first address).
    static func open(host: String, port: Int) throws(TransportError) -> Listener {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr = v4
            return try open(family: AF_INET, address: &address, host: host, port: port)
        }
        if inet_pton(AF_INET6, host, &v6) == 1 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(UInt16(port).bigEndian)
            address.sin6_addr = v6
            return try open(family: AF_INET6, address: &address, host: host, port: port)
        }
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_INET
        var found: UnsafeMutablePointer<addrinfo>?
        var rc = getaddrinfo(host, String(port), &hints, &found)
        if rc != 0 {
            hints.ai_family = AF_UNSPEC
            rc = getaddrinfo(host, String(port), &hints, &found)
        }
        guard rc == 0, let first = found else {
            throw .cannotBind(host: host, port: port, reason: String(cString: gai_strerror(rc)))
        }
        defer { freeaddrinfo(found) }
        return try open(
            family: first.pointee.ai_family, raw: first.pointee.ai_addr, length: first.pointee.ai_addrlen,
            host: host, port: port)
    }

    private static func open<Address>(
        family: Int32, address: inout Address, host: String, port: Int
    ) throws(TransportError) -> Listener {
        let result: Result<Listener, TransportError> = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                Result { () throws(TransportError) in
                    try open(
                        family: family, raw: raw, length: socklen_t(MemoryLayout<Address>.size), host: host, port: port)
                }
            }
        }
        return try result.get()
    }

    private static func open(
        family: Int32, raw: UnsafePointer<sockaddr>, length: socklen_t, host: String, port: Int
    ) throws(TransportError) -> Listener {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else {
            throw .cannotBind(host: host, port: port, reason: String(cString: strerror(errno)))
        }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, raw, length) == 0, listen(fd, backlog) == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw .cannotBind(host: host, port: port, reason: reason)
        }
        setDescriptorFlags(fd)
        return Listener(fd: fd)
    }

    private var closed = false

    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }

    /// Accepts every waiting connection (at most `limit`, and none once `until` says so) and
    /// hands each to `take` as a non-blocking, close-on-exec socket with Nagle off. Returns nil
    /// once the queue is empty, `limit` are taken or `until` is true, or the `errno`
    /// of an `accept` that failed for want of descriptors or memory: the caller then pauses the
    /// listener, since the still-readable socket would otherwise spin the loop.
    func acceptAll(limit: Int = .max, until done: () -> Bool = { false }, _ take: (Int32) -> Void) -> Int32? {
        var taken = 0
        while taken < limit && !done() {
            // Non-blocking and close-on-exec from the start: four `fcntl` calls fewer per connection.
            let client = clws_accept_nonblocking(fd)
            if client < 0 {
                switch errno {
                case EAGAIN, EWOULDBLOCK: return nil
                case EINTR, ECONNABORTED, EPROTO: continue  // this connection is gone; try the next
                default: return errno
                }
            }
            var one: Int32 = 1
            setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            take(client)
            taken += 1
        }
        return nil
    }

    private static func setDescriptorFlags(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC)
    }
}
