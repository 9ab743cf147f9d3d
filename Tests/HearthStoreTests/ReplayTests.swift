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
        let wasEnded = engine.rooms[entry.room]?.isEnded ?? false
        let effects = entry.apply(to: &engine)
        store.append(entry)
        journaled += 1
        var closed: [ConnectionID] = []
        for effect in effects {
            switch effect {
            case .schedule(let t, let at): timers[t] = at
            case .cancel(let t): timers[t] = nil
            case .close(let c, _): closed.append(c)
            case .send, .audit, .attendance: break
            }
        }
        if let room = engine.rooms[entry.room], !wasEnded, case .ended(let at) = room.phase {
            store.markEnded(entry.room, at: at)
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

    @discardableResult
    mutating func resume(_ room: String, _ user: String, lastSeq: UInt64) -> ConnectionID {
        let c = ConnectionID(nextConnection)
        nextConnection += 1
        run(.resume(connection: c, room: RoomID(room), resumeHash: "hash-\(user)", lastSeq: lastSeq, at: now))
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
            .resume(connection: ConnectionID(100), room: RoomID("A"), resumeHash: "hash-patient-1", lastSeq: 0, at: t),
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
        XCTAssertEqual(rejoined.seat(of: ConnectionID(101))?.id, ParticipantID(1))
        XCTAssertEqual(rejoined.seat(of: ConnectionID(102))?.id, ParticipantID(7))  // a refused arrival takes no id
    }
}
