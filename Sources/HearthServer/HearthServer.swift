import Dispatch
import Foundation
import HearthAuth
import HearthStore
import HearthTransport
import Logging

/// One running Hearth node: the transport, the shell around the engine, and the records.
public final class HearthServer: @unchecked Sendable {
    public static let version = "0.1.0"

    public let configuration: HearthConfiguration
    private let transport: Transport
    private let host: RoomHost
    /// The embedded store (`store: sqlite`), or nil in a cluster.
    private let store: Store?
    /// The cluster's shared store (`store: postgres`), or nil.
    private let shared: SharedJournal?
    private let logger: Logger

    public init(configuration: HearthConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        guard let certificate = configuration.tls.certificate, let key = configuration.tls.privateKey else {
            throw ServerError.noCertificate
        }
        var keys: [TokenKey] = []
        for key in configuration.tokens.keys {
            keys.append(
                try TokenKey(algorithm: key.algorithm, secret: key.secret, publicKey: key.publicKey, kid: key.kid))
        }
        if let dev = configuration.dev.tokenSecret {
            keys.append(try TokenKey.hs256(secret: dev))
        }
        let verifier = TokenVerifier(
            keys: keys, leewaySeconds: configuration.tokens.leewaySeconds,
            maxLifetimeSeconds: configuration.tokens.maxLifetimeSeconds)
        try FileManager.default.createDirectory(
            atPath: configuration.dataDirectory, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        if configuration.store == .postgres, let conninfo = configuration.postgres.conninfo,
            let node = configuration.postgres.node
        {
            // Everything in PostgreSQL: the journal, ownership, and the records.
            let shared = try SharedJournal(
                conninfo: conninfo, node: node, leaseSeconds: configuration.postgres.leaseSeconds,
                queueLimit: configuration.limits.journalQueueMaxEntries)
            self.shared = shared
            store = nil
            logger.info("shared store open", metadata: ["node": "\(node)", "number": "\(shared.number)"])
        } else {
            shared = nil
            store = try Store(
                directory: configuration.dataDirectory, queueLimit: configuration.limits.journalQueueMaxEntries,
                writerGate: Self.testWriterGate(ProcessInfo.processInfo.environment, logger: logger))
        }
        let recovery =
            try shared.map { RoomHost.Recovery.cluster($0, configuration: configuration) }
            ?? RoomHost.recover(from: store!, configuration: configuration, now: RoomHost.now())
        if recovery.entries > 0 {
            logger.info(
                "rooms rebuilt from the journal",
                metadata: ["entries": "\(recovery.entries)", "rooms": "\(recovery.engine.rooms.count)"])
        }
        host = RoomHost(
            configuration: configuration, verifier: verifier, store: store, shared: shared, recovered: recovery,
            metrics: ServerMetrics(), logger: logger, version: Self.version,
            webApp: try configuration.web.root.map(WebApp.load(root:)) ?? .embedded())
        let t = try configuration.transportConfiguration(certificatePath: certificate, privateKeyPath: key)
        transport = try Transport(configuration: t, delegate: host, logger: logger)
        // Acks held in the host's AckGate go out as soon as the writer commits their journal entries.
        let hostRef = LoopConfined(host)
        host.journal.onCommit = { [transport] ticket in
            transport.post { t in hostRef.value.releaseAcks(upTo: ticket, transport: t) }
        }
        // A claim finishes on the shared store's claim thread; the room is rebuilt on the loop's.
        host.onClaimed = { [transport] room, result, started in
            transport.post { t in hostRef.value.claimed(room, result, started: started, transport: t) }
        }
        // Janus's messages come in on the link's reader thread; the broker lives on the loop's.
        host.onJanusEvent = { [transport] generation, event in
            transport.post { t in hostRef.value.janusEvent(event, generation: generation, transport: t) }
        }
    }

    /// Black-box tests only (README, "Tests"): with `HEARTH_TEST_HOOKS=1`, the store's writer
    /// stalls while the file `HEARTH_TEST_STALL_WRITER_FILE` names exists, as on a stuck disk.
    /// Nothing in the configuration file can turn it on, and the server warns when it is on.
    static func testWriterGate(_ environment: [String: String], logger: Logger) -> (@Sendable () -> Void)? {
        guard environment["HEARTH_TEST_HOOKS"] == "1", let path = environment["HEARTH_TEST_STALL_WRITER_FILE"],
            !path.isEmpty
        else { return nil }
        logger.warning("test hook on: the store's writer stalls while the stall file exists (never in production)")
        return Store.stallWhileFileExists(path)
    }

    public func start() throws {
        try transport.start()
        logger.info("listening", metadata: ["listen": "\(configuration.listen)", "version": "\(Self.version)"])
    }

    /// Graceful stop: every client is told to reconnect (1001), records are flushed. In a
    /// cluster the node first stops taking joins and claims, writes its journal, and deletes
    /// its lease, so other nodes can claim its rooms the moment its clients reconnect.
    public func stop() {
        if let shared {
            let hostRef = LoopConfined(host)
            let drained = DispatchSemaphore(value: 0)
            transport.post { _ in
                hostRef.value.draining = true
                drained.signal()
            }
            _ = drained.wait(timeout: .now() + 2)
            if !shared.flush(timeout: 5) { logger.error("drain: the shared journal did not commit in 5 s") }
            shared.releaseLease()
            logger.info("drain: lease released, rooms may move")
        }
        transport.stop()
        shared?.flush()
        shared?.close()
        store?.flush()
        store?.close()
        logger.info("stopped")
    }

    /// Runs until SIGTERM or SIGINT, then stops gracefully.
    public func runUntilSignalled() throws {
        try start()
        let done = DispatchSemaphore(value: 0)
        let queue = DispatchQueue(label: "hearth.signals")
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler { [self] in
                logger.info("signal received, shutting down", metadata: ["signal": "\(sig)"])
                stop()
                done.signal()
            }
            source.resume()
            sources.append(source)
        }
        done.wait()
        withExtendedLifetime(sources) {}
    }
}

public enum ServerError: Error, CustomStringConvertible {
    case noCertificate

    public var description: String {
        switch self {
        case .noCertificate:
            return "no TLS certificate configured: set tls.certificate and tls.privateKey (or --tls-cert/--tls-key); "
                + "scripts/run generates a development certificate"
        }
    }
}

/// A reference handed to another thread only to be passed back to the event-loop thread
/// (through `Transport.post`) and used there. It is never dereferenced elsewhere.
struct LoopConfined<Value: AnyObject>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
