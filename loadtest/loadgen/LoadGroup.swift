/// One group (room) played by a worker: a facilitator in slot 0 and members in slots 1...
final class LoadGroup {
    let local: Int
    let room: String
    /// The WebSocket's path: `/v1/rooms/<room>`, or `/relay/<room>` against a peer relay.
    let path: String
    var slots: [Int] = []  // worker connection index per slot
    var slotByMember: [String: Int] = [:]
    var admitRequested: Set<String> = []
    var negotiatedConnections = 0
    var ready = false
    var startIntended: UInt64 = 0
    /// Members that read normally (slow consumers excluded): chat recipients per message.
    var recipients = 0
    var controlsSent = 0
    var lastControlIntended: UInt64 = 0
    var spotlightOn = false
    var muteIntended: UInt64 = 0
    var muteRecipientsDone = 0
    var muteComplete = false
    var removeIntended: UInt64 = 0
    var removedSlot = -1
    var removeRecipientsDone = 0
    var removeComplete = false
    /// Breakouts: the round in progress (0: none yet, 1: open, 2: closed, back in the main room),
    /// the staff view's assignment (member id -> breakout number), how many finished the
    /// round's renegotiation, the breakout chat owed and received, and the intended times.
    var boRound = 0
    var assignment: [String: UInt32] = [:]
    var boDone = 0
    var bchatExpected = 0
    var bchatReceived = 0
    var renegotiated = false
    var closeSent = false
    var finished = false
    var openIntended: UInt64 = 0
    var closeIntended: UInt64 = 0
    /// Reconnect storm: every member of this group drops and resumes (false: an unaffected room).
    var stormed = false

    init(local: Int, room: String, path: String) {
        self.local = local
        self.room = room
        self.path = path
    }
}
