import Foundation
import HearthAuth
import HearthCore
import HearthStore
import HearthTransport
import Logging
import XCTest

@testable import HearthServer

/// A transport that records what the shell asked of it.
final class FakeTransport: ShellTransport {
    var sent: [(SessionID, [String: Any])] = []
    var closes: [(session: SessionID, code: UInt16, reason: String)] = []

    func send(_ message: OutboundMessage, to session: SessionID) { send(message, toEach: [session]) }
    func send(_ message: OutboundMessage, toEach sessions: [SessionID]) {
        let object = (try? JSONSerialization.jsonObject(with: Data(message.bytes))) as? [String: Any] ?? [:]
        for s in sessions { sent.append((s, object)) }
    }
    func close(_ session: SessionID, code: UInt16, reason: String) { closes.append((session, code, reason)) }
    func queuedBytes(_ session: SessionID) -> Int? { 0 }
    func queuedMessages(_ session: SessionID) -> Int? { 0 }
    var openSessionCount: Int { 0 }
    var counters: TransportCounters { TransportCounters() }
    var iterationRequests = 0
    func requestIteration() { iterationRequests += 1 }

    func types(to session: SessionID) -> [String] {
        sent.filter { $0.0 == session }.compactMap { $0.1["type"] as? String }
    }
    func last(_ type: String, to session: SessionID) -> [String: Any]? {
        sent.last { $0.0 == session && $0.1["type"] as? String == type }?.1
    }
}

/// RoomHost driven through a fake transport, with a real store on a temporary file.
final class RoomHostTests: XCTestCase {
    private let secret = "room-host-tests-secret-0123456789abcdef"
    private var directory = ""
    private var store: Store!
    private var host: RoomHost!
    private let transport = FakeTransport()

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "hearth-roomhost-\(UUID().uuidString)"
        store = try Store(path: directory + "/hearth.db", commitWindow: 0)
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
        store.flush()
        store.close()
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func token(_ user: String, role: String = "facilitator", room: String = "r1") throws -> String {
        let claims = JoinClaims(sub: user, room: room, role: role, name: user, exp: Date().addingTimeInterval(300))
        return try TokenMinter(secret: secret).mint(claims: claims)
    }

    private func open(_ id: UInt64, room: String = "r1") -> SessionID {
        let session = SessionID(rawValue: id)
        host.opened(session, path: "/v1/rooms/\(room)", peerAddress: "10.0.0.\(id)", transport: transport)
        return session
    }

    private func receive(_ session: SessionID, _ json: String) {
        var bytes = Array(json.utf8)
        bytes.withUnsafeMutableBytes { host.received(session, text: UnsafeRawBufferPointer($0), transport: transport) }
    }

    /// Lets the held acks and closes out, as the writer's commit notice does.
    private func commit() {
        store.flush()
        host.releaseAcks(upTo: store.committedTicket, transport: transport)
    }

