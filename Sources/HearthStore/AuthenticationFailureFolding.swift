import HearthCore

/// Decides which failed authentications become audit rows of their own and which are folded
/// into summary rows, so a flood of bad credentials cannot fill the six-year audit trail
/// (39,602 rows in 10 s from 24 addresses before it), while every failure is still counted.
///
/// Time is cut into aligned intervals (a minute by default). In each interval:
/// - an address's first `rowsPerAddress` failures are rows (`authenticate`, the reason code
///   and the address), as long as the whole node has written fewer than `rowsPerSecond`
///   such rows in the current second;
/// - an address's further failures (past its own allowance, or past the node's ceiling once it
///   has had a row in the interval) are folded into one summary for that address
///   (`authenticate-summary`: count, reasons, address);
/// - failures past the node's per-second ceiling from an address with no row yet in the
///   interval are folded into one global summary (address `*`): addresses are tracked only
///   once they have had a row, which is what bounds the memory and the summaries.
/// When the interval closes (`close(at:)`, driven by the shell's tick, or the first failure of
/// a later interval) each summary becomes one row, so a summary is written even when the
/// flood stops. The rows a summary counts plus the single rows add up to every failure.
///
/// Bounded: per interval at most `rowsPerSecond` × the interval's seconds single rows, as many
/// address summaries (one per address that had a row), and one global summary.
///
/// A value type with no clock and no I/O: the store holds one under a lock and appends the
/// records it returns.
public struct AuthenticationFailureFolding: Hashable, Sendable {
    public struct Limits: Hashable, Sendable {
        /// Failures per address per interval written as rows of their own.
        public var rowsPerAddress: Int
        /// Single failure rows per second, all addresses together.
        public var rowsPerSecond: Int
        /// Milliseconds per interval; each summary covers one.
        public var intervalMilliseconds: Int64

        public init(rowsPerAddress: Int = 5, rowsPerSecond: Int = 5, intervalMilliseconds: Int64 = 60_000) {
            self.rowsPerAddress = rowsPerAddress
            self.rowsPerSecond = rowsPerSecond
            self.intervalMilliseconds = intervalMilliseconds
        }
    }

    /// The action of a single failed authentication's row.
    public static let action = "authenticate"
    /// The action of a summary row.
    public static let summaryAction = "authenticate-summary"
    /// The room of a summary whose failures named several rooms.
    public static let severalRooms = RoomID("-")
    /// The address of the global summary.
    public static let allAddresses = "*"
    /// Distinct reasons kept per summary; the rest are counted as `other`.
    static let maxReasons = 16

    /// Failures folded into one summary.
    struct Fold: Hashable, Sendable {
        var count = 0
        /// The one room every folded failure named, or `severalRooms`.
        var room: RoomID?
        var reasons: [String: Int] = [:]

        mutating func add(room: RoomID, reason: String) {
            count += 1
            self.room = self.room == nil || self.room == room ? room : AuthenticationFailureFolding.severalRooms
            if reasons[reason] != nil || reasons.count < AuthenticationFailureFolding.maxReasons {
                reasons[reason, default: 0] += 1
            } else {
                reasons["other", default: 0] += 1
            }
        }
    }

    struct Address: Hashable, Sendable {
        var rows = 0
        var fold = Fold()
    }

    public let limits: Limits
    /// The open interval (start / interval length), nil before the first failure.
    private var interval: Int64?
    private var addresses: [String: Address] = [:]
    private var global = Fold()
    private var second: Int64 = .min
    private var rowsThisSecond = 0

    public init(limits: Limits = Limits()) {
        precondition(
            limits.rowsPerAddress > 0 && limits.rowsPerSecond > 0 && limits.intervalMilliseconds > 0,
            "folding limits must be positive")
        self.limits = limits
    }

    /// One failed authentication. Returns the records to append, in order: the summaries of
    /// an interval this failure's time has closed, then the failure's own row unless it was
    /// folded.
    public mutating func record(room: RoomID, reason: String, address: String, at: Instant) -> [AuditRecord] {
        var out = close(at: at)
        let index = Self.floorDiv(at.milliseconds, limits.intervalMilliseconds)
        if interval == nil { interval = index }
        let currentSecond = Self.floorDiv(at.milliseconds, 1000)
        if currentSecond != second {
            second = currentSecond
            rowsThisSecond = 0
        }
        let spent = addresses[address]?.rows
        if let spent, spent >= limits.rowsPerAddress || rowsThisSecond >= limits.rowsPerSecond {
            addresses[address]?.fold.add(room: room, reason: reason)
        } else if rowsThisSecond >= limits.rowsPerSecond {
            global.add(room: room, reason: reason)
        } else {
            rowsThisSecond += 1
            addresses[address, default: Address()].rows += 1
            out.append(
                AuditRecord(
                    at: at, room: room, actor: nil, subject: nil, action: Self.action,
                    outcome: .refused(.authenticationFailed), reason: "\(reason) address:\(address)"))
        }
        return out
    }

    /// The summaries of the open interval if it ended at or before `now` (none otherwise).
    public mutating func close(at now: Instant) -> [AuditRecord] {
        guard let interval, Self.floorDiv(now.milliseconds, limits.intervalMilliseconds) > interval else {
            return []
        }
        return summarize(closedAt: Instant(milliseconds: (interval + 1) * limits.intervalMilliseconds))
    }

    /// The summaries of the open interval now, ended or not (at shutdown).
    public mutating func flush(at now: Instant) -> [AuditRecord] {
        guard let interval else { return [] }
        let end = (interval + 1) * limits.intervalMilliseconds
        return summarize(closedAt: Instant(milliseconds: min(end, now.milliseconds)))
    }

    /// Failures seen and not yet in a row (for tests and metrics).
    public var pendingCount: Int { addresses.values.reduce(global.count) { $0 + $1.fold.count } }

    private mutating func summarize(closedAt at: Instant) -> [AuditRecord] {
        let start = Instant(milliseconds: interval! * limits.intervalMilliseconds)
        var out: [AuditRecord] = []
        for (address, state) in addresses.sorted(by: { $0.key < $1.key }) where state.fold.count > 0 {
            out.append(Self.summary(state.fold, address: address, since: start, at: at))
        }
        if global.count > 0 { out.append(Self.summary(global, address: Self.allAddresses, since: start, at: at)) }
        interval = nil
        addresses = [:]
        global = Fold()
        return out
    }

    /// `address:A count:N since:MS reasons:r1=n1,r2=n2` (reasons by count, then name).
    static func summary(_ fold: Fold, address: String, since: Instant, at: Instant) -> AuditRecord {
        let reasons = fold.reasons.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        return AuditRecord(
            at: at, room: fold.room ?? severalRooms, actor: nil, subject: nil, action: summaryAction,
            outcome: .refused(.authenticationFailed),
            reason: "address:\(address) count:\(fold.count) since:\(since.milliseconds) reasons:\(reasons)")
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }
}
