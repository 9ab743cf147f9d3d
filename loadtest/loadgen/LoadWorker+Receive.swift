import CJansson
import CLws

#if canImport(Glibc)
    import Glibc
#endif

/// A parsed server message (jansson). HearthWire decodes only what clients send (`WireDecoder`
/// gives `Inbound`) and encodes server messages, so the generator reads the few fields it needs
/// from server messages with jansson itself; see `line` for the fast paths in front of it.
typealias LoadJSON = UnsafeMutablePointer<json_t>

// Receiving: frames split into messages, the byte-scanning fast paths for chat and relayed
// signals, and jansson for the rest.
extension LoadWorker {

    func receive(_ c: LoadClient, _ frame: UnsafeRawBufferPointer) {
        guard let base = frame.baseAddress, frame.count > 0 else { return }
        let now = monotonicNanos()
        stats.framesReceived += 1
        stats.bytesReceived += frame.count
        var start = 0
        while start < frame.count {
            let rest = frame.count - start
            let nl = memchr(base + start, 0x0A, rest)
            let end = nl.map { base.distance(to: UnsafeRawPointer($0)) } ?? frame.count
            if end > start { line(c, base + start, end - start, now: now) }
            start = end + 1
        }
    }

    static let typePrefix = Array("{\"type\":\"".utf8)
    static let chatType = Array("chat\"".utf8)
    static let seqKey = Array("\"seq\":".utf8)
    static let textKey = Array("\"text\":\"lg|".utf8)

    /// One server message. Chat (every delivery of the steady phase, up to 150k/s in
    /// `throughput`, where the generator is the limit: RESULTS.md) and relayed signals (most of
    /// the setup traffic) are read by scanning bytes for the few fields measured, without a
    /// parse; everything else is parsed with jansson.
    func line(_ c: LoadClient, _ p: UnsafeRawPointer, _ n: Int, now: UInt64) {
        stats.messagesReceived += 1
        let b = p.assumingMemoryBound(to: UInt8.self)
        let tp = LoadWorker.typePrefix
        if n > tp.count + 5 && memcmp(p, tp, tp.count) == 0 && memcmp(p + tp.count, LoadWorker.chatType, 5) == 0 {
            let seq = LoadWorker.integer(after: LoadWorker.seqKey, in: b, n, limit: 40)
            if let seq { checkSeq(c, Int64(seq)) }
            chat(c, b, n, now: now)
            if seq != nil && c.replayLeft > 0 { replayedEvent(c, now: now) }
            return
        }
        let ap = LoadWorker.ackPrefix
        if n > ap.count && memcmp(p, ap, ap.count) == 0 {
            // Acks carry nothing the generator needs but the chat's number (no seq: not logged).
            if let number = LoadWorker.chatAckNumber(in: b, n) { chatAcked(c, number, now: now) }
            return
        }
        if n > LoadWorker.signalPrefix.count && memcmp(p, LoadWorker.signalPrefix, LoadWorker.signalPrefix.count) == 0,
            signal(c, b, n, now: now)
        {
            return
        }
        guard let root = json_loadb(p.assumingMemoryBound(to: CChar.self), n, 0, nil) else {
            failures.append("unparsable message from the server")
            return
        }
        defer { cj_decref(root) }
        let seq = jint(jget(root, "seq"))
        if let seq { checkSeq(c, seq) }
        guard let type = jstr(jget(root, "type")) else { return }
        message(c, type, root, now: now)
        if seq != nil && c.replayLeft > 0 { replayedEvent(c, now: now) }
    }

    /// An ack, as the server encodes it: its rid comes first.
    static let ackPrefix = Array("{\"type\":\"ack\",\"rid\":\"".utf8)
    /// The ack of a chat sent with rid `k<n>` (`sendChat`).
    static let chatAckPrefix = ackPrefix + Array("k".utf8)

    /// `n` of a message that is the ack of chat `k<n>`; nil for any other message.
    static func chatAckNumber(in b: UnsafePointer<UInt8>, _ n: Int) -> UInt32? {
        let prefix = chatAckPrefix
        guard n > prefix.count, memcmp(b, prefix, prefix.count) == 0 else { return nil }
        return integer(after: prefix, in: b, n, limit: prefix.count).map { UInt32(truncatingIfNeeded: $0) }
    }

    /// The ack of the sender's chat number `number`: the time from its intended send to the ack
    /// (which the server sends once the message is journaled). An ack that names no chat still
    /// awaited is counted apart, never as a latency.
    func chatAcked(_ c: LoadClient, _ number: UInt32, now: UInt64) {
        let r = Int(number) & (LoadClient.ringSize - 1)
        guard c.ringSeq[r] == number, c.ringAckDue[r] != 0 else {
            stats.chatAckUnmatched += 1
            return
        }
        stats.chatAcked += 1
        stats.chatAck.record(micros(now, c.ringAckDue[r]))
        c.ringAckDue[r] = 0
    }

    /// One replayed (logged) event after `resumed`; the last one brings the client back.
    func replayedEvent(_ c: LoadClient, now: UInt64) {
        c.replayLeft -= 1
        if c.replayLeft == 0 { clientBack(c, now: now) }
    }

    static let signalPrefix = Array("{\"type\":\"signal\",\"from\":\"".utf8)

