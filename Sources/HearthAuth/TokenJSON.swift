import CJansson

/// One JSON object of a token (the JOSE header or the JWT payload), parsed by jansson, the
/// server's JSON library, and read member by member.
///
/// Parsing is strict: the segment must be one JSON object in UTF-8, with no duplicate member
/// names (RFC 7519, section 4: a JWT with duplicate claim names is refused, not read as either
/// value), no NUL in its strings, numbers that fit in 64 bits, and at most ``maxDepth`` levels
/// of nesting (checked before jansson, which recurses per level). Anything else is not a token
/// and fails as a whole (`nil`). Foundation's `JSONDecoder`, used before, took the first of
/// duplicate members and cost two thirds of a token's verification (callgrind, RESULTS).
struct TokenJSON: ~Copyable {
    private let object: UnsafeMutablePointer<json_t>

    /// A member's value as the claim rules see it.
    enum Value {
        case absent
        case null
        case string(String)
        case integer(Int64)
        case real(Double)
        case bool(Bool)
        /// An array or an object.
        case structure
    }

    /// The deepest nesting of objects and arrays a token's JSON may have (the wire protocol's).
    static let maxDepth = 32

    init?(_ bytes: [UInt8]) {
        let parsed = bytes.withUnsafeBufferPointer { buffer -> UnsafeMutablePointer<json_t>? in
            guard let base = buffer.baseAddress,
                cj_nesting_within(base, buffer.count, Int32(Self.maxDepth)) != 0
            else { return nil }
            return UnsafeRawPointer(base).withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                json_loadb($0, buffer.count, cj_decode_flags(), nil)
            }
        }
        guard let parsed else { return nil }
        guard cj_is_object(parsed) != 0 else {
            cj_decref(parsed)
            return nil
        }
        object = parsed
    }

    deinit { cj_decref(object) }

    func contains(_ key: String) -> Bool { json_object_get(object, key) != nil }

    subscript(_ key: String) -> Value {
        guard let value = json_object_get(object, key) else { return .absent }
        if cj_is_null(value) != 0 { return .null }
        if cj_is_string(value) != 0 {
            let length = json_string_length(value)
            guard let text = json_string_value(value) else { return .string("") }
            return .string(
                UnsafeRawPointer(text).withMemoryRebound(to: UInt8.self, capacity: length) {
                    String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
                })
        }
        if cj_is_integer(value) != 0 { return .integer(Int64(json_integer_value(value))) }
        if cj_is_real(value) != 0 { return .real(json_real_value(value)) }
        if cj_is_boolean(value) != 0 { return .bool(cj_is_true(value) != 0) }
        return .structure
    }
}

/// Reads optional claims one by one: an absent or `null` claim is nil, a claim of the wrong JSON
/// type is noted by name (so the token is refused with `invalidClaim`, never with its value)
/// instead of failing the whole token.
struct TokenClaims: ~Copyable {
    let json: TokenJSON
    private(set) var typeErrors: [String] = []

    init(_ json: consuming TokenJSON) { self.json = json }

    mutating func string(_ key: String) -> String? {
        switch json[key] {
        case .absent, .null: return nil
        case .string(let value): return value
        default: return typeError(key)
        }
    }

    /// A NumericDate or any other JSON number.
    mutating func number(_ key: String) -> Double? {
        switch json[key] {
        case .absent, .null: return nil
        case .integer(let value): return Double(value)
        case .real(let value): return value
        default: return typeError(key)
        }
    }

    /// A JSON number with an integral value (`12` or `12.0`) that fits in `Int`.
    mutating func integer(_ key: String) -> Int? {
        switch json[key] {
        case .absent, .null: return nil
        case .integer(let value): return Int(exactly: value) ?? typeError(key)
        case .real(let value): return Int(exactly: value) ?? typeError(key)
        default: return typeError(key)
        }
    }

    mutating func bool(_ key: String) -> Bool? {
        switch json[key] {
        case .absent, .null: return nil
        case .bool(let value): return value
        default: return typeError(key)
        }
    }

    private mutating func typeError<T>(_ key: String) -> T? {
        typeErrors.append(key)
        return nil
    }
}

/// A token payload as it arrives, read from its claims; the verifiers check the values.
protocol TokenPayload {
    init(claims: inout TokenClaims)
}
