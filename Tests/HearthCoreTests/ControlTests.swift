import HearthCore
import XCTest

final class ControlTests: XCTestCase {
    func testMuteAndSelfUnmuteOff() {
        var (h, f, m) = Harness.groupInSession(2) { $0.selfUnmute = false }
        h.send(m[0], .setMedia(audio: true, video: true))
        XCTAssertEqual(h.room.seats[h.pid("u0")]?.audio, true)
        h.send(f, .mute(h.pid("u0"), audio: true, video: false))
        XCTAssertEqual(h.room.seats[h.pid("u0")]?.audio, false)
        XCTAssertEqual(h.room.seats[h.pid("u0")]?.video, true)
        XCTAssertEqual(h.audits.last?.action, "mute")
        h.send(m[0], .setMedia(audio: true, video: nil))
        XCTAssertEqual(h.lastError(m[0]), .selfUnmuteDisabled)
        XCTAssertEqual(h.room.seats[h.pid("u0")]?.audio, false)
        h.send(f, .askUnmute(h.pid("u0"), audio: true, video: false))
        XCTAssertTrue(h.events(m[0]).contains(.unmuteRequested(audio: true, video: false)))
        XCTAssertEqual(h.room.seats[h.pid("u0")]?.audio, false, "asking does not unmute: they decide")
        h.send(m[0], .setMedia(audio: true, video: nil))
        XCTAssertEqual(h.room.seats[h.pid("u0")]?.audio, true)
    }

    func testSelfUnmuteOnLetsMembersUnmute() {
        var (h, f, m) = Harness.groupInSession(1)
        XCTAssertTrue(h.room.settings.selfUnmute, "the default")
        h.send(m[0], .setMedia(audio: true, video: nil))
        XCTAssertEqual(h.room.seats[h.pid("u0")]?.audio, true)
        h.send(f, .mute(h.pid("u0"), audio: true, video: false))
        XCTAssertNil(h.lastError(f))
        XCTAssertEqual(h.room.seats[h.pid("u0")]?.audio, false, "the mute took effect")
        _ = h.take(m[0])
        h.send(m[0], .setMedia(audio: true, video: nil))
        XCTAssertNil(h.lastError(m[0]), "self-unmute on: not refused")
        XCTAssertEqual(h.room.seats[h.pid("u0")]?.audio, true)
    }

    func testMuteAllMutesOnlyNonStaffAndEveryoneSeesIt() {
        var (h, f, m) = Harness.groupInSession(3)
        h.send(f, .setMedia(audio: true, video: true))
        for c in m { h.send(c, .setMedia(audio: true, video: true)) }
        _ = h.take(m[2])
        h.send(f, .muteAll(video: false))
        for i in 0..<3 { XCTAssertEqual(h.room.seats[h.pid("u\(i)")]?.audio, false) }
        XCTAssertEqual(h.room.seats[h.pid("u0")]?.video, true)
        XCTAssertEqual(h.room.seats[h.pid("fac")]?.audio, true)
        let updates = h.events(m[2]).filter { $0.type == "member-updated" }
        XCTAssertEqual(updates.count, 3)
    }

    func testMuteNeedsAKindAndANonStaffTarget() {
        var (h, f, _) = Harness.groupInSession(1)
        let co = h.join("co", .cofacilitator)
        h.send(f, .mute(h.pid("u0"), audio: false, video: false))
        XCTAssertEqual(h.lastError(f), .invalidArgument)
        h.send(f, .mute(h.pid("co"), audio: true, video: false))
        XCTAssertEqual(h.lastError(f), .invalidTarget)
        h.send(f, .mute(ParticipantID(999), audio: true, video: false))
        XCTAssertEqual(h.lastError(f), .unknownMember)
        _ = co
    }

    func testRemoveWithBanKeepsTheUserOutForTheSession() {
        var (h, f, m) = Harness.groupInSession(2)
        _ = h.take(m[1])
        h.send(f, .remove(h.pid("u0"), ban: true, reason: "safety"))
        XCTAssertEqual(h.closed[m[0]], .banned)
        XCTAssertTrue(h.events(m[0]).contains(.removed(reason: "safety", banned: true)))
        XCTAssertTrue(
            h.events(m[1]).contains { if case .memberLeft(_, .removed) = $0 { return true } else { return false } })
        XCTAssertEqual(h.audits.last { $0.action == "ban" }?.subject?.userID, UserID("u0"))
        // Neither a new token nor the old resume secret brings them back.
        let again = h.join("u0", .participant)
        XCTAssertEqual(h.lastError(again), .banned)
        XCTAssertEqual(h.closed[again], .banned)
        let resumed = ConnectionID(77)
        h.resume(resumed, "u0", lastSeq: 0)
        XCTAssertEqual(h.lastError(resumed), .resumeFailed)
        XCTAssertNil(h.room.seat(ofUser: UserID("u0")))
    }

