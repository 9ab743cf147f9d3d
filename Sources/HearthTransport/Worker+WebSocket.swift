import CLws
import HearthCore
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The WebSocket side of the worker: the upgrade (Origin allowlist), a session's start, its
/// inbound messages (reassembly and limits), keepalive, and its close.
extension Worker {
    // MARK: - Upgrade

    /// CONFIRM_UPGRADE. `upgrade` is the request's `Upgrade` value (lws only asks for
    /// `websocket` and `h2c`).
    func confirmUpgrade(_ wsi: OpaquePointer, _ upgrade: UnsafeMutableRawPointer?) -> Int32 {
        let protocolName = upgrade.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) } ?? ""
        guard protocolName.lowercased() == "websocket" else {
            // h2c would switch the connection to cleartext HTTP/2 inside the TLS tunnel, where
            // streams reach every route past a proxy's path rules (request smuggling).
            counters.upgradeRejections += 1
            logger.info("upgrade refused: not a WebSocket upgrade")
            _ = writeStatus(wsi, "400 Bad Request", body: "only WebSocket upgrades are supported\n", close: true)
            return -1  // hang up once the answer is out: nothing after it is read
        }
        if originAllowed(wsi) { return 0 }
        counters.originRejections += 1
        logger.info("websocket upgrade refused: origin not allowed")
        guard writeStatus(wsi, "403 Forbidden", body: "origin not allowed\n", close: false) else { return -1 }
        return 1  // "headers sent": lws completes the transaction
    }

    /// FILTER_PROTOCOL_CONNECTION: the Origin check again, for upgrades that skipped
    /// CONFIRM_UPGRADE.
    func filterUpgrade(_ wsi: OpaquePointer) -> Int32 {
        if originAllowed(wsi) { return 0 }
        counters.originRejections += 1
        logger.info("websocket upgrade refused: origin not allowed")
        return 1
    }

    /// Writes a whole small response from CONFIRM_UPGRADE. lws_return_http_status() would answer
    /// "HTTP/1.0" there (the request version is not parsed yet), which strict WebSocket clients
    /// reject; this writes HTTP/1.1.
    private func writeStatus(_ wsi: OpaquePointer, _ status: String, body: String, close: Bool) -> Bool {
        let text =
            "HTTP/1.1 \(status)\r\ncontent-type: text/plain; charset=utf-8\r\n"
            + "content-length: \(body.utf8.count)\r\ncache-control: no-store\r\n"
            + (close ? "connection: close\r\n" : "") + "\r\n" + body
        let bytes = Array(text.utf8)
        ensureScratch(bytes.count)
        let start = scratch + pre
        bytes.withUnsafeBytes { start.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return lws_write(wsi, start.assumingMemoryBound(to: UInt8.self), bytes.count, LWS_WRITE_HTTP) >= 0
    }

    private func originAllowed(_ wsi: OpaquePointer) -> Bool {
        Worker.originAllowed(LwsHeaders.value(wsi, WSI_TOKEN_ORIGIN), allowed: configuration.allowedOrigins)
    }

    /// The Origin allowlist (``TransportConfiguration/allowedOrigins``): an empty list, or one
    /// holding `"*"`, allows every origin; otherwise an exact, case-insensitive match. A request
    /// without an Origin (not a browser) is allowed.
    static func originAllowed(_ origin: String?, allowed: [String]) -> Bool {
        if allowed.isEmpty || allowed.contains("*") { return true }
        guard let origin else { return true }
        let o = origin.lowercased()
        return allowed.contains { $0.lowercased() == o }
    }

    // MARK: - Session

    /// The session a connection's user word names, if it is one.
    func session(_ user: UnsafeMutableRawPointer?) -> Session? {
        guard let user else { return nil }
        let id = user.load(as: UInt64.self)
        guard id != 0, id & Worker.exchangeTag == 0 else { return nil }
        return sessions[id]
    }

    func established(_ wsi: OpaquePointer, _ user: UnsafeMutableRawPointer?) -> Int32 {
        guard state == .running, let user else { return -1 }
        let previous = user.load(as: UInt64.self)
        if previous & Worker.exchangeTag != 0 { exchanges[previous] = nil }
        let raw = (nextSerial << 4) | index
        nextSerial += 1
        user.storeBytes(of: raw, as: UInt64.self)
        let s = Session(id: SessionID(rawValue: raw), wsi: wsi, now: Worker.nowMs())
        sessions[raw] = s
        if configuration.socketSendBufferBytes > 0 {
            var size = Int32(clamping: configuration.socketSendBufferBytes)
            _ = setsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        counters.sessionsOpened += 1
        // The path as sent; empty (an unknown endpoint) when it could not be read.
        let requested = requestPath(wsi)
        if requested == nil { counters.unreadableRequestLines += 1 }
        let path = requested ?? ""
        let peer = clientAddress(wsi)
        logger.debug("session open", metadata: ["session": "\(s.id)", "peer": "\(peer)"])
        delegate?.transportDidOpen(s.id, path: path, peerAddress: peer, transport: transport)
        return 0
    }

    // MARK: - Receive

    func receive(
        _ wsi: OpaquePointer, _ user: UnsafeMutableRawPointer?,
        _ input: UnsafeMutableRawPointer?, _ len: Int
    ) -> Int32 {
        guard let s = session(user) else { return -1 }
        if s.discardInput { return 0 }
        heard(s)
        if lws_frame_is_binary(wsi) != 0 {
            counters.binaryCloses += 1
            logger.info("closing session: binary frame", metadata: ["session": "\(s.id)"])
            refuseInput(s, code: CloseCode.binaryFrame.rawValue, reason: "binary frames not supported")
            return 0
        }
        let remaining = Int(lws_remaining_packet_payload(wsi))
        if s.rx.count + len + remaining > configuration.maxMessageBytes {
            counters.oversizeCloses += 1
            logger.info(
                "closing session: message too big",
                metadata: [
                    "session": "\(s.id)", "atLeast": "\(s.rx.count + len + remaining)",
                ])
            refuseInput(s, code: CloseCode.messageTooBig.rawValue, reason: "message too big")
            return 0
        }
        let isFinal = lws_is_final_fragment(wsi) != 0
        if isFinal && s.rx.isEmpty && s.rxPieces == 0 {
            deliver(s, UnsafeRawBufferPointer(start: input, count: len))
        } else {
            // Empty fragments carry no bytes toward the size limit; cap their number instead.
            s.rxPieces += 1
            if s.rxPieces > configuration.maxFragmentsPerMessage {
                counters.oversizeCloses += 1
                logger.info("closing session: too many fragments", metadata: ["session": "\(s.id)"])
                refuseInput(s, code: CloseCode.messageTooBig.rawValue, reason: "too many fragments")
                return 0
            }
            if len > 0, let input { s.rx.append(contentsOf: UnsafeRawBufferPointer(start: input, count: len)) }
            if isFinal {
                s.rxPieces = 0
                var message: [UInt8] = []
                swap(&message, &s.rx)
                message.withUnsafeBytes { deliver(s, $0) }
            }
        }
        return 0
    }

    private func deliver(_ s: Session, _ text: UnsafeRawBufferPointer) {
        counters.messagesIn += 1
        counters.bytesIn += UInt64(text.count)
        delegate?.transportDidReceive(s.id, text: text, transport: transport)
    }

    /// Refuses a connection's input from inside its receive callback: its queue is dropped and
    /// the connection closes (``startClose(_:code:reason:)``). Returning -1 here instead closed
    /// the socket at once, while the peer was often still sending the rest of the refused
    /// message: the unread bytes made the kernel answer with a reset, and the peer never saw
    /// the close code.
    private func refuseInput(_ s: Session, code: UInt16, reason: String) {
        s.dropQueue()
        startClose(s, code: code, reason: reason)
    }

    // MARK: - Keepalive

    /// Anything from the peer (a frame or a pong) proves it is there.
    func heard(_ s: Session) {
        s.lastHeard = Worker.nowMs()
        s.pingSentAt = nil
    }

    /// Pings a session silent for `pingIntervalSeconds`; hangs up one that has not answered
    /// within `hangupSeconds` of last being heard. One pass over the sessions per tick: a few
    /// nanoseconds each, without touching lws's timer list.
    func keepalive() {
        let now = Worker.nowMs()
        let ping = UInt64(configuration.pingIntervalSeconds) * 1000
        let hangup = UInt64(configuration.hangupSeconds) * 1000
        for s in sessions.values where s.closeRequest == nil && !s.discardInput {
            let silent = now &- s.lastHeard
            if silent >= hangup {
                s.discardInput = true
                counters.keepaliveHangups += 1
                logger.info("closing session: no answer to keepalive", metadata: ["session": "\(s.id)"])
                lws_set_timeout(s.wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC)
            } else if silent >= ping && s.pingSentAt == nil && !s.pingDue {
                s.pingDue = true
                lws_callback_on_writable(s.wsi)
            }
        }
    }

    // MARK: - Close

    /// `Transport.close(_:code:reason:)`.
    func requestClose(_ id: SessionID, code: UInt16, reason: String) {
        guard isServing, let s = sessions[id.rawValue] else { return }
        startClose(s, code: code, reason: reason)
    }

    /// Closes a session whatever the reason (the shell's closes, queue overflow, refused input,
    /// shutdown): its queued messages go out, then the close frame (``Worker/writeable(_:_:)``),
    /// and lws waits (5 s at most) for the peer's close. From the decision on, the peer's input
    /// is read and dropped: a peer still writing (a flood written without reading) must not be
    /// cut off with unread bytes, which the kernel answers with a reset that destroys the close
    /// frame in flight.
    func startClose(_ s: Session, code: UInt16, reason: String) {
        guard s.closeRequest == nil else { return }
        s.discardInput = true
        s.rx = []
        s.rxPieces = 0
        s.closeRequest = (code, reason)
        lws_set_timeout(s.wsi, PENDING_TIMEOUT_USER_OK, Worker.closeTimeoutSeconds)
        lws_callback_on_writable(s.wsi)
    }

    /// Hands the close to lws from WRITEABLE (the caller then returns -1): its close frame, then
    /// the wait for the peer's.
    func handOverClose(_ s: Session, code: UInt16, reason: String) {
        s.closeHandedOver = true
        var bytes = Array(reason.utf8.prefix(123))
        bytes.withUnsafeMutableBufferPointer { b in
            lws_close_reason(s.wsi, lws_close_status(rawValue: UInt32(code)), b.baseAddress, b.count)
        }
    }

    /// CLOSED (or WSI_DESTROY when CLOSED never came): reports the session closed, once.
    func closed(_ user: UnsafeMutableRawPointer?) {
        guard let user else { return }
        let id = user.load(as: UInt64.self)
        guard id != 0, id & Worker.exchangeTag == 0 else { return }
        user.storeBytes(of: 0, as: UInt64.self)
        guard let s = sessions.removeValue(forKey: id) else { return }
        s.open = false
        counters.sessionsClosed += 1
        logger.debug("session closed", metadata: ["session": "\(s.id)"])
        delegate?.transportDidClose(s.id, transport: transport)
        if state == .stopping && sessions.isEmpty { breakLoop() }
    }
}
