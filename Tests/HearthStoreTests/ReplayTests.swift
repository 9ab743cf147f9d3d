import Foundation
import HearthCore
import XCTest

@testable import HearthStore

/// Drives an `Engine` the way the shell will: each input is applied, and journaled unless
/// it is signalling; timers are kept from the effects; rooms that end are marked.
struct Driver {
    var engine: Engine
    let store: Store
    var now = Instant(milliseconds: 1_700_000_000_000)
    var timers: [TimerID: Instant] = [:]
    var journaled = 0
    var nextConnection: UInt64 = 1

    init(store: Store, defaults: RoomSettings = RoomSettings()) {
        self.store = store
        engine = Engine(defaultSettings: defaults)
    }

    mutating func advance(_ ms: Int64) { now = now + ms }

    @discardableResult
    mutating func run(_ entry: JournalEntry) -> [Effect] {
        let effects = entry.apply(to: &engine)
        store.append(entry)
        journaled += 1
        var closed: [ConnectionID] = []
        for effect in effects {
            switch effect {
            case .schedule(let t, let at): timers[t] = at
            case .cancel(let t): timers[t] = nil
            case .close(let c, _): closed.append(c)
            case .roomEnded(let room, let at): store.markEnded(room, at: at)
            case .send, .audit, .attendance, .resumeRefused: break
            }
        }
        // The transport reports each closed connection gone, as it would after a close.
        for c in closed where engine.room(of: c) != nil {
            run(.disconnected(connection: c, room: entry.room, at: now))
        }
        return effects
    }

    @discardableResult
    mutating func connect(_ room: String, _ user: String, _ role: Role, settings: RoomSettings? = nil) -> ConnectionID {
        let c = ConnectionID(nextConnection)
        nextConnection += 1
        run(
            .connect(
                .init(
                    connection: c, room: RoomID(room),
                    identity: Identity(userID: UserID(user), role: role, alias: user),
                    resumeHash: "hash-\(user)", settings: settings, at: now)))
        return c
    }

    mutating func send(_ c: ConnectionID, _ command: ClientCommand) {
        let room = engine.room(of: c)!
        if let entry = JournalEntry.command(command, from: c, room: room, at: now) {
            run(entry)
        } else {
            _ = engine.handle(command, from: c, at: now)  // signalling: relayed, not journaled
        }
    }

    mutating func drop(_ c: ConnectionID) {
        run(.disconnected(connection: c, room: engine.room(of: c)!, at: now))
    }

    /// Resumes with `hash` (by default the user's first secret) and, as the shell does, a new
    /// secret for the seat: `hash-{user}-{connection}`.
    @discardableResult
    mutating func resume(_ room: String, _ user: String, hash: String? = nil, lastSeq: UInt64) -> ConnectionID {
        let c = ConnectionID(nextConnection)
        nextConnection += 1
        run(
            .resume(
                connection: c, room: RoomID(room), resumeHash: hash ?? "hash-\(user)",
                newResumeHash: "hash-\(user)-\(c.rawValue)", lastSeq: lastSeq, at: now))
        return c
    }

    mutating func fireDueTimers() {
        for (timer, at) in timers.sorted(by: { ($0.value, $0.key.description) < ($1.value, $1.key.description) })
        where at <= now {
            timers[timer] = nil
            run(.timerFired(timer, at: now))
        }
    }
}

