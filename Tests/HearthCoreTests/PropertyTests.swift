import XCTest

@testable import HearthCore

/// A small deterministic generator, so a failing sequence can be replayed from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Thousands of random command sequences from random actors, with the room's invariants
/// checked after every step.
final class PropertyTests: XCTestCase {
    static let users: [(String, Role)] = [
        ("f1", .facilitator), ("f2", .facilitator), ("c1", .cofacilitator), ("p1", .participant),
        ("p2", .participant), ("p3", .participant), ("p4", .participant), ("g1", .guest), ("o1", .observer),
    ]

    struct World {
        var h: Harness
        var rng: SplitMix64
        var live: [String: ConnectionID] = [:]
        var lastSeqSeen: [ConnectionID: UInt64] = [:]
        var bannedUsers: Set<UserID> = []
        var endedAt: Instant?
    }

    func randomCommand(_ w: inout World) -> ClientCommand {
        let pids = w.h.room.seats.keys.sorted() + [ParticipantID(999)]
        let msgs = (1..<UInt64(max(2, w.h.room.seq + 1))).map { MessageID($0) }
        var rng = w.rng
        defer { w.rng = rng }
        func pid() -> ParticipantID { pids.randomElement(using: &rng)! }
        func bool() -> Bool { Bool.random(using: &rng) }
        // `end` is rare, so most sequences run long.
        if Int.random(in: 0..<120, using: &rng) == 0 { return .end }
        let breakouts = (1..<(w.h.room.breakouts.open.map(\.id.rawValue).max() ?? 1) + 2).map { BreakoutID($0) }
        func breakout() -> BreakoutID? {
            Int.random(in: 0..<4, using: &rng) == 0 ? nil : breakouts.randomElement(using: &rng)
        }
        switch Int.random(in: 0..<42, using: &rng) {
        case 0: return .setMedia(audio: bool(), video: bool())
        case 1: return .raiseHand
        case 2: return .lowerHand(nil)
        case 3: return .lowerHand(pid())
        case 4: return .chat(to: .room, text: "t")
        case 5: return .chat(to: .staff, text: "t")
        case 6: return .chat(to: .member(pid()), text: "t")
        case 7: return .signal(to: pid(), kind: .ice, payload: "{}")
        case 8: return .requestHelp
        case 9: return .acknowledgeConsent(version: bool() ? "v1" : "v0")
        case 10: return .setLocation("home")
        case 11: return .leave
        case 12, 13: return .admit(pid())
        case 14: return .admitAll
        case 15: return .deny(pid(), reason: nil)
        case 16: return .sendBack(pid())
        case 17: return .messageWaitingRoom("m")
        case 18: return .mute(pid(), audio: true, video: bool())
        case 19: return .muteAll(video: bool())
        case 20: return .askUnmute(pid(), audio: true, video: false)
        case 21: return .remove(pid(), ban: bool(), reason: nil)
        case 22: return .setRole(pid(), Role.allCases.randomElement(using: &rng)!)
        case 23: return .grant(pid(), media: bool(), chat: bool())
        case 24: return .spotlight(bool() ? pid() : nil)
        case 25: return .lowerAllHands
        case 26: return .deleteChat(msgs.randomElement(using: &rng) ?? MessageID(1))
        case 27: return .setLocked(bool())
        case 28:
            return .updateSettings(
                SettingsChange(chatPolicy: ChatPolicy.allCases.randomElement(using: &rng), waitingRoom: bool()))
        case 29: return .acknowledgeHelp(pid())
        case 31, 32:
            let entries = (0..<Int.random(in: 1...3, using: &rng)).map { i in
                BreakoutPlanEntry(name: "b\(i)", members: bool() ? [pid()] : [])
            }
            return .planBreakouts(entries, automatic: bool())
        case 33, 34:
            return .openBreakouts(
                durationSeconds: bool() ? Int.random(in: 1...120, using: &rng) : nil, warningSeconds: bool() ? 5 : nil)
        case 35: return .closeBreakouts
        case 36: return .closeBreakout(breakouts.randomElement(using: &rng)!)
        case 37, 38: return .moveToBreakout(pid(), breakout())
        case 39: return .visitBreakout(breakout())
        case 40: return .broadcastToBreakouts("b")
        case 41: return .pullAside(pid())
        default: return .setMedia(audio: false, video: nil)
        }
    }

