import Foundation
import HearthCore
import HearthWire
import XCTest

/// docs/protocol.md and docs/protocol.schema.json against the code they describe.
final class ProtocolDocTests: XCTestCase {
    /// docs/protocol.md prints the engine's permission table exactly. The table itself is pinned
    /// by hand once, in `PermissionTests.pinnedTable`, which holds `Permissions.rule` to it: a
    /// change to the rule and to the document together still fails there.
    func testPermissionTableIsTheEngines() throws {
        let doc = try Repo.text(Repo.protocolDoc)
        let table = Permissions.markdownTable()
        XCTAssertTrue(
            doc.contains("\n" + table + "\n"), "docs/protocol.md must contain the engine's permission table:\n" + table)
    }

    /// TURN usernames in the examples are what RoomHost.iceServers makes: expiry, then the
    /// connection ("c" and its number), never a user id (docs/security.md promises it).
    func testTURNUsernamesInTheExamplesNameTheConnectionNotTheUser() throws {
        let doc = try Repo.text(Repo.protocolDoc)
        let usernames = doc.components(separatedBy: #""username":""#).dropFirst().map {
            String($0.prefix { $0 != "\"" })
        }
        XCTAssertFalse(usernames.isEmpty)
        for username in usernames {
            let parts = username.split(separator: ":", omittingEmptySubsequences: false)
            XCTAssertEqual(parts.count, 2, username)
            XCTAssertNotNil(Int(parts[0]), "expiry: \(username)")
            XCTAssertTrue(parts[1].hasPrefix("c") && UInt64(parts[1].dropFirst()) != nil, "c<connection>: \(username)")
        }
    }

    func testEveryMessageTypeIsDocumented() throws {
        let doc = try Repo.text(Repo.protocolDoc)
        let schema = try Schema.load()
        let serverTypes = Samples.eventTypes + ["pong"] + SFUSamples.server.map(\.type)
        XCTAssertEqual(serverTypes.count, Samples.caseCount + 1 + SFUSamples.serverCaseCount)
        let clientTypes =
            Samples.commandNames + ["hello", "refresh", "resume", "ping"] + Set(SFUSamples.client.map(\.type)).sorted()
        XCTAssertEqual(Set(Samples.commands.map { Samples.commandIndex($0.command) }).count, Samples.commandCaseCount)
        for (side, types) in [("server", serverTypes), ("client", clientTypes)] {
            for type in types {
                XCTAssertTrue(
                    doc.contains("### `\(type)`"), "docs/protocol.md has no heading for \(side) message \(type)")
                XCTAssertEqual(schema.typeConst(of: "\(side).\(type)"), type, "schema $defs has no \(side).\(type)")
                XCTAssertTrue(schema.oneOf(side).contains("#/$defs/\(side).\(type)"), "$defs.\(side) misses \(type)")
            }
            XCTAssertEqual(Set(schema.oneOf(side)).count, types.count, "$defs.\(side) lists messages not in the code")
        }
    }

    func testEveryErrorAndCloseCodeIsDocumented() throws {
        let doc = try Repo.text(Repo.protocolDoc)
        for code in ErrorCode.allCases {
            XCTAssertTrue(doc.contains("| `\(code.rawValue)` | \(code.message) |"), "error code \(code.rawValue)")
        }
        let schema = try Schema.load()
        XCTAssertEqual(schema.errorCodes, ErrorCode.allCases.map(\.rawValue))
    }

