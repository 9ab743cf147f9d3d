"""Breakout rooms end to end (docs/protocol.md §10, issue 13), over real TLS on loopback.

A facilitator, a co-facilitator and six members: three pairs planned by hand and opened with a
3 s time limit; signalling and chat inside a pair reach nobody else; the warning and the return
at the limit. Then the same pairs without a limit (what does not need the clock does not race
it): a staff broadcast, the refusals across breakouts, a pull-aside and its close, a drop and
resume inside a pair, and staff close all. Attendance per member against the times this test
measured; the refusals; a SIGKILL while breakouts are open.
"""
import asyncio
import json
import math
import signal
import time

import jsonschema
from conftest import run
from hearth import SCHEMA, SERVER_VALIDATOR, Client, Server
from test_records import hearthd

# The events only breakouts produce: a waiting member must never get one.
BREAKOUT_EVENTS = {"moved", "breakouts", "breakouts-ending", "breakout-broadcast"}
BREAKOUT_ERRORS = {"unknown-breakout", "no-breakout-plan", "breakouts-open", "breakouts-closed", "other-breakout"}
# Server and client read the same clock; the server's `at` is whole milliseconds.
SLACK_MS = 5


def server_types():
    return {d["properties"]["type"]["const"] for name, d in SCHEMA["$defs"].items()
            if name.startswith("server.") and "const" in d.get("properties", {}).get("type", {})}


class BreakoutTolerantValidator:
    """docs/protocol.schema.json gains the breakout messages in a parallel change. Until it names
    `moved`, a message about breakouts that the schema refuses is let through; every other message
    is validated as usual. Once the schema has them, everything is validated strictly."""

    def validate(self, message):
        try:
            SERVER_VALIDATOR.validate(message)
        except jsonschema.ValidationError:
            text = json.dumps(message)
            if '"breakout' not in text and '"moved"' not in text and message.get("code") not in BREAKOUT_ERRORS:
                raise


class BClient(Client):
    validator = SERVER_VALIDATOR if "moved" in server_types() else BreakoutTolerantValidator()


def now_ms():
    return int(time.time() * 1000)


def ids(members):
    return sorted(m["id"] for m in members)


async def resume(server, room, client):
    """A new connection that resumes `client`'s seat from the last event it read."""
    back = await BClient.connect(server, room, client.name)
    await back.send("resume", secret=client.welcome["resumeSecret"], lastSeq=client.last_seq)
    back.welcome = client.welcome
    back.last_seq = client.last_seq
    resumed = await back.expect("resumed")
    back.welcome = {**client.welcome, "resumeSecret": resumed["resumeSecret"]}
    return back, resumed


async def refused(client, type, **fields):
    """Sends a command that must be refused; returns the error's code."""
    rid = await client.send(type, **fields)
    reply = await client.expect(lambda m: m.get("rid") == rid)
    assert reply["type"] == "error", reply
    return reply["code"]


async def admit_group(server, room, n, **claims):
    """The facilitator, the co-facilitator and `n` admitted members, with when each entered the
    room as this side measured it: (sent, confirmed) in ms, the server's instant lies between."""
    entered = {}
    t0 = now_ms()
    fac = await BClient.join(server, room, "facilitator", "F", sub=f"{room}-fac", **claims)
    entered[f"{room}-fac"] = (t0, now_ms())
    t0 = now_ms()
    cof = await BClient.join(server, room, "cofacilitator", "C", sub=f"{room}-cof", **claims)
    entered[f"{room}-cof"] = (t0, now_ms())
    assert cof.welcome["you"]["placement"] == "room"
    members = []
    for i in range(n):
        m = await BClient.join(server, room, "participant", f"M{i}", sub=f"{room}-m{i}", **claims)
        t0 = now_ms()
        await fac.request("admit", member=m.welcome["you"]["id"])
        await m.expect("admitted")
        entered[f"{room}-m{i}"] = (t0, now_ms())
        members.append(m)
    for c in [fac, cof] + members:
        await c.drain(0.2)
    return fac, cof, members, entered


async def settle(clients, quiet=0.1):
    """Reads what is on its way to every client (in parallel, bounded) and sets it aside: the
    next expectations then match events of the next step only. Everything stays in `seen`."""
    await asyncio.gather(*(c.drain(quiet) for c in clients))
    for c in clients:
        c.pending.clear()


