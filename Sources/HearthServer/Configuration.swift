import Foundation
import HearthAuth
import HearthTransport
import Yams

/// The server configuration, read from YAML (camelCase keys matching the Swift property names).
///
/// ## Where values come from
///
/// - **No file** (`load(path: nil, …)`): ``embeddedDefault`` — listens on loopback and carries a
///   *development* HS256 token secret (``Dev/tokenSecret``) so a newcomer can mint a token with
///   `hearthd token` and try the server. That secret is public (it is in the source); production
///   must not use it (``validate()`` refuses it on a non-loopback `listen` address).
/// - **A file**: every key is optional; a missing key keeps the built-in default
///   (`HearthConfiguration()`), which has **no** token keys and **no** dev secret, so a
///   production file that forgets `tokens:` fails validation rather than silently accepting
///   development tokens. Unknown keys are errors naming the key (to catch typos).
/// - **Secrets** may be written as `"env:NAME"` to read the environment variable `NAME`
///   (`tokens.keys[].secret`, `tokens.keys[].publicKey`, `dev.tokenSecret`, `ice.turnSecret`).
/// - **Environment overrides**: `HEARTH_TOKEN_SECRET` replaces the secret of the first HS256
///   key in `tokens.keys`, or `dev.tokenSecret` when there is no HS256 key;
///   `HEARTH_TURN_SECRET` replaces `ice.turnSecret`; `HEARTH_ADMIN_SECRET` replaces the secret
///   of the first HS256 key in `admin.keys` (or adds an HS256 admin key without `kid` when
///   there is none).
/// - **Admin keys** (`admin.keys`) verify the operations API's admin tokens; they are separate
///   from the join-token keys (validation refuses a shared secret). Without them the API
///   answers 503. ``embeddedDefault`` carries a public development admin secret
///   (``developmentAdminSecret``), loopback only, like the development token secret.
///
/// After loading, the configuration holds the resolved secrets: log ``redacted`` (or
/// `description`, which is redacted), never the raw value's fields.
public struct HearthConfiguration: Sendable, Codable, Equatable, CustomStringConvertible {
    /// `HOST:PORT` to listen on; IPv6 hosts in brackets (`[::1]:8443`).
    public var listen: String = "127.0.0.1:8443"
    public var tls = TLS()
    public var dataDirectory: String = "./data"
    public var tokens = Tokens()
    public var dev = Dev()
    /// The operations API's credentials (`/api/v1/`).
    public var admin = Admin()
    public var ice = ICE()
    public var limits = Limits()
    public var rateLimits = RateLimits()
    public var retention = Retention()
    public var rooms = RoomDefaults()
    /// Browser `Origin`s allowed to open the WebSocket (`https://host[:port]`, or `*`).
    /// Empty: any `Origin` is accepted (native clients send none; list the clinic's web
    /// origins for browser deployments).
    public var allowedOrigins: [String] = []
    /// Reverse proxies (CIDRs, e.g. `10.0.0.0/8`, `2001:db8::/48`, or single addresses) whose
    /// `X-Forwarded-For` is believed: for a connection from one of them the client is the
    /// rightmost address in that header that is not itself a trusted proxy. Empty: the TCP
    /// peer is the client and the header is ignored.
    public var trustedProxies: [String] = []
    /// A swift-log level: trace, debug, info, notice, warning, error, critical.
    public var logLevel: String = "info"

    /// The built-in defaults a config file is layered on: no token keys, no dev secret.
    public init() {}

    // MARK: Sections

    public struct TLS: Sendable, Codable, Equatable {
        /// PEM certificate chain path. Both nil: the run script generates a development
        /// certificate; the server refuses to start unless both paths are set.
        public var certificate: String?
        /// PEM private key path.
        public var privateKey: String?
        /// TLS 1.2 cipher suites in OpenSSL's cipher-list syntax. Nil: ECDHE with AEAD only
        /// (``TransportConfiguration/defaultTLS12Ciphers``). TLS 1.3 suites are not affected.
        public var ciphers: String?

        public init(certificate: String? = nil, privateKey: String? = nil, ciphers: String? = nil) {
            self.certificate = certificate
            self.privateKey = privateKey
            self.ciphers = ciphers
        }
    }

    public struct Tokens: Sendable, Codable, Equatable {
        /// Keys that verify join tokens, chosen by the token's `kid`; a key without `kid` is
        /// the default key (at most one).
        public var keys: [Key] = []
        public var leewaySeconds: Int = 30
        /// Longest accepted token lifetime (`exp - iat`).
        public var maxLifetimeSeconds: Int = 600
        /// Close a connection (4401) once its last token has expired: clients then `refresh`
        /// before `exp`. Off by default: a join token only has to be valid when presented.
        public var requireRefresh: Bool = false

        public init() {}

        public struct Key: Sendable, Codable, Equatable {
            public var kid: String?
            /// `HS256`, `EdDSA` or `ES256`.
            public var algorithm: String = "HS256"
            /// HS256 shared secret (at least 32 bytes); `"env:NAME"` reads the environment.
            public var secret: String?
            /// EdDSA: PEM or base64url raw key; ES256: PEM. `"env:NAME"` allowed.
            public var publicKey: String?

            public init(
                kid: String? = nil, algorithm: String = "HS256", secret: String? = nil, publicKey: String? = nil
            ) {
                self.kid = kid
                self.algorithm = algorithm
                self.secret = secret
                self.publicKey = publicKey
            }
        }
    }

    public struct Dev: Sendable, Codable, Equatable {
        /// A development HS256 secret, used as a key without `kid` (the default key) and by
        /// `hearthd token`. Set in ``HearthConfiguration/embeddedDefault`` only; production
        /// must leave it unset and configure `tokens.keys`.
        public var tokenSecret: String?

        public init(tokenSecret: String? = nil) { self.tokenSecret = tokenSecret }
    }