    /// §8's tables list exactly the codes of `CloseCode`, and the room's rows give each
    /// `CloseReason`'s reason text.
    func testCloseCodeTableIsTheCodes() throws {
        let doc = try Repo.text(Repo.protocolDoc)
        let start = try XCTUnwrap(doc.range(of: "\n## 8. Close codes\n"))
        let end = try XCTUnwrap(doc.range(of: "\n## 9.", range: start.upperBound..<doc.endIndex))
        let section = doc[start.upperBound..<end.lowerBound]
        var documented: [UInt16] = []
        for line in section.split(separator: "\n") where line.hasPrefix("| ") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            if let code = UInt16(cells[0]) { documented.append(code) }
        }
        XCTAssertEqual(documented.count, Set(documented).count, "a close code listed twice")
        XCTAssertEqual(documented.sorted(), CloseCode.allCases.map(\.rawValue).sorted(), "§8 and CloseCode")
        for reason in CloseReason.allCases {
            XCTAssertTrue(
                section.contains("| \(reason.closeCode.rawValue) | \(reason.rawValue) | "),
                "close code \(reason.closeCode.rawValue) with reason \(reason.rawValue)")
        }
    }

    func testDocumentedExamplesAreValid() throws {
        // Every JSON example line in the document is a message the schema accepts, and the
        // client ones decode. Examples are written one message per line, prefixed → or ←.
        let doc = try Repo.text(Repo.protocolDoc)
        var items: [SchemaValidator.Item] = []
        for line in doc.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("→ {") {
                let json = String(trimmed.dropFirst(2))
                items.append(.init(definition: .client, json: json, label: "doc client example"))
                if case .failure(let error) = WireDecoder.decode(json) { XCTFail("\(json) → \(error)") }
            } else if trimmed.hasPrefix("← {") {
                items.append(
                    .init(definition: .server, json: String(trimmed.dropFirst(2)), label: "doc server example"))
            }
        }
        XCTAssertGreaterThan(items.count, 60)
        try SchemaValidator.assert(items)
    }

    /// Section 10's examples are what the engine and the encoder produce: the sequences are
    /// replayed here (same members, times and requests) and every `←` line of the section must
    /// be one of the messages the room sent.
    func testBreakoutExamplesAreTheEnginesOutput() throws {
        let doc = try Repo.text(Repo.protocolDoc)
        let start = try XCTUnwrap(doc.range(of: "\n## 10. Breakouts\n"))
        let end = doc.range(of: "\n## 11. ", range: start.upperBound..<doc.endIndex)?.lowerBound ?? doc.endIndex
        let documented = doc[start.upperBound..<end].split(separator: "\n")
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.hasPrefix("← {") }.map { String($0.dropFirst(2)) }
        XCTAssertGreaterThan(documented.count, 30)

        var settings = RoomSettings()
        settings.consentVersion = "2024-06"
        settings.requireLocation = true
        var now = Instant(milliseconds: 1_732_871_000_000)
        var room = Room(id: RoomID("r-7f3a9c"), settings: settings, at: now)
        var sent: Set<String> = []
        var timers: [TimerID.Kind: Instant] = [:]
        func run(_ effects: [Effect]) {
            for effect in effects {
                switch effect {
                case .send(let message, _): sent.insert(String(decoding: WireEncoder.encode(message), as: UTF8.self))
                case .schedule(let timer, let at): timers[timer.kind] = at
                default: break
                }
            }
        }
        func send(_ c: UInt64, _ command: ClientCommand, rid: String? = nil) {
            run(room.handle(command, from: ConnectionID(c), rid: rid, at: now))
            now = now + 1000
        }
        let names = ["Dr. Kim", "Sam", "Alex", "Jo", "Robin"]
        for c in UInt64(1)...5 {
            let user = c == 1 ? "u-1001" : "u-200\(c)"
            run(
                room.connect(
                    ConnectionID(c),
                    identity: Identity(
                        userID: UserID(user), role: c == 1 ? .facilitator : .participant, alias: names[Int(c) - 1]),
                    credential: ResumeCredential(secret: "secret-\(user)", hash: "hash-\(user)"), rid: "h1", at: now))
            now = now + 1000
            if c > 1 {
                send(c, .acknowledgeConsent(version: "2024-06"))
                send(c, .setLocation("Home"))
            }
        }
        send(1, .admitAll, rid: "a1")
        // 10.5: practice in pairs.
        now = Instant(milliseconds: 1_732_872_000_000)
        send(
            1,
            .planBreakouts(
                [
                    BreakoutPlanEntry(name: "Pair 1", members: [ParticipantID(2), ParticipantID(3)]),
                    BreakoutPlanEntry(name: "Pair 2"),
                ], automatic: true), rid: "g1")
        now = Instant(milliseconds: 1_732_872_060_000)
        send(1, .openBreakouts(durationSeconds: 600, warningSeconds: 60), rid: "g2")
        send(2, .chat(to: .room, text: "Want to go first?"), rid: "k5")
        let offer = #"{"type":"offer","sdp":"v=0\r\n"}"#
        send(3, .signal(to: ParticipantID(4), kind: .offer, payload: offer), rid: "s9")
        send(1, .signal(to: ParticipantID(2), kind: .offer, payload: offer), rid: "s8")
        send(1, .visitBreakout(BreakoutID(1)), rid: "v1")
        send(1, .visitBreakout(nil), rid: "v2")
        send(1, .broadcastToBreakouts("Two minutes to go, then swap roles."), rid: "g3")
        send(4, .requestHelp, rid: "c9")
        for kind in [TimerID.Kind.breakoutsWarning, .breakoutsEnd] {
            now = try XCTUnwrap(timers[kind], "\(kind) scheduled")
            run(room.timerFired(kind, at: now))
        }
        // 10.6: a pull-aside.
        now = now + 60_000
        send(1, .pullAside(ParticipantID(4)), rid: "g4")
        send(1, .closeBreakout(BreakoutID(3)), rid: "g5")

        for line in documented {
            XCTAssertTrue(sent.contains(line), "section 10 shows a message the engine did not send:\n\(line)")
        }
    }
}

/// The parts of the schema the tests read.
struct Schema {
    var root: [String: Any]

    static func load() throws -> Schema {
        let data = try Data(contentsOf: Repo.schema)
        return Schema(root: try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any]))
    }

    var defs: [String: Any] { root["$defs"] as? [String: Any] ?? [:] }

    func typeConst(of name: String) -> String? {
        let def = defs[name] as? [String: Any]
        let properties = def?["properties"] as? [String: Any]
        return (properties?["type"] as? [String: Any])?["const"] as? String
    }

    func oneOf(_ name: String) -> [String] {
        let list = (defs[name] as? [String: Any])?["oneOf"] as? [[String: Any]] ?? []
        return list.compactMap { $0["$ref"] as? String }
    }

    var errorCodes: [String] {
        (defs["errorCode"] as? [String: Any])?["enum"] as? [String] ?? []
    }
}