final class ReplayTests: XCTestCase {
    /// A scripted session journaled through a real file, replayed into a fresh engine (with
    /// different defaults) from a second `Store` on the same file: the rebuilt rooms equal
    /// the originals, and both engines answer the next inputs identically.
    func testReplayRebuildsTheSameRooms() throws {
        let (store, path) = try openStore(self)
        var d = Driver(store: store)
        var a = RoomSettings()
        a.consentVersion = "v1"
        a.graceMilliseconds = 30_000
        a.capacity = 4
        a.chatHistory = 3

        let fac = d.connect("A", "staff-1", .facilitator, settings: a)
        let sam = d.connect("A", "patient-1", .participant, settings: a)
        let kim = d.connect("A", "patient-2", .participant, settings: a)
        let lee = d.connect("A", "patient-3", .participant, settings: a)
        let gus = d.connect("A", "guest-1", .guest, settings: a)
        let obs = d.connect("A", "observer-1", .observer, settings: a)
        d.advance(1_000)
        for c in [sam, kim, lee] { d.send(c, .acknowledgeConsent(version: "v1")) }
        d.send(gus, .acknowledgeConsent(version: "v0"))  // refused: wrong version
        d.send(gus, .setLocation("home"))
        d.send(fac, .admit(ParticipantID(2)))
        d.advance(500)
        d.send(fac, .admitAll)
        d.send(obs, .acknowledgeConsent(version: "v1"))
        d.send(fac, .admit(ParticipantID(6)))
        d.send(fac, .grant(ParticipantID(6), media: false, chat: true))
        d.advance(2_000)
        d.send(sam, .chat(to: .room, text: "hi all"))
        d.send(kim, .chat(to: .staff, text: "a private worry"))
        d.send(fac, .chat(to: .member(ParticipantID(2)), text: "welcome"))
        d.send(obs, .chat(to: .room, text: "observer note"))
        d.send(sam, .signal(to: ParticipantID(3), kind: .offer, payload: "{\"sdp\":\"x\"}"))
        d.send(sam, .raiseHand)
        d.send(kim, .raiseHand)
        d.send(fac, .lowerHand(ParticipantID(2)))
        d.send(kim, .setMedia(audio: true, video: true))
        d.send(fac, .mute(ParticipantID(3), audio: true, video: false))
        d.send(fac, .muteAll(video: false))
        d.send(fac, .askUnmute(ParticipantID(3), audio: true, video: false))
        d.send(fac, .spotlight(ParticipantID(3)))
        d.send(fac, .setRole(ParticipantID(4), .cofacilitator))
        d.send(sam, .requestHelp)
        d.send(kim, .requestHelp)
        d.send(fac, .acknowledgeHelp(ParticipantID(2)))
        d.send(fac, .deleteChat(MessageID(1)))
        d.send(fac, .updateSettings(SettingsChange(chatPolicy: .staffOnly, selfUnmute: false)))
        d.send(fac, .messageWaitingRoom("starting soon"))
        d.send(sam, .lowerAllHands)  // refused: forbidden
        d.send(fac, .lowerAllHands)
        d.send(fac, .deny(ParticipantID(5), reason: "not invited"))
        d.send(fac, .setLocked(true))
        d.advance(1_000)
        d.connect("A", "patient-4", .participant)  // refused: locked
        d.send(fac, .remove(ParticipantID(3), ban: true, reason: "disruptive"))
        d.advance(1_000)
        d.drop(sam)
        d.advance(5_000)
        let sam2 = d.resume("A", "patient-1", lastSeq: 10)
        d.send(sam2, .chat(to: .staff, text: "back"))
        d.drop(lee)
        d.advance(31_000)
        d.fireDueTimers()  // patient-3's (cofacilitator now) seat expires
        d.send(fac, .sendBack(ParticipantID(2)))
        d.send(fac, .setLocked(false))
        d.drop(sam2)  // held, its grace timer pending at the "restart"

        var b = RoomSettings()
        b.waitingRoom = false
        let bf = d.connect("B", "staff-9", .facilitator, settings: b)
        let bp = d.connect("B", "patient-9", .participant, settings: b)
        d.send(bp, .chat(to: .room, text: "auto-admitted"))
        d.send(bp, .leave)
        d.send(bf, .end)

        let live = d.engine
        XCTAssertEqual(live.rooms.count, 2)
        XCTAssertTrue(live.rooms[RoomID("B")]!.isEnded)
        XCTAssertEqual(live.rooms[RoomID("A")]!.banned, [UserID("patient-2")])
        XCTAssertNil(live.rooms[RoomID("A")]!.seat(ofUser: UserID("patient-3")), "grace expiry did not happen")
        store.flush()

        // "Restart": a second store on the file, a fresh engine with other defaults.
        let reopened = try Store(path: path)
        let entries = try reopened.replay()
        XCTAssertEqual(entries.count, d.journaled)
        XCTAssertFalse(
            entries.contains { entry in
                if case .command(_, _, let c, _) = entry, case .signal = c.command { return true }
                return false
            })
        var rebuilt = Engine(defaultSettings: unusualSettings())
        let result = JournalEntry.replay(entries, into: &rebuilt)
        XCTAssertEqual(result.entries, d.journaled)
        XCTAssertEqual(result.timers, d.timers)
        XCTAssertEqual(result.timers.count, 1)
        XCTAssertEqual(result.maxConnectionID, d.nextConnection - 1)
        XCTAssertEqual(result.connections, [fac, obs])
        XCTAssertEqual(try reopened.endedRooms().keys.sorted(), [RoomID("B")])

        XCTAssertEqual(rebuilt.rooms.keys.sorted(), live.rooms.keys.sorted())
        for (id, original) in live.rooms {
            let room = try XCTUnwrap(rebuilt.rooms[id])
            XCTAssertEqual(room.seats, original.seats, "\(id) seats")
            XCTAssertEqual(room.seq, original.seq, "\(id) seq")
            XCTAssertEqual(room.banned, original.banned, "\(id) banned")
            XCTAssertEqual(room.locked, original.locked, "\(id) locked")
            XCTAssertEqual(room.phase, original.phase, "\(id) phase")
            XCTAssertEqual(room.settings, original.settings, "\(id) settings")
            XCTAssertEqual(room.spotlight, original.spotlight, "\(id) spotlight")
            XCTAssertEqual(room.help, original.help, "\(id) help")
            XCTAssertEqual(room.createdAt, original.createdAt, "\(id) createdAt")
            XCTAssertEqual(room.staffPresent, original.staffPresent, "\(id) staffPresent")
        }
        XCTAssertGreaterThan(live.rooms[RoomID("A")]!.seq, 30)

        // The hidden state (event log, chat history, next ids) matches too: the same next
        // inputs give the same effects in both engines.
        var original = live
        let t = d.now + 1_000
        let next: [JournalEntry] = [
            // The secret the last resume gave (the first one no longer works).
            .resume(
                connection: ConnectionID(100), room: RoomID("A"), resumeHash: "hash-patient-1-\(sam2.rawValue)",
                newResumeHash: "hash-patient-1-100", lastSeq: 0, at: t),
            .connect(
                .init(
                    connection: ConnectionID(101), room: RoomID("A"),
                    identity: Identity(userID: UserID("staff-1"), role: .facilitator, alias: "staff-1"),
                    resumeHash: "hash-new", settings: nil, at: t)),
            .connect(
                .init(
                    connection: ConnectionID(102), room: RoomID("A"),
                    identity: Identity(userID: UserID("patient-5"), role: .participant, alias: "p5"),
                    resumeHash: "hash-p5", settings: nil, at: t)),
            .command(
                connection: ConnectionID(101), room: RoomID("A"), command: JournaledCommand(.admit(ParticipantID(2)))!,
                at: t),
            .command(
                connection: ConnectionID(101), room: RoomID("A"),
                command: JournaledCommand(.chat(to: .room, text: "next"))!, at: t),
            .timerFired(TimerID(room: RoomID("A"), kind: .grace(ParticipantID(2))), at: t + 60_000),
            .connect(
                .init(
                    connection: ConnectionID(103), room: RoomID("B"),
                    identity: Identity(userID: UserID("staff-9"), role: .facilitator, alias: "x"),
                    resumeHash: "hash-x", settings: nil, at: t)),
        ]
        for entry in next {
            XCTAssertEqual(entry.apply(to: &rebuilt), entry.apply(to: &original), "\(entry)")
        }
        let rejoined = original.rooms[RoomID("A")]!
        XCTAssertEqual(rejoined.seat(of: ConnectionID(100))?.id, ParticipantID(2), "resumed with the rotated secret")
        XCTAssertEqual(rejoined.seat(of: ConnectionID(101))?.id, ParticipantID(1))
        XCTAssertEqual(rejoined.seat(of: ConnectionID(102))?.id, ParticipantID(7))  // a refused arrival takes no id
    }

