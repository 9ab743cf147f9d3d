import HearthCore

/// Failed authentications per source address, as token buckets: an address past its budget
/// is refused before any work is done (no token verified, no audit row), until the bucket
/// refills.
struct AuthenticationFailures {
    let burst: Int
    let perSecond: Double
    private var buckets: [String: TokenBucket] = [:]

    init(burst: Int, perSecond: Double) {
        self.burst = burst
        self.perSecond = perSecond
    }

    /// Whether `address` may still try to authenticate.
    mutating func allows(_ address: String, now: Instant) -> Bool {
        guard var bucket = buckets[address] else { return true }
        defer { buckets[address] = bucket }
        return bucket.available(now: now)
    }

    /// One failed authentication from `address`.
    mutating func spend(_ address: String, now: Instant) {
        var bucket = buckets[address] ?? TokenBucket(burst: burst, perSecond: perSecond, now: now)
        _ = bucket.take(now: now)
        buckets[address] = bucket
    }

    /// Forgets the addresses whose budget is whole again.
    mutating func sweep(now: Instant) {
        buckets = buckets.filter { _, bucket in
            var b = bucket
            return !b.isFull(now: now)
        }
    }

    /// Addresses with a partly spent budget.
    var count: Int { buckets.count }
}
