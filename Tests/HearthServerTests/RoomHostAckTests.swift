import Foundation
import HearthAuth
import HearthCore
import HearthStore
import HearthTransport
import Logging
import XCTest

@testable import HearthServer

/// The writer thread waits at this gate before each transaction while it is closed.
private final class WriterGate: @unchecked Sendable {
    private let condition = NSCondition()
    private var closed = false

    func pass() {
        condition.lock()
        while closed { condition.wait() }
        condition.unlock()
    }

    func set(closed: Bool) {
        condition.lock()
        self.closed = closed
        condition.broadcast()
        condition.unlock()
    }
}

/// What waits for a journal commit (docs/protocol.md, `ack`): the ack, and with it everything
/// the command sends its sender; the other members are not kept waiting. The store's writer is
/// stalled at a gate, so nothing commits until the test says so.
final class RoomHostAckTests: XCTestCase {
    private let secret = "room-host-ack-tests-secret-0123456789abcdef"
    private var directory = ""
    private let gate = WriterGate()
    private var store: Store!
    private var host: RoomHost!
    private let transport = FakeTransport()

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "hearth-roomhost-acks-\(UUID().uuidString)"
        let gate = self.gate
        store = try Store(path: directory + "/hearth.db", commitWindow: 0, writerGate: { gate.pass() })
        var configuration = HearthConfiguration()
        configuration.limits.helloTimeoutSeconds = 0
        // No loop-time bound on joins: with one, a join after a slow one (a loaded machine) waits
        // for the next iteration and the test sees it `verifying`. The pacing tests set their own.
        configuration.limits.joinBudgetMilliseconds = 0
        let verifier = TokenVerifier(keys: [try TokenKey.hs256(secret: secret)])
        let recovery = try RoomHost.recover(from: store, configuration: configuration, now: RoomHost.now())
        host = RoomHost(
            configuration: configuration, verifier: verifier, store: store, recovered: recovery,
            metrics: ServerMetrics(), logger: Logger(label: "test"), version: "test")
    }

    override func tearDownWithError() throws {
        gate.set(closed: false)
        store.flush()
        store.close()
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func token(_ user: String, role: String) throws -> String {
        let claims = JoinClaims(sub: user, room: "r1", role: role, name: user, exp: Date().addingTimeInterval(300))
        return try TokenMinter(secret: secret).mint(claims: claims)
    }

    private func open(_ id: UInt64) -> SessionID {
        let session = SessionID(rawValue: id)
        host.opened(session, path: "/v1/rooms/r1", peerAddress: "10.0.0.\(id)", transport: transport)
        return session
    }

    private func receive(_ session: SessionID, _ json: String) {
        var bytes = Array(json.utf8)
        bytes.withUnsafeMutableBytes { host.received(session, text: UnsafeRawBufferPointer($0), transport: transport) }
    }

    /// Lets the writer commit everything queued, then releases what waited, as its notice does.
    private func commit() {
        gate.set(closed: false)
        XCTAssertTrue(store.flush(timeout: 10))
        host.releaseAcks(upTo: store.committedTicket, transport: transport)
    }

    /// What `session` was sent since `from`: each message's type, with its rid or its chat's id.
    private func received(by session: SessionID, since from: Int) -> [String] {
        transport.sent[from...].filter { $0.0 == session }.map { _, m in
            let type = m["type"] as? String ?? "?"
            if let rid = m["rid"] as? String { return "\(type) \(rid)" }
            if let chat = m["message"] as? [String: Any], let id = chat["id"] as? String { return "\(type) \(id)" }
            return type
        }
    }

    private func seqs(to session: SessionID) -> [Int] {
        transport.sent.filter { $0.0 == session }.compactMap { $0.1["seq"] as? Int }
    }

    /// Two staff members in room r1, everything so far committed and sent.
    private func twoMembers() throws -> (SessionID, SessionID) {
        let a = open(1)
        receive(a, #"{"type":"hello","token":"\#(try token("fac", role: "facilitator"))","rid":"h"}"#)
        let b = open(2)
        receive(b, #"{"type":"hello","token":"\#(try token("co", role: "cofacilitator"))","rid":"h"}"#)
        commit()
        XCTAssertEqual(transport.types(to: b).first, "welcome")
        XCTAssertTrue(host.acks.isEmpty)
        return (a, b)
    }

    func testAChatReachesTheOthersAtOnceAndItsSenderWithItsAckOnceCommitted() throws {
        let (a, b) = try twoMembers()
        gate.set(closed: true)
        let mark = transport.sent.count
        receive(a, #"{"type":"chat","rid":"k1","to":"room","text":"hello"}"#)
        XCTAssertEqual(received(by: b, since: mark), ["chat m1"], "the others do not wait for the journal")
        XCTAssertEqual(received(by: a, since: mark), [], "the sender's copy waits with its ack")
        host.tick(transport)
        XCTAssertEqual(received(by: a, since: mark), [], "a tick before the commit releases nothing")
        commit()
        XCTAssertEqual(received(by: a, since: mark), ["chat m1", "ack k1"], "the copy, then its ack, together")
        XCTAssertTrue(host.acks.isEmpty)
        XCTAssertFalse(host.acks.isWaiting(a))
    }

    func testEventsThatFollowToASenderWaitBehindItsHeldCopySoSeqsKeepIncreasing() throws {
        let (a, b) = try twoMembers()
        gate.set(closed: true)
        let mark = transport.sent.count
        receive(a, #"{"type":"chat","rid":"k1","to":"room","text":"first"}"#)
        receive(b, #"{"type":"chat","rid":"k2","to":"room","text":"reply"}"#)
        receive(
            b, #"{"type":"signal","to":"p1","kind":"ice","payload":{"candidate":"c","sdpMid":"0","sdpMLineIndex":0}}"#)
        XCTAssertEqual(received(by: a, since: mark), ["signal"], "b's chat waits behind a's copy; signalling does not")
        XCTAssertEqual(received(by: b, since: mark), ["chat m1"], "b had nothing held when a's chat came")
        commit()
        XCTAssertEqual(received(by: a, since: mark), ["signal", "chat m1", "ack k1", "chat m2"])
        XCTAssertEqual(received(by: b, since: mark), ["chat m1", "chat m2", "ack k2"])
        for s in [a, b] {
            let seqs = seqs(to: s)
            XCTAssertEqual(seqs, seqs.sorted(), "seqs increase for every member")
            XCTAssertEqual(Set(seqs).count, seqs.count)
        }
    }

    func testARefusalToASenderWithACopyHeldIsNotHeld() throws {
        let (a, _) = try twoMembers()
        gate.set(closed: true)
        let mark = transport.sent.count
        receive(a, #"{"type":"chat","rid":"k1","to":"room","text":"first"}"#)
        receive(a, #"{"type":"chat","rid":"k2","to":"room","text":"   "}"#)
        receive(a, #"{"type":"ping","rid":"p"}"#)
        XCTAssertEqual(received(by: a, since: mark), ["error k2", "pong p"], "refusals and pongs wait for nothing")
        commit()
        XCTAssertEqual(received(by: a, since: mark), ["error k2", "pong p", "chat m1", "ack k1"])
    }

    func testAChatSentWithoutARidWaitsForNothing() throws {
        let (a, b) = try twoMembers()
        gate.set(closed: true)
        let mark = transport.sent.count
        receive(a, #"{"type":"chat","to":"room","text":"no rid"}"#)
        XCTAssertEqual(received(by: a, since: mark), ["chat m1"], "no ack to wait with")
        XCTAssertEqual(received(by: b, since: mark), ["chat m1"])
        XCTAssertTrue(host.acks.isEmpty)
    }

    func testARefusedChatIsAnsweredAtOnce() throws {
        let (a, _) = try twoMembers()
        gate.set(closed: true)
        let mark = transport.sent.count
        receive(a, #"{"type":"chat","rid":"k1","to":"room","text":"   "}"#)
        XCTAssertEqual(received(by: a, since: mark), ["error k1"])
        XCTAssertTrue(host.acks.isEmpty)
    }

    func testACloseForAMemberWithSomethingHeldWaitsBehindIt() throws {
        let a = open(1)
        receive(a, #"{"type":"hello","token":"\#(try token("fac", role: "facilitator"))","rid":"h"}"#)
        let b = open(2)
        receive(b, #"{"type":"hello","token":"\#(try token("pat", role: "participant"))","rid":"h"}"#)
        commit()
        receive(a, #"{"type":"admit","member":"p2","rid":"a1"}"#)
        commit()
        XCTAssertTrue(transport.types(to: b).contains("admitted") || transport.types(to: b).contains("snapshot"))
        gate.set(closed: true)
        let mark = transport.sent.count
        let closesBefore = transport.closes.count
        receive(b, #"{"type":"chat","rid":"k1","to":"room","text":"one last thing"}"#)
        // Without a rid, the facilitator's remove holds nothing of its own.
        receive(a, #"{"type":"remove","member":"p2","reason":"test"}"#)
        XCTAssertEqual(received(by: b, since: mark), [], "b's copy and ack wait, and so does its removed")
        XCTAssertEqual(transport.closes.count, closesBefore, "the close must not overtake them")
        commit()
        XCTAssertEqual(received(by: b, since: mark), ["chat m1", "ack k1", "removed"])
        XCTAssertEqual(transport.closes.count, closesBefore + 1)
        XCTAssertEqual(transport.closes.last?.session, b)
        XCTAssertEqual(transport.closes.last?.code, 4002)
        XCTAssertFalse(host.acks.isWaiting(b))
    }

    func testARoomEndedByTheOperatorReachesAMemberAfterTheirHeldCopyAndAck() throws {
        let (a, b) = try twoMembers()
        gate.set(closed: true)
        let mark = transport.sent.count
        receive(a, #"{"type":"chat","rid":"k1","to":"room","text":"goodbye"}"#)
        XCTAssertTrue(host.endRoom(RoomID("r1"), at: RoomHost.now(), transport: transport))
        XCTAssertEqual(received(by: b, since: mark), ["chat m1", "ended"], "b had nothing held")
        XCTAssertEqual(received(by: a, since: mark), [], "a's copy and ack wait, and ended behind them")
        XCTAssertEqual(transport.closes.count, 0, "closes wait for the end's own entry")
        commit()
        XCTAssertEqual(received(by: a, since: mark), ["chat m1", "ack k1", "ended"])
        XCTAssertEqual(transport.closes.map(\.session), [a, b])
        XCTAssertEqual(transport.closes.map(\.code), [4000, 4000])
        XCTAssertFalse(host.acks.isWaiting(a))
    }
}
