import HearthCore
import HearthWire
import XCTest

@testable import hearth_loadgen

/// The generator's chat is the web app's: sent with a `rid`, so the server acknowledges it once
/// journaled. Its pieces (`LoadWorker.chatEnvelope`) must put the rid and the text back into a
/// message the server reads as that chat, and the byte scan for its `ack`
/// (`LoadWorker.chatAckNumber`) must match the ack exactly as the server encodes it.
final class ChatAckTests: XCTestCase {
    func testTheChatTemplateCarriesTheRidAndTheText() throws {
        let t = LoadWorker.chatEnvelope()
        let text = "lg|3|7|42|123456789|xxxx"
        let bytes = t.prefix + Array("k42".utf8) + t.middle + Array(text.utf8) + t.suffix
        guard case .success(.command(let command, let rid)) = WireDecoder.decode(bytes) else {
            return XCTFail("not a command: \(String(decoding: bytes, as: UTF8.self))")
        }
        XCTAssertEqual(rid, "k42")
        XCTAssertEqual(command, .chat(to: .room, text: text))
    }

    func testTheAckScanReadsTheChatNumberFromTheServersAck() {
        let ack = WireEncoder.encode(
            Message(rid: "k4097", event: .ack(Ack(message: MessageID(9), seq: 31))))
        XCTAssertEqual(number(in: ack), 4097)
        // Another command's ack (the generator's `r`), and a rid with no digits, are no chat's.
        XCTAssertNil(number(in: WireEncoder.encode(Message(rid: LoadWorker.commandRid, event: .ack(Ack())))))
        XCTAssertNil(number(in: Array(#"{"type":"ack","rid":"k"}"#.utf8)))
    }

    /// A run against hearthd fails when a chat's ack never came or an ack named no chat awaited;
    /// a relay's run awaits none, and a storm's drop may lose acks in flight.
    func testTheRunFailsWhenAChatAckIsMissing() {
        var stats = Stats()
        stats.chatSent = 5
        stats.chatAcked = 5
        let hearthd = PlanSummary(Plan())
        XCTAssertTrue(report(stats: stats, failures: [], plan: hearthd, label: "t", wall: 1))
        stats.chatAcked = 4
        XCTAssertFalse(report(stats: stats, failures: [], plan: hearthd, label: "t", wall: 1))
        var storm = Plan()
        storm.stormAt = 5
        stats.stormClients = 1
        (stats.stormResumed, stats.stormBack) = (1, 1)
        XCTAssertTrue(report(stats: stats, failures: [], plan: PlanSummary(storm), label: "t", wall: 1))
        stats = Stats()
        stats.chatSent = 5
        stats.chatAcked = 5
        stats.chatAckUnmatched = 1
        XCTAssertFalse(report(stats: stats, failures: [], plan: hearthd, label: "t", wall: 1))
        var relay = Plan()
        relay.relay = true
        stats.chatAcked = 0
        stats.chatAckUnmatched = 0
        XCTAssertTrue(report(stats: stats, failures: [], plan: PlanSummary(relay), label: "t", wall: 1))
    }

    private func number(in message: [UInt8]) -> UInt32? {
        message.withUnsafeBufferPointer { LoadWorker.chatAckNumber(in: $0.baseAddress!, $0.count) }
    }
}
