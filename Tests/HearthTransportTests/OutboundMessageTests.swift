import XCTest

@testable import HearthTransport

/// Which messages may share a frame: those with no line feed, since a batch joins messages
/// with one ("\n").
final class OutboundMessageTests: XCTestCase {
    func testAMessageWithoutALineFeedMayShareAFrame() {
        XCTAssertTrue(OutboundMessage(#"{"type":"chat","text":"hi"}"#).isBatchable)
        XCTAssertTrue(OutboundMessage([UInt8](repeating: 0x61, count: 4096)).isBatchable)
        XCTAssertTrue(OutboundMessage([0x0B, 0x0D, 0x8A]).isBatchable, "only 0x0A is a line feed")
    }

    func testAMessageWithALineFeedAnywhereGoesAlone() {
        XCTAssertFalse(OutboundMessage("a\nb").isBatchable)
        XCTAssertFalse(OutboundMessage("\nab").isBatchable, "first byte")
        XCTAssertFalse(OutboundMessage("ab\n").isBatchable, "last byte")
        var long = [UInt8](repeating: 0x61, count: 4096)
        long[4095] = 0x0A
        XCTAssertFalse(OutboundMessage(long).isBatchable, "past what a word-sized scan would see at once")
        long[4095] = 0x61
        long[17] = 0x0A
        XCTAssertFalse(OutboundMessage(long).isBatchable)
    }

    func testAnEmptyMessageGoesAlone() {
        XCTAssertFalse(OutboundMessage([UInt8]()).isBatchable)
        XCTAssertFalse(OutboundMessage("").isBatchable)
    }
}
