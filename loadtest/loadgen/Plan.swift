import Synchronization

/// What one generator process plays (set from the command line; shared read-only by workers).
struct Plan: Sendable {
    var host = "127.0.0.1"
    var port = 8443
    var secret = ""
    var roomPrefix = "lg"
    /// Relay mode: the server is a peer relay (loadtest/peers), not hearthd. No token, no hello:
    /// a connection to `/relay/ROOM` is in the room once open, and every chat frame it sends is
    /// relayed verbatim to the whole room (the sender included, as hearthd echoes chat).
    var relay = false
    /// ws:// instead of wss:// (relay mode: the peers' plaintext figures).
    var plain = false
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
    /// Reconnect storm: `stormAt` s into the first steady step (0: no storm) every member of a
    /// `stormGroups` fraction of the groups drops (no close frame) and reconnects over a new TLS
    /// connection after a uniform 0..<`stormJitter` s delay, then resumes. The storm fails if
    /// not everyone is back within `stormTimeout` s.
    var stormAt = 0.0
    var stormGroups = 0.9
    var stormJitter = 0.0
    var stormTimeout = 60.0
    /// A reconnect offers the dropped connection's TLS session (TLS 1.3 resumption with a
    /// ticket, as a browser reconnecting to the same server does); false: full handshakes.
    var stormTLSResume = false
    /// Breakouts (`breakouts` scenario): after the steady phase every facilitator plans this many
    /// breakouts (automatic assignment) and opens them, the groups' intended times spread over
    /// `controlSpread` s; members renegotiate media and chat in their breakout, then the
    /// facilitator closes them all and the whole group renegotiates in the main room (0: off).
    var breakouts = 0
    /// The breakouts phase fails if not every group is back and renegotiated after this long.
    var breakoutTimeout = 60.0
    /// The server's pid (found by its listening port) for its CPU time over the storm; 0: unknown.
    var serverPid: Int32 = 0
    /// Source addresses: 127.0.0.(sourceBase ..< sourceBase + sourceCount).
    var sourceBase = 2
    var sourceCount = 16
    var maxConnections = 19_000
    var seed: UInt64 = 1
    var label = "loadgen"

    var connectionsTotal: Int { groups * groupSize }

    /// Whether group `g` (its global number) storms: the stormed groups are spread evenly,
    /// group g storms when floor((g + 1) f) > floor(g f).
    func storms(_ g: Int) -> Bool {
        guard stormAt > 0 else { return false }
        let f = min(max(stormGroups, 0), 1)
        return Int((Double(g + 1) * f).rounded(.down)) > Int((Double(g) * f).rounded(.down))
    }
}

/// What a process's workers share in a reconnect storm: they start the steady phase together
/// (so the storm's drop instant and the unaffected rooms' chat line up across threads).
final class RunSync: Sendable {
    let workers: Int
    let ready = Atomic<Int>(0)
    let steadyStart = Atomic<UInt64>(0)

    init(workers: Int) { self.workers = workers }
}
