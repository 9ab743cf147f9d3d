import HearthCore
import XCTest

/// Breakouts (docs/protocol.md §10): plans, opening, who sees whom, chat and signalling
/// inside a breakout, moves, visits, pull-asides, the time limit, drops, attendance.
final class BreakoutTests: XCTestCase {
    /// A facilitator, a co-facilitator and six admitted members u0…u5.
    func group(_ configure: (inout RoomSettings) -> Void = { _ in }) -> (
        Harness, f: ConnectionID, co: ConnectionID, m: [ConnectionID]
    ) {
        var (h, f, m) = Harness.groupInSession(6, configure)
        let co = h.join("co", .cofacilitator)
        return (h, f, co, m)
    }

    /// Plans three pairs by hand (u0+u1, u2+u3, u4+u5) and opens them.
    func openPairs(_ h: inout Harness, _ f: ConnectionID, duration: Int? = nil, warning: Int? = nil) {
        let pairs = (0..<3).map { i in
            BreakoutPlanEntry(name: "Pair \(i + 1)", members: [h.pid("u\(2 * i)"), h.pid("u\(2 * i + 1)")])
        }
        h.send(f, .planBreakouts(pairs, automatic: false))
        XCTAssertEqual(h.events(f).last?.type, "ack")
        h.send(f, .openBreakouts(durationSeconds: duration, warningSeconds: warning))
        XCTAssertEqual(h.events(f).last?.type, "ack")
    }

    func breakout(_ h: Harness, _ user: String) -> BreakoutID? { h.room.seat(ofUser: UserID(user))!.breakout }

    func moves(_ h: Harness, _ c: ConnectionID) -> [(BreakoutRef?, RoomSnapshot)] {
        h.events(c).compactMap { if case .moved(let b, let room) = $0 { return (b, room) } else { return nil } }
    }

    func chats(_ h: Harness, _ c: ConnectionID) -> [ChatMessage] {
        h.events(c).compactMap { if case .chat(let m) = $0 { return m } else { return nil } }
    }

    func signals(_ h: Harness, _ c: ConnectionID) -> Int {
        h.events(c).filter { $0.type == "signal" }.count
    }

    func staffView(_ h: Harness, _ c: ConnectionID) -> BreakoutsView? {
        h.events(c).reversed().lazy.compactMap {
            if case .breakoutsUpdated(let v) = $0 { return v } else { return nil }
        }
        .first
    }

    // MARK: Planning and opening

    func testPlanIsShownToStaffOnlyAndMovesNobodyUntilOpened() {
        var (h, f, co, m) = group()
        let w = h.join("w", .participant)
        h.take(f)
        h.take(m[0])
        h.send(
            f,
            .planBreakouts([BreakoutPlanEntry(name: "Pair 1", members: [h.pid("u0"), h.pid("u1")])], automatic: false))
        XCTAssertEqual(h.events(f).last?.type, "ack")
        let plan = staffView(h, co)?.plan
        XCTAssertEqual(plan?.map(\.name), ["Pair 1"])
        XCTAssertEqual(plan?.first?.members, [h.pid("u0"), h.pid("u1")])
        XCTAssertEqual(staffView(h, f)?.open, [])
        XCTAssertNil(breakout(h, "u0"), "planning moves nobody")
        XCTAssertTrue(h.events(m[0]).isEmpty, "members learn nothing of a plan")
        XCTAssertFalse(h.events(w).contains { $0.type.hasPrefix("breakout") || $0.type == "moved" })
        // The plan can change before opening: the last one counts.
        h.send(
            co,
            .planBreakouts(
                [BreakoutPlanEntry(name: "Trio", members: [h.pid("u2"), h.pid("u3"), h.pid("u4")])], automatic: false))
        XCTAssertEqual(h.room.breakouts.plan.map(\.name), ["Trio"])
        XCTAssertEqual(h.audits.last?.action, "breakouts-plan")
        XCTAssertEqual(h.audits.last?.actor?.userID, UserID("co"))
    }

