import Foundation
import HearthTransport

/// `/healthz`, `/metrics` and the gauges they report.
extension RoomHost {
    func healthRoute(_ request: HTTPRequest, transport: any ShellTransport) -> HTTPReply {
        // HEAD is answered as GET would be; the transport sends the headers only.
        switch (request.method == "HEAD" ? "GET" : request.method, request.path) {
        case ("GET", "/healthz"):
            let uptime = Int(Date().timeIntervalSince(startedAt))
            // A backlogged store refuses new joins: 503 tells a load balancer to send them elsewhere.
            // A draining node, or one without a live lease, sends new rooms elsewhere the same way.
            let backlogged = !journal.acceptsNewWork || !store.acceptsNewWork
            let outOfCluster = shared.map { draining || !$0.leaseHeld } ?? false
            let accepting = !backlogged && !outOfCluster
            let status = backlogged ? "backlogged" : outOfCluster ? (draining ? "draining" : "lease-lapsed") : "ok"
            let journalState =
                #"{"queued":\#(journal.queued),"limit":\#(store.queueLimit),"status":"\#(backlogged ? "backlogged" : "ok")"}"#
            let cluster =
                shared.map {
                    #","cluster":{"node":"\#($0.node)","lease":"\#($0.leaseHeld ? "held" : "lapsed")","rooms":\#(engine.rooms.count)}"#
                } ?? ""
            // The media server's state, with the SFU mode on; its loss degrades media, not the node.
            let sfuState = sfu.map { #","sfu":"\#($0.isUp ? "up" : "down")""# } ?? ""
            let body =
                #"{"status":"\#(status)","version":"\#(version)","uptimeSeconds":\#(uptime),"connections":\#(connections.count),"rooms":\#(engine.rooms.count),"journal":\#(journalState)\#(sfuState)\#(cluster)}"#
            return .response(HTTPResponse(status: accepting ? 200 : 503, contentType: "application/json", text: body))
        case ("GET", "/metrics"):
            updateGauges(transport)
            return .response(
                HTTPResponse(status: 200, contentType: "text/plain; version=0.0.4", body: metrics.exposition()))
        default:
            return .response(
                HTTPResponse(
                    status: 404, contentType: "application/json",
                    text: #"{"code":"not-found","message":"No such endpoint."}"#))
        }
    }

    func updateGauges(_ transport: any ShellTransport) {
        lastGaugeUpdate = Self.now()
        metrics.connections.record(transport.openSessionCount)
        var open = 0
        var inRoom = 0
        var waiting = 0
        for room in engine.rooms.values where !room.isEnded {
            open += 1
            let counts = room.seatCounts
            inRoom += counts.inRoom
            waiting += counts.waiting
        }
        metrics.rooms.record(open)
        metrics.membersInRoom.record(inRoom)
        metrics.membersWaiting.record(waiting)
        metrics.journalQueued.record(journal.queued)
        if let sfu { metrics.sfuUp.record(sfu.isUp ? 1 : 0) }
        metrics.addressesConnected.record(slots.addressCount)
        metrics.addressesFailingAuthentication.record(authFailures.addressCount)
        metrics.sendQueueDrops.increment(by: Int(transport.counters.queueOverflowCloses) - reportedDrops)
        reportedDrops = Int(transport.counters.queueOverflowCloses)
        let c = transport.counters
        metrics.transportRefusals([
            ("origin", c.originRejections), ("upgrade", c.upgradeRejections),
            ("request-line", c.unreadableRequestLines), ("http-framing", c.httpFramingRefusals),
        ])
        metrics.transportAccepts(accepted: c.connectionsAccepted, failed: c.acceptFailures, deferred: c.acceptDeferrals)
    }
}