    /// Admin tokens for the operations API: JWTs with `scope: "hearth-admin"`, verified with
    /// these keys only (never the join-token keys).
    public struct Admin: Sendable, Codable, Equatable {
        /// Same shape as `tokens.keys` (`kid`, `algorithm`, `secret` or `publicKey`, `env:`
        /// allowed). Empty: the operations API is disabled (503 `api-disabled`).
        public var keys: [Tokens.Key] = []
        public var leewaySeconds: Int = 30
        /// Longest accepted admin token lifetime (`exp - iat`).
        public var maxLifetimeSeconds: Int = 3600

        public init() {}
    }

    public struct ICE: Sendable, Codable, Equatable {
        public var servers: [Server] = []
        /// coturn `static-auth-secret` for time-limited TURN credentials; `"env:NAME"` allowed.
        public var turnSecret: String?
        public var turnTTLSeconds: Int = 3600

        public init() {}

        public struct Server: Sendable, Codable, Equatable {
            /// `stun:`, `turn:` or `turns:` URLs.
            public var urls: [String] = []
            /// Whether clients get TURN credentials (from ``ICE/turnSecret``) for this server.
            public var turn: Bool = false

            public init(urls: [String] = [], turn: Bool = false) {
                self.urls = urls
                self.turn = turn
            }
        }
    }

    public struct Limits: Sendable, Codable, Equatable {
        public var maxMessageBytes: Int = 65_536
        public var sendQueueMaxMessages: Int = 1024
        public var sendQueueMaxBytes: Int = 1_048_576
        /// Each connection's kernel send buffer (SO_SNDBUF), 0 for the kernel's auto-tuning (up
        /// to 4 MiB per connection): bounds what a client that stops reading holds in the
        /// kernel, so its backlog reaches the send queue and its 4008 cut-off.
        public var socketSendBufferBytes: Int = 262_144
        public var helloTimeoutSeconds: Int = 5
        public var pingIntervalSeconds: Int = 20
        public var hangupSeconds: Int = 40
        /// Malformed messages tolerated from one connection before it is closed.
        public var maxMalformedMessages: Int = 10
        public var maxChatLength: Int = 2000
        public var maxSignalBytes: Int = 16_384
        /// Open connections from one address (0 = no limit). Behind a load balancer, raise it.
        public var maxConnectionsPerAddress: Int = 200
        /// Live rooms on this node.
        public var maxRooms: Int = 5000
        /// Members waiting in one room's waiting room.
        public var maxWaiting: Int = 50
        /// Records waiting for the disk (journal entries, audit and attendance records) past
        /// which new joins and journaled commands are refused with `server-busy` (the same
        /// default as `Store.defaultQueueLimit`, which says why).
        public var journalQueueMaxEntries: Int = 20_000

        public init() {}
    }

    /// How long records are kept.
    public struct Retention: Sendable, Codable, Equatable {
        /// Audit records (HIPAA asks for six years of documentation).
        public var auditDays: Int = 2190
        public var attendanceDays: Int = 2190
        /// An ended room's journal (its replay data, with chat text) after the end.
        public var endedRoomHours: Int = 24

        public init() {}
    }

    /// Rate limits: token buckets (burst, then so many per second).
    public struct RateLimits: Sendable, Codable, Equatable {
        /// Failed authentications per source address before its connections are refused early.
        public var authFailureBurst: Int = 20
        public var authFailuresPerSecond: Double = 0.2
        public var chatBurst: Int = 10
        public var chatPerSecond: Double = 5
        /// ICE candidates come in bursts when a mesh forms.
        public var signalBurst: Int = 300
        public var signalPerSecond: Double = 100
        /// Signals from one connection to one member: an offer or answer and a few tens of ICE
        /// candidates per renegotiation. A signal is also refused while its recipient's send
        /// queue is half full, so no sender can push another member into a 4008 close.
        public var signalPairBurst: Int = 40
        public var signalPairPerSecond: Double = 5
        /// Every other command, and `refresh` and `ping`.
        public var controlBurst: Int = 30
        public var controlPerSecond: Double = 10
        /// Consecutive rate-limited commands after which the connection is closed (4429).
        public var maxStrikes: Int = 50

        public init() {}
    }

    /// Room settings used when a join token does not set them.
    public struct RoomDefaults: Sendable, Codable, Equatable {
        public var capacity: Int = 12
        public var waitingRoom: Bool = true
        public var consentVersion: String?
        public var requireLocation: Bool = false
        /// `everyone`, `staff-only` or `off`.
        public var chatPolicy: String = "everyone"
        public var privateMessages: Bool = false
        public var selfUnmute: Bool = true
        public var graceSeconds: Int = 60
        /// `hold` or `waiting-room`.
        public var facilitatorDrop: String = "hold"
        public var replayWindow: Int = 512
        /// How long a room with no seat (none live, none held) stays open before it ends by itself.
        public var idleCloseSeconds: Int = 1800

        public init() {}
    }

    // MARK: Defaults

    /// The development token secret in ``embeddedDefault``. It is public; never use it in
    /// production.
    public static let developmentTokenSecret = "hearth-development-only-secret-do-not-use-in-production"

    /// The development admin secret in ``embeddedDefault`` (the operations API's key). It is
    /// public; never use it in production.
    public static let developmentAdminSecret = "hearth-development-only-admin-secret-do-not-use-in-production"

    /// Public keys that must never be trusted: the placeholder deploy/hearthd.example.yaml ships
    /// (not a key), and the real-looking key earlier versions of that file shipped, whose private
    /// key is not ours to vouch for.
    public static let examplePublicKeys = [
        "REPLACE-WITH-YOUR-BACKEND-ED25519-PUBLIC-KEY",
        "MCowBQYDK2VwAyEAyg+ZfEWm9/gRWBf8s8K1iE0m3YZBuaqepXFg9VjMgyU=",
    ]
    public static let examplePublicKeyProblem =
        "is the placeholder from deploy/hearthd.example.yaml: set your backend's public key (PEM, as `openssl pkey -pubout` prints it) or remove this key"

