import Foundation
import HearthCore
import HearthStore

// The embedded store's writer, alone: the rows a join writes (4 journal entries, 3 audit rows,
// 3 attendance rows, as hearthd's peers scenario writes for each member) and chat journal
// entries (6 to a transaction, from 6 rooms: what the 4 ms commit window gathers at 15k
// deliveries/s in groups of 10). Each round enqueues one transaction's worth and waits for its
// commit, so every transaction holds the same rows. Prints the process's CPU (both threads)
// per join and per chat entry, and the share of it on the writer thread (read from /proc in
// clock ticks of 10 ms: with few rounds it can exceed the total, which getrusage gives in µs).
// With a second argument, that many chats (from as many rooms, up to 300) to a transaction
// instead of 6: the writer's cost per transaction and per chat can be told apart.
// Run: swift run -c release hearth-store-bench [rounds] [chats per transaction]

/// The positive whole number given as argument `index`, `fallback` when there is none; exits
/// with the usage line on anything else.
func argument(_ index: Int, _ fallback: Int) -> Int {
    guard CommandLine.arguments.count > index else { return fallback }
    guard let value = Int(CommandLine.arguments[index]), value > 0 else {
        FileHandle.standardError.write(Data("usage: hearth-store-bench [rounds] [chats per transaction]\n".utf8))
        exit(64)
    }
    return value
}
let rounds = argument(1, 2_000)
let chatsPerTransaction = argument(2, 6)

let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hearth-store-bench-\(getpid())").path
try? FileManager.default.removeItem(atPath: directory)
defer { try? FileManager.default.removeItem(atPath: directory) }
let store = try Store(directory: directory)
// One transaction first: the writer thread has named itself (`writerSeconds` finds it by name),
// and the statements are compiled, before anything is measured.
_ = store.append(
    .disconnected(connection: ConnectionID(1), room: RoomID("bench-warm-up"), at: Instant(milliseconds: 1)))
store.flush()

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return s(usage.ru_utime) + s(usage.ru_stime)
}

/// The CPU seconds of the store's writer thread (`store-writer`) so far.
func writerSeconds() -> Double {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    for task in tasks {
        guard let name = try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8),
            name.hasPrefix("store-writer"),
            let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { continue }
        // Fields after the name: state is the 3rd field of the line, utime and stime the 14th and 15th.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { continue }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
    fatalError("no thread named store-writer in /proc/self/task")
}

/// Runs `rounds` transactions of `body`'s rows and prints the CPU and wall time per `unit`.
func measure(_ label: String, units: Int, unit: String, _ body: (Int) -> Void) {
    let wall = ContinuousClock.now
    let cpu = cpuSeconds()
    let writer = writerSeconds()
    for round in 0..<rounds {
        body(round)
        store.flush()
    }
    let cpuPer = (cpuSeconds() - cpu) / Double(rounds * units) * 1e6
    let writerPer = (writerSeconds() - writer) / Double(rounds * units) * 1e6
    let elapsed = ContinuousClock.now - wall
    let wallSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    print(
        "\(label): \(rounds) transactions of \(units) \(unit)s, \(String(format: "%.1f", cpuPer)) µs of CPU per \(unit), \(String(format: "%.1f", writerPer)) of them on the writer thread (\(String(format: "%.2f", wallSeconds)) s)"
    )
}

let settings = RoomSettings()
/// The rows one member's join writes: what the peers scenario's store holds per member.
func join(round: Int) {
    let room = RoomID("bench-\(round % 300)")
    let at = Instant(milliseconds: 1_796_000_000_000 + Int64(round))
    let connection = ConnectionID(UInt64(round + 2))
    let user = UserID("bench-\(round % 300)-u\(round % 10)")
    let member = Party(userID: user, id: ParticipantID(UInt32(round % 10 + 2)), role: .participant)
    let facilitator = Party(userID: UserID("bench-\(round % 300)-u0"), id: ParticipantID(1), role: .facilitator)
    let identity = Identity(userID: user, role: .participant, alias: "s\(round % 10)")
    _ = store.append(
        .connect(
            .init(
                connection: connection, room: room, identity: identity,
                resumeHash: String(repeating: "6b", count: 32), settings: settings, at: at)))
    for command in [ClientCommand.acknowledgeConsent(version: "lg-1"), .setMedia(audio: true, video: nil)] {
        if let entry = JournalEntry.command(command, from: connection, room: room, at: at) { _ = store.append(entry) }
    }
    if let entry = JournalEntry.command(.admit(member.id), from: ConnectionID(1), room: room, at: at) {
        _ = store.append(entry)
    }
    for action in ["arrive", "consent", "admit"] {
        _ = store.append(
            AuditRecord(
                at: at, room: room, actor: action == "admit" ? facilitator : member, subject: member, action: action))
    }
    for kind in [AttendanceRecord.Kind.enterWaiting, .exitWaiting, .enterRoom] {
        _ = store.append(AttendanceRecord(at: at, room: room, member: member, kind: kind))
    }
}

let text = String(repeating: "x", count: 120)

/// `chatsPerTransaction` chat messages, each in its own room (of 300).
func chats(round: Int) {
    for i in 0..<chatsPerTransaction {
        let room = RoomID("bench-\((round * chatsPerTransaction + i) % 300)")
        let at = Instant(milliseconds: 1_796_000_000_000 + Int64(round))
        if let entry = JournalEntry.command(
            .chat(to: .room, text: text), from: ConnectionID(UInt64(i + 1)), room: room, at: at)
        {
            _ = store.append(entry)
        }
    }
}

measure("joins", units: 1, unit: "join") { join(round: $0) }
measure("chats", units: chatsPerTransaction, unit: "chat") { chats(round: $0) }
store.close()
