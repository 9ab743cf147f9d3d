import Foundation
// Engine throughput: commands/s and delivered events/s for chat in a room of 12; then the wire
// encoding of the messages the engine produced (HearthWire's WireEncoder), the decoding of a chat
// command, and the verification of a join token (HearthAuth's TokenVerifier).
// Run: swift run -c release hearth-engine-bench [commands]
import HearthAuth
import HearthCore
import HearthWire

let commands = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 1_000_000

func now(_ i: Int) -> Instant { Instant(milliseconds: 1_000_000 + Int64(i / 1000)) }

/// One room: a facilitator and 11 members, everyone admitted.
func makeRoom() -> (Room, [ConnectionID]) {
    var room = Room(id: RoomID("bench"), at: now(0))
    var connections: [ConnectionID] = []
    for i in 0..<12 {
        let c = ConnectionID(UInt64(i + 1))
        let role: Role = i == 0 ? .facilitator : .participant
        let identity = Identity(userID: UserID("u\(i)"), role: role, alias: "member \(i)")
        _ = room.connect(
            c, identity: identity, credential: ResumeCredential(secret: "s\(i)", hash: "h\(i)"), at: now(0))
        if i > 0 { _ = room.handle(.admit(ParticipantID(UInt32(i + 1))), from: connections[0], at: now(0)) }
        connections.append(c)
    }
    return (room, connections)
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

/// Times `rounds` calls of `body` and prints how many succeeded and the time per call.
func measureCalls(_ label: String, rounds: Int, unit: String, _ body: () -> Bool) {
    let clock = ContinuousClock()
    var succeeded = 0
    let seconds = seconds(
        clock.measure {
            for _ in 0..<rounds where body() { succeeded += 1 }
        })
    print(
        "\(label): \(succeeded) of \(rounds) in \(String(format: "%.3f", seconds)) s = \(String(format: "%.2f", seconds / Double(rounds) * 1e6)) µs/\(unit)"
    )
}

func measure(_ label: String, _ body: () -> (commands: Int, deliveries: Int)) {
    let clock = ContinuousClock()
    var result = (commands: 0, deliveries: 0)
    let seconds = seconds(clock.measure { result = body() })
    let perSecond = Double(result.commands) / seconds
    let deliveredPerSecond = Double(result.deliveries) / seconds
    let secondsText = String(format: "%.3f", seconds)
    let microseconds = String(format: "%.2f", seconds / Double(result.commands) * 1e6)
    print("\(label): \(result.commands) commands in \(secondsText) s", terminator: " = ")
    print("\(Int(perSecond)) commands/s, \(Int(deliveredPerSecond)) delivered events/s, \(microseconds) µs/command")
}

func deliveries(_ effects: [Effect]) -> Int {
    effects.reduce(0) { n, effect in
        if case .send(_, let to) = effect { return n + to.count }
        return n
    }
}

measure("chat, room of 12") {
    var (room, connections) = makeRoom()
    var delivered = 0
    for i in 0..<commands {
        let effects = room.handle(
            .chat(to: .room, text: "hello everyone, this is a message"), from: connections[i % 12], at: now(i))
        delivered += deliveries(effects)
    }
    return (commands, delivered)
}

measure("chat with rid (ack), room of 12") {
    var (room, connections) = makeRoom()
    var delivered = 0
    for i in 0..<commands {
        let effects = room.handle(
            .chat(to: .room, text: "hello everyone"), from: connections[i % 12], rid: "r", at: now(i))
        delivered += deliveries(effects)
    }
    return (commands, delivered)
}

measure("signal relay, room of 12") {
    var (room, connections) = makeRoom()
    var delivered = 0
    for i in 0..<commands {
        let to = ParticipantID(UInt32((i + 1) % 12 + 1))
        let effects = room.handle(
            .signal(to: to, kind: .ice, payload: #"{"candidate":"x"}"#), from: connections[i % 12], at: now(i))
        delivered += deliveries(effects)
    }
    return (commands, delivered)
}

measure("hand up/down, 1,000 rooms of 12 through Engine") {
    var engine = Engine()
    var connections: [ConnectionID] = []
    for r in 0..<1000 {
        for i in 0..<12 {
            let c = ConnectionID(UInt64(r * 100 + i))
            let identity = Identity(userID: UserID("u\(i)"), role: i == 0 ? .facilitator : .participant, alias: "m")
            _ = engine.apply(
                .connect(
                    c, room: RoomID("room-\(r)"), identity: identity,
                    credential: ResumeCredential(secret: "s", hash: "h\(r)-\(i)"), settings: nil, rid: nil),
                at: now(0))
            if i > 0 {
                let admit = ClientCommand.admit(ParticipantID(UInt32(i + 1)))
                _ = engine.apply(.command(admit, from: ConnectionID(UInt64(r * 100)), rid: nil), at: now(0))
            }
            connections.append(c)
        }
    }
    var delivered = 0
    for i in 0..<commands {
        let c = connections[((i / 2) * 7919) % connections.count]
        let effects = engine.apply(.command(i % 2 == 0 ? .raiseHand : .lowerHand(nil), from: c, rid: nil), at: now(i))
        delivered += deliveries(effects)
    }
    return (commands, delivered)
}

/// The messages one command made, in order.
func messages(_ effects: [Effect]) -> [Message] {
    effects.compactMap { effect -> Message? in
        if case .send(let message, _) = effect { return message }
        return nil
    }
}

func measureEncoding(_ label: String, _ message: Message) {
    let encoded = WireEncoder.encode(message)
    let size = encoded.count
    // Every server message starts {"type":"…"
    let type = String(decoding: encoded.dropFirst(9).prefix { $0 != UInt8(ascii: "\"") }, as: UTF8.self)
    let clock = ContinuousClock()
    var bytes = 0
    let seconds = seconds(
        clock.measure {
            for _ in 0..<commands { bytes &+= WireEncoder.encode(message).count }
        })
    let microseconds = String(format: "%.2f", seconds / Double(commands) * 1e6)
    let megabytes = String(format: "%.1f", Double(bytes) / seconds / 1e6)
    print(
        "encode \(label) (`\(type)`), \(size) bytes: \(commands) times in \(String(format: "%.3f", seconds)) s = \(microseconds) µs/message, \(megabytes) MB/s"
    )
}

do {
    var (room, connections) = makeRoom()
    let chat = messages(
        room.handle(.chat(to: .room, text: "hello everyone, this is a message"), from: connections[1], at: now(1)))
    measureEncoding("a room chat", chat[0])
    // The 12th member connects again: its `welcome` carries a snapshot of the whole room.
    let snapshot = messages(
        room.connect(
            ConnectionID(99), identity: Identity(userID: UserID("u11"), role: .participant, alias: "member 11"),
            credential: ResumeCredential(secret: "s11", hash: "h11"), at: now(2)))
    if let largest = snapshot.max(by: { WireEncoder.encode($0).count < WireEncoder.encode($1).count }) {
        measureEncoding("the largest message of a rejoin to a room of 12", largest)
    }
}

do {
    let frame = Array(#"{"type":"chat","to":"room","text":"hello everyone, this is a message","rid":"r12"}"#.utf8)
    measureCalls("decode a chat command, \(frame.count) bytes", rounds: commands, unit: "message") {
        if case .success = WireDecoder.decode(frame) { return true }
        return false
    }
}

do {
    // A join token as the load tests mint them: HS256, the room's settings among its claims.
    let secret = "engine-bench-secret-at-least-32-bytes-long"
    let issuedAt = Date()
    let claims = JoinClaims(
        sub: "bench-7-u3", room: "bench-7", role: "participant", name: "s3", exp: issuedAt + 590,
        iat: issuedAt - 5, capacity: 12, waitingRoom: true, consentVersion: "v1")
    guard let minter = try? TokenMinter(secret: secret), let key = try? TokenKey.hs256(secret: secret) else {
        fatalError("the bench's token secret cannot sign HS256 tokens")
    }
    let token = minter.mint(claims: claims)
    let verifier = TokenVerifier(keys: [key])
    measureCalls("verify a join token, \(token.utf8.count) bytes", rounds: max(1, commands / 10), unit: "token") {
        if case .success = verifier.verify(token, now: issuedAt, expectedRoom: "bench-7") { return true }
        return false
    }
}
