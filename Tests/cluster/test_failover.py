"""Failover of a room between the nodes of a cluster (issue 15; scale-out.md sections 5 and 9):
three hearthd behind HAProxy on one shared PostgreSQL, with 2-second node leases and HAProxy's
short health checks so that every step takes a second or two.

- SIGKILL the room's owner: every member resumes on another node through HAProxy with no gap and
  exactly the events it missed; every acknowledged chat is there; the ban and the single-use guest
  invitation still hold; the killed node, restarted, does not serve its stale copy of the room.
- SIGSTOP the owner until another node has claimed the room, then SIGCONT: the stale node closes
  its sessions for the room (1012) and acknowledges and writes nothing for it.
- SIGTERM (drain): the node gives its rooms up at once; members resume elsewhere with no gap.

Every wait is bounded; everything listens on loopback (PostgreSQL on 127.0.0.1, the nodes'
internal listeners on Unix sockets)."""
import asyncio
import json
import random
import signal
import time
import uuid
from types import SimpleNamespace

import pytest
import websockets
from conftest import run
from websockets.exceptions import InvalidHandshake
from cluster import HAProxy, Node, Postgres, admin_token
from hearth import Client, mint

LEASE = 2
ADMIN_SECRET = "cluster-admin-secret-0123456789-abcdef"
CONSENT = "2026-01"
#: What a client may meet while the cluster moves a room: a refused or reset connection (the
#: proxy has not yet seen a node die), or a close before any answer.
RETRYABLE = (OSError, asyncio.TimeoutError, InvalidHandshake, websockets.ConnectionClosed)


@pytest.fixture
def cluster():
    """A fresh PostgreSQL, nodes n1..n3 with `store: postgres` and HAProxy in front of them."""
    pg = Postgres()
    nodes, proxy = [], None
    try:
        for i in range(3):
            nodes.append(Node(name=f"n{i + 1}", store="postgres", postgres=pg, lease_seconds=LEASE,
                              admin={"keys": [{"secret": ADMIN_SECRET}]}, rooms={"graceSeconds": 30}))
        proxy = HAProxy(nodes)
        for node in nodes:
            print(f"{node.name}: {node.log_path}")
        print(f"haproxy: {proxy.dir}; postgres: {pg.data}")
        yield SimpleNamespace(pg=pg, nodes=nodes, proxy=proxy)
    finally:
        if proxy:
            proxy.stop()
        for node in nodes:
            node.stop(signal.SIGKILL)  # also ends a node left stopped (SIGSTOP)
        pg.stop()


def node_named(cluster, name):
    return next(node for node in cluster.nodes if node.name == name)


def owner_row(pg, room):
    """(node, epoch) of the room in hearth_room, or None."""
    rows = pg.query(f"SELECT node, epoch FROM hearth_room WHERE room = '{room}'")
    return (rows[0][0], int(rows[0][1])) if rows else None


def staff_view(proxy, room):
    """GET /api/v1/rooms/{room} through HAProxy (it reaches the room's owner)."""
    with proxy.https(f"/api/v1/rooms/{room}", {"Authorization": f"Bearer {admin_token(ADMIN_SECRET)}"}) as r:
        return json.loads(r.read())


async def admit(fac, member):
    """A waiting member consents and states a location; the facilitator admits them."""
    await member.request("consent", version=CONSENT)
    await member.request("location", text="Home")
    await fac.request("admit", member=member.welcome["you"]["id"])
    await member.expect("admitted")


async def attempt(target, room, name, kind, deadline, carry=None, **fields):
    """Connects to `target` (HAProxy or a node) and sends `kind` (hello or resume) until the answer
    is something else than server-busy (the room is still held by a node whose lease is live) or
    a failed connection, with a short backoff, until `deadline`. With `carry`, the new connection
    continues that client's history (its seen events and lastSeq). Returns the client, its
    first answer and how many connections it took."""
    tries, last = 0, None
    while True:
        tries += 1
        try:
            c = await Client.connect(target, room, name)
            if carry is not None:
                c.seen, c.last_seq, c.welcome = carry.seen, carry.last_seq, carry.welcome
            await c.send(kind, **fields)
            reply = await c.expect(lambda m: m["type"] in ("welcome", "resumed", "error"), timeout=5)
            if reply["type"] != "error" or reply["code"] != "server-busy":
                return c, reply, tries
            last = reply
            assert await c.closed(timeout=5) == 1013, "server-busy closes with 1013"
        except RETRYABLE as e:
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"{name}: still refused at the deadline after {tries} tries; last: {last!r}")
        await asyncio.sleep(min(0.1 * tries, 0.5) + random.uniform(0, 0.1))


