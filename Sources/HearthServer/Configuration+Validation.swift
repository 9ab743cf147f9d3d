import HearthAuth
import HearthTransport

// Validation of each section, in the order `validate()` runs them. Join-token keys and admin
// keys have the same shape and are checked by one function (`validateKeys`).
extension HearthConfiguration {
    /// TLS files and ciphers, the data directory.
    func validateTLSAndStorage() throws(ConfigurationError) {
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
    }

    /// `tokens` and `dev`: the join-token keys.
    func validateTokens(loopback: Bool) throws(ConfigurationError) {
        let kids = try Self.validateKeys(tokens.keys, section: "tokens.keys") { key, path throws(ConfigurationError) in
            if let publicKey = key.publicKey, Self.examplePublicKeys.contains(where: publicKey.contains) {
                throw .invalidValue(key: "\(path).publicKey", problem: Self.examplePublicKeyProblem)
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
            if secret == Self.developmentTokenSecret && !loopback {
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
    }

    /// The `admin` section: keys shaped like `tokens.keys`, each loadable, none sharing a secret
    /// or public key with a join-token key; the development admin secret on loopback only.
    func validateAdmin(loopback: Bool) throws(ConfigurationError) {
        let joinSecrets = Set(tokens.keys.compactMap(\.secret) + (dev.tokenSecret.map { [$0] } ?? []))
        let joinPublicKeys = Set(tokens.keys.compactMap(\.publicKey))
        _ = try Self.validateKeys(admin.keys, section: "admin.keys") { key, path throws(ConfigurationError) in
            if let secret = key.secret, key.algorithm == "HS256" {
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
            }
            if let publicKey = key.publicKey, joinPublicKeys.contains(publicKey) {
                throw .invalidValue(
                    key: "\(path).publicKey", problem: "must differ from every join-token key (tokens.keys)")
            }
            do throws(TokenKeyError) {
                _ = try TokenKey(algorithm: key.algorithm, secret: key.secret, publicKey: key.publicKey, kid: key.kid)
            } catch {
                throw .invalidValue(key: path, problem: error.description)
            }
        }
        if admin.leewaySeconds < 0 {
            throw .invalidValue(key: "admin.leewaySeconds", problem: "must not be negative")
        }
        if admin.maxLifetimeSeconds <= 0 {
            throw .invalidValue(key: "admin.maxLifetimeSeconds", problem: "must be positive")
        }
    }

    /// One list of keys (`tokens.keys`, `admin.keys`): a known algorithm, a non-empty `kid`, a
    /// secret of at least ``minimumTokenSecretBytes`` for HS256 or a public key otherwise (never
    /// both), then the section's own checks (`extra`), and at most one key per `kid` (at most
    /// one without). Returns the kids.
    static func validateKeys(
        _ keys: [Tokens.Key], section: String,
        extra: (Tokens.Key, String) throws(ConfigurationError) -> Void
    ) throws(ConfigurationError) -> Set<String?> {
        var kids = Set<String?>()
        for (index, key) in keys.enumerated() {
            let path = "\(section)[\(index)]"
            guard knownAlgorithms.contains(key.algorithm) else {
                throw .invalidValue(
                    key: "\(path).algorithm",
                    problem: "unknown algorithm \"\(key.algorithm)\" (expected one of HS256, EdDSA, ES256)")
            }
            if key.kid?.isEmpty == true { throw .invalidValue(key: "\(path).kid", problem: "must not be empty") }
            if key.algorithm == "HS256" {
                guard let secret = key.secret, !secret.isEmpty else {
                    throw .invalidValue(key: "\(path).secret", problem: "an HS256 key needs a secret")
                }
                guard secret.utf8.count >= minimumTokenSecretBytes else {
                    throw .invalidValue(
                        key: "\(path).secret", problem: "must be at least \(minimumTokenSecretBytes) bytes")
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
            }
            try extra(key, path)
            guard kids.insert(key.kid).inserted else {
                throw .invalidValue(
                    key: "\(path).kid",
                    problem: key.kid.map { "duplicate kid \"\($0)\"" } ?? "more than one key without kid")
            }
        }
        return kids
    }

    /// ICE servers, limits, rate limits and retention.
    func validateICEAndLimits() throws(ConfigurationError) {
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

        // SFU.
        if let socket = sfu.janusSocket {
            if !socket.hasPrefix("/") {
                throw .invalidValue(key: "sfu.janusSocket", problem: "must be an absolute path")
            }
            if (sfu.apiSecret ?? "").isEmpty {
                throw .invalidValue(
                    key: "sfu.apiSecret", problem: "is needed with sfu.janusSocket (Janus's api_secret)")
            }
            if (sfu.adminKey ?? "").isEmpty {
                throw .invalidValue(
                    key: "sfu.adminKey", problem: "is needed with sfu.janusSocket (the VideoRoom's admin_key)")
            }
        } else if rooms.media == .sfu {
            throw .invalidValue(key: "rooms.media", problem: "sfu needs sfu.janusSocket (a media server)")
        }
        // The shared store.
        if store == .postgres {
            if (postgres.conninfo ?? "").isEmpty {
                throw .invalidValue(key: "postgres.conninfo", problem: "is needed with store: postgres")
            }
            guard let node = postgres.node, !node.isEmpty, node.count <= 64,
                node.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
            else {
                throw .invalidValue(
                    key: "postgres.node", problem: "is needed with store: postgres: 1-64 of A-Z a-z 0-9 _ -")
            }
            if !(postgres.leaseSeconds >= 1 && postgres.leaseSeconds <= 60) {
                throw .invalidValue(key: "postgres.leaseSeconds", problem: "must be between 1 and 60")
            }
        }
        if rooms.meshLimit < 1 { throw .invalidValue(key: "rooms.meshLimit", problem: "must be at least 1") }

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
        if limits.maxHandshakesInFlight < 0 {
            throw .invalidValue(key: "limits.maxHandshakesInFlight", problem: "must not be negative")
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
        if limits.joinBudgetMilliseconds < 0 || limits.joinBudgetMilliseconds > 10_000 {
            throw .invalidValue(key: "limits.joinBudgetMilliseconds", problem: "must be 0 (no bound) or 1 ... 10000")
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
}
