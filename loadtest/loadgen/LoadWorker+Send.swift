import CLws
import HearthCore
import HearthWire

#if canImport(Glibc)
    import Glibc
#endif

// Sending: every client message is encoded by HearthWire's `ClientMessageEncoder` (the inverse
// of the server's `WireDecoder`) and framed into the connection's output (`+Link`), which the
// loop writes before it next blocks.
extension LoadWorker {
    /// The `rid` of every command but chat (whose rid numbers it): the web app sends each
    /// command with one, so the server answers each with an `ack`, and so does the generator.
    static let commandRid = "r"

    func send(_ c: LoadClient, _ command: ClientCommand) {
        send(c, .command(command, rid: LoadWorker.commandRid))
    }

    func send(_ c: LoadClient, _ message: Inbound) {
        guard c.isOpen, !c.closed else { return }
        scratch.removeAll(keepingCapacity: true)
        ClientMessageEncoder.encode(message, appendingTo: &scratch)
        queueFrame(c, length: scratch.count) { $0 += scratch }
    }

    /// A member id the server sent (`p7`), for a command; nil (and a failure) if it is not one.
    func member(_ id: String) -> ParticipantID? {
        guard let member = ParticipantID(wire: id) else {
            failures.append("a member id that is not one: \(id.prefix(24))")
            return nil
        }
        return member
    }

    /// A room chat message of exactly `chatBytes` bytes (at least one `x` of padding), sent with
    /// a `rid` as the web app sends it (`k<n>`, n the sender's chat number), so the server
    /// acknowledges it once it is journaled: the text is `lg|<group>|<slot>|<seq>|<intended ns>|xxx…`,
    /// which the receive path parses back, and the `ack` is matched by `rid` (`chatAcked`).
    func sendChat(_ c: LoadClient, intended: UInt64, now: UInt64) {
        c.chatSent += 1
        let n = c.chatSent
        let r = Int(n) & (LoadClient.ringSize - 1)
        if c.ringRemaining[r] > 0 { stats.ringOverflows += 1 }
        c.ringSeq[r] = n
        c.ringRemaining[r] = Int32(c.group.recipients)
        c.ringMax[r] = 0
        c.ringAckDue[r] = 0
        liveExpected += c.group.recipients
        if c.isOpen && !c.closed {
            // A relay echoes the message and acknowledges nothing.
            if !plan.relay { c.ringAckDue[r] = intended }
            // The steady phase's hot path (up to 15k sends/s in `throughput`, where the generator
            // is the limit): the rid and the text are ASCII that JSON never escapes, so they go
            // between the pieces of a message HearthWire encoded once, instead of through a
            // jansson tree per message.
            let rid = "k\(n)"
            let head = "lg|\(c.group.local)|\(c.slot)|\(n)|\(intended)|"
            let fixed = chatTemplate.prefix.count + chatTemplate.middle.count + chatTemplate.suffix.count
            let pad = max(1, plan.chatBytes - fixed - rid.utf8.count - head.utf8.count)
            let length = fixed + rid.utf8.count + head.utf8.count + pad
            queueFrame(c, length: length) { out in
                out += chatTemplate.prefix
                out += rid.utf8
                out += chatTemplate.middle
                out += head.utf8
                out += chatPadding[..<pad]
                out += chatTemplate.suffix
            }
        }
        stats.chatSent += 1
        stats.sendLag.record(micros(now, intended))
    }

    /// An offer or answer (SDP of `sdpBytes`) to `peer`, then this side's ICE candidates, each
    /// message `iceBytes` long.
    func sendSignal(_ c: LoadClient, to peer: String, kind: SignalKind) {
        guard let to = member(peer) else { return }
        if kind == .offer || kind == .answer {
            sendSignal(c, to: to, peer: peer, kind: kind, payload: kind == .offer ? offerPayload : answerPayload)
            stats.signalsSent += 1
        }
        for i in 0..<icePerSide {
            let head =
                "{\"candidate\":\"candidate:"
                + "\(c.slot)\(i) 1 udp 2122260223 192.0.2.\(c.slot + 1) \(50000 + i) typ host generation 0 ufrag lg"
            let tail = "\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0}"
            let envelope = iceEnvelopeBytes + peer.utf8.count
            let pad = max(0, plan.iceBytes - envelope - head.utf8.count - tail.utf8.count)
            sendSignal(c, to: to, peer: peer, kind: .ice, payload: head + String(repeating: "x", count: pad) + tail)
            stats.signalsSent += 1
        }
    }

