import HearthCore
import XCTest

/// Drives a whole `Engine` (several rooms) the way the shell does, with a clock that only
/// moves when told.
private struct Node {
    var engine: Engine
    var now = Instant(milliseconds: 1_000_000)
    var timers: [TimerID: Instant] = [:]
    var audits: [AuditRecord] = []
    var attendance: [AttendanceRecord] = []
    var replies: [ConnectionID: [ServerEvent]] = [:]
    var closed: [ConnectionID: CloseReason] = [:]
    var nextConnection: UInt64 = 1

    init(idleCloseMilliseconds: Int64 = 60_000) {
        var settings = RoomSettings()
        settings.idleCloseMilliseconds = idleCloseMilliseconds
        settings.graceMilliseconds = 10_000
        engine = Engine(defaultSettings: settings)
    }

    mutating func apply(_ effects: [Effect]) {
        for effect in effects {
            switch effect {
            case .send(let message, let to): for c in to { replies[c, default: []].append(message.event) }
            case .close(let c, let reason): closed[c] = reason
            case .audit(let r): audits.append(r)
            case .attendance(let r): attendance.append(r)
            case .schedule(let t, let at): timers[t] = at
            case .cancel(let t): timers[t] = nil
            case .roomEnded, .resumeRefused: break
            }
        }
    }

    mutating func advance(_ ms: Int64) { now = now + ms }

    @discardableResult
    mutating func hello(_ room: String, _ user: String, _ role: Role = .facilitator) -> ConnectionID {
        let c = ConnectionID(nextConnection)
        nextConnection += 1
        apply(
            engine.connect(
                c, room: RoomID(room), identity: Identity(userID: UserID(user), role: role, alias: user),
                credential: ResumeCredential(secret: "s-\(c)", hash: "h-\(c)"), at: now))
        return c
    }

    mutating func send(_ c: ConnectionID, _ command: ClientCommand) {
        apply(engine.handle(command, from: c, at: now))
    }

    mutating func fireTimers() {
        for (timer, at) in timers.sorted(by: { ($0.value, $0.key.description) < ($1.value, $1.key.description) })
        where at <= now {
            timers[timer] = nil
            apply(engine.timerFired(timer, at: now))
        }
    }

    /// The shell's check before a `hello` may create a room (`limits.maxRooms`).
    func wouldRefuseAsServerFull(_ room: String, maxRooms: Int) -> Bool {
        engine.rooms[RoomID(room)] == nil && engine.openRoomCount >= maxRooms
    }

    func idleTimer(_ room: String) -> Instant? { timers[TimerID(room: RoomID(room), kind: .idle)] }
}

final class IdleExpiryTests: XCTestCase {
    func testARoomItsMembersLeftEndsByItselfAfterIdleClose() {
        var n = Node(idleCloseMilliseconds: 60_000)
        let f = n.hello("a", "fac")
        let p = n.hello("a", "pat", .participant)
        n.send(f, .admit(ParticipantID(2)))
        XCTAssertNil(n.idleTimer("a"), "not idle while anyone has a seat")
        n.advance(1_000)
        n.send(p, .leave)
        XCTAssertNil(n.idleTimer("a"))
        n.advance(1_000)
        n.send(f, .leave)
        let emptiedAt = n.now
        XCTAssertEqual(n.idleTimer("a"), emptiedAt + 60_000)
        n.advance(59_999)
        n.fireTimers()
        XCTAssertFalse(n.engine.rooms[RoomID("a")]!.isEnded)
        n.advance(1)
        n.fireTimers()
        let room = n.engine.rooms[RoomID("a")]!
        XCTAssertEqual(room.phase, .ended(emptiedAt + 60_000))
        // Audited as an end by the room itself, and attendance is closed: nobody is left in it.
        let end = n.audits.last { $0.action == "end" }
        XCTAssertNil(end?.actor)
        XCTAssertEqual(end?.reason, "idle")
        let ledger = AttendanceLedger(records: n.attendance, until: n.now + 3_600_000)
        XCTAssertEqual(ledger.members.count, 2)
        for member in ledger.members {
            XCTAssertTrue(member.inRoom.allSatisfy { $0.end <= emptiedAt }, "no interval left open")
        }
        // An ended room's id is not reused: a later hello gets room-ended and 4000.
        let late = n.hello("a", "fac")
        XCTAssertEqual(n.replies[late], [.error(.roomEnded)])
        XCTAssertEqual(n.closed[late], .ended)
    }

