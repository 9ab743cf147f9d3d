import HearthCore
import HearthWire
import XCTest

@testable import HearthServer

/// The connection's life driven by inputs, asserting the actions the shell must perform: no
/// sockets, no clock, no sleeps.
final class ConnectionStateMachineTests: XCTestCase {
    private typealias Machine = ConnectionStateMachine
    private let t0 = Instant(milliseconds: 1_000_000)
    private let room = RoomID("r1")

    private func machine(
        _ configure: (inout Machine.Limits) -> Void = { _ in },
        rateLimits: (inout HearthConfiguration.RateLimits) -> Void = { _ in }
    ) -> Machine {
        var limits = Machine.Limits()
        configure(&limits)
        var r = HearthConfiguration.RateLimits()
        rateLimits(&r)
        return Machine(
            room: room, peer: "10.0.0.1", openedAt: t0, budget: CommandBudget(limits: r, now: t0), limits: limits)
    }

    private func joined(
        until: Instant? = nil, _ configure: (inout Machine.Limits) -> Void = { _ in },
        rateLimits: (inout HearthConfiguration.RateLimits) -> Void = { _ in }
    ) -> Machine {
        var m = machine(configure, rateLimits: rateLimits)
        XCTAssertEqual(m.received(.hello(token: "t", rid: "h"), at: t0), [.verifyHello(token: "t", rid: "h")])
        m.joined(until: until)
        XCTAssertEqual(m.state, .joined)
        return m
    }

    func testANewConnectionAwaitsHelloAndAsksTheShellToVerifyIt() {
        var m = machine()
        XCTAssertEqual(m.state, .awaitingHello)
        XCTAssertEqual(m.received(.hello(token: "tok", rid: "1"), at: t0), [.verifyHello(token: "tok", rid: "1")])
        XCTAssertEqual(m.state, .verifying, "joined only once the shell says so")
        m.joined(until: t0 + 60_000)
        XCTAssertEqual(m.state, .joined)
        XCTAssertEqual(m.authenticatedUntil, t0 + 60_000)
    }

    func testAHelloBeingVerifiedIsNotTimedOutAndASecondOneIsRefused() {
        var m = machine { $0.helloTimeoutMilliseconds = 1_000 }
        XCTAssertEqual(m.received(.hello(token: "tok", rid: "1"), at: t0), [.verifyHello(token: "tok", rid: "1")])
        XCTAssertEqual(m.tick(now: t0 + 60_000), [], "it came in time; the shell holds it (JoinPacer)")
        XCTAssertEqual(m.received(.hello(token: "t2", rid: "2"), at: t0), [.sendError(.alreadyJoined, rid: "2")])
        XCTAssertEqual(
            m.received(.resume(secret: "s", lastSeq: 0, rid: "3"), at: t0), [.sendError(.alreadyJoined, rid: "3")])
        XCTAssertEqual(m.received(.ping(rid: "p"), at: t0), [.sendError(.helloRequired, rid: "p")])
        XCTAssertEqual(m.state, .verifying, "refusing other messages does not drop the join being verified")
        m.joined(until: nil)
        XCTAssertEqual(m.state, .joined)
    }

    func testAJoinRefusedWithTheConnectionOpenMayBeTriedAgain() {
        var m = machine { $0.helloTimeoutMilliseconds = 1_000 }
        _ = m.received(.hello(token: "tok", rid: "1"), at: t0)
        XCTAssertEqual(m.joinRefused(.authenticationFailed, rid: "1"), [.sendError(.authenticationFailed, rid: "1")])
        XCTAssertEqual(m.state, .awaitingHello)
        XCTAssertEqual(m.received(.hello(token: "tok", rid: "2"), at: t0), [.verifyHello(token: "tok", rid: "2")])
        _ = m.refusedByBudget(rid: "2")
        XCTAssertEqual(m.state, .awaitingHello)
        XCTAssertEqual(
            m.tick(now: t0 + 1_000), [.close(code: CloseCode.helloTimeout.rawValue, reason: "hello timeout")],
            "back to waiting for a hello, so the hello timeout applies again")
    }

    func testAConnectionClosedWhileItsJoinIsVerifiedLeavesNoRoom() {
        var m = machine()
        _ = m.received(.resume(secret: "s", lastSeq: 0, rid: nil), at: t0)
        XCTAssertEqual(m.closed(), [])
        XCTAssertEqual(m.state, .closed)
    }

