import Foundation
import HearthCore

/// The journal's `body` column: JSON (Foundation's `JSONEncoder`, sorted keys), as TEXT. The
/// entries written most (room chat and a join's) are written by `JournalFastCoding` instead,
/// with the same bytes.
///
/// Why JSON and not a compact binary format: a journal row is written once and read only at
/// start-up, so its size and decoding speed barely matter next to the transaction's fsync;
/// JSON can be read with the `sqlite3` shell during an incident, and a field added later can
/// be decoded as optional from old rows. Encoding runs on the writer thread, never on the
/// event loop.
///
/// The shapes below mirror HearthCore's types one to one. They are spelled out here, not
/// derived from HearthCore, so that renaming a case in the engine cannot silently change
/// the stored format: the two exhaustive switches (`init(_:)` and `value`) stop compiling
/// instead. Case and field names are the storage format: never rename one.
enum JournalCoding {
    static func encode(_ entry: JournalEntry) throws -> String {
        if let fast = JournalFastCoding.encode(entry) { return fast }
        return try encodeWithFoundation(entry)
    }

    /// Foundation's encoding of every entry (the reference `JournalFastCoding` is tested against).
    static func encodeWithFoundation(_ entry: JournalEntry) throws -> String {
        let data = try encoder.encode(EntryBody(entry))
        return String(decoding: data, as: UTF8.self)
    }

    static func decode(kind: String, body: String) throws -> JournalEntry {
        let body = try JSONDecoder().decode(EntryBody.self, from: Data(body.utf8))
        let entry = try body.value()
        guard entry.kind == kind else {
            throw StoreError.corruptJournal(seq: nil, reason: "kind \(kind) does not match body \(entry.kind)")
        }
        return entry
    }

    /// One encoder, configured once (creating one per entry showed in perf under chat load).
    private static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()
}

// MARK: Entries

private enum EntryBody: Codable {
    case connect(
        connection: UInt64, room: String, identity: IdentityBody, resumeHash: String, settings: SettingsBody?, at: Int64
    )
    /// `newResumeHash` is absent from rows written before resume secrets rotated.
    case resume(
        connection: UInt64, room: String, resumeHash: String, newResumeHash: String?, lastSeq: UInt64, at: Int64)
    case command(connection: UInt64, room: String, command: CommandBody, at: Int64)
    case disconnected(connection: UInt64, room: String, at: Int64)
    case timer(room: String, timer: TimerKindBody, at: Int64)
    case createRoom(room: String, settings: SettingsBody, at: Int64)
    case endRoom(room: String, at: Int64)

    init(_ entry: JournalEntry) {
        switch entry {
        case .connect(let c):
            self = .connect(
                connection: c.connection.rawValue, room: c.room.rawValue, identity: IdentityBody(c.identity),
                resumeHash: c.resumeHash, settings: c.settings.map(SettingsBody.init), at: c.at.milliseconds)
        case .resume(let connection, let room, let resumeHash, let newResumeHash, let lastSeq, let at):
            self = .resume(
                connection: connection.rawValue, room: room.rawValue, resumeHash: resumeHash,
                newResumeHash: newResumeHash, lastSeq: lastSeq, at: at.milliseconds)
        case .command(let connection, let room, let command, let at):
            self = .command(
                connection: connection.rawValue, room: room.rawValue, command: CommandBody(command.command),
                at: at.milliseconds)
        case .disconnected(let connection, let room, let at):
            self = .disconnected(connection: connection.rawValue, room: room.rawValue, at: at.milliseconds)
        case .timerFired(let timer, let at):
            self = .timer(room: timer.room.rawValue, timer: TimerKindBody(timer.kind), at: at.milliseconds)
        case .createRoom(let room, let settings, let at):
            self = .createRoom(room: room.rawValue, settings: SettingsBody(settings), at: at.milliseconds)
        case .endRoom(let room, let at):
            self = .endRoom(room: room.rawValue, at: at.milliseconds)
        }
    }