async def resume_seat(target, room, client, deadline):
    """`client`'s seat back through `target` with `resume` (its current secret, its lastSeq).
    Checks the answer (same seat, no gap) and reads the replayed events, each above the lastSeq
    presented and at most the room's lastSeq. Returns the new client (continuing the old one's
    history), the `resumed` answer, the replayed events and the number of connections tried."""
    last_seq = client.last_seq
    back, reply, tries = await attempt(target, room, client.name, "resume", deadline, carry=client,
                                       secret=client.welcome["resumeSecret"], lastSeq=last_seq)
    assert reply["type"] == "resumed", f"{client.name}: {reply}"
    assert reply["you"]["id"] == client.welcome["you"]["id"] and reply["you"]["role"] == client.welcome["you"]["role"]
    assert reply["gap"] is False, f"{client.name}: {reply}"
    replayed = [await back.next(timeout=5) for _ in range(reply["replayed"])]
    assert all(last_seq < m.get("seq", -1) <= reply["lastSeq"] for m in replayed), (last_seq, reply, replayed)
    back.welcome = {**client.welcome, "resumeSecret": reply["resumeSecret"]}
    return back, reply, replayed, tries


async def read_to_close(ws, timeout=8.0):
    """Reads a connection to its end (bounded), outside any client's history. Returns the close
    code (None when no close frame came) and the messages read."""
    got = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            frame = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
            got += [json.loads(line) for line in frame.split("\n")]
    except websockets.ConnectionClosed as e:
        return (e.rcvd.code if e.rcvd else None), got


def logged_after(client, seq):
    """The logged events a seat has seen above `seq`, across its connections, in order."""
    return [m for m in client.seen if m.get("seq", 0) > seq]


def chat_ids(client, seq=0):
    return [m["message"]["id"] for m in logged_after(client, seq) if m["type"] == "chat"]


