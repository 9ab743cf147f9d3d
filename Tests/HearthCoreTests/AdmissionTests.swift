import HearthCore
import XCTest

final class AdmissionTests: XCTestCase {
    func testStaffEnterDirectlyAndOthersWait() {
        var h = Harness()
        let f = h.join("fac", .facilitator)
        guard let w = h.welcome(f) else { return XCTFail("no welcome") }
        XCTAssertEqual(w.you.placement, .room)
        XCTAssertNotNil(w.room)
        XCTAssertEqual(w.resumeSecret, "secret-fac")
        for role in [Role.participant, .guest, .observer] {
            let c = h.join("u-\(role)", role)
            guard let w = h.welcome(c) else { return XCTFail("no welcome") }
            XCTAssertEqual(w.you.placement, .waiting)
            XCTAssertNil(w.room, "a waiting member must get no roster")
            XCTAssertEqual(w.waiting?.reason, .waitingForAdmission)
        }
        let co = h.join("co", .cofacilitator)
        guard let wc = h.welcome(co) else { return XCTFail("no welcome") }
        XCTAssertEqual(wc.you.placement, .room)
        XCTAssertEqual(wc.room?.waiting?.count, 3, "staff see the waiting room")
    }

    func testWaitingMembersLearnNothingAboutOthers() {
        var h = Harness()
        let a = h.join("a", .participant)
        let f = h.join("fac", .facilitator)
        let b = h.join("b", .participant)
        h.send(f, .admit(h.pid("a")))
        h.send(f, .chat(to: .room, text: "hello group"))
        h.send(f, .setLocked(true))
        // b saw: welcome, then nothing about a, the facilitator, the chat or the lock.
        for event in h.events(b) {
            switch event {
            case .welcome(let w): XCTAssertNil(w.room)
            case .waiting: break
            default: XCTFail("waiting member got \(event.type)")
            }
        }
        _ = a
    }

    func testArrivalsWaitForFacilitatorUntilStaffArrive() {
        var h = Harness()
        let a = h.join("a", .participant)
        guard let w = h.welcome(a) else { return XCTFail() }
        XCTAssertEqual(w.waiting?.reason, .waitingForFacilitator)
        _ = h.take(a)
        h.join("fac", .facilitator)
        let reasons: [WaitingReason] = h.events(a).compactMap {
            if case .waiting(let s) = $0 { return s.reason } else { return nil }
        }
        XCTAssertEqual(reasons, [.waitingForAdmission])
    }

    func testConsentMustBeAcknowledgedWithTheExactVersion() {
        var h = Harness { $0.consentVersion = "2026-03" }
        let f = h.join("fac", .facilitator)
        let a = h.join("a", .participant)
        h.send(f, .admit(h.pid("a")))
        XCTAssertEqual(h.lastError(f), .consentRequired)
        XCTAssertEqual(h.room.seats[h.pid("a")]?.placement, .waiting)
        XCTAssertEqual(h.audits.last?.outcome, .refused(.consentRequired))
        h.send(a, .acknowledgeConsent(version: "2025-01"))
        XCTAssertEqual(h.lastError(a), .consentMismatch)
        h.send(a, .acknowledgeConsent(version: "2026-03"))
        // Staff see who has acknowledged.
        let updates = h.events(f).compactMap { if case .waitingUpdated(let v) = $0 { return v } else { return nil } }
        XCTAssertEqual(updates.last?.consentVersion, "2026-03")
        XCTAssertEqual(updates.last?.ready, true)
        XCTAssertTrue(h.audits.contains { $0.action == "consent" && $0.subject?.userID == UserID("a") })
        h.send(f, .admit(h.pid("a")))
        XCTAssertEqual(h.room.seats[h.pid("a")]?.placement, .room)
        XCTAssertTrue(h.events(a).contains { if case .admitted = $0 { return true } else { return false } })
    }

    func testConsentCommandWithoutRequirementIsRefused() {
        var h = Harness()
        let a = h.join("a", .participant)
        h.send(a, .acknowledgeConsent(version: "x"))
        XCTAssertEqual(h.lastError(a), .noConsentRequired)
    }

