import HearthCore
import XCTest

final class IdentifierTests: XCTestCase {
    func testRoomIDsAreOneToSixtyFourURLSafeCharacters() {
        for valid in ["a", "iop-tue-am", "A_9-z", String(repeating: "x", count: 64)] {
            XCTAssertEqual(RoomID(validating: valid)?.rawValue, valid)
            XCTAssertTrue(RoomID.isValid(valid))
        }
        for invalid in ["", String(repeating: "x", count: 65), "a/b", "a b", "a.b", "é", "a%20", "a\u{0}"] {
            XCTAssertNil(RoomID(validating: invalid), invalid)
        }
        let path = "/v1/rooms/r-1"
        XCTAssertEqual(RoomID(validating: path.dropFirst("/v1/rooms/".count)), RoomID("r-1"), "substrings too")
    }
}