def test_sigkill_of_the_owner_every_member_resumes_elsewhere_and_nothing_acknowledged_is_lost(cluster, capsys):
    """The issue's failover test: a facilitator, three participants and a guest (consent,
    location, admission); 20 acknowledged chats, hands, a ban; one participant's network drops
    before the owner dies, so its replay holds events the dead node committed. SIGKILL the owner:
    everyone resumes through HAProxy on another node that claimed the room at a higher epoch,
    with `gap: false`, and the members' histories are identical event for event (nothing lost,
    nothing twice). The banned user stays out, the guest invitation stays used, every node's
    audit chain verifies, and the killed node, restarted, refuses the room (1013) while the
    new owner's lease is live: the split brain of scale-out.md section 2 must not come back."""
    pg, proxy = cluster.pg, cluster.proxy
    room = "failover"

    async def scenario():
        fac = await Client.join(proxy, room, "facilitator", "Dr. F", sub="fac", consentVersion=CONSENT,
                                requireLocation=True)
        assert fac.welcome["you"]["placement"] == "room"
        m0, m1, m2 = [await Client.join(proxy, room, "participant", f"M{i}", sub=f"m{i}") for i in range(3)]
        guest_token = mint(room, "guest", "G", sub="guest", jti=f"guest-{uuid.uuid4().hex}")
        guest = await Client.connect(proxy, room, "G")
        await guest.send("hello", token=guest_token)
        guest.welcome = await guest.expect("welcome")
        for m in (m0, m1, m2, guest):
            assert m.welcome["you"]["placement"] == "waiting"
            await admit(fac, m)
        members = [m0, m1, guest]  # the non-staff seats that stay: they see the same events
        for c in [fac, m0, m1, m2, guest]:
            await c.drain(0.2)
        admitted_all = max(c.last_seq for c in members)

        # 20 acknowledged chats; m1's network drops after the first 12.
        acked = []
        for i in range(12):
            acked.append((await [fac, m0, m1, guest][i % 4].request("chat", to="room", text=f"chat {i}"))["message"])
        for c in [fac, m0, m1, guest]:
            await c.drain(0.3)
        m1_id = m1.welcome["you"]["id"]
        m1.ws.transport.abort()
        await fac.expect(lambda x: x["type"] == "member-updated" and x["member"]["id"] == m1_id
                         and not x["member"]["connected"])
        for i in range(12, 20):
            acked.append((await [fac, m0, guest][i % 3].request("chat", to="room", text=f"chat {i}"))["message"])
        await m0.request("raise-hand")
        await guest.request("raise-hand")
        await fac.request("remove", member=m2.welcome["you"]["id"], ban=True)
        assert (await m2.expect("removed"))["banned"] is True
        assert await m2.closed() == 4003
        for c in [fac, m0, guest]:
            await c.drain(0.3)

        owner = proxy.owner(room)
        assert owner_row(pg, room) is not None and owner_row(pg, room)[0] == owner, (owner_row(pg, room), owner)
        _, epoch = owner_row(pg, room)
        victim = node_named(cluster, owner)

        killed = time.monotonic()
        victim.signal(signal.SIGKILL)
        victim.process.wait(5)
        for c in [fac, m0, guest]:
            await c.closed(timeout=5)  # the proxy drops them (no close frame: 1006)
        deadline = killed + 15
        back = await asyncio.gather(*(resume_seat(proxy, room, c, deadline) for c in [fac, m0, m1, guest]))
        elapsed = time.monotonic() - killed
        with capsys.disabled():
            print(f"\nfailover: every member resumed {elapsed:.2f} s after SIGKILL of {owner} "
                  f"(connections tried: {[b[3] for b in back]})")
        assert elapsed < 15
        (fac, _, _, _), (m0, _, _, _), (m1, _, m1_replayed, _), (guest, _, _, _) = back
        members = [m0, m1, guest]

        # Another node claimed the room, at a higher epoch, and HAProxy sticks to it.
        new_owner, new_epoch = owner_row(pg, room)
        assert new_owner != owner and new_epoch > epoch, (owner, epoch, new_owner, new_epoch)
        assert proxy.owner(room) == new_owner
        # m1's replay held what the dead node committed after m1's drop: the last 8 chats.
        assert [m["message"]["id"] for m in m1_replayed if m["type"] == "chat"] == acked[12:]

        # The room works: a chat reaches everyone once.
        after = (await fac.request("chat", to="room", text="after the failover"))["message"]
        for m in members:
            await m.expect(lambda x: x["type"] == "chat" and x["message"]["id"] == after)
        for c in [fac] + members:
            await c.drain(0.3)
        # Every seat saw every chat once, in order, whichever connection and node it came from...
        for c in [fac] + members:
            assert chat_ids(c) == acked + [after], c.name
        # ...and the members saw the same events since the last admission: those a member missed
        # were replayed, and none twice (a seq at or below the last one processed fails on read).
        history = logged_after(m0, admitted_all)
        for m in (m1, guest):
            assert logged_after(m, admitted_all) == history, m.name

        # The staff view from the new owner: hands, held seats, the banned member gone.
        view = staff_view(proxy, room)
        seats = {x["userId"]: x for x in view["members"]}
        assert set(seats) == {"fac", "m0", "m1", "guest"}, seats.keys()
        assert not view["waiting"]
        assert seats["m0"]["handRaisedAt"] and seats["guest"]["handRaisedAt"] and not seats["m1"]["handRaisedAt"]
        assert all(x["connected"] for x in seats.values())
        # The banned user stays out; the guest invitation stays used.
        again, reply, _ = await attempt(proxy, room, "M2 again", "hello", time.monotonic() + 5,
                                        token=mint(room, "participant", "M2", sub="m2"))
        assert reply["type"] == "error" and reply["code"] == "banned", reply
        assert await again.closed() == 4003
        again, reply, _ = await attempt(proxy, room, "G again", "hello", time.monotonic() + 5, token=guest_token)
        assert reply["type"] == "error" and reply["code"] == "token-reused", reply
        assert await again.closed() == 4401
        # A fresh hello of the facilitator's user (taking the seat over) gets the whole chat.
        f2 = await Client.join(proxy, room, "facilitator", "Dr. F", sub="fac")
        assert [x["id"] for x in f2.welcome["room"]["chat"]] == acked + [after]
        texts = [x["text"] for x in f2.welcome["room"]["chat"]]
        assert texts == [f"chat {i}" for i in range(20)] + ["after the failover"]

        # The killed node comes back with its data directory and name: it must not serve R.
        victim.start()
        proxy.wait_up(3)
        stale = await Client.connect(victim, room, "stale probe")
        await stale.send("hello", token=mint(room, "participant", "Late", sub="late"))
        reply = await stale.expect(lambda x: x["type"] in ("welcome", "error"))
        assert reply["type"] == "error" and reply["code"] == "server-busy", reply
        assert await stale.closed() == 1013
        # Nor with a seat's resume secret (refused before it is spent: m0 keeps its seat).
        stale = await Client.connect(victim, room, "stale probe")
        await stale.send("resume", secret=m0.welcome["resumeSecret"], lastSeq=m0.last_seq)
        reply = await stale.expect(lambda x: x["type"] in ("resumed", "error"))
        assert reply["type"] == "error" and reply["code"] == "server-busy", reply
        assert await stale.closed() == 1013
        assert owner_row(pg, room) == (new_owner, new_epoch)
        assert proxy.owner(room) == new_owner
        await m0.request("chat", to="room", text="still here")
        for c in (f2, m1, guest):
            await c.expect(lambda x: x["type"] == "chat" and x["message"]["text"] == "still here")

    run(scenario(), timeout=90)
    for node in cluster.nodes:
        out = node.audit_verify()
        assert out.returncode == 0 and out.stdout.startswith("ok"), f"{node.name}: {out.stdout}{out.stderr}"
        with capsys.disabled():
            print(f"audit verify, {node.name}: {out.stdout.strip()}")


