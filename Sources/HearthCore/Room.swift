/// One group session: the heart of Hearth.
///
/// `Room` is a value type with no I/O, no clock and no threads. Each input is a
/// `mutating` method that takes the time it happened and returns the effects the shell
/// must carry out, in order (send, close, audit, attendance, timers). The same inputs
/// always give the same state and effects, which is what makes it testable alone.
public struct Room: Sendable {
    /// Where the room is in its session's life. It only moves forward.
    public enum Phase: Hashable, Sendable {
        /// Created ahead of its session: members may wait, nobody is admitted before `settings.opensAt`.
        case scheduled
        case open
        /// Ended at that time: nothing more is accepted.
        case ended(Instant)
    }

    struct Logged: Sendable {
        var seq: UInt64
        var audience: [ParticipantID]
        var message: Message
    }

    struct StoredChat: Sendable {
        var message: ChatMessage
        var audience: [ParticipantID]
    }

    public let id: RoomID
    public let createdAt: Instant
    public internal(set) var settings: RoomSettings
    public internal(set) var phase: Phase
    public internal(set) var locked = false
    public internal(set) var spotlight: ParticipantID?
    public internal(set) var seats: [ParticipantID: Seat] = [:]
    public internal(set) var banned: Set<UserID> = []
    /// The last sequence number given to a logged event.
    public internal(set) var seq: UInt64 = 0
    /// Open "I need help" signals, by member.
    public internal(set) var help: [ParticipantID: Instant] = [:]
    var seatOfUser: [UserID: ParticipantID] = [:]
    var seatOfConnection: [ConnectionID: ParticipantID] = [:]
    var seatOfResumeHash: [String: ParticipantID] = [:]
    /// What staff decided about users whose seat has gone, kept for the session: a new seat
    /// for the same user starts from it.
    var sanctions: [UserID: Sanctions] = [:]
    /// The plan, the open breakouts and their time limit. Which member is where: `Seat.breakout`.
    public internal(set) var breakouts = Breakouts()
    /// When the idle timer is due, while the room has no seat.
    public internal(set) var idleDeadline: Instant?
    var nextSeat: UInt32 = 1
    var nextMessage: UInt64 = 1
    /// Recent logged events, oldest first, for replay to resuming members.
    var log: [Logged] = []
    var chatLog: [StoredChat] = []
    /// Whether staff were present after the last input, to notice a change.
    var staffWasPresent = false
    /// Whether media goes through the SFU: from the start with `media: sfu`; with `auto` from
    /// the first input after which more than `meshLimit` members are admitted, for good.
    public internal(set) var usesSFU = false

    public init(id: RoomID, settings: RoomSettings = RoomSettings(), at: Instant) {
        self.id = id
        self.settings = settings
        self.createdAt = at
        self.phase = (settings.opensAt.map { $0 <= at } ?? true) ? .open : .scheduled
        self.usesSFU = settings.media == .sfu
    }

    /// The timers a room created ahead of its session needs: its opening and its closing.
    public var windowTimers: [Effect] {
        var fx: [Effect] = []
        if isScheduled, let opensAt = settings.opensAt {
            fx.append(.schedule(TimerID(room: id, kind: .opens), at: opensAt))
        }
        if let closesAt = settings.closesAt { fx.append(.schedule(TimerID(room: id, kind: .closes), at: closesAt)) }
        return fx
    }

    /// The clinic's operator ends the session (through the operations API): as `end`, with
    /// no member as the actor.
    public mutating func endByOperator(at: Instant) -> [Effect] {
        var fx: [Effect] = []
        guard !isEnded else { return fx }
        endSession(by: nil, at: at, into: &fx)
        return fx
    }

    public var isEnded: Bool {
        if case .ended = phase { return true }
        return false
    }

    /// Whether the session has opened and not ended: members may be admitted.
    public var isOpen: Bool { phase == .open }

    /// Whether the room waits for `settings.opensAt`.
    public var isScheduled: Bool { phase == .scheduled }

    public func seat(of connection: ConnectionID) -> Seat? {
        seatOfConnection[connection].flatMap { seats[$0] }
    }

    /// Whether a resume secret (by its hash) names a seat here.
    public func hasSeat(resumeHash: String) -> Bool { seatOfResumeHash[resumeHash] != nil }

    public func seat(ofUser user: UserID) -> Seat? {
        seatOfUser[user].flatMap { seats[$0] }
    }

    /// Staff count as present only while connected and in the room.
    public var staffPresent: Bool {
        seats.values.contains { $0.isStaff && $0.placement == .room && $0.isConnected }
    }

    /// Non-staff members admitted (connected or held): what capacity counts.
    public var admittedMemberCount: Int {
        seats.values.reduce(0) { $0 + ($1.placement == .room && !$1.isStaff ? 1 : 0) }
    }

    var waitingCount: Int { seats.values.reduce(0) { $0 + ($1.placement == .waiting ? 1 : 0) } }

    /// Seats in a stable order (by participant id).
    func ordered(_ placement: Placement) -> [Seat] {
        seats.values.filter { $0.placement == placement }.sorted { $0.id < $1.id }
    }

