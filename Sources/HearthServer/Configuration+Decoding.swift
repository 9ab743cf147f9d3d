import Foundation
import HearthCore
import Yams

// Decoding: every key optional (a missing or null key keeps the section's default), unknown keys
// refused with their full dotted path. Each section lists its keys once, in `fields`; encoding
// (`description`) uses the synthesized `Encodable` with the property names, and
// `ConfigurationTests.testEveryKeyRoundTrips` checks that the two agree.

extension HearthConfiguration: ConfigurationSection {
    public init(from decoder: any Decoder) throws { try self.init(fields: decoder) }

    static var fields: [Field] {
        [
            .value("listen", \.listen), .value("internalListen", \.internalListen), .value("tls", \.tls),
            .value("dataDirectory", \.dataDirectory),
            .value("tokens", \.tokens), .value("dev", \.dev), .value("admin", \.admin), .value("ice", \.ice),
            .value("limits", \.limits), .value("rateLimits", \.rateLimits), .value("retention", \.retention),
            .value("rooms", \.rooms), .value("web", \.web), .value("sfu", \.sfu),
            .value("store", \.store), .value("postgres", \.postgres), .value("allowedOrigins", \.allowedOrigins),
            .value("trustedProxies", \.trustedProxies), .value("logLevel", \.logLevel),
        ]
    }
}

extension HearthConfiguration.TLS: ConfigurationSection {
    public init(from decoder: any Decoder) throws { try self.init(fields: decoder) }

    static var fields: [Field] {
        [.value("certificate", \.certificate), .value("privateKey", \.privateKey), .value("ciphers", \.ciphers)]
    }
}

extension HearthConfiguration.Tokens: ConfigurationSection {
    public init(from decoder: any Decoder) throws { try self.init(fields: decoder) }

    static var fields: [Field] {
        [
            .value("keys", \.keys), .value("leewaySeconds", \.leewaySeconds),
            .value("maxLifetimeSeconds", \.maxLifetimeSeconds), .value("requireRefresh", \.requireRefresh),
        ]
    }
}

extension HearthConfiguration.Tokens.Key: ConfigurationSection {
    public init(from decoder: any Decoder) throws { try self.init(fields: decoder) }

    static var fields: [Field] {
        [
            .value("kid", \.kid), .value("algorithm", \.algorithm), .value("secret", \.secret),
            .value("publicKey", \.publicKey),
        ]
    }
}

extension HearthConfiguration.Web: ConfigurationSection {
    public init(from decoder: any Decoder) throws { try self.init(fields: decoder) }

    static var fields: [Field] { [.value("root", \.root)] }
}

extension HearthConfiguration.SFU: ConfigurationSection {
    public init(from decoder: any Decoder) throws { try self.init(fields: decoder) }

    static var fields: [Field] {
        [.value("janusSocket", \.janusSocket), .value("apiSecret", \.apiSecret), .value("adminKey", \.adminKey)]
    }
}

extension HearthConfiguration.Postgres: ConfigurationSection {
    public init(from decoder: any Decoder) throws { try self.init(fields: decoder) }

    static var fields: [Field] {
        [.value("conninfo", \.conninfo), .value("node", \.node), .value("leaseSeconds", \.leaseSeconds)]
    }
}

extension HearthConfiguration.Dev: ConfigurationSection {
    public init(from decoder: any Decoder) throws { try self.init(fields: decoder) }

    static var fields: [Field] { [.value("tokenSecret", \.tokenSecret)] }
}

extension HearthConfiguration.Admin: ConfigurationSection {
    public init(from decoder: any Decoder) throws { try self.init(fields: decoder) }

    static var fields: [Field] {
        [
            .value("keys", \.keys), .value("leewaySeconds", \.leewaySeconds),
            .value("maxLifetimeSeconds", \.maxLifetimeSeconds),
        ]
    }
}

extension HearthConfiguration.ICE: ConfigurationSection {
    public init(from decoder: any Decoder) throws { try self.init(fields: decoder) }

    static var fields: [Field] {
        [.value("servers", \.servers), .value("turnSecret", \.turnSecret), .value("turnTTLSeconds", \.turnTTLSeconds)]
    }
}

extension HearthConfiguration.ICE.Server: ConfigurationSection {
    public init(from decoder: any Decoder) throws { try self.init(fields: decoder) }

    static var fields: [Field] { [.value("urls", \.urls), .value("turn", \.turn)] }
}

extension HearthConfiguration.Limits: ConfigurationSection {
    public init(from decoder: any Decoder) throws { try self.init(fields: decoder) }

    static var fields: [Field] {
        [
            .value("maxMessageBytes", \.maxMessageBytes), .value("sendQueueMaxMessages", \.sendQueueMaxMessages),
            .value("sendQueueMaxBytes", \.sendQueueMaxBytes), .value("socketSendBufferBytes", \.socketSendBufferBytes),
            .value("joinBudgetMilliseconds", \.joinBudgetMilliseconds),
            .value("helloTimeoutSeconds", \.helloTimeoutSeconds), .value("pingIntervalSeconds", \.pingIntervalSeconds),
            .value("hangupSeconds", \.hangupSeconds), .value("maxMalformedMessages", \.maxMalformedMessages),
            .value("maxChatLength", \.maxChatLength), .value("maxSignalBytes", \.maxSignalBytes),
            .value("maxConnectionsPerAddress", \.maxConnectionsPerAddress),
            .value("maxHandshakesInFlight", \.maxHandshakesInFlight), .value("maxRooms", \.maxRooms),
            .value("maxWaiting", \.maxWaiting), .value("journalQueueMaxEntries", \.journalQueueMaxEntries),
        ]
    }
}