    func testLocationIsRequiredAndVisibleToStaffOnly() {
        var h = Harness { $0.requireLocation = true }
        let f = h.join("fac", .facilitator)
        let a = h.join("a", .participant)
        let b = h.join("b", .participant)
        h.send(f, .admit(h.pid("a")))
        XCTAssertEqual(h.lastError(f), .locationRequired)
        h.send(a, .setLocation("   "))
        XCTAssertEqual(h.lastError(a), .emptyText)
        h.send(a, .setLocation("12 Elm St, Springfield"))
        h.send(b, .setLocation("somewhere"))
        h.send(f, .admit(h.pid("a")))
        h.send(f, .admit(h.pid("b")))
        guard case .admitted(let snap) = h.events(b).last(where: { $0.type == "admitted" }) else { return XCTFail() }
        let aView = snap.members.first { $0.id == h.pid("a") }
        XCTAssertNotNil(aView)
        XCTAssertNil(aView?.location, "members never see another's location")
        XCTAssertNil(aView?.userID, "members never see another's user id")
        let staffView = h.room.seats[h.pid("a")].map { _ in
            h.events(f).compactMap {
                if case .memberJoined(let v) = $0, v.id == h.pid("a") { return v } else { return nil }
            }
        }
        XCTAssertEqual(staffView?.first?.location, "12 Elm St, Springfield")
        XCTAssertEqual(staffView?.first?.userID, UserID("a"))
        XCTAssertFalse(h.audits.contains { $0.reason?.contains("Elm") == true }, "no location in the audit trail")
    }

    func testAdmitAllAdmitsOnlyReadyMembersUpToCapacity() {
        var h = Harness {
            $0.consentVersion = "v1"
            $0.capacity = 2
        }
        let f = h.join("fac", .facilitator)
        let cs = (0..<4).map { h.join("u\($0)", .participant) }
        h.send(cs[0], .acknowledgeConsent(version: "v1"))
        h.send(cs[2], .acknowledgeConsent(version: "v1"))
        h.send(cs[3], .acknowledgeConsent(version: "v1"))
        h.send(f, .admitAll)
        guard case .ack(let ack) = h.events(f).last else { return XCTFail("no ack") }
        XCTAssertEqual(ack.admitted, [h.pid("u0"), h.pid("u2")])
        XCTAssertEqual(h.room.admittedMemberCount, 2)
        XCTAssertEqual(h.room.seats[h.pid("u3")]?.placement, .waiting)
        h.send(f, .admit(h.pid("u3")))
        XCTAssertEqual(h.lastError(f), .roomFull)
        XCTAssertEqual(h.room.seats[h.pid("u3")]?.placement, .waiting)
    }

    func testDenyTellsAndClosesButDoesNotBan() {
        var h = Harness()
        let f = h.join("fac", .facilitator)
        let a = h.join("a", .participant)
        h.send(f, .deny(h.pid("a"), reason: "not on today's list"))
        XCTAssertEqual(h.closed[a], .denied)
        XCTAssertTrue(h.events(a).contains(.denied(reason: "not on today's list")))
        XCTAssertNil(h.room.seat(ofUser: UserID("a")))
        XCTAssertEqual(h.audits.last { $0.action == "deny" }?.reason, "not on today's list")
        let again = h.join("a", .participant)
        XCTAssertNil(h.closed[again])
        XCTAssertEqual(h.room.seat(ofUser: UserID("a"))?.placement, .waiting)
    }

    func testDenyOnlyAppliesToTheWaitingRoom() {
        var (h, f, members) = Harness.groupInSession(1)
        h.send(f, .deny(h.pid("u0"), reason: nil))
        XCTAssertEqual(h.lastError(f), .invalidTarget)
        XCTAssertNil(h.closed[members[0]])
    }

    func testSendBackToWaitingRoom() {
        var (h, f, members) = Harness.groupInSession(2)
        _ = h.take(members[1])
        h.send(f, .sendBack(h.pid("u0")))
        XCTAssertEqual(h.room.seats[h.pid("u0")]?.placement, .waiting)
        XCTAssertTrue(h.events(members[1]).contains(.memberLeft(h.pid("u0"), reason: .sentBack)))
        guard case .waiting(let status) = h.events(members[0]).last else { return XCTFail() }
        XCTAssertEqual(status.reason, .sentBack)
        h.send(members[0], .chat(to: .room, text: "hi"))
        XCTAssertEqual(h.lastError(members[0]), .notAdmitted)
        h.send(f, .sendBack(h.pid("fac")))
        XCTAssertEqual(h.lastError(f), .invalidTarget, "staff cannot be sent back")
    }