    func value() throws -> JournalEntry {
        switch self {
        case .connect(let connection, let room, let identity, let resumeHash, let settings, let at):
            return .connect(
                JournalEntry.Connect(
                    connection: ConnectionID(connection), room: RoomID(room), identity: try identity.value(),
                    resumeHash: resumeHash, settings: try settings?.value(), at: Instant(milliseconds: at)))
        case .resume(let connection, let room, let resumeHash, let newResumeHash, let lastSeq, let at):
            return .resume(
                connection: ConnectionID(connection), room: RoomID(room), resumeHash: resumeHash,
                newResumeHash: newResumeHash, lastSeq: lastSeq, at: Instant(milliseconds: at))
        case .command(let connection, let room, let command, let at):
            guard let journaled = JournaledCommand(try command.value()) else {
                throw StoreError.corruptJournal(seq: nil, reason: "a signalling command in the journal")
            }
            return .command(
                connection: ConnectionID(connection), room: RoomID(room), command: journaled,
                at: Instant(milliseconds: at))
        case .disconnected(let connection, let room, let at):
            return .disconnected(
                connection: ConnectionID(connection), room: RoomID(room), at: Instant(milliseconds: at))
        case .timer(let room, let timer, let at):
            return .timerFired(TimerID(room: RoomID(room), kind: timer.value()), at: Instant(milliseconds: at))
        case .createRoom(let room, let settings, let at):
            return .createRoom(RoomID(room), settings: try settings.value(), at: Instant(milliseconds: at))
        case .endRoom(let room, let at):
            return .endRoom(RoomID(room), at: Instant(milliseconds: at))
        }
    }
}

private enum TimerKindBody: Codable {
    case grace(member: UInt32)
    case opens
    case closes
    case idle
    case breakoutsWarning
    case breakoutsEnd

    init(_ kind: TimerID.Kind) {
        switch kind {
        case .grace(let id): self = .grace(member: id.rawValue)
        case .opens: self = .opens
        case .closes: self = .closes
        case .idle: self = .idle
        case .breakoutsWarning: self = .breakoutsWarning
        case .breakoutsEnd: self = .breakoutsEnd
        }
    }

    func value() -> TimerID.Kind {
        switch self {
        case .grace(let member): return .grace(ParticipantID(member))
        case .opens: return .opens
        case .closes: return .closes
        case .idle: return .idle
        case .breakoutsWarning: return .breakoutsWarning
        case .breakoutsEnd: return .breakoutsEnd
        }
    }
}

private struct IdentityBody: Codable {
    var userID: String
    var role: String
    var alias: String

    init(_ identity: Identity) {
        userID = identity.userID.rawValue
        role = identity.role.rawValue
        alias = identity.alias
    }

    func value() throws -> Identity {
        Identity(userID: UserID(userID), role: try raw(role), alias: alias)
    }
}

/// Every `RoomSettings` field. A field missing from an old row keeps the engine's default.
private struct SettingsBody: Codable {
    var capacity: Int?
    var waitingRoom: Bool?
    var consentVersion: String?
    var requireLocation: Bool?
    var chatPolicy: String?
    var privateMessages: Bool?
    var selfUnmute: Bool?
    var graceMilliseconds: Int64?
    var facilitatorDrop: String?
    var replayWindow: Int?
    var chatHistory: Int?
    var maxChatLength: Int?
    var maxLocationLength: Int?
    var maxReasonLength: Int?
    var maxSignalBytes: Int?
    var maxWaiting: Int?
    var consentText: String?
    var opensAt: Int64?
    var closesAt: Int64?
    var idleCloseMilliseconds: Int64?
    var media: String?
    var meshLimit: Int?