    /// The configuration used when no file is given: loopback only, development token and
    /// admin secrets.
    public static let embeddedDefault: HearthConfiguration = {
        var config = HearthConfiguration()
        config.dev.tokenSecret = developmentTokenSecret
        config.admin.keys = [Tokens.Key(algorithm: "HS256", secret: developmentAdminSecret)]
        return config
    }()

    // MARK: Loading

    /// Loads the configuration: `path == nil` gives ``embeddedDefault``; otherwise the YAML file
    /// layered over `HearthConfiguration()`. Then applies the environment overrides, resolves
    /// `env:` secrets and runs ``validate()``.
    public static func load(path: String?, environment: [String: String]) throws(ConfigurationError)
        -> HearthConfiguration
    {
        var config: HearthConfiguration
        if let path {
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw .unreadableFile(path: path, reason: error.localizedDescription)
            }
            config = try parse(yaml: text)
        } else {
            config = embeddedDefault
        }
        try config.applyEnvironment(environment)
        try config.validate()
        return config
    }

    /// Decodes YAML text (no environment handling, no validation).
    public static func parse(yaml text: String) throws(ConfigurationError) -> HearthConfiguration {
        do {
            // An empty file (or one with only comments) is an empty mapping.
            guard try Yams.load(yaml: text) != nil else { return HearthConfiguration() }
            return try YAMLDecoder().decode(HearthConfiguration.self, from: text)
        } catch let error as ConfigurationError {
            throw error
        } catch let error as DecodingError {
            // Yams wraps errors thrown by `init(from:)` (our unknown-key errors) in
            // `dataCorrupted`; surface the original.
            if case .dataCorrupted(let context) = error,
                let underlying = context.underlyingError as? ConfigurationError
            {
                throw underlying
            }
            throw ConfigurationError(decodingError: error)
        } catch let error as YamlError {
            throw .syntax(String(describing: error))
        } catch {
            throw .syntax(String(describing: error))
        }
    }

    /// Applies `HEARTH_TOKEN_SECRET` / `HEARTH_TURN_SECRET` / `HEARTH_ADMIN_SECRET` and resolves
    /// `env:NAME` values.
    mutating func applyEnvironment(_ environment: [String: String]) throws(ConfigurationError) {
        var tokenOverride: String? = nil
        if let secret = environment["HEARTH_TOKEN_SECRET"], !secret.isEmpty {
            if let index = tokens.keys.firstIndex(where: { $0.algorithm == "HS256" }) {
                tokens.keys[index].secret = secret
                tokenOverride = "tokens.keys[\(index)].secret"
            } else {
                dev.tokenSecret = secret
                tokenOverride = "dev.tokenSecret"
            }
        }
        var turnOverridden = false
        if let secret = environment["HEARTH_TURN_SECRET"], !secret.isEmpty {
            ice.turnSecret = secret
            turnOverridden = true
        }

        func resolve(_ value: String?, key: String) throws(ConfigurationError) -> String? {
            guard let value, value.hasPrefix("env:") else { return value }
            let name = String(value.dropFirst(4))
            guard !name.isEmpty else {
                throw .invalidValue(key: key, problem: "\"env:\" must be followed by an environment variable name")
            }
            guard let resolved = environment[name], !resolved.isEmpty else {
                throw .missingEnvironmentVariable(key: key, variable: name)
            }
            return resolved
        }
        for index in tokens.keys.indices {
            let key = "tokens.keys[\(index)].secret"
            if tokenOverride != key {
                tokens.keys[index].secret = try resolve(tokens.keys[index].secret, key: key)
            }
            tokens.keys[index].publicKey = try resolve(
                tokens.keys[index].publicKey, key: "tokens.keys[\(index)].publicKey")
        }
        if tokenOverride != "dev.tokenSecret" {
            dev.tokenSecret = try resolve(dev.tokenSecret, key: "dev.tokenSecret")
        }
        if !turnOverridden {
            ice.turnSecret = try resolve(ice.turnSecret, key: "ice.turnSecret")
        }

        // Admin keys: HEARTH_ADMIN_SECRET, then env: indirection.
        var adminOverride: Int? = nil
        if let secret = environment["HEARTH_ADMIN_SECRET"], !secret.isEmpty {
            if let index = admin.keys.firstIndex(where: { $0.algorithm == "HS256" }) {
                admin.keys[index].secret = secret
                adminOverride = index
            } else {
                admin.keys.append(Tokens.Key(algorithm: "HS256", secret: secret))
                adminOverride = admin.keys.count - 1
            }
        }
        for index in admin.keys.indices {
            if adminOverride != index {
                admin.keys[index].secret = try resolve(admin.keys[index].secret, key: "admin.keys[\(index)].secret")
            }
            admin.keys[index].publicKey = try resolve(
                admin.keys[index].publicKey, key: "admin.keys[\(index)].publicKey")
        }
    }

    // MARK: Validation

    public static let knownAlgorithms = ["HS256", "EdDSA", "ES256"]
    public static let knownChatPolicies = ["everyone", "staff-only", "off"]
    public static let knownFacilitatorDropPolicies = ["hold", "waiting-room"]
    /// A week: an empty room kept longer is a leak, not a session.
    public static let maxIdleCloseSeconds = 604_800
    public static let knownLogLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
    /// Shortest accepted HS256 / dev token secret, in bytes (RFC 7518 §3.2).
    public static let minimumTokenSecretBytes = 32

    /// Checks every value; throws the first problem found, naming its key.
    public func validate() throws(ConfigurationError) {
        let address = try listenAddress()

        if (tls.certificate == nil) != (tls.privateKey == nil) {
            throw .invalidValue(key: "tls", problem: "set both certificate and privateKey, or neither")
        }
        if tls.certificate?.isEmpty == true {
            throw .invalidValue(key: "tls.certificate", problem: "must not be empty")
        }
        if tls.privateKey?.isEmpty == true { throw .invalidValue(key: "tls.privateKey", problem: "must not be empty") }
        if let ciphers = tls.ciphers, let problem = TransportConfiguration.tls12CipherProblem(ciphers) {
            throw .invalidValue(key: "tls.ciphers", problem: problem)
        }
        if dataDirectory.isEmpty { throw .invalidValue(key: "dataDirectory", problem: "must not be empty") }

        // Tokens.
        var kids = Set<String?>()
        for (index, key) in tokens.keys.enumerated() {
            let path = "tokens.keys[\(index)]"
            guard Self.knownAlgorithms.contains(key.algorithm) else {
                throw .invalidValue(
                    key: "\(path).algorithm",
                    problem: "unknown algorithm \"\(key.algorithm)\" (expected one of HS256, EdDSA, ES256)")
            }
            if key.kid?.isEmpty == true { throw .invalidValue(key: "\(path).kid", problem: "must not be empty") }
            if key.algorithm == "HS256" {
                guard let secret = key.secret, !secret.isEmpty else {
                    throw .invalidValue(key: "\(path).secret", problem: "an HS256 key needs a secret")
                }
                guard secret.utf8.count >= Self.minimumTokenSecretBytes else {
                    throw .invalidValue(
                        key: "\(path).secret", problem: "must be at least \(Self.minimumTokenSecretBytes) bytes")
                }
                if key.publicKey != nil {
                    throw .invalidValue(
                        key: "\(path).publicKey", problem: "an HS256 key takes a secret, not a publicKey")
                }
            } else {
                guard let publicKey = key.publicKey, !publicKey.isEmpty else {
                    throw .invalidValue(key: "\(path).publicKey", problem: "an \(key.algorithm) key needs a publicKey")
                }
                if key.secret != nil {
                    throw .invalidValue(
                        key: "\(path).secret", problem: "an \(key.algorithm) key takes a publicKey, not a secret")
                }
                if Self.examplePublicKeys.contains(where: publicKey.contains) {
                    throw .invalidValue(key: "\(path).publicKey", problem: Self.examplePublicKeyProblem)
                }
            }
            guard kids.insert(key.kid).inserted else {
                throw .invalidValue(
                    key: "\(path).kid",
                    problem: key.kid.map { "duplicate kid \"\($0)\"" } ?? "more than one key without kid")
            }
        }
        if let secret = dev.tokenSecret {
            guard secret.utf8.count >= Self.minimumTokenSecretBytes else {
                throw .invalidValue(
                    key: "dev.tokenSecret", problem: "must be at least \(Self.minimumTokenSecretBytes) bytes")
            }
            if kids.contains(nil) {
                throw .invalidValue(
                    key: "dev.tokenSecret",
                    problem: "the dev key is the default key (no kid), but tokens.keys already has a key without kid")
            }
            if secret == Self.developmentTokenSecret && !Self.isLoopback(address.host) {
                throw .invalidValue(
                    key: "dev.tokenSecret",
                    problem:
                        "the built-in development secret is public; it may only be used with a loopback listen address")
            }
        }
        if tokens.keys.isEmpty && dev.tokenSecret == nil {
            throw .invalidValue(
                key: "tokens.keys", problem: "no token keys: configure tokens.keys (or dev.tokenSecret for development)"
            )
        }
        if tokens.leewaySeconds < 0 {
            throw .invalidValue(key: "tokens.leewaySeconds", problem: "must not be negative")
        }
        if tokens.maxLifetimeSeconds <= 0 {
            throw .invalidValue(key: "tokens.maxLifetimeSeconds", problem: "must be positive")
        }
        try validateAdmin(loopback: Self.isLoopback(address.host))

        // ICE.
        for (index, server) in ice.servers.enumerated() {
            let path = "ice.servers[\(index)]"
            if server.urls.isEmpty { throw .invalidValue(key: "\(path).urls", problem: "must list at least one URL") }
            for url in server.urls where !(url.hasPrefix("stun:") || url.hasPrefix("turn:") || url.hasPrefix("turns:"))
            {
                throw .invalidValue(key: "\(path).urls", problem: "\"\(url)\" is not a stun:, turn: or turns: URL")
            }
            if server.turn && (ice.turnSecret ?? "").isEmpty {
                throw .invalidValue(key: "ice.turnSecret", problem: "\(path) has turn: true, so a turnSecret is needed")
            }
        }
        if ice.turnTTLSeconds <= 0 { throw .invalidValue(key: "ice.turnTTLSeconds", problem: "must be positive") }

        // Limits: all positive.
        let positive: [(String, Int)] = [
            ("maxMessageBytes", limits.maxMessageBytes), ("sendQueueMaxMessages", limits.sendQueueMaxMessages),
            ("sendQueueMaxBytes", limits.sendQueueMaxBytes), ("helloTimeoutSeconds", limits.helloTimeoutSeconds),
            ("pingIntervalSeconds", limits.pingIntervalSeconds), ("hangupSeconds", limits.hangupSeconds),
            ("maxMalformedMessages", limits.maxMalformedMessages), ("maxChatLength", limits.maxChatLength),
            ("maxSignalBytes", limits.maxSignalBytes), ("maxRooms", limits.maxRooms), ("maxWaiting", limits.maxWaiting),
            ("journalQueueMaxEntries", limits.journalQueueMaxEntries),
        ]
        for (name, value) in positive where value <= 0 {
            throw .invalidValue(key: "limits.\(name)", problem: "must be positive (got \(value))")
        }
        if limits.maxConnectionsPerAddress < 0 {
            throw .invalidValue(key: "limits.maxConnectionsPerAddress", problem: "must not be negative")
        }
        let rates: [(String, Double)] = [
            ("authFailureBurst", Double(rateLimits.authFailureBurst)),
            ("authFailuresPerSecond", rateLimits.authFailuresPerSecond), ("chatBurst", Double(rateLimits.chatBurst)),
            ("chatPerSecond", rateLimits.chatPerSecond), ("signalBurst", Double(rateLimits.signalBurst)),
            ("signalPerSecond", rateLimits.signalPerSecond),
            ("signalPairBurst", Double(rateLimits.signalPairBurst)),
            ("signalPairPerSecond", rateLimits.signalPairPerSecond), ("controlBurst", Double(rateLimits.controlBurst)),
            ("controlPerSecond", rateLimits.controlPerSecond), ("maxStrikes", Double(rateLimits.maxStrikes)),
        ]
        for (name, value) in [
            ("auditDays", retention.auditDays), ("attendanceDays", retention.attendanceDays),
            ("endedRoomHours", retention.endedRoomHours),
        ] where value <= 0 {
            throw .invalidValue(key: "retention.\(name)", problem: "must be positive (got \(value))")
        }
        for (name, value) in rates where !(value > 0) {
            throw .invalidValue(key: "rateLimits.\(name)", problem: "must be positive (got \(value))")
        }
        if limits.socketSendBufferBytes < 0 || limits.socketSendBufferBytes > 1 << 30 {
            throw .invalidValue(
                key: "limits.socketSendBufferBytes", problem: "must be 0 (kernel auto-tuning) or 1 ... 1 GiB")
        }
        if limits.sendQueueMaxBytes < limits.maxMessageBytes {
            throw .invalidValue(key: "limits.sendQueueMaxBytes", problem: "must be at least limits.maxMessageBytes")
        }
        if limits.maxSignalBytes > limits.maxMessageBytes {
            throw .invalidValue(key: "limits.maxSignalBytes", problem: "must not exceed limits.maxMessageBytes")
        }
        if limits.hangupSeconds <= limits.pingIntervalSeconds {
            throw .invalidValue(key: "limits.hangupSeconds", problem: "must be longer than limits.pingIntervalSeconds")
        }

        // Rooms.
        if rooms.capacity < 1 {
            throw .invalidValue(key: "rooms.capacity", problem: "must be at least 1 (got \(rooms.capacity))")
        }
        if rooms.consentVersion?.isEmpty == true {
            throw .invalidValue(key: "rooms.consentVersion", problem: "must not be empty (omit it for no consent step)")
        }
        guard Self.knownChatPolicies.contains(rooms.chatPolicy) else {
            throw .invalidValue(
                key: "rooms.chatPolicy",
                problem: "unknown chat policy \"\(rooms.chatPolicy)\" (expected everyone, staff-only or off)")
        }
        guard Self.knownFacilitatorDropPolicies.contains(rooms.facilitatorDrop) else {
            throw .invalidValue(
                key: "rooms.facilitatorDrop",
                problem: "unknown policy \"\(rooms.facilitatorDrop)\" (expected hold or waiting-room)")
        }
        if rooms.graceSeconds < 0 { throw .invalidValue(key: "rooms.graceSeconds", problem: "must not be negative") }
        if rooms.replayWindow < 0 { throw .invalidValue(key: "rooms.replayWindow", problem: "must not be negative") }
        if !(1...Self.maxIdleCloseSeconds).contains(rooms.idleCloseSeconds) {
            throw .invalidValue(
                key: "rooms.idleCloseSeconds",
                problem: "must be between 1 and \(Self.maxIdleCloseSeconds) (got \(rooms.idleCloseSeconds))")
        }

        for origin in allowedOrigins
        where origin != "*" && !(origin.hasPrefix("https://") || origin.hasPrefix("http://")) {
            throw .invalidValue(key: "allowedOrigins", problem: "\"\(origin)\" is not an http(s):// origin or *")
        }
        for proxy in trustedProxies where IPNetwork(proxy) == nil {
            throw .invalidValue(
                key: "trustedProxies", problem: "\"\(proxy)\" is not an IP address or CIDR block (e.g. 10.0.0.0/8)")
        }
        guard Self.knownLogLevels.contains(logLevel) else {
            throw .invalidValue(
                key: "logLevel",
                problem:
                    "unknown level \"\(logLevel)\" (expected one of \(Self.knownLogLevels.joined(separator: ", ")))")
        }
    }

    /// The `admin` section: keys shaped like `tokens.keys`, each loadable, none sharing a secret
    /// or public key with a join-token key; the development admin secret on loopback only.
    private func validateAdmin(loopback: Bool) throws(ConfigurationError) {
        var kids = Set<String?>()
        let joinSecrets = Set(tokens.keys.compactMap(\.secret) + (dev.tokenSecret.map { [$0] } ?? []))
        let joinPublicKeys = Set(tokens.keys.compactMap(\.publicKey))
        for (index, key) in admin.keys.enumerated() {
            let path = "admin.keys[\(index)]"
            guard Self.knownAlgorithms.contains(key.algorithm) else {
                throw .invalidValue(
                    key: "\(path).algorithm",
                    problem: "unknown algorithm \"\(key.algorithm)\" (expected one of HS256, EdDSA, ES256)")
            }
            if key.kid?.isEmpty == true { throw .invalidValue(key: "\(path).kid", problem: "must not be empty") }
            if key.algorithm == "HS256" {
                guard let secret = key.secret, !secret.isEmpty else {
                    throw .invalidValue(key: "\(path).secret", problem: "an HS256 key needs a secret")
                }
                guard secret.utf8.count >= Self.minimumTokenSecretBytes else {
                    throw .invalidValue(
                        key: "\(path).secret", problem: "must be at least \(Self.minimumTokenSecretBytes) bytes")
                }
                if key.publicKey != nil {
                    throw .invalidValue(
                        key: "\(path).publicKey", problem: "an HS256 key takes a secret, not a publicKey")
                }
                if joinSecrets.contains(secret) {
                    throw .invalidValue(
                        key: "\(path).secret",
                        problem: "must differ from every join-token secret (tokens.keys, dev.tokenSecret)")
                }
                if secret == Self.developmentAdminSecret && !loopback {
                    throw .invalidValue(
                        key: "\(path).secret",
                        problem:
                            "the built-in development admin secret is public; it may only be used with a loopback listen address"
                    )
                }
            } else {
                guard let publicKey = key.publicKey, !publicKey.isEmpty else {
                    throw .invalidValue(key: "\(path).publicKey", problem: "an \(key.algorithm) key needs a publicKey")
                }
                if key.secret != nil {
                    throw .invalidValue(
                        key: "\(path).secret", problem: "an \(key.algorithm) key takes a publicKey, not a secret")
                }
                if joinPublicKeys.contains(publicKey) {
                    throw .invalidValue(
                        key: "\(path).publicKey", problem: "must differ from every join-token key (tokens.keys)")
                }
            }
            do {
                _ = try TokenKey(algorithm: key.algorithm, secret: key.secret, publicKey: key.publicKey, kid: key.kid)
            } catch {
                throw .invalidValue(key: path, problem: error.description)
            }
            guard kids.insert(key.kid).inserted else {
                throw .invalidValue(
                    key: "\(path).kid",
                    problem: key.kid.map { "duplicate kid \"\($0)\"" } ?? "more than one key without kid")
            }
        }
        if admin.leewaySeconds < 0 {
            throw .invalidValue(key: "admin.leewaySeconds", problem: "must not be negative")
        }
        if admin.maxLifetimeSeconds <= 0 {
            throw .invalidValue(key: "admin.maxLifetimeSeconds", problem: "must be positive")
        }
    }

    /// `listen` split into host and port (brackets removed from an IPv6 host).
    public func listenAddress() throws(ConfigurationError) -> (host: String, port: Int) {
        let host: Substring
        let portText: Substring
        if listen.hasPrefix("[") {
            guard let close = listen.firstIndex(of: "]"),
                listen[listen.index(after: close)...].hasPrefix(":")
            else {
                throw .invalidValue(key: "listen", problem: "\"\(listen)\" is not [IPV6]:PORT")
            }
            host = listen[listen.index(after: listen.startIndex)..<close]
            portText = listen[listen.index(close, offsetBy: 2)...]
        } else {
            guard let colon = listen.lastIndex(of: ":"), !listen[..<colon].contains(":") else {
                throw .invalidValue(key: "listen", problem: "\"\(listen)\" is not HOST:PORT")
            }
            host = listen[..<colon]
            portText = listen[listen.index(after: colon)...]
        }
        guard !host.isEmpty else { throw .invalidValue(key: "listen", problem: "\"\(listen)\" has no host") }
        guard let port = Int(portText), (1...65_535).contains(port) else {
            throw .invalidValue(key: "listen", problem: "port \"\(portText)\" is not in 1...65535")
        }
        return (String(host), port)
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    // MARK: Redaction

    /// A copy with every secret replaced by `"<redacted>"` (safe to log).
    public var redacted: HearthConfiguration {
        var copy = self
        let mask = "<redacted>"
        for index in copy.tokens.keys.indices where copy.tokens.keys[index].secret != nil {
            copy.tokens.keys[index].secret = mask
        }
        if copy.dev.tokenSecret != nil { copy.dev.tokenSecret = mask }
        for index in copy.admin.keys.indices where copy.admin.keys[index].secret != nil {
            copy.admin.keys[index].secret = mask
        }
        if copy.ice.turnSecret != nil { copy.ice.turnSecret = mask }
        return copy
    }

    /// The ``redacted`` configuration as YAML.
    public var description: String {
        (try? YAMLEncoder().encode(redacted)) ?? "HearthConfiguration(<unencodable>)"
    }

    /// Notes worth logging at startup (development key in use, no browser origins allowed).
    public var warnings: [String] {
        var notes: [String] = []
        if dev.tokenSecret == Self.developmentTokenSecret {
            notes.append(
                "using the built-in development token secret: anyone can mint tokens; do not use in production")
        } else if dev.tokenSecret != nil {
            notes.append("dev.tokenSecret is set: a development key is accepting tokens")
        }
        if admin.keys.contains(where: { $0.secret == Self.developmentAdminSecret }) {
            notes.append(
                "admin.keys holds the public development admin secret: anyone can call the operations API; do not use in production"
            )
        } else if admin.keys.isEmpty {
            notes.append("admin.keys is empty: the operations API (/api/v1/) is disabled")
        }
        if tls.certificate == nil {
            notes.append("tls.certificate/privateKey not set: a development certificate is expected")
        }
        if allowedOrigins.isEmpty {
            notes.append(
                "allowedOrigins is empty: upgrades from any Origin are accepted; list the clinic's web origins")
        }
        if allowedOrigins.contains("*") { notes.append("allowedOrigins contains *: any web page may connect") }
        return notes
    }

    // MARK: Codable (every key optional, unknown keys refused)

    enum CodingKeys: String, CodingKey, CaseIterable {
        case listen, tls, dataDirectory, tokens, dev, admin, ice, limits, rateLimits, retention, rooms, allowedOrigins
        case trustedProxies, logLevel
    }

    public init(from decoder: any Decoder) throws {
        let c = try strictContainer(decoder, CodingKeys.self)
        let d = HearthConfiguration()
        listen = try c.value(.listen, default: d.listen)
        tls = try c.value(.tls, default: d.tls)
        dataDirectory = try c.value(.dataDirectory, default: d.dataDirectory)
        tokens = try c.value(.tokens, default: d.tokens)
        dev = try c.value(.dev, default: d.dev)
        admin = try c.value(.admin, default: d.admin)
        ice = try c.value(.ice, default: d.ice)
        limits = try c.value(.limits, default: d.limits)
        rateLimits = try c.value(.rateLimits, default: d.rateLimits)
        retention = try c.value(.retention, default: d.retention)
        rooms = try c.value(.rooms, default: d.rooms)
        allowedOrigins = try c.value(.allowedOrigins, default: d.allowedOrigins)
        trustedProxies = try c.value(.trustedProxies, default: d.trustedProxies)
        logLevel = try c.value(.logLevel, default: d.logLevel)
    }
}

