import CJansson
import HearthCore
import HearthWire

// The fuzz driver: one input is a small session script, run through the wire decoder, the
// engine (as RoomHost would drive it) and the wire encoder, with cheap invariants checked on
// the way. Any violation calls `fatalError`, which libFuzzer reports as a crash.
//
// Input format: lines separated by `\n`. Each line is one control byte, then the bytes of one
// client frame (normally JSON; the decoder gets them as they are):
//
//   control & 3          the connection slot 0...3 (slot 3 is in a second room, "room-b")
//   (control >> 2) & 3   time advance before the line: 0, 1 s, 30 s, 70 s (past the 60 s grace)
//   (control >> 4) & 7   7: the slot's connection drops (the rest of the line is ignored)
//                        6: only the advance, then due timers fire
//                        otherwise: the frame is delivered on the slot's connection
//
// So the printable control bytes `0`...`3` deliver on slots 0...3 with no advance, `4`...`7`
// after 1 s, `<`...`?` after 70 s; `p`...`s` drop slots 0...3; `l` advances 70 s and fires timers.
//
// `hello` takes no real token: the token names the identity, `role` or `role:flags`, with one
// fixed user id per role (so a second hello with the same role is a takeover). Unknown tokens map
// to an identity by their first byte. Flags set the settings of the room it creates:
// `c` consent 2024-06, `l` location required, `w` waiting room off, `d` facilitator drop moves
// members to the waiting room, `s` small caps (capacity 2, 2 waiting, replay window 4, 3 chats
// kept, chat 16 bytes, signal 64 bytes), `p` private messages, `u` no self-unmute,
// `o` chat off, `t` chat staff-only. `resume` hashes its secret as the shell does (any string
// works: the driver remembers the secrets handed out in `welcome` and `resumed` under their
// hash; each hello and each resume hands out the next `secret-N`).

let identities: [(String, Role)] = [
    ("facilitator", .facilitator), ("cofacilitator", .cofacilitator), ("participant", .participant),
    ("guest", .guest), ("observer", .observer), ("participant2", .participant),
]

struct Before {
    var waiting: Set<ConnectionID> = []
    var nonStaff: Set<ConnectionID> = []
}

struct Slot {
    var connection: ConnectionID
    var joined = false
    var open = true
}

struct Session {
    var engine = Engine()
    var slots: [Slot]
    var nextConnection: UInt64 = 1
    var now = Instant(milliseconds: 1_732_870_000_000)
    var timers: [TimerID: Instant] = [:]
    /// Resume secrets handed out, by the hash the engine keeps.
    var secretHashes: Set<String> = []
    var hashCounter: UInt64 = 0

    init() {
        slots = (0..<4).map { Slot(connection: ConnectionID(UInt64($0) + 1)) }
        nextConnection = 5
    }

    static func room(_ slot: Int) -> RoomID { RoomID(slot == 3 ? "room-b" : "room-a") }

    mutating func fresh(_ slot: Int) {
        slots[slot] = Slot(connection: ConnectionID(nextConnection))
        nextConnection += 1
    }

    // MARK: Inputs, as RoomHost makes them

    mutating func line(_ bytes: UnsafeRawBufferPointer) {
        guard let control = bytes.first else { return }
        let slot = Int(control & 3)
        now = now + [0, 1_000, 30_000, 70_000][Int((control >> 2) & 3)]
        switch (control >> 4) & 7 {
        case 7:
            drop(slot)
            return
        case 6:
            fireTimers()
            return
        default:
            break
        }
        fireTimers()
        if !slots[slot].open { fresh(slot) }
        let frame = UnsafeRawBufferPointer(rebasing: bytes.dropFirst())
        switch WireDecoder.decode(frame) {
        case .failure(let error):
            switch error.code {
            case .badJSON, .badMessage, .unknownType: break
            default: fatalError("decoder refused with \(error.code)")
            }
            if let rid = error.rid { check(rid: rid) }
            checkEncoded(WireEncoder.encodeError(error.code, rid: error.rid), type: "error")
        case .success(let inbound):
            if let rid = inbound.rid { check(rid: rid) }
            deliver(inbound, slot: slot)
        }
    }