    init(_ s: RoomSettings) {
        capacity = s.capacity
        waitingRoom = s.waitingRoom
        consentVersion = s.consentVersion
        requireLocation = s.requireLocation
        chatPolicy = s.chatPolicy.rawValue
        privateMessages = s.privateMessages
        selfUnmute = s.selfUnmute
        graceMilliseconds = s.graceMilliseconds
        facilitatorDrop = s.facilitatorDrop.rawValue
        replayWindow = s.replayWindow
        chatHistory = s.chatHistory
        maxChatLength = s.maxChatLength
        maxLocationLength = s.maxLocationLength
        maxReasonLength = s.maxReasonLength
        maxSignalBytes = s.maxSignalBytes
        maxWaiting = s.maxWaiting
        consentText = s.consentText
        opensAt = s.opensAt?.milliseconds
        closesAt = s.closesAt?.milliseconds
        idleCloseMilliseconds = s.idleCloseMilliseconds
        media = s.media.rawValue
        meshLimit = s.meshLimit
    }

    func value() throws -> RoomSettings {
        var s = RoomSettings()
        if let capacity { s.capacity = capacity }
        if let waitingRoom { s.waitingRoom = waitingRoom }
        s.consentVersion = consentVersion
        if let requireLocation { s.requireLocation = requireLocation }
        if let chatPolicy { s.chatPolicy = try raw(chatPolicy) }
        if let privateMessages { s.privateMessages = privateMessages }
        if let selfUnmute { s.selfUnmute = selfUnmute }
        if let graceMilliseconds { s.graceMilliseconds = graceMilliseconds }
        if let facilitatorDrop { s.facilitatorDrop = try raw(facilitatorDrop) }
        if let replayWindow { s.replayWindow = replayWindow }
        if let chatHistory { s.chatHistory = chatHistory }
        if let maxChatLength { s.maxChatLength = maxChatLength }
        if let maxLocationLength { s.maxLocationLength = maxLocationLength }
        if let maxReasonLength { s.maxReasonLength = maxReasonLength }
        if let maxSignalBytes { s.maxSignalBytes = maxSignalBytes }
        if let maxWaiting { s.maxWaiting = maxWaiting }
        s.consentText = consentText
        s.opensAt = opensAt.map(Instant.init(milliseconds:))
        s.closesAt = closesAt.map(Instant.init(milliseconds:))
        if let idleCloseMilliseconds { s.idleCloseMilliseconds = idleCloseMilliseconds }
        if let media { s.media = try raw(media) }
        if let meshLimit { s.meshLimit = meshLimit }
        return s
    }
}

// MARK: Commands

private enum ChatTargetBody: Codable {
    case room
    case staff
    case member(UInt32)

    init(_ target: ChatTarget) {
        switch target {
        case .room: self = .room
        case .staff: self = .staff
        case .member(let id): self = .member(id.rawValue)
        }
    }

    var value: ChatTarget {
        switch self {
        case .room: return .room
        case .staff: return .staff
        case .member(let id): return .member(ParticipantID(id))
        }
    }
}

private struct SettingsChangeBody: Codable {
    var chatPolicy: String?
    var privateMessages: Bool?
    var selfUnmute: Bool?
    var waitingRoom: Bool?

    init(_ c: SettingsChange) {
        chatPolicy = c.chatPolicy?.rawValue
        privateMessages = c.privateMessages
        selfUnmute = c.selfUnmute
        waitingRoom = c.waitingRoom
    }

    func value() throws -> SettingsChange {
        SettingsChange(
            chatPolicy: try chatPolicy.map { try raw($0) }, privateMessages: privateMessages, selfUnmute: selfUnmute,
            waitingRoom: waitingRoom)
    }
}

private struct BreakoutPlanEntryBody: Codable {
    var name: String
    var members: [UInt32]

    init(_ entry: BreakoutPlanEntry) {
        name = entry.name
        members = entry.members.map(\.rawValue)
    }