extension HearthConfiguration.TLS {
    enum CodingKeys: String, CodingKey, CaseIterable { case certificate, privateKey, ciphers }

    public init(from decoder: any Decoder) throws {
        let c = try strictContainer(decoder, CodingKeys.self)
        certificate = try c.decodeIfPresent(String.self, forKey: .certificate)
        privateKey = try c.decodeIfPresent(String.self, forKey: .privateKey)
        ciphers = try c.decodeIfPresent(String.self, forKey: .ciphers)
    }
}

extension HearthConfiguration.Tokens {
    enum CodingKeys: String, CodingKey, CaseIterable { case keys, leewaySeconds, maxLifetimeSeconds, requireRefresh }

    public init(from decoder: any Decoder) throws {
        let c = try strictContainer(decoder, CodingKeys.self)
        let d = Self()
        keys = try c.value(.keys, default: d.keys)
        leewaySeconds = try c.value(.leewaySeconds, default: d.leewaySeconds)
        maxLifetimeSeconds = try c.value(.maxLifetimeSeconds, default: d.maxLifetimeSeconds)
        requireRefresh = try c.value(.requireRefresh, default: d.requireRefresh)
    }
}

extension HearthConfiguration.Tokens.Key {
    enum CodingKeys: String, CodingKey, CaseIterable { case kid, algorithm, secret, publicKey }

