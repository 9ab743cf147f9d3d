import ArgumentParser
import Foundation
import HearthAuth
import HearthServer
import HearthTransport
import Logging

@main
struct Hearthd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hearthd",
        abstract: "Hearth: the real-time server for virtual group therapy sessions.",
        version: HearthServer.version,
        subcommands: [Serve.self, Token.self, AdminToken.self, Audit.self, Attendance.self],
        defaultSubcommand: Serve.self)
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Configuration file (YAML). Without it, the embedded development defaults.")
    var config: String?

    func load() throws -> HearthConfiguration {
        do {
            return try HearthConfiguration.load(path: config, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError("configuration: \(error)")
        }
    }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server (the default).")

    @OptionGroup var options: ConfigOption
    @Option(name: .long, help: "Listen address HOST:PORT (overrides the file).") var listen: String?
    @Option(name: .customLong("tls-cert"), help: "TLS certificate (PEM).") var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "TLS private key (PEM).") var tlsKey: String?
    @Option(name: .customLong("data-dir"), help: "Data directory (records).") var dataDir: String?
    @Option(
        name: .customLong("internal-listen"),
        help: "Plaintext listener for a proxy on this machine: unix:/path only (overrides internalListen).")
    var internalListen: String?
    @Option(
        name: .customLong("janus-socket"),
        help:
            "Janus's API socket (overrides sfu.janusSocket); its secrets from HEARTH_JANUS_API_SECRET and HEARTH_JANUS_ADMIN_KEY."
    ) var janusSocket: String?

    func run() throws {
        // Before anything can reach OpenSSL: it takes an allocator only before its first allocation.
        let openSSLSkipsNullFrees = OpenSSLAllocator.skipNullFrees()
        var config = try options.load()
        if let janusSocket {
            let environment = ProcessInfo.processInfo.environment
            config.sfu.janusSocket = janusSocket
            config.sfu.apiSecret = environment["HEARTH_JANUS_API_SECRET"] ?? config.sfu.apiSecret
            config.sfu.adminKey = environment["HEARTH_JANUS_ADMIN_KEY"] ?? config.sfu.adminKey
        }
        if let listen { config.listen = listen }
        if let tlsCert { config.tls.certificate = tlsCert }
        if let tlsKey { config.tls.privateKey = tlsKey }
        if let dataDir { config.dataDirectory = dataDir }
        if let internalListen { config.internalListen = internalListen }
        do { try config.validate() } catch { throw ValidationError("configuration: \(error)") }
        let level = Logger.Level(rawValue: config.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "hearthd")
        for warning in config.warnings { logger.warning("\(warning)") }
        logger.debug("OpenSSL's allocator", metadata: ["skipsNullFrees": "\(openSSLSkipsNullFrees)"])
        let server = try HearthServer(configuration: config, logger: logger)
        try server.runUntilSignalled()
    }
}

struct Token: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a development join token signed with the configured HS256 key.")

    @OptionGroup var options: ConfigOption
    @Option(name: .long, help: "Room id.") var room: String
    @Option(name: .long, help: "facilitator, cofacilitator, participant, guest or observer.") var role: String
    @Option(name: .long, help: "Display alias shown to the group.") var name: String
    @Option(name: .long, help: "User id (default: a random one).") var user: String?
    @Option(name: .long, help: "Lifetime in seconds.") var ttl: Int = 300

    func run() throws {
        let config = try options.load()
        guard JoinClaims.knownRoles.contains(role) else { throw ValidationError("unknown role \(role)") }
        let hs256 = config.tokens.keys.first { $0.algorithm == "HS256" && $0.secret != nil }
        guard let secret = hs256?.secret ?? config.dev.tokenSecret else {
            throw ValidationError("no HS256 key in the configuration to sign with")
        }
        let minter = try TokenMinter(secret: secret, kid: hs256?.kid)
        let now = Date()
        let claims = JoinClaims(
            sub: user ?? "user-\(UUID().uuidString.prefix(8).lowercased())", room: room, role: role, name: name,
            exp: now.addingTimeInterval(Double(ttl)), iat: now, jti: UUID().uuidString)
        print(minter.mint(claims: claims))
    }
}

struct AdminToken: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin-token",
        abstract: "Print an operations-API admin token signed with the configured HS256 admin key (admin.keys).")

    @OptionGroup var options: ConfigOption
    @Option(name: .customLong("operator"), help: "Operator id (the token's sub).") var operatorID: String = "operator"
    @Option(name: .long, help: "Lifetime in seconds (at most admin.maxLifetimeSeconds).") var ttl: Int = 300

    func run() throws {
        let config = try options.load()
        guard let key = config.admin.keys.first(where: { $0.algorithm == "HS256" && $0.secret != nil }),
            let secret = key.secret
        else {
            throw ValidationError("no HS256 key in admin.keys to sign with")
        }
        guard ttl > 0, ttl <= config.admin.maxLifetimeSeconds else {
            throw ValidationError("--ttl must be from 1 to \(config.admin.maxLifetimeSeconds)")
        }
        let minter = try AdminTokenMinter(key: .hs256(secret: secret, kid: key.kid))
        print(minter.mint(operator: operatorID, now: Date(), ttlSeconds: ttl, jti: UUID().uuidString))
    }
}
