import Foundation
import HearthTransport
import HearthWebAssets

/// The web app and its SDK, served at `/app/` over the same TLS port as the WebSocket (one
/// origin). The files are the ones embedded at build time (`HearthWebAssets`), or, with
/// `web.root`, a clinic's own directory of the same layout (`app/`, `sdk/`), read once at start.
/// Kept in memory: the lws thread answers from here without touching the disk.
///
/// `/app/` is `app/index.html`, `/app/sdk/X` is `sdk/X`, `/app/X` is `app/X`. Every answer
/// carries the headers a page holding health data needs: a CSP that allows this origin only
/// (no third-party script, style, font or image; the WebSocket to this host), camera and
/// microphone for this origin only, no referrer, no MIME sniffing, no framing.
struct WebApp: Sendable {
    struct File: Sendable {
        var body: [UInt8]
        var contentType: String
        var etag: String
    }

    /// By URL path below `/app/`: `index.html`, `app.js`, `sdk/index.js`.
    let files: [String: File]

    /// `files`: by path relative to the web directory (`app/index.html`, `sdk/mesh.js`).
    init(files: [String: [UInt8]]) {
        var served: [String: File] = [:]
        for (path, body) in files {
            let url: String
            if path.hasPrefix("app/") {
                url = String(path.dropFirst(4))
            } else if path.hasPrefix("sdk/") {
                url = path
            } else {
                continue
            }
            served[url] = File(body: body, contentType: Self.contentType(path), etag: Self.etag(body))
        }
        self.files = served
    }

    static func embedded() -> WebApp { WebApp(files: EmbeddedWeb.files()) }

    /// Reads `root/app` and `root/sdk` (a clinic's branding). Throws when `root/app/index.html`
    /// is missing: a server that would answer 404 to every patient must not start.
    static func load(root: String) throws -> WebApp {
        var files: [String: [UInt8]] = [:]
        let base = URL(fileURLWithPath: root).standardizedFileURL
        for folder in ["app", "sdk"] {
            let dir = base.appendingPathComponent(folder)
            guard
                let walker = FileManager.default.enumerator(
                    at: dir, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles])
            else { continue }
            for case let url as URL in walker
            where (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true {
                let relative = url.standardizedFileURL.path.dropFirst(base.path.count + 1)
                files[String(relative)] = [UInt8](try Data(contentsOf: url))
            }
        }
        guard files["app/index.html"] != nil else {
            throw ConfigurationError.invalidValue(key: "web.root", problem: "\(root)/app/index.html does not exist")
        }
        return WebApp(files: files)
    }

    static let securityHeaders: [(String, String)] = [
        (
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                + "media-src 'self' blob: mediastream:; connect-src 'self'; font-src 'self'; object-src 'none'; "
                + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
        ("permissions-policy", "camera=(self), microphone=(self), display-capture=(), geolocation=()"),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
    ]

    /// The answer to a request under `/app`, or nil when the path is not the app's.
    func respond(to request: HTTPRequest) -> HTTPResponse? {
        guard request.path == "/app" || request.path.hasPrefix("/app/") else { return nil }
        guard request.method == "GET" || request.method == "HEAD" else {
            return HTTPResponse(
                status: 405, contentType: "application/json",
                text: #"{"code":"method-not-allowed","message":"Only GET and HEAD."}"#,
                headers: [("allow", "GET, HEAD")] + Self.securityHeaders)
        }
        // `/app` without the slash: the page's relative module paths need the directory form.
        if request.path == "/app" {
            return HTTPResponse(status: 301, text: "", headers: [("location", "/app/")] + Self.securityHeaders)
        }
        var path = String(request.path.dropFirst("/app/".count))
        if path.isEmpty { path = "index.html" }
        guard Self.isPlainPath(path), let file = files[path] else {
            return HTTPResponse(
                status: 404, contentType: "application/json",
                text: #"{"code":"not-found","message":"No such file."}"#, headers: Self.securityHeaders)
        }
        // Revalidated on every load (no-cache), so a new build reaches patients at once; the
        // ETag makes that a 304 without the body.
        let headers = [("etag", file.etag), ("cache-control", "no-cache")] + Self.securityHeaders
        if let match = request.headers["if-none-match"],
            match.split(separator: ",").contains(where: {
                $0.trimmingCharacters(in: .whitespaces) == file.etag
            })
        {
            return HTTPResponse(status: 304, contentType: file.contentType, body: [], headers: headers)
        }
        return HTTPResponse(status: 200, contentType: file.contentType, body: file.body, headers: headers)
    }

    /// Segments of letters, digits, `-`, `_` and `.`, none of them `.` or `..` (nothing encoded).
    static func isPlainPath(_ path: String) -> Bool {
        path.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { segment in
            !segment.isEmpty && segment != "." && segment != ".."
                && segment.utf8.allSatisfy {
                    ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45
                        || $0 == 95 || $0 == 46
                }
        }
    }

    static func contentType(_ path: String) -> String {
        switch path.split(separator: ".").last.map(String.init) ?? "" {
        case "html": return "text/html; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "json", "map": return "application/json"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "ico": return "image/x-icon"
        case "ts": return "text/plain; charset=utf-8"
        case "txt", "md": return "text/plain; charset=utf-8"
        default: return "application/octet-stream"
        }
    }

    /// A strong ETag from the content (FNV-1a, 64 bits): changes whenever a byte does.
    static func etag(_ body: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in body {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return "\"" + String(repeating: "0", count: 16 - hex.count) + hex + "-\(body.count)\""
    }
}