extension HearthConfiguration.Retention: ConfigurationSection {
    public init(from decoder: any Decoder) throws { try self.init(fields: decoder) }

    static var fields: [Field] {
        [
            .value("auditDays", \.auditDays), .value("attendanceDays", \.attendanceDays),
            .value("endedRoomHours", \.endedRoomHours),
        ]
    }
}

extension HearthConfiguration.RateLimits: ConfigurationSection {
    public init(from decoder: any Decoder) throws { try self.init(fields: decoder) }

    static var fields: [Field] {
        [
            .value("authFailureBurst", \.authFailureBurst), .value("authFailuresPerSecond", \.authFailuresPerSecond),
            .value("chatBurst", \.chatBurst), .value("chatPerSecond", \.chatPerSecond),
            .value("signalBurst", \.signalBurst), .value("signalPerSecond", \.signalPerSecond),
            .value("signalPairBurst", \.signalPairBurst), .value("signalPairPerSecond", \.signalPairPerSecond),
            .value("controlBurst", \.controlBurst), .value("controlPerSecond", \.controlPerSecond),
            .value("maxStrikes", \.maxStrikes),
        ]
    }
}

extension HearthConfiguration.RoomDefaults: ConfigurationSection {
    public init(from decoder: any Decoder) throws { try self.init(fields: decoder) }

    static var fields: [Field] {
        [
            .value("capacity", \.capacity), .value("waitingRoom", \.waitingRoom),
            .value("consentVersion", \.consentVersion), .value("requireLocation", \.requireLocation),
            .choice("chatPolicy", \.chatPolicy, "chat policy"), .value("privateMessages", \.privateMessages),
            .value("selfUnmute", \.selfUnmute), .value("graceSeconds", \.graceSeconds),
            .choice("facilitatorDrop", \.facilitatorDrop, "policy"), .value("replayWindow", \.replayWindow),
            .value("idleCloseSeconds", \.idleCloseSeconds), .choice("media", \.media, "media mode"),
            .value("meshLimit", \.meshLimit),
        ]
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
            let text = dottedPath(codingPath)
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

// MARK: - Decoding sections

/// A configuration section (or the whole file): decoded over its defaults, one key at a time.
protocol ConfigurationSection: Decodable {
    init()
    /// Every key the section accepts, each with where its value goes.
    static var fields: [ConfigurationField<Self>] { get }
}

extension ConfigurationSection {
    typealias Field = ConfigurationField<Self>

    /// The defaults, overlaid with the keys present in `decoder`; unknown keys refused.
    init(fields decoder: any Decoder) throws {
        self.init()
        let fields = Self.fields
        let known = Set(fields.map(\.name))
        let container = try decoder.container(keyedBy: AnyKey.self)
        if let unknown = container.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) {
            let path = dottedPath(decoder.codingPath)
            throw ConfigurationError.unknownKey(path.isEmpty ? unknown : path + "." + unknown)
        }
        for field in fields { try field.decode(container, AnyKey(stringValue: field.name), &self) }
    }
}

/// One key of a section: its name and how its value is decoded into the section.
struct ConfigurationField<Section> {
    let name: String
    let decode: (KeyedDecodingContainer<AnyKey>, AnyKey, inout Section) throws -> Void

    /// A value decoded as its type; absent or null keeps the default.
    static func value<T: Decodable>(_ name: String, _ property: WritableKeyPath<Section, T>) -> Self {
        Self(name: name) { container, key, section in
            if let value = try container.decodeIfPresent(T.self, forKey: key) { section[keyPath: property] = value }
        }
    }

    /// One of an enum's raw values (`chatPolicy: staff-only`); any other string is refused with
    /// the accepted ones listed: `unknown <noun> "x" (expected a, b or c)`.
    static func choice<T: RawRepresentable & CaseIterable>(
        _ name: String, _ property: WritableKeyPath<Section, T>, _ noun: String
    ) -> Self where T.RawValue == String {
        Self(name: name) { container, key, section in
            guard let text = try container.decodeIfPresent(String.self, forKey: key) else { return }
            guard let value = T(rawValue: text) else {
                let allowed = T.allCases.map(\.rawValue)
                let list = allowed.dropLast().joined(separator: ", ") + " or " + (allowed.last ?? "")
                throw ConfigurationError.invalidValue(
                    key: dottedPath(container.codingPath + [key]),
                    problem: "unknown \(noun) \"\(text)\" (expected \(list))")
            }
            section[keyPath: property] = value
        }
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// `rooms.chatPolicy`, `tokens.keys[0].kid`: a coding path as the configuration's errors name it.
func dottedPath(_ codingPath: [any CodingKey]) -> String {
    var path = ""
    for key in codingPath {
        if let index = key.intValue {
            path += "[\(index)]"
        } else {
            path += path.isEmpty ? key.stringValue : "." + key.stringValue
        }
    }
    return path
}
