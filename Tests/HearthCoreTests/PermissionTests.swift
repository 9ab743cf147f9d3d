import Foundation
import HearthCore
import XCTest

/// Every command for every role, allowed and refused, against the permission table.
final class PermissionTests: XCTestCase {
    /// A room with an actor of `role` admitted, a target participant T (hand up, help open,
    /// one chat message), a waiting member W, an observer O, a breakout plan (T in it) and a
    /// member P pulled aside (breakout b2, the facilitator back in the main room).
    func fixture(_ role: Role) -> (
        Harness, actor: ConnectionID, t: ParticipantID, w: ParticipantID, o: ParticipantID, msg: MessageID
    ) {
        var h = Harness { $0.privateMessages = true }
        let f = h.join("fac", .facilitator)
        let actor = h.join("actor", role)
        if !role.isStaff { h.send(f, .admit(h.pid("actor"))) }
        let t = h.join("t", .participant)
        h.send(f, .admit(h.pid("t")))
        h.join("o", .observer)
        h.send(f, .admit(h.pid("o")))
        h.join("w", .participant)
        h.join("p", .participant)
        h.send(f, .admit(h.pid("p")))
        h.send(f, .planBreakouts([BreakoutPlanEntry(name: "A", members: [h.pid("t")])], automatic: false))
        h.send(f, .pullAside(h.pid("p")))
        h.send(f, .visitBreakout(nil))
        h.send(t, .raiseHand)
        h.send(t, .requestHelp)
        h.send(t, .chat(to: .room, text: "hello"))
        guard case .ack(let ack) = h.events(t).last, let msg = ack.message else { fatalError("no chat ack") }
        h.audits = []
        return (h, actor, h.pid("t"), h.pid("w"), h.pid("o"), msg)
    }

    func commands(t: ParticipantID, w: ParticipantID, o: ParticipantID, msg: MessageID) -> [(
        ClientCommand, PermissionAction?
    )] {
        [
            (.setMedia(audio: true, video: nil), .publishMedia),
            (.setMedia(audio: false, video: false), nil),
            (.raiseHand, .raiseHand),
            (.lowerHand(nil), nil),
            (.lowerHand(t), .lowerHands),
            (.chat(to: .room, text: "x"), .chatRoom),
            (.chat(to: .staff, text: "x"), .chatStaff),
            (.chat(to: .member(t), text: "x"), .chatPrivate),
            (.signal(to: t, kind: .offer, payload: "{}"), .signal),
            (.requestHelp, .requestHelp),
            (.admit(w), .admit),
            (.admitAll, .admit),
            (.deny(w, reason: "r"), .deny),
            (.sendBack(t), .sendBack),
            (.messageWaitingRoom("soon"), .messageWaitingRoom),
            (.mute(t, audio: true, video: false), .mute),
            (.muteAll(video: true), .mute),
            (.askUnmute(t, audio: true, video: false), .askUnmute),
            (.remove(t, ban: true, reason: nil), .remove),
            (.setRole(t, .cofacilitator), .changeRole),
            (.grant(o, media: true, chat: true), .grant),
            (.spotlight(t), .spotlight),
            (.lowerAllHands, .lowerHands),
            (.deleteChat(msg), .deleteChat),
            (.setLocked(true), .lock),
            (.setLocked(false), .lock),
            (.updateSettings(SettingsChange(chatPolicy: .everyone)), .updateSettings),
            (.acknowledgeHelp(t), .acknowledgeHelp),
            (.end, .end),
            (.planBreakouts([BreakoutPlanEntry(name: "B", members: [t])], automatic: true), .manageBreakouts),
            (.openBreakouts(durationSeconds: 60, warningSeconds: nil), .manageBreakouts),
            (.closeBreakouts, .manageBreakouts),
            (.closeBreakout(BreakoutID(2)), .manageBreakouts),
            (.moveToBreakout(t, BreakoutID(2)), .manageBreakouts),
            (.visitBreakout(BreakoutID(2)), .manageBreakouts),
            (.broadcastToBreakouts("two minutes left"), .manageBreakouts),
            (.pullAside(t), .manageBreakouts),
        ]
    }

    /// The permission table pinned by hand, not printed by the code under test: a change to
    /// `Permissions.rule` must be made here too (and in docs/protocol.md, whose test pins
    /// its own copy), so that a wrong rule and a doc printed from it cannot agree by themselves.
    static let pinnedTable = """
        | action | facilitator | cofacilitator | participant | guest | observer |
        |---|---|---|---|---|---|
        | `publish-media` | yes | yes | yes | yes | by grant |
        | `raise-hand` | yes | yes | yes | yes | yes |
        | `chat-room` | yes | yes | yes | yes | by grant |
        | `chat-staff` | yes | yes | yes | yes | yes |
        | `chat-private` | yes | yes | yes | yes | no |
        | `signal` | yes | yes | yes | yes | yes |
        | `request-help` | yes | yes | yes | yes | yes |
        | `admit` | yes | yes | no | no | no |
        | `deny` | yes | yes | no | no | no |
        | `send-back` | yes | yes | no | no | no |
        | `message-waiting-room` | yes | yes | no | no | no |
        | `mute` | yes | yes | no | no | no |
        | `ask-unmute` | yes | yes | no | no | no |
        | `remove` | yes | yes | no | no | no |
        | `change-role` | yes | no | no | no | no |
        | `grant` | yes | no | no | no | no |
        | `spotlight` | yes | yes | no | no | no |
        | `lower-hands` | yes | yes | no | no | no |
        | `delete-chat` | yes | yes | no | no | no |
        | `lock` | yes | yes | no | no | no |
        | `update-settings` | yes | yes | no | no | no |
        | `acknowledge-help` | yes | yes | no | no | no |
        | `end` | yes | no | no | no | no |
        | `manage-breakouts` | yes | yes | no | no | no |
        """