    mutating func deliver(_ inbound: Inbound, slot: Int) {
        let connection = slots[slot].connection
        let room = Self.room(slot)
        switch inbound {
        case .ping(let rid):
            checkEncoded(WireEncoder.encodePong(rid: rid), type: "pong")
        case .hello(let token, let rid):
            if slots[slot].joined { return shellError(.alreadyJoined, rid: rid) }
            slots[slot].joined = true
            let (identity, settings) = Self.identity(token)
            hashCounter += 1
            let secret = "secret-\(hashCounter)"
            let hash = Self.hash(secret)
            secretHashes.insert(hash)
            let b = before(room)
            apply(
                .connect(
                    connection, room: room, identity: identity,
                    credential: ResumeCredential(secret: secret, hash: hash), settings: settings, rid: rid),
                input: connection, room: room, before: b)
        case .refresh(_, let rid):
            if !slots[slot].joined { return shellError(.helloRequired, rid: rid) }
        case .sfu(_, let rid):
            // The media broker is not the engine's: only the shell's check applies here.
            if !slots[slot].joined { return shellError(.helloRequired, rid: rid) }
        case .resume(let secret, let lastSeq, let rid):
            if slots[slot].joined { return shellError(.alreadyJoined, rid: rid) }
            slots[slot].joined = true
            // As the shell: a fresh secret replaces the presented one if the resume succeeds.
            hashCounter += 1
            let next = "secret-\(hashCounter)"
            secretHashes.insert(Self.hash(next))
            let b = before(room)
            // A refused resume comes back as `.resumeRefused`: `run` marks the slot not joined.
            apply(
                .resume(
                    connection, room: room, resumeHash: Self.hash(secret),
                    credential: ResumeCredential(secret: next, hash: Self.hash(next)), lastSeq: lastSeq, rid: rid),
                input: connection, room: room, before: b)
        case .command(let command, let rid):
            if !slots[slot].joined { return shellError(.helloRequired, rid: rid) }
            let b = before(room)
            apply(.command(command, from: connection, rid: rid), input: connection, room: room, before: b)
        }
    }

    mutating func drop(_ slot: Int) {
        let s = slots[slot]
        guard s.open else { return }
        slots[slot].open = false
        if s.joined {
            let room = Self.room(slot)
            let b = before(room)
            apply(.disconnected(s.connection), input: s.connection, room: room, before: b)
        }
    }

    mutating func fireTimers() {
        while let (timer, at) = timers.filter({ $0.value <= now }).min(by: { $0.value < $1.value }) {
            timers[timer] = nil
            precondition(at <= now)
            let b = before(timer.room)
            apply(.timerFired(timer), input: nil, room: timer.room, before: b)
        }
    }

    mutating func shellError(_ code: ErrorCode, rid: String?) {
        checkEncoded(WireEncoder.encodeError(code, rid: rid), type: "error")
    }

    /// The secret's stand-in hash: the real shell uses SHA-256 (HearthAuth), which is not
    /// what is under test here; any injective function of the secret will do.
    static func hash(_ secret: String) -> String { "h:" + secret }

    static func identity(_ token: String) -> (Identity, RoomSettings) {
        let parts = token.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let name = parts.first.map(String.init) ?? ""
        let index = identities.firstIndex { $0.0 == name } ?? Int(token.utf8.first ?? 0) % identities.count
        let (user, role) = identities[index]
        var s = RoomSettings()
        for flag in parts.count > 1 ? Array(parts[1].utf8) : [] {
            switch flag {
            case UInt8(ascii: "c"): s.consentVersion = "2024-06"
            case UInt8(ascii: "l"): s.requireLocation = true
            case UInt8(ascii: "w"): s.waitingRoom = false
            case UInt8(ascii: "d"): s.facilitatorDrop = .waitingRoom
            case UInt8(ascii: "s"):
                s.capacity = 2
                s.maxWaiting = 2
                s.replayWindow = 4
                s.chatHistory = 3
                s.maxChatLength = 16
                s.maxSignalBytes = 64
            case UInt8(ascii: "p"): s.privateMessages = true
            case UInt8(ascii: "u"): s.selfUnmute = false
            case UInt8(ascii: "o"): s.chatPolicy = .off
            case UInt8(ascii: "t"): s.chatPolicy = .staffOnly
            default: break
            }
        }
        return (Identity(userID: UserID("u-" + user), role: role, alias: "Alias \(index)"), s)
    }

