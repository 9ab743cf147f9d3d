import Foundation
import HearthAuth
import HearthCore
import XCTest

@testable import HearthServer

final class ConfigurationTests: XCTestCase {
    private var temporaryFiles: [String] = []

    override func tearDown() {
        for path in temporaryFiles { try? FileManager.default.removeItem(atPath: path) }
        temporaryFiles = []
        super.tearDown()
    }

    private func write(_ yaml: String) throws -> String {
        let path = NSTemporaryDirectory() + "hearth-config-\(UUID().uuidString).yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        temporaryFiles.append(path)
        return path
    }

    /// A minimal valid production-like file: one HS256 key.
    private let key = "tokens:\n  keys:\n    - secret: \"0123456789abcdef0123456789abcdef\"\n"

    private func load(_ yaml: String, environment: [String: String] = [:]) throws -> HearthConfiguration {
        try HearthConfiguration.load(path: try write(yaml), environment: environment)
    }

    private func assertError(
        _ yaml: String, environment: [String: String] = [:], _ expected: ConfigurationError,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try load(yaml, environment: environment), file: file, line: line) { error in
            XCTAssertEqual(error as? ConfigurationError, expected, file: file, line: line)
        }
    }

    private func assertErrorKey(
        _ yaml: String, environment: [String: String] = [:], key: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try load(yaml, environment: environment), file: file, line: line) { error in
            guard let error = error as? ConfigurationError else {
                return XCTFail("not a ConfigurationError: \(error)", file: file, line: line)
            }
            XCTAssertEqual(error.key, key, "\(error)", file: file, line: line)
            XCTAssertTrue(error.description.contains(key), error.description, file: file, line: line)
        }
    }

    // MARK: Defaults

    func testDefaultsWithoutFile() throws {
        let config = try HearthConfiguration.load(path: nil, environment: [:])
        XCTAssertEqual(config, HearthConfiguration.embeddedDefault)
        XCTAssertEqual(config.listen, "127.0.0.1:8443")
        XCTAssertNil(config.tls.certificate)
        XCTAssertNil(config.tls.privateKey)
        XCTAssertEqual(config.dataDirectory, "./data")
        XCTAssertEqual(config.tokens.keys, [])
        XCTAssertEqual(config.tokens.leewaySeconds, 30)
        XCTAssertEqual(config.tokens.maxLifetimeSeconds, 600)
        XCTAssertEqual(config.dev.tokenSecret, HearthConfiguration.developmentTokenSecret)
        XCTAssertGreaterThanOrEqual(config.dev.tokenSecret?.utf8.count ?? 0, 32)
        XCTAssertNil(config.ice.turnSecret)
        XCTAssertEqual(config.ice.turnTTLSeconds, 3600)
        let limits = config.limits
        XCTAssertEqual(limits.maxMessageBytes, 65_536)
        XCTAssertEqual(limits.sendQueueMaxMessages, 1024)
        XCTAssertEqual(limits.sendQueueMaxBytes, 1_048_576)
        XCTAssertEqual(limits.socketSendBufferBytes, 262_144)
        XCTAssertEqual(limits.helloTimeoutSeconds, 5)
        XCTAssertEqual(limits.pingIntervalSeconds, 20)
        XCTAssertEqual(limits.hangupSeconds, 40)
        XCTAssertEqual(limits.maxMalformedMessages, 10)
        XCTAssertEqual(limits.maxChatLength, 2000)
        XCTAssertEqual(limits.maxSignalBytes, 16_384)
        let rooms = config.rooms
        XCTAssertEqual(rooms.capacity, 12)
        XCTAssertTrue(rooms.waitingRoom)
        XCTAssertNil(rooms.consentVersion)
        XCTAssertFalse(rooms.requireLocation)
        XCTAssertEqual(rooms.chatPolicy, .everyone)
        XCTAssertFalse(rooms.privateMessages)
        XCTAssertTrue(rooms.selfUnmute)
        XCTAssertEqual(rooms.graceSeconds, 60)
        XCTAssertEqual(rooms.facilitatorDrop, .hold)
        XCTAssertEqual(rooms.replayWindow, 512)
        XCTAssertEqual(rooms.idleCloseSeconds, 1800)
        XCTAssertEqual(config.allowedOrigins, [])
        XCTAssertEqual(config.logLevel, "info")
        XCTAssertNoThrow(try HearthConfiguration.embeddedDefault.validate())
        XCTAssertTrue(config.warnings.contains { $0.contains("development token secret") })
    }

    func testEmptyFileKeepsDefaultsButHasNoDevKey() throws {
        // A file never inherits the public development secret.
        assertErrorKey("", key: "tokens.keys")
        assertErrorKey("# only a comment\n", key: "tokens.keys")
        let config = try load(key)
        XCTAssertNil(config.dev.tokenSecret)
        var expected = HearthConfiguration()
        expected.tokens.keys = [.init(secret: "0123456789abcdef0123456789abcdef")]
        XCTAssertEqual(config, expected)
    }

    func testPartialFileKeepsDefaults() throws {
        let config = try load(
            key + """
                listen: "0.0.0.0:9443"
                limits:
                  maxChatLength: 500
                rooms:
                  chatPolicy: staff-only
                  consentVersion: "v3"
                  idleCloseSeconds: 90
                ice:
                  servers:
                    - urls: ["stun:stun.example.org"]
                """)
        XCTAssertEqual(config.listen, "0.0.0.0:9443")
        XCTAssertEqual(config.limits.maxChatLength, 500)
        XCTAssertEqual(config.limits.maxMessageBytes, 65_536)
        XCTAssertEqual(config.limits.hangupSeconds, 40)
        XCTAssertEqual(config.rooms.chatPolicy, .staffOnly)
        XCTAssertEqual(config.rooms.consentVersion, "v3")
        XCTAssertEqual(config.rooms.capacity, 12)
        XCTAssertEqual(config.rooms.facilitatorDrop, .hold)
        XCTAssertEqual(config.rooms.idleCloseSeconds, 90)
        XCTAssertEqual(config.ice.servers, [.init(urls: ["stun:stun.example.org"], turn: false)])
        XCTAssertEqual(config.ice.turnTTLSeconds, 3600)
        XCTAssertEqual(config.tokens.keys.first?.algorithm, "HS256")
        XCTAssertEqual(config.tokens.leewaySeconds, 30)
        XCTAssertEqual(config.logLevel, "info")
        XCTAssertEqual(config.dataDirectory, "./data")
        XCTAssertEqual(try config.listenAddress().host, "0.0.0.0")
        XCTAssertEqual(try config.listenAddress().port, 9443)
    }

    // MARK: Unknown keys

    func testUnknownKeysAreNamed() {
        assertError(key + "lissten: \"0.0.0.0:1\"\n", .unknownKey("lissten"))
        assertError(key + "limits:\n  maxMesageBytes: 10\n", .unknownKey("limits.maxMesageBytes"))
        assertError(key + "rooms:\n  chatpolicy: off\n", .unknownKey("rooms.chatpolicy"))
        assertError(
            "tokens:\n  keys:\n    - secret: \"0123456789abcdef0123456789abcdef\"\n      algo: HS256\n",
            .unknownKey("tokens.keys[0].algo"))
        assertError(key + "ice:\n  servers:\n    - url: [\"stun:x\"]\n", .unknownKey("ice.servers[0].url"))
        let description = ConfigurationError.unknownKey("limits.maxMesageBytes").description
        XCTAssertTrue(description.contains("limits.maxMesageBytes"), description)
    }

    // MARK: Bad values

    func testBadListenAddresses() throws {
        for listen in [
            "0.0.0.0:0", "0.0.0.0:65536", "0.0.0.0:-1", "0.0.0.0", ":8443", "host:port", "::1:8443", "[::1]8443",
        ] {
            assertErrorKey(key + "listen: \"\(listen)\"\n", key: "listen")
        }
        let v6 = try load(key + "listen: \"[::1]:8443\"\n")
        XCTAssertEqual(try v6.listenAddress().host, "::1")
        XCTAssertEqual(try v6.listenAddress().port, 8443)
        XCTAssertEqual(try load(key + "listen: \"localhost:1\"\n").listen, "localhost:1")
    }

    func testNegativeAndZeroLimits() {
        for name in [
            "maxMessageBytes", "sendQueueMaxMessages", "sendQueueMaxBytes", "helloTimeoutSeconds",
            "pingIntervalSeconds",
            "hangupSeconds", "maxMalformedMessages", "maxChatLength", "maxSignalBytes", "journalQueueMaxEntries",
        ] {
            assertErrorKey(key + "limits:\n  \(name): -1\n", key: "limits.\(name)")
            assertErrorKey(key + "limits:\n  \(name): 0\n", key: "limits.\(name)")
        }
        assertErrorKey(key + "limits:\n  maxSignalBytes: 100000\n", key: "limits.maxSignalBytes")
        assertErrorKey(key + "limits:\n  hangupSeconds: 10\n", key: "limits.hangupSeconds")
        assertErrorKey(key + "limits:\n  socketSendBufferBytes: -1\n", key: "limits.socketSendBufferBytes")
        XCTAssertEqual(try load(key + "limits:\n  socketSendBufferBytes: 0\n").limits.socketSendBufferBytes, 0)
        // 0 means "no bound" for these two; only a negative count is refused.
        for name in ["maxConnectionsPerAddress", "maxHandshakesInFlight"] {
            assertErrorKey(key + "limits:\n  \(name): -1\n", key: "limits.\(name)")
        }
        XCTAssertEqual(try load(key + "limits:\n  maxHandshakesInFlight: 0\n").limits.maxHandshakesInFlight, 0)
        XCTAssertEqual(try load(key + "limits:\n  maxConnectionsPerAddress: 0\n").limits.maxConnectionsPerAddress, 0)
    }

    func testTheJournalQueueBoundHasASafeDefaultAndCanBeSet() throws {
        XCTAssertEqual(try load(key).limits.journalQueueMaxEntries, 20_000)
        XCTAssertEqual(try load(key + "limits:\n  journalQueueMaxEntries: 50\n").limits.journalQueueMaxEntries, 50)
    }

    func testSignalPairBudgetIsConfigurableAndPositive() throws {
        let d = HearthConfiguration.RateLimits()
        XCTAssertEqual(d.signalPairBurst, 40)
        XCTAssertEqual(d.signalPairPerSecond, 5)
        let c = try load(key + "rateLimits:\n  signalPairBurst: 8\n  signalPairPerSecond: 2.5\n")
        XCTAssertEqual(c.rateLimits.signalPairBurst, 8)
        XCTAssertEqual(c.rateLimits.signalPairPerSecond, 2.5)
        for name in ["signalPairBurst", "signalPairPerSecond"] {
            assertErrorKey(key + "rateLimits:\n  \(name): 0\n", key: "rateLimits.\(name)")
        }
    }

    func testBadTokenSettings() {
        assertErrorKey(
            "tokens:\n  leewaySeconds: -1\n  keys:\n    - secret: \"0123456789abcdef0123456789abcdef\"\n",
            key: "tokens.leewaySeconds")
        assertErrorKey(
            "tokens:\n  maxLifetimeSeconds: 0\n  keys:\n    - secret: \"0123456789abcdef0123456789abcdef\"\n",
            key: "tokens.maxLifetimeSeconds")
    }

    func testUnknownAlgorithm() {
        let yaml = "tokens:\n  keys:\n    - algorithm: RS256\n      publicKey: \"x\"\n"
        assertErrorKey(yaml, key: "tokens.keys[0].algorithm")
        XCTAssertThrowsError(try load(yaml)) { error in
            XCTAssertTrue("\(error)".contains("RS256"), "\(error)")
        }
    }

    func testBadKeys() {
        assertErrorKey("tokens:\n  keys:\n    - secret: \"short\"\n", key: "tokens.keys[0].secret")
        assertErrorKey("tokens:\n  keys:\n    - algorithm: HS256\n", key: "tokens.keys[0].secret")
        assertErrorKey("tokens:\n  keys:\n    - algorithm: EdDSA\n", key: "tokens.keys[0].publicKey")
        assertErrorKey(
            "tokens:\n  keys:\n    - algorithm: ES256\n      publicKey: \"pem\"\n      secret: \"0123456789abcdef0123456789abcdef\"\n",
            key: "tokens.keys[0].secret")
        let twoDefaults =
            "tokens:\n  keys:\n    - secret: \"0123456789abcdef0123456789abcdef\"\n    - secret: \"0123456789abcdef0123456789abcdeX\"\n"
        assertErrorKey(twoDefaults, key: "tokens.keys[1].kid")
        let sameKid =
            "tokens:\n  keys:\n    - kid: a\n      secret: \"0123456789abcdef0123456789abcdef\"\n    - kid: a\n      algorithm: EdDSA\n      publicKey: x\n"
        assertErrorKey(sameKid, key: "tokens.keys[1].kid")
        // The public development secret is refused off loopback.
        assertErrorKey(
            "listen: \"0.0.0.0:8443\"\ndev:\n  tokenSecret: \"\(HearthConfiguration.developmentTokenSecret)\"\n",
            key: "dev.tokenSecret")
        assertErrorKey(key + "dev:\n  tokenSecret: \"0123456789abcdef0123456789abcdefXX\"\n", key: "dev.tokenSecret")
    }

    func testJoinAndAdminKeysGetTheSameShapeChecks() {
        let secret = "\"0123456789abcdef0123456789abcdef\""
        let adminSecret = "\"fedcba9876543210fedcba9876543210\""
        let shapes: [(String, String)] = [
            ("      algorithm: RS256\n      secret: \(adminSecret)\n", ".algorithm"),
            ("      kid: \"\"\n      secret: \(adminSecret)\n", ".kid"),
            ("      secret: \"short\"\n", ".secret"),
            ("      algorithm: HS256\n", ".secret"),
            ("      secret: \(adminSecret)\n      publicKey: x\n", ".publicKey"),
            ("      algorithm: EdDSA\n", ".publicKey"),
            ("      algorithm: EdDSA\n      publicKey: x\n      secret: \(adminSecret)\n", ".secret"),
        ]
        for (body, field) in shapes {
            assertErrorKey(
                "tokens:\n  keys:\n    - kid: j\n      secret: \(secret)\n    - \(body.dropFirst(6))",
                key: "tokens.keys[1]\(field)")
            assertErrorKey("\(key)admin:\n  keys:\n    - \(body.dropFirst(6))", key: "admin.keys[0]\(field)")
        }
        let twoWithoutKid = "    - secret: \(adminSecret)\n    - secret: \"fedcba9876543210fedcba9876543210XX\"\n"
        assertErrorKey("\(key)admin:\n  keys:\n\(twoWithoutKid)", key: "admin.keys[1].kid")
        // Admin keys only: never a join-token secret.
        assertErrorKey("\(key)admin:\n  keys:\n    - secret: \(secret)\n", key: "admin.keys[0].secret")
    }

    func testBadRoomAndOtherValues() {
        assertErrorKey(key + "rooms:\n  chatPolicy: loud\n", key: "rooms.chatPolicy")
        assertErrorKey(key + "rooms:\n  facilitatorDrop: leave\n", key: "rooms.facilitatorDrop")
        assertErrorKey(key + "rooms:\n  capacity: 0\n", key: "rooms.capacity")
        assertErrorKey(key + "rooms:\n  graceSeconds: -1\n", key: "rooms.graceSeconds")
        assertErrorKey(key + "rooms:\n  replayWindow: -1\n", key: "rooms.replayWindow")
        assertErrorKey(key + "rooms:\n  idleCloseSeconds: 0\n", key: "rooms.idleCloseSeconds")
        assertErrorKey(key + "rooms:\n  idleCloseSeconds: 604801\n", key: "rooms.idleCloseSeconds")
        assertErrorKey(key + "logLevel: verbose\n", key: "logLevel")
        assertErrorKey(key + "allowedOrigins: [\"example.org\"]\n", key: "allowedOrigins")
        assertErrorKey(key + "tls:\n  certificate: /x.pem\n", key: "tls")
        assertErrorKey(key + "ice:\n  servers:\n    - urls: [\"http://x\"]\n", key: "ice.servers[0].urls")
        assertErrorKey(key + "ice:\n  servers:\n    - urls: [\"turn:x\"]\n      turn: true\n", key: "ice.turnSecret")
        assertErrorKey(key + "ice:\n  turnTTLSeconds: 0\n", key: "ice.turnTTLSeconds")
    }

    func testTLSCiphersAndTrustedProxies() throws {
        let defaults = try load(key)
        XCTAssertNil(defaults.tls.ciphers, "nil: the transport's ECDHE + AEAD default")
        XCTAssertEqual(defaults.trustedProxies, [])
        let config = try load(
            key + "tls:\n  ciphers: \"ECDHE-RSA-AES256-GCM-SHA384\"\n"
                + "trustedProxies: [\"10.0.0.0/8\", \"192.0.2.1\", \"2001:db8::/48\"]\n")
        XCTAssertEqual(config.tls.ciphers, "ECDHE-RSA-AES256-GCM-SHA384")
        XCTAssertEqual(config.trustedProxies, ["10.0.0.0/8", "192.0.2.1", "2001:db8::/48"])
        assertErrorKey(key + "tls:\n  ciphers: \"\"\n", key: "tls.ciphers")
        assertErrorKey(key + "tls:\n  ciphers: \"NO-SUCH-CIPHER\"\n", key: "tls.ciphers")
        assertErrorKey(key + "tls:\n  ciphers: \"TLS_AES_128_GCM_SHA256\"\n", key: "tls.ciphers")
        assertErrorKey(key + "tls:\n  ciphers: \"ECDHE-RSA-AES256-GCM-SHA384 AES128-SHA\"\n", key: "tls.ciphers")
        assertErrorKey(key + "tls:\n  cipher: \"x\"\n", key: "tls.cipher")
        for bad in ["10.0.0.0/33", "proxy.internal", "", "10.0.0.0/8 ", "2001:db8::/129"] {
            assertErrorKey(key + "trustedProxies: [\"\(bad)\"]\n", key: "trustedProxies")
        }
    }

    func testWrongTypesNameTheKey() {
        assertErrorKey(key + "limits:\n  maxMessageBytes: lots\n", key: "limits.maxMessageBytes")
        assertErrorKey(key + "rooms:\n  waitingRoom: maybe\n", key: "rooms.waitingRoom")
        assertErrorKey(
            key + "ice:\n  servers:\n    - urls: [\"stun:x\"]\n      turn: sometimes\n", key: "ice.servers[0].turn")
    }

    func testSyntaxErrorAndMissingFile() {
        XCTAssertThrowsError(try load("limits: [unclosed\n")) { error in
            guard case .syntax = error as? ConfigurationError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try HearthConfiguration.load(path: "/nonexistent/hearthd.yaml", environment: [:])) {
            error in
            guard case .unreadableFile(let path, _) = error as? ConfigurationError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, "/nonexistent/hearthd.yaml")
        }
    }

    // MARK: Environment

    func testEnvIndirection() throws {
        let yaml = """
            tokens:
              keys:
                - kid: k1
                  secret: "env:JOIN_KEY"
            ice:
              servers:
                - urls: ["turn:turn.example.org:3478"]
                  turn: true
              turnSecret: "env:TURN_KEY"
            """
        let env = ["JOIN_KEY": "join-secret-join-secret-join-secret!", "TURN_KEY": "turn-secret"]
        let config = try load(yaml, environment: env)
        XCTAssertEqual(config.tokens.keys[0].secret, "join-secret-join-secret-join-secret!")
        XCTAssertEqual(config.ice.turnSecret, "turn-secret")
        // Missing variable: named in the error, with the key.
        assertError(
            yaml, environment: ["TURN_KEY": "t"],
            .missingEnvironmentVariable(key: "tokens.keys[0].secret", variable: "JOIN_KEY"))
        assertError(
            yaml, environment: ["JOIN_KEY": "join-secret-join-secret-join-secret!", "TURN_KEY": ""],
            .missingEnvironmentVariable(key: "ice.turnSecret", variable: "TURN_KEY"))
        assertErrorKey("tokens:\n  keys:\n    - secret: \"env:\"\n", key: "tokens.keys[0].secret")
    }

    func testEnvironmentOverrides() throws {
        // HEARTH_TOKEN_SECRET replaces the first HS256 key's secret (even an unresolvable env: one).
        let yaml = """
            tokens:
              keys:
                - kid: ed
                  algorithm: EdDSA
                  publicKey: "AAAA"
                - kid: h1
                  secret: "env:NOT_SET"
                - kid: h2
                  secret: "second-second-second-second-second"
            ice:
              turnSecret: "env:ALSO_NOT_SET"
            """
        let env = ["HEARTH_TOKEN_SECRET": "override-override-override-override", "HEARTH_TURN_SECRET": "turn-override"]
        let config = try load(yaml, environment: env)
        XCTAssertEqual(config.tokens.keys[1].secret, "override-override-override-override")
        XCTAssertEqual(config.tokens.keys[2].secret, "second-second-second-second-second")
        XCTAssertNil(config.tokens.keys[0].secret)
        XCTAssertEqual(config.ice.turnSecret, "turn-override")

        // Without a file it replaces the development secret.
        let dev = try HearthConfiguration.load(path: nil, environment: env)
        XCTAssertEqual(dev.dev.tokenSecret, "override-override-override-override")
        XCTAssertEqual(dev.ice.turnSecret, "turn-override")
        XCTAssertFalse(dev.warnings.contains { $0.contains("built-in development") })
        // Empty variables are ignored.
        let unchanged = try HearthConfiguration.load(path: nil, environment: ["HEARTH_TOKEN_SECRET": ""])
        XCTAssertEqual(unchanged.dev.tokenSecret, HearthConfiguration.developmentTokenSecret)
        // A too-short override is caught by validation.
        XCTAssertThrowsError(try HearthConfiguration.load(path: nil, environment: ["HEARTH_TOKEN_SECRET": "short"])) {
            error in
            XCTAssertEqual((error as? ConfigurationError)?.key, "dev.tokenSecret")
        }
    }

    func testRedactedDescription() throws {
        let env = [
            "HEARTH_TOKEN_SECRET": "very-secret-very-secret-very-secret", "HEARTH_TURN_SECRET": "turn-very-secret",
        ]
        let config = try HearthConfiguration.load(path: nil, environment: env)
        let text = "\(config)"
        XCTAssertFalse(text.contains("very-secret"), text)
        XCTAssertTrue(text.contains("<redacted>"), text)
        XCTAssertTrue(text.contains("listen"), text)
        XCTAssertEqual(config.redacted.dev.tokenSecret, "<redacted>")
        XCTAssertEqual(config.dev.tokenSecret, "very-secret-very-secret-very-secret")
    }

    func testUnknownPoliciesAreRefusedWithTheAcceptedValues() {
        assertError(
            key + "rooms:\n  chatPolicy: loud\n",
            .invalidValue(
                key: "rooms.chatPolicy", problem: "unknown chat policy \"loud\" (expected everyone, staff-only or off)")
        )
        assertError(
            key + "rooms:\n  facilitatorDrop: leave\n",
            .invalidValue(
                key: "rooms.facilitatorDrop", problem: "unknown policy \"leave\" (expected hold or waiting-room)"))
        assertErrorKey(key + "rooms:\n  chatPolicy: [off]\n", key: "rooms.chatPolicy")
    }

    func testPoliciesAreTheEnginesAndReachTheRoomSettings() throws {
        let config = try load(key + "rooms:\n  chatPolicy: \"off\"\n  facilitatorDrop: waiting-room\n")
        XCTAssertEqual(config.rooms.chatPolicy, .off)
        XCTAssertEqual(config.roomSettings.chatPolicy, .off)
        XCTAssertEqual(config.roomSettings.facilitatorDrop, .waitingRoom)
        XCTAssertTrue("\(config)".contains("waiting-room"), "written back as the configuration string")
    }

    func testEveryKeyRoundTrips() throws {
        // Every optional key set, every list non-empty: each section's `fields` must name every
        // property as the encoder writes it.
        var original = HearthConfiguration.embeddedDefault
        original.tls = .init(certificate: "c.pem", privateKey: "k.pem", ciphers: "ECDHE+AESGCM")
        original.tokens.keys = [.init(kid: "k1", algorithm: "EdDSA", secret: nil, publicKey: "pk")]
        original.tokens.requireRefresh = true
        original.admin.keys = [.init(kid: "a1", algorithm: "HS256", secret: "s", publicKey: nil)]
        original.admin.leewaySeconds = 7
        original.ice.servers = [.init(urls: ["turn:t.example.org"], turn: true)]
        original.ice.turnSecret = "t"
        original.limits.journalQueueMaxEntries = 9
        original.rateLimits.maxStrikes = 9
        original.retention.endedRoomHours = 9
        original.rooms.consentVersion = "v9"
        original.rooms.chatPolicy = .staffOnly
        original.rooms.facilitatorDrop = .waitingRoom
        original.allowedOrigins = ["https://clinic.example"]
        original.trustedProxies = ["10.0.0.0/8"]
        let yaml = try XCTUnwrap(String(data: try JSONEncoder().encode(original), encoding: .utf8))  // JSON is YAML
        XCTAssertEqual(try HearthConfiguration.parse(yaml: yaml), original)
    }

    func testRoomSettingsFromATokenOverrideTheDefaultsOnlyWhereSet() throws {
        let defaults = HearthConfiguration.embeddedDefault.roomSettings
        let claims = JoinClaims(
            sub: "u", room: "r", role: "participant", name: "a", exp: Date(), capacity: 3, chatPolicy: "staff-only")
        let s = HearthConfiguration.roomSettings(defaults, applying: claims)
        XCTAssertEqual(s.chatPolicy, .staffOnly)
        XCTAssertEqual(s.capacity, 3)
        XCTAssertEqual(s.waitingRoom, defaults.waitingRoom)
        XCTAssertEqual(s.graceMilliseconds, 60_000)
    }

    func testRoundTripsThroughYAML() throws {
        // The encoder writes the same camelCase keys the decoder reads.
        let original = HearthConfiguration.embeddedDefault
        let yaml = try XCTUnwrap(String(data: try JSONEncoder().encode(original), encoding: .utf8))  // JSON is YAML
        let parsed = try HearthConfiguration.parse(yaml: yaml)
        XCTAssertEqual(parsed, original)
    }

    // MARK: Example file

    static let exampleEnvironment = [
        "HEARTH_JOIN_KEY_2025_01": "a-production-secret-of-at-least-32-bytes",
        "HEARTH_TURN_SECRET": "coturn-static-auth-secret",
        "HEARTH_ADMIN_KEY_2025_01": "an-operations-secret-of-at-least-32-bytes",
        "HEARTH_JANUS_API_SECRET": "janus-api-secret", "HEARTH_JANUS_ADMIN_KEY": "janus-admin-key",
    ]

    var examplePath: String {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // HearthConfigTests
            .deletingLastPathComponent()  // Tests
            .deletingLastPathComponent()  // repository root
            .appendingPathComponent("deploy/hearthd.example.yaml").path
    }

    /// Copied unchanged, the example must not start a server that trusts a key nobody set.
    func testExampleFileUnchangedIsRefusedForItsPlaceholderKey() throws {
        XCTAssertThrowsError(try HearthConfiguration.load(path: examplePath, environment: Self.exampleEnvironment)) {
            XCTAssertEqual(
                $0 as? ConfigurationError,
                .invalidValue(
                    key: "tokens.keys[1].publicKey", problem: HearthConfiguration.examplePublicKeyProblem))
            XCTAssertTrue("\($0)".contains("placeholder from deploy/hearthd.example.yaml"), "\($0)")
        }
        // The real-looking key earlier versions of the example shipped is refused too.
        let old = """
            tokens:
              keys:
                - algorithm: EdDSA
                  publicKey: |
                    -----BEGIN PUBLIC KEY-----
                    MCowBQYDK2VwAyEAyg+ZfEWm9/gRWBf8s8K1iE0m3YZBuaqepXFg9VjMgyU=
                    -----END PUBLIC KEY-----
            """
        assertError(
            old, .invalidValue(key: "tokens.keys[0].publicKey", problem: HearthConfiguration.examplePublicKeyProblem))
    }

    func testTheInternalListenerIsAUnixSocketOnly() throws {
        var config = HearthConfiguration.embeddedDefault
        for bad in ["127.0.0.1:9000", "unix:relative.sock", "tcp:/x", "unix:/" + String(repeating: "x", count: 120)] {
            config.internalListen = bad
            XCTAssertThrowsError(try config.validate(), bad) { XCTAssertTrue("\($0)".contains("internalListen")) }
        }
        config.internalListen = "unix:/run/hearth/n1.sock"
        XCTAssertNoThrow(try config.validate())
        let transport = try config.transportConfiguration(certificatePath: "c", privateKeyPath: "k")
        XCTAssertEqual(transport.internalSocketPath, "/run/hearth/n1.sock")
    }

    func testTheSFUSectionIsCheckedAndWithoutItRoomsUseTheMesh() throws {
        var config = HearthConfiguration.embeddedDefault
        XCTAssertEqual(config.roomSettings.media, .mesh, "auto without a media server is the mesh")
        config.rooms.media = .sfu
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("rooms.media")) }
        config.sfu.janusSocket = "relative/janus.sock"
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("sfu.janusSocket")) }
        config.sfu.janusSocket = "/run/janus.sock"
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("sfu.apiSecret")) }
        config.sfu.apiSecret = "s"
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("sfu.adminKey")) }
        config.sfu.adminKey = "k"
        XCTAssertNoThrow(try config.validate())
        XCTAssertEqual(config.roomSettings.media, .sfu)
        config.rooms.meshLimit = 0
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("rooms.meshLimit")) }
        XCTAssertFalse(config.redacted.description.contains("\"s\""))
    }

    func testExampleFileLoadsOnceItsKeyIsSet() throws {
        let text = try String(contentsOfFile: examplePath, encoding: .utf8)
        let placeholder = "publicKey: \"REPLACE-WITH-YOUR-BACKEND-ED25519-PUBLIC-KEY\""
        XCTAssertTrue(text.contains(placeholder))
        // A freshly made key (its private half thrown away).
        let key = """
            publicKey: |
                    -----BEGIN PUBLIC KEY-----
                    MCowBQYDK2VwAyEAIRF7Th9CWkeDGBPMw3Ujck+CCfcRYn54hlk+ewaequY=
                    -----END PUBLIC KEY-----
            """
        let path = try write(text.replacingOccurrences(of: placeholder, with: key))
        let env = Self.exampleEnvironment
        let config = try HearthConfiguration.load(path: path, environment: env)
        XCTAssertEqual(config.admin.keys.first?.secret, "an-operations-secret-of-at-least-32-bytes")
        XCTAssertEqual(config.listen, "0.0.0.0:8443")
        XCTAssertNil(config.dev.tokenSecret)
        XCTAssertEqual(config.tokens.keys.count, 2)
        XCTAssertEqual(config.tokens.keys[0].secret, "a-production-secret-of-at-least-32-bytes")
        XCTAssertEqual(config.tokens.keys[1].algorithm, "EdDSA")
        XCTAssertTrue(config.tokens.keys[1].publicKey?.hasPrefix("-----BEGIN PUBLIC KEY-----") == true)
        XCTAssertEqual(config.ice.turnSecret, "coturn-static-auth-secret")
        XCTAssertEqual(config.ice.servers.filter(\.turn).count, 1)
        XCTAssertEqual(config.sfu.janusSocket, "/run/janus/hearth.sock")
        XCTAssertEqual(config.sfu.apiSecret, "janus-api-secret")
        XCTAssertEqual(config.sfu.adminKey, "janus-admin-key")
        XCTAssertEqual(config.roomSettings.media, .auto)
        XCTAssertEqual(config.roomSettings.meshLimit, 4)
        XCTAssertEqual(config.rooms.consentVersion, "2025-01")
        XCTAssertEqual(config.allowedOrigins, ["https://groups.example.org"])
        XCTAssertNotNil(config.tls.certificate)
        // Without the environment the env: secrets are reported.
        XCTAssertThrowsError(try HearthConfiguration.load(path: examplePath, environment: [:])) { error in
            XCTAssertEqual(
                error as? ConfigurationError,
                .missingEnvironmentVariable(key: "tokens.keys[0].secret", variable: "HEARTH_JOIN_KEY_2025_01"))
        }
    }
}