    /// `pinnedTable` read into cells (parsed from the text, never from `Permissions`).
    static let pinned: [PermissionAction: [Role: PermissionRule]] = {
        var table: [PermissionAction: [Role: PermissionRule]] = [:]
        let lines = pinnedTable.split(separator: "\n")
        let roles = lines[0].split(separator: "|").dropFirst().map {
            Role(rawValue: $0.trimmingCharacters(in: .whitespaces))
        }
        for line in lines.dropFirst(2) {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            let action = PermissionAction(rawValue: cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`")))!
            for (role, cell) in zip(roles, cells.dropFirst()) {
                table[action, default: [:]][role!] = ["yes": .allowed, "no": .denied, "by grant": .byGrant][cell]!
            }
        }
        return table
    }()

    func testTheRuleIsThePinnedTable() {
        XCTAssertEqual(Set(Self.pinned.keys), Set(PermissionAction.allCases), "every action pinned, no other")
        for action in PermissionAction.allCases {
            XCTAssertEqual(Set(Self.pinned[action].map { Array($0.keys) } ?? []), Set(Role.allCases), "\(action)")
            for role in Role.allCases {
                XCTAssertEqual(Permissions.rule(role, action), Self.pinned[action]?[role], "\(role) \(action)")
            }
        }
        XCTAssertEqual(Permissions.markdownTable(), Self.pinnedTable, "the table the docs print")
    }

    func testEveryCommandForEveryRole() {
        var checked = 0
        for role in Role.allCases {
            let (_, _, t, w, o, msg) = fixture(role)
            for (command, action) in commands(t: t, w: w, o: o, msg: msg) {
                var (h, actor, _, _, _, _) = fixture(role)
                let before = h.room.seats
                let actorID = h.pid("actor")
                h.send(actor, command, rid: "q")
                let reply = h.events(actor).last
                // Staff write to any member; for others a message to a member is private.
                let rule =
                    action.map { role.isStaff && $0 == .chatPrivate ? .allowed : Self.pinned[$0]![role]! }
                    ?? .allowed
                let label = "\(role.rawValue) \(command.name)"
                if rule == .allowed {
                    XCTAssertEqual(reply?.type, command == .end ? "ended" : "ack", label)
                    XCTAssertFalse(h.audits.contains { $0.outcome == .refused(.forbidden) }, label)
                    if action?.isPrivileged == true {
                        XCTAssertTrue(
                            h.audits.contains { $0.outcome == .done && $0.actor?.id == actorID }, "\(label): audited")
                    }
                } else {
                    XCTAssertEqual(reply, .error(.forbidden), label)
                    XCTAssertEqual(h.room.seats, before, "\(label): a refusal changes nothing")
                    XCTAssertEqual(h.audits.count, 1, label)
                    XCTAssertEqual(h.audits.first?.outcome, .refused(.forbidden), label)
                    XCTAssertEqual(h.audits.first?.action, command.name, label)
                    XCTAssertEqual(h.audits.first?.actor?.userID, UserID("actor"), label)
                }
                checked += 1
            }
        }
        XCTAssertEqual(checked, Role.allCases.count * 37)
    }

    func testTableShape() {
        for action in PermissionAction.allCases {
            XCTAssertEqual(Permissions.rule(.facilitator, action), .allowed, "\(action)")
            XCTAssertNotEqual(Permissions.rule(.participant, action), .byGrant)
        }
        XCTAssertEqual(Permissions.rule(.cofacilitator, .changeRole), .denied)
        XCTAssertEqual(Permissions.rule(.observer, .publishMedia), .byGrant)
        XCTAssertEqual(Permissions.rule(.observer, .chatPrivate), .denied)
        let table = Permissions.markdownTable()
        XCTAssertEqual(table.split(separator: "\n").count, PermissionAction.allCases.count + 2)
    }

    func testWaitingMembersMaySendOnlyWaitingRoomCommands() {
        var h = Harness { $0.consentVersion = "v" }
        h.join("fac", .facilitator)
        let w = h.join("w", .participant)
        for command in [
            ClientCommand.raiseHand, .chat(to: .staff, text: "x"), .setMedia(audio: true, video: nil), .admitAll,
        ] {
            h.send(w, command)
            XCTAssertEqual(h.lastError(w), .notAdmitted, command.name)
        }
        h.send(w, .acknowledgeConsent(version: "v"))
        XCTAssertEqual(h.events(w).last?.type, "ack")
        h.send(w, .requestHelp)
        XCTAssertEqual(h.events(w).last?.type, "ack")
    }
}
