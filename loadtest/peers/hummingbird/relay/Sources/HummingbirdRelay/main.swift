// hummingbird-relay: a BENCHMARK PEER for Hearth's load tests, not a product.
//
// A minimal room relay written the way a Swift team would naturally write it with
// Hummingbird 2: the room is the request path (any path under /relay/), and every text
// message a client sends is relayed verbatim to every connection in the same room,
// the sender included. No auth, no protocol, no per-message logging. One event-loop thread.
//
//   hummingbird-relay --port P --cert CERT.pem --key KEY.pem [--plain]

import ArgumentParser
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOWebSocket
import Synchronization

/// Rooms by path; each room maps a connection id to that connection's outbound writer.
final class RoomRegistry: Sendable {
    private let state = Mutex<(nextID: Int, rooms: [String: [Int: WebSocketOutboundWriter]])>((0, [:]))

    func join(_ room: String, _ writer: WebSocketOutboundWriter) -> Int {
        state.withLock { state in
            state.nextID += 1
            state.rooms[room, default: [:]][state.nextID] = writer
            return state.nextID
        }
    }

    func leave(_ room: String, _ id: Int) {
        state.withLock { state in
            state.rooms[room]?[id] = nil
            if state.rooms[room]?.isEmpty == true { state.rooms[room] = nil }  // free empty rooms
        }
    }

    /// The room's current members (copy-on-write: no copy unless the room changes meanwhile).
    func members(_ room: String) -> [Int: WebSocketOutboundWriter] {
        state.withLock { $0.rooms[room] ?? [:] }
    }
}

@main
struct HummingbirdRelay: AsyncParsableCommand {
    @Option(help: "Port to listen on (127.0.0.1).") var port: Int
    @Option(help: "PEM certificate chain.") var cert: String = ""
    @Option(help: "PEM private key.") var key: String = ""
    @Flag(help: "Plain ws:// instead of TLS.") var plain = false

    func run() async throws {
        var logger = Logger(label: "hummingbird-relay")
        logger.logLevel = .warning
        let registry = RoomRegistry()

        let wsRouter = Router(context: BasicWebSocketRequestContext.self)
        wsRouter.ws("/relay/**") { inbound, outbound, context in
            let room = context.request.uri.path
            let id = registry.join(room, outbound)
            defer { registry.leave(room, id) }
            for try await message in inbound.messages(maxSize: 1 << 16) {
                guard case .text(let text) = message else { continue }
                // One buffer shared by every recipient's frame; each sender's loop writes in
                // order and awaits each write, so every recipient sees that sender's FIFO order.
                let frame = WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text))
                for (_, member) in registry.members(room) {
                    try? await member.write(.custom(frame))  // a member that just left is skipped
                }
            }
        }

        let wsConfig = WebSocketServerConfiguration(maxFrameSize: 1 << 16)  // no extensions: no compression
        var server: HTTPServerBuilder = .http1WebSocketUpgrade(
            webSocketRouter: wsRouter, configuration: .init(ws: wsConfig))
        if !plain {
            let chain = try NIOSSLCertificate.fromPEMFile(cert).map { NIOSSLCertificateSource.certificate($0) }
            let tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
            server = try .tls(server, tlsConfiguration: tls)
        }

        let port = self.port
        let app = Application(
            router: Router(),
            server: server,
            configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "hummingbird-relay"),
            onServerRunning: { _ in
                print("listening on 127.0.0.1:\(port)")
                fflush(nil)
            },
            eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup(numberOfThreads: 1)),
            logger: logger
        )
        try await app.runService()
    }
}