    func testOpeningMovesEachMemberWithOneMessageCarryingTheNewRoster() {
        var (h, f, co, m) = group()
        for c in [f, co] + m { h.take(c) }
        openPairs(&h, f)
        XCTAssertEqual((0..<6).map { breakout(h, "u\($0)") }, [1, 1, 2, 2, 3, 3].map { BreakoutID(UInt32($0)) })
        XCTAssertNil(breakout(h, "fac"), "staff are not moved by opening")
        let got = moves(h, m[0])
        XCTAssertEqual(got.count, 1, "one message per move")
        XCTAssertEqual(got.first?.0?.name, "Pair 1")
        XCTAssertEqual(got.first?.0?.kind, .planned)
        // The new roster: the pair only (staff stay in the main room until they visit).
        XCTAssertEqual(got.first?.1.members.map(\.id), [h.pid("u0"), h.pid("u1")])
        XCTAssertEqual(got.first?.1.breakout?.id, BreakoutID(1))
        XCTAssertNil(got.first?.1.breakouts, "members never get the staff view")
        // Staff see every breakout, with who is in it.
        let view = staffView(h, f)
        XCTAssertEqual(
            view?.open.map(\.members),
            [[h.pid("u0"), h.pid("u1")], [h.pid("u2"), h.pid("u3")], [h.pid("u4"), h.pid("u5")]])
        XCTAssertEqual(view?.plan, [], "the plan is used up")
        XCTAssertEqual(h.audits.filter { $0.action == "breakout-move" }.count, 6)
        XCTAssertEqual(h.audits.first { $0.action == "breakout-move" }?.reason, "main->b1")
        XCTAssertEqual(h.audits.first { $0.action == "breakouts-open" }?.actor?.userID, UserID("fac"))
    }

    func testAutomaticPlanIsBalancedNeverAssignsStaffAndKeepsHandAssignments() {
        var (h, f, _, _) = group()
        h.send(
            f,
            .planBreakouts(
                [
                    BreakoutPlanEntry(name: "A", members: [h.pid("u0")]), BreakoutPlanEntry(name: "B"),
                    BreakoutPlanEntry(name: "C"),
                ],
                automatic: true))
        let plan = h.room.breakouts.plan
        XCTAssertEqual(plan.map(\.members.count), [2, 2, 2])
        XCTAssertTrue(plan[0].members.contains(h.pid("u0")))
        let assigned = plan.flatMap(\.members)
        XCTAssertEqual(Set(assigned), Set((0..<6).map { h.pid("u\($0)") }), "every member once, no staff")
        XCTAssertEqual(assigned.count, 6)
    }

    func testAutomaticAssignmentIsTheSameOnReplay() {
        func run() -> [Breakouts.PlannedBreakout] {
            var (h, f, _, _) = group()
            h.send(f, .planBreakouts([BreakoutPlanEntry(name: "A"), BreakoutPlanEntry(name: "B")], automatic: true))
            return h.room.breakouts.plan
        }
        XCTAssertEqual(run(), run(), "the engine's shuffle depends only on its inputs")
    }

    func testPlanAndOpenRefusalsChangeNothing() {
        var (h, f, co, m) = group()
        let w = h.join("w", .participant)
        let before = h.room.breakouts
        let cases: [(ClientCommand, ErrorCode)] = [
            (.planBreakouts([], automatic: false), .invalidArgument),
            (.planBreakouts([BreakoutPlanEntry(name: " ")], automatic: false), .emptyText),
            (.planBreakouts([BreakoutPlanEntry(name: String(repeating: "n", count: 101))], automatic: false), .tooLong),
            (
                .planBreakouts(Array(repeating: BreakoutPlanEntry(name: "x"), count: 51), automatic: false),
                .invalidArgument
            ),
            (.planBreakouts([BreakoutPlanEntry(name: "A", members: [h.pid("co")])], automatic: false), .invalidTarget),
            (.planBreakouts([BreakoutPlanEntry(name: "A", members: [h.pid("w")])], automatic: false), .invalidTarget),
            (
                .planBreakouts([BreakoutPlanEntry(name: "A", members: [ParticipantID(999)])], automatic: false),
                .unknownMember
            ),
            (
                .planBreakouts(
                    [
                        BreakoutPlanEntry(name: "A", members: [h.pid("u0")]),
                        BreakoutPlanEntry(name: "B", members: [h.pid("u0")]),
                    ],
                    automatic: false), .invalidArgument
            ),
            (.openBreakouts(durationSeconds: nil, warningSeconds: nil), .noBreakoutPlan),
            (.closeBreakouts, .breakoutsClosed),
            (.closeBreakout(BreakoutID(1)), .unknownBreakout),
            (.moveToBreakout(h.pid("u0"), BreakoutID(1)), .unknownBreakout),
            (.visitBreakout(BreakoutID(1)), .unknownBreakout),
            (.broadcastToBreakouts("hi"), .breakoutsClosed),
            (.pullAside(h.pid("co")), .invalidTarget),
            (.pullAside(h.pid("w")), .invalidTarget),
        ]
        for (command, code) in cases {
            h.send(co, command)
            XCTAssertEqual(h.lastError(co), code, command.name)
            XCTAssertEqual(h.room.breakouts, before, "\(command.name): a refusal changes nothing")
        }
        h.send(f, .planBreakouts([BreakoutPlanEntry(name: "A", members: [h.pid("u0")])], automatic: false))
        for (duration, warning) in [(0, nil), (14_401, nil), (60, -1), (60, 14_401)] as [(Int, Int?)] {
            h.send(f, .openBreakouts(durationSeconds: duration, warningSeconds: warning))
            XCTAssertEqual(h.lastError(f), .invalidArgument, "\(duration) \(String(describing: warning))")
        }
        XCTAssertFalse(h.room.breakouts.plannedOpen)
        h.send(f, .openBreakouts(durationSeconds: nil, warningSeconds: nil))
        h.send(f, .openBreakouts(durationSeconds: nil, warningSeconds: nil))
        XCTAssertEqual(h.lastError(f), .breakoutsOpen)
        h.send(f, .planBreakouts([BreakoutPlanEntry(name: "B")], automatic: true))
        XCTAssertEqual(h.lastError(f), .breakoutsOpen, "no re-planning while open")
        // Members may not manage breakouts, and the refusal is audited.
        h.send(m[0], .closeBreakouts)
        XCTAssertEqual(h.lastError(m[0]), .forbidden)
        XCTAssertEqual(h.audits.last?.outcome, .refused(.forbidden))
        XCTAssertTrue(h.events(w).allSatisfy { !$0.type.contains("breakout") && $0.type != "moved" })
    }

