import HearthCore
import XCTest

final class ChatAndSignalTests: XCTestCase {
    func chats(_ h: Harness, _ c: ConnectionID) -> [ChatMessage] {
        h.events(c).compactMap { if case .chat(let m) = $0 { return m } else { return nil } }
    }

    func testRoomChatReachesEveryAdmittedMemberWithIdSeqAndTime() {
        var (h, f, m) = Harness.groupInSession(3)
        let w = h.join("w", .participant)
        h.advance(42)
        h.send(m[0], .chat(to: .room, text: "hello all"))
        for c in [f] + m {
            let got = chats(h, c)
            XCTAssertEqual(got.count, 1)
            XCTAssertEqual(got.first?.text, "hello all")
            XCTAssertEqual(got.first?.at, h.now)
            XCTAssertEqual(got.first?.from, h.pid("u0"))
        }
        XCTAssertTrue(chats(h, w).isEmpty)
        guard case .ack(let ack) = h.events(m[0]).last else { return XCTFail() }
        XCTAssertEqual(ack.message, chats(h, f).first?.id)
        XCTAssertEqual(ack.seq, chats(h, f).first?.seq)
        XCTAssertFalse(h.audits.contains { $0.reason == "hello all" }, "no chat text in audit")
    }

    func testChatLimits() {
        var (h, _, m) = Harness.groupInSession(1) { $0.maxChatLength = 10 }
        h.send(m[0], .chat(to: .room, text: String(repeating: "x", count: 11)))
        XCTAssertEqual(h.lastError(m[0]), .tooLong)
        h.send(m[0], .chat(to: .room, text: " \n"))
        XCTAssertEqual(h.lastError(m[0]), .emptyText)
    }

    func testStaffOnlyPolicy() {
        var (h, f, m) = Harness.groupInSession(2) { $0.chatPolicy = .staffOnly }
        h.send(m[0], .chat(to: .room, text: "hi"))
        XCTAssertEqual(h.lastError(m[0]), .chatDisabled)
        h.send(m[0], .chat(to: .staff, text: "I feel unwell"))
        XCTAssertEqual(chats(h, f).last?.text, "I feel unwell")
        XCTAssertTrue(chats(h, m[1]).isEmpty)
        h.send(f, .chat(to: .room, text: "announcement"))
        XCTAssertEqual(chats(h, m[1]).last?.text, "announcement")
    }

    func testOffPolicyStopsMembersButNotStaff() {
        var (h, f, m) = Harness.groupInSession(1) { $0.chatPolicy = .off }
        h.send(m[0], .chat(to: .staff, text: "hi"))
        XCTAssertEqual(h.lastError(m[0]), .chatDisabled)
        h.send(f, .chat(to: .room, text: "staff note"))
        XCTAssertEqual(chats(h, m[0]).last?.text, "staff note")
    }

    func testPrivateMessagesBetweenMembersAreOffByDefault() {
        var (h, f, m) = Harness.groupInSession(3)
        h.send(m[0], .chat(to: .member(h.pid("u1")), text: "psst"))
        XCTAssertEqual(h.lastError(m[0]), .privateMessagesDisabled)
        XCTAssertTrue(chats(h, m[1]).isEmpty)
        h.send(m[0], .chat(to: .member(h.pid("fac")), text: "to the facilitator"))
        XCTAssertEqual(chats(h, f).last?.text, "to the facilitator")
        XCTAssertTrue(chats(h, m[2]).isEmpty)
        h.send(f, .updateSettings(SettingsChange(privateMessages: true)))
        h.send(m[0], .chat(to: .member(h.pid("u1")), text: "psst"))
        XCTAssertEqual(chats(h, m[1]).last?.text, "psst")
        XCTAssertFalse(chats(h, f).contains { $0.text == "psst" }, "private means private")
        XCTAssertTrue(chats(h, m[2]).isEmpty)
    }

    func testDeletedMessageBecomesATombstoneForItsAudience() {
        var (h, f, m) = Harness.groupInSession(2)
        h.send(m[0], .chat(to: .room, text: "something regrettable"))
        let id = chats(h, f)[0].id
        h.send(m[1], .deleteChat(id))
        XCTAssertEqual(h.lastError(m[1]), .forbidden)
        h.send(f, .deleteChat(id))
        for c in [f] + m { XCTAssertTrue(h.events(c).contains(.chatDeleted(id))) }
        XCTAssertEqual(h.audits.last?.action, "delete-chat")
        // Someone who was there and comes back sees only the tombstone.
        let again = h.join("u1", .participant)
        guard let snap = h.welcome(again)?.room else { return XCTFail() }
        XCTAssertEqual(snap.chat.count, 1)
        XCTAssertTrue(snap.chat[0].deleted)
        XCTAssertNil(snap.chat[0].text)
        // Later arrivals never see what was said before they came in.
        h.join("late", .participant)
        h.send(f, .admit(h.pid("late")))
        guard let c = h.room.seat(ofUser: UserID("late"))?.connection,
            case .admitted(let lateSnap) = h.events(c).last(where: { $0.type == "admitted" })
        else { return XCTFail() }
        XCTAssertTrue(lateSnap.chat.isEmpty)
        h.send(f, .deleteChat(MessageID(999)))
        XCTAssertEqual(h.lastError(f), .unknownMessage)
    }

    func testSignalRelayOnlyBetweenAdmittedConnectedMembers() {
        var (h, _, m) = Harness.groupInSession(2) { $0.maxSignalBytes = 100 }
        let w = h.join("w", .participant)
        let payload = #"{"sdp":"v=0..."}"#
        h.send(m[0], .signal(to: h.pid("u1"), kind: .offer, payload: payload))
        let got = h.take(m[1]).filter { $0.event.type == "signal" }
        XCTAssertEqual(got.map(\.event), [.signal(from: h.pid("u0"), kind: .offer, payload: payload)])
        XCTAssertNil(got.first?.seq, "signals are relayed, not logged")
        h.send(m[0], .signal(to: h.pid("w"), kind: .offer, payload: payload))
        XCTAssertEqual(h.lastError(m[0]), .unknownMember, "never to the waiting room")
        h.send(w, .signal(to: h.pid("u0"), kind: .offer, payload: payload))
        XCTAssertEqual(h.lastError(w), .notAdmitted, "never from the waiting room")
        h.send(m[0], .signal(to: h.pid("u1"), kind: .ice, payload: String(repeating: "x", count: 101)))
        XCTAssertEqual(h.lastError(m[0]), .tooLong)
        h.send(m[0], .signal(to: h.pid("u0"), kind: .ice, payload: "{}"))
        XCTAssertEqual(h.lastError(m[0]), .invalidTarget)
        h.drop(m[1])
        h.send(m[0], .signal(to: h.pid("u1"), kind: .ice, payload: "{}"))
        XCTAssertEqual(h.lastError(m[0]), .peerUnavailable)
    }
}