    /// Rotated resume secrets, staff sanctions kept by user and a pending idle timer all come
    /// back from the journal after a restart.
    func testReplayKeepsRotatedSecretsSanctionsAndTheIdleClock() throws {
        let (store, path) = try openStore(self)
        var defaults = RoomSettings()
        defaults.idleCloseMilliseconds = 60_000
        defaults.graceMilliseconds = 10_000
        defaults.selfUnmute = false
        var d = Driver(store: store, defaults: defaults)

        // Room A: a member resumes twice (the secret changes each time), is demoted and muted,
        // leaves; the facilitator stays, held across the restart.
        let fac = d.connect("A", "staff-1", .facilitator, settings: defaults)
        let sam = d.connect("A", "patient-1", .participant, settings: defaults)
        d.send(fac, .admit(ParticipantID(2)))
        d.drop(sam)
        let sam2 = d.resume("A", "patient-1", lastSeq: 0)
        XCTAssertNotNil(d.engine.rooms[RoomID("A")]?.seat(of: sam2))
        d.drop(sam2)
        let stale = d.resume("A", "patient-1", lastSeq: 0)  // the first secret: spent
        XCTAssertNil(d.engine.rooms[RoomID("A")]?.seat(of: stale))
        let sam3 = d.resume("A", "patient-1", hash: "hash-patient-1-\(sam2.rawValue)", lastSeq: 0)
        XCTAssertNotNil(d.engine.rooms[RoomID("A")]?.seat(of: sam3))
        d.send(fac, .setRole(ParticipantID(2), .observer))
        d.send(fac, .mute(ParticipantID(2), audio: true, video: false))
        d.send(sam3, .leave)

        // Room B: its only member leaves; the idle timer is pending at the restart.
        let b = d.connect("B", "staff-2", .facilitator, settings: defaults)
        d.send(b, .leave)
        let idle = TimerID(room: RoomID("B"), kind: .idle)
        XCTAssertEqual(d.timers[idle], d.now + 60_000)
        // Room C: emptied and idle long enough: it ended by itself before the restart.
        let c = d.connect("C", "staff-3", .facilitator, settings: defaults)
        d.send(c, .leave)
        d.advance(30_000)
        let bDue = d.timers[idle]!
        d.advance(30_000)
        d.fireDueTimers()
        XCTAssertTrue(d.engine.rooms[RoomID("C")]!.isEnded)
        XCTAssertTrue(d.engine.rooms[RoomID("B")]!.isEnded, "due at \(bDue)")
        // Room D: emptied later; still pending at the restart.
        let dd = d.connect("D", "staff-4", .facilitator, settings: defaults)
        d.send(dd, .leave)
        store.flush()

        var rebuilt = Engine(defaultSettings: unusualSettings())
        let result = JournalEntry.replay(try Store(path: path).replay(), into: &rebuilt)
        XCTAssertEqual(result.timers, d.timers)
        XCTAssertEqual(result.timers[TimerID(room: RoomID("D"), kind: .idle)], d.now + 60_000)
        XCTAssertEqual(rebuilt.openRoomCount, 2, "A and D; B and C ended by themselves")
        XCTAssertEqual(rebuilt.rooms[RoomID("D")]?.settings.idleCloseMilliseconds, 60_000, "journaled setting")
        XCTAssertEqual(try Store(path: path).endedRooms().keys.sorted(), [RoomID("B"), RoomID("C")])
        let a = try XCTUnwrap(rebuilt.rooms[RoomID("A")])
        XCTAssertEqual(a.seats, d.engine.rooms[RoomID("A")]!.seats)
        XCTAssertFalse(a.hasSeat(resumeHash: "hash-patient-1"))

        // After the restart: the demoted, muted user comes back as staff left them...
        let t = d.now + 1_000
        var original = d.engine
        let next: [JournalEntry] = [
            .connect(
                .init(
                    connection: ConnectionID(200), room: RoomID("A"),
                    identity: Identity(userID: UserID("patient-1"), role: .participant, alias: "patient-1"),
                    resumeHash: "hash-back", settings: nil, at: t)),
            .command(
                connection: ConnectionID(1), room: RoomID("A"), command: JournaledCommand(.admit(ParticipantID(3)))!,
                at: t),
            .command(
                connection: ConnectionID(1), room: RoomID("A"),
                command: JournaledCommand(.grant(ParticipantID(3), media: true, chat: false))!, at: t),
            .command(
                connection: ConnectionID(200), room: RoomID("A"),
                command: JournaledCommand(.setMedia(audio: true, video: nil))!, at: t),
            // ...and D's idle timer fires on time.
            .timerFired(TimerID(room: RoomID("D"), kind: .idle), at: t + 60_000),
        ]
        for entry in next {
            XCTAssertEqual(entry.apply(to: &rebuilt), entry.apply(to: &original), "\(entry)")
        }
        let back = try XCTUnwrap(rebuilt.rooms[RoomID("A")]?.seat(of: ConnectionID(200)))
        XCTAssertEqual(back.role, .observer)
        XCTAssertEqual(back.audio, false, "still muted by staff, selfUnmute off")
        XCTAssertTrue(rebuilt.rooms[RoomID("D")]!.isEnded)
    }