    func testResumeIsVerifiedByTheShellToo() {
        var m = machine()
        XCTAssertEqual(
            m.received(.resume(secret: "s", lastSeq: 7, rid: nil), at: t0),
            [.verifyResume(secret: "s", lastSeq: 7, rid: nil)])
    }

    func testEverythingButHelloAndResumeBeforeJoiningIsHelloRequired() {
        var m = machine()
        XCTAssertEqual(m.received(.ping(rid: "p"), at: t0), [.sendError(.helloRequired, rid: "p")])
        XCTAssertEqual(m.received(.refresh(token: "t", rid: "r"), at: t0), [.sendError(.helloRequired, rid: "r")])
        XCTAssertEqual(m.received(.command(.raiseHand, rid: "c"), at: t0), [.sendError(.helloRequired, rid: "c")])
        XCTAssertEqual(m.badMessages, 3)
        XCTAssertEqual(m.state, .awaitingHello)
    }

    func testAJoinedConnectionsCommandsGoToTheEngine() {
        var m = joined()
        XCTAssertEqual(m.received(.command(.raiseHand, rid: "c"), at: t0), [.applyCommand(.raiseHand, rid: "c")])
        XCTAssertEqual(m.received(.ping(rid: "p"), at: t0), [.sendPong(rid: "p")])
        XCTAssertEqual(m.received(.hello(token: "t", rid: "h2"), at: t0), [.sendError(.alreadyJoined, rid: "h2")])
        XCTAssertEqual(
            m.received(.resume(secret: "s", lastSeq: 0, rid: "r2"), at: t0), [.sendError(.alreadyJoined, rid: "r2")])
    }

    func testTooManyBadMessagesClose1008AndLaterMessagesAreIgnored() {
        var m = machine { $0.maxMalformedMessages = 2 }
        XCTAssertEqual(m.receivedInvalid(.badJSON, rid: nil), [.sendError(.badJSON, rid: nil)])
        XCTAssertEqual(m.receivedInvalid(.badJSON, rid: nil), [.sendError(.badJSON, rid: nil)])
        XCTAssertEqual(
            m.receivedInvalid(.badJSON, rid: "x"),
            [.sendError(.badJSON, rid: "x"), .close(code: 1008, reason: "too many bad messages")])
        XCTAssertEqual(m.state, .closing(joined: false))
        XCTAssertEqual(m.received(.hello(token: "t", rid: nil), at: t0), [], "nothing more is read")
        XCTAssertEqual(m.closed(), [], "it never joined: no room to leave")
        XCTAssertEqual(m.state, .closed)
    }

    func testAJoinedConnectionClosedForBadMessagesStillLeavesItsRoomWhenItCloses() {
        var m = joined { $0.maxMalformedMessages = 0 }
        XCTAssertEqual(
            m.receivedInvalid(.unknownType, rid: nil),
            [.sendError(.unknownType, rid: nil), .close(code: 1008, reason: "too many bad messages")])
        XCTAssertEqual(m.state, .closing(joined: true))
        XCTAssertEqual(m.closed(), [.applyDisconnected])
    }

    func testOverTheCommandBudgetIsRateLimitedAndSustainedAbuseCloses4429() {
        var m = joined(
            { $0.maxStrikes = 2 },
            rateLimits: {
                $0.controlBurst = 1
                $0.controlPerSecond = 0.001
            })
        XCTAssertEqual(m.received(.command(.raiseHand, rid: "1"), at: t0), [.applyCommand(.raiseHand, rid: "1")])
        XCTAssertEqual(m.received(.command(.raiseHand, rid: "2"), at: t0), [.sendError(.rateLimited, rid: "2")])
        XCTAssertEqual(
            m.received(.ping(rid: "3"), at: t0),
            [.sendError(.rateLimited, rid: "3"), .close(code: 4429, reason: "rate limited")])
        XCTAssertEqual(m.state, .closing(joined: true))
    }

