import HearthCore

/// A token bucket: `burst` tokens, refilled at `perSecond`. Time is an input, as in the engine.
struct TokenBucket: Sendable {
    let burst: Double
    let perSecond: Double
    private(set) var tokens: Double
    private var last: Instant

    init(burst: Int, perSecond: Double, now: Instant) {
        self.burst = Double(burst)
        self.perSecond = perSecond
        self.tokens = Double(burst)
        self.last = now
    }

    /// Takes one token if there is one.
    mutating func take(now: Instant) -> Bool {
        refill(now)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// Whether a token is available, without taking it.
    mutating func available(now: Instant) -> Bool {
        refill(now)
        return tokens >= 1
    }

    /// True once the bucket is full again (its entry can be forgotten).
    mutating func isFull(now: Instant) -> Bool {
        refill(now)
        return tokens >= burst
    }

    private mutating func refill(_ now: Instant) {
        let elapsed = Double(max(0, now - last)) / 1000
        tokens = min(burst, tokens + elapsed * perSecond)
        last = now
    }
}

/// Which rate limit a client command counts against.
enum CommandKind: String, CaseIterable, Sendable {
    case chat, signal, control

    init(_ command: ClientCommand) {
        switch command {
        case .chat, .messageWaitingRoom: self = .chat
        case .signal: self = .signal
        default: self = .control
        }
    }
}

/// Per-connection command budgets, one bucket per kind.
struct CommandBudget: Sendable {
    private var buckets: [CommandKind: TokenBucket]
    /// Consecutive refusals: sustained abuse closes the connection.
    private(set) var strikes = 0

    init(limits: HearthConfiguration.RateLimits, now: Instant) {
        buckets = [
            .chat: TokenBucket(burst: limits.chatBurst, perSecond: limits.chatPerSecond, now: now),
            .signal: TokenBucket(burst: limits.signalBurst, perSecond: limits.signalPerSecond, now: now),
            .control: TokenBucket(burst: limits.controlBurst, perSecond: limits.controlPerSecond, now: now),
        ]
    }

    mutating func allow(_ kind: CommandKind, now: Instant) -> Bool {
        if buckets[kind]!.take(now: now) {
            strikes = 0
            return true
        }
        strikes += 1
        return false
    }
}
