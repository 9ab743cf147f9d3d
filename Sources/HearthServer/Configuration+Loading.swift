import Foundation
import Yams

// Loading: the file (or the embedded default), then the environment, then validation.
extension HearthConfiguration {
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
        sfu.apiSecret = try resolve(sfu.apiSecret, key: "sfu.apiSecret")
        sfu.adminKey = try resolve(sfu.adminKey, key: "sfu.adminKey")
        if let conninfo = environment["HEARTH_POSTGRES"], !conninfo.isEmpty {
            postgres.conninfo = conninfo
        } else {
            postgres.conninfo = try resolve(postgres.conninfo, key: "postgres.conninfo")
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
}
