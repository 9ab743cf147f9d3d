import HearthCore
import XCTest

/// Drives one room the way the shell would (every input an `Engine.Input`, applied by
/// `Engine.apply`): connections, a clock that only moves when told, and everything each
/// connection has been sent.
struct Harness {
    var engine: Engine
    let roomID = RoomID("r1")
    var now = Instant(milliseconds: 1_000_000)
    var nextConnection: UInt64 = 1
    var inbox: [ConnectionID: [Message]] = [:]
    var closed: [ConnectionID: CloseReason] = [:]
    var audits: [AuditRecord] = []
    var attendance: [AttendanceRecord] = []
    var timers: [TimerID: Instant] = [:]
    var lastEffects: [Effect] = []
    /// The hash of the resume secret each user was last given (by `join` or `resume`).
    var hashes: [String: String] = [:]
    var credentialsIssued = 0

    init(_ configure: (inout RoomSettings) -> Void = { _ in }) {
        var settings = RoomSettings()
        configure(&settings)
        engine = Engine(defaultSettings: settings)
    }

    /// The room under test (created by its first arrival; a fresh one before that).
    var room: Room { engine.rooms[roomID] ?? Room(id: roomID, settings: engine.defaultSettings, at: now) }

    /// Applies one engine input now, as the shell does, and records its effects.
    @discardableResult
    mutating func input(_ input: Engine.Input) -> [Effect] {
        let effects = engine.apply(input, at: now)
        apply(effects)
        return effects
    }

    mutating func apply(_ effects: [Effect]) {
        lastEffects = effects
        for effect in effects {
            switch effect {
            case .send(let message, let to):
                for c in to {
                    XCTAssertNil(closed[c], "sent \(message.event.type) to closed \(c)")
                    inbox[c, default: []].append(message)
                }
            case .close(let c, let reason): closed[c] = reason
            case .audit(let r): audits.append(r)
            case .attendance(let r): attendance.append(r)
            case .schedule(let t, let at): timers[t] = at
            case .cancel(let t): timers[t] = nil
            case .roomEnded(let id, let at):
                XCTAssertEqual(id, roomID)
                XCTAssertEqual(at, now, "a room ends at the input that ends it")
            case .resumeRefused(let c): XCTAssertNil(room.seat(of: c), "a refused resume took a seat")
            }
        }
    }

    mutating func advance(_ ms: Int64) { now = now + ms }

    /// Connects a new connection for `user`; returns it.
    @discardableResult
    mutating func join(_ user: String, _ role: Role, alias: String? = nil) -> ConnectionID {
        let c = ConnectionID(nextConnection)
        nextConnection += 1
        let identity = Identity(userID: UserID(user), role: role, alias: alias ?? "alias-\(user)")
        let credential = credential(user)
        input(.connect(c, room: roomID, identity: identity, credential: credential, settings: nil, rid: nil))
        if room.seat(of: c) != nil { hashes[user] = credential.hash }
        return c
    }

    /// A fresh credential, as the shell makes one for every `hello` and `resume`: a user's
    /// first is `secret-u`/`hash-u`, later ones add a serial number.
    mutating func credential(_ user: String) -> ResumeCredential {
        credentialsIssued += 1
        let name = hashes[user] == nil ? user : "\(user)-\(credentialsIssued)"
        return ResumeCredential(secret: "secret-\(name)", hash: "hash-\(name)")
    }

    /// `resume` on connection `c` with the secret `user` was last given, as the shell does it
    /// (with a new credential for the seat).
    mutating func resume(_ c: ConnectionID, _ user: String, lastSeq: UInt64, rid: String? = nil) {
        resume(c, hash: hashes[user] ?? "hash-\(user)", as: user, lastSeq: lastSeq, rid: rid)
    }

    /// `resume` presenting a given secret hash (an old or a wrong one, say).
    mutating func resume(_ c: ConnectionID, hash: String, as user: String, lastSeq: UInt64, rid: String? = nil) {
        let credential = credential(user)
        input(.resume(c, room: roomID, resumeHash: hash, credential: credential, lastSeq: lastSeq, rid: rid))
        if room.seat(of: c) != nil { hashes[user] = credential.hash }
    }

    mutating func send(_ c: ConnectionID, _ command: ClientCommand, rid: String? = "r") {
        input(.command(command, from: c, rid: rid))
    }

    mutating func drop(_ c: ConnectionID) { input(.disconnected(c)) }

    /// Fires every timer due by now.
    mutating func fireTimers() {
        for (timer, at) in timers.sorted(by: { $0.value < $1.value }) where at <= now {
            timers[timer] = nil
            input(.timerFired(timer))
        }
    }

    @discardableResult
    mutating func take(_ c: ConnectionID) -> [Message] {
        defer { inbox[c] = [] }
        return inbox[c] ?? []
    }

    func events(_ c: ConnectionID) -> [ServerEvent] { (inbox[c] ?? []).map(\.event) }

    func welcome(_ c: ConnectionID) -> Welcome? {
        for event in events(c) {
            if case .welcome(let w) = event { return w }
        }
        return nil
    }

    func pid(_ user: String) -> ParticipantID { room.seat(ofUser: UserID(user))!.id }

    func lastError(_ c: ConnectionID) -> ErrorCode? {
        for event in events(c).reversed() {
            if case .error(let code) = event { return code }
        }
        return nil
    }

    /// A facilitator and `n` participants, all admitted.
    static func groupInSession(_ n: Int, _ configure: (inout RoomSettings) -> Void = { _ in }) -> (
        Harness, ConnectionID, [ConnectionID]
    ) {
        var h = Harness(configure)
        let f = h.join("fac", .facilitator)
        var members: [ConnectionID] = []
        for i in 0..<n {
            let c = h.join("u\(i)", .participant)
            h.send(f, .admit(h.pid("u\(i)")))
            members.append(c)
        }
        return (h, f, members)
    }
}