    var value: BreakoutPlanEntry { BreakoutPlanEntry(name: name, members: members.map(ParticipantID.init)) }
}

/// Every `ClientCommand` but `.signal`, which has no case here and so cannot be stored.
private enum CommandBody: Codable {
    case setMedia(audio: Bool?, video: Bool?)
    case raiseHand
    case lowerHand(member: UInt32?)
    case chat(to: ChatTargetBody, text: String)
    case requestHelp
    case acknowledgeConsent(version: String)
    case setLocation(location: String)
    case leave
    case admit(member: UInt32)
    case admitAll
    case deny(member: UInt32, reason: String?)
    case sendBack(member: UInt32)
    case messageWaitingRoom(text: String)
    case mute(member: UInt32, audio: Bool, video: Bool)
    case muteAll(video: Bool)
    case askUnmute(member: UInt32, audio: Bool, video: Bool)
    case remove(member: UInt32, ban: Bool, reason: String?)
    case setRole(member: UInt32, role: String)
    case grant(member: UInt32, media: Bool, chat: Bool)
    case spotlight(member: UInt32?)
    case lowerAllHands
    case deleteChat(message: UInt64)
    case setLocked(locked: Bool)
    case updateSettings(change: SettingsChangeBody)
    case acknowledgeHelp(member: UInt32)
    case end
    case planBreakouts(breakouts: [BreakoutPlanEntryBody], automatic: Bool)
    case openBreakouts(durationSeconds: Int?, warningSeconds: Int?)
    case closeBreakouts
    case closeBreakout(breakout: UInt32)
    case moveToBreakout(member: UInt32, breakout: UInt32?)
    case visitBreakout(breakout: UInt32?)
    case broadcastToBreakouts(text: String)
    case pullAside(member: UInt32)

    /// `command` is never `.signal` (a `JournaledCommand` cannot hold one).
    init(_ command: ClientCommand) {
        switch command {
        case .setMedia(let audio, let video): self = .setMedia(audio: audio, video: video)
        case .raiseHand: self = .raiseHand
        case .lowerHand(let who): self = .lowerHand(member: who?.rawValue)
        case .chat(let to, let text): self = .chat(to: ChatTargetBody(to), text: text)
        case .signal: preconditionFailure("signalling is never journaled")
        case .requestHelp: self = .requestHelp
        case .acknowledgeConsent(let version): self = .acknowledgeConsent(version: version)
        case .setLocation(let location): self = .setLocation(location: location)
        case .leave: self = .leave
        case .admit(let id): self = .admit(member: id.rawValue)
        case .admitAll: self = .admitAll
        case .deny(let id, let reason): self = .deny(member: id.rawValue, reason: reason)
        case .sendBack(let id): self = .sendBack(member: id.rawValue)
        case .messageWaitingRoom(let text): self = .messageWaitingRoom(text: text)
        case .mute(let id, let audio, let video): self = .mute(member: id.rawValue, audio: audio, video: video)
        case .muteAll(let video): self = .muteAll(video: video)
        case .askUnmute(let id, let audio, let video):
            self = .askUnmute(member: id.rawValue, audio: audio, video: video)
        case .remove(let id, let ban, let reason): self = .remove(member: id.rawValue, ban: ban, reason: reason)
        case .setRole(let id, let role): self = .setRole(member: id.rawValue, role: role.rawValue)
        case .grant(let id, let media, let chat): self = .grant(member: id.rawValue, media: media, chat: chat)
        case .spotlight(let id): self = .spotlight(member: id?.rawValue)
        case .lowerAllHands: self = .lowerAllHands
        case .deleteChat(let id): self = .deleteChat(message: id.rawValue)
        case .setLocked(let locked): self = .setLocked(locked: locked)
        case .updateSettings(let change): self = .updateSettings(change: SettingsChangeBody(change))
        case .acknowledgeHelp(let id): self = .acknowledgeHelp(member: id.rawValue)
        case .end: self = .end
        case .planBreakouts(let entries, let automatic):
            self = .planBreakouts(breakouts: entries.map(BreakoutPlanEntryBody.init), automatic: automatic)
        case .openBreakouts(let duration, let warning):
            self = .openBreakouts(durationSeconds: duration, warningSeconds: warning)
        case .closeBreakouts: self = .closeBreakouts
        case .closeBreakout(let id): self = .closeBreakout(breakout: id.rawValue)
        case .moveToBreakout(let pid, let id): self = .moveToBreakout(member: pid.rawValue, breakout: id?.rawValue)
        case .visitBreakout(let id): self = .visitBreakout(breakout: id?.rawValue)
        case .broadcastToBreakouts(let text): self = .broadcastToBreakouts(text: text)
        case .pullAside(let pid): self = .pullAside(member: pid.rawValue)
        }
    }

