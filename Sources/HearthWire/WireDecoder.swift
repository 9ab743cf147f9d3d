import CJansson
import HearthCore

/// Decodes client frames (one JSON object each) into `Inbound` values, with jansson.
///
/// The checks, in order: nesting depth (`bad-message`); JSON syntax, UTF-8 and duplicate
/// keys (`bad-json`), but a number beyond 64 bits is `bad-message`; a top-level object
/// (`bad-json`); `rid` (`bad-message`, not echoed); `type` (`bad-message` when missing,
/// `unknown-type` when unknown); then the fields of that type (`bad-message`). Errors echo
/// the `rid` once it was read. Unknown fields are ignored; `null` counts as absent for
/// optional fields.
public enum WireDecoder {
    /// The deepest nesting of objects and arrays a message may have (the top-level object is 1).
    public static let maxDepth = 32
    /// The longest `rid`, in bytes of UTF-8.
    public static let maxRIDBytes = 64

    public static func decode(_ bytes: UnsafeRawBufferPointer) -> Result<Inbound, WireError> {
        // Before parsing: jansson recurses per level (up to 2048), and no message needs more than a few.
        guard nestingWithinLimit(bytes) else { return .failure(WireError(.badMessage)) }
        var error = json_error_t()
        let text = bytes.baseAddress?.assumingMemoryBound(to: CChar.self)
        guard let root = json_loadb(text, bytes.count, cj_decode_flags(), &error) else {
            // A number too big for 64 bits is valid JSON with a value out of range.
            return .failure(WireError(cj_error_is_numeric_overflow(&error) != 0 ? .badMessage : .badJSON))
        }
        defer { cj_decref(root) }
        guard cj_is_object(root) != 0 else { return .failure(WireError(.badJSON)) }
        do {
            return .success(try decode(object: root))
        } catch {
            return .failure(error)
        }
    }

    public static func decode(_ bytes: [UInt8]) -> Result<Inbound, WireError> {
        bytes.withUnsafeBytes { decode($0) }
    }

    public static func decode(_ text: String) -> Result<Inbound, WireError> {
        var text = text
        return text.withUTF8 { decode(UnsafeRawBufferPointer($0)) }
    }

    // MARK: Envelope

    static func decode(object root: JSONPointer) throws(WireError) -> Inbound {
        var fields = Fields(object: root, rid: nil)
        if let value = json_object_get(root, "rid") {
            guard cj_is_string(value) != 0 else { throw WireError(.badMessage) }
            let length = json_string_length(value)
            guard length > 0, length <= maxRIDBytes else { throw WireError(.badMessage) }
            fields.rid = JSON.stringValue(value)
        }
        let rid = fields.rid
        guard let typeValue = json_object_get(root, "type"), cj_is_string(typeValue) != 0 else {
            throw WireError(.badMessage, rid: rid)
        }
        let type = JSON.stringValue(typeValue)
        switch type {
        case "hello":
            return .hello(token: try fields.string("token"), rid: rid)
        case "refresh":
            return .refresh(token: try fields.string("token"), rid: rid)
        case "resume":
            return .resume(secret: try fields.string("secret"), lastSeq: try fields.unsigned("lastSeq"), rid: rid)
        case "ping":
            return .ping(rid: rid)
        case "sfu-publish":
            return .sfu(.publish(session: try fields.unsigned("session"), sdp: try fields.sdp("sdp")), rid: rid)
        case "sfu-subscribe":
            return .sfu(.subscribe(session: try fields.unsigned("session"), sdp: try fields.sdp("sdp")), rid: rid)
        case "sfu-candidate":
            return .sfu(
                .candidate(
                    session: try fields.unsigned("session"), peer: try fields.enumeration("pc", SFUPeer.self),
                    try fields.candidate("candidate")),
                rid: rid)
        default:
            guard let command = try command(type, fields) else { throw WireError(.unknownType, rid: rid) }
            return .command(command, rid: rid)
        }
    }

