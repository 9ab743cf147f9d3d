import Dispatch
import Foundation
import Synchronization
import XCTest

@testable import HearthTransport

/// The transport's HTTP pieces that need no socket: how a request's body is delimited (every
/// ambiguous case refused), and the bounded pipe a streamed response body goes through.
final class HTTPTransportTests: XCTestCase {
    func testRequestFramingTable() {
        let cases: [(String, [String], Bool, Worker.BodyFraming)] = [
            ("GET", [], false, .length(0)),
            ("HEAD", [], false, .length(0)),
            ("POST", ["0"], false, .length(0)),
            ("POST", [" 12 "], false, .length(12)),
            ("POST", [], false, .lengthRequired),
            ("PUT", [], false, .lengthRequired),
            ("PATCH", [], false, .lengthRequired),
            ("POST", ["0", "5"], false, .ambiguous),
            ("POST", ["5", "5"], false, .ambiguous),
            ("POST", ["5, 5"], false, .ambiguous),
            ("POST", ["+5"], false, .ambiguous),
            ("POST", ["-1"], false, .ambiguous),
            ("POST", [""], false, .ambiguous),
            ("POST", ["99999999999999999999999"], false, .ambiguous),
            ("POST", ["5"], true, .transferEncoding),
            ("POST", [], true, .transferEncoding),
            ("GET", ["1", "2"], false, .ambiguous),
        ]
        for (method, lengths, te, expected) in cases {
            XCTAssertEqual(
                Worker.bodyFraming(method: method, contentLengths: lengths, hasTransferEncoding: te),
                expected, "\(method) \(lengths) te=\(te)")
        }
    }

    func testTheStreamHandsOverEveryByteInOrderThenTheEnd() {
        let stream = HTTPBodyStream(capacity: 1000)
        let wakes = Atomic<Int>(0)
        stream.attach { wakes.add(1, ordering: .relaxed) }
        guard case .waiting = stream.take(max: 100) else { return XCTFail("nothing written yet") }
        XCTAssertTrue(stream.write(Array("abc".utf8)))
        XCTAssertEqual(wakes.load(ordering: .relaxed), 1, "a waiting consumer is woken once")
        XCTAssertTrue(stream.write(Array("def".utf8)))
        XCTAssertEqual(wakes.load(ordering: .relaxed), 1, "not again while it has not asked")
        guard case .bytes(let got, let last) = stream.take(max: 100) else { return XCTFail() }
        XCTAssertEqual(String(decoding: got, as: UTF8.self), "abcdef")
        XCTAssertFalse(last)
        stream.finish()
        guard case .bytes(let rest, let end) = stream.take(max: 100) else { return XCTFail() }
        XCTAssertTrue(rest.isEmpty && end)
    }

    func testAFullStreamBlocksItsProducerUntilTheConsumerTakes() {
        let stream = HTTPBodyStream(capacity: 10)
        let written = Atomic<Int>(0)
        let producerDone = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            for _ in 0..<5 {
                guard stream.write([UInt8](repeating: 1, count: 8)) else { break }
                written.add(1, ordering: .relaxed)
            }
            stream.finish()
            producerDone.signal()
        }
        // The producer stops after its second write (16 bytes > 10) until something is taken.
        var received = 0
        let deadline = Date().addingTimeInterval(10)
        var finished = false
        while !finished && Date() < deadline {
            switch stream.take(max: 100) {
            case .bytes(let b, let last):
                received += b.count
                finished = last
            case .waiting:
                usleep(1000)
            case .failed:
                return XCTFail("not failed")
            }
        }
        XCTAssertEqual(producerDone.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(received, 40)
        XCTAssertEqual(written.load(ordering: .relaxed), 5)
    }

    func testCancellingReleasesABlockedProducer() {
        let stream = HTTPBodyStream(capacity: 4)
        let result = Atomic<Int>(-1)
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = stream.write([1, 2, 3, 4, 5])  // over capacity: blocks
            result.store(stream.write([6]) ? 1 : 0, ordering: .relaxed)
            done.signal()
        }
        usleep(50_000)  // likely lets the producer block first; the outcome is the same either way
        stream.cancel()
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(result.load(ordering: .relaxed), 0, "writes after a cancel are refused")
        XCTAssertTrue(stream.isCancelled)
    }

    func testAFailedStreamIsReportedAsFailed() {
        let stream = HTTPBodyStream()
        stream.write([1])
        stream.fail()
        guard case .failed = stream.take(max: 10) else { return XCTFail("failed streams cut the response off") }
    }
}
