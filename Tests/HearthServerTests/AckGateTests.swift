import HearthTransport
import XCTest

@testable import HearthServer

final class AckGateTests: XCTestCase {
    private let a = SessionID(rawValue: 1)
    private let b = SessionID(rawValue: 2)

    func testOnlyInputsWithAnUncommittedEntryHold() {
        XCTAssertTrue(AckGate.mustHold(ticket: 5, committed: 4))
        XCTAssertFalse(AckGate.mustHold(ticket: 5, committed: 5))
        XCTAssertFalse(AckGate.mustHold(ticket: nil, committed: 0), "signalling has no journal entry")
    }

    func testHeldItemsAreReleasedInOrderOnceTheirTicketIsCommitted() {
        var gate = AckGate()
        let ack1 = OutboundMessage(Array("ack1".utf8))
        let ack2 = OutboundMessage(Array("ack2".utf8))
        gate.hold(.ack(ack1, a), ticket: 3)
        gate.hold(.close(a, code: 4001, reason: "left"), ticket: 3)
        gate.hold(.ack(ack2, b), ticket: 4)
        XCTAssertTrue(gate.release(upTo: 2).isEmpty, "nothing committed yet")
        let first = gate.release(upTo: 3)
        XCTAssertEqual(first.count, 2)
        guard case .ack(let m, let s) = first[0] else { return XCTFail("the ack first") }
        XCTAssertTrue(m === ack1)
        XCTAssertEqual(s, a)
        guard case .close(let cs, let code, let reason) = first[1] else { return XCTFail("then the close") }
        XCTAssertEqual([cs.rawValue, UInt64(code)], [a.rawValue, 4001])
        XCTAssertEqual(reason, "left")
        XCTAssertEqual(gate.count, 1)
        let second = gate.release(upTo: 10)
        guard case .ack(let m2, _) = second.first else { return XCTFail("the second ack") }
        XCTAssertTrue(m2 === ack2)
        XCTAssertTrue(gate.isEmpty)
        XCTAssertTrue(gate.release(upTo: 10).isEmpty, "each item once")
    }

    func testAMemberWithAnAckOrMessageHeldWaitsUntilTheLastOfThemIsReleased() {
        var gate = AckGate()
        let copy = OutboundMessage(Array("copy".utf8))
        let ack = OutboundMessage(Array("ack".utf8))
        let later = OutboundMessage(Array("later".utf8))
        gate.hold(.message(copy, a), ticket: 3)
        gate.hold(.ack(ack, a), ticket: 3)
        gate.hold(.close(b, code: 4001, reason: "left"), ticket: 4)
        XCTAssertTrue(gate.isWaiting(a))
        XCTAssertFalse(gate.isWaiting(b), "a held close keeps nothing else waiting")
        gate.holdBehind(.message(later, a))  // after b's close: waits for ticket 4 too
        XCTAssertEqual(gate.release(upTo: 3).map(\.session), [a, a])
        XCTAssertTrue(gate.isWaiting(a), "the later message is still held")
        let rest = gate.release(upTo: 4)
        XCTAssertEqual(rest.map(\.session), [b, a])
        guard case .message(let m, _) = rest.last else { return XCTFail("the later message last") }
        XCTAssertTrue(m === later)
        XCTAssertFalse(gate.isWaiting(a))
    }

    func testDiscardingAMemberForgetsEverythingHeldForThem() {
        var gate = AckGate()
        gate.hold(.message(OutboundMessage(Array("m".utf8)), a), ticket: 2)
        gate.hold(.ack(OutboundMessage(Array("k".utf8)), b), ticket: 2)
        gate.discard(a)
        XCTAssertFalse(gate.isWaiting(a))
        XCTAssertTrue(gate.isWaiting(b))
        XCTAssertEqual(gate.release(upTo: 2).map(\.session), [b])
    }
}