    /// The command named `type` (its `ClientCommand.name`), or nil when no command has that name.
    static func command(_ type: String, _ f: Fields) throws(WireError) -> ClientCommand? {
        switch type {
        case "media": return .setMedia(audio: try f.optionalBool("audio"), video: try f.optionalBool("video"))
        case "raise-hand": return .raiseHand
        case "lower-hand": return .lowerHand(try f.optionalMember("member"))
        case "chat": return .chat(to: try f.chatTarget("to"), text: try f.string("text"))
        case "signal":
            return .signal(
                to: try f.member("to"), kind: try f.enumeration("kind", SignalKind.self),
                payload: try f.payload("payload"))
        case "help": return .requestHelp
        case "consent": return .acknowledgeConsent(version: try f.string("version"))
        case "location": return .setLocation(try f.string("text"))
        case "leave": return .leave
        case "admit": return .admit(try f.member("member"))
        case "admit-all": return .admitAll
        case "deny": return .deny(try f.member("member"), reason: try f.optionalString("reason"))
        case "send-back": return .sendBack(try f.member("member"))
        case "message-waiting-room": return .messageWaitingRoom(try f.string("text"))
        case "mute":
            return .mute(
                try f.member("member"), audio: try f.bool("audio", default: true),
                video: try f.bool("video", default: false))
        case "mute-all": return .muteAll(video: try f.bool("video", default: false))
        case "ask-unmute":
            return .askUnmute(
                try f.member("member"), audio: try f.bool("audio", default: true),
                video: try f.bool("video", default: false))
        case "remove":
            return .remove(
                try f.member("member"), ban: try f.bool("ban", default: false),
                reason: try f.optionalString("reason"))
        case "set-role": return .setRole(try f.member("member"), try f.enumeration("role", Role.self))
        case "grant": return .grant(try f.member("member"), media: try f.bool("media"), chat: try f.bool("chat"))
        case "spotlight": return .spotlight(try f.nullableMember("member"))
        case "lower-all-hands": return .lowerAllHands
        case "delete-chat": return .deleteChat(try f.messageID("message"))
        case "lock": return .setLocked(true)
        case "unlock": return .setLocked(false)
        case "settings":
            return .updateSettings(
                SettingsChange(
                    chatPolicy: try f.optionalEnumeration("chatPolicy", ChatPolicy.self),
                    privateMessages: try f.optionalBool("privateMessages"),
                    selfUnmute: try f.optionalBool("selfUnmute"),
                    waitingRoom: try f.optionalBool("waitingRoom")))
        case "acknowledge-help": return .acknowledgeHelp(try f.member("member"))
        case "end": return .end
        case "breakouts-plan":
            return .planBreakouts(try f.breakoutPlan("breakouts"), automatic: try f.bool("automatic", default: false))
        case "breakouts-open":
            return .openBreakouts(
                durationSeconds: try f.optionalInt("durationSeconds"),
                warningSeconds: try f.optionalInt("warningSeconds"))
        case "breakouts-close": return .closeBreakouts
        case "breakout-close": return .closeBreakout(try f.breakout("breakout"))
        case "breakout-move": return .moveToBreakout(try f.member("member"), try f.nullableBreakout("breakout"))
        case "breakout-visit": return .visitBreakout(try f.nullableBreakout("breakout"))
        case "breakout-broadcast": return .broadcastToBreakouts(try f.string("text"))
        case "pull-aside": return .pullAside(try f.member("member"))
        default: return nil
        }
    }

    // MARK: Depth

    /// Whether objects and arrays nest at most `maxDepth` deep, brackets in strings aside
    /// (`cj_nesting_within`, shared with the token verifier).
    static func nestingWithinLimit(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        return cj_nesting_within(base.assumingMemoryBound(to: UInt8.self), bytes.count, Int32(maxDepth)) != 0
    }
}

/// The fields of one message object: every failure is `bad-message` with the message's `rid`.
struct Fields {
    let object: JSONPointer
    var rid: String?

    init(object: JSONPointer, rid: String?) {
        self.object = object
        self.rid = rid
    }

    var bad: WireError { WireError(.badMessage, rid: rid) }

