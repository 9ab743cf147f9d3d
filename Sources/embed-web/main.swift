import Foundation

// embed-web WEB_DIR OUTPUT: writes a Swift file holding every file under WEB_DIR/app and
// WEB_DIR/sdk (hidden ones aside) as base64, keyed by its path relative to WEB_DIR, in path
// order. Run by the EmbedWeb build plugin.
let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: embed-web WEB_DIR OUTPUT\n".utf8))
    exit(2)
}
let web = URL(fileURLWithPath: arguments[1]).standardizedFileURL
var files: [(path: String, url: URL)] = []
for folder in ["app", "sdk"] {
    guard
        let walker = FileManager.default.enumerator(
            at: web.appendingPathComponent(folder), includingPropertiesForKeys: [.isRegularFileKey],
            options: [.skipsHiddenFiles])
    else { continue }
    for case let url as URL in walker
    where (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true {
        files.append((String(url.standardizedFileURL.path.dropFirst(web.path.count + 1)), url))
    }
}
var out = "// Generated at build time by embed-web from web/: do not edit.\n"
out += "extension EmbeddedWeb {\n    static let encoded: [(path: String, base64: String)] = [\n"
for file in files.sorted(by: { $0.path < $1.path }) {
    let data = try Data(contentsOf: file.url)
    out += "        (\"\(file.path)\", \"\(data.base64EncodedString())\"),\n"
}
out += "    ]\n}\n"
try Data(out.utf8).write(to: URL(fileURLWithPath: arguments[2]), options: .atomic)
