import CJansson
import HearthCore

/// A jansson value. Owned references are released with `cj_decref` by whoever holds them.
typealias JSONPointer = UnsafeMutablePointer<json_t>

extension StaticString {
    /// The literal as a C string: static string literals are stored NUL-terminated.
    @inline(__always)
    var cString: UnsafePointer<CChar> {
        UnsafeRawPointer(utf8Start).assumingMemoryBound(to: CChar.self)
    }
}

/// Small constructors over jansson's C API that take Swift values without extra copies.
enum JSON {
    /// A JSON string from a Swift string (already valid UTF-8, so jansson need not check it).
    @inline(__always)
    static func string(_ value: String) -> JSONPointer? {
        var value = value
        return value.withUTF8 { utf8 in
            guard let base = utf8.baseAddress, utf8.count > 0 else { return json_string_nocheck("") }
            return json_stringn_nocheck(UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self), utf8.count)
        }
    }

    /// A JSON string for a prefixed number (`p7`, `m12`) without building a Swift `String`.
    static func prefixedID(_ prefix: UInt8, _ number: UInt64) -> JSONPointer? {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { buffer in
            var n = number
            var end = 24
            repeat {
                end -= 1
                buffer[end] = UInt8(truncatingIfNeeded: n % 10) + 0x30
                n /= 10
            } while n > 0
            end -= 1
            buffer[end] = prefix
            let start = UnsafeRawPointer(buffer.baseAddress! + end).assumingMemoryBound(to: CChar.self)
            return json_stringn_nocheck(start, 24 - end)
        }
    }

    /// `p7`: the wire form of `ParticipantID`.
    @inline(__always)
    static func id(_ id: ParticipantID) -> JSONPointer? { prefixedID(UInt8(ascii: "p"), UInt64(id.rawValue)) }

    /// `m12`: the wire form of `MessageID`.
    @inline(__always)
    static func id(_ id: MessageID) -> JSONPointer? { prefixedID(UInt8(ascii: "m"), id.rawValue) }

    static func id(_ id: BreakoutID) -> JSONPointer? { prefixedID(UInt8(ascii: "b"), UInt64(id.rawValue)) }

    @inline(__always)
    static func integer<T: BinaryInteger>(_ value: T) -> JSONPointer? { json_integer(json_int_t(clamping: value)) }

    @inline(__always)
    static func bool(_ value: Bool) -> JSONPointer? { cj_boolean(value ? 1 : 0) }

    /// Serialises `value` compactly, appending its bytes to `out`; false if jansson failed (then
    /// `out` is unchanged). jansson writes into a scratch buffer and the bytes are appended in
    /// one copy; a message larger than that buffer is serialised again straight into `out`.
    /// (`json_dump_callback` handed over every token separately, each an append to the array.)
    @discardableResult
    static func dump(_ value: JSONPointer, flags: Int, appendingTo out: inout [UInt8]) -> Bool {
        let needed = withUnsafeTemporaryAllocation(of: CChar.self, capacity: dumpBufferSize) { buffer -> Int in
            let needed = json_dumpb(value, buffer.baseAddress, buffer.count, flags)
            if needed > 0 && needed <= buffer.count {
                out.append(contentsOf: UnsafeRawBufferPointer(start: buffer.baseAddress, count: needed))
            }
            return needed
        }
        if needed == 0 { return false }
        if needed <= dumpBufferSize { return true }
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: needed))
        let written = out.withUnsafeMutableBytes { bytes in
            json_dumpb(value, (bytes.baseAddress! + start).assumingMemoryBound(to: CChar.self), needed, flags)
        }
        if written != needed {
            out.removeLast(needed)
            return false
        }
        return true
    }

    /// The scratch buffer of `dump` (a temporary allocation: over 1 KiB the Swift runtime puts it
    /// on the heap, not the stack): a chat, a presence update, a 2 KB welcome fit.
    static let dumpBufferSize = 4096

    /// The Swift string of a jansson string value (jansson validated its UTF-8 on input).
    @inline(__always)
    static func stringValue(_ value: JSONPointer) -> String {
        guard let bytes = json_string_value(value) else { return "" }
        return String(
            decoding: UnsafeRawBufferPointer(start: bytes, count: json_string_length(value)), as: UTF8.self)
    }
}

/// An object under construction: keys are static ASCII literals, values are stolen references.
struct ObjectBuilder {
    let object: JSONPointer

    init() { object = json_object() }

    init(_ object: JSONPointer) { self.object = object }

    /// Sets `key` to `value`, taking over the reference (a nil value leaves the key unset).
    @inline(__always)
    func set(_ key: StaticString, _ value: JSONPointer?) {
        guard let value else { return }
        json_object_set_new_nocheck(object, key.cString, value)
    }

    @inline(__always)
    func set(_ key: StaticString, string value: String) { set(key, JSON.string(value)) }

    @inline(__always)
    func set(_ key: StaticString, optionalString value: String?) {
        if let value { set(key, JSON.string(value)) }
    }

    @inline(__always)
    func set(_ key: StaticString, bool value: Bool) { set(key, JSON.bool(value)) }

    @inline(__always)
    func set<T: BinaryInteger>(_ key: StaticString, integer value: T) { set(key, JSON.integer(value)) }
}