async def roster_after(client, moved, expected):
    """The roster a member ends up with after `moved`: its snapshot, then the members moved
    after it in the same step (members move one by one, so those come as `member-joined`)."""
    roster = set(ids(moved["room"]["members"]))
    assert roster <= set(expected), (client.name, roster, expected)
    while roster != set(expected):
        joined = await client.expect(lambda e: e["type"] == "member-joined" and e["member"]["id"] not in roster)
        assert joined["member"]["id"] in expected, joined
        roster.add(joined["member"]["id"])
    return sorted(roster)


def pid(client):
    return client.welcome["you"]["id"]


def test_three_pairs_a_pull_aside_a_drop_and_the_time_limit(server):
    room = "bo-pairs"
    run(pairs_session(server, room), timeout=60)


async def pairs_session(server, room):
    fac, cof, m, entered = await admit_group(server, room, 6)
    staff = [fac, cof]
    # A member who stays in the waiting room all along.
    waiting = await BClient.join(server, room, "participant", "W", sub=f"{room}-w")
    assert waiting.welcome["you"]["placement"] == "waiting"
    everyone_ids = sorted([pid(fac), pid(cof)] + [pid(x) for x in m])

    # Refusals first: they change nothing.
    assert await refused(m[0], "breakouts-plan", breakouts=[{"name": "Mine", "members": [pid(m[1])]}]) == "forbidden"
    assert await refused(fac, "breakouts-plan", breakouts=[{"name": "A", "members": [pid(m[0]), pid(cof)]}]) \
        == "invalid-target"
    assert await refused(fac, "breakouts-open", durationSeconds=3) == "no-breakout-plan"

    # Three pairs by hand.
    pairs = [[m[0], m[1]], [m[2], m[3]], [m[4], m[5]]]
    names = ["Pair A", "Pair B", "Pair C"]
    await fac.request("breakouts-plan", breakouts=[{"name": n, "members": [pid(a), pid(b)]}
                                                  for n, (a, b) in zip(names, pairs)])
    for s in staff:
        plan = (await s.expect("breakouts"))["breakouts"]
        assert plan["open"] == [] and "endsAt" not in plan
        assert [(b["name"], b["kind"], b["members"]) for b in plan["plan"]] == \
            [(n, "planned", [pid(a), pid(b)]) for n, (a, b) in zip(names, pairs)]
    bid = [b["id"] for b in plan["plan"]]
    assert len(set(bid)) == 3

    # Open for 3 s, warned 1 s before the end.
    open_sent = now_ms()
    await fac.request("breakouts-open", durationSeconds=3, warningSeconds=1)
    open_acked = now_ms()
    ends_at = None
    for k, pair in enumerate(pairs):
        for x in pair:
            moved = await x.expect("moved")
            ref = moved["breakout"]
            assert (ref["id"], ref["name"], ref["kind"]) == (bid[k], names[k], "planned"), moved
            ends_at = ends_at or ref["endsAt"]
            assert ref["endsAt"] == ends_at
            # The new roster: the pair only (staff in the main room are out of sight). Members
            # move one by one: whoever moves first learns of the partner by `member-joined`.
            await roster_after(x, moved, [pid(y) for y in pair])
            assert moved["room"]["breakout"] == ref
            assert "seq" in moved, "moved is a logged event"
    opened_at = ends_at - 3000
    assert open_sent - SLACK_MS <= opened_at <= open_acked + SLACK_MS
    for s in staff:
        view = (await s.expect(lambda e: e["type"] == "breakouts" and e["breakouts"]["open"]))["breakouts"]
        assert view["plan"] == [] and view["endsAt"] == ends_at
        assert [(b["id"], b["kind"], b["members"]) for b in view["open"]] == \
            [(bid[k], "planned", sorted(pid(y) for y in pair)) for k, pair in enumerate(pairs)]
        for k, pair in enumerate(pairs):
            for x in pair:
                await s.expect(lambda e: e["type"] == "member-updated" and e["member"]["id"] == pid(x)
                               and e["member"].get("breakout") == bid[k])

    # Inside the 3 s: signalling inside pair A, offer, answer and ICE both ways, payloads intact.
    a0, a1 = pairs[0]
    offer = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}
    answer = {"type": "answer", "sdp": "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\n"}
    ice = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0"}
    for sender, receiver, kind, payload in [(a0, a1, "offer", offer), (a1, a0, "answer", answer),
                                            (a0, a1, "ice", ice), (a1, a0, "ice", ice)]:
        await sender.request("signal", to=pid(receiver), kind=kind, payload=payload)
        got = await receiver.expect("signal")
        assert (got["from"], got["kind"], got["payload"]) == (pid(sender), kind, payload)

    # Chat inside pairs A and B: to the pair, marked with its breakout.
    said = {}  # text -> the pair it was said in
    for k, (sender, text) in enumerate([(a0, "pair A: I feel unheard when"), (m[2], "pair B: practise DEAR MAN")]):
        await sender.request("chat", to="room", text=text)
        said[text] = k
        for x in pairs[k]:
            chat = (await x.expect(lambda e: e["type"] == "chat" and e["message"]["text"] == text))["message"]
            assert chat.get("breakout") == bid[k] and chat["from"] == pid(sender), (chat, now_ms() - ends_at)
    assert now_ms() < ends_at - 1000, "the steps above must fit before the warning; the machine is too slow"

    # The warning, 1 s before the end, to the pairs and staff.
    for c in staff + m:
        warned = await c.expect("breakouts-ending", timeout=4)
        assert warned["endsAt"] == ends_at
        assert now_ms() >= ends_at - 1000 - SLACK_MS

    # At the limit everyone returns by themselves, with the main room's roster.
    returned_by = None
    for x in m:
        moved = await x.expect("moved", timeout=4)
        returned_by = returned_by or now_ms()
        assert moved["breakout"] is None and "breakout" not in moved["room"]
        await roster_after(x, moved, everyone_ids)
        # The snapshot's chat: only what was said where this member was.
        k = next(k for k, pair in enumerate(pairs) if x in pair)
        for message in moved["room"]["chat"]:
            assert message.get("breakout") in (None, bid[k]), (x.name, message)
    assert returned_by >= ends_at - SLACK_MS
    for s in staff:
        await s.expect(lambda e: e["type"] == "breakouts" and e["breakouts"]["open"] == []
                       and "endsAt" not in e["breakouts"])
    await settle(staff + m)

    # The same pairs again, without a time limit (nothing here may race the clock).
    await fac.request("breakouts-plan", breakouts=[{"name": n, "members": [pid(a), pid(b)]}
                                                  for n, (a, b) in zip(names, pairs)])
    bid2 = [b["id"] for b in (await fac.expect("breakouts"))["breakouts"]["plan"]]
    assert not set(bid2) & set(bid), "breakout ids are never reused in a room"
    open2_sent = now_ms()
    await fac.request("breakouts-open")
    open2_acked = now_ms()
    for k, pair in enumerate(pairs):
        for x in pair:
            moved = await x.expect("moved")
            assert moved["breakout"] == {"id": bid2[k], "name": names[k], "kind": "planned"}, moved
            await roster_after(x, moved, [pid(y) for y in pair])
    await settle(staff + m)

    # Staff broadcast: every admitted member, wherever they are.
    await fac.request("breakout-broadcast", text="Two minutes, then switch roles")
    for c in staff + m:
        heard = await c.expect("breakout-broadcast")
        assert (heard["from"], heard["fromAlias"], heard["text"]) == (pid(fac), "F", "Two minutes, then switch roles")

    # Nothing crosses: another pair's member is not in the roster; staff elsewhere are told where.
    assert await refused(a0, "signal", to=pid(m[2]), kind="offer", payload=offer) == "unknown-member"
    assert await refused(a0, "chat", to=pid(m[2]), text="psst") == "unknown-member"
    assert await refused(fac, "signal", to=pid(a0), kind="offer", payload=offer) == "other-breakout"
    await settle(staff + m)

    # Pull-aside: the co-facilitator takes m4 out of pair C into a private breakout.
    m4, m5 = pairs[2]
    aside_sent = now_ms()
    ack = await cof.request("pull-aside", member=pid(m4))
    aside_acked = now_ms()
    aside = ack["breakout"]
    assert aside not in bid + bid2
    moved = await m4.expect("moved")
    assert (moved["breakout"]["id"], moved["breakout"]["kind"]) == (aside, "pull-aside")
    assert "endsAt" not in moved["breakout"], "a pull-aside has no time limit"
    # m4's roster: the two of them (whichever of the two moved first).
    assert await roster_after(m4, moved, [pid(m4), pid(cof)]) == sorted([pid(m4), pid(cof)])
    # Staff see every member wherever they are; each member says where.
    moved = await cof.expect("moved")
    assert moved["breakout"] == {"id": aside, "name": "Pull-aside", "kind": "pull-aside"}
    assert ids(moved["room"]["members"]) == everyone_ids
    assert moved["room"]["you"]["breakout"] == aside
    assert {x["id"]: x.get("breakout") for x in moved["room"]["members"]} == \
        {**{pid(x): bid2[k] for k, pair in enumerate(pairs) for x in pair}, pid(m4): aside, pid(cof): aside,
         pid(fac): None}
    left = await m5.expect("member-left")
    assert (left["member"], left["reason"]) == (pid(m4), "moved")
    await fac.expect(lambda e: e["type"] == "member-updated" and e["member"]["id"] == pid(m4)
                     and e["member"].get("breakout") == aside)
    # Closing it brings both back: m4 to pair C, the co-facilitator to the main room.
    close_sent = now_ms()
    await cof.request("breakout-close", breakout=aside)
    close_acked = now_ms()
    moved = await m4.expect("moved")
    assert moved["breakout"] == {"id": bid2[2], "name": "Pair C", "kind": "planned"}
    assert ids(moved["room"]["members"]) == sorted([pid(m4), pid(m5)])
    moved = await cof.expect("moved")
    assert moved["breakout"] is None and ids(moved["room"]["members"]) == everyone_ids
    joined = await m5.expect("member-joined")
    assert joined["member"]["id"] == pid(m4)
    await settle(staff + m)

    # A drop inside pair B holds the seat in its breakout, and resume replays what it missed.
    b0, b1 = pairs[1]
    b0.ws.transport.abort()
    dropped = await fac.expect(lambda e: e["type"] == "member-updated" and e["member"]["id"] == pid(b0)
                               and not e["member"]["connected"])
    assert dropped["member"]["breakout"] == bid2[1]
    await b1.request("chat", to="room", text="pair B: are you still there?")
    said["pair B: are you still there?"] = 1
    back, resumed = await resume(server, room, b0)
    assert resumed["you"]["placement"] == "room" and not resumed["gap"]
    replayed = await back.expect(lambda e: e["type"] == "chat")
    assert (replayed["message"]["text"], replayed["message"]["breakout"]) == ("pair B: are you still there?", bid2[1])
    for s in staff:
        again = await s.expect(lambda e: e["type"] == "member-updated" and e["member"]["id"] == pid(b0)
                               and e["member"]["connected"])
        assert again["member"].get("breakout") == bid2[1], "the staff view shows the member still in pair B"
    await back.request("chat", to="room", text="pair B: back, sorry")
    said["pair B: back, sorry"] = 1
    chat = await b1.expect(lambda e: e["type"] == "chat" and e["message"]["text"] == "pair B: back, sorry")
    assert chat["message"]["breakout"] == bid2[1]
    old_b0, pairs[1][0], m[2] = b0, back, back
    # Staff close them all: everyone returns at once.
    close2_sent = now_ms()
    await fac.request("breakouts-close")
    close2_acked = now_ms()
    for x in m:
        moved = await x.expect("moved")
        assert moved["breakout"] is None
        await roster_after(x, moved, everyone_ids)

    # Nothing crossed: drain everyone, then look at everything each one ever received.
    for c in staff + m + [waiting]:
        await c.drain(0.3)
    seen = {c.name: list(c.seen) for c in staff + m + [waiting]}
    seen[old_b0.name] = old_b0.seen + back.seen
    partner = {pid(x): pid(y) for a, b in pairs for x, y in [(a, b), (b, a)]}
    where = {pid(x): k for k, pair in enumerate(pairs) for x in pair}
    for c in staff + m + [waiting]:
        me = pid(c) if c is not waiting else None
        for e in seen[c.name]:
            if e["type"] == "signal":
                assert partner.get(me) == e["from"], (c.name, e)
            if e["type"] == "chat" and e["message"]["text"] in said:
                k = said[e["message"]["text"]]
                assert where.get(me) == k and e["message"]["breakout"] in (bid[k], bid2[k]), (c.name, e)
        texts = [e["message"]["text"] for e in seen[c.name] if e["type"] == "chat"]
        for text, k in said.items():
            if where.get(me) == k:
                assert text in texts, (c.name, text)

    # The waiting member learned nothing about any of it.
    assert all(e["type"] not in BREAKOUT_EVENTS for e in waiting.seen), waiting.seen
    assert "breakout" not in json.dumps(waiting.seen) and "moved" not in json.dumps(waiting.seen)

    # The end, then attendance against the times measured here.
    await fac.request("end")
    ended_at = (await fac.expect("ended"))["at"]
    assert ended_at == (await waiting.expect("ended"))["at"]

    report = json.loads(hearthd(server, "attendance", "--room", room, "--format", "json").stdout)
    assert report["matchesAuditTrail"] is True and report["endedAt"] == ended_at
    assert report["participantCount"] == 6
    by_user = {r["userId"]: r for r in report["members"]}
    for user, (sent, confirmed) in entered.items():
        r = by_user[user]
        assert r["intervals"] == 1, (user, r)  # the drop inside pair B was resumed in time: one interval
        assert sent - SLACK_MS <= r["firstAdmitted"] <= confirmed + SLACK_MS, (user, r, sent, confirmed)
        assert r["lastLeft"] == ended_at
        # Room time is the time from admission to the end: time in a breakout is time in the session.
        assert r["msInRoom"] == ended_at - r["firstAdmitted"], (user, r)
        assert ended_at - confirmed - SLACK_MS <= r["msInRoom"] <= ended_at - sent + SLACK_MS
        # Two decimals, halves rounded up (docs/api.md): 8,100 ms is 0.135 minutes, reported 0.14.
        assert r["minutesInRoom"] == math.floor(r["msInRoom"] / 600 + 0.5) / 100, (user, r)
    assert by_user[f"{room}-w"]["firstAdmitted"] is None and by_user[f"{room}-w"]["msInRoom"] == 0

    # Which breakout each member was in, when: the attendance records (the report's breakout
    # columns are not pinned here), against the bounds measured above.
    rows = server.wait_records("attendance", lambda rows: any(r["kind"] == "exit-room" and r["room"] == room
                                                               for r in rows))
    spent = {}
    for r in rows:
        if r["room"] != room or r["kind"] not in ("enter-breakout", "exit-breakout"):
            continue
        intervals = spent.setdefault(r["member_user"], [])
        if r["kind"] == "enter-breakout":
            intervals.append([f"b{r['breakout']}", r["breakout_name"], r["at"], None])
        else:
            assert intervals and intervals[-1][0] == f"b{r['breakout']}" and intervals[-1][3] is None, (r, intervals)
            intervals[-1][3] = r["at"]
    assert f"{room}-fac" not in spent and f"{room}-w" not in spent
    returned_at = spent[f"{room}-m0"][0][3]
    assert ends_at <= returned_at <= returned_by + SLACK_MS
    aside_at, closed_at = spent[f"{room}-cof"][0][2:]
    assert aside_sent - SLACK_MS <= aside_at <= aside_acked + SLACK_MS
    assert close_sent - SLACK_MS <= closed_at <= close_acked + SLACK_MS
    opened2_at, closed2_at = spent[f"{room}-m0"][1][2:]
    assert open2_sent - SLACK_MS <= opened2_at <= open2_acked + SLACK_MS
    assert close2_sent - SLACK_MS <= closed2_at <= close2_acked + SLACK_MS
    expected = {f"{room}-cof": [[aside, "Pull-aside", aside_at, closed_at]]}
    for k, pair in enumerate(pairs):
        for i in range(2):
            expected[f"{room}-m{2 * k + i}"] = [[bid[k], names[k], opened_at, returned_at],
                                                [bid2[k], names[k], opened2_at, closed2_at]]
    expected[f"{room}-m4"][1:] = [[bid2[2], "Pair C", opened2_at, aside_at], [aside, "Pull-aside", aside_at, closed_at],
                                  [bid2[2], "Pair C", closed_at, closed2_at]]
    assert spent == expected
    # Hand-computed breakout time per member: 3 s for the first opening (plus the timer's firing
    # delay) and the second opening's length (m4's pull-aside inside it); the co-facilitator's the
    # pull-aside alone. All of it within the member's room time.
    for user, intervals in spent.items():
        total = sum(end - start for _, _, start, end in intervals)
        if user == f"{room}-cof":
            assert close_sent - aside_acked - SLACK_MS <= total <= close_acked - aside_sent + SLACK_MS
        else:
            low = 3000 + close2_sent - open2_acked - SLACK_MS
            high = returned_by - opened_at + close2_acked - open2_sent + SLACK_MS
            assert low <= total <= high, (user, total, low, high)
        assert total <= by_user[user]["msInRoom"]

    # The audit trail has every step, with actor and subject.
    audit = [r for r in server.records("audit") if r["room"] == room]
    actions = [r["action"] for r in audit]
    for action in ["breakouts-plan", "breakouts-open", "breakout-broadcast", "breakout-move", "breakout-visit",
                   "pull-aside", "breakout-close", "breakouts-close"]:
        assert action in actions, action
    assert any(r["action"] == "breakouts-plan" and r["outcome"] == "refused" and r["code"] == "forbidden"
               for r in audit), "the member's refused plan is audited"
    assert any(r["action"] == "breakouts-close" and r["reason"] == "time-limit" and r["actor_user"] is None
               for r in audit)
    assert any(r["action"] == "breakouts-close" and r["actor_user"] == f"{room}-fac" for r in audit)
    aside_row = next(r for r in audit if r["action"] == "pull-aside")
    assert (aside_row["actor_user"], aside_row["subject_user"]) == (f"{room}-cof", f"{room}-m4")
    assert "pair A: I feel unheard" not in json.dumps(audit)


