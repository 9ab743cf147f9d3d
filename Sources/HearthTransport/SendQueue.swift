import CLws
import HearthCore
import Logging

/// The outbound side of the worker: each session's send queue, the batching of queued messages
/// into frames, and the two places that write them (the loop's prepare watcher, `flushDirty`,
/// and lws's WRITEABLE callback), both following one rule (`nextWrite`).
extension Worker {
    /// What may go out on a session now: the "may I write now?" rule, in one place.
    enum NextWrite: Equatable {
        /// Nothing to write (or the close already went to lws).
        case nothing
        /// lws still holds part of an earlier write: it calls WRITEABLE once that is out.
        case waitForLws
        /// A keepalive ping, ahead of the queue.
        case ping
        /// The head of the queue, as one frame (``writeBatch(_:)``).
        case batch
        /// The queue is empty and a close was decided: hand it to lws.
        case close
    }

    func nextWrite(_ s: Session) -> NextWrite {
        // After the close is handed over, lws may still call WRITEABLE (a writable request made
        // before it): a second -1 would make lws give up on the polite close and drop the
        // connection at once, close frame unsent, while the peer is still writing.
        if s.closeHandedOver { return .nothing }
        // Let lws drain what it already buffered first.
        if lws_partial_buffered(s.wsi) != 0 { return .waitForLws }
        if s.pingDue && s.closeRequest == nil { return .ping }
        if s.queuedCount > 0 { return .batch }
        if s.closeRequest != nil { return .close }
        return .nothing
    }

    // MARK: - Queue

    /// `Transport.send`: queues `message`, or closes the session with 4008 when its queue is full.
    func enqueue(_ message: OutboundMessage, to id: SessionID) {
        guard isServing, let s = sessions[id.rawValue], s.closeRequest == nil else { return }
        let size = message.bytes.count
        if s.queuedCount + 1 > configuration.sendQueueMaxMessages
            || s.queuedBytes + size > configuration.sendQueueMaxBytes
        {
            counters.queueOverflowCloses += 1
            logger.notice(
                "closing session: send queue overflow",
                metadata: [
                    "session": "\(s.id)", "queuedMessages": "\(s.queuedCount)", "queuedBytes": "\(s.queuedBytes)",
                ])
            s.dropQueue()
            startClose(s, code: CloseCode.sendQueueOverflow.rawValue, reason: "send queue overflow")
            return
        }
        s.queue.append(message)
        s.queuedBytes += size
        if !s.dirty {
            s.dirty = true
            dirty.append(s)
        }
    }

    // MARK: - Writes

    /// SERVER_WRITEABLE: one thing goes out per call (``nextWrite(_:)``); lws is asked for the
    /// next call while more is waiting.
    func writeable(_ wsi: OpaquePointer, _ user: UnsafeMutableRawPointer?) -> Int32 {
        guard let s = session(user) else { return 0 }
        switch nextWrite(s) {
        case .nothing, .waitForLws:
            return 0  // lws calls again once its buffered part is out
        case .ping:
            s.pingDue = false
            s.pingSentAt = Worker.nowMs()
            // lws passes a pong to the callback only when it carries a payload: ping with one,
            // in ASCII, since some clients (lws among them) check control payloads as UTF-8.
            let payload = (scratch + pre).assumingMemoryBound(to: UInt8.self)
            for (i, byte) in "ping".utf8.enumerated() { payload[i] = byte }
            if lws_write(wsi, payload, 4, LWS_WRITE_PING) < 0 { return -1 }
            if s.queuedCount > 0 { lws_callback_on_writable(wsi) }
            return 0
        case .batch:
            guard writeBatch(s) else { return -1 }
            if s.queuedCount > 0 || s.closeRequest != nil { lws_callback_on_writable(wsi) }
            return 0
        case .close:
            guard let c = s.closeRequest else { return 0 }
            handOverClose(s, code: c.code, reason: c.reason)
            return -1
        }
    }

    /// Writes the output queued during this loop iteration: one frame (a batch) per session,
    /// straight from here instead of asking lws for a writable callback. Asking would cost two
    /// `epoll_ctl` calls and a wakeup per write (perf: 6.5% of the server's CPU under chat
    /// load). Only batches go out from here, at most two per session, and only while no close
    /// is pending (a close is handed to lws by returning -1 from WRITEABLE, after the queue):
    /// anything else the rule (``nextWrite(_:)``) allows goes the usual way
    /// (`lws_callback_on_writable`). With HTTP/2 off a WebSocket always owns its connection, so
    /// no other stream's writes share it.
    func flushDirty() {
        guard !dirty.isEmpty else { return }
        swap(&dirty, &flushing)
        defer { flushing.removeAll(keepingCapacity: true) }
        for s in flushing {
            s.dirty = false
            guard s.open, s.queuedCount > 0 else { continue }
            if s.closeRequest != nil || nextWrite(s) != .batch {
                lws_callback_on_writable(s.wsi)
                continue
            }
            var batches = 0
            while batches < 2 && nextWrite(s) == .batch {
                guard writeBatch(s) else {
                    // Outside a callback the wsi cannot be closed by returning -1: kill it async.
                    s.discardInput = true
                    s.dropQueue()
                    lws_set_timeout(s.wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC)
                    break
                }
                batches += 1
            }
            if s.queuedCount > 0 { lws_callback_on_writable(s.wsi) }
        }
    }

    /// Writes the head of the queue as one text frame: consecutive batchable
    /// messages joined by "\n" up to `batchLimit` bytes, or one message alone.
    func writeBatch(_ s: Session) -> Bool {
        var count = 0
        var total = 0
        let first = s.queue[s.head]
        if !first.isBatchable {
            count = 1
            total = first.bytes.count
        } else {
            var i = s.head
            while i < s.queue.count {
                let m = s.queue[i]
                guard m.isBatchable else { break }
                let add = count == 0 ? m.bytes.count : m.bytes.count + 1
                if count > 0 && total + add > Worker.batchLimit { break }
                total += add
                count += 1
                i += 1
            }
        }
        ensureScratch(total)
        let start = scratch + pre
        var p = start
        for k in 0..<count {
            if k > 0 {
                p.storeBytes(of: 0x0A, as: UInt8.self)
                p += 1
            }
            s.queue[s.head + k].bytes.withUnsafeBytes { b in
                if let base = b.baseAddress { p.copyMemory(from: base, byteCount: b.count) }
                p += b.count
            }
        }
        let n = lws_write(s.wsi, start.assumingMemoryBound(to: UInt8.self), total, LWS_WRITE_TEXT)
        if n < 0 {
            logger.debug("write failed", metadata: ["session": "\(s.id)"])
            return false
        }
        counters.framesOut += 1
        counters.messagesOut += UInt64(count)
        counters.bytesOut += UInt64(total)
        s.popFront(count)
        return true
    }
}