    func step(_ w: inout World) {
        let (user, role) = Self.users.randomElement(using: &w.rng)!
        let before = w.h.room
        w.h.lastEffects = []
        let roll = Int.random(in: 0..<100, using: &w.rng)
        var resumedConnection: ConnectionID?
        var privilegedActor: (ClientCommand, Party)?
        var sent: ClientCommand?
        if roll < 12 {
            let c = w.h.join(user, role)
            w.live[user] = c
        } else if roll < 20, let c = w.live[user] {
            w.h.drop(c)
            w.live[user] = nil
        } else if roll < 26 {
            let c = ConnectionID(w.h.nextConnection)
            w.h.nextConnection += 1
            let lastSeq = UInt64.random(in: 0...(w.h.room.seq + 1), using: &w.rng)
            w.h.resume(c, user, lastSeq: lastSeq)
            if w.h.room.seat(of: c) != nil { w.live[user] = c }
            resumedConnection = c
        } else if roll < 32 {
            w.h.advance(Int64.random(in: 0...40_000, using: &w.rng))
            w.h.fireTimers()
        } else if let c = w.live[user], w.h.closed[c] == nil {
            let command = randomCommand(&w)
            sent = command
            if let seat = w.h.room.seat(of: c), command.requiredPermission?.isPrivileged == true,
                seat.placement == .room
            {
                privilegedActor = (command, seat.party)
            }
            w.h.send(c, command)
        }
        // Forget connections the room closed.
        for (u, c) in w.live where w.h.closed[c] != nil { w.live[u] = nil }
        check(&w, before: before, resumed: resumedConnection, privileged: privilegedActor)
        checkBreakouts(w, sent: sent, resumed: resumedConnection)
    }

    /// Breakouts: every admitted member is in the main room or in exactly one open breakout
    /// (waiting members in none); nobody gets room chat, a signal or a roster entry from a room
    /// they are not in (a resume's replay is history, told as it happened); after close-all
    /// nobody is in a breakout.
    func checkBreakouts(_ w: World, sent: ClientCommand?, resumed: ConnectionID?) {
        let room = w.h.room
        let open = Set(room.breakouts.open.map(\.id))
        XCTAssertEqual(open.count, room.breakouts.open.count, "a breakout open twice")
        for seat in room.seats.values {
            if let b = seat.breakout {
                XCTAssertEqual(seat.placement, .room, "a waiting member in a breakout")
                XCTAssertTrue(open.contains(b), "\(seat.id) in \(b), which is not open")
            }
        }
        if room.breakouts.endsAt != nil { XCTAssertTrue(room.breakouts.plannedOpen, "a time limit with nothing open") }
        if sent == .closeBreakouts,
            w.h.lastEffects.contains(where: {
                if case .send(let m, _) = $0 { return m.event == .ack(Ack()) } else { return false }
            })
        {
            XCTAssertTrue(room.seats.values.allSatisfy { $0.breakout == nil }, "someone in a breakout after close-all")
        }
        for effect in w.h.lastEffects {
            guard case .send(let message, let to) = effect else { continue }
            for c in to where c != resumed {
                guard let r = room.seat(of: c), r.placement == .room else { continue }
                func sameRoom(_ id: ParticipantID, _ what: String) {
                    guard let other = room.seats[id], other.placement == .room, !r.isStaff else { return }
                    XCTAssertEqual(other.breakout, r.breakout, "\(what) from another room reached \(r.id)")
                }
                switch message.event {
                case .chat(let m) where m.to == .room:
                    XCTAssertEqual(m.breakout, r.breakout, "room chat from another room reached \(r.id)")
                case .signal(let from, _, _):
                    XCTAssertEqual(room.seats[from]?.breakout, r.breakout, "a signal crossed rooms to \(r.id)")
                case .memberJoined(let v), .memberUpdated(let v): sameRoom(v.id, "a roster entry")
                case .moved(_, let snap), .admitted(let snap), .snapshot(let snap):
                    for v in snap.members { sameRoom(v.id, "a snapshot entry") }
                default: break
                }
            }
        }
    }

