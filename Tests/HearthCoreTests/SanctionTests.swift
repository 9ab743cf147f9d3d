import HearthCore
import XCTest

/// Staff decisions belong to the user (the token's `sub`), not to the seat: leaving and
/// joining again with the same token within the session sheds none of them.
final class SanctionTests: XCTestCase {
    /// `u0` leaves and comes back with a new seat (same token: same user id and token role).
    private func leaveAndJoinAgain(_ h: inout Harness, _ c: ConnectionID, admitBy f: ConnectionID) -> ConnectionID {
        h.send(c, .leave)
        XCTAssertNil(h.room.seat(ofUser: UserID("u0")), "the seat is gone")
        h.advance(1_000)
        let back = h.join("u0", .participant)
        if h.room.seat(of: back)?.placement == .waiting { h.send(f, .admit(h.pid("u0"))) }
        return back
    }

    func testADemotionToObserverOutlivesLeavingAndJoiningAgain() {
        var (h, f, m) = Harness.groupInSession(1)
        h.send(f, .setRole(h.pid("u0"), .observer))
        let back = leaveAndJoinAgain(&h, m[0], admitBy: f)
        XCTAssertEqual(h.welcome(back)?.you.role, .observer, "not the token's participant")
        XCTAssertEqual(h.room.seat(of: back)?.role, .observer)
        XCTAssertEqual(h.room.seat(of: back)?.placement, .room)
        h.send(back, .setMedia(audio: true, video: nil))
        XCTAssertEqual(h.lastError(back), .forbidden)
        h.send(back, .chat(to: .room, text: "hello"))
        XCTAssertEqual(h.lastError(back), .forbidden)
        XCTAssertEqual(h.audits.last { $0.action == "arrive" }?.subject?.role, .observer)
    }

    func testAPromotionByStaffOutlivesItToo() {
        var (h, f, m) = Harness.groupInSession(1)
        h.send(f, .setRole(h.pid("u0"), .cofacilitator))
        let back = leaveAndJoinAgain(&h, m[0], admitBy: f)
        XCTAssertEqual(h.room.seat(of: back)?.role, .cofacilitator)
        XCTAssertEqual(h.welcome(back)?.you.placement, .room, "staff arrive straight in the room")
    }

    func testAStaffMuteWithSelfUnmuteOffOutlivesLeaving() {
        var (h, f, m) = Harness.groupInSession(1) { $0.selfUnmute = false }
        h.send(m[0], .setMedia(audio: true, video: true))
        h.send(f, .mute(h.pid("u0"), audio: true, video: false))
        let back = leaveAndJoinAgain(&h, m[0], admitBy: f)
        h.send(back, .setMedia(audio: true, video: nil))
        XCTAssertEqual(h.lastError(back), .selfUnmuteDisabled)
        XCTAssertEqual(h.room.seat(of: back)?.audio, false)
        h.send(back, .setMedia(audio: nil, video: true))
        XCTAssertEqual(h.room.seat(of: back)?.video, true, "only what staff muted stays muted")
        // Staff lift it as before.
        h.send(f, .askUnmute(h.pid("u0"), audio: true, video: false))
        h.send(back, .setMedia(audio: true, video: nil))
        XCTAssertEqual(h.room.seat(of: back)?.audio, true)
    }

    func testAMuteAllOutlivesGraceExpiryAndRemoval() {
        var (h, f, m) = Harness.groupInSession(2) { $0.selfUnmute = false }
        h.send(f, .muteAll(video: true))
        // u0's connection drops and the seat expires.
        h.drop(m[0])
        h.advance(h.room.settings.graceMilliseconds)
        h.fireTimers()
        XCTAssertNil(h.room.seat(ofUser: UserID("u0")))
        let back = h.join("u0", .participant)
        h.send(f, .admit(h.pid("u0")))
        h.send(back, .setMedia(audio: true, video: nil))
        XCTAssertEqual(h.lastError(back), .selfUnmuteDisabled)
        // u1 is removed (not banned) and joins again.
        h.send(f, .remove(h.pid("u1"), ban: false, reason: nil))
        let u1 = h.join("u1", .participant)
        h.send(f, .admit(h.pid("u1")))
        h.send(u1, .setMedia(audio: nil, video: true))
        XCTAssertEqual(h.lastError(u1), .selfUnmuteDisabled)
    }