    /// The value of `key`, treating JSON `null` as absent.
    @inline(__always)
    func value(_ key: StaticString) -> JSONPointer? {
        guard let value = json_object_get(object, key.cString), cj_is_null(value) == 0 else { return nil }
        return value
    }

    func string(_ key: StaticString) throws(WireError) -> String {
        guard let value = try optionalString(key) else { throw bad }
        return value
    }

    func optionalString(_ key: StaticString) throws(WireError) -> String? {
        guard let value = value(key) else { return nil }
        guard cj_is_string(value) != 0 else { throw bad }
        return JSON.stringValue(value)
    }

    func bool(_ key: StaticString) throws(WireError) -> Bool {
        guard let value = try optionalBool(key) else { throw bad }
        return value
    }

    func bool(_ key: StaticString, default fallback: Bool) throws(WireError) -> Bool {
        try optionalBool(key) ?? fallback
    }

    func optionalBool(_ key: StaticString) throws(WireError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard cj_is_boolean(value) != 0 else { throw bad }
        return cj_is_true(value) != 0
    }

    /// A non-negative JSON integer (not a real, even `1.0`).
    func unsigned(_ key: StaticString) throws(WireError) -> UInt64 {
        guard let value = value(key), cj_is_integer(value) != 0 else { throw bad }
        let number = json_integer_value(value)
        guard number >= 0 else { throw bad }
        return UInt64(number)
    }

    func member(_ key: StaticString) throws(WireError) -> ParticipantID {
        guard let id = try optionalMember(key) else { throw bad }
        return id
    }

    /// A member id that may be absent or null.
    func optionalMember(_ key: StaticString) throws(WireError) -> ParticipantID? {
        guard let value = value(key) else { return nil }
        guard let id = Self.participant(value) else { throw bad }
        return id
    }

    /// A member id that must be present but may be null (`spotlight`: null clears it).
    func nullableMember(_ key: StaticString) throws(WireError) -> ParticipantID? {
        guard json_object_get(object, key.cString) != nil else { throw bad }
        return try optionalMember(key)
    }

    /// A breakout id (`b3`) in canonical form, fitting 32 bits.
    func breakout(_ key: StaticString) throws(WireError) -> BreakoutID {
        guard let value = value(key), let id = Self.breakout(value) else { throw bad }
        return id
    }

    /// A breakout id that must be present but may be null (null: the main room).
    func nullableBreakout(_ key: StaticString) throws(WireError) -> BreakoutID? {
        guard json_object_get(object, key.cString) != nil else { throw bad }
        guard value(key) != nil else { return nil }
        return try breakout(key)
    }

    /// A JSON integer that fits `Int`, or nil when absent (range checks are the engine's).
    func optionalInt(_ key: StaticString) throws(WireError) -> Int? {
        guard let value = value(key) else { return nil }
        guard cj_is_integer(value) != 0 else { throw bad }
        return Int(json_integer_value(value))
    }

    /// `breakouts-plan`'s list: objects with a `name` and optional `members` (member ids).
    /// At most `Room.maxBreakouts + 1` entries are read: a longer list is refused by the
    /// engine all the same, without decoding the rest.
    func breakoutPlan(_ key: StaticString) throws(WireError) -> [BreakoutPlanEntry] {
        guard let list = value(key), cj_is_array(list) != 0 else { throw bad }
        var entries: [BreakoutPlanEntry] = []
        for i in 0..<min(json_array_size(list), Room.maxBreakouts + 1) {
            guard let item = json_array_get(list, i), cj_is_object(item) != 0 else { throw bad }
            let entry = Fields(object: item, rid: rid)
            var members: [ParticipantID] = []
            if let ids = entry.value("members") {
                guard cj_is_array(ids) != 0 else { throw bad }
                for j in 0..<json_array_size(ids) {
                    guard let id = json_array_get(ids, j).flatMap(Self.participant) else { throw bad }
                    members.append(id)
                }
            }
            entries.append(BreakoutPlanEntry(name: try entry.string("name"), members: members))
        }
        return entries
    }