    // MARK: Effects and invariants

    /// Who was waiting, and who was not staff, in `room` before an input: the audience
    /// checks hold for members in the same place and role before and after it (an input may
    /// move someone, e.g. everyone to the waiting room when the last staff drops, after
    /// telling them).
    func before(_ room: RoomID) -> Before {
        var b = Before()
        for seat in engine.rooms[room]?.seats.values.map({ $0 }) ?? [] {
            guard let c = seat.connection else { continue }
            if seat.placement == .waiting { b.waiting.insert(c) }
            if !seat.isStaff { b.nonStaff.insert(c) }
        }
        return b
    }

    /// Applies one engine input at `now`, as RoomHost's `dispatch` does, and checks its effects.
    mutating func apply(_ engineInput: Engine.Input, input: ConnectionID?, room: RoomID, before: Before) {
        run(engine.apply(engineInput, at: now), input: input, room: room, before: before)
    }

    mutating func run(_ effects: [Effect], input: ConnectionID?, room: RoomID, before: Before) {
        var closed: [ConnectionID] = []
        for effect in effects {
            switch effect {
            case .send(let message, let to):
                precondition(!to.isEmpty, "a send without recipients")
                let ice: [ICEServer] =
                    switch message.event {
                    case .welcome, .resumed:
                        [
                            ICEServer(urls: ["stun:stun.example.org:3478"]),
                            ICEServer(urls: ["turns:turn.example.org:5349"], username: "1:c1", credential: "x"),
                        ]
                    default: []
                    }
                let bytes = WireEncoder.encode(message, iceServers: ice)
                checkEncoded(bytes, type: message.event.type)
                for recipient in to {
                    // Rooms never talk to another room's connections.
                    if recipient != input {
                        precondition(engine.room(of: recipient) == room, "\(message.event.type) crossed rooms")
                    }
                    checkAudience(bytes, event: message.event, recipient: recipient, room: room, before: before)
                }
            case .close(let connection, _):
                closed.append(connection)
            case .audit, .attendance:
                break
            case .schedule(let timer, let at):
                precondition(timer.room == room, "a timer for another room")
                timers[timer] = at
            case .cancel(let timer):
                timers[timer] = nil
            case .roomEnded(let ended, _):
                precondition(ended == room, "another room ended")
                precondition(engine.rooms[room]?.isEnded == true, "roomEnded for a room not ended")
            case .resumeRefused(let connection):
                precondition(connection == input, "resumeRefused for another connection")
                precondition(engine.room(of: connection) == nil, "a refused resume joined a room")
                if let slot = slots.firstIndex(where: { $0.connection == connection }) { slots[slot].joined = false }
            }
        }
        if let r = engine.rooms[room] {
            precondition(
                r.admittedMemberCount <= r.settings.capacity || r.isEnded || capacityExempt,
                "capacity \(r.settings.capacity) exceeded: \(r.admittedMemberCount)")
        }
        // The transport closes what the room closed; the shell then reports the drop.
        for connection in closed {
            guard let slot = slots.firstIndex(where: { $0.connection == connection && $0.open }) else { continue }
            drop(slot)
        }
    }

    /// Set when a test knows capacity may legitimately be exceeded (never, so far).
    var capacityExempt: Bool { false }

