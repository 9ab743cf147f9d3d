import HearthCore

/// The journal's hot entries written without `JSONEncoder`, byte for byte as it writes them.
///
/// `JSONEncoder` builds a tree of values through `Codable` and then serialises it; for the
/// entries every join and every chat writes that was the largest cost of the journal's writer:
/// 6-7% of the server's CPU for room chat (perf, 300 groups x 10 at 1 chat/s per member) and
/// about 5% of a join's (a `connect` carries the room's 22 settings). These shapes are written
/// directly: room chat, `connect`, `resume`, `disconnected`, and the commands of a join
/// (`acknowledgeConsent`, `admit`, `setMedia`). Every other entry returns nil and Foundation encodes it.
///
/// The bytes are the format, so they must equal Foundation's (sorted keys, its escaping): the
/// store tests compare the two for every shape here, over awkward strings and over settings
/// with every field set and with none. A field added to `SettingsBody` and not here makes
/// that comparison fail.
enum JournalFastCoding {
    static func encode(_ entry: JournalEntry) -> String? {
        var w = SortedJSONWriter()
        switch entry {
        case .connect(let c):
            w.object {
                $0.object("connect") {
                    $0.member("at", c.at.milliseconds)
                    $0.member("connection", c.connection.rawValue)
                    $0.object("identity") {
                        $0.member("alias", c.identity.alias)
                        $0.member("role", c.identity.role.rawValue)
                        $0.member("userID", c.identity.userID.rawValue)
                    }
                    $0.member("resumeHash", c.resumeHash)
                    $0.member("room", c.room.rawValue)
                    if let settings = c.settings { $0.object("settings") { settingsMembers(settings, into: &$0) } }
                }
            }
        case .resume(let connection, let room, let resumeHash, let newResumeHash, let lastSeq, let at):
            w.object {
                $0.object("resume") {
                    $0.member("at", at.milliseconds)
                    $0.member("connection", connection.rawValue)
                    $0.member("lastSeq", lastSeq)
                    if let newResumeHash { $0.member("newResumeHash", newResumeHash) }
                    $0.member("resumeHash", resumeHash)
                    $0.member("room", room.rawValue)
                }
            }
        case .disconnected(let connection, let room, let at):
            w.object {
                $0.object("disconnected") {
                    $0.member("at", at.milliseconds)
                    $0.member("connection", connection.rawValue)
                    $0.member("room", room.rawValue)
                }
            }
        case .command(let connection, let room, let journaled, let at):
            let command: (inout SortedJSONWriter) -> Void
            switch journaled.command {
            case .chat(to: .room, let text):
                command = { w in
                    w.object("chat") {
                        $0.member("text", text)
                        $0.object("to") { $0.object("room") { _ in } }
                    }
                }
            case .acknowledgeConsent(let version):
                command = { w in w.object("acknowledgeConsent") { $0.member("version", version) } }
            case .admit(let member):
                command = { w in w.object("admit") { $0.member("member", UInt64(member.rawValue)) } }
            case .setMedia(let audio, let video):
                command = { w in
                    w.object("setMedia") {
                        if let audio { $0.member("audio", audio) }
                        if let video { $0.member("video", video) }
                    }
                }
            default:
                return nil
            }
            w.object {
                $0.object("command") {
                    $0.member("at", at.milliseconds)
                    $0.object("command") { command(&$0) }
                    $0.member("connection", connection.rawValue)
                    $0.member("room", room.rawValue)
                }
            }
        case .timerFired, .createRoom, .endRoom:
            return nil
        }
        return w.text
    }

    /// `SettingsBody`'s members, sorted; the optional ones only when present (as Foundation
    /// omits a nil optional).
    private static func settingsMembers(_ s: RoomSettings, into w: inout SortedJSONWriter) {
        w.member("capacity", Int64(s.capacity))
        w.member("chatHistory", Int64(s.chatHistory))
        w.member("chatPolicy", s.chatPolicy.rawValue)
        if let closesAt = s.closesAt { w.member("closesAt", closesAt.milliseconds) }
        if let consentText = s.consentText { w.member("consentText", consentText) }
        if let consentVersion = s.consentVersion { w.member("consentVersion", consentVersion) }
        w.member("facilitatorDrop", s.facilitatorDrop.rawValue)
        w.member("graceMilliseconds", s.graceMilliseconds)
        w.member("idleCloseMilliseconds", s.idleCloseMilliseconds)
        w.member("maxChatLength", Int64(s.maxChatLength))
        w.member("maxLocationLength", Int64(s.maxLocationLength))
        w.member("maxReasonLength", Int64(s.maxReasonLength))
        w.member("maxSignalBytes", Int64(s.maxSignalBytes))
        w.member("maxWaiting", Int64(s.maxWaiting))
        w.member("media", s.media.rawValue)
        w.member("meshLimit", Int64(s.meshLimit))
        if let opensAt = s.opensAt { w.member("opensAt", opensAt.milliseconds) }
        w.member("privateMessages", s.privateMessages)
        w.member("replayWindow", Int64(s.replayWindow))
        w.member("requireLocation", s.requireLocation)
        w.member("selfUnmute", s.selfUnmute)
        w.member("waitingRoom", s.waitingRoom)
    }
}