    func messageID(_ key: StaticString) throws(WireError) -> MessageID {
        guard let value = value(key), let number = Self.number(value, prefix: UInt8(ascii: "m")) else { throw bad }
        return MessageID(number)
    }

    func chatTarget(_ key: StaticString) throws(WireError) -> ChatTarget {
        guard let value = value(key), cj_is_string(value) != 0 else { throw bad }
        if let id = Self.participant(value) { return .member(id) }
        switch JSON.stringValue(value) {
        case "room": return .room
        case "staff": return .staff
        default: throw bad
        }
    }

    func enumeration<E: RawRepresentable>(_ key: StaticString, _ type: E.Type) throws(WireError) -> E
    where E.RawValue == String {
        guard let value = try optionalEnumeration(key, type) else { throw bad }
        return value
    }

    func optionalEnumeration<E: RawRepresentable>(_ key: StaticString, _ type: E.Type) throws(WireError) -> E?
    where E.RawValue == String {
        guard let raw = try optionalString(key) else { return nil }
        guard let value = E(rawValue: raw) else { throw bad }
        return value
    }

    /// An SDP: a non-empty string of at most 64 KiB.
    func sdp(_ key: StaticString) throws(WireError) -> String {
        let text = try string(key)
        guard !text.isEmpty, text.utf8.count <= 65_536 else { throw bad }
        return text
    }

    /// An ICE candidate object, or JSON `null` (end of candidates); the key must be present.
    func candidate(_ key: StaticString) throws(WireError) -> SFUCandidate? {
        guard let raw = json_object_get(object, key.cString) else { throw bad }
        if cj_is_null(raw) != 0 { return nil }
        guard cj_is_object(raw) != 0 else { throw bad }
        let f = Fields(object: raw, rid: rid)
        let candidate = try f.string("candidate")
        guard candidate.utf8.count <= 1024 else { throw bad }
        let mid = try f.optionalString("sdpMid")
        guard (mid?.utf8.count ?? 0) <= 32 else { throw bad }
        let index = try f.optionalInt("sdpMLineIndex")
        guard (0...255).contains(index ?? 0) else { throw bad }
        return SFUCandidate(candidate: candidate, sdpMid: mid, sdpMLineIndex: index)
    }

    /// Any JSON value (null included), as compact JSON text for the engine to relay.
    func payload(_ key: StaticString) throws(WireError) -> String {
        guard let value = json_object_get(object, key.cString) else { throw bad }
        var text: [UInt8] = []
        guard JSON.dump(value, flags: cj_any_compact_flags(), appendingTo: &text) else { throw bad }
        return String(decoding: text, as: UTF8.self)
    }

    /// A member id (`p7`) in canonical form, fitting 32 bits.
    static func participant(_ value: JSONPointer) -> ParticipantID? {
        guard let number = number(value, prefix: UInt8(ascii: "p")), number <= UInt32.max else { return nil }
        return ParticipantID(UInt32(number))
    }

    /// A breakout id (`b3`) in canonical form, fitting 32 bits.
    static func breakout(_ value: JSONPointer) -> BreakoutID? {
        guard let number = number(value, prefix: UInt8(ascii: "b")), number <= UInt32.max else { return nil }
        return BreakoutID(UInt32(number))
    }

    /// The number of a canonical wire id: the prefix, then `0` or digits without a leading zero.
    /// Stricter than `ParticipantID(wire:)`, which also takes `p+7` and `p007`.
    static func number(_ value: JSONPointer, prefix: UInt8) -> UInt64? {
        guard cj_is_string(value) != 0, let bytes = json_string_value(value) else { return nil }
        let count = json_string_length(value)
        guard count >= 2, count <= 21, UInt8(bitPattern: bytes[0]) == prefix else { return nil }
        if count > 2 && bytes[1] == CChar(UInt8(ascii: "0")) { return nil }
        var number: UInt64 = 0
        for i in 1..<count {
            let digit = UInt8(bitPattern: bytes[i]) &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (times10, overflow1) = number.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit))
            guard !overflow1, !overflow2 else { return nil }
            number = sum
        }
        return number
    }
}