    /// The room's shared state as `viewer` sees it: the spotlight only when the spotlit member
    /// is in the viewer's roster (breakouts: an id from another room says nothing to them).
    func roomState(for viewer: Seat) -> RoomStateView {
        var state = roomState
        if let spotlight, let spotlit = seats[spotlight], !sees(viewer, spotlit) { state.spotlight = nil }
        return state
    }

    /// Tells every admitted member the room's state (each as they see it).
    mutating func publishRoomState(into fx: inout [Effect]) {
        let seeing = spotlight.flatMap { seats[$0] }.map { spotlit in viewers(of: spotlit) } ?? roomAudience
        publish(.roomUpdated(roomState), to: seeing, into: &fx)
        if seeing.count != roomAudience.count {
            var hidden = roomState
            hidden.spotlight = nil
            publish(.roomUpdated(hidden), to: roomAudience.filter { !seeing.contains($0) }, into: &fx)
        }
    }

    var roomState: RoomStateView {
        RoomStateView(
            locked: locked, staffPresent: staffPresent, spotlight: spotlight,
            chatPolicy: settings.chatPolicy, privateMessages: settings.privateMessages,
            selfUnmute: settings.selfUnmute, waitingRoom: settings.waitingRoom,
            capacity: settings.capacity, media: usesSFU ? .sfu : .mesh)
    }

    func waitingView(_ seat: Seat) -> WaitingView {
        WaitingView(
            id: seat.id, alias: seat.alias, role: seat.role, userID: seat.userID,
            since: seat.waitingSince ?? createdAt, consentVersion: seat.consentVersion,
            location: seat.location, connected: seat.isConnected, ready: meetsRequirements(seat) == nil)
    }

    func waitingStatus(_ seat: Seat) -> WaitingStatus {
        let reason: WaitingReason =
            isScheduled
            ? .waitingForOpening
            : seat.sentBack ? .sentBack : (staffPresent ? .waitingForAdmission : .waitingForFacilitator)
        return WaitingStatus(
            reason: reason, consentVersion: settings.consentVersion, consentText: settings.consentText,
            opensAt: isScheduled ? settings.opensAt : nil,
            consentAcknowledged: settings.consentVersion == nil || seat.consentVersion == settings.consentVersion,
            locationRequired: settings.requireLocation, locationGiven: seat.location != nil)
    }

    /// The error that stops this waiting member's admission, or nil.
    func meetsRequirements(_ seat: Seat) -> ErrorCode? {
        if let required = settings.consentVersion, seat.consentVersion != required { return .consentRequired }
        if settings.requireLocation && seat.location == nil { return .locationRequired }
        return nil
    }

    func snapshot(for seat: Seat) -> RoomSnapshot {
        let staff = seat.isStaff
        let members = ordered(.room).filter { sees(seat, $0) }.map { $0.memberView(forStaff: staff) }
        let chat = chatLog.suffix(settings.chatHistory).filter { $0.audience.contains(seat.id) }.map(\.message)
        let anyBreakouts = !breakouts.plan.isEmpty || !breakouts.open.isEmpty
        return RoomSnapshot(
            you: seat.memberView(forStaff: true), room: roomState(for: seat), members: members, chat: chat,
            waiting: staff ? ordered(.waiting).map(waitingView) : nil,
            help: staff ? help.map { HelpRequest(id: $0.key, at: $0.value) }.sorted { $0.id < $1.id } : nil,
            breakout: breakoutRef(seat.breakout), breakouts: staff && anyBreakouts ? breakoutsView : nil)
    }

    // MARK: Breakouts: who sees whom

    /// Whether `viewer` has `seat` in its roster: staff see every admitted member, everyone
    /// else only those in the same breakout (or, both, in the main room).
    func sees(_ viewer: Seat, _ seat: Seat) -> Bool {
        viewer.isStaff || viewer.breakout == seat.breakout
    }

    /// The admitted seats that have `seat` in their roster (itself included): the members of
    /// its breakout (or of the main room) and every staff member.
    func viewers(of seat: Seat) -> [ParticipantID] {
        ids(.room) { $0.isStaff || $0.breakout == seat.breakout }
    }

    /// Everyone admitted in one breakout (nil: the main room), staff visiting it included.
    func spaceAudience(_ breakout: BreakoutID?) -> [ParticipantID] {
        ids(.room) { $0.breakout == breakout }
    }

    /// Where a member in `breakout` is, as told to them (nil for the main room).
    func breakoutRef(_ breakout: BreakoutID?) -> BreakoutRef? {
        guard let breakout, let open = breakouts.breakout(breakout) else { return nil }
        return BreakoutRef(
            id: open.id, name: open.name, kind: open.kind, endsAt: open.kind == .planned ? breakouts.endsAt : nil)
    }

