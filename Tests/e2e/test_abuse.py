"""Abuse of budgets and caps (issue 11, items 1, 2, 6, 11, 17, 18, 19).

Each test starts its own server with the limits it needs, so budgets spent by one test (all
clients share 127.0.0.1) never leak into another. Everything is on loopback and bounded by
`run(..., timeout)`; waits poll an observable state with a deadline.
"""
import asyncio
import hashlib
import hmac
import json
import re
import time
import uuid

import websockets
from conftest import run
from hearth import DEV_SECRET, Client, Server, b64url, mint


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def metric(server, name, labels=None):
    """One sample of /metrics, or None when the series is not there."""
    with server.https("/metrics") as r:
        text = r.read().decode()
    series = re.escape(name) + (re.escape("{" + labels + "}") if labels else "")
    m = re.search(rf"^{series} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


async def poll(predicate, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s")
        await asyncio.sleep(0.05)


async def refusal(c, timeout=5.0):
    """(error code, close code) of a connection the server refuses and closes."""
    code = None
    try:
        while True:
            m = await c.next(timeout)
            if m["type"] == "error":
                code = m["code"]
    except websockets.ConnectionClosed as e:
        return code, (e.rcvd.code if e.rcvd else None)


def stopped(server):
    assert server.stop() == 0, server.log()


def audit_reasons(server, room):
    """The reasons of a room's failed-authentication rows, without the client address that
    each row also records ("<reason> address:<address>", docs/security.md section 2.8)."""
    rows = [r["reason"] for r in server.records("audit") if r["room"] == room and r["action"] == "authenticate"]
    assert all(r.endswith(" address:127.0.0.1") for r in rows), rows
    return [r.rsplit(" address:", 1)[0] for r in rows]


# MARK: item 1: per-address connection slots


def test_slots_of_connections_the_shell_closed_are_released():
    """3x the per-address cap of timed-out hellos, failed hellos, reused invitations and failed
    resumes from one address; then a valid join from that address succeeds, and no address is
    tracked once every connection is gone."""
    server = Server(limits={"maxConnectionsPerAddress": 3, "helloTimeoutSeconds": 1},
                    rateLimits={"authFailureBurst": 100})
    try:
        async def go():
            room = unique("slots")
            # Hello timeouts (4408), the cap's worth at once.
            silent = [await Client.connect(server, room) for _ in range(3)]
            assert [await c.closed() for c in silent] == [4408] * 3
            # Failed hellos (4401).
            for _ in range(3):
                c = await Client.connect(server, room)
                await c.send("hello", token="nonsense")
                assert await refusal(c) == ("authentication-failed", 4401)
            # A reused guest invitation (4401) and failed resumes (4401).
            invitation = mint(room, "guest", "G")
            guest = await Client.connect(server, room)
            await guest.send("hello", token=invitation)
            await guest.expect("welcome")
            for _ in range(2):
                again = await Client.connect(server, room)
                await again.send("hello", token=invitation)
                assert await refusal(again) == ("token-reused", 4401)
            await guest.close()
            for _ in range(2):
                c = await Client.connect(server, room)
                await c.send("resume", secret="not-a-secret", lastSeq=0)
                assert await refusal(c) == ("resume-failed", 4401)
            await poll(lambda: metric(server, "hearth_tracked_addresses", 'table="connections"') == 0,
                       what="no address tracked")
            # The address still has its slots.
            members = [await Client.join(server, room, "facilitator", "F")]
            members += [await Client.join(server, unique("slots-more"), "facilitator", "F") for _ in range(2)]
            assert await poll(lambda: metric(server, "hearth_tracked_addresses", 'table="connections"') == 1,
                              what="one address tracked")
            for c in members:
                await c.close()
            await poll(lambda: metric(server, "hearth_tracked_addresses", 'table="connections"') == 0,
                       what="no address tracked")
        run(go())
    finally:
        stopped(server)


# MARK: item 2: the failed-authentication budget at every attempt


def test_the_failed_authentication_budget_is_checked_at_every_hello_and_resume():
    """Connections opened before the budget ran out: only the budget's worth of bad hellos are
    verified and audited, the rest refused with rate-limited and 4429 (and counted)."""
    server = Server(limits={"helloTimeoutSeconds": 30}, rateLimits={"authFailureBurst": 3,
                                                                    "authFailuresPerSecond": 0.01})
    try:
        async def go():
            room = unique("budget")
            clients = [await Client.connect(server, room) for _ in range(10)]
            outcomes = []
            for c in clients[:9]:
                await c.send("hello", token="nonsense")
                outcomes.append(await refusal(c))
            assert outcomes == [("authentication-failed", 4401)] * 3 + [("rate-limited", 4429)] * 6
            # A resume, too, is refused without looking at the secret.
            await clients[9].send("resume", secret="guess", lastSeq=0)
            assert await refusal(clients[9]) == ("rate-limited", 4429)
            await poll(lambda: len(audit_reasons(server, room)) >= 3, what="three audit rows")
            await asyncio.sleep(0.5)  # the store's commit window: nothing more arrives
            assert audit_reasons(server, room) == ["malformed"] * 3
            assert metric(server, "hearth_refused_total", 'reason="rate-limited"') == 7
        run(go())
    finally:
        stopped(server)


def test_a_failed_resume_closes_the_connection_and_hello_works_on_a_new_one():
    server = Server()
    try:
        async def go():
            room = unique("resume")
            staff = await Client.join(server, room, "facilitator", "F")
            c = await Client.connect(server, room)
            rid = await c.send("resume", secret="not-a-secret", lastSeq=0)
            err = await c.expect("error")
            assert (err["code"], err["rid"]) == ("resume-failed", rid)
            assert await c.closed() == 4401
            # A real secret with a lastSeq from the future: refused and closed the same way.
            c = await Client.connect(server, room)
            await c.send("resume", secret=staff.welcome["resumeSecret"], lastSeq=2**63 - 1)
            assert await refusal(c) == ("resume-failed", 4401)
            await staff.request("chat", to="room", text="still here")
            back = await Client.connect(server, room)
            await back.send("hello", token=mint(room, "cofacilitator", "C"))
            await back.expect("welcome")
        run(go())
    finally:
        stopped(server)


# MARK: item 6: signalling cannot cut another member off


def test_a_signal_flood_never_overflows_the_recipients_send_queue():
    """A participant floods a facilitator who is not reading with max-size signals: the flood
    is refused with rate-limited, and the facilitator is never closed with 4008."""
    server = Server(rateLimits={"maxStrikes": 1000})
    try:
        async def go():
            room = unique("flood")
            # The facilitator reads nothing while the flood lasts (the client buffers one frame).
            staff = await Client.connect(server, room, "staff", max_queue=1)
            await staff.send("hello", token=mint(room, "facilitator", "F"))
            staff.welcome = await staff.expect("welcome")
            flooder = await Client.join(server, room, "participant", "P")
            await staff.request("admit", member=flooder.welcome["you"]["id"])
            await flooder.expect("admitted")
            target = staff.welcome["you"]["id"]
            payload = {"type": "offer", "sdp": "x" * 16_300}  # just under maxSignalBytes (16384)
            assert len(json.dumps(payload, separators=(",", ":"))) <= 16_384
            for _ in range(400):
                await flooder.send("signal", to=target, kind="offer", payload=payload)
            refused = await flooder.expect(lambda m: m.get("code") == "rate-limited", timeout=10)
            assert refused["type"] == "error"
            # The facilitator catches up and is still connected.
            rid = await staff.send("ping")
            pong = await staff.expect(lambda m: m.get("rid") == rid, timeout=15)
            assert pong["type"] == "pong"
            relayed = sum(1 for m in staff.seen if m["type"] == "signal")
            assert 0 < relayed < 400
            assert (metric(server, "hearth_send_queue_drops_total") or 0) == 0
        run(go(), timeout=90)
    finally:
        stopped(server)


# MARK: item 11: refresh and ping have a budget


def test_refresh_and_ping_count_against_the_control_budget():
    server = Server(rateLimits={"controlBurst": 4, "controlPerSecond": 0.01, "maxStrikes": 3})
    try:
        async def go():
            room = unique("control")
            c = await Client.join(server, room, "facilitator", "F", sub="staff-1")
            await c.request("ping")
            await c.request("refresh", token=mint(room, "facilitator", "F", sub="staff-1"))
            await c.request("ping")
            await c.request("refresh", token=mint(room, "facilitator", "F", sub="staff-1"))
            for kind, fields in [("ping", {}), ("refresh", {"token": mint(room, "facilitator", "F", sub="staff-1")})]:
                rid = await c.send(kind, **fields)
                err = await c.expect(lambda m: m.get("rid") == rid)
                assert (err["type"], err["code"]) == ("error", "rate-limited"), err
            await c.send("ping")
            assert await c.closed() == 4429
        run(go())
    finally:
        stopped(server)


# MARK: items 17, 18, 19: as protocol.md promises


def test_resume_into_an_ended_room_is_room_ended_and_4000():
    server = Server()
    try:
        async def go():
            room = unique("ended")
            staff = await Client.join(server, room, "facilitator", "F")
            await staff.send("end")
            assert await staff.closed() == 4000
            c = await Client.connect(server, room)
            rid = await c.send("resume", secret=staff.welcome["resumeSecret"], lastSeq=0)
            err = await c.expect("error")
            assert (err["code"], err["rid"]) == ("room-ended", rid)
            assert await c.closed() == 4000
        run(go())
    finally:
        stopped(server)


def test_a_guest_token_without_jti_is_authentication_failed():
    server = Server()
    try:
        async def go():
            room = unique("no-jti")
            now = int(time.time())
            body = {"sub": "guest-1", "room": room, "role": "guest", "name": "G", "iat": now, "exp": now + 300}
            header = b64url(json.dumps({"alg": "HS256"}).encode())
            payload = b64url(json.dumps(body).encode())
            sig = b64url(hmac.new(DEV_SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest())
            c = await Client.connect(server, room)
            await c.send("hello", token=f"{header}.{payload}.{sig}")
            assert await refusal(c) == ("authentication-failed", 4401)
            reasons = await poll(lambda: audit_reasons(server, room), what="an audit row")
            assert reasons == ["missing_claim:jti"]
        run(go())
    finally:
        stopped(server)


def test_ping_as_the_first_message_is_hello_required():
    server = Server()
    try:
        async def go():
            room = unique("ping-first")
            c = await Client.connect(server, room)
            rid = await c.send("ping")
            err = await c.expect("error")
            assert (err["code"], err["rid"]) == ("hello-required", rid)
            await c.send("hello", token=mint(room, "facilitator", "F"))
            await c.expect("welcome")
            await c.request("ping")
        run(go())
    finally:
        stopped(server)