    func testMembersWhoLeftOrWereSentBackSincePlanningStayPut() {
        var (h, f, _, m) = group()
        let pairs = [BreakoutPlanEntry(name: "A", members: [h.pid("u0"), h.pid("u1"), h.pid("u2")])]
        h.send(f, .planBreakouts(pairs, automatic: false))
        let u1 = h.pid("u1")
        h.send(m[1], .leave)
        XCTAssertEqual(
            h.room.breakouts.plan.first?.members, [h.pid("u0"), h.pid("u2")], "a seat gone for good leaves the plan")
        h.send(f, .sendBack(h.pid("u2")))
        h.send(f, .openBreakouts(durationSeconds: nil, warningSeconds: nil))
        XCTAssertEqual(breakout(h, "u0"), BreakoutID(1))
        XCTAssertNil(breakout(h, "u2"), "a member in the waiting room is not moved")
        XCTAssertNil(h.room.seats[u1])
    }

    // MARK: Who sees whom

    func testRostersAreScopedAndOthersAreToldWhoLeftAndCame() {
        var (h, f, co, m) = group()
        for c in [f, co] + m { h.take(c) }
        h.send(
            f, .planBreakouts([BreakoutPlanEntry(name: "A", members: [h.pid("u0"), h.pid("u1")])], automatic: false))
        h.send(f, .openBreakouts(durationSeconds: nil, warningSeconds: nil))
        // Main room members see u0 and u1 leave; the pair sees nothing of the main room.
        let left = h.events(m[2]).compactMap {
            if case .memberLeft(let id, .moved) = $0 { return id } else { return nil }
        }
        XCTAssertEqual(left, [h.pid("u0"), h.pid("u1")])
        // Moved together, u0 and u1 learn each other from their `moved` (no member-joined).
        XCTAssertEqual(moves(h, m[0]).last?.1.members.map(\.id), [h.pid("u0"), h.pid("u1")])
        XCTAssertFalse(h.events(m[0]).contains { $0.type == "member-joined" })
        XCTAssertNil(
            h.events(m[0]).first {
                if case .memberJoined(let v) = $0 { return v.breakout != nil } else { return false }
            },
            "members never see the breakout field")
        // Staff get member-updated with the breakout, and keep everyone in their roster.
        let updated = h.events(co).compactMap { if case .memberUpdated(let v) = $0 { return v } else { return nil } }
        XCTAssertEqual(updated.map(\.breakout), [BreakoutID(1), BreakoutID(1)])
        XCTAssertFalse(h.events(co).contains { if case .memberLeft = $0 { return true } else { return false } })
        // A fresh snapshot agrees: a main-room member sees the main room only; staff see all.
        h.send(m[3], .leave)
        let c = h.join("u3", .participant)
        h.send(f, .admit(h.pid("u3")))
        guard case .admitted(let snap)? = h.events(c).last else { return XCTFail("not admitted") }
        XCTAssertFalse(snap.members.contains { $0.id == h.pid("u0") || $0.id == h.pid("u1") })
        XCTAssertTrue(snap.members.contains { $0.id == h.pid("u2") })
        h.send(f, .moveToBreakout(h.pid("u2"), BreakoutID(1)))
        let joined = h.events(m[0]).compactMap { if case .memberJoined(let v) = $0 { return v.id } else { return nil } }
        XCTAssertEqual(joined, [h.pid("u2")], "a later arrival is announced")
    }

