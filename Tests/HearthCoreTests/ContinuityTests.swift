import HearthCore
import XCTest

final class ContinuityTests: XCTestCase {
    func testDropHoldsTheSeatAndResumeReplaysEveryMissedEventOnceInOrder() {
        var (h, f, m) = Harness.groupInSession(3)
        h.send(m[0], .setMedia(audio: true, video: true))
        h.send(m[0], .raiseHand)
        h.send(m[2], .setMedia(audio: true, video: nil))
        let seen = h.take(m[0])
        let lastSeq = seen.compactMap(\.seq).max()!
        h.drop(m[0])
        XCTAssertEqual(h.room.seats[h.pid("u0")]?.placement, .room, "seat held")
        XCTAssertEqual(h.timers.count, 1)
        for i in 0..<5 { h.send(m[1], .chat(to: .room, text: "missed \(i)")) }
        h.send(f, .mute(h.pid("u2"), audio: true, video: false))
        h.advance(30_000)
        let back = ConnectionID(100)
        h.resume(back, "u0", lastSeq: lastSeq)
        XCTAssertTrue(h.timers.isEmpty, "grace timer cancelled")
        let got = h.take(back)
        guard case .resumed(let r) = got.first?.event else { return XCTFail("no resumed") }
        XCTAssertFalse(r.gap)
        XCTAssertEqual(r.you.placement, .room)
        let seat = h.room.seats[h.pid("u0")]!
        XCTAssertTrue(seat.audio && seat.video && seat.handRaisedAt != nil, "mute and hand state kept")
        let replayed = got.dropFirst().prefix(r.replayed)
        XCTAssertEqual(r.replayed, 7)
        // Then live events: the room learns the seat is connected again.
        XCTAssertEqual(got.dropFirst(1 + r.replayed).map(\.event.type), ["member-updated"])
        let texts = replayed.compactMap { if case .chat(let c) = $0.event { return c.text } else { return nil } }
        XCTAssertEqual(texts, (0..<5).map { "missed \($0)" })
        let seqs = replayed.compactMap(\.seq)
        XCTAssertEqual(seqs.count, replayed.count)
        XCTAssertEqual(seqs, seqs.sorted())
        XCTAssertEqual(Set(seqs).count, seqs.count, "once each")
        XCTAssertTrue(seqs.allSatisfy { $0 > lastSeq })
        XCTAssertTrue(
            replayed.contains {
                if case .memberUpdated(let v) = $0.event {
                    return v.id == h.pid("u2") && !v.audio
                } else {
                    return false
                }
            })
        XCTAssertTrue(h.audits.contains { $0.action == "resume" })
        // No attendance records for a gap under the grace period.
        let ledger = AttendanceLedger(records: h.attendance, until: h.now)
        XCTAssertEqual(ledger.members.first { $0.userID == UserID("u0") }?.inRoom.count, 1)
    }

    func testResumeFromTheSameSeqTwiceReplaysTheSameEvents() {
        var (h, _, m) = Harness.groupInSession(2)
        let base = h.room.seq
        h.drop(m[0])
        h.send(m[1], .chat(to: .room, text: "a"))
        let c1 = ConnectionID(100)
        h.resume(c1, "u0", lastSeq: base)
        let first = h.take(c1).dropFirst()
        // The new connection drops before processing the replay: resuming again (with the
        // secret `resumed` gave) from the same point replays the same events.
        let c2 = ConnectionID(101)
        h.resume(c2, "u0", lastSeq: base)
        XCTAssertEqual(h.closed[c1], .takenOver)
        let second = h.take(c2).dropFirst()
        XCTAssertEqual(first.map(\.seq), second.map(\.seq))
    }