    func testMessageToWaitingRoomReachesOnlyWaitingMembers() {
        var (h, f, members) = Harness.groupInSession(1)
        let w = h.join("w", .participant)
        _ = h.take(members[0])
        h.send(f, .messageWaitingRoom("We start in 5 minutes"))
        XCTAssertTrue(
            h.events(w).contains {
                if case .waitingRoomMessage(let t, _) = $0 { return t == "We start in 5 minutes" } else { return false }
            })
        XCTAssertTrue(h.events(members[0]).isEmpty)
        XCTAssertEqual(h.audits.last?.action, "message-waiting-room")
        XCTAssertNil(h.audits.last?.reason, "the text is not audited")
    }

    func testLockedRoomRefusesNewArrivalsButNotStaffOrHeldSeats() {
        var (h, f, members) = Harness.groupInSession(1)
        h.send(f, .setLocked(true))
        XCTAssertTrue(h.room.locked)
        let late = h.join("late", .participant)
        XCTAssertEqual(h.lastError(late), .roomLocked)
        XCTAssertEqual(h.closed[late], .roomLocked)
        XCTAssertEqual(h.audits.last?.outcome, .refused(.roomLocked))
        let co = h.join("co", .cofacilitator)
        XCTAssertNil(h.closed[co])
        h.drop(members[0])
        h.advance(10_000)
        let back = ConnectionID(99)
        h.resume(back, "u0", lastSeq: 0)
        XCTAssertNil(h.closed[back])
        XCTAssertEqual(h.room.seat(of: back)?.placement, .room)
        h.send(f, .setLocked(false))
        let later = h.join("later", .participant)
        XCTAssertNil(h.closed[later])
    }

    func testWaitingRoomOffAdmitsAutomaticallyWhenStaffPresentAndReady() {
        var h = Harness {
            $0.waitingRoom = false
            $0.consentVersion = "v1"
        }
        let a = h.join("a", .participant)
        XCTAssertEqual(h.room.seats[h.pid("a")]?.placement, .waiting, "no staff yet")
        h.join("fac", .facilitator)
        XCTAssertEqual(h.room.seats[h.pid("a")]?.placement, .waiting, "consent still missing")
        h.send(a, .acknowledgeConsent(version: "v1"))
        XCTAssertEqual(h.room.seats[h.pid("a")]?.placement, .room)
        XCTAssertTrue(h.audits.contains { $0.action == "admit" && $0.actor == nil })
    }
}

final class WaitingRoomCapTests: XCTestCase {
    func testArrivalsBeyondTheWaitingRoomCapAreTurnedAway() {
        var h = Harness { $0.maxWaiting = 2 }
        h.join("a", .participant)
        h.join("b", .participant)
        let c = h.join("c", .participant)
        XCTAssertEqual(h.lastError(c), .waitingRoomFull)
        XCTAssertEqual(h.closed[c], .waitingRoomFull)
        XCTAssertNil(h.room.seat(ofUser: UserID("c")))
        XCTAssertEqual(h.audits.last?.outcome, .refused(.waitingRoomFull))
        let f = h.join("fac", .facilitator)
        XCTAssertNil(h.closed[f], "staff never wait")
    }
}