    func check(_ w: inout World, before: Room, resumed: ConnectionID?, privileged: (ClientCommand, Party)?) {
        let room = w.h.room
        // A user is in at most one place, and a connection holds at most one seat.
        let users = room.seats.values.map(\.userID)
        XCTAssertEqual(Set(users).count, users.count)
        let connections = room.seats.values.compactMap(\.connection)
        XCTAssertEqual(Set(connections).count, connections.count)
        // Capacity holds.
        XCTAssertLessThanOrEqual(room.admittedMemberCount, room.settings.capacity)
        // The SFU carries exactly the admitted, connected members, each in their own space, and
        // forwards only what the roster shows on; `auto` never goes back to the mesh.
        let plan = room.sfuPlan
        if before.usesSFU && !before.isEnded { XCTAssertTrue(room.usesSFU, "left the SFU") }
        if room.usesSFU && !room.isEnded {
            let carried = room.seats.values.filter { $0.placement == .room && $0.connection != nil }
            XCTAssertEqual(Set(plan.keys), Set(carried.map(\.id)), "the SFU plan is not the admitted, connected seats")
            for seat in carried {
                let entry = plan[seat.id]
                XCTAssertEqual(entry?.connection, seat.connection)
                XCTAssertEqual(entry?.space, seat.breakout)
                XCTAssertEqual(entry?.publish, seat.may(.publishMedia))
                if entry?.audio == true {
                    XCTAssertTrue(seat.audio && seat.may(.publishMedia), "forwarding muted audio")
                }
                if entry?.video == true {
                    XCTAssertTrue(seat.video && seat.may(.publishMedia), "forwarding muted video")
                }
            }
        } else {
            XCTAssertTrue(plan.isEmpty, "an SFU plan for a mesh or ended room")
        }
        if room.settings.media == .auto && !room.isEnded && room.admittedCount > room.settings.meshLimit {
            XCTAssertTrue(room.usesSFU, "auto above the mesh limit")
        }
        // A banned user never returns.
        w.bannedUsers.formUnion(room.banned)
        for user in w.bannedUsers { XCTAssertNil(room.seat(ofUser: user), "banned \(user) came back") }
        // Nothing is accepted after end.
        if let endedAt = w.endedAt {
            XCTAssertEqual(room.phase, .ended(endedAt))
            XCTAssertTrue(room.seats.isEmpty)
            for effect in w.h.lastEffects {
                switch effect {
                case .send(let m, _):
                    switch m.event {
                    case .error(.roomEnded), .error(.resumeFailed), .error(.notAdmitted): break
                    default: XCTFail("after end: \(m.event.type)")
                    }
                case .close, .resumeRefused: break
                default: XCTFail("after end: \(effect)")
                }
            }
        }
        if case .ended(let at) = room.phase, w.endedAt == nil { w.endedAt = at }
        // The idle timer runs exactly while the room, once used, has no seat at all.
        let idle = w.h.timers[TimerID(room: room.id, kind: .idle)]
        XCTAssertEqual(room.idleDeadline, idle)
        if !room.seats.isEmpty || room.isEnded { XCTAssertNil(idle, "idle timer with seats or after end") }
        if room.seats.isEmpty && !room.isEnded && !w.h.attendance.isEmpty {
            XCTAssertNotNil(idle, "an empty room without an idle timer")
        }
        for effect in w.h.lastEffects {
            guard case .send(let message, let to) = effect else { continue }
            for c in to {
                // Sequence numbers strictly increase on every connection.
                if let seq = message.seq {
                    XCTAssertGreaterThan(seq, w.lastSeqSeen[c] ?? 0, "seq on \(c)")
                    w.lastSeqSeen[c] = seq
                }
                // Waiting members get no room events and no roster; non-staff never see user ids.
                guard c != resumed else { continue }
                let seatBefore = before.seat(of: c)
                let seatAfter = room.seat(of: c)
                let waiting = seatBefore?.placement != .room && seatAfter?.placement != .room
                let nonStaff = seatBefore?.isStaff != true && seatAfter?.isStaff != true
                if waiting { assertWaitingSafe(message.event) }
                if nonStaff { assertNoStaffData(message.event) }
            }
        }
        // Every privileged command by an admitted member leaves an audit record, done or refused.
        if let (command, party) = privileged {
            XCTAssertTrue(
                w.h.lastEffects.contains {
                    if case .audit(let r) = $0 { return r.actor == party } else { return false }
                },
                "no audit for \(command.name)")
        }
    }

    func assertWaitingSafe(_ event: ServerEvent) {
        switch event {
        case .welcome(let x): XCTAssertNil(x.room)
        case .resumed(let x): XCTAssertNil(x.room)
        case .waiting, .waitingRoomMessage, .ack, .error, .denied, .removed, .ended, .helpAcknowledged: break
        default: XCTFail("waiting member got \(event.type)")
        }
    }

    func assertNoStaffData(_ event: ServerEvent) {
        func check(_ v: MemberView, _ you: ParticipantID? = nil) {
            if v.id == you { return }
            XCTAssertNil(v.userID)
            XCTAssertNil(v.location)
            XCTAssertNil(v.consentVersion)
        }
        switch event {
        case .memberJoined(let v), .memberUpdated(let v): check(v)
        case .admitted(let s), .snapshot(let s):
            s.members.forEach { check($0, s.you.id) }
            XCTAssertNil(s.waiting)
            XCTAssertNil(s.help)
        case .welcome(let x): x.room.map { s in s.members.forEach { check($0, s.you.id) } }
        case .waitingUpdated, .helpRequested: XCTFail("non-staff got \(event.type)")
        default: break
        }
    }