    public init(from decoder: any Decoder) throws {
        let c = try strictContainer(decoder, CodingKeys.self)
        let d = Self()
        kid = try c.decodeIfPresent(String.self, forKey: .kid)
        algorithm = try c.value(.algorithm, default: d.algorithm)
        secret = try c.decodeIfPresent(String.self, forKey: .secret)
        publicKey = try c.decodeIfPresent(String.self, forKey: .publicKey)
    }
}

extension HearthConfiguration.Dev {
    enum CodingKeys: String, CodingKey, CaseIterable { case tokenSecret }

    public init(from decoder: any Decoder) throws {
        let c = try strictContainer(decoder, CodingKeys.self)
        tokenSecret = try c.decodeIfPresent(String.self, forKey: .tokenSecret)
    }
}

extension HearthConfiguration.Admin {
    enum CodingKeys: String, CodingKey, CaseIterable { case keys, leewaySeconds, maxLifetimeSeconds }

    public init(from decoder: any Decoder) throws {
        let c = try strictContainer(decoder, CodingKeys.self)
        let d = Self()
        keys = try c.value(.keys, default: d.keys)
        leewaySeconds = try c.value(.leewaySeconds, default: d.leewaySeconds)
        maxLifetimeSeconds = try c.value(.maxLifetimeSeconds, default: d.maxLifetimeSeconds)
    }
}

