import XCTest

@testable import HearthTransport

/// The rules a route's own response headers must follow, and the Origin allowlist, checked
/// without a socket (the transport-demo tests in Tests/transport check them on the wire).
final class ResponseHeaderAndOriginTests: XCTestCase {
    func testOrdinaryHeadersAreAllowed() {
        for (name, value) in [
            ("x-content-type-options", "nosniff"), ("Cache-Control", "max-age=60"),
            ("content-security-policy", "default-src 'self'"), ("x-tab", "a\tb"), ("etag", "\"abc\""),
            ("x-empty", ""),
        ] {
            XCTAssertNil(HTTPResponse.headerProblem(name: name, value: value), "\(name): \(value)")
        }
    }

    func testAValueWithALineBreakOrControlCharacterIsRefused() {
        for value in ["a\r\nset-cookie: b", "a\nb", "a\rb", "a\u{0}b", "a\u{7F}b", "a\u{1B}b"] {
            XCTAssertNotNil(HTTPResponse.headerProblem(name: "x-h", value: value), value.debugDescription)
        }
    }

    func testANameThatIsNotATokenIsRefused() {
        for name in ["", "x h", "x:h", "x\r\nh", "x(h)", "é"] {
            XCTAssertNotNil(HTTPResponse.headerProblem(name: name, value: "v"), name.debugDescription)
        }
    }

    func testTheTransportsOwnAndHopByHopHeadersAreRefusedInAnyCase() {
        for name in [
            "content-length", "Content-Type", "transfer-encoding", "Connection", "keep-alive", "proxy-connection",
            "te", "trailer", "Upgrade", "server",
        ] {
            XCTAssertNotNil(HTTPResponse.headerProblem(name: name, value: "x"), name)
        }
    }

    func testResponsesCarryTheirHeadersAndDefaultToNone() {
        XCTAssertTrue(HTTPResponse(status: 200, text: "ok").headers.isEmpty)
        let r = HTTPResponse(status: 200, text: "ok", headers: [("x-a", "1"), ("x-a", "2")])
        XCTAssertEqual(r.headers.map { "\($0.0)=\($0.1)" }, ["x-a=1", "x-a=2"])
    }

    func testAnEmptyListOrAStarAllowsEveryOrigin() {
        for allowed in [[], ["*"], ["https://a.example", "*"]] {
            XCTAssertTrue(Worker.originAllowed("https://evil.example", allowed: allowed), "\(allowed)")
            XCTAssertTrue(Worker.originAllowed(nil, allowed: allowed), "\(allowed)")
        }
    }

    func testAListedOriginMatchesExactlyIgnoringCase() {
        let allowed = ["https://App.example"]
        XCTAssertTrue(Worker.originAllowed("https://app.EXAMPLE", allowed: allowed))
        XCTAssertFalse(Worker.originAllowed("https://app.example:8443", allowed: allowed))
        XCTAssertFalse(Worker.originAllowed("https://evil.example", allowed: allowed))
        XCTAssertFalse(Worker.originAllowed("*", allowed: allowed))
        XCTAssertTrue(Worker.originAllowed(nil, allowed: allowed), "no Origin: not a browser")
    }
}
