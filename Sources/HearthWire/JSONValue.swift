import CJansson

/// A JSON value built in Swift and written (or read) through jansson: the operations API's
/// bodies and `hearthd`'s record exports. Objects keep their keys in order, so what is written
/// is what the docs show. (The protocol's hot path builds jansson values directly, see
/// `WireEncoder`: this type is for the few, larger, colder documents.)
public indirect enum JSONValue: Sendable, Equatable {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case integer(Int64)
    case number(Double)
    case bool(Bool)
    case null

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.object(let x), .object(let y)):
            x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.array(let x), .array(let y)): x == y
        case (.string(let x), .string(let y)): x == y
        case (.integer(let x), .integer(let y)): x == y
        case (.number(let x), .number(let y)): x == y
        case (.bool(let x), .bool(let y)): x == y
        case (.null, .null): true
        default: false
        }
    }

    /// The value of `key` in an object (the first, if a key repeats), else nil.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let fields) = self else { return nil }
        return fields.first { $0.0 == key }?.1
    }

    /// Compact JSON bytes (reals with up to 15 significant digits).
    public func encoded() -> [UInt8] {
        guard let root = jansson() else { return Array(#"{"code":"internal-error","message":"encoding"}"#.utf8) }
        defer { cj_decref(root) }
        // JSON_REAL_PRECISION(15): `0.07` rather than `0.070000000000000007`.
        let flags = cj_compact_flags() | (15 << 11)
        let size = json_dumpb(root, nil, 0, flags)
        guard size > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: size)
        let written = out.withUnsafeMutableBytes { buffer in
            json_dumpb(root, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), size, flags)
        }
        return Array(out.prefix(written))
    }

    /// The compact JSON text (see ``encoded()``).
    public var text: String { String(decoding: encoded(), as: UTF8.self) }

    private func jansson() -> UnsafeMutablePointer<json_t>? {
        switch self {
        case .object(let fields):
            let object = json_object()
            for (key, value) in fields {
                guard let child = value.jansson() else { continue }
                _ = key.withCString { json_object_set_new(object, $0, child) }
            }
            return object
        case .array(let items):
            let array = json_array()
            for item in items {
                if let child = item.jansson() { json_array_append_new(array, child) }
            }
            return array
        case .string(let text):
            var text = text
            return text.withUTF8 { utf8 in
                utf8.withMemoryRebound(to: CChar.self) { chars in
                    guard let base = chars.baseAddress, !chars.isEmpty else { return json_string("") }
                    return json_stringn(base, chars.count)
                }
            }
        case .integer(let n): return json_integer(json_int_t(n))
        case .number(let x): return json_real(x)
        case .bool(let b): return cj_boolean(b ? 1 : 0)
        case .null: return cj_null()
        }
    }

    /// Parses JSON text: nil unless it is valid JSON (duplicate keys refused).
    public static func parse(_ bytes: [UInt8]) -> JSONValue? {
        var error = json_error_t()
        let root = bytes.withUnsafeBytes { buffer in
            json_loadb(
                buffer.baseAddress?.assumingMemoryBound(to: CChar.self), buffer.count, cj_decode_flags(), &error)
        }
        guard let root else { return nil }
        defer { cj_decref(root) }
        return value(of: root)
    }

    private static func value(of j: UnsafeMutablePointer<json_t>) -> JSONValue {
        if cj_is_object(j) != 0 {
            var fields: [(String, JSONValue)] = []
            var iterator = json_object_iter(j)
            while let it = iterator {
                let key = String(
                    decoding: UnsafeRawBufferPointer(
                        start: json_object_iter_key(it), count: json_object_iter_key_len(it)),
                    as: UTF8.self)
                if let child = json_object_iter_value(it) { fields.append((key, value(of: child))) }
                iterator = json_object_iter_next(j, it)
            }
            return .object(fields)
        }
        if cj_is_array(j) != 0 {
            return .array((0..<json_array_size(j)).compactMap { json_array_get(j, $0).map(value(of:)) })
        }
        if cj_is_string(j) != 0 {
            return .string(
                String(
                    decoding: UnsafeRawBufferPointer(start: json_string_value(j), count: json_string_length(j)),
                    as: UTF8.self))
        }
        if cj_is_integer(j) != 0 { return .integer(Int64(json_integer_value(j))) }
        if cj_is_real(j) != 0 { return .number(json_real_value(j)) }
        if cj_is_boolean(j) != 0 { return .bool(cj_is_true(j) != 0) }
        return .null
    }
}
