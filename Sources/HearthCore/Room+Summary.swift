/// Read-only summaries of a room for the shell's operators (the operations API, the metrics):
/// what the engine already knows, so no caller counts seats or re-derives admission rules.
extension Room {
    /// How many seats are in the room (staff included) and how many in the waiting room,
    /// connected or held.
    public struct SeatCounts: Hashable, Sendable {
        public var inRoom: Int
        public var waiting: Int

        public init(inRoom: Int, waiting: Int) {
            self.inRoom = inRoom
            self.waiting = waiting
        }
    }

    public var seatCounts: SeatCounts {
        var counts = SeatCounts(inRoom: 0, waiting: 0)
        for seat in seats.values {
            if seat.placement == .room { counts.inRoom += 1 } else { counts.waiting += 1 }
        }
        return counts
    }

    /// When the room ended, or nil while it is open.
    public var endedAt: Instant? {
        if case .ended(let at) = phase { return at }
        return nil
    }

    /// Whether a waiting member meets the room's admission requirements (consent given in the
    /// required version, location given when required): the `ready` staff see in the waiting
    /// room and the operations API shows.
    public func isReadyForAdmission(_ seat: Seat) -> Bool { meetsRequirements(seat) == nil }
}