    /// A `resume` row written before secrets rotated (no `newResumeHash`) still decodes, and
    /// replays as it ran then: the seat keeps its secret.
    func testAResumeJournaledBeforeRotationReplaysWithoutRotating() throws {
        let old = try JournalCoding.decode(
            kind: "resume", body: #"{"resume":{"at":5,"connection":2,"lastSeq":0,"resumeHash":"hash-u","room":"A"}}"#)
        XCTAssertEqual(
            old,
            .resume(
                connection: ConnectionID(2), room: RoomID("A"), resumeHash: "hash-u", newResumeHash: nil, lastSeq: 0,
                at: Instant(milliseconds: 5)))
        let new = JournalEntry.resume(
            connection: ConnectionID(3), room: RoomID("A"), resumeHash: "hash-u", newResumeHash: "hash-v", lastSeq: 0,
            at: Instant(milliseconds: 6))
        XCTAssertEqual(try JournalCoding.decode(kind: "resume", body: try JournalCoding.encode(new)), new)

        var engine = Engine()
        let connect = JournalEntry.connect(
            .init(
                connection: ConnectionID(1), room: RoomID("A"),
                identity: Identity(userID: UserID("u"), role: .facilitator, alias: "u"), resumeHash: "hash-u",
                settings: RoomSettings(), at: Instant(milliseconds: 1)))
        for entry in [
            connect, .disconnected(connection: ConnectionID(1), room: RoomID("A"), at: Instant(milliseconds: 2)),
        ] {
            entry.apply(to: &engine)
        }
        old.apply(to: &engine)
        XCTAssertEqual(engine.rooms[RoomID("A")]?.seat(of: ConnectionID(2))?.id, ParticipantID(1))
        XCTAssertTrue(engine.rooms[RoomID("A")]!.hasSeat(resumeHash: "hash-u"), "not rotated")
        _ = engine.disconnected(ConnectionID(2), at: Instant(milliseconds: 3))
        new.apply(to: &engine)
        XCTAssertEqual(engine.rooms[RoomID("A")]?.seat(of: ConnectionID(3))?.id, ParticipantID(1))
        XCTAssertFalse(engine.rooms[RoomID("A")]!.hasSeat(resumeHash: "hash-u"), "rotated")
        XCTAssertTrue(engine.rooms[RoomID("A")]!.hasSeat(resumeHash: "hash-v"))
    }
}
