import Foundation
import PackagePlugin

/// Embeds the repository's `web/` directory (the web app and its SDK) into `HearthWebAssets` at
/// build time: hearthd serves those bytes at `/app/` with no file on disk to find or to drift.
/// Every file under `web/app` and `web/sdk` is an input, and so is every directory there: the
/// build plan (and so this file list) is kept between builds, but a directory's modification
/// time changes when a file is added or removed in it, which reruns the tool, and the tool
/// lists the directories itself.
@main
struct EmbedWeb: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let web = context.package.directoryURL.appending(path: "web")
        var inputs: [URL] = [web]
        for folder in ["app", "sdk"] {
            let root = web.appending(path: folder)
            guard
                let walker = FileManager.default.enumerator(
                    at: root, includingPropertiesForKeys: [.isRegularFileKey, .isDirectoryKey],
                    options: [.skipsHiddenFiles])
            else { continue }
            inputs.append(root)
            for case let url as URL in walker {
                let kind = try? url.resourceValues(forKeys: [.isRegularFileKey, .isDirectoryKey])
                if kind?.isRegularFile == true || kind?.isDirectory == true { inputs.append(url) }
            }
        }
        inputs.sort { $0.path < $1.path }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedWebFiles.swift")
        return [
            .buildCommand(
                displayName: "Embedding web/",
                executable: try context.tool(named: "embed-web").url,
                arguments: [web.path, output.path],
                inputFiles: inputs, outputFiles: [output])
        ]
    }
}