    /// Waiting members get only their own status; non-staff never see another user's id.
    func checkAudience(
        _ bytes: [UInt8], event: ServerEvent, recipient: ConnectionID, room: RoomID, before: Before
    ) {
        guard let r = engine.rooms[room], let seat = r.seat(of: recipient) else { return }
        let nonStaff = !seat.isStaff && before.nonStaff.contains(recipient)
        switch event {
        case .waitingUpdated, .waitingLeft, .helpRequested:
            precondition(!nonStaff, "\(event.type) sent to a non-staff member")
        default: break
        }
        if seat.placement == .waiting && before.waiting.contains(recipient) {
            switch event {
            case .welcome, .resumed, .waiting, .waitingRoomMessage, .ack, .error, .denied, .removed, .ended,
                .helpAcknowledged, .memberLeft:
                break
            default: fatalError("\(event.type) sent to a waiting member")
            }
        }
        if nonStaff {
            Self.withParsed(bytes) { root in
                Self.forEachUserID(root) { userID in
                    precondition(userID == seat.userID.rawValue, "a non-staff member got another user's id")
                }
            }
        }
    }

    // MARK: JSON checks (jansson, independent of the encoder's own structures)

    func check(rid: String) {
        precondition(!rid.utf8.isEmpty && rid.utf8.count <= WireDecoder.maxRIDBytes, "rid length")
    }

    func checkEncoded(_ bytes: [UInt8], type: String) {
        precondition(!bytes.contains(UInt8(ascii: "\n")), "a raw newline in an encoded message")
        var parsedType = ""
        Self.withParsed(bytes) { root in
            guard let value = json_object_get(root, "type"), cj_is_string(value) != 0 else {
                fatalError("no type")
            }
            parsedType = String(cString: json_string_value(value))
        }
        precondition(parsedType == type, "encoded type \(parsedType) != \(type)")
    }

    /// Parses `bytes` as exactly one JSON object (or crashes) and lends it to `body`.
    static func withParsed(_ bytes: [UInt8], _ body: (UnsafeMutablePointer<json_t>) -> Void) {
        var error = json_error_t()
        let root = bytes.withUnsafeBufferPointer { b in
            b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) {
                json_loadb($0, b.count, cj_decode_flags(), &error)
            }
        }
        guard let root else { fatalError("encoder output does not parse: \(bytes.count) bytes") }
        defer { cj_decref(root) }
        precondition(cj_is_object(root) != 0, "encoder output is not an object")
        body(root)
    }

    /// Every `userId` string anywhere in the message, except inside relayed signal payloads.
    static func forEachUserID(_ value: UnsafeMutablePointer<json_t>, _ body: (String) -> Void) {
        if cj_is_object(value) != 0 {
            var iterator = json_object_iter(value)
            while let it = iterator {
                let key = String(cString: json_object_iter_key(it))
                if let child = json_object_iter_value(it), key != "payload" {
                    if key == "userId", cj_is_string(child) != 0 {
                        body(String(cString: json_string_value(child)))
                    } else {
                        forEachUserID(child, body)
                    }
                }
                iterator = json_object_iter_next(value, it)
            }
        } else if cj_is_array(value) != 0 {
            for i in 0..<json_array_size(value) {
                if let child = json_array_get(value, i) { forEachUserID(child, body) }
            }
        }
    }
}

/// Runs one input: the libFuzzer entry point calls it, and so does the corpus replay.
public func fuzzOne(_ data: UnsafeRawBufferPointer) {
    var session = Session()
    var start = 0
    var count = 0
    for i in 0...data.count {
        if i == data.count || data[i] == UInt8(ascii: "\n") {
            if i > start {
                session.line(UnsafeRawBufferPointer(rebasing: data[start..<i]))
                count += 1
                if count >= 256 { break }  // bounded work per input
            }
            start = i + 1
        }
    }
    // Everyone leaves, then time runs out: every held seat must expire cleanly, and then every
    // room, left empty, must end by itself (its idle timer starts when its last seat expires).
    for slot in 0..<4 { session.drop(slot) }
    for _ in 0..<2 {
        session.now = session.now + 3_600_000
        session.fireTimers()
    }
    precondition(session.timers.isEmpty, "timers left after the end")
    precondition(session.engine.openRoomCount == 0, "an empty room did not end")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOne(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}