    func testAValidHelloIsWelcomedAndABadOneClosed4401() throws {
        let a = open(1)
        receive(a, #"{"type":"hello","token":"\#(try token("fac"))","rid":"h"}"#)
        XCTAssertEqual(transport.types(to: a).first, "welcome")
        XCTAssertEqual(host.connections[a]?.state, .joined)
        let b = open(2)
        receive(b, #"{"type":"hello","token":"not-a-token","rid":"h"}"#)
        XCTAssertEqual(transport.last("error", to: b)?["code"] as? String, "authentication-failed")
        XCTAssertEqual(transport.closes.map(\.code), [4401])
        XCTAssertNil(host.connections[b], "forgotten at once")
    }

    func testEndingTheRoomRecordsItsEndThroughTheRoomEndedEffect() throws {
        let a = open(1)
        receive(a, #"{"type":"hello","token":"\#(try token("fac"))"}"#)
        receive(a, #"{"type":"end","rid":"z1"}"#)
        commit()
        XCTAssertNotNil(try store.endedAt(RoomID("r1")), "the shell recorded the end")
        XCTAssertEqual(transport.closes.map(\.code), [4000])
        XCTAssertTrue(transport.types(to: a).contains("ended"))
    }

    func testAResumeTheEngineRefusesIsClosed4401() throws {
        let a = open(1)
        receive(a, #"{"type":"hello","token":"\#(try token("fac"))"}"#)
        let resumeSecret = try XCTUnwrap(transport.last("welcome", to: a)?["resumeSecret"] as? String)
        host.closed(a, transport: transport)
        let b = open(2)
        // A lastSeq from the future: the secret is right, but the engine refuses.
        receive(b, #"{"type":"resume","secret":"\#(resumeSecret)","lastSeq":999999,"rid":"r"}"#)
        XCTAssertEqual(transport.last("error", to: b)?["code"] as? String, "resume-failed")
        XCTAssertEqual(transport.closes.last?.code, 4401)
        XCTAssertNil(host.connections[b])
    }

    func testJoinsPastTheIterationsBudgetWaitForTheNextIterationsInOrder() throws {
        host.pacer = JoinPacer(budget: .nanoseconds(1))  // every join spends the whole budget
        let a = open(1)
        let b = open(2)
        let c = open(3)
        let d = open(4)
        receive(a, #"{"type":"hello","token":"\#(try token("fac"))"}"#)
        receive(b, #"{"type":"hello","token":"\#(try token("m1", role: "participant"))"}"#)
        receive(c, #"{"type":"hello","token":"\#(try token("m2", role: "participant"))"}"#)
        receive(d, #"{"type":"hello","token":"\#(try token("m3", role: "participant"))"}"#)
        XCTAssertEqual(transport.types(to: a).first, "welcome", "the first ran at once")
        XCTAssertTrue(transport.types(to: b).isEmpty && transport.types(to: c).isEmpty)
        XCTAssertEqual(host.connections[b]?.state, .verifying)
        host.tick(transport)  // the test's hello timeout is 0: a join that came in time is not closed
        XCTAssertEqual(transport.closes.map(\.code), [])
        host.closed(c, transport: transport)  // gone before its turn: skipped
        host.iterationEnded(transport: transport)
        XCTAssertTrue(transport.types(to: b).isEmpty, "the first join spent this iteration's budget")
        XCTAssertEqual(transport.iterationRequests, 1, "joins wait: the loop must not sleep")
        host.iterationEnded(transport: transport)
        XCTAssertEqual(transport.types(to: b).first, "welcome", "one per iteration here")
        XCTAssertTrue(transport.types(to: d).isEmpty)
        XCTAssertEqual(transport.iterationRequests, 2)
        host.iterationEnded(transport: transport)
        XCTAssertEqual(transport.types(to: d).first, "welcome")
        XCTAssertTrue(transport.types(to: c).isEmpty)
        XCTAssertEqual(transport.iterationRequests, 2, "nothing waits any more")
        XCTAssertEqual(host.connections[d]?.state, .joined)
    }

    /// A facilitator and two participants joined in room r1; then a join budget of 1 ns, so
    /// that each departure spends the whole of an iteration's.
    private func facilitatorAndTwoParticipantsWithNoDepartureBudget() throws -> (SessionID, SessionID, SessionID) {
        let a = open(1)
        let b = open(2)
        let c = open(3)
        receive(a, #"{"type":"hello","token":"\#(try token("fac"))"}"#)
        receive(b, #"{"type":"hello","token":"\#(try token("m1", role: "participant"))"}"#)
        receive(c, #"{"type":"hello","token":"\#(try token("m2", role: "participant"))"}"#)
        host.iterationEnded(transport: transport)
        host.pacer = JoinPacer(budget: .nanoseconds(1))
        return (a, b, c)
    }

    func testDeparturesPastTheIterationsBudgetReachTheEngineInLaterIterations() throws {
        let (a, b, c) = try facilitatorAndTwoParticipantsWithNoDepartureBudget()
        let seen = transport.types(to: a).count
        host.closed(b, transport: transport)
        let afterFirst = transport.types(to: a).count
        XCTAssertGreaterThan(afterFirst, seen, "the first departure reached the engine at once: the facilitator heard")
        XCTAssertNil(host.connections[b])
        host.closed(c, transport: transport)
        XCTAssertEqual(transport.types(to: a).count, afterFirst, "the second waits for a later iteration")
        XCTAssertNil(host.connections[c], "the connection itself is gone at once")
        XCTAssertEqual(host.pacer.waitingCount, 1)
        host.iterationEnded(transport: transport)
        XCTAssertEqual(transport.types(to: a).count, afterFirst, "this iteration's budget is spent")
        XCTAssertEqual(transport.iterationRequests, 1, "a departure waits: the loop must not sleep")
        host.iterationEnded(transport: transport)
        XCTAssertGreaterThan(transport.types(to: a).count, afterFirst, "the second departure reached the engine")
        XCTAssertEqual(host.pacer.waitingCount, 0)
        // Both were in the waiting room: the facilitator heard of each departure once.
        XCTAssertEqual(Array(transport.types(to: a).dropFirst(seen)), ["waiting-updated", "waiting-updated"])
    }

    func testAResumeOvertakesItsOwnWaitingDepartureAndStaysConnected() throws {
        let (a, b, c) = try facilitatorAndTwoParticipantsWithNoDepartureBudget()
        let resumeSecret = try XCTUnwrap(transport.last("welcome", to: b)?["resumeSecret"] as? String)
        host.closed(c, transport: transport)  // runs at once and spends the iteration's budget
        host.closed(b, transport: transport)
        XCTAssertEqual(host.pacer.waitingCount, 1, "b's departure waits")
        let d = open(4)
        receive(d, #"{"type":"resume","secret":"\#(resumeSecret)","lastSeq":0,"rid":"r"}"#)
        XCTAssertEqual(host.pacer.waitingCount, 2, "the resume waits too: no budget left")
        host.iterationEnded(transport: transport)
        XCTAssertEqual(host.pacer.waitingCount, 2, "this iteration's budget is spent")
        host.iterationEnded(transport: transport)
        XCTAssertEqual(transport.types(to: d).first, "resumed", "the join went first")
        XCTAssertEqual(host.pacer.waitingCount, 1, "b's departure still waits")
        host.iterationEnded(transport: transport)
        XCTAssertEqual(host.pacer.waitingCount, 0)
        let seats = try XCTUnwrap(host.engine.rooms[RoomID("r1")]?.seats)
        XCTAssertEqual(seats.values.filter(\.isConnected).count, 2, "a, and b on its new connection")
        XCTAssertEqual(host.connections[d]?.state, .joined)
        XCTAssertNil(host.connections[b])
        _ = a
    }

    func testAStoppingServerTellsTheEngineOfEveryDepartureAtOnce() throws {
        let (a, b, c) = try facilitatorAndTwoParticipantsWithNoDepartureBudget()
        host.closed(a, transport: transport)
        host.closed(b, transport: transport)
        XCTAssertEqual(host.pacer.waitingCount, 1, "b's departure waits")
        func connectedSeats() -> Int { host.engine.rooms[RoomID("r1")]?.seats.values.filter(\.isConnected).count ?? -1 }
        XCTAssertEqual(connectedSeats(), 2, "b still shows as present")
        host.stopping = true
        host.departAllWaiting(transport: transport)
        XCTAssertEqual(host.pacer.waitingCount, 0)
        XCTAssertEqual(connectedSeats(), 1, "b's departure reached the engine")
        host.closed(c, transport: transport)
        XCTAssertEqual(host.pacer.waitingCount, 0, "while stopping, a departure runs at once")
        XCTAssertEqual(connectedSeats(), 0)
    }

    func testAConnectionThatNeverSaysHelloIsClosed4408OnTheNextTick() {
        let a = open(1)
        host.tick(transport)
        XCTAssertEqual(transport.closes.map(\.code), [4408])
        XCTAssertNil(host.connections[a])
    }

    func testAJoinStillBeingVerifiedAtItsDeadlineIsClosedOnceItWaitsForItsHelloAgain() throws {
        host.pacer = JoinPacer(budget: .nanoseconds(1))  // every join spends the whole budget
        let a = open(1)
        let b = open(2)
        receive(a, #"{"type":"hello","token":"\#(try token("fac"))"}"#)  // runs, spends the budget
        receive(b, #"{"type":"hello","token":"\#(try token("m1", role: "participant"))"}"#)
        XCTAssertEqual(host.connections[b]?.state, .verifying)
        host.tick(transport)  // the test's hello timeout is 0: b is due, but its join is under way
        XCTAssertEqual(transport.closes.map(\.code), [])
        XCTAssertEqual(host.helloDeadlines.count, 1, "b is kept; a joined and is forgotten")
        // The join is refused and the connection left open to try again (a refusal of the shell's).
        host.drive(b, at: RoomHost.now(), transport: transport) { $0.joinRefused(.authenticationFailed, rid: nil) }
        XCTAssertEqual(host.connections[b]?.state, .awaitingHello)
        host.tick(transport)
        XCTAssertEqual(transport.closes.map(\.session), [b])
        XCTAssertEqual(transport.closes.map(\.code), [4408])
        XCTAssertEqual(host.helloDeadlines.count, 0)
        XCTAssertEqual(host.connections[a]?.state, .joined)
    }

    func testAnAckWaitsForItsJournalEntry() throws {
        let a = open(1)
        receive(a, #"{"type":"hello","token":"\#(try token("fac"))"}"#)
        commit()
        receive(a, #"{"type":"raise-hand","rid":"q"}"#)
        commit()
        XCTAssertEqual(transport.last("ack", to: a)?["rid"] as? String, "q")
        XCTAssertTrue(host.acks.isEmpty)
    }
}
