import HearthCore
import XCTest

/// Drives one room the way the shell would: connections, a clock that only moves when
/// told, and everything each connection has been sent.
struct Harness {
    var room: Room
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
        room = Room(id: RoomID("r1"), settings: settings, at: now)
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
        apply(room.connect(c, identity: identity, credential: credential, at: now))
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
        apply(room.resume(c, resumeHash: hash, credential: credential, lastSeq: lastSeq, rid: rid, at: now))
        if room.seat(of: c) != nil { hashes[user] = credential.hash }
    }

    mutating func send(_ c: ConnectionID, _ command: ClientCommand, rid: String? = "r") {
        apply(room.handle(command, from: c, rid: rid, at: now))
    }

    mutating func drop(_ c: ConnectionID) { apply(room.disconnected(c, at: now)) }

    /// Fires every timer due by now.
    mutating func fireTimers() {
        for (timer, at) in timers.sorted(by: { $0.value < $1.value }) where at <= now {
            timers[timer] = nil
            apply(room.timerFired(timer.kind, at: now))
        }
    }

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