    func testTwentySixJoinAndLeaveRoomsNoLongerFillTwentyFiveOnceIdle() {
        var n = Node(idleCloseMilliseconds: 1_000)
        let maxRooms = 25
        for i in 0..<25 {
            XCTAssertFalse(n.wouldRefuseAsServerFull("r\(i)", maxRooms: maxRooms))
            let c = n.hello("r\(i)", "fac")
            n.send(c, .leave)
        }
        XCTAssertEqual(n.engine.openRoomCount, 25)
        XCTAssertTrue(n.wouldRefuseAsServerFull("r25", maxRooms: maxRooms), "the 26th before idle expiry")
        n.advance(999)
        n.fireTimers()
        XCTAssertTrue(n.wouldRefuseAsServerFull("r25", maxRooms: maxRooms))
        n.advance(1)
        n.fireTimers()
        XCTAssertEqual(n.engine.openRoomCount, 0, "ended rooms waiting for retention do not count")
        XCTAssertEqual(n.engine.rooms.count, 25, "kept (ended) until retention forgets them")
        XCTAssertFalse(n.wouldRefuseAsServerFull("r25", maxRooms: maxRooms))
        let c = n.hello("r25", "fac")
        XCTAssertNotNil(n.engine.rooms[RoomID("r25")]?.seat(of: c))
        // Retention forgets them; their ids were never counted again.
        n.engine.dropEndedRooms(before: n.now + 1)
        XCTAssertEqual(n.engine.rooms.keys.map(\.rawValue), ["r25"])
    }

    func testAnArrivalStopsTheIdleClockAndTheNextEmptyingRestartsIt() {
        var n = Node(idleCloseMilliseconds: 60_000)
        let f = n.hello("a", "fac")
        n.send(f, .leave)
        let first = n.idleTimer("a")!
        n.advance(30_000)
        let g = n.hello("a", "fac2")
        XCTAssertNil(n.idleTimer("a"), "cancelled when a seat arrives")
        n.advance(40_000)
        // A stale firing of the cancelled timer (e.g. already queued) changes nothing.
        n.apply(n.engine.timerFired(TimerID(room: RoomID("a"), kind: .idle), at: first))
        XCTAssertFalse(n.engine.rooms[RoomID("a")]!.isEnded)
        n.send(g, .leave)
        XCTAssertEqual(n.idleTimer("a"), n.now + 60_000, "a full idle period from the new emptying")
        n.advance(30_000)
        n.apply(n.engine.timerFired(TimerID(room: RoomID("a"), kind: .idle), at: n.now))
        XCTAssertFalse(n.engine.rooms[RoomID("a")]!.isEnded, "not before the deadline")
    }

    func testAHeldSeatKeepsTheRoomOpenUntilItExpires() {
        var n = Node(idleCloseMilliseconds: 60_000)
        let f = n.hello("a", "fac")
        n.apply(n.engine.disconnected(f, at: n.now))
        XCTAssertNil(n.idleTimer("a"), "a held seat is a seat")
        n.advance(10_000)
        n.fireTimers()  // the grace period ends
        XCTAssertNil(n.engine.rooms[RoomID("a")]?.seat(ofUser: UserID("fac")))
        XCTAssertEqual(n.idleTimer("a"), n.now + 60_000)
        n.advance(60_000)
        n.fireTimers()
        XCTAssertTrue(n.engine.rooms[RoomID("a")]!.isEnded)
    }

    func testRoomsCreatedAheadAreIdleOnlyFromTheirOpening() {
        var n = Node(idleCloseMilliseconds: 60_000)
        var settings = n.engine.defaultSettings
        settings.opensAt = n.now + 3_600_000
        n.apply(n.engine.createRoom(RoomID("ahead"), settings: settings, at: n.now)!)
        XCTAssertEqual(n.idleTimer("ahead"), settings.opensAt! + 60_000)
        n.apply(n.engine.createRoom(RoomID("now"), settings: n.engine.defaultSettings, at: n.now)!)
        XCTAssertEqual(n.idleTimer("now"), n.now + 60_000, "a room nobody ever joins ends too")
        // The operator ending an empty room stops its idle clock.
        n.apply(n.engine.endRoom(RoomID("now"), at: n.now)!)
        XCTAssertNil(n.idleTimer("now"))
        n.advance(3_600_000)
        n.fireTimers()
        XCTAssertFalse(n.engine.rooms[RoomID("ahead")]!.isEnded)
        n.advance(60_000)
        n.fireTimers()
        XCTAssertTrue(n.engine.rooms[RoomID("ahead")]!.isEnded)
    }

    func testARefusedFirstArrivalLeavesNoRoomOpenForever() {
        // The arrival that creates the room is turned away (no waiting room places at all):
        // the room it created is empty, so its idle clock runs.
        var n = Node(idleCloseMilliseconds: 60_000)
        n.engine.defaultSettings.maxWaiting = 0
        let c = n.hello("a", "pat", .participant)
        XCTAssertEqual(n.closed[c], .waitingRoomFull)
        XCTAssertEqual(n.idleTimer("a"), n.now + 60_000)
    }

    func testEndingAnOccupiedRoomLeavesNoIdleTimer() {
        var n = Node(idleCloseMilliseconds: 60_000)
        let f = n.hello("a", "fac")
        n.send(f, .end)
        XCTAssertTrue(n.timers.isEmpty)
        XCTAssertEqual(n.engine.openRoomCount, 0)
    }
}
