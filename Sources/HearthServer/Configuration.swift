import Foundation
import HearthCore
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
    /// A second, plaintext listener for a reverse proxy on the same machine: `unix:/path`
    /// only (never TCP). Its `X-Forwarded-For` names the client (docs/deploy.md, "A cluster").
    public var internalListen: String?
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
    /// The web app at `/app/`.
    public var web = Web()
    /// The SFU mode's media server (docs/deploy.md, "SFU"). Without `janusSocket` every room uses the mesh.
    public var sfu = SFU()
    /// Where the journal lives: `sqlite` (the embedded file in `dataDirectory`, one node owns
    /// every room) or `postgres` (the cluster's shared store; `postgres` below).
    public var store: StoreKind = .sqlite
    /// The cluster's shared store, for `store: postgres` (docs/deploy.md, "A cluster").
    public var postgres = Postgres()
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

        public init() {}

        public init(certificate: String? = nil, privateKey: String? = nil, ciphers: String? = nil) {
            self.certificate = certificate
            self.privateKey = privateKey
            self.ciphers = ciphers
        }
    }

    public struct SFU: Sendable, Codable, Equatable {
        /// The Unix socket of Janus's API (its `pfunix` transport, `SOCK_SEQPACKET`), on this
        /// machine. Nil: no SFU; rooms use the mesh.
        public var janusSocket: String?
        /// Janus's `general.api_secret` (may be `env:NAME`).
        public var apiSecret: String?
        /// The VideoRoom plugin's `admin_key`, which room creation needs (may be `env:NAME`).
        public var adminKey: String?

        public init() {}

        public var isEnabled: Bool { janusSocket != nil }
    }

    public enum StoreKind: String, Sendable, Codable, Equatable {
        case sqlite
        case postgres
    }

    public struct Postgres: Sendable, Codable, Equatable {
        /// libpq's connection string (`host=… port=… dbname=… user=…`; may be `env:NAME`, and
        /// `HEARTH_POSTGRES` overrides it). Passwords belong in `~/.pgpass` or the environment.
        public var conninfo: String?
        /// This node's name in the cluster: unique, and the same across its restarts.
        public var node: String?
        /// How long a node's lease lives without renewal (renewed every second). A node that
        /// cannot renew for this long stops serving; its rooms can be claimed after it.
        public var leaseSeconds: Double = 5

        public init() {}
    }

    public struct Web: Sendable, Codable, Equatable {
        /// A directory with the layout of the repository's `web/` (`app/index.html`, `app/…`,
        /// `sdk/…`) to serve at `/app/` instead of the files built into hearthd (a clinic's
        /// branding). Read once at start. Nil: the built-in app.
        public var root: String?

        public init() {}
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

            public init() {}

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

        public init() {}

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

            public init() {}

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
        /// Event-loop time that joins (`hello`, `resume`) and departures (a joined connection's
        /// close, told to the engine) may take in one loop iteration (0: no bound). Past it,
        /// they wait for the following iterations, joins first (`JoinPacer`), so that
        /// thousands of clients dropping or resuming at once do not stall the rooms already
        /// running. 4 ms: with the TLS handshakes charged to the accept budget, six 10k reconnect
        /// storms left the other rooms a chat p99 of 37–45 ms (51–54 ms at 8, 25–100 ms at 2),
        /// all back in 6.1–6.7 s (6.1–6.3 s at 8), and joins at 2,000/s were admitted as fast
        /// (loadtest/RESULTS.md, issue 16 part 2).
        public var joinBudgetMilliseconds: Int = 4
        public var helloTimeoutSeconds: Int = 5
        public var pingIntervalSeconds: Int = 20
        public var hangupSeconds: Int = 40
        /// Malformed messages tolerated from one connection before it is closed.
        public var maxMalformedMessages: Int = 10
        public var maxChatLength: Int = 2000
        public var maxSignalBytes: Int = 16_384
        /// Open connections from one address (0 = no limit). Behind a load balancer, raise it.
        public var maxConnectionsPerAddress: Int = 200
        /// Connections in their TLS handshake (before their first request) held at once (0 =
        /// no bound); the rest wait in the kernel's accept queue (`Listener`).
        public var maxHandshakesInFlight: Int = 1024
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
        public var chatPolicy: ChatPolicy = .everyone
        public var privateMessages: Bool = false
        public var selfUnmute: Bool = true
        public var graceSeconds: Int = 60
        /// `hold` or `waiting-room`.
        public var facilitatorDrop: FacilitatorDropPolicy = .hold
        public var replayWindow: Int = 512
        /// How long a room with no seat (none live, none held) stays open before it ends by itself.
        public var idleCloseSeconds: Int = 1800
        /// `mesh`, `sfu` or `auto` (mesh up to `meshLimit` admitted members, then SFU). Without
        /// `sfu.janusSocket`, `sfu` is refused and `auto` means `mesh`.
        public var media: MediaMode = .auto
        /// With `media: auto`, the most admitted members (staff included) a mesh carries.
        public var meshLimit: Int = 4

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

    // MARK: Validation

    public static let knownAlgorithms = ["HS256", "EdDSA", "ES256"]
    /// A week: an empty room kept longer is a leak, not a session.
    public static let maxIdleCloseSeconds = 604_800
    public static let knownLogLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
    /// Shortest accepted HS256 / dev token secret, in bytes (RFC 7518 §3.2).
    public static let minimumTokenSecretBytes = 32

    /// Checks every value; throws the first problem found, naming its key.
    public func validate() throws(ConfigurationError) {
        let address = try listenAddress()
        let loopback = Self.isLoopback(address.host)
        try validateTLSAndStorage()
        try validateTokens(loopback: loopback)
        try validateAdmin(loopback: loopback)
        try validateICEAndLimits()

        // Rooms.
        if rooms.capacity < 1 {
            throw .invalidValue(key: "rooms.capacity", problem: "must be at least 1 (got \(rooms.capacity))")
        }
        if rooms.consentVersion?.isEmpty == true {
            throw .invalidValue(key: "rooms.consentVersion", problem: "must not be empty (omit it for no consent step)")
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
        if let internalListen {
            guard internalListen.hasPrefix("unix:/"), internalListen.utf8.count <= 5 + 107 else {
                throw .invalidValue(
                    key: "internalListen",
                    problem: "must be unix:/absolute/path (at most 107 bytes): plaintext is never served on TCP")
            }
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
        if copy.sfu.apiSecret != nil { copy.sfu.apiSecret = mask }
        if copy.sfu.adminKey != nil { copy.sfu.adminKey = mask }
        if copy.postgres.conninfo != nil { copy.postgres.conninfo = mask }
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
}
