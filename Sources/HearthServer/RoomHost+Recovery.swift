import HearthCore
import HearthStore

extension RoomHost {
    /// The rooms rebuilt from the journal at start.
    struct Recovery {
        var engine: Engine
        var timers: [TimerID: Instant]
        var connectionBase: UInt64
        var entries: Int

        /// A cluster's node starts empty: it rebuilds each room when it claims it
        /// (`RoomHost+Cluster.swift`), with connection ids of its own (`SharedJournal.connectionBase`).
        static func cluster(_ shared: SharedJournal, configuration: HearthConfiguration) -> Recovery {
            Recovery(
                engine: Engine(defaultSettings: roomSettings(configuration)), timers: [:],
                connectionBase: shared.connectionBase, entries: 0)
        }
    }

    /// Replays the journal into a fresh engine. Connections journaled as live did not survive
    /// the restart: each is fed (and journaled) as dropped now, so its seat is held for the
    /// grace period and its resume secret works.
    static func recover(from store: Store, configuration: HearthConfiguration, now: Instant) throws -> Recovery {
        var engine = Engine(defaultSettings: roomSettings(configuration))
        let entries = try store.replay()
        let result = JournalEntry.replay(entries, into: &engine)
        var timers = result.timers
        for connection in result.connections {
            guard let room = engine.room(of: connection) else { continue }
            let input = Engine.Input.disconnected(connection)
            if let entry = JournalEntry(input, room: room, at: now) { store.append(entry) }
            for effect in engine.apply(input, at: now) {
                switch effect {
                case .schedule(let timer, let at): timers[timer] = at
                case .cancel(let timer): timers[timer] = nil
                case .audit(let record): store.append(record)
                case .attendance(let record): store.append(record)
                case .roomEnded(let room, let at): store.markEnded(room, at: at)
                case .send, .close, .resumeRefused: break
                }
            }
        }
        // Rooms that ended before the crash but whose end was never recorded.
        let marked = try store.endedRooms()
        for (id, room) in engine.rooms {
            if case .ended(let at) = room.phase, marked[id] == nil { store.markEnded(id, at: at) }
        }
        return Recovery(
            engine: engine, timers: timers, connectionBase: result.maxConnectionID + 1, entries: result.entries)
    }
}