    func testObserverGrantsOutlivesLeaving() {
        var (h, f, _) = Harness.groupInSession(0)
        let o = h.join("o", .observer)
        h.send(f, .admit(h.pid("o")))
        h.send(f, .grant(h.pid("o"), media: true, chat: true))
        h.send(o, .leave)
        let back = h.join("o", .observer)
        h.send(f, .admit(h.pid("o")))
        let seat = h.room.seat(of: back)
        XCTAssertEqual(seat?.mediaGranted, true)
        XCTAssertEqual(seat?.chatGranted, true)
        h.send(back, .setMedia(audio: true, video: true))
        h.send(back, .chat(to: .room, text: "hello"))
        XCTAssertNil(h.lastError(back))
        XCTAssertEqual(h.room.seat(of: back)?.audio, true)
    }

    func testTheIssueScenario_DemotedAndMutedMemberRejoinsStillObserverAndMuted() {
        var (h, f, m) = Harness.groupInSession(1) { $0.selfUnmute = false }
        h.send(m[0], .setMedia(audio: true, video: true))
        h.send(f, .setRole(h.pid("u0"), .observer))
        h.send(f, .mute(h.pid("u0"), audio: true, video: true))
        let back = leaveAndJoinAgain(&h, m[0], admitBy: f)
        XCTAssertEqual(h.room.seat(of: back)?.role, .observer)
        // Even with a media grant, what staff muted stays muted.
        h.send(f, .grant(h.pid("u0"), media: true, chat: false))
        h.send(back, .setMedia(audio: true, video: nil))
        XCTAssertEqual(h.lastError(back), .selfUnmuteDisabled)
    }

    func testNothingIsKeptForAUserStaffNeverSanctionedOrOnceLifted() {
        var (h, f, m) = Harness.groupInSession(2) { $0.selfUnmute = false }
        h.send(f, .mute(h.pid("u1"), audio: true, video: false))
        h.send(f, .askUnmute(h.pid("u1"), audio: true, video: false))
        h.send(m[1], .leave)
        let u1 = h.join("u1", .participant)
        h.send(f, .admit(h.pid("u1")))
        h.send(u1, .setMedia(audio: true, video: nil))
        XCTAssertEqual(h.room.seat(of: u1)?.audio, true)
        // Another user's sanction is not theirs, whatever the alias.
        h.send(f, .setRole(h.pid("u0"), .observer))
        h.send(m[0], .leave)
        let stranger = h.join("u9", .participant, alias: "alias-u0")
        XCTAssertEqual(h.room.seat(of: stranger)?.role, .participant)
    }

    func testATokenRoleStaffChangedIsKeptEvenWhenTheRoomIsLocked() {
        // A demoted staff member comes back as staff left them: locked out like any non-staff.
        var (h, f, _) = Harness.groupInSession(0)
        let co = h.join("co", .cofacilitator)
        h.send(f, .setRole(h.pid("co"), .participant))
        h.send(co, .leave)
        h.send(f, .setLocked(true))
        let back = h.join("co", .cofacilitator)
        XCTAssertEqual(h.closed[back], .roomLocked)
        XCTAssertEqual(h.audits.last?.subject?.role, .participant)
        // Unlocked, they wait like any member, and the decision is still kept.
        h.send(f, .setLocked(false))
        let again = h.join("co", .cofacilitator)
        XCTAssertEqual(h.room.seat(of: again)?.placement, .waiting)
        XCTAssertEqual(h.room.seat(of: again)?.role, .participant)
    }
}
