import HearthCore
import XCTest

/// The SFU mode's rules in the engine (docs/protocol.md §11): the room's media mode, `auto`'s
/// switch, and the plan the broker makes Janus follow — who is carried, who may publish, whose
/// audio and video are forwarded, in which space.
final class SFUPlanTests: XCTestCase {
    func mediaState(_ h: Harness, _ c: ConnectionID) -> MediaMode? {
        h.events(c).reversed().lazy.compactMap { event -> MediaMode? in
            switch event {
            case .roomUpdated(let state): return state.media
            case .welcome(let w): return w.room?.room.media
            case .admitted(let room): return room.room.media
            default: return nil
            }
        }.first
    }

    func testAMeshRoomHasNoPlanAndSaysMesh() {
        var (h, f, m) = Harness.groupInSession(3)
        XCTAssertFalse(h.room.usesSFU)
        XCTAssertEqual(h.room.sfuPlan, [:])
        XCTAssertEqual(mediaState(h, f), .mesh)
        XCTAssertEqual(mediaState(h, m[0]), .mesh)
        h.send(f, .admitAll)
        XCTAssertEqual(h.room.sfuPlan, [:])
    }

    func testAnSFURoomCarriesAdmittedConnectedMembersOnly() {
        var (h, f, m) = Harness.groupInSession(2) { $0.media = .sfu }
        let w = h.join("w", .participant)
        XCTAssertEqual(mediaState(h, f), .sfu)
        let plan = h.room.sfuPlan
        XCTAssertEqual(Set(plan.keys), Set([h.pid("fac"), h.pid("u0"), h.pid("u1")]), "waiting members get no media")
        XCTAssertEqual(plan[h.pid("u0")]?.connection, m[0])
        XCTAssertNil(plan[h.pid("w")])
        _ = w
        // A dropped member's held seat has no plan (their media stops until they resume).
        h.drop(m[1])
        XCTAssertNil(h.room.sfuPlan[h.pid("u1")])
        h.resume(ConnectionID(900), "u1", lastSeq: 0)
        XCTAssertEqual(h.room.sfuPlan[h.pid("u1")]?.connection, ConnectionID(900), "a resume is a new connection")
        // Removed, left: gone from the plan. Ended: no plan at all.
        let u0 = h.pid("u0")
        h.send(f, .remove(u0, ban: true, reason: nil))
        XCTAssertNil(h.room.sfuPlan[u0])
        h.send(f, .end)
        XCTAssertEqual(h.room.sfuPlan, [:])
    }

    func testForwardedMediaFollowsTheRosterSoAStaffMuteHoldsInTheMediaPath() {
        var (h, f, m) = Harness.groupInSession(1) { $0.media = .sfu }
        let u0 = h.pid("u0")
        XCTAssertEqual(h.room.sfuPlan[u0]?.audio, false, "nothing is forwarded before the member turns it on")
        h.send(m[0], .setMedia(audio: true, video: true))
        XCTAssertEqual(h.room.sfuPlan[u0].map { [$0.audio, $0.video] }, [true, true])
        h.send(f, .mute(u0, audio: true, video: false))
        XCTAssertEqual(h.room.sfuPlan[u0].map { [$0.audio, $0.video] }, [false, true])
        h.send(f, .askUnmute(u0, audio: true, video: false))
        XCTAssertEqual(h.room.sfuPlan[u0]?.audio, false, "asking does not unmute: the member does")
        h.send(m[0], .setMedia(audio: true, video: nil))
        XCTAssertEqual(h.room.sfuPlan[u0]?.audio, true)
    }

    func testAnObserverPublishesOnlyWithAGrant() {
        var (h, f, _) = Harness.groupInSession(0) { $0.media = .sfu }
        let o = h.join("obs", .observer)
        h.send(f, .admit(h.pid("obs")))
        h.send(o, .setMedia(audio: true, video: true))
        XCTAssertEqual(h.lastError(o), .forbidden)
        XCTAssertEqual(h.room.sfuPlan[h.pid("obs")]?.publish, false)
        h.send(f, .grant(h.pid("obs"), media: true, chat: false))
        XCTAssertEqual(h.room.sfuPlan[h.pid("obs")]?.publish, true)
        XCTAssertEqual(h.room.sfuPlan[h.pid("fac")]?.publish, true)
    }

    func testEachBreakoutIsItsOwnSpace() {
        var (h, f, _) = Harness.groupInSession(4) { $0.media = .sfu }
        h.send(
            f,
            .planBreakouts(
                [
                    BreakoutPlanEntry(name: "A", members: [h.pid("u0"), h.pid("u1")]),
                    BreakoutPlanEntry(name: "B", members: [h.pid("u2"), h.pid("u3")]),
                ], automatic: false))
        h.send(f, .openBreakouts(durationSeconds: nil, warningSeconds: nil))
        let plan = h.room.sfuPlan
        XCTAssertNil(plan[h.pid("fac")]?.space)
        XCTAssertEqual(plan[h.pid("u0")]?.space, plan[h.pid("u1")]?.space)
        XCTAssertNotNil(plan[h.pid("u0")]?.space)
        XCTAssertNotEqual(plan[h.pid("u0")]?.space, plan[h.pid("u2")]?.space)
        h.send(f, .closeBreakouts)
        XCTAssertTrue(h.room.sfuPlan.values.allSatisfy { $0.space == nil })
    }

    func testAutoSwitchesToSFUAboveTheMeshLimitOnceAndTellsEveryone() {
        var (h, f, m) = Harness.groupInSession(2) {
            $0.media = .auto
            $0.meshLimit = 3
        }
        XCTAssertFalse(h.room.usesSFU, "3 admitted (staff included) fit the mesh")
        XCTAssertEqual(mediaState(h, f), .mesh)
        for c in [f] + m { h.take(c) }
        let late = h.join("u2", .participant)
        XCTAssertFalse(h.room.usesSFU, "a waiting member does not count")
        h.send(f, .admit(h.pid("u2")))
        XCTAssertTrue(h.room.usesSFU)
        for c in [f, m[0], m[1]] {
            XCTAssertEqual(mediaState(h, c), .sfu, "every admitted member is told")
        }
        XCTAssertEqual(mediaState(h, late), .sfu, "the newcomer's snapshot says sfu")
        XCTAssertEqual(h.room.sfuPlan.count, 4)
        // It stays on the SFU when the group shrinks again.
        h.send(m[0], .leave)
        h.send(m[1], .leave)
        XCTAssertTrue(h.room.usesSFU)
        XCTAssertEqual(h.room.sfuPlan.count, 2)
    }
}