    func testChatInABreakoutStaysWithItsAudienceNowAndInSnapshots() {
        var (h, f, co, m) = group()
        openPairs(&h, f)
        for c in [f, co] + m { h.take(c) }
        h.send(m[0], .chat(to: .room, text: "practising DEAR MAN"))
        XCTAssertEqual(chats(h, m[1]).map(\.text), ["practising DEAR MAN"])
        XCTAssertEqual(chats(h, m[1]).first?.breakout, BreakoutID(1))
        for c in [f, co, m[2], m[3], m[4], m[5]] { XCTAssertTrue(chats(h, c).isEmpty, "\(c) saw another room's chat") }
        // Staff in the main room write to the main room only.
        h.send(f, .chat(to: .room, text: "main room note"))
        XCTAssertEqual(chats(h, co).map(\.text), ["main room note"])
        XCTAssertNil(chats(h, co).first?.breakout)
        XCTAssertTrue(chats(h, m[0]).count == 1)
        // u2 moved into pair 1 later never sees what was said there before.
        h.send(f, .moveToBreakout(h.pid("u2"), BreakoutID(1)))
        guard let (_, snap) = moves(h, m[2]).last else { return XCTFail("no moved") }
        XCTAssertFalse(snap.chat.contains { $0.text == "practising DEAR MAN" })
        XCTAssertEqual(Set(snap.members.map(\.id)), Set([h.pid("u0"), h.pid("u1"), h.pid("u2")]))
        // Chat to staff reaches staff wherever they are.
        h.send(m[4], .chat(to: .staff, text: "can someone come?"))
        XCTAssertEqual(chats(h, f).last?.text, "can someone come?")
        XCTAssertEqual(chats(h, co).last?.text, "can someone come?")
        XCTAssertFalse(chats(h, m[5]).contains { $0.text == "can someone come?" })
    }

    func testPrivateMessagesBetweenMembersStayInOneRoom() {
        var (h, f, _, m) = group { $0.privateMessages = true }
        openPairs(&h, f)
        h.send(m[0], .chat(to: .member(h.pid("u2")), text: "psst"))
        XCTAssertEqual(h.lastError(m[0]), .unknownMember, "a member outside your roster is unknown to you")
        XCTAssertTrue(chats(h, m[2]).isEmpty)
        h.send(m[0], .chat(to: .member(h.pid("u1")), text: "psst"))
        XCTAssertEqual(chats(h, m[1]).last?.text, "psst")
        h.send(f, .chat(to: .member(h.pid("u2")), text: "check-in"))
        XCTAssertEqual(chats(h, m[2]).last?.text, "check-in", "staff write to anyone")
    }

    func testSignallingStaysWithinOneRoom() {
        var (h, f, _, m) = group()
        openPairs(&h, f)
        for c in [f] + m { h.take(c) }
        h.send(m[0], .signal(to: h.pid("u1"), kind: .offer, payload: "{}"))
        XCTAssertEqual(signals(h, m[1]), 1)
        h.send(m[0], .signal(to: h.pid("u2"), kind: .offer, payload: "{}"))
        XCTAssertEqual(h.lastError(m[0]), .unknownMember)
        h.send(m[0], .signal(to: h.pid("fac"), kind: .offer, payload: "{}"))
        XCTAssertEqual(h.lastError(m[0]), .unknownMember, "staff elsewhere are not in a member's roster")
        h.send(f, .signal(to: h.pid("u0"), kind: .offer, payload: "{}"))
        XCTAssertEqual(h.lastError(f), .otherBreakout)
        XCTAssertEqual(signals(h, m[2]) + signals(h, f), 0)
        // A visit puts staff's media where they are.
        h.send(f, .visitBreakout(BreakoutID(1)))
        h.send(f, .signal(to: h.pid("u0"), kind: .offer, payload: "{}"))
        XCTAssertEqual(h.events(f).last?.type, "ack")
        XCTAssertEqual(signals(h, m[0]), 1)
    }