    func testRemoveWithoutBanAllowsReturnThroughWaitingRoom() {
        var (h, f, m) = Harness.groupInSession(1)
        h.send(f, .remove(h.pid("u0"), ban: false, reason: nil))
        XCTAssertEqual(h.closed[m[0]], .removed)
        h.join("u0", .participant)
        XCTAssertEqual(h.room.seat(ofUser: UserID("u0"))?.placement, .waiting)
    }

    func testRoleChanges() {
        var (h, f, m) = Harness.groupInSession(2)
        let co = h.join("co", .cofacilitator)
        h.send(co, .setRole(h.pid("u0"), .cofacilitator))
        XCTAssertEqual(h.lastError(co), .forbidden, "only a facilitator changes roles")
        XCTAssertEqual(h.audits.last?.outcome, .refused(.forbidden))
        _ = h.take(m[0])
        h.send(f, .setRole(h.pid("u0"), .cofacilitator))
        XCTAssertEqual(h.room.seats[h.pid("u0")]?.role, .cofacilitator)
        guard case .snapshot(let snap) = h.events(m[0]).last(where: { $0.type == "snapshot" }) else {
            return XCTFail("promoted member needs the staff view")
        }
        XCTAssertNotNil(snap.waiting)
        XCTAssertTrue(snap.members.allSatisfy { $0.userID != nil })
        h.send(f, .setRole(h.pid("fac"), .participant))
        XCTAssertEqual(h.lastError(f), .lastFacilitator)
        XCTAssertEqual(h.room.seats[h.pid("fac")]?.role, .facilitator)
        h.send(f, .setRole(h.pid("co"), .facilitator))
        h.send(f, .setRole(h.pid("fac"), .cofacilitator))
        XCTAssertEqual(h.room.seats[h.pid("fac")]?.role, .cofacilitator)
        XCTAssertEqual(h.audits.last?.reason, "facilitator->cofacilitator")
    }

    func testSpotlightAndHands() {
        var (h, f, m) = Harness.groupInSession(3)
        h.send(m[0], .raiseHand)
        h.advance(10)
        h.send(m[1], .raiseHand)
        XCTAssertNotNil(h.room.seats[h.pid("u0")]?.handRaisedAt)
        h.send(m[2], .lowerHand(h.pid("u0")))
        XCTAssertEqual(h.lastError(m[2]), .forbidden)
        h.send(f, .lowerHand(h.pid("u0")))
        XCTAssertNil(h.room.seats[h.pid("u0")]?.handRaisedAt)
        h.send(f, .lowerAllHands)
        XCTAssertNil(h.room.seats[h.pid("u1")]?.handRaisedAt)
        h.send(f, .spotlight(h.pid("u2")))
        XCTAssertEqual(h.room.spotlight, h.pid("u2"))
        XCTAssertTrue(
            h.events(m[0]).contains {
                if case .roomUpdated(let s) = $0 { return s.spotlight == h.pid("u2") } else { return false }
            })
        h.send(f, .spotlight(nil))
        XCTAssertNil(h.room.spotlight)
    }

    func testHelpSignalIsSeenByStaffOnlyAndAcknowledged() {
        var (h, f, m) = Harness.groupInSession(2)
        _ = h.take(m[1])
        h.send(m[0], .requestHelp)
        XCTAssertTrue(
            h.events(f).contains {
                if case .helpRequested(let r) = $0 { return r.id == h.pid("u0") } else { return false }
            })
        XCTAssertFalse(h.events(m[1]).contains { $0.type.hasPrefix("help") })
        XCTAssertEqual(h.audits.last?.action, "help")
        h.send(f, .acknowledgeHelp(h.pid("u0")))
        XCTAssertTrue(h.events(m[0]).contains(.helpAcknowledged(h.pid("u0"), by: h.pid("fac"))))
        XCTAssertFalse(h.events(m[1]).contains { $0.type.hasPrefix("help") })
        XCTAssertEqual(h.audits.last?.action, "acknowledge-help")
        h.send(f, .acknowledgeHelp(h.pid("u0")))
        XCTAssertEqual(h.lastError(f), .invalidTarget, "nothing open to acknowledge")
    }

    func testObserverNeedsAGrantToPublishOrChatToTheRoom() {
        var h = Harness()
        let f = h.join("fac", .facilitator)
        let o = h.join("obs", .observer)
        h.send(f, .admit(h.pid("obs")))
        h.send(o, .setMedia(audio: true, video: nil))
        XCTAssertEqual(h.lastError(o), .forbidden)
        h.send(o, .chat(to: .room, text: "hi"))
        XCTAssertEqual(h.lastError(o), .forbidden)
        h.send(o, .chat(to: .staff, text: "note for staff"))
        XCTAssertEqual(h.events(o).last?.type, "ack")
        h.send(f, .grant(h.pid("obs"), media: true, chat: true))
        h.send(o, .setMedia(audio: true, video: nil))
        XCTAssertEqual(h.room.seats[h.pid("obs")]?.audio, true)
        h.send(o, .chat(to: .room, text: "hello"))
        XCTAssertEqual(h.events(o).last?.type, "ack")
        h.send(f, .grant(h.pid("obs"), media: false, chat: false))
        XCTAssertEqual(h.room.seats[h.pid("obs")]?.audio, false, "revoking media turns it off")
        h.send(f, .grant(h.pid("fac"), media: true, chat: true))
        XCTAssertEqual(h.lastError(f), .invalidTarget)
    }

