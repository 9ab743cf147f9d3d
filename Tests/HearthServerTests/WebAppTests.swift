import Foundation
import HearthTransport
import XCTest

@testable import HearthServer

/// `/app/`: which file each path gives, the headers a page with health data needs, ETags and
/// 304s, and the paths that must give nothing.
final class WebAppTests: XCTestCase {
    let app = WebApp(files: [
        "app/index.html": Array("<!doctype html><title>Hearth</title>".utf8),
        "app/app.js": Array("export {}".utf8),
        "app/style.css": Array("body{}".utf8),
        "sdk/index.js": Array("export const x = 1".utf8),
        "README.md": Array("not served".utf8),
    ])

    func get(_ path: String, method: String = "GET", headers: [String: String] = [:]) -> HTTPResponse? {
        app.respond(to: HTTPRequest(method: method, path: path, headers: headers))
    }

    func header(_ r: HTTPResponse?, _ name: String) -> String? { r?.headers.first { $0.0 == name }?.1 }

    func testEachPathGivesItsFileWithItsTypeAndTheSecurityHeaders() throws {
        for (path, type, body) in [
            ("/app/", "text/html; charset=utf-8", "<!doctype html><title>Hearth</title>"),
            ("/app/index.html", "text/html; charset=utf-8", "<!doctype html><title>Hearth</title>"),
            ("/app/app.js", "text/javascript; charset=utf-8", "export {}"),
            ("/app/style.css", "text/css; charset=utf-8", "body{}"),
            ("/app/sdk/index.js", "text/javascript; charset=utf-8", "export const x = 1"),
        ] {
            let r = try XCTUnwrap(get(path), path)
            XCTAssertEqual(r.status, 200, path)
            XCTAssertEqual(r.contentType, type, path)
            XCTAssertEqual(String(decoding: r.body, as: UTF8.self), body, path)
            XCTAssertEqual(header(r, "cache-control"), "no-cache", path)
            XCTAssertNotNil(header(r, "etag"), path)
            let csp = try XCTUnwrap(header(r, "content-security-policy"), path)
            XCTAssertTrue(csp.hasPrefix("default-src 'self';"), csp)
            XCTAssertTrue(csp.contains("script-src 'self';") && csp.contains("connect-src 'self';"), csp)
            XCTAssertFalse(csp.contains("unsafe") || csp.contains("http"), "no inline code, no other host: \(csp)")
            XCTAssertEqual(header(r, "permissions-policy")?.hasPrefix("camera=(self), microphone=(self)"), true)
            XCTAssertEqual(header(r, "referrer-policy"), "no-referrer")
            XCTAssertEqual(header(r, "x-content-type-options"), "nosniff")
            for (name, value) in r.headers { XCTAssertNil(HTTPResponse.headerProblem(name: name, value: value)) }
        }
    }

    func testTheDirectoryWithoutItsSlashRedirects() {
        let r = get("/app")
        XCTAssertEqual(r?.status, 301)
        XCTAssertEqual(header(r, "location"), "/app/")
    }

    func testAnUnchangedFileIsA304AndAChangedOneIsNot() throws {
        let first = try XCTUnwrap(get("/app/app.js"))
        let etag = try XCTUnwrap(header(first, "etag"))
        let again = get("/app/app.js", headers: ["if-none-match": "\"other\", \(etag)"])
        XCTAssertEqual(again?.status, 304)
        XCTAssertEqual(again?.body, [])
        XCTAssertEqual(get("/app/app.js", headers: ["if-none-match": "\"stale\""])?.status, 200)
        XCTAssertNotEqual(header(get("/app/style.css"), "etag"), etag, "each file its own tag")
        XCTAssertNotEqual(WebApp.etag(Array("a".utf8)), WebApp.etag(Array("b".utf8)))
    }

    func testPathsOutsideTheAppGiveNothing() {
        for path in [
            "/app/../healthz", "/app/./index.html", "/app/a//b.js", "/app/%2e%2e/x", "/app/README.md", "/app/sdk",
            "/app/sdk/", "/app/missing.js", "/app/app.js/", "/app/index.html%00",
        ] {
            XCTAssertEqual(get(path)?.status, 404, path)
        }
        XCTAssertNil(get("/apples"), "not the app's path")
        XCTAssertNil(get("/healthz"))
        let post = get("/app/", method: "POST")
        XCTAssertEqual(post?.status, 405)
        XCTAssertEqual(header(post, "allow"), "GET, HEAD")
    }

    func testWebRootIsReadOnceAndMustHaveAnIndex() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hearth-web-\(UUID())")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("app/img"), withIntermediateDirectories: true)
        XCTAssertThrowsError(try WebApp.load(root: dir.path)) { error in
            XCTAssertTrue("\(error)".contains("web.root"), "\(error)")
        }
        try Data("<p>Clinic".utf8).write(to: dir.appendingPathComponent("app/index.html"))
        try Data("<svg/>".utf8).write(to: dir.appendingPathComponent("app/img/logo.svg"))
        let branded = try WebApp.load(root: dir.path)
        XCTAssertEqual(branded.respond(to: HTTPRequest(method: "GET", path: "/app/"))?.body, Array("<p>Clinic".utf8))
        XCTAssertEqual(
            branded.respond(to: HTTPRequest(method: "GET", path: "/app/img/logo.svg"))?.contentType, "image/svg+xml")
    }

    /// The built-in app is exactly the repository's web/app and web/sdk at build time.
    func testTheEmbeddedFilesAreTheRepositorysWebDirectory() throws {
        let web = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("web")
        let fromDisk = try WebApp.load(root: web.path)
        let embedded = WebApp.embedded()
        XCTAssertEqual(Set(embedded.files.keys), Set(fromDisk.files.keys))
        for (path, file) in fromDisk.files { XCTAssertEqual(embedded.files[path]?.body, file.body, path) }
    }
}