    /// Fast path for relayed signals (most of the setup traffic; their SDP need not be parsed):
    /// `{"type":"signal","from":"pN","kind":"K",...`. Returns false if the layout differs.
    func signal(_ c: LoadClient, _ b: UnsafePointer<UInt8>, _ n: Int, now: UInt64) -> Bool {
        var i = LoadWorker.signalPrefix.count
        let fromStart = i
        while i < n && b[i] != 34 { i += 1 }  // '"'
        let from = String(decoding: UnsafeBufferPointer(start: b + fromStart, count: i - fromStart), as: UTF8.self)
        let kindKey = Array("\",\"kind\":\"".utf8)
        guard i + kindKey.count + 3 < n, memcmp(b + i, kindKey, kindKey.count) == 0 else { return false }
        let k = b[i + kindKey.count]
        let kind = k == 111 ? "offer" : k == 97 ? "answer" : k == 105 ? "ice" : ""  // o, a, i
        guard !kind.isEmpty else { return false }
        handleSignal(c, from: from, kind: kind, now: now)
        return true
    }

    func checkSeq(_ c: LoadClient, _ seq: Int64) {
        if seq <= c.lastEventSeq { stats.seqViolations += 1 }
        c.lastEventSeq = max(c.lastEventSeq, seq)
    }

    /// Parses the decimal integer after `key` (searched in the first `limit` bytes).
    static func integer(after key: [UInt8], in b: UnsafePointer<UInt8>, _ n: Int, limit: Int) -> UInt64? {
        guard let hit = find(key, in: b, min(n, limit)) else { return nil }
        var i = hit + key.count
        var v: UInt64 = 0
        var digits = 0
        while i < n, b[i] >= 48, b[i] <= 57 {
            v = v &* 10 &+ UInt64(b[i] - 48)
            i += 1
            digits += 1
        }
        return digits > 0 ? v : nil
    }

    /// The offset of `key` in the first `n` bytes of `b` (memmem is not visible through Glibc).
    /// Candidates are found by the key's last byte, the rarest in the keys searched for (`|` of
    /// `"text":"lg|` occurs once in a chat message; every string has two `"`).
    static func find(_ key: [UInt8], in b: UnsafePointer<UInt8>, _ n: Int) -> Int? {
        guard let lastByte = key.last, n >= key.count else { return nil }
        let tail = key.count - 1
        var i = tail
        while i < n {
            guard let hit = memchr(b + i, Int32(lastByte), n - i) else { return nil }
            let end = UnsafeRawPointer(b).distance(to: UnsafeRawPointer(hit))
            if memcmp(b + end - tail, key, tail) == 0 { return end - tail }
            i = end + 1
        }
        return nil
    }

    func chat(_ c: LoadClient, _ b: UnsafePointer<UInt8>, _ n: Int, now: UInt64) {
        let key = LoadWorker.textKey
        guard let hit = LoadWorker.find(key, in: b, n) else {
            if let hit = LoadWorker.find(LoadWorker.breakoutTextKey, in: b, n) {
                breakoutChat(c, b, n, from: hit + LoadWorker.breakoutTextKey.count, now: now)
            }
            return
        }
        var i = hit + key.count
        var fields: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for f in 0..<4 {
            var v: UInt64 = 0
            while i < n, b[i] >= 48, b[i] <= 57 {
                v = v &* 10 &+ UInt64(b[i] - 48)
                i += 1
            }
            guard i < n, b[i] == 124 else { return }  // '|'
            i += 1
            switch f {
            case 0: fields.0 = v
            case 1: fields.1 = v
            case 2: fields.2 = v
            default: fields.3 = v
            }
        }
        let (groupLocal, senderSlot, seq, intended) = (Int(fields.0), Int(fields.1), UInt32(fields.2), fields.3)
        guard groupLocal == c.group.local, senderSlot < c.groupSize else {
            failures.append("chat delivered to the wrong room")
            return
        }
        if c.slow { return }
        let latency = micros(now, intended)
        stats.chatDelivered += 1
        if now <= steadyEnd { stats.deliveredInWindow += 1 }
        // The sender's own copy counts as a delivery but not in the delivery latencies: hearthd
        // sends it with the chat's ack, once journaled, and `chat acks` measures that wait.
        let own = senderSlot == c.slot
        if !own { stats.chatDelivery.record(latency) }
        let last = c.lastFrom[senderSlot]
        if seq == last {
            stats.chatDuplicated += 1
            return
        } else if seq < last {
            stats.chatReordered += 1
            return
        }
        c.lastFrom[senderSlot] = seq
        c.receivedFrom[senderSlot] += 1
        liveUnique += 1
        if c.stormed && senderSlot == c.slot && seq <= c.sentAtDrop { c.ownConfirmed = max(c.ownConfirmed, seq) }
        if plan.stormAt > 0 && !c.group.stormed && !own { unaffectedSamples.append((now, intended, latency)) }
        let sender = own ? c : connections[c.group.slots[senderSlot]]
        let r = Int(seq) & (LoadClient.ringSize - 1)
        if sender.ringSeq[r] == seq && sender.ringRemaining[r] > 0 {
            if !own { sender.ringMax[r] = max(sender.ringMax[r], latency) }
            sender.ringRemaining[r] -= 1
            if sender.ringRemaining[r] == 0 { stats.chatLastRecipient.record(sender.ringMax[r]) }
        }
    }
}

@inline(__always)
func jget(_ o: LoadJSON?, _ key: String) -> LoadJSON? {
    guard let o else { return nil }
    return json_object_get(o, key)
}

func jstr(_ o: LoadJSON?) -> String? {
    guard let o, cj_is_string(o) != 0, let p = json_string_value(o) else { return nil }
    return String(cString: p)
}

func jbool(_ o: LoadJSON?) -> Bool? {
    guard let o, cj_is_boolean(o) != 0 else { return nil }
    return cj_is_true(o) != 0
}

func jint(_ o: LoadJSON?) -> Int64? {
    guard let o, cj_is_integer(o) != 0 else { return nil }
    return Int64(json_integer_value(o))
}
