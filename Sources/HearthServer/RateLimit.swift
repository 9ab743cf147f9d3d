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

/// Per-connection command budgets, one bucket per kind, and one signalling bucket per target.
struct CommandBudget: Sendable {
    private var buckets: [CommandKind: TokenBucket]
    /// Signals to each member: one sender cannot fill one recipient's send queue.
    private var signalsTo: [ParticipantID: TokenBucket] = [:]
    private let signalPairBurst: Int
    private let signalPairPerSecond: Double
    /// Consecutive refusals: sustained abuse closes the connection.
    private(set) var strikes = 0

    init(limits: HearthConfiguration.RateLimits, now: Instant) {
        buckets = [
            .chat: TokenBucket(burst: limits.chatBurst, perSecond: limits.chatPerSecond, now: now),
            .signal: TokenBucket(burst: limits.signalBurst, perSecond: limits.signalPerSecond, now: now),
            .control: TokenBucket(burst: limits.controlBurst, perSecond: limits.controlPerSecond, now: now),
        ]
        signalPairBurst = limits.signalPairBurst
        signalPairPerSecond = limits.signalPairPerSecond
    }

    mutating func allow(_ kind: CommandKind, now: Instant) -> Bool {
        record(buckets[kind]!.take(now: now))
    }

    /// A signal to `target`: within both the connection's signalling budget and the budget
    /// for that one recipient. Spends from neither when either is empty.
    mutating func allowSignal(to target: ParticipantID, now: Instant) -> Bool {
        var pair = signalsTo[target] ?? TokenBucket(burst: signalPairBurst, perSecond: signalPairPerSecond, now: now)
        guard pair.available(now: now), buckets[.signal]!.available(now: now) else { return record(false) }
        _ = pair.take(now: now)
        _ = buckets[.signal]!.take(now: now)
        if signalsTo[target] == nil && signalsTo.count >= 16 {
            // Member ids are never reused: forget the recipients whose budget is whole again.
            signalsTo = signalsTo.filter { _, bucket in
                var b = bucket
                return !b.isFull(now: now)
            }
        }
        signalsTo[target] = pair
        return record(true)
    }

    /// A refusal decided outside the budget (e.g. a recipient's full queue) counts as a strike.
    mutating func refused() { _ = record(false) }

    private mutating func record(_ allowed: Bool) -> Bool {
        strikes = allowed ? 0 : strikes + 1
        return allowed
    }
}