extension HearthConfiguration.ICE {
    enum CodingKeys: String, CodingKey, CaseIterable { case servers, turnSecret, turnTTLSeconds }

    public init(from decoder: any Decoder) throws {
        let c = try strictContainer(decoder, CodingKeys.self)
        let d = Self()
        servers = try c.value(.servers, default: d.servers)
        turnSecret = try c.decodeIfPresent(String.self, forKey: .turnSecret)
        turnTTLSeconds = try c.value(.turnTTLSeconds, default: d.turnTTLSeconds)
    }
}

extension HearthConfiguration.ICE.Server {
    enum CodingKeys: String, CodingKey, CaseIterable { case urls, turn }

    public init(from decoder: any Decoder) throws {
        let c = try strictContainer(decoder, CodingKeys.self)
        let d = Self()
        urls = try c.value(.urls, default: d.urls)
        turn = try c.value(.turn, default: d.turn)
    }
}

extension HearthConfiguration.Limits {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case maxMessageBytes, sendQueueMaxMessages, sendQueueMaxBytes, socketSendBufferBytes, helloTimeoutSeconds
        case pingIntervalSeconds, hangupSeconds, maxMalformedMessages, maxChatLength, maxSignalBytes
        case maxConnectionsPerAddress, maxRooms, maxWaiting, journalQueueMaxEntries
    }

    public init(from decoder: any Decoder) throws {
        let c = try strictContainer(decoder, CodingKeys.self)
        let d = Self()
        maxMessageBytes = try c.value(.maxMessageBytes, default: d.maxMessageBytes)
        sendQueueMaxMessages = try c.value(.sendQueueMaxMessages, default: d.sendQueueMaxMessages)
        sendQueueMaxBytes = try c.value(.sendQueueMaxBytes, default: d.sendQueueMaxBytes)
        socketSendBufferBytes = try c.value(.socketSendBufferBytes, default: d.socketSendBufferBytes)
        helloTimeoutSeconds = try c.value(.helloTimeoutSeconds, default: d.helloTimeoutSeconds)
        pingIntervalSeconds = try c.value(.pingIntervalSeconds, default: d.pingIntervalSeconds)
        hangupSeconds = try c.value(.hangupSeconds, default: d.hangupSeconds)
        maxMalformedMessages = try c.value(.maxMalformedMessages, default: d.maxMalformedMessages)
        maxChatLength = try c.value(.maxChatLength, default: d.maxChatLength)
        maxSignalBytes = try c.value(.maxSignalBytes, default: d.maxSignalBytes)
        maxConnectionsPerAddress = try c.value(.maxConnectionsPerAddress, default: d.maxConnectionsPerAddress)
        maxRooms = try c.value(.maxRooms, default: d.maxRooms)
        maxWaiting = try c.value(.maxWaiting, default: d.maxWaiting)
        journalQueueMaxEntries = try c.value(.journalQueueMaxEntries, default: d.journalQueueMaxEntries)
    }
}

