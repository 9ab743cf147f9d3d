import Foundation

/// The repository's `web/` directory (the web app and its SDK) as it was at build time,
/// embedded by the EmbedWeb build plugin (Plugins/EmbedWeb).
public enum EmbeddedWeb {
    /// Every file, by its path relative to `web/` (`app/index.html`, `sdk/hearth-client.js`).
    public static func files() -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for (path, base64) in encoded {
            if let data = Data(base64Encoded: base64) { files[path] = [UInt8](data) }
        }
        return files
    }
}
