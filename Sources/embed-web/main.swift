import Foundation

// embed-web WEB_DIR OUTPUT FILE...: writes a Swift file holding each FILE (a path under
// WEB_DIR) as base64, keyed by its path relative to WEB_DIR. Run by the EmbedWeb build plugin.
let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    FileHandle.standardError.write(Data("usage: embed-web WEB_DIR OUTPUT [FILE...]\n".utf8))
    exit(2)
}
let web = URL(fileURLWithPath: arguments[1]).standardizedFileURL.path + "/"
var out = "// Generated at build time by embed-web from web/: do not edit.\n"
out += "extension EmbeddedWeb {\n    static let encoded: [(path: String, base64: String)] = [\n"
for file in arguments.dropFirst(3) {
    let path = URL(fileURLWithPath: file).standardizedFileURL.path
    guard path.hasPrefix(web) else { continue }
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    out += "        (\"\(path.dropFirst(web.count))\", \"\(data.base64EncodedString())\"),\n"
}
out += "    ]\n}\n"
try Data(out.utf8).write(to: URL(fileURLWithPath: arguments[2]), options: .atomic)
