import Foundation
import PackagePlugin

/// Embeds the repository's `web/` directory (the web app and its SDK) into `HearthWebAssets` at
/// build time: hearthd serves those bytes at `/app/` with no file on disk to find or to drift.
/// Every file under `web/app` and `web/sdk` is an input, so editing, adding or removing one
/// rebuilds the embedded copy.
@main
struct EmbedWeb: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let web = context.package.directoryURL.appending(path: "web")
        var inputs: [URL] = []
        for folder in ["app", "sdk"] {
            let root = web.appending(path: folder)
            guard
                let walker = FileManager.default.enumerator(
                    at: root, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles])
            else { continue }
            for case let url as URL in walker
            where (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true {
                inputs.append(url)
            }
        }
        inputs.sort { $0.path < $1.path }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedWebFiles.swift")
        return [
            .buildCommand(
                displayName: "Embedding web/ (\(inputs.count) files)",
                executable: try context.tool(named: "embed-web").url,
                arguments: [web.path, output.path] + inputs.map(\.path),
                inputFiles: inputs, outputFiles: [output])
        ]
    }
}
