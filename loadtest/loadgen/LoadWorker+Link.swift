import CLws

#if canImport(Glibc)
    import Glibc
#endif

// The generator's own client connections: a non-blocking TCP socket watched by the worker's
// libev loop, OpenSSL on it, the upgrade, and frames (`WebSocketFraming`). libwebsockets keeps
// only the loop's timers.
//
// Why not lws's client: it parsed every received byte through its state machine, and asked
// for a writeable callback per message (two epoll_ctl calls per send). At 60k deliveries/s
// those were most of the generator's core (loadtest/RESULTS.md, issue 16 part 4). Here:
// - one read() takes everything the socket holds into OpenSSL's memory BIO, and a read that
//   did not fill the buffer is the last of that readiness (no read that only says EAGAIN);
// - frames are handed on where they lie in the decrypted buffer;
// - the frames a connection queued in one loop iteration go out in one write before the loop
//   blocks (the flush, an ev_prepare watcher); only a socket that takes no more waits for
//   EV_WRITE.
extension LoadWorker {
    static let openTimeoutNanos: UInt64 = 30_000_000_000
    static let readBufferSize = 64 * 1024
    static let maxResponseHead = 16 * 1024

    /// Opens `c`'s connection; returns why it could not start (no socket, no connect).
    func openLink(_ c: LoadClient, now: UInt64) -> String? {
        let fd = socket(
            AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return "socket: \(errnoText())" }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        if c.slow {
            // Before connect, so the window it offers is small from the start: a non-reader then
            // stops the server with a zero window (probed, and reopened the moment it reads
            // again). Shrunk after the handshake, the window already offered was larger than the
            // buffer: the kernel dropped what overflowed, and the server's retransmissions backed
            // off for longer than the pause, so the resumed reader saw nothing more in the run.
            var size = Int32(plan.slowReceiveBuffer)
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var source = sourceAddresses[c.index % sourceAddresses.count]
        var server = serverAddress
        let bound = withUnsafePointer(to: &source) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            let why = "bind: \(errnoText())"
            close(fd)
            return why
        }
        let rc = withUnsafePointer(to: &server) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 || errno == EINPROGRESS else {
            let why = "connect: \(errnoText())"
            close(fd)
            return why
        }
        c.fd = fd
        c.link = .connecting
        c.writeBlocked = false
        c.openDeadline = now + LoadWorker.openTimeoutNanos
        push(TimedEvent(at: c.openDeadline, kind: .openDeadline, target: Int32(c.index)), now: now)
        watch(c)
        return nil
    }

    /// Sets the events `c`'s watcher waits for, from its state.
    func watch(_ c: LoadClient) {
        guard let loop else { return }
        var events: Int32 = 0
        switch c.link {
        case .idle: events = 0
        case .connecting: events = CLWS_EV_WRITE
        case .handshaking: events = c.writeBlocked ? CLWS_EV_WRITE : CLWS_EV_READ
        case .upgrading, .open:
            events = (c.stoppedReading ? 0 : CLWS_EV_READ) | (c.writeBlocked ? CLWS_EV_WRITE : 0)
        }
        clws_sock_watch(
            loop, c.watcher, c.fd, events, loadgenSocketCallback, Unmanaged.passUnretained(self).toOpaque(),
            Int32(c.index))
    }

