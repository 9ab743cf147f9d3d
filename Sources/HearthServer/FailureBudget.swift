import HearthCore

/// Failures per source address (failed authentications, failed operations API calls) as token
/// buckets: past its budget an address is refused early until its bucket refills. One type for
/// every such budget (`RoomHost`'s failed authentications, the operations API's failed calls). Event-loop thread only.
final class FailureBudget {
    /// Addresses remembered before the ones whose bucket is full again are forgotten.
    static let maxAddresses = 10_000

    private let burst: Int
    private let perSecond: Double
    private var buckets: [String: TokenBucket] = [:]

    init(burst: Int, perSecond: Double) {
        self.burst = burst
        self.perSecond = perSecond
    }

    /// The `authFailureBurst` / `authFailuresPerSecond` budget.
    convenience init(_ limits: HearthConfiguration.RateLimits) {
        self.init(burst: limits.authFailureBurst, perSecond: limits.authFailuresPerSecond)
    }

    /// Whether `address` may still try (an address that never failed may).
    func allows(_ address: String, now: Instant) -> Bool {
        guard var bucket = buckets[address] else { return true }
        defer { buckets[address] = bucket }
        return bucket.available(now: now)
    }

    /// One failure from `address`.
    func spend(_ address: String, now: Instant) {
        var bucket = buckets[address] ?? TokenBucket(burst: burst, perSecond: perSecond, now: now)
        _ = bucket.take(now: now)
        buckets[address] = bucket
        if buckets.count > Self.maxAddresses { forgetRecovered(now: now) }
    }

    /// Forgets the addresses whose budget is whole again.
    func forgetRecovered(now: Instant) {
        buckets = buckets.filter { _, bucket in
            var b = bucket
            return !b.isFull(now: now)
        }
    }

    /// Addresses with some of their budget spent.
    var addressCount: Int { buckets.count }
}