    func testEveryResumeRotatesTheSecretAndTheOldOneIsRefused() {
        var (h, f, m) = Harness.groupInSession(2)
        h.drop(m[0])
        let c1 = ConnectionID(100)
        let credential = h.credential("u0")
        h.input(.resume(c1, room: h.roomID, resumeHash: "hash-u0", credential: credential, lastSeq: 0, rid: nil))
        guard case .resumed(let r) = h.events(c1).first else { return XCTFail("no resumed") }
        XCTAssertEqual(r.resumeSecret, credential.secret, "the new secret, once, in resumed")
        XCTAssertNotEqual(r.resumeSecret, "secret-u0")
        XCTAssertTrue(h.room.hasSeat(resumeHash: credential.hash))
        XCTAssertFalse(h.room.hasSeat(resumeHash: "hash-u0"))
        h.hashes["u0"] = credential.hash
        // Whoever kept the old secret can take nothing over, live seat or held.
        let thief = ConnectionID(200)
        h.resume(thief, hash: "hash-u0", as: "u0", lastSeq: 0)
        XCTAssertEqual(h.lastError(thief), .resumeFailed)
        XCTAssertNil(h.closed[c1])
        XCTAssertEqual(h.room.seat(ofUser: UserID("u0"))?.connection, c1)
        h.drop(c1)
        let thief2 = ConnectionID(201)
        h.resume(thief2, hash: "hash-u0", as: "u0", lastSeq: 0)
        XCTAssertEqual(h.lastError(thief2), .resumeFailed)
        XCTAssertNil(h.room.seat(ofUser: UserID("u0"))?.connection, "still held")
        // The new secret works, once more.
        let c2 = ConnectionID(101)
        h.resume(c2, "u0", lastSeq: 0)
        XCTAssertEqual(h.room.seat(of: c2)?.id, h.pid("u0"))
        XCTAssertFalse(h.room.hasSeat(resumeHash: credential.hash), "rotated again")
        let thief3 = ConnectionID(202)
        h.resume(thief3, hash: credential.hash, as: "u0", lastSeq: 0)
        XCTAssertEqual(h.lastError(thief3), .resumeFailed)
        XCTAssertEqual(h.room.seat(ofUser: UserID("u0"))?.connection, c2)
        // A refused resume changes nothing in the room.
        XCTAssertTrue(h.events(f).allSatisfy { $0.type != "member-left" })
    }

    func testWrongSecretOrFutureSeqFails() {
        var (h, _, m) = Harness.groupInSession(1)
        h.drop(m[0])
        let c = ConnectionID(100)
        h.resume(c, hash: "nope", as: "u0", lastSeq: 0)
        XCTAssertEqual(h.lastError(c), .resumeFailed)
        XCTAssertNil(h.closed[c], "the client may still say hello")
        h.resume(c, "u0", lastSeq: h.room.seq + 5)
        XCTAssertEqual(h.lastError(c), .resumeFailed)
        XCTAssertNil(h.room.seats[h.pid("u0")]?.connection)
    }

    func testGapBeyondReplayWindowGivesASnapshot() {
        var (h, _, m) = Harness.groupInSession(2) { $0.replayWindow = 4 }
        let base = h.room.seq
        h.drop(m[0])
        for i in 0..<20 { h.send(m[1], .chat(to: .room, text: "\(i)")) }
        let c = ConnectionID(100)
        h.resume(c, "u0", lastSeq: base)
        guard case .resumed(let r) = h.events(c).first else { return XCTFail() }
        XCTAssertTrue(r.gap)
        XCTAssertEqual(r.room?.chat.count, 20)
        XCTAssertEqual(r.replayed, 0)
    }

    func testGraceExpiryMeansLeftAndBackThroughTheWaitingRoom() {
        var (h, f, m) = Harness.groupInSession(2) { $0.graceMilliseconds = 60_000 }
        h.advance(120_000)
        h.drop(m[0])
        let droppedAt = h.now
        h.advance(59_999)
        h.fireTimers()
        XCTAssertNotNil(h.room.seat(ofUser: UserID("u0")))
        h.advance(1)
        h.fireTimers()
        XCTAssertNil(h.room.seat(ofUser: UserID("u0")))
        XCTAssertTrue(
            h.events(m[1]).contains { if case .memberLeft(_, .expired) = $0 { return true } else { return false } })
        XCTAssertEqual(h.audits.last { $0.action == "expire" }?.subject?.userID, UserID("u0"))
        let c = ConnectionID(100)
        h.resume(c, "u0", lastSeq: 0)
        XCTAssertEqual(h.lastError(c), .resumeFailed)
        h.advance(10_000)
        h.join("u0", .participant)
        XCTAssertEqual(h.room.seat(ofUser: UserID("u0"))?.placement, .waiting)
        h.advance(5_000)
        h.send(f, .admit(h.pid("u0")))
        let ledger = AttendanceLedger(records: h.attendance, until: h.now)
        let u0 = ledger.members.first { $0.userID == UserID("u0") }!
        XCTAssertEqual(u0.inRoom.count, 2, "the gap shows")
        XCTAssertEqual(u0.inRoom[0].end, droppedAt, "left when the connection dropped")
        XCTAssertEqual(u0.waitingMilliseconds, 5_000)
    }