    /// The breakouts as staff see them.
    var breakoutsView: BreakoutsView {
        BreakoutsView(
            plan: breakouts.plan.map { BreakoutView(id: $0.id, name: $0.name, kind: .planned, members: $0.members) },
            open: breakouts.open.map {
                BreakoutView(id: $0.id, name: $0.name, kind: $0.kind, members: spaceAudience($0.id))
            },
            endsAt: breakouts.endsAt)
    }

    // MARK: Audiences

    var roomAudience: [ParticipantID] { ids(.room) { _ in true } }
    var staffAudience: [ParticipantID] { ids(.room) { $0.isStaff } }
    var memberAudience: [ParticipantID] { ids(.room) { !$0.isStaff } }
    var waitingAudience: [ParticipantID] { ids(.waiting) { _ in true } }

    /// The ids of the seats in `placement` that pass `include`, in id order. Every event's
    /// audience comes from here, so it reads the seats in place (no `Seat` copies, which
    /// `ordered` makes): perf showed the copies and the sort of whole seats under chat load.
    func ids(_ placement: Placement, _ include: (Seat) -> Bool) -> [ParticipantID] {
        var out: [ParticipantID] = []
        out.reserveCapacity(seats.count)
        let values = seats.values
        var i = values.startIndex
        while i != values.endIndex {
            if values[i].placement == placement && include(values[i]) { out.append(values[i].id) }
            values.formIndex(after: &i)
        }
        out.sort()
        return out
    }

    // MARK: Emitting

    /// Logs an event under a new sequence number and sends it to the audience's connected seats.
    mutating func publish(_ event: ServerEvent, to audience: [ParticipantID], into fx: inout [Effect]) {
        guard !audience.isEmpty else { return }
        seq += 1
        let message = Message(seq: seq, event: event)
        log.append(Logged(seq: seq, audience: audience, message: message))
        // Trimmed in batches of a quarter window: O(1) per event, bounded memory.
        if log.count > settings.replayWindow + settings.replayWindow / 4 {
            log.removeFirst(log.count - settings.replayWindow)
        }
        let connections = audience.compactMap { seatField($0) { $0.connection } ?? nil }
        if !connections.isEmpty { fx.append(.send(message, to: connections)) }
    }

    /// One field of a seat, read in place. `seats[id]?.field` copies the whole `Seat` (a
    /// retain and a release of each of its references) to read one field; in `publish`, once
    /// per recipient of every event, that was about 1% of the server's CPU under chat load.
    @inline(__always)
    func seatField<T>(_ id: ParticipantID, _ field: (borrowing Seat) -> T) -> T? {
        guard let index = seats.index(forKey: id) else { return nil }
        return field(seats.values[index])
    }

    /// Publishes the staff view to staff and the member view to everyone else in `audience`.
    mutating func publishMember(
        _ seat: Seat, audience: [ParticipantID], into fx: inout [Effect],
        _ make: (MemberView) -> ServerEvent
    ) {
        let staff = audience.filter { seatField($0) { $0.isStaff } == true }
        let others = audience.filter { seatField($0) { $0.isStaff } != true }
        publish(make(seat.memberView(forStaff: true)), to: staff, into: &fx)
        publish(make(seat.memberView(forStaff: false)), to: others, into: &fx)
    }

    /// Tells the room that a member's visible state changed.
    mutating func memberChanged(_ id: ParticipantID, into fx: inout [Effect]) {
        guard let seat = seats[id] else { return }
        switch seat.placement {
        case .room: publishMember(seat, audience: viewers(of: seat), into: &fx) { .memberUpdated($0) }
        case .waiting: publish(.waitingUpdated(waitingView(seat)), to: staffAudience, into: &fx)
        }
    }

    /// A direct reply: not logged, no sequence number.
    func reply(_ event: ServerEvent, to connection: ConnectionID, rid: String?, into fx: inout [Effect]) {
        fx.append(.send(Message(rid: rid, event: event), to: [connection]))
    }

    func audit(
        _ action: String, at: Instant, actor: Seat?, subject: Seat?, outcome: AuditRecord.Outcome = .done,
        reason: String? = nil, into fx: inout [Effect]
    ) {
        fx.append(
            .audit(
                AuditRecord(
                    at: at, room: id, actor: actor?.party, subject: subject?.party, action: action,
                    outcome: outcome, reason: reason)))
    }

    func attendance(_ kind: AttendanceRecord.Kind, _ seat: Seat, at: Instant, into fx: inout [Effect]) {
        fx.append(.attendance(AttendanceRecord(at: at, room: id, member: seat.party, kind: kind)))
    }

    /// A seat's entry into, or exit from, a breakout (it is still in the room).
    func attendance(
        _ kind: AttendanceRecord.Kind, _ seat: Seat, breakout: BreakoutID, at: Instant, into fx: inout [Effect]
    ) {
        fx.append(
            .attendance(
                AttendanceRecord(
                    at: at, room: id, member: seat.party, kind: kind, breakout: breakout,
                    breakoutName: breakouts.breakout(breakout)?.name)))
    }

    func graceTimer(_ id: ParticipantID) -> TimerID { TimerID(room: self.id, kind: .grace(id)) }
    var idleTimer: TimerID { TimerID(room: id, kind: .idle) }
}