extension HearthConfiguration.Retention {
    enum CodingKeys: String, CodingKey, CaseIterable { case auditDays, attendanceDays, endedRoomHours }

    public init(from decoder: any Decoder) throws {
        let c = try strictContainer(decoder, CodingKeys.self)
        let d = Self()
        auditDays = try c.value(.auditDays, default: d.auditDays)
        attendanceDays = try c.value(.attendanceDays, default: d.attendanceDays)
        endedRoomHours = try c.value(.endedRoomHours, default: d.endedRoomHours)
    }
}

extension HearthConfiguration.RateLimits {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case authFailureBurst, authFailuresPerSecond, chatBurst, chatPerSecond, signalBurst, signalPerSecond
        case signalPairBurst, signalPairPerSecond, controlBurst, controlPerSecond, maxStrikes
    }

    public init(from decoder: any Decoder) throws {
        let c = try strictContainer(decoder, CodingKeys.self)
        let d = Self()
        authFailureBurst = try c.value(.authFailureBurst, default: d.authFailureBurst)
        authFailuresPerSecond = try c.value(.authFailuresPerSecond, default: d.authFailuresPerSecond)
        chatBurst = try c.value(.chatBurst, default: d.chatBurst)
        chatPerSecond = try c.value(.chatPerSecond, default: d.chatPerSecond)
        signalBurst = try c.value(.signalBurst, default: d.signalBurst)
        signalPerSecond = try c.value(.signalPerSecond, default: d.signalPerSecond)
        signalPairBurst = try c.value(.signalPairBurst, default: d.signalPairBurst)
        signalPairPerSecond = try c.value(.signalPairPerSecond, default: d.signalPairPerSecond)
        controlBurst = try c.value(.controlBurst, default: d.controlBurst)
        controlPerSecond = try c.value(.controlPerSecond, default: d.controlPerSecond)
        maxStrikes = try c.value(.maxStrikes, default: d.maxStrikes)
    }
}