def test_a_paused_owner_that_lost_its_room_closes_its_sessions_and_writes_nothing(cluster, capsys):
    """The stale owner (split brain): SIGSTOP the owner; once HAProxy has marked it down and its
    lease has lapsed, a member reconnects and another node claims the room (epoch + 1). A chat
    is then sent on a session still attached to the paused node, and the node is continued:
    it must close its sessions for the room with 1012, never acknowledge that chat, and write
    no journal row at its old epoch; the room, on its new owner, never shows the chat."""
    pg, proxy = cluster.pg, cluster.proxy
    room = "stale-owner"
    stale_text = "sent to the paused node"

    async def scenario():
        fac = await Client.join(proxy, room, "facilitator", "Dr. F", sub="fac")
        m0, m1 = [await Client.join(proxy, room, "participant", f"M{i}", sub=f"m{i}") for i in range(2)]
        for m in (m0, m1):
            await fac.request("admit", member=m.welcome["you"]["id"])
            await m.expect("admitted")
        acked = [(await c.request("chat", to="room", text=f"chat {i}"))["message"]
                 for i, c in enumerate([fac, m0, m1, fac])]
        for c in (fac, m0, m1):
            await c.drain(0.3)
        owner = proxy.owner(room)
        assert owner_row(pg, room) is not None and owner_row(pg, room)[0] == owner
        _, epoch = owner_row(pg, room)
        paused = node_named(cluster, owner)

        paused.signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        # HAProxy marks it down, and its lease lapses in PostgreSQL (more than LEASE seconds).
        deadline = stopped_at + 10
        while owner in proxy.servers_up():
            assert time.monotonic() < deadline, f"HAProxy still has {owner} up"
            await asyncio.sleep(0.05)
        live = pg.wait(f"SELECT count(*) FROM hearth_lease WHERE node = '{owner}' AND expires > now()",
                       lambda rows: rows[0][0] == "0", timeout=LEASE + 5)
        assert live[0][0] == "0", f"{owner}'s lease is still live {time.monotonic() - stopped_at:.1f} s after SIGSTOP"
        await asyncio.sleep(max(0.0, stopped_at + LEASE + 0.2 - time.monotonic()))

        # m1 reconnects: another node claims the room and rebuilds it.
        m1_old = m1.ws
        m1, reply, _, _ = await resume_seat(proxy, room, m1, time.monotonic() + 10)
        new_owner, new_epoch = owner_row(pg, room)
        assert new_owner != owner and new_epoch > epoch, (owner, epoch, new_owner, new_epoch)
        stale_rows = pg.query(f"SELECT count(*), coalesce(max(n), 0) FROM hearth_journal "
                              f"WHERE room = '{room}' AND epoch = {epoch}")

        # A chat on the facilitator's old session, still attached (through HAProxy) to the paused node.
        try:
            rid = await fac.send("chat", to="room", text=stale_text)
        except websockets.ConnectionClosed:
            rid = None  # the proxy had already closed it: nothing could reach the paused node
        paused.signal(signal.SIGCONT)
        closes = {}
        for name, ws in (("F", fac.ws), ("M0", m0.ws), ("M1 (old)", m1_old)):
            closes[name] = await read_to_close(ws, timeout=LEASE + 6)
        seen = {name: (code, [m["type"] for m in got]) for name, (code, got) in closes.items()}
        with capsys.disabled():
            print(f"\nstale owner {owner}: chat sent on its old session: {rid is not None}; "
                  f"after SIGCONT its old sessions got (close code, messages): {seen}")
        for name, (code, got) in closes.items():
            assert code == 1012, f"{name}'s session on the paused node closed with {code}, got {got}"
            assert not [m for m in got if m["type"] == "ack" and rid is not None and m.get("rid") == rid], \
                f"{name}: the paused node acknowledged the chat it got after losing the room: {got}"

        # No row at the old epoch after the takeover (a second after the closes, so a late write
        # would show).
        await asyncio.sleep(1.0)
        assert pg.query(f"SELECT count(*), coalesce(max(n), 0) FROM hearth_journal "
                        f"WHERE room = '{room}' AND epoch = {epoch}") == stale_rows

        def mentions(text):
            return int(pg.query(f"SELECT count(*) FROM hearth_journal WHERE room = '{room}' "
                                f"AND strpos(body::text, '{text}') > 0")[0][0])
        # Nor the chat at any epoch, when the journal keeps chat text readable (as it does the
        # acknowledged ones).
        if mentions("chat 0"):
            assert mentions(stale_text) == 0, "the chat sent to the paused node is in the journal"
        assert owner_row(pg, room) == (new_owner, new_epoch)

        # The room, on its new owner: m1 never got the chat; F and M0 resume with no gap.
        deadline = time.monotonic() + 10
        (fac, _, _, _), (m0, _, _, _) = await asyncio.gather(resume_seat(proxy, room, fac, deadline),
                                                              resume_seat(proxy, room, m0, deadline))
        after = (await fac.request("chat", to="room", text="after the takeover"))["message"]
        for c in (m0, m1):
            await c.expect(lambda x: x["type"] == "chat" and x["message"]["id"] == after)
        for c in (fac, m0, m1):
            await c.drain(0.3)
            assert chat_ids(c) == acked + [after], c.name
        f2 = await Client.join(proxy, room, "facilitator", "Dr. F", sub="fac")
        assert [x["id"] for x in f2.welcome["room"]["chat"]] == acked + [after]

    run(scenario(), timeout=90)


