import HearthCore

extension RoomHost {
    /// Retention: ended rooms' journals, and audit and attendance records past their age.
    func applyRetention(now: Instant) {
        lastRetention = now
        let r = configuration.retention
        let endedCutoff = now + (-Int64(r.endedRoomHours) * 3_600_000)
        let before = Set(engine.rooms.keys)
        engine.dropEndedRooms(before: endedCutoff)
        // In a cluster the compaction below deletes the rooms' shared rows too: stop holding them.
        if let shared { for room in before.subtracting(engine.rooms.keys) { shared.forget(room) } }
        journal.compact(roomsEndedBefore: endedCutoff)
        store.pruneAudit(before: now + (-Int64(r.auditDays) * 86_400_000))
        store.pruneAttendance(before: now + (-Int64(r.attendanceDays) * 86_400_000))
    }
}