    func testHandsReachTheBreakoutAndAllStaffAndHelpReachesStaffWherever() {
        var (h, f, co, m) = group()
        openPairs(&h, f)
        h.send(co, .visitBreakout(BreakoutID(3)))
        for c in [f, co] + m { h.take(c) }
        h.send(m[0], .raiseHand)
        for c in [m[0], m[1], f, co] {
            XCTAssertTrue(h.events(c).contains { $0.type == "member-updated" }, "\(c) not told of the hand")
        }
        for c in [m[2], m[3], m[4], m[5]] { XCTAssertTrue(h.events(c).isEmpty, "\(c) saw another room's hand") }
        h.send(m[2], .requestHelp)
        XCTAssertTrue(h.events(f).contains { $0.type == "help-requested" })
        XCTAssertTrue(h.events(co).contains { $0.type == "help-requested" }, "staff are told wherever they are")
        XCTAssertFalse(h.events(m[4]).contains { $0.type == "help-requested" })
    }

    // MARK: Moves, visits, broadcast

    func testStaffMoveMembersAndAssignALateArrival() {
        var (h, f, co, m) = group()
        openPairs(&h, f)
        let late = h.join("late", .participant)
        h.send(f, .admit(h.pid("late")))
        XCTAssertNil(breakout(h, "late"), "a member admitted late arrives in the main room")
        h.send(co, .moveToBreakout(h.pid("late"), BreakoutID(2)))
        XCTAssertEqual(h.events(co).last?.type, "ack")
        XCTAssertEqual(breakout(h, "late"), BreakoutID(2))
        XCTAssertEqual(moves(h, late).last?.0?.id, BreakoutID(2))
        XCTAssertEqual(Set(moves(h, late).last!.1.members.map(\.id)), Set([h.pid("u2"), h.pid("u3"), h.pid("late")]))
        XCTAssertTrue(
            h.events(m[2]).contains {
                if case .memberJoined(let v) = $0 { return v.id == h.pid("late") } else { return false }
            })
        h.send(co, .moveToBreakout(h.pid("u0"), nil))
        XCTAssertNil(breakout(h, "u0"))
        XCTAssertNil(moves(h, m[0]).last?.0, "moved back to the main room")
        XCTAssertEqual(h.audits.last { $0.action == "breakout-move" }?.reason, "b1->main")
        h.send(co, .moveToBreakout(h.pid("fac"), BreakoutID(1)))
        XCTAssertEqual(h.lastError(co), .invalidTarget, "staff move themselves (visit)")
    }

    func testStaffVisitAndSeeEveryRoster() {
        var (h, f, co, m) = group()
        openPairs(&h, f)
        for c in [f, co] + m { h.take(c) }
        h.send(co, .visitBreakout(BreakoutID(2)))
        XCTAssertTrue(
            h.events(m[2]).contains {
                if case .memberJoined(let v) = $0 { return v.id == h.pid("co") } else { return false }
            })
        XCTAssertTrue(h.events(m[0]).isEmpty, "pair 1 learns nothing of a visit to pair 2")
        guard let (ref, snap) = moves(h, co).last else { return XCTFail("no moved") }
        XCTAssertEqual(ref?.id, BreakoutID(2))
        XCTAssertEqual(snap.members.count, 8, "staff see everyone admitted")
        XCTAssertEqual(snap.breakouts?.open.count, 3)
        XCTAssertEqual(h.audits.last { $0.action == "breakout-visit" }?.reason, "main->b2")
        h.send(co, .visitBreakout(BreakoutID(3)))
        XCTAssertTrue(
            h.events(m[2]).contains {
                if case .memberLeft(let id, .moved) = $0 { return id == h.pid("co") } else { return false }
            })
        XCTAssertTrue(
            h.events(m[4]).contains {
                if case .memberJoined(let v) = $0 { return v.id == h.pid("co") } else { return false }
            })
    }

    func testBroadcastReachesEveryRoomAndIsAuditedWithoutItsText() {
        var (h, f, co, m) = group()
        let w = h.join("w", .participant)
        openPairs(&h, f)
        for c in [f, co, w] + m { h.take(c) }
        h.send(co, .broadcastToBreakouts("Two minutes left"))
        for c in [f, co] + m {
            XCTAssertTrue(
                h.events(c).contains {
                    if case .breakoutBroadcast(_, _, "Two minutes left", _) = $0 { return true } else { return false }
                })
        }
        XCTAssertTrue(h.events(w).isEmpty)
        XCTAssertEqual(h.audits.last?.action, "breakout-broadcast")
        XCTAssertNil(h.audits.last?.reason)
    }

