import XCTest

@testable import HearthWire

final class JSONValueTests: XCTestCase {
    func testObjectsAreWrittenCompactlyWithTheirKeysInOrder() {
        let value = JSONValue.object([
            ("z", .integer(1)), ("a", .string("x")), ("m", .array([.bool(true), .null, .number(0.5)])),
        ])
        XCTAssertEqual(value.text, #"{"z":1,"a":"x","m":[true,null,0.5]}"#)
    }

    func testRealsAreWrittenWithFifteenSignificantDigits() {
        XCTAssertEqual(JSONValue.array([.number(0.07), .number(12.34), .number(1)]).text, "[0.07,12.34,1.0]")
    }

    func testStringsAreEscapedAndMayBeEmptyOrHoldNUL() {
        XCTAssertEqual(JSONValue.array([.string("")]).text, #"[""]"#)
        XCTAssertEqual(JSONValue.array([.string("a\"b\\\n\u{0}é")]).text, #"["a\"b\\\n\u0000é"]"#)
    }

    func testOnlyObjectsAndArraysAreDocuments() {
        // Every body the API writes is an object; jansson writes nothing for a bare scalar.
        XCTAssertEqual(JSONValue.string("x").encoded(), [])
        XCTAssertEqual(JSONValue.integer(1).encoded(), [])
    }

    func testParsingGivesBackWhatWasWritten() {
        let value = JSONValue.object([
            ("id", .string("room-1")), ("n", .integer(-3)), ("x", .number(2.5)), ("ok", .bool(false)),
            ("none", .null), ("list", .array([.object([]), .array([])])), ("text", .string("é\n")),
        ])
        XCTAssertEqual(JSONValue.parse(value.encoded()), value)
        XCTAssertEqual(JSONValue.parse(value.encoded())?["n"], .integer(-3))
    }

    func testParsingRefusesNULInStrings() {
        XCTAssertNil(JSONValue.parse(Array(#"{"a":"x\u0000y"}"#.utf8)))
    }

    func testParsingRefusesInvalidJSONAndDuplicateKeys() {
        XCTAssertNil(JSONValue.parse(Array("{".utf8)))
        XCTAssertNil(JSONValue.parse(Array("".utf8)))
        XCTAssertNil(JSONValue.parse(Array(#"{"a":1,"a":2}"#.utf8)))
        XCTAssertEqual(JSONValue.parse(Array("[1]".utf8)), .array([.integer(1)]))
    }

    func testObjectsCompareByTheirKeysInOrder() {
        XCTAssertNotEqual(
            JSONValue.object([("a", .integer(1)), ("b", .integer(2))]),
            JSONValue.object([("b", .integer(2)), ("a", .integer(1))]))
        XCTAssertNil(JSONValue.integer(1)["a"])
    }
}