    func testASignalToASeatWithAFullQueueIsRefusedAsAStrike() {
        var m = joined()
        let signal = ClientCommand.signal(to: ParticipantID(2), kind: .offer, payload: "{}")
        XCTAssertEqual(
            m.received(.command(signal, rid: "s"), at: t0, signal: .seat(ParticipantID(2), queueHasRoom: true)),
            [.applyCommand(signal, rid: "s")])
        XCTAssertEqual(
            m.received(.command(signal, rid: "s"), at: t0, signal: .seat(ParticipantID(2), queueHasRoom: false)),
            [.sendError(.rateLimited, rid: "s")])
        XCTAssertEqual(m.budget.strikes, 1)
        XCTAssertEqual(
            m.received(.command(signal, rid: "s"), at: t0, signal: .unknown), [.applyCommand(signal, rid: "s")],
            "a signal to no seat spends only the connection's budget (the engine answers it)")
    }

    func testNoHelloInTimeCloses4408AndForgetsTheConnection() {
        var m = machine { $0.helloTimeoutMilliseconds = 5_000 }
        XCTAssertEqual(m.tick(now: t0 + 4_999), [])
        XCTAssertEqual(m.tick(now: t0 + 5_000), [.close(code: 4408, reason: "hello timeout")])
        XCTAssertEqual(m.state, .closed)
    }

    func testAJoinedConnectionHasNoHelloTimeout() {
        var m = joined()
        XCTAssertEqual(m.tick(now: t0 + 3_600_000), [])
    }

    func testAnExpiredTokenCloses4401OnlyWhenRefreshIsRequired() {
        var lax = joined(until: t0 + 10_000)
        XCTAssertEqual(lax.tick(now: t0 + 3_600_000), [], "refresh not required")
        var m = joined(until: t0 + 10_000) {
            $0.requireRefresh = true
            $0.leewayMilliseconds = 1_000
        }
        XCTAssertEqual(m.tick(now: t0 + 11_000), [], "within the leeway")
        XCTAssertEqual(m.tick(now: t0 + 11_001), [.close(code: 4401, reason: "token expired")])
        XCTAssertEqual(m.state, .closing(joined: true))
        XCTAssertNil(m.authenticatedUntil)
        XCTAssertEqual(m.closed(), [.applyDisconnected])
    }

    func testARefreshExtendsTheAuthentication() {
        var m = joined(until: t0 + 10_000) { $0.requireRefresh = true }
        XCTAssertEqual(m.received(.refresh(token: "t2", rid: "r"), at: t0), [.verifyRefresh(token: "t2", rid: "r")])
        XCTAssertEqual(m.refreshed(until: t0 + 100_000, rid: "r"), [.sendAck(rid: "r")])
        XCTAssertEqual(m.tick(now: t0 + 60_000), [], "the new expiry counts")
    }

    func testARefusedRefreshCountsAsABadMessageAndKeepsTheConnection() {
        var m = joined()
        XCTAssertEqual(m.refused(.authenticationFailed, rid: "r"), [.sendError(.authenticationFailed, rid: "r")])
        XCTAssertEqual(m.state, .joined)
    }

    func testARefreshPastTheAddressBudgetIsAStrike() {
        var m = joined()
        XCTAssertEqual(m.refusedByBudget(rid: "r"), [.sendError(.rateLimited, rid: "r")])
        XCTAssertEqual(m.budget.strikes, 1)
    }

    func testARefusedJoinSendsTheErrorThenClosesAndForgets() {
        var m = machine()
        XCTAssertEqual(
            m.refusedAndClosed(.authenticationFailed, rid: "h", close: 4401, reason: "authentication failed"),
            [.sendError(.authenticationFailed, rid: "h"), .close(code: 4401, reason: "authentication failed")])
        XCTAssertEqual(m.state, .closed)
        XCTAssertEqual(m.received(.hello(token: "t", rid: nil), at: t0), [])
    }

    func testAResumeTheEngineRefusedCloses4401WithoutLeavingARoom() {
        var m = machine()
        _ = m.received(.resume(secret: "s", lastSeq: 99, rid: nil), at: t0)
        m.joined(until: nil)
        XCTAssertEqual(m.resumeRefused(), [.close(code: 4401, reason: "resume failed")])
        XCTAssertEqual(m.state, .closed)
        XCTAssertEqual(m.closed(), [])
    }

    func testAJoinedConnectionLeavesItsRoomWhenTheTransportClosesIt() {
        var m = joined()
        XCTAssertEqual(m.closed(), [.applyDisconnected])
        XCTAssertEqual(m.state, .closed)
        XCTAssertEqual(m.closed(), [], "once")
    }
}
