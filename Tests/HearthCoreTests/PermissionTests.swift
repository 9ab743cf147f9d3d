import HearthCore
import XCTest

/// Every command for every role, allowed and refused, against the permission table.
final class PermissionTests: XCTestCase {
    /// A room with an actor of `role` admitted, a target participant T (hand up, help open,
    /// one chat message), a waiting member W and an observer O.
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
        h.send(t, .raiseHand)
        h.send(t, .requestHelp)
        h.send(t, .chat(to: .room, text: "hello"))
        guard case .ack(let ack) = h.events(t).last, let msg = ack.message else { fatalError("no chat ack") }
        h.audits = []
        return (h, actor, h.pid("t"), h.pid("w"), h.pid("o"), msg)
    }

    func commands(t: ParticipantID, w: ParticipantID, o: ParticipantID, msg: MessageID) -> [(ClientCommand, Action?)] {
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
        ]
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
                    action.map { role.isStaff && $0 == .chatPrivate ? .allowed : Permissions.rule(role, $0) }
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
        XCTAssertEqual(checked, Role.allCases.count * 29)
    }

    func testTableShape() {
        for action in Action.allCases {
            XCTAssertEqual(Permissions.rule(.facilitator, action), .allowed, "\(action)")
            XCTAssertNotEqual(Permissions.rule(.participant, action), .byGrant)
        }
        XCTAssertEqual(Permissions.rule(.cofacilitator, .changeRole), .denied)
        XCTAssertEqual(Permissions.rule(.observer, .publishMedia), .byGrant)
        XCTAssertEqual(Permissions.rule(.observer, .chatPrivate), .denied)
        let table = Permissions.markdownTable()
        XCTAssertEqual(table.split(separator: "\n").count, Action.allCases.count + 2)
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