    /// One signal. The payload is compact JSON the generator wrote itself, so it goes between the
    /// two halves of a signal HearthWire encoded once for this kind and recipient, instead of
    /// being parsed into a jansson tree and encoded again per message: that doubled the
    /// generator's CPU while groups join (loadtest/RESULTS.md, "Before and after the
    /// architecture redesign").
    func sendSignal(_ c: LoadClient, to: ParticipantID, peer: String, kind: SignalKind, payload: String) {
        guard c.isOpen, !c.closed else { return }
        let key = kind.rawValue + "|" + peer
        let envelope: (prefix: [UInt8], suffix: [UInt8])
        if let cached = signalEnvelopes[key] {
            envelope = cached
        } else {
            envelope = Self.signalEnvelope(to: to, kind: kind)
            signalEnvelopes[key] = envelope
        }
        queueFrame(c, length: envelope.prefix.count + payload.utf8.count + envelope.suffix.count) { out in
            out += envelope.prefix
            out += payload.utf8
            out += envelope.suffix
        }
    }

    /// A signal as HearthWire encodes it, cut around its payload.
    static func signalEnvelope(to: ParticipantID, kind: SignalKind) -> (prefix: [UInt8], suffix: [UInt8]) {
        let marker = #"{"lg":"lg-payload-marker"}"#
        return cut(
            ClientMessageEncoder.encode(.command(.signal(to: to, kind: kind, payload: marker), rid: commandRid)),
            around: marker)
    }

    /// `bytes` split around the one place `marker` stands in it.
    static func cut(_ bytes: [UInt8], around marker: String) -> (prefix: [UInt8], suffix: [UInt8]) {
        let marker = Array(marker.utf8)
        guard
            let at = (0...(bytes.count - marker.count)).first(where: {
                bytes[$0..<$0 + marker.count].elementsEqual(marker)
            })
        else { preconditionFailure("the encoded message does not contain its marker") }
        return (Array(bytes[..<at]), Array(bytes[(at + marker.count)...]))
    }

    /// A room chat message with a `rid` as HearthWire encodes it, cut around the rid and the
    /// text: the bytes before the rid, those between it and the text, and those after the text.
    static func chatEnvelope() -> (prefix: [UInt8], middle: [UInt8], suffix: [UInt8]) {
        let (ridMarker, textMarker) = ("lg-rid-marker", "lg-text-marker")
        let encoded = ClientMessageEncoder.encode(.command(.chat(to: .room, text: textMarker), rid: ridMarker))
        let (prefix, rest) = cut(encoded, around: ridMarker)
        let (middle, suffix) = cut(rest, around: textMarker)
        return (prefix, middle, suffix)
    }

    /// The encoded size of an ICE signal without its payload and its `to` id.
    static func measureICEEnvelope() -> Int {
        let to = ParticipantID(0)
        let bytes = ClientMessageEncoder.encode(.command(.signal(to: to, kind: .ice, payload: "{}"), rid: commandRid))
        return bytes.count - "{}".utf8.count - "p0".utf8.count
    }

    /// A WebRTC session description payload (JSON text) of at least `bytes` bytes of SDP.
    static func sdp(kind: String, bytes: Int) -> String {
        var s = "v=0\\r\\no=- 4611731400430051336 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\n"
        var line = 0
        while s.utf8.count < bytes {
            s += "a=x-lg-\(line):abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnop\\r\\n"
            line += 1
        }
        return "{\"type\":\"\(kind)\",\"sdp\":\"\(s)\"}"
    }
}
