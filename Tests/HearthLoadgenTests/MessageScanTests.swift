import XCTest

@testable import hearth_loadgen

/// How the generator finds fields in the server's messages without parsing them
/// (`LoadWorker.find`, `LoadWorker.integer(after:in:_:limit:)`): the first occurrence of the key,
/// wherever it sits, and nothing when the key is absent or cut off.
final class MessageScanTests: XCTestCase {
    private func find(_ key: String, in text: String) -> Int? {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { LoadWorker.find(Array(key.utf8), in: $0.baseAddress!, bytes.count) }
    }

    func testFindsTheFirstOccurrenceOfAKey() {
        let chat =
            #"{"type":"chat","seq":10,"message":{"id":"m1","seq":10,"from":"p2","fromAlias":"s2","to":"room","text":"lg|0|2|7|123|x","deleted":false}}"#
        let expected = Array(chat.utf8).firstIndex(of: UInt8(ascii: "|")).map { $0 - 10 }
        XCTAssertEqual(find(#""text":"lg|"#, in: chat), expected)
        XCTAssertEqual(find(#""seq":"#, in: chat), 15)
        XCTAssertNil(find(#""text":"lb|"#, in: chat))
        // The key's last byte elsewhere first, and a near miss before the match.
        XCTAssertEqual(find(#""text":"lg|"#, in: #"a|b"text":"lh|"text":"lg|"#), 14)
        // At the very start and at the very end.
        XCTAssertEqual(find("ab|", in: "ab|cd"), 0)
        XCTAssertEqual(find("ab|", in: "cdab|"), 2)
        // Cut off, shorter than the key, empty.
        XCTAssertNil(find("ab|", in: "cdab"))
        XCTAssertNil(find("ab|", in: "b|"))
        XCTAssertNil(find("ab|", in: ""))
    }

    func testIntegerAfterAKeyWithinTheLimit() {
        let bytes = Array(#"{"type":"hand","seq":4321,"member":"p3"}"#.utf8)
        let key = Array(#""seq":"#.utf8)
        bytes.withUnsafeBufferPointer { b in
            XCTAssertEqual(LoadWorker.integer(after: key, in: b.baseAddress!, b.count, limit: 40), 4321)
            // The key must lie within the first `limit` bytes.
            XCTAssertNil(LoadWorker.integer(after: key, in: b.baseAddress!, b.count, limit: 18))
        }
        Array(#"{"seq":"x"}"#.utf8).withUnsafeBufferPointer { b in
            XCTAssertNil(LoadWorker.integer(after: key, in: b.baseAddress!, b.count, limit: 40))
        }
    }
}
