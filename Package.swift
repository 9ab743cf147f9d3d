// swift-tools-version:6.0
import PackageDescription

// Layers, bottom up (docs/architecture.md draws them):
//   HearthCore       pure room engine: commands in, effects out (no I/O, no C, no clock)
//   CLws, CJansson   system libraries: libwebsockets (TLS WebSocket) and jansson (JSON)
//   CLibpq           system library: libpq (PostgreSQL), for the shared store of a cluster
//   HearthWire       the v1 JSON wire protocol, through jansson
//   HearthTransport  libwebsockets server: TLS, sessions, send queues, HTTP routes
//   HearthAuth       join tokens (JWT), TURN credentials, resume secrets
//   HearthStore      embedded SQLite (GRDB): the input journal, hash-chained audit, attendance;
//                    and the cluster's shared journal and room ownership in PostgreSQL (libpq)
//   HearthWebAssets  the web app and SDK (web/), embedded at build time (Plugins/EmbedWeb)
//   HearthServer     the shell: runs the engine, executes its effects, config, metrics
//   hearthd          the command-line entry point
let package = Package(
    name: "Hearth",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "hearthd", targets: ["hearthd"]),
        .library(name: "HearthCore", targets: ["HearthCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/swift-extras/swift-extras-base64", from: "1.2.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        .target(name: "HearthCore"),
        .systemLibrary(
            name: "CLws", path: "Sources/CLws", pkgConfig: "libwebsockets",
            providers: [.apt(["libwebsockets-dev", "libssl-dev", "libcap-dev", "libuv1-dev", "libev-dev"])]),
        .systemLibrary(
            name: "CJansson", path: "Sources/CJansson", pkgConfig: "jansson",
            providers: [.apt(["libjansson-dev"])]),
        .systemLibrary(
            name: "CLibpq", path: "Sources/CLibpq", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .target(name: "HearthWire", dependencies: ["HearthCore", "CJansson"]),
        .target(
            name: "HearthTransport",
            // HearthCore only for `CloseCode`, the one list of close codes.
            dependencies: ["CLws", "HearthCore", .product(name: "Logging", package: "swift-log")],
            // RequestLine.swift: libwebsockets' SSL_read calls must bind to the executable's.
            linkerSettings: [.unsafeFlags(["-Xlinker", "--export-dynamic-symbol=SSL_read"])]),
        .target(
            name: "HearthAuth",
            dependencies: [
                "CJansson",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ExtrasBase64", package: "swift-extras-base64"),
            ]),
        .target(
            name: "HearthStore",
            dependencies: [
                "HearthCore", "CLibpq", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // The web app and SDK (web/), embedded at build time by the EmbedWeb plugin.
        .executableTarget(name: "embed-web"),
        .plugin(name: "EmbedWeb", capability: .buildTool(), dependencies: ["embed-web"]),
        .target(name: "HearthWebAssets", plugins: ["EmbedWeb"]),
        .target(
            name: "HearthServer",
            dependencies: [
                "HearthCore", "HearthWire", "HearthTransport", "HearthAuth", "HearthStore", "HearthWebAssets",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Yams", package: "Yams"),
            ]),
        .executableTarget(
            name: "hearthd",
            dependencies: [
                "HearthServer", "HearthStore", "HearthCore", "HearthTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // jemalloc (Debian's libjemalloc) replaces glibc's malloc in the whole process:
            // closing thousands of connections at once left glibc's bins fragmented, and each
            // allocation after it searched them (loadtest/RESULTS.md, issue 16 part 2).
            linkerSettings: [.linkedLibrary("jemalloc")]),
        .executableTarget(
            name: "transport-demo",
            dependencies: ["HearthTransport", .product(name: "Logging", package: "swift-log")],
            path: "Tests/transport/demo"),
        .executableTarget(
            name: "HearthFuzz", dependencies: ["HearthCore", "HearthWire", "CJansson"], path: "Fuzz/HearthFuzz"),
        .executableTarget(
            name: "hearth-loadgen",
            dependencies: [
                "HearthCore", "HearthWire", "HearthAuth", "CLws", "CJansson",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "loadtest/loadgen"),
        .executableTarget(
            name: "hearth-engine-bench", dependencies: ["HearthCore", "HearthWire", "HearthAuth"],
            path: "loadtest/engine-bench"),
        .executableTarget(
            name: "hearth-store-bench", dependencies: ["HearthCore", "HearthStore"], path: "loadtest/store-bench"),
        .testTarget(name: "HearthCoreTests", dependencies: ["HearthCore"]),
        .testTarget(name: "HearthWireTests", dependencies: ["HearthWire"]),
        .testTarget(name: "HearthAuthTests", dependencies: ["HearthAuth"]),
        .testTarget(name: "HearthConfigTests", dependencies: ["HearthServer"]),
        // A real PostgreSQL for the tests that need one (scripts/postgres-temp, or HEARTH_TEST_POSTGRES).
        .target(name: "HearthTestSupport", path: "Tests/Support"),
        .testTarget(name: "HearthServerTests", dependencies: ["HearthServer", "HearthTestSupport"]),
        .testTarget(name: "HearthStoreTests", dependencies: ["HearthStore", "HearthTestSupport"]),
        .testTarget(name: "HearthTransportTests", dependencies: ["HearthTransport"]),
        .testTarget(name: "HearthLoadgenTests", dependencies: ["hearth-loadgen", "CLws", "HearthCore", "HearthWire"]),
    ]
)
