/// The SFU mode (docs/protocol.md §11): which members the media server carries, and how.
///
/// The engine never talks to the media server. It keeps the room's rules (admission, roles,
/// grants, mutes, breakouts) and derives from them, after every input, what the SFU must do
/// for each member: `sfuPlan`. The shell's broker makes the media server match it.
public struct SFUSeat: Hashable, Sendable {
    /// The member's live connection (a held seat has no plan: its media stops until it resumes).
    public var connection: ConnectionID
    /// Which room's media the member is in: nil the main room, else their breakout's.
    public var space: BreakoutID?
    /// Whether the member may send media at all (an observer needs a grant).
    public var publish: Bool
    /// Whether the others receive the member's audio and video: the roster's `audio`/`video`,
    /// so a staff mute holds in the media path even for a client that ignores it.
    public var audio: Bool
    public var video: Bool

    public init(connection: ConnectionID, space: BreakoutID?, publish: Bool, audio: Bool, video: Bool) {
        self.connection = connection
        self.space = space
        self.publish = publish
        self.audio = audio
        self.video = video
    }
}

extension Room {
    /// What the SFU must do for each admitted, connected member. Empty while the room uses the
    /// mesh, and once it ended. Waiting members are never in it.
    public var sfuPlan: [ParticipantID: SFUSeat] {
        guard usesSFU, !isEnded else { return [:] }
        var plan: [ParticipantID: SFUSeat] = [:]
        for seat in seats.values where seat.placement == .room {
            guard let connection = seat.connection else { continue }
            let publish = seat.may(.publishMedia)
            plan[seat.id] = SFUSeat(
                connection: connection, space: seat.breakout, publish: publish, audio: publish && seat.audio,
                video: publish && seat.video)
        }
        return plan
    }

    /// Admitted members, staff included: what `meshLimit` counts.
    var admittedCount: Int { seats.values.lazy.filter { $0.placement == .room }.count }

    /// `media: auto`: once more than `meshLimit` members are admitted, the room moves to the
    /// SFU for the rest of its session, and every admitted member is told (`room-state`).
    mutating func settleMediaMode(into fx: inout [Effect]) {
        guard settings.media == .auto, !usesSFU, !isEnded, admittedCount > settings.meshLimit else { return }
        usesSFU = true
        publishRoomState(into: &fx)
    }
}
