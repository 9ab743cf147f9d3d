import CoreMetrics
import Prometheus

typealias Counter = CoreMetrics.Counter
typealias Gauge = CoreMetrics.Gauge
typealias Timer = CoreMetrics.Timer

/// The server's metrics, through swift-metrics with a Prometheus registry of our own (no
/// global bootstrap, so several servers can live in one test process).
final class ServerMetrics {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    let connections: Gauge
    let rooms: Gauge
    let membersInRoom: Gauge
    let membersWaiting: Gauge
    /// Records waiting for the store's writer (the bound is `limits.journalQueueMaxEntries`).
    let journalQueued: Gauge
    /// 1 while the SFU's media server (Janus) is connected and ready, 0 otherwise (only with `sfu`).
    let sfuUp: Gauge
    let bytesIn: Counter
    let bytesOut: Counter
    let sendQueueDrops: Counter
    /// Cluster: rooms this node claimed, and rooms it found taken over by another node.
    let claims: Counter
    let roomsLost: Counter
    /// `hello`s and `resume`s that waited for a later loop iteration (`limits.joinBudgetMilliseconds`).
    let joinsDeferred: Counter
    /// Closes of joined connections whose `disconnected` waited for a later loop iteration (the same budget).
    let departuresDeferred: Counter
    /// Source addresses with open connections, and with a failed-authentication budget in use.
    let addressesConnected: Gauge
    let addressesFailingAuthentication: Gauge
    let dispatch: Timer
    private var messagesIn: [String: Counter] = [:]
    private var messagesOut: [String: Counter] = [:]
    private var refused: [String: Counter] = [:]
    private var closes: [UInt16: Counter] = [:]
    /// Counters fed from the transport's totals (keyed by label and dimension value), and how
    /// much of each total is already reported.
    private var transportTotals: [String: Counter] = [:]
    private var reportedTransportTotals: [String: UInt64] = [:]

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(5), .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100),
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(25),
        ]
        self.factory = factory
        connections = Gauge(label: "hearth_connections", factory: factory)
        rooms = Gauge(label: "hearth_rooms", factory: factory)
        membersInRoom = Gauge(label: "hearth_members", dimensions: [("placement", "room")], factory: factory)
        membersWaiting = Gauge(label: "hearth_members", dimensions: [("placement", "waiting")], factory: factory)
        journalQueued = Gauge(label: "hearth_journal_queued", factory: factory)
        sfuUp = Gauge(label: "hearth_sfu_up", factory: factory)
        bytesIn = Counter(label: "hearth_bytes_in_total", factory: factory)
        bytesOut = Counter(label: "hearth_bytes_out_total", factory: factory)
        sendQueueDrops = Counter(label: "hearth_send_queue_drops_total", factory: factory)
        claims = Counter(label: "hearth_room_claims_total", factory: factory)
        roomsLost = Counter(label: "hearth_rooms_lost_total", factory: factory)
        joinsDeferred = Counter(label: "hearth_joins_deferred_total", factory: factory)
        departuresDeferred = Counter(label: "hearth_departures_deferred_total", factory: factory)
        addressesConnected = Gauge(
            label: "hearth_tracked_addresses", dimensions: [("table", "connections")], factory: factory)
        addressesFailingAuthentication = Gauge(
            label: "hearth_tracked_addresses", dimensions: [("table", "auth_failures")], factory: factory)
        dispatch = Timer(label: "hearth_engine_dispatch_seconds", factory: factory)
    }

    func messageIn(_ type: String) {
        cached(&messagesIn, type, "hearth_messages_in_total", ("type", type)).increment()
    }

    func messageOut(_ type: String, count: Int) {
        cached(&messagesOut, type, "hearth_messages_out_total", ("type", type)).increment(by: count)
    }

    func refusal(_ reason: String) {
        cached(&refused, reason, "hearth_refused_total", ("reason", reason)).increment()
    }

    func close(_ code: UInt16) {
        cached(&closes, code, "hearth_closes_total", ("code", String(code))).increment()
    }

    /// Reports the transport's refusal totals (`hearth_transport_refusals_total{reason}`):
    /// `origin` (Origin not allowed), `upgrade` (an `Upgrade` other than WebSocket, e.g. h2c),
    /// `request-line` (not readable as sent), `http-framing` (ambiguous or missing length).
    func transportRefusals(_ totals: [(reason: String, total: UInt64)]) {
        for (reason, total) in totals {
            transportTotal("hearth_transport_refusals_total", ("reason", reason), total)
        }
    }

    /// Reports the TLS listener's totals: `hearth_transport_accepts_total{result}`, `accepted`
    /// or `failed` (out of descriptors or memory: the listener pauses until the next tick).
    func transportAccepts(accepted: UInt64, failed: UInt64, deferred: UInt64) {
        transportTotal("hearth_transport_accepts_total", ("result", "accepted"), accepted)
        transportTotal("hearth_transport_accepts_total", ("result", "failed"), failed)
        transportTotal("hearth_transport_accept_pauses_total", ("cause", "budget"), deferred)
    }

    private func transportTotal(_ label: String, _ dimension: (String, String), _ total: UInt64) {
        let key = label + "|" + dimension.1
        let counter = cached(&transportTotals, key, label, dimension)
        let reported = reportedTransportTotals[key, default: 0]
        if total > reported { counter.increment(by: Int(total - reported)) }
        reportedTransportTotals[key] = total
    }

    private func cached<Key: Hashable>(
        _ table: inout [Key: Counter], _ key: Key, _ label: String, _ dimension: (String, String)
    ) -> Counter {
        if let counter = table[key] { return counter }
        let counter = Counter(label: label, dimensions: [dimension], factory: factory)
        table[key] = counter
        return counter
    }

    /// The Prometheus text exposition.
    func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