def test_sigkill_while_breakouts_are_open_everyone_resumes_in_their_breakout():
    server = Server(rooms={"graceSeconds": 30})
    room = "bo-crash"
    try:
        async def before():
            fac, cof, m, _ = await admit_group(server, room, 4)
            await fac.request("breakouts-plan", breakouts=[{"name": "Pair A", "members": [pid(m[0]), pid(m[1])]},
                                                           {"name": "Pair B", "members": [pid(m[2]), pid(m[3])]}])
            await fac.request("breakouts-open", durationSeconds=10, warningSeconds=0)
            for x in m:
                await x.expect("moved")
            view = (await fac.expect(lambda e: e["type"] == "breakouts" and e["breakouts"]["open"]))["breakouts"]
            await m[0].request("chat", to="room", text="before the crash")
            await m[1].expect("chat")
            for c in [fac, cof] + m:
                await c.drain(0.2)
            return fac, cof, m, view

        fac, cof, m, view = asyncio.run(asyncio.wait_for(before(), 30))
        server.process.send_signal(signal.SIGKILL)
        assert server.process.wait(timeout=10) == -signal.SIGKILL
        server.start()

        async def after():
            back = {}
            for c in [fac, cof] + m:
                client, resumed = await resume(server, room, c)
                assert resumed["you"]["placement"] == "room"
                back[c.name] = client
            f2, m0, m1, m2, m3 = (back[c.name] for c in [fac] + m)
            # Staff see the same breakouts, the same members in them and the same end.
            fresh = await BClient.join(server, room, "facilitator", "F", sub=f"{room}-fac")
            assert fresh.welcome["room"]["breakouts"] == view
            assert await f2.closed() == 4005  # taken over by the fresh connection
            staff_members = {x["id"]: x.get("breakout") for x in fresh.welcome["room"]["members"]}
            pair_a, pair_b = view["open"][0]["id"], view["open"][1]["id"]
            assert [staff_members[pid(x)] for x in m] == [pair_a, pair_a, pair_b, pair_b]
            # A member's own view: still in pair B, with pair B's roster and chat only.
            again = await BClient.join(server, room, "participant", "M2", sub=f"{room}-m2")
            assert again.welcome["room"]["breakout"]["id"] == pair_b
            assert ids(again.welcome["room"]["members"]) == sorted([pid(m[2]), pid(m[3])])
            assert again.welcome["room"]["chat"] == []
            assert await m2.closed() == 4005
            # Chat still stays in its pair.
            await m0.request("chat", to="room", text="after the restart")
            chat = await m1.expect(lambda e: e["type"] == "chat" and e["message"]["text"] == "after the restart")
            assert chat["message"]["breakout"] == pair_a
            # The time limit survived the restart: everyone returns on time.
            for x in [m0, m1, again, m3]:
                moved = await x.expect("moved", timeout=view["endsAt"] / 1000 - time.time() + 5)
                assert moved["breakout"] is None
                assert now_ms() >= view["endsAt"] - SLACK_MS
            for x in [fresh, back[cof.name], m3, again]:
                await x.drain(0.3)
                assert all(e["message"]["text"] != "after the restart" for e in x.seen if e["type"] == "chat")
        asyncio.run(asyncio.wait_for(after(), 40))
    finally:
        server.stop(signal.SIGKILL)