/// JSON objects written member by member, as `JSONEncoder` (`.sortedKeys`, default options)
/// writes them: no spaces, integers in decimal, strings escaped as it escapes them. The caller
/// gives the members in sorted order (debug builds check it).
struct SortedJSONWriter {
    private var bytes: [UInt8] = []
    /// True right after `{`: the next member needs no comma.
    private var atObjectStart = true
    #if DEBUG
        private var lastKeys: [String] = [""]
    #endif

    init() { bytes.reserveCapacity(256) }

    var text: String { String(decoding: bytes, as: UTF8.self) }

    /// A top-level object.
    mutating func object(_ body: (inout SortedJSONWriter) -> Void) {
        bytes.append(0x7B)
        enter()
        body(&self)
        leave()
        bytes.append(0x7D)
    }

    mutating func object(_ key: StaticString, _ body: (inout SortedJSONWriter) -> Void) {
        self.key(key)
        object(body)
    }

    mutating func member(_ key: StaticString, _ value: String) {
        self.key(key)
        appendQuoted(value)
    }

    mutating func member(_ key: StaticString, _ value: Int64) {
        self.key(key)
        bytes += String(value).utf8
    }

    mutating func member(_ key: StaticString, _ value: UInt64) {
        self.key(key)
        bytes += String(value).utf8
    }

    mutating func member(_ key: StaticString, _ value: Bool) {
        self.key(key)
        bytes += (value ? "true" : "false").utf8
    }

    private mutating func key(_ key: StaticString) {
        #if DEBUG
            let name = key.description
            assert(name > lastKeys[lastKeys.count - 1], "members out of order: \(name)")
            lastKeys[lastKeys.count - 1] = name
        #endif
        if !atObjectStart { bytes.append(0x2C) }
        atObjectStart = false
        bytes.append(0x22)
        key.withUTF8Buffer { bytes += $0 }
        bytes += [0x22, 0x3A]
    }

    private mutating func enter() {
        atObjectStart = true
        #if DEBUG
            lastKeys.append("")
        #endif
    }

    private mutating func leave() {
        atObjectStart = false
        #if DEBUG
            lastKeys.removeLast()
        #endif
    }

    /// A JSON string literal escaped as `JSONEncoder` escapes it (default options: `/` as `\/`,
    /// the short escapes for \b \f \n \r \t, other controls as `\u00xx`, the rest verbatim).
    /// Runs of bytes that need no escape are copied whole (a byte at a time, this was a third of
    /// the encoding's cost: `hearth-store-bench` under callgrind).
    private mutating func appendQuoted(_ s: String) {
        bytes.append(0x22)
        var s = s
        s.withUTF8 { utf8 in
            var runStart = 0
            for (i, b) in utf8.enumerated() where b < 0x20 || b == 0x22 || b == 0x5C || b == 0x2F {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i]))
                appendEscaped(b)
                runStart = i + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
        bytes.append(0x22)
    }

    /// One byte that `appendQuoted` escapes: `"`, `\\`, `/` or a control.
    private mutating func appendEscaped(_ b: UInt8) {
        switch b {
        case 0x22: bytes += [0x5C, 0x22]  // \"
        case 0x5C: bytes += [0x5C, 0x5C]  // \\
        case 0x2F: bytes += [0x5C, 0x2F]  // \/
        case 0x08: bytes += [0x5C, 0x62]  // \b
        case 0x0C: bytes += [0x5C, 0x66]  // \f
        case 0x0A: bytes += [0x5C, 0x6E]  // \n
        case 0x0D: bytes += [0x5C, 0x72]  // \r
        case 0x09: bytes += [0x5C, 0x74]  // \t
        default:  // the other controls: \u00xx
            bytes += [0x5C, 0x75, 0x30, 0x30, Self.hex[Int(b >> 4)], Self.hex[Int(b & 0xF)]]
        }
    }

    private static let hex = Array("0123456789abcdef".utf8)
}