    // MARK: Pull-aside

    func testPullAsideTakesOneMemberAndTheStaffMemberAsideAndBack() {
        var (h, f, co, m) = group()
        openPairs(&h, f)
        for c in [f, co] + m { h.take(c) }
        h.send(co, .pullAside(h.pid("u2")), rid: "aside")
        guard case .ack(let ack)? = h.events(co).last, let aside = ack.breakout else {
            return XCTFail("no ack with breakout")
        }
        XCTAssertEqual(breakout(h, "u2"), aside)
        XCTAssertEqual(breakout(h, "co"), aside)
        XCTAssertEqual(moves(h, m[2]).last?.0?.kind, .pullAside)
        XCTAssertEqual(Set(moves(h, m[2]).last!.1.members.map(\.id)), Set([h.pid("u2"), h.pid("co")]))
        XCTAssertTrue(
            h.events(m[3]).contains {
                if case .memberLeft(let id, .moved) = $0 { return id == h.pid("u2") } else { return false }
            })
        XCTAssertTrue(h.events(m[0]).isEmpty, "the rest of the group is untouched")
        XCTAssertEqual(h.audits.first { $0.action == "pull-aside" }?.subject?.id, h.pid("u2"))
        h.send(co, .pullAside(h.pid("u2")))
        XCTAssertEqual(h.lastError(co), .invalidTarget, "already aside")
        // The time limit of the pairs does not end a check-in; closing it sends each back.
        h.send(co, .closeBreakout(aside))
        XCTAssertEqual(breakout(h, "u2"), BreakoutID(2), "back to the pair they came from")
        XCTAssertNil(breakout(h, "co"), "back to the main room")
        XCTAssertNil(h.room.breakouts.breakout(aside))
    }

    func testWhoeverAClosingBringsBackIsToldItIsClosed() {
        var (h, f, co, _) = group()
        openPairs(&h, f)
        h.send(co, .pullAside(h.pid("u2")))
        h.take(co)
        h.send(co, .closeBreakout(BreakoutID(4)))
        XCTAssertEqual(moves(h, co).last?.1.breakouts?.open.map(\.id), [1, 2, 3].map { BreakoutID($0) })
        h.send(co, .visitBreakout(BreakoutID(2)))
        h.take(co)
        h.send(f, .closeBreakouts)
        XCTAssertNil(moves(h, co).last?.1.breakouts, "nothing open, nothing planned: no staff view")
    }

    func testASpotlightInAnotherRoomIsNotShown() {
        var (h, f, _, m) = group()
        openPairs(&h, f)
        for c in [f] + m { h.take(c) }
        h.send(f, .spotlight(h.pid("u0")))
        func spotlight(_ c: ConnectionID) -> ParticipantID?? {
            h.events(c).compactMap { if case .roomUpdated(let s) = $0 { return s.spotlight } else { return nil } }.last
        }
        XCTAssertEqual(spotlight(m[1]), h.pid("u0"), "the pair sees it")
        XCTAssertEqual(spotlight(f), h.pid("u0"), "staff see it")
        XCTAssertEqual(spotlight(m[2]), .some(nil), "another pair is told the room state, without the id")
        h.send(f, .moveToBreakout(h.pid("u2"), BreakoutID(1)))
        XCTAssertEqual(moves(h, m[2]).last?.1.room.spotlight, h.pid("u0"), "in the spotlit member's room now")
        // The spotlit member moves back: the main room sees the spotlight, pair 1 no longer.
        h.take(m[1])
        h.take(m[4])
        h.send(f, .moveToBreakout(h.pid("u0"), nil))
        XCTAssertEqual(spotlight(m[4]), .some(nil), "u4 (pair 3) is told, and still does not see it")
        XCTAssertEqual(spotlight(m[1]), .some(nil), "pair 1 lost it")
    }

    func testPullAsideOutlivesTheTimeLimitButNotCloseAll() {
        var (h, f, co, _) = group()
        openPairs(&h, f, duration: 600)
        h.send(co, .pullAside(h.pid("u0")))
        h.advance(600_000)
        h.fireTimers()
        XCTAssertFalse(h.room.breakouts.plannedOpen)
        XCTAssertEqual(h.room.breakouts.open.map(\.kind), [.pullAside])
        XCTAssertNotNil(breakout(h, "u0"))
        XCTAssertNil(breakout(h, "u2"))
        h.send(f, .closeBreakouts)
        XCTAssertTrue(h.room.seats.values.allSatisfy { $0.breakout == nil }, "after close-all nobody is in a breakout")
        XCTAssertEqual(h.room.breakouts.open, [])
    }

