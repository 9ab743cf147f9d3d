import Foundation
import HearthCore
import XCTest

@testable import HearthStore

/// Breakouts survive a restart exactly as the rest of the room does: rebuilt by replaying
/// the journal (the automatic assignment included), with their timers pending; their
/// attendance rows keep which breakout and its name.
final class BreakoutReplayTests: XCTestCase {
    func testOpenBreakoutsAPullAsideAndTheTimeLimitComeBackFromTheJournal() throws {
        let (store, path) = try openStore(self)
        var d = Driver(store: store)
        let fac = d.connect("A", "staff-1", .facilitator)
        let co = d.connect("A", "staff-2", .cofacilitator)
        var members: [ConnectionID] = []
        for i in 1...6 {
            members.append(d.connect("A", "patient-\(i)", .participant))
            d.send(fac, .admit(ParticipantID(UInt32(2 + i))))
        }
        d.advance(1_000)
        d.send(
            fac,
            .planBreakouts(
                [
                    BreakoutPlanEntry(name: "Pair \"A\"", members: [ParticipantID(3)]),
                    BreakoutPlanEntry(name: "Pair B"),
                    BreakoutPlanEntry(name: "Pair C"),
                ], automatic: true))
        d.send(fac, .openBreakouts(durationSeconds: 600, warningSeconds: 60))
        d.advance(1_000)
        d.send(members[1], .chat(to: .room, text: "in a pair"))
        d.send(co, .pullAside(ParticipantID(5)))
        d.send(fac, .visitBreakout(BreakoutID(2)))
        d.drop(members[2])
        let live = d.engine.rooms[RoomID("A")]!
        XCTAssertTrue(live.breakouts.plannedOpen)
        XCTAssertEqual(live.breakouts.open.count, 4)
        XCTAssertEqual(d.timers.keys.filter { $0.kind == .breakoutsEnd || $0.kind == .breakoutsWarning }.count, 2)
        store.flush()

        let reopened = try Store(path: path)
        var rebuilt = Engine()
        let result = JournalEntry.replay(try reopened.replay(), into: &rebuilt)
        let room = try XCTUnwrap(rebuilt.rooms[RoomID("A")])
        XCTAssertEqual(room.breakouts, live.breakouts, "plan, open breakouts, end time and next id")
        XCTAssertEqual(room.seats, live.seats, "who is where, held seats included")
        XCTAssertEqual(result.timers, d.timers, "the warning and the time limit are still pending")
        // The same next input (the time limit) gives the same effects in both engines.
        var original = d.engine
        let end = JournalEntry.timerFired(TimerID(room: RoomID("A"), kind: .breakoutsEnd), at: d.now + 600_000)
        XCTAssertEqual(end.apply(to: &rebuilt), end.apply(to: &original))
        XCTAssertEqual(rebuilt.rooms[RoomID("A")]!.breakouts.open.map(\.kind), [.pullAside])
    }

    func testBreakoutAttendanceRowsKeepTheBreakoutAndItsName() throws {
        let (store, _) = try openStore(self)
        let party = Party(userID: UserID("u"), id: ParticipantID(3), role: .participant)
        let records = [
            AttendanceRecord(at: Instant(milliseconds: 1), room: RoomID("A"), member: party, kind: .enterRoom),
            AttendanceRecord(
                at: Instant(milliseconds: 2), room: RoomID("A"), member: party, kind: .enterBreakout,
                breakout: BreakoutID(UInt32.max), breakoutName: "Pair \"1\" ünï 😀"),
            AttendanceRecord(
                at: Instant(milliseconds: 3), room: RoomID("A"), member: party, kind: .exitBreakout,
                breakout: BreakoutID(UInt32.max), breakoutName: "Pair \"1\" ünï 😀"),
            AttendanceRecord(at: Instant(milliseconds: 4), room: RoomID("A"), member: party, kind: .exitRoom),
        ]
        for r in records { store.append(r) }
        store.flush()
        XCTAssertEqual(try store.attendanceRecords(room: RoomID("A")), records)
    }
}
