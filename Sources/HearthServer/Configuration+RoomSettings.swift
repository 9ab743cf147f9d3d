import HearthAuth
import HearthCore

// Configuration → room settings: what a room gets when nothing else sets it, and what a join
// token may set when its arrival creates the room.
//
// A new room setting goes into `RoomSettings` (HearthCore), then, if the configuration sets it:
// `RoomDefaults` (property and `fields` entry), its check in `validate()` when it has limits,
// the mapping below, and the README's configuration table.
extension HearthConfiguration {
    /// The settings of a room that neither a join token nor the operations API configured.
    public var roomSettings: RoomSettings {
        var s = RoomSettings()
        s.capacity = rooms.capacity
        s.waitingRoom = rooms.waitingRoom
        s.consentVersion = rooms.consentVersion
        s.requireLocation = rooms.requireLocation
        s.chatPolicy = rooms.chatPolicy
        s.privateMessages = rooms.privateMessages
        s.selfUnmute = rooms.selfUnmute
        s.graceMilliseconds = Int64(rooms.graceSeconds) * 1000
        s.facilitatorDrop = rooms.facilitatorDrop
        s.idleCloseMilliseconds = Int64(rooms.idleCloseSeconds) * 1000
        s.media = sfu.isEnabled ? rooms.media : .mesh
        s.meshLimit = rooms.meshLimit
        s.replayWindow = rooms.replayWindow
        s.maxChatLength = limits.maxChatLength
        s.maxSignalBytes = limits.maxSignalBytes
        s.maxWaiting = limits.maxWaiting
        return s
    }

    /// `defaults` with what a join token sets (applied only when its arrival creates the room).
    /// The token verifier has already refused claims outside their ranges.
    public static func roomSettings(_ defaults: RoomSettings, applying claims: JoinClaims) -> RoomSettings {
        var s = defaults
        if let v = claims.capacity { s.capacity = v }
        if let v = claims.waitingRoom { s.waitingRoom = v }
        if let v = claims.consentVersion { s.consentVersion = v }
        if let v = claims.requireLocation { s.requireLocation = v }
        if let v = claims.chatPolicy.flatMap(ChatPolicy.init(rawValue:)) { s.chatPolicy = v }
        if let v = claims.privateMessages { s.privateMessages = v }
        if let v = claims.selfUnmute { s.selfUnmute = v }
        return s
    }
}