final class SessionWindowTests: XCTestCase {
    func testARoomCreatedAheadWaitsForItsOpeningAndEndsAtItsClose() {
        var engine = Engine()
        let room = RoomID("scheduled")
        var settings = RoomSettings()
        settings.consentVersion = "v2"
        settings.consentText = "What is said in group stays in group."
        settings.opensAt = Instant(milliseconds: 10_000)
        settings.closesAt = Instant(milliseconds: 20_000)
        let created = engine.createRoom(room, settings: settings, at: Instant(milliseconds: 1_000))!
        XCTAssertTrue(created.contains(.schedule(TimerID(room: room, kind: .opens), at: Instant(milliseconds: 10_000))))
        XCTAssertTrue(
            created.contains(.schedule(TimerID(room: room, kind: .closes), at: Instant(milliseconds: 20_000))))
        XCTAssertNil(engine.createRoom(room, settings: settings, at: Instant(milliseconds: 1_001)), "already open")

        let staff = Identity(userID: UserID("f"), role: .facilitator, alias: "F")
        let patient = Identity(userID: UserID("p"), role: .participant, alias: "P")
        _ = engine.connect(
            ConnectionID(1), room: room, identity: staff, credential: .init(secret: "s", hash: "h1"),
            at: Instant(milliseconds: 2_000))
        let arrival = engine.connect(
            ConnectionID(2), room: room, identity: patient, credential: .init(secret: "s", hash: "h2"),
            at: Instant(milliseconds: 3_000))
        guard
            case .send(let m, _)? = arrival.first(where: {
                if case .send(let m, _) = $0 { return m.event.type == "welcome" } else { return false }
            }),
            case .welcome(let w) = m.event
        else { return XCTFail("no welcome") }
        XCTAssertEqual(w.waiting?.reason, .waitingForOpening)
        XCTAssertEqual(w.waiting?.opensAt, Instant(milliseconds: 10_000))
        XCTAssertEqual(w.waiting?.consentText, "What is said in group stays in group.")
        _ = engine.handle(.acknowledgeConsent(version: "v2"), from: ConnectionID(2), at: Instant(milliseconds: 3_500))
        let early = engine.handle(.admit(ParticipantID(2)), from: ConnectionID(1), at: Instant(milliseconds: 4_000))
        XCTAssertTrue(early.contains(.send(Message(event: .error(.roomNotOpen)), to: [ConnectionID(1)])))
        XCTAssertEqual(engine.rooms[room]?.seats[ParticipantID(2)]?.placement, .waiting)

        let opening = engine.timerFired(TimerID(room: room, kind: .opens), at: Instant(milliseconds: 10_000))
        XCTAssertTrue(engine.rooms[room]!.isOpen)
        XCTAssertTrue(
            opening.contains {
                if case .send(let m, let to) = $0, case .waiting(let s) = m.event {
                    return to == [ConnectionID(2)] && s.reason == .waitingForAdmission
                } else {
                    return false
                }
            })
        _ = engine.handle(.admit(ParticipantID(2)), from: ConnectionID(1), at: Instant(milliseconds: 11_000))
        XCTAssertEqual(engine.rooms[room]?.seats[ParticipantID(2)]?.placement, .room)

        let closing = engine.timerFired(TimerID(room: room, kind: .closes), at: Instant(milliseconds: 20_000))
        XCTAssertTrue(engine.rooms[room]!.isEnded)
        XCTAssertTrue(closing.contains(.close(ConnectionID(2), .ended)))
        XCTAssertTrue(
            closing.contains {
                if case .audit(let r) = $0 { return r.action == "end" && r.actor == nil } else { return false }
            })
    }

    func testARoomsPhaseOnlyMovesForwardFromScheduledToOpenToEnded() {
        var engine = Engine()
        var settings = RoomSettings()
        settings.opensAt = Instant(milliseconds: 10_000)
        let opens = { (room: String) in TimerID(room: RoomID(room), kind: .opens) }
        _ = engine.createRoom(RoomID("a"), settings: settings, at: Instant(milliseconds: 1_000))
        XCTAssertEqual(engine.rooms[RoomID("a")]?.phase, .scheduled)
        XCTAssertFalse(engine.rooms[RoomID("a")]!.isOpen)
        _ = engine.timerFired(opens("a"), at: Instant(milliseconds: 10_000))
        XCTAssertEqual(engine.rooms[RoomID("a")]?.phase, .open)
        XCTAssertEqual(engine.timerFired(opens("a"), at: Instant(milliseconds: 10_001)), [], "opens once")
        _ = engine.endRoom(RoomID("a"), at: Instant(milliseconds: 12_000))
        XCTAssertEqual(engine.rooms[RoomID("a")]?.phase, .ended(Instant(milliseconds: 12_000)))

        // Ended before its opening: the opening timer does not bring it back.
        _ = engine.createRoom(RoomID("b"), settings: settings, at: Instant(milliseconds: 1_000))
        _ = engine.endRoom(RoomID("b"), at: Instant(milliseconds: 2_000))
        XCTAssertEqual(engine.timerFired(opens("b"), at: Instant(milliseconds: 10_000)), [])
        XCTAssertEqual(engine.rooms[RoomID("b")]?.phase, .ended(Instant(milliseconds: 2_000)))
        XCTAssertFalse(engine.rooms[RoomID("b")]!.isOpen)

        // Created after its opening time: open at once.
        _ = engine.createRoom(RoomID("c"), settings: settings, at: Instant(milliseconds: 10_000))
        XCTAssertEqual(engine.rooms[RoomID("c")]?.phase, .open)
    }
}