    func value() throws -> ClientCommand {
        switch self {
        case .setMedia(let audio, let video): return .setMedia(audio: audio, video: video)
        case .raiseHand: return .raiseHand
        case .lowerHand(let member): return .lowerHand(member.map(ParticipantID.init))
        case .chat(let to, let text): return .chat(to: to.value, text: text)
        case .requestHelp: return .requestHelp
        case .acknowledgeConsent(let version): return .acknowledgeConsent(version: version)
        case .setLocation(let location): return .setLocation(location)
        case .leave: return .leave
        case .admit(let member): return .admit(ParticipantID(member))
        case .admitAll: return .admitAll
        case .deny(let member, let reason): return .deny(ParticipantID(member), reason: reason)
        case .sendBack(let member): return .sendBack(ParticipantID(member))
        case .messageWaitingRoom(let text): return .messageWaitingRoom(text)
        case .mute(let member, let audio, let video): return .mute(ParticipantID(member), audio: audio, video: video)
        case .muteAll(let video): return .muteAll(video: video)
        case .askUnmute(let member, let audio, let video):
            return .askUnmute(ParticipantID(member), audio: audio, video: video)
        case .remove(let member, let ban, let reason): return .remove(ParticipantID(member), ban: ban, reason: reason)
        case .setRole(let member, let role): return .setRole(ParticipantID(member), try raw(role))
        case .grant(let member, let media, let chat): return .grant(ParticipantID(member), media: media, chat: chat)
        case .spotlight(let member): return .spotlight(member.map(ParticipantID.init))
        case .lowerAllHands: return .lowerAllHands
        case .deleteChat(let message): return .deleteChat(MessageID(message))
        case .setLocked(let locked): return .setLocked(locked)
        case .updateSettings(let change): return .updateSettings(try change.value())
        case .acknowledgeHelp(let member): return .acknowledgeHelp(ParticipantID(member))
        case .end: return .end
        case .planBreakouts(let breakouts, let automatic):
            return .planBreakouts(breakouts.map(\.value), automatic: automatic)
        case .openBreakouts(let duration, let warning):
            return .openBreakouts(durationSeconds: duration, warningSeconds: warning)
        case .closeBreakouts: return .closeBreakouts
        case .closeBreakout(let id): return .closeBreakout(BreakoutID(id))
        case .moveToBreakout(let member, let id):
            return .moveToBreakout(ParticipantID(member), id.map(BreakoutID.init))
        case .visitBreakout(let id): return .visitBreakout(id.map(BreakoutID.init))
        case .broadcastToBreakouts(let text): return .broadcastToBreakouts(text)
        case .pullAside(let member): return .pullAside(ParticipantID(member))
        }
    }
}

/// A raw-value enum from its stored string, or a journal error.
private func raw<T: RawRepresentable>(_ value: String) throws -> T where T.RawValue == String {
    guard let v = T(rawValue: value) else {
        throw StoreError.corruptJournal(seq: nil, reason: "unknown \(T.self) \"\(value)\"")
    }
    return v
}