def test_sigterm_drains_a_node_its_room_moves_at_once_and_members_resume_without_gap(cluster, capsys):
    """Drain: SIGTERM the owner of a live room. It closes its clients with 1001 once its journal is
    flushed and its lease deleted, and exits 0; the members resume through HAProxy on another
    node with `gap: false`, all within 10 s, and see the same events."""
    pg, proxy = cluster.pg, cluster.proxy
    room = "drain"

    async def scenario():
        fac = await Client.join(proxy, room, "facilitator", "Dr. F", sub="fac")
        m0, m1 = [await Client.join(proxy, room, "participant", f"M{i}", sub=f"m{i}") for i in range(2)]
        for m in (m0, m1):
            await fac.request("admit", member=m.welcome["you"]["id"])
            await m.expect("admitted")
        for c in (fac, m0, m1):
            await c.drain(0.2)
        admitted_all = max(m0.last_seq, m1.last_seq)
        acked = [(await c.request("chat", to="room", text=f"chat {i}"))["message"]
                 for i, c in enumerate([fac, m0, m1] * 2)]
        await m1.request("raise-hand")
        for c in (fac, m0, m1):
            await c.drain(0.3)
        owner = proxy.owner(room)
        assert owner_row(pg, room) is not None and owner_row(pg, room)[0] == owner
        _, epoch = owner_row(pg, room)
        node = node_named(cluster, owner)

        started = time.monotonic()
        node.signal(signal.SIGTERM)
        for c in (fac, m0, m1):
            assert await c.closed(timeout=10) == 1001, c.name
        deadline = started + 10
        back = await asyncio.gather(*(resume_seat(proxy, room, c, deadline) for c in (fac, m0, m1)))
        elapsed = time.monotonic() - started
        with capsys.disabled():
            print(f"\ndrain: every member resumed {elapsed:.2f} s after SIGTERM of {owner} "
                  f"(connections tried: {[b[3] for b in back]})")
        assert elapsed < 10
        (fac, _, _, _), (m0, _, _, _), (m1, _, _, _) = back
        assert node.process.wait(10) == 0, node.log()
        assert pg.query(f"SELECT count(*) FROM hearth_lease WHERE node = '{owner}'") == [("0",)], \
            "the drained node left its lease behind"
        new_owner, new_epoch = owner_row(pg, room)
        assert new_owner != owner and new_epoch > epoch, (owner, epoch, new_owner, new_epoch)

        after = (await m0.request("chat", to="room", text="after the drain"))["message"]
        for c in (fac, m1):
            await c.expect(lambda x: x["type"] == "chat" and x["message"]["id"] == after)
        for c in (fac, m0, m1):
            await c.drain(0.3)
            assert chat_ids(c) == acked + [after], c.name
        assert logged_after(m0, admitted_all) == logged_after(m1, admitted_all)
        seats = {x["userId"]: x for x in staff_view(proxy, room)["members"]}
        assert seats["m1"]["handRaisedAt"] and all(x["connected"] for x in seats.values())

    run(scenario(), timeout=60)