    // MARK: Time limit

    func testTimeLimitWarnsThenBringsEveryoneBack() {
        var (h, f, co, m) = group()
        let w = h.join("w", .participant)
        openPairs(&h, f, duration: 300, warning: 60)
        let opened = h.now
        XCTAssertEqual(h.room.breakouts.endsAt, opened + 300_000)
        XCTAssertEqual(moves(h, m[0]).last?.0?.endsAt, opened + 300_000)
        for c in [f, co, w] + m { h.take(c) }
        h.send(f, .moveToBreakout(h.pid("u5"), nil))
        h.take(m[5])
        h.advance(240_000)
        h.fireTimers()
        for c in [f, co, m[0], m[3]] {
            XCTAssertTrue(h.events(c).contains(.breakoutsEnding(endsAt: opened + 300_000)), "\(c) not warned")
        }
        XCTAssertFalse(h.events(m[5]).contains { $0.type == "breakouts-ending" }, "the main room is not warned")
        XCTAssertTrue(h.events(w).isEmpty)
        h.advance(60_000)
        h.fireTimers()
        XCTAssertTrue(h.room.seats.values.allSatisfy { $0.breakout == nil })
        XCTAssertFalse(h.room.breakouts.plannedOpen)
        XCTAssertNil(h.room.breakouts.endsAt)
        XCTAssertNil(moves(h, m[0]).last?.0)
        XCTAssertEqual(moves(h, m[0]).last?.1.members.count, 8, "back with the whole main room")
        XCTAssertEqual(h.audits.last { $0.action == "breakouts-close" }?.reason, "time-limit")
        XCTAssertNil(h.audits.last { $0.action == "breakouts-close" }?.actor)
        XCTAssertTrue(h.events(w).isEmpty, "waiting members learn nothing")
    }

    func testClosingEarlyCancelsTheTimers() {
        var (h, f, _, _) = group()
        openPairs(&h, f, duration: 300)
        XCTAssertEqual(h.timers.keys.filter { $0.kind == .breakoutsEnd || $0.kind == .breakoutsWarning }.count, 2)
        h.send(f, .closeBreakout(BreakoutID(1)))
        h.send(f, .closeBreakout(BreakoutID(2)))
        XCTAssertNotNil(h.timers[TimerID(room: h.roomID, kind: .breakoutsEnd)], "one pair still open")
        h.send(f, .closeBreakout(BreakoutID(3)))
        XCTAssertNil(h.timers[TimerID(room: h.roomID, kind: .breakoutsEnd)])
        XCTAssertNil(h.timers[TimerID(room: h.roomID, kind: .breakoutsWarning)])
        // A stale timer firing later changes nothing.
        let before = h.room.breakouts
        h.input(.timerFired(TimerID(room: h.roomID, kind: .breakoutsEnd)))
        XCTAssertEqual(h.room.breakouts, before)
    }

    // MARK: Drops, resumes, the end

    func testAMemberWhoDropsKeepsTheirBreakoutAndResumesWithTheMissedEvents() {
        var (h, f, _, m) = group()
        openPairs(&h, f)
        let seq = h.room.seq
        h.drop(m[0])
        XCTAssertEqual(breakout(h, "u0"), BreakoutID(1), "a held seat keeps its breakout")
        XCTAssertEqual(staffView(h, f)?.open.first?.members.contains(h.pid("u0")), true)
        h.send(m[1], .chat(to: .room, text: "are you there?"))
        h.send(m[2], .chat(to: .room, text: "other pair"))
        let c = ConnectionID(900)
        h.resume(c, "u0", lastSeq: seq)
        guard case .resumed(let r)? = h.events(c).first else { return XCTFail("not resumed") }
        let replayed = h.events(c).dropFirst().prefix(r.replayed)
        XCTAssertTrue(
            replayed.contains {
                if case .chat(let msg) = $0 { return msg.text == "are you there?" } else { return false }
            })
        XCTAssertFalse(
            replayed.contains { if case .chat(let msg) = $0 { return msg.text == "other pair" } else { return false } })
        XCTAssertEqual(breakout(h, "u0"), BreakoutID(1))
        XCTAssertEqual(r.you.breakout, BreakoutID(1), "a resume without a snapshot still says where you are")
        XCTAssertNil(r.room)
    }