    func testObserverIsVisibleInEveryRoster() {
        var (h, f, m) = Harness.groupInSession(1)
        h.join("obs", .observer)
        h.send(f, .admit(h.pid("obs")))
        XCTAssertTrue(
            h.events(m[0]).contains {
                if case .memberJoined(let v) = $0 { return v.role == .observer } else { return false }
            })
    }

    func testEndClosesEverythingAndAcceptsNothingMore() {
        var (h, f, m) = Harness.groupInSession(2)
        let w = h.join("w", .participant)
        h.drop(m[1])
        h.advance(5_000)
        h.send(f, .end)
        for c in [f, m[0], w] {
            XCTAssertEqual(h.closed[c], .ended)
            XCTAssertTrue(h.events(c).contains { $0.type == "ended" })
        }
        XCTAssertTrue(h.room.isEnded)
        XCTAssertTrue(h.timers.isEmpty, "grace timers are cancelled")
        let ledger = AttendanceLedger(records: h.attendance, until: h.now)
        XCTAssertTrue(ledger.members.allSatisfy { $0.inRoom.allSatisfy { $0.end <= h.now } })
        XCTAssertEqual(ledger.members.first { $0.userID == UserID("u1") }?.lastLeft, h.now + (-5_000))
        let c = h.join("new", .participant)
        XCTAssertEqual(h.lastError(c), .roomEnded)
        XCTAssertEqual(h.closed[c], .ended)
        let effects = h.engine.apply(.command(.chat(to: .room, text: "x"), from: m[0], rid: nil), at: h.now)
        XCTAssertEqual(effects, [.send(Message(event: .error(.roomEnded)), to: [m[0]])])
    }

    func testEndIsForFacilitatorsOnly() {
        var (h, _, m) = Harness.groupInSession(1)
        let co = h.join("co", .cofacilitator)
        h.send(co, .end)
        XCTAssertEqual(h.lastError(co), .forbidden)
        h.send(m[0], .end)
        XCTAssertEqual(h.lastError(m[0]), .forbidden)
        XCTAssertFalse(h.room.isEnded)
    }

    func testSettingsChangeIsBroadcastAndAudited() {
        var (h, f, m) = Harness.groupInSession(1)
        h.send(f, .updateSettings(SettingsChange()))
        XCTAssertEqual(h.lastError(f), .invalidArgument)
        h.send(f, .updateSettings(SettingsChange(chatPolicy: .off, selfUnmute: false)))
        XCTAssertEqual(h.room.settings.chatPolicy, .off)
        XCTAssertTrue(
            h.events(m[0]).contains {
                if case .roomUpdated(let s) = $0 { return s.chatPolicy == .off && !s.selfUnmute } else { return false }
            })
        XCTAssertEqual(h.audits.last?.reason, "chatPolicy=off selfUnmute=false")
    }
}

final class ControlEdgeTests: XCTestCase {
    func testSendingBackTheSpotlitMemberClearsTheSpotlightForEveryone() {
        var (h, f, m) = Harness.groupInSession(2)
        h.send(m[0], .setMedia(audio: true, video: true))
        h.send(f, .spotlight(h.pid("u0")))
        _ = h.take(m[1])
        h.send(f, .sendBack(h.pid("u0")))
        XCTAssertNil(h.room.spotlight)
        XCTAssertTrue(
            h.events(m[1]).contains {
                if case .roomUpdated(let s) = $0 { return s.spotlight == nil } else { return false }
            })
        XCTAssertEqual(h.room.seats[h.pid("u0")]?.audio, false, "nobody publishes from the waiting room")
    }

    func testDemotionToObserverStopsPublishing() {
        var (h, f, m) = Harness.groupInSession(1)
        h.send(m[0], .setMedia(audio: true, video: true))
        h.send(f, .setRole(h.pid("u0"), .observer))
        XCTAssertEqual(h.room.seats[h.pid("u0")]?.audio, false)
        XCTAssertEqual(h.room.seats[h.pid("u0")]?.video, false)
    }

    func testWireIdsAreCanonical() {
        XCTAssertEqual(ParticipantID(wire: "p7"), ParticipantID(7))
        for bad in ["p07", "p+7", "p", "7", "p-1", "q7"] { XCTAssertNil(ParticipantID(wire: bad), bad) }
        XCTAssertEqual(MessageID(wire: "m12"), MessageID(12))
        for bad in ["m012", "m-0", "m+1"] { XCTAssertNil(MessageID(wire: bad), bad) }
    }
}
