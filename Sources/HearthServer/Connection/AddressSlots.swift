import HearthTransport

/// Open connections per source address. A connection takes a slot when it opens and gives it
/// back exactly once, whichever way it ends (the shell closing it or the peer going away).
struct AddressSlots: Sendable {
    /// Per address at most this many (0 = no limit).
    let limit: Int
    private var counts: [String: Int] = [:]
    private var holders: [SessionID: String] = [:]

    init(limit: Int) { self.limit = limit }

    /// Takes a slot for `session`; false when `address` has none left.
    mutating func take(_ session: SessionID, address: String) -> Bool {
        let n = counts[address, default: 0]
        if limit > 0 && n >= limit { return false }
        counts[address] = n + 1
        holders[session] = address
        return true
    }

    /// Gives back the slot `session` holds, if any (a second call does nothing).
    mutating func release(_ session: SessionID) {
        guard let address = holders.removeValue(forKey: session) else { return }
        if let n = counts[address], n > 1 { counts[address] = n - 1 } else { counts[address] = nil }
    }

    /// Addresses holding at least one slot.
    var addressCount: Int { counts.count }
    func connections(from address: String) -> Int { counts[address, default: 0] }
}