extension HearthConfiguration.RoomDefaults {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case capacity, waitingRoom, consentVersion, requireLocation, chatPolicy, privateMessages
        case selfUnmute, graceSeconds, facilitatorDrop, replayWindow, idleCloseSeconds
    }

    public init(from decoder: any Decoder) throws {
        let c = try strictContainer(decoder, CodingKeys.self)
        let d = Self()
        capacity = try c.value(.capacity, default: d.capacity)
        waitingRoom = try c.value(.waitingRoom, default: d.waitingRoom)
        consentVersion = try c.decodeIfPresent(String.self, forKey: .consentVersion)
        requireLocation = try c.value(.requireLocation, default: d.requireLocation)
        chatPolicy = try c.value(.chatPolicy, default: d.chatPolicy)
        privateMessages = try c.value(.privateMessages, default: d.privateMessages)
        selfUnmute = try c.value(.selfUnmute, default: d.selfUnmute)
        graceSeconds = try c.value(.graceSeconds, default: d.graceSeconds)
        facilitatorDrop = try c.value(.facilitatorDrop, default: d.facilitatorDrop)
        replayWindow = try c.value(.replayWindow, default: d.replayWindow)
        idleCloseSeconds = try c.value(.idleCloseSeconds, default: d.idleCloseSeconds)
    }
}

// MARK: - Errors

/// A configuration problem; `description` names the key (`limits.maxMessageBytes`) and the
/// problem. Messages never contain secret values.
public enum ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    case unreadableFile(path: String, reason: String)
    /// The file is not valid YAML (or not a mapping where one is expected).
    case syntax(String)
    /// A key the configuration does not know (a typo?), with its full path.
    case unknownKey(String)
    case invalidValue(key: String, problem: String)
    /// A value `"env:NAME"` whose variable is unset or empty.
    case missingEnvironmentVariable(key: String, variable: String)

    /// The dotted key the problem concerns, if any.
    public var key: String? {
        switch self {
        case .unreadableFile, .syntax: nil
        case .unknownKey(let key): key
        case .invalidValue(let key, _): key
        case .missingEnvironmentVariable(let key, _): key
        }
    }

    public var description: String {
        switch self {
        case .unreadableFile(let path, let reason): "cannot read configuration file \(path): \(reason)"
        case .syntax(let message): "configuration is not valid YAML: \(message)"
        case .unknownKey(let key): "unknown configuration key \"\(key)\" (check the spelling)"
        case .invalidValue(let key, let problem): "configuration key \"\(key)\": \(problem)"
        case .missingEnvironmentVariable(let key, let variable):
            "configuration key \"\(key)\": environment variable \(variable) is not set"
        }
    }

    init(decodingError error: DecodingError) {
        func path(_ codingPath: [any CodingKey]) -> String {
            var text = ""
            for key in codingPath {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += text.isEmpty ? key.stringValue : "." + key.stringValue
                }
            }
            return text.isEmpty ? "(top level)" : text
        }
        switch error {
        case .typeMismatch(let type, let context):
            self = .invalidValue(key: path(context.codingPath), problem: "expected \(Self.describe(type))")
        case .valueNotFound(let type, let context):
            self = .invalidValue(key: path(context.codingPath), problem: "expected \(Self.describe(type)), found null")
        case .keyNotFound(let key, let context):
            self = .invalidValue(key: path(context.codingPath + [key]), problem: "is required")
        case .dataCorrupted(let context):
            self = .invalidValue(key: path(context.codingPath), problem: context.debugDescription)
        @unknown default:
            self = .syntax(String(describing: error))
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: "an integer"
        case is Bool.Type: "true or false"
        case is String.Type: "a string"
        case is Node.Sequence.Type: "a list"
        case is Node.Mapping.Type: "a mapping"
        case is Node.Scalar.Type: "a single value, not a list or mapping"
        default: "a value of type \(type)"
        }
    }
}

// MARK: - Decoding helpers

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A keyed container that first refuses keys not in `Keys` (naming the full dotted path).
private func strictContainer<Keys: CodingKey & CaseIterable>(_ decoder: any Decoder, _: Keys.Type) throws
    -> KeyedDecodingContainer<Keys>
{
    let known = Set(Keys.allCases.map(\.stringValue))
    let all = try decoder.container(keyedBy: AnyKey.self)
    if let unknown = all.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) {
        var path = ""
        for key in decoder.codingPath {
            if let index = key.intValue {
                path += "[\(index)]"
            } else {
                path += path.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
        throw ConfigurationError.unknownKey(path.isEmpty ? unknown : path + "." + unknown)
    }
    return try decoder.container(keyedBy: Keys.self)
}

extension KeyedDecodingContainer {
    /// The value for `key`, or `defaultValue` when the key is absent or null.
    fileprivate func value<T: Decodable>(_ key: Key, default defaultValue: T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? defaultValue
    }
}