    /// Attendance: per user, intervals alternate enter/exit, never overlap, lie within the session.
    func checkAttendance(_ w: World) {
        let end = w.endedAt ?? w.h.now
        var inRoom: [UserID: Instant] = [:]
        var waiting: [UserID: Instant] = [:]
        var lastExit: [UserID: Instant] = [:]
        var inBreakout: [UserID: BreakoutID] = [:]
        for r in w.h.attendance {
            let u = r.member.userID
            XCTAssertGreaterThanOrEqual(r.at, w.h.room.createdAt)
            XCTAssertLessThanOrEqual(r.at, end)
            switch r.kind {
            case .enterRoom:
                XCTAssertNil(inRoom[u], "\(u) entered the room twice")
                XCTAssertNil(waiting[u], "\(u) in room and waiting at once")
                XCTAssertGreaterThanOrEqual(r.at, lastExit[u] ?? r.at)
                inRoom[u] = r.at
            case .enterWaiting:
                XCTAssertNil(waiting[u], "\(u) entered waiting twice")
                XCTAssertNil(inRoom[u], "\(u) in room and waiting at once")
                XCTAssertGreaterThanOrEqual(r.at, lastExit[u] ?? r.at)
                waiting[u] = r.at
            case .exitRoom:
                guard let start = inRoom.removeValue(forKey: u) else { return XCTFail("\(u) left a room not entered") }
                XCTAssertLessThanOrEqual(start, r.at)
                lastExit[u] = r.at
            case .exitWaiting:
                guard let start = waiting.removeValue(forKey: u) else {
                    return XCTFail("\(u) left waiting not entered")
                }
                XCTAssertLessThanOrEqual(start, r.at)
                lastExit[u] = r.at
            case .enterBreakout:
                XCTAssertNotNil(inRoom[u], "\(u) entered a breakout outside the room")
                XCTAssertNil(inBreakout[u], "\(u) in two breakouts")
                inBreakout[u] = r.breakout ?? BreakoutID(0)
            case .exitBreakout:
                XCTAssertEqual(inBreakout.removeValue(forKey: u), r.breakout, "\(u) left a breakout not entered")
            }
        }
        if w.endedAt != nil { XCTAssertTrue(inRoom.isEmpty && waiting.isEmpty, "attendance finalised at end") }
        let ledger = AttendanceLedger(records: w.h.attendance, until: end)
        // The same attendance follows from the audit trail alone.
        let fromAudit = AttendanceLedger(auditRecords: w.h.audits, until: end)
        XCTAssertEqual(fromAudit.members, ledger.members, "attendance recomputed from the audit trail differs")
        XCTAssertEqual(fromAudit.participantCount, ledger.participantCount)
        for member in ledger.members {
            for (a, b) in zip(member.inRoom, member.inRoom.dropFirst()) { XCTAssertLessThan(a.end, b.start) }
            // Breakout time is room time.
            for b in member.breakouts {
                XCTAssertTrue(
                    member.inRoom.contains { $0.start <= b.start && b.end <= $0.end }, "breakout time outside the room")
            }
        }
    }

    func testRandomSequencesKeepTheInvariants() {
        let sequences = 1000
        let steps = 250
        var ended = 0
        var endedIdle = 0
        var admitted = 0
        var inBreakouts = 0
        var timeLimits = 0
        for seed in 0..<UInt64(sequences) {
            var w = World(
                h: Harness {
                    $0.consentVersion = seed % 3 == 0 ? "v1" : nil
                    $0.capacity = Int(seed % 5) + 2
                    $0.waitingRoom = seed % 4 != 0
                    $0.facilitatorDrop = seed % 5 == 0 ? .waitingRoom : .hold
                    $0.media = [.mesh, .sfu, .auto][Int(seed % 3)]
                    $0.meshLimit = 3
                    $0.replayWindow = 16
                    $0.privateMessages = seed % 2 == 0
                    $0.idleCloseMilliseconds = seed % 3 == 1 ? 30_000 : 1_800_000
                }, rng: SplitMix64(state: seed))
            for _ in 0..<steps {
                step(&w)
                if testRun?.failureCount ?? 0 > 0 { return XCTFail("seed \(seed) failed") }
            }
            checkAttendance(w)
            if w.endedAt != nil { ended += 1 }
            if w.h.audits.contains(where: { $0.action == "end" && $0.reason == "idle" }) { endedIdle += 1 }
            admitted += w.h.attendance.filter { $0.kind == .enterRoom }.count
            inBreakouts += w.h.attendance.filter { $0.kind == .enterBreakout }.count
            timeLimits += w.h.audits.filter { $0.action == "breakouts-close" && $0.reason == "time-limit" }.count
        }
        // The generator must actually reach the interesting states.
        XCTAssertGreaterThan(ended, sequences / 20)
        XCTAssertGreaterThan(endedIdle, 0, "no room emptied long enough to end by itself")
        XCTAssertGreaterThan(admitted, sequences * 5)
        XCTAssertGreaterThan(inBreakouts, sequences / 5, "members rarely reached a breakout")
        XCTAssertGreaterThan(timeLimits, sequences / 50, "time limits rarely ran out")
    }
}