    func testAHeldSeatMovedByCloseAllResumesIntoTheMainRoomWithTheMove() {
        var (h, f, _, m) = group()
        openPairs(&h, f)
        let seq = h.room.seq
        h.drop(m[0])
        h.send(f, .closeBreakouts)
        let c = ConnectionID(900)
        h.resume(c, "u0", lastSeq: seq)
        XCTAssertNil(breakout(h, "u0"))
        XCTAssertTrue(
            h.events(c).contains { if case .moved(nil, _) = $0 { return true } else { return false } },
            "the move is replayed")
    }

    func testEndEndsEveryBreakoutAtOnce() {
        var (h, f, _, _) = group()
        openPairs(&h, f, duration: 600)
        h.advance(1000)
        h.send(f, .end)
        XCTAssertTrue(h.room.isEnded)
        XCTAssertEqual(h.room.breakouts.open, [])
        XCTAssertTrue(h.timers.keys.allSatisfy { $0.kind != .breakoutsEnd && $0.kind != .breakoutsWarning })
        let u0 = h.attendance.filter { $0.member.userID == UserID("u0") }.map(\.kind)
        XCTAssertEqual(u0.suffix(2), [.exitBreakout, .exitRoom])
    }

    func testFacilitatorDropToWaitingRoomEmptiesTheBreakoutsAndTheTimeLimitStillRuns() {
        var (h, f, co, m) = group { $0.facilitatorDrop = .waitingRoom }
        openPairs(&h, f, duration: 60)
        h.send(co, .leave)
        h.drop(f)
        XCTAssertTrue(
            h.room.seats.values.filter { !$0.isStaff }.allSatisfy { $0.placement == .waiting && $0.breakout == nil })
        XCTAssertTrue(h.room.breakouts.plannedOpen, "the breakouts stay open, empty")
        XCTAssertTrue(h.events(m[0]).contains { $0.type == "waiting" })
        h.advance(60_000)
        h.fireTimers()
        XCTAssertFalse(h.room.breakouts.plannedOpen, "and return on time")
    }

    // MARK: Attendance

    func testBreakoutTimeIsRoomTimeAndTheLedgerSaysWhere() {
        var (h, f, co, m) = group()
        h.advance(60_000)
        openPairs(&h, f)
        h.advance(120_000)
        h.send(co, .moveToBreakout(h.pid("u0"), BreakoutID(2)))
        h.advance(180_000)
        h.send(co, .pullAside(h.pid("u0")))
        h.advance(30_000)
        h.send(f, .closeBreakouts)
        h.advance(10_000)
        h.drop(m[1])
        h.advance(5_000)
        h.send(f, .end)
        let ledger = AttendanceLedger(records: h.attendance, until: h.now)
        guard let u0 = ledger.members.first(where: { $0.userID == UserID("u0") }) else { return XCTFail() }
        XCTAssertEqual(u0.inRoom.count, 1, "one unbroken interval in the room")
        XCTAssertEqual(
            u0.breakoutMilliseconds, [BreakoutID(1): 120_000, BreakoutID(2): 180_000, BreakoutID(4): 30_000])
        XCTAssertEqual(ledger.breakoutNames[BreakoutID(1)], "Pair 1")
        XCTAssertEqual(ledger.breakoutNames[BreakoutID(4)], "Pull-aside")
        let u1 = ledger.members.first { $0.userID == UserID("u1") }!
        XCTAssertEqual(u1.breakoutMilliseconds, [BreakoutID(1): 330_000])
        XCTAssertEqual(u1.inRoom.last?.end, h.now + -5_000, "left when the connection dropped (held to the end)")
        XCTAssertEqual(AttendanceLedger(auditRecords: h.audits, until: h.now).members, ledger.members, "audit agrees")
        _ = m
    }

    func testBreakoutTimeOfASeatThatExpiredEndsWhenItDropped() {
        var (h, f, _, m) = group { $0.graceMilliseconds = 10_000 }
        openPairs(&h, f)
        h.advance(20_000)
        h.drop(m[0])
        h.advance(5_000)
        h.send(f, .closeBreakouts)
        h.advance(10_000)
        h.fireTimers()
        XCTAssertNil(h.room.seat(ofUser: UserID("u0")))
        let ledger = AttendanceLedger(records: h.attendance, until: h.now)
        let u0 = ledger.members.first { $0.userID == UserID("u0") }!
        XCTAssertEqual(u0.breakoutMilliseconds, [BreakoutID(1): 20_000], "clipped to the time in the room")
        XCTAssertEqual(AttendanceLedger(auditRecords: h.audits, until: h.now).members, ledger.members)
    }
}
