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
        let serverTypes = Samples.eventTypes + ["pong"]
        XCTAssertEqual(serverTypes.count, Samples.caseCount + 1)
        let clientTypes = Samples.commandNames + ["hello", "refresh", "resume", "ping"]
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