    func testSameUserSecondConnectionTakesOverTheSeat() {
        var (h, _, m) = Harness.groupInSession(2)
        h.send(m[0], .raiseHand)
        XCTAssertEqual(h.welcome(m[0])?.resumeSecret, "secret-u0")
        // The second connection (a phone) arrives with its own credential, as the shell makes one per hello.
        let second = ConnectionID(100)
        let identity = Identity(userID: UserID("u0"), role: .participant, alias: "alias-u0")
        h.input(
            .connect(
                second, room: h.roomID, identity: identity,
                credential: ResumeCredential(secret: "secret-phone", hash: "hash-phone"), settings: nil, rid: nil))
        XCTAssertEqual(h.closed[m[0]], .takenOver)
        XCTAssertEqual(h.room.seat(of: second)?.id, h.pid("u0"))
        XCTAssertNotNil(h.room.seat(of: second)?.handRaisedAt)
        XCTAssertEqual(h.welcome(second)?.you.placement, .room, "no waiting room again")
        XCTAssertTrue(h.audits.contains { $0.action == "takeover" })
        // The old connection's late close changes nothing.
        h.drop(m[0])
        XCTAssertEqual(h.room.seat(ofUser: UserID("u0"))?.connection, second)
        XCTAssertNil(h.room.seat(of: m[0]), "the old connection no longer holds the seat")
        // The old resume secret no longer works: the new welcome carried a new one.
        XCTAssertEqual(h.welcome(second)?.resumeSecret, "secret-phone")
        let stale = ConnectionID(101)
        h.resume(stale, hash: "hash-u0", as: "u0", lastSeq: 0)
        XCTAssertEqual(h.lastError(stale), .resumeFailed)
        XCTAssertEqual(h.room.seat(ofUser: UserID("u0"))?.connection, second, "a refused resume changes nothing")
        XCTAssertNil(h.closed[second])
        h.send(second, .lowerHand(nil))
        XCTAssertNil(h.room.seat(of: second)?.handRaisedAt)
    }

    func testLastFacilitatorDropHoldsTheRoomAndResumesIntoALockedRoom() {
        var (h, f, m) = Harness.groupInSession(2)
        h.send(f, .setLocked(true))
        _ = h.take(m[0])
        h.drop(f)
        XCTAssertFalse(h.room.isEnded)
        XCTAssertTrue(
            h.events(m[0]).contains {
                if case .roomUpdated(let s) = $0 { return !s.staffPresent } else { return false }
            })
        XCTAssertEqual(h.room.seats[h.pid("u0")]?.placement, .room, "members stay")
        h.send(m[0], .chat(to: .room, text: "still here"))
        h.send(f, .setLocked(false))  // from a dead connection: answered with an error, nothing changes
        h.advance(20_000)
        let back = ConnectionID(100)
        h.resume(back, "fac", lastSeq: 0)
        XCTAssertEqual(h.room.seat(of: back)?.role, .facilitator)
        XCTAssertTrue(h.room.locked)
        h.send(back, .setLocked(false))
        XCTAssertFalse(h.room.locked, "full rights again")
        XCTAssertTrue(
            h.events(m[0]).contains { if case .roomUpdated(let s) = $0 { return s.staffPresent } else { return false } }
        )
    }

    func testArrivalsWaitWhileTheFacilitatorIsAway() {
        var (h, f, _) = Harness.groupInSession(1) { $0.waitingRoom = false }
        h.drop(f)
        let c = h.join("new", .participant)
        XCTAssertEqual(h.welcome(c)?.waiting?.reason, .waitingForFacilitator)
        let back = ConnectionID(100)
        h.resume(back, "fac", lastSeq: 0)
        XCTAssertEqual(h.room.seat(ofUser: UserID("new"))?.placement, .room, "admitted once staff are back")
    }

    func testWaitingRoomPolicyMovesMembersOutWhenStaffDrop() {
        var (h, f, m) = Harness.groupInSession(2) { $0.facilitatorDrop = .waitingRoom }
        h.drop(f)
        XCTAssertEqual(h.room.seats[h.pid("u0")]?.placement, .waiting)
        guard case .waiting(let s) = h.events(m[0]).last else { return XCTFail() }
        XCTAssertEqual(s.reason, .waitingForFacilitator)
    }

    func testWaitingSeatIsHeldToo() {
        var h = Harness { $0.consentVersion = "v1" }
        let a = h.join("a", .participant)
        h.send(a, .acknowledgeConsent(version: "v1"))
        h.drop(a)
        let c = ConnectionID(100)
        h.resume(c, "a", lastSeq: 0)
        guard case .resumed(let r) = h.events(c).first else { return XCTFail() }
        XCTAssertEqual(r.waiting?.consentAcknowledged, true)
    }
}
