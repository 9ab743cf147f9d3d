// swift-tools-version:6.0
import PackageDescription

// Layers, bottom up (docs/architecture.md draws them):
//   HearthCore       pure room engine: commands in, effects out (no I/O, no C, no clock)
let package = Package(
    name: "Hearth",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "HearthCore", targets: ["HearthCore"])
    ],
    targets: [
        .target(name: "HearthCore"),
        .executableTarget(
            name: "hearth-engine-bench", dependencies: ["HearthCore"], path: "loadtest/engine-bench"),
        .testTarget(name: "HearthCoreTests", dependencies: ["HearthCore"]),
    ]
)
