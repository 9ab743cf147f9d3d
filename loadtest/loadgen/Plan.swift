/// What one generator process plays (set from the command line; shared read-only by workers).
struct Plan: Sendable {
    var host = "127.0.0.1"
    var port = 8443
    var secret = ""
    var roomPrefix = "lg"
    /// Groups played by this process and connections per group (the facilitator included).
    var groups = 10
    var groupSize = 10
    var threads = 1
    /// Connections are opened one after another, `1 / connectRate` apart (open loop).
    var connectRate = 200.0
    var consentVersion: String? = "lg-1"
    var waitingRoom = true
    /// WebRTC mesh burst at admission: offer/answer plus ICE candidates for every pair.
    var mesh = true
    var sdpBytes = 4000
    var icePerPair = 10
    var iceBytes = 200
    /// Steady phase: per-member rates (per second) and sizes.
    /// Steady-phase steps, one per chat rate, each `duration` + `drain` long, after one setup.
    var chatRates = [0.5]
    var chatBytes = 200
    var handRate = 0.0
    /// Per group: facilitator spotlight toggles per second (room-updated to everyone).
    var controlRate = 0.0
    var duration = 20.0
    /// Knee search: stop stepping after the first rate whose chat p99 exceeds this (0: off).
    var p99LimitMs = 0.0
    var drain = 3.0
    var settle = 1.0
    var setupTimeout = 120.0
    /// Control burst after the steady phase: mute-all, then remove one member, in every group,
    /// the groups' intended times spread evenly over `controlSpread` seconds.
    var controlBurst = false
    var controlSpread = 1.0
    var controlTimeout = 10.0
    /// Slow consumers: this many members per group stop reading `slowAfter` seconds into the
    /// steady phase and read again `slowPause` seconds later.
    var slowPerGroup = 0
    var slowAfter = 2.0
    var slowPause = 20.0
    var slowReceiveBuffer = 4096
    /// Source addresses: 127.0.0.(sourceBase ..< sourceBase + sourceCount).
    var sourceBase = 2
    var sourceCount = 16
    var maxConnections = 19_000
    var seed: UInt64 = 1
    var label = "loadgen"

    var connectionsTotal: Int { groups * groupSize }
}
