import XCTest

@testable import HearthTransport

final class RequestLineTests: XCTestCase {
    private func parse(_ text: String) -> RequestLine? {
        Array(text.utf8).withUnsafeBytes { RequestLine($0) }
    }

    func testTheTargetIsKeptExactlyAsSent() {
        for target in ["/v1/rooms/bys%74ander", "/v1/rooms//x", "/v1/rooms/../rooms/x", "/api/v1/rooms/x%2Faudit"] {
            let line = parse("GET \(target) HTTP/1.1\r\n")
            XCTAssertEqual(line, RequestLine(method: "GET", target: target))
            XCTAssertEqual(line.map { String($0.path) }, target)
        }
        XCTAssertEqual(parse("POST /api/v1/rooms?a=%20 HTTP/1.0\n")?.path, "/api/v1/rooms")
        XCTAssertEqual(parse("GET /x?y HTTP/1.1\r\n")?.target, "/x?y")
    }

    func testAnythingButOneHTTP1RequestLineIsRefused() {
        for bad in [
            "GET /x HTTP/1.1", "GET /x HTTP/2.0\r\n", "GET  /x HTTP/1.1\r\n", "GET /x  HTTP/1.1\r\n", "GET /x\r\n",
            " /x HTTP/1.1\r\n", "GET /a b HTTP/1.1\r\n", "GET /x\u{7F} HTTP/1.1\r\n", "GET /é HTTP/1.1\r\n",
            "PRI * HTTP/2.0\r\n", "",
        ] {
            XCTAssertNil(parse(bad), bad)
        }
    }
}