    /// libev: `c`'s socket is readable and/or writable.
    func socketReady(_ index: Int, _ revents: Int32) {
        guard index >= 0, index < connections.count else { return }
        let c = connections[index]
        switch c.link {
        case .idle:
            watch(c)
        case .connecting:
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len)
            if err != 0 { return closeLink(c, error: "connect: \(String(cString: strerror(err)))") }
            if plan.plain { return startUpgrade(c) }
            guard let context = sslContext, let ssl = clws_loadgen_ssl_new(context, c.fd, "localhost") else {
                return closeLink(c, error: "cannot create the connection's TLS state")
            }
            c.ssl = ssl
            if let session = c.tlsSession {
                _ = SSL_set_session(ssl, session)
                SSL_SESSION_free(session)
                c.tlsSession = nil
            }
            c.link = .handshaking
            handshake(c)
        case .handshaking:
            c.drained = false
            handshake(c)
        case .upgrading, .open:
            if revents & CLWS_EV_WRITE != 0 {
                c.writeBlocked = false
                flush(c)
                guard c.link != .idle else { return }
            }
            if revents & CLWS_EV_READ != 0 { readLink(c) }
            if c.link != .idle { watch(c) }
        }
    }

    func handshake(_ c: LoadClient) {
        guard let ssl = c.ssl else { return }
        while true {
            let r = SSL_do_handshake(ssl)
            if r == 1 { return startUpgrade(c) }
            switch SSL_get_error(ssl, r) {
            case SSL_ERROR_WANT_READ:
                c.writeBlocked = false
                switch fill(c, ssl) {
                case .added: continue
                case .none: break
                case .ended(let why): return closeLink(c, error: why ?? "closed during the TLS handshake")
                }
            case SSL_ERROR_WANT_WRITE: c.writeBlocked = true
            default:
                return closeLink(c, error: "TLS handshake: \(sslReason())")
            }
            return watch(c)
        }
    }

    func startUpgrade(_ c: LoadClient) {
        var key = [UInt8](repeating: 0, count: 16)
        for i in key.indices { key[i] = UInt8(truncatingIfNeeded: rng.next()) }
        c.upgradeKey = WebSocketFraming.key(key)
        c.link = .upgrading
        c.writeBlocked = false
        c.out += WebSocketFraming.upgradeRequest(
            path: c.group.path, host: "localhost", key: c.upgradeKey, protocol: plan.relay ? nil : "hearth.v1")
        flush(c)
        if c.link != .idle { watch(c) }
    }

    // MARK: - Reading

    /// Reads until the socket holds nothing more (or `c` stops reading or is closed).
    func readLink(_ c: LoadClient) {
        c.drained = false
        while c.link == .upgrading || c.link == .open, !c.stoppedReading {
            let n = readSome(c)
            guard n > 0 else { return }
            let bytes = UnsafeRawBufferPointer(start: readBuffer, count: n)
            if c.link == .upgrading {
                c.responseHead.append(contentsOf: bytes)
                guard let length = WebSocketFraming.headLength(c.responseHead) else {
                    if c.responseHead.count > LoadWorker.maxResponseHead {
                        closeLink(c, error: "no end to the upgrade response in 16 KiB")
                    }
                    continue
                }
                if let refusal = WebSocketFraming.refusal(
                    ofHead: c.responseHead[..<length], key: c.upgradeKey, protocol: plan.relay ? nil : "hearth.v1")
                {
                    return closeLink(c, error: refusal)
                }
                let rest = Array(c.responseHead[length...])
                c.responseHead = []
                opened(c)
                if !rest.isEmpty, c.link == .open { rest.withUnsafeBytes { frames(c, $0) } }
            } else {
                frames(c, bytes)
            }
        }
    }

    /// Bytes read into `readBuffer` (> 0); 0 when the socket has nothing now; -1 when the
    /// connection ended (it is closed).
    func readSome(_ c: LoadClient) -> Int {
        if let ssl = c.ssl {
            // No TLS bytes buffered: read the socket first, as an SSL_read would only ask for
            // them (two SSL_reads per message saved: before the read, and after the last one).
            // OpenSSL holds no decrypted bytes back: `readBuffer` (64 KiB) takes a whole record
            // (at most 16 KiB).
            if BIO_ctrl_pending(SSL_get_rbio(ssl)) == 0 {
                switch fill(c, ssl) {
                case .added: break
                case .none: return 0
                case .ended(let why):
                    closeLink(c, error: why)
                    return -1
                }
            }
            while true {
                let n = SSL_read(ssl, readBuffer, Int32(LoadWorker.readBufferSize))
                if n > 0 { return Int(n) }
                switch SSL_get_error(ssl, n) {
                case SSL_ERROR_WANT_READ:
                    switch fill(c, ssl) {
                    case .added: continue
                    case .none: return 0
                    case .ended(let why): closeLink(c, error: why)
                    }
                case SSL_ERROR_WANT_WRITE:
                    c.writeBlocked = true
                    return 0
                case SSL_ERROR_ZERO_RETURN:
                    closeLink(c, error: nil)
                default:
                    closeLink(c, error: "TLS: \(sslReason())")
                }
                return -1
            }
        }
        if c.drained { return 0 }
        let n = read(c.fd, readBuffer, LoadWorker.readBufferSize)
        if n > 0 {
            c.drained = n < LoadWorker.readBufferSize
            return n
        }
        if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            c.drained = true
            return 0
        }
        closeLink(c, error: n == 0 ? nil : "read: \(errnoText())")
        return -1
    }

    enum Fill {
        case added, none
        /// The server closed the connection (nil) or reading failed.
        case ended(String?)
    }

    /// OpenSSL needs more bytes: one read() of what the socket holds into the memory BIO, unless
    /// the last read of this readiness already emptied it.
    func fill(_ c: LoadClient, _ ssl: OpaquePointer) -> Fill {
        if c.drained { return .none }
        let n = read(c.fd, socketBuffer, LoadWorker.readBufferSize)
        if n > 0 {
            c.drained = n < LoadWorker.readBufferSize
            _ = BIO_write(SSL_get_rbio(ssl), socketBuffer, Int32(n))
            return .added
        }
        if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            c.drained = true
            return .none
        }
        return .ended(n == 0 ? nil : "read: \(errnoText())")
    }

    /// The frames in `bytes`: messages to `receive`, pings answered, a close frame answered and
    /// the connection closed.
    func frames(_ c: LoadClient, _ bytes: UnsafeRawBufferPointer) {
        // The reader is taken out of `c` while it runs: the handlers may send on `c`, and the
        // close below resets it.
        var reader = c.reader
        c.reader = WebSocketFrameReader()
        var closeCode: Int?? = nil
        do {
            try reader.read(bytes) { event in
                guard closeCode == nil else { return }
                switch event {
                case .message(let payload):
                    receive(c, payload)
                case .ping(let payload):
                    queueFrame(c, opcode: WebSocketFraming.opPong, length: payload.count) { $0 += payload }
                case .pong:
                    break
                case .close(let code):
                    closeCode = .some(code)
                }
            }
        } catch {
            return closeLink(c, error: "a frame the server may not send: \(error)")
        }
        if let code = closeCode {
            // As lws's client did: keep the code, answer the close, and close the socket.
            c.closeCode = code ?? 1005
            WebSocketFraming.appendClose(code: UInt16(code ?? 1000), to: &c.out)
            flush(c)
            return closeLink(c, error: nil)
        }
        if c.link == .open { c.reader = reader }
    }

    // MARK: - Writing

    /// Appends a final frame of `length` payload bytes, written by `fill`, to `c`'s output; the
    /// flush writes it before the loop next blocks.
    func queueFrame(
        _ c: LoadClient, opcode: UInt8 = WebSocketFraming.opText, length: Int, _ fill: (inout [UInt8]) -> Void
    ) {
        guard c.isOpen else { return }
        WebSocketFraming.appendHeader(opcode: opcode, length: length, to: &c.out)
        let before = c.out.count
        fill(&c.out)
        assert(c.out.count - before == length, "a frame's payload is not the length its header says")
        if !c.dirty {
            c.dirty = true
            dirtyLinks.append(Int32(c.index))
        }
    }

    /// The flush (ev_prepare: once per loop iteration, before it blocks): every connection that
    /// queued frames writes them, in one write where the socket takes them.
    func flushDirty() {
        guard !dirtyLinks.isEmpty else { return }
        for i in dirtyLinks {
            let c = connections[Int(i)]
            c.dirty = false
            guard c.isOpen, !c.writeBlocked else { continue }
            flush(c)
            if c.writeBlocked && c.link != .idle { watch(c) }
        }
        dirtyLinks.removeAll(keepingCapacity: true)
    }

    /// Writes what `c` has queued until it is written or the socket takes no more.
    func flush(_ c: LoadClient) {
        while c.outHead < c.out.count {
            let (n, failure) = c.out.withUnsafeBytes { b in
                writeSome(c, b.baseAddress! + c.outHead, b.count - c.outHead)
            }
            if n > 0 {
                c.outHead += n
                continue
            }
            if let failure { return closeLink(c, error: failure) }
            c.writeBlocked = true
            return
        }
        // Keep a chat-sized buffer; let a setup burst's (an offer and its ICE to every peer) go.
        if c.out.capacity > 16 * 1024 { c.out = [] } else { c.out.removeAll(keepingCapacity: true) }
        c.outHead = 0
    }

    /// One write: bytes written, or 0 and nil when the socket takes no more now, or 0 and why
    /// the connection failed.
    func writeSome(_ c: LoadClient, _ p: UnsafeRawPointer, _ count: Int) -> (Int, String?) {
        if let ssl = c.ssl {
            let n = SSL_write(ssl, p, Int32(min(count, Int(Int32.max))))
            if n > 0 { return (Int(n), nil) }
            switch SSL_get_error(ssl, n) {
            case SSL_ERROR_WANT_WRITE, SSL_ERROR_WANT_READ: return (0, nil)
            case SSL_ERROR_SYSCALL: return (0, "write: \(errnoText())")
            default: return (0, "TLS: \(sslReason())")
            }
        }
        let n = write(c.fd, p, count)
        if n > 0 { return (n, nil) }
        if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { return (0, nil) }
        return (0, "write: \(errnoText())")
    }

    // MARK: - Closing

    /// Closes `c`'s socket and reports the end (`connectionEnded`).
    func closeLink(_ c: LoadClient, error: String?) {
        guard c.link != .idle else { return }
        releaseLink(c)
        connectionEnded(c, error: error)
    }

    /// Stops the watcher, frees the TLS state and closes the socket, reporting nothing (the
    /// storm's drop, the end of the run). `abort`: linger 0, so the close sends a reset.
    func releaseLink(_ c: LoadClient, abort: Bool = false) {
        guard c.link != .idle else { return }
        c.link = .idle
        watch(c)
        if let ssl = c.ssl { SSL_free(ssl) }
        c.ssl = nil
        if abort {
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            _ = setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            _ = shutdown(c.fd, Int32(SHUT_RDWR))
        }
        close(c.fd)
        c.fd = -1
        c.out.removeAll(keepingCapacity: true)
        c.outHead = 0
        c.writeBlocked = false
        c.responseHead = []
        c.reader = WebSocketFrameReader()
    }

    /// A connection still not open at its deadline is given up (as lws's 30 s timeout did).
    func openDeadlinePassed(_ c: LoadClient, now: UInt64) {
        guard c.link != .idle, c.link != .open, now >= c.openDeadline else { return }
        closeLink(c, error: "not open after \(LoadWorker.openTimeoutNanos / 1_000_000_000) s")
    }

    func sslReason() -> String {
        clws_ssl_error_reason().map { String(cString: $0) } ?? "error \(errnoText())"
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }
