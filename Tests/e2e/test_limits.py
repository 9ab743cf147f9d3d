"""Abuse limits against a server configured with tight ones."""

import asyncio
import socket
import time

import pytest
import websockets
from conftest import run
from hearth import Client, Server, mint


@pytest.fixture(scope="module")
def tight():
    s = Server(
        limits={"maxConnectionsPerAddress": 6, "maxWaiting": 2},
        rateLimits={"authFailureBurst": 2, "authFailuresPerSecond": 0.01, "chatBurst": 3, "chatPerSecond": 0.5,
                    "maxStrikes": 5},
    )
    yield s
    assert s.stop() == 0, s.log()


async def closed_before_hello(server, room="any"):
    c = await Client.connect(server, room)
    return await c.closed()


def test_chat_rate_limit_then_close_on_sustained_abuse(tight):
    async def go():
        c = await Client.join(tight, "rl-room", "facilitator", "F")
        for i in range(3):
            await c.request("chat", to="room", text=f"ok {i}")
        rid = await c.send("chat", to="room", text="too fast")
        err = await c.expect(lambda m: m.get("rid") == rid)
        assert err["code"] == "rate-limited"
        # Control commands have their own budget.
        await c.request("lock")
        for _ in range(5):
            await c.send("chat", to="room", text="spam")
        assert await c.closed() == 4429
    run(go())


def test_guest_invitation_is_single_use(tight):
    async def go():
        staff = await Client.join(tight, "rl-guest", "facilitator", "F")
        token = mint("rl-guest", "guest", "Aunt May")
        g = await Client.connect(tight, "rl-guest")
        await g.send("hello", token=token)
        await g.expect("welcome")
        again = await Client.connect(tight, "rl-guest")
        await again.send("hello", token=token)
        assert (await again.expect("error"))["code"] == "token-reused"
        assert await again.closed() == 4401
        for c in (g, staff):
            await c.close()
    run(go())


def test_rooms_per_node_cap():
    server = Server(limits={"maxRooms": 2})
    try:
        async def go():
            clients = [await Client.join(server, room, "facilitator", "F") for room in ("cap-1", "cap-2")]
            c = await Client.connect(server, "cap-3")
            await c.send("hello", token=mint("cap-3", "facilitator", "F"))
            assert (await c.expect(lambda m: m["type"] in ("error", "welcome")))["code"] == "server-full"
            assert await c.closed() == 1013
            # An ended room frees its place.
            await clients[0].send("end")
            await clients[0].closed()
            await Client.join(server, "cap-3", "facilitator", "F")
        run(go())
    finally:
        assert server.stop() == 0, server.log()


def test_connections_per_address_cap(tight):
    async def go():
        held = [await Client.connect(tight, f"cpa-{i}") for i in range(6)]
        assert await closed_before_hello(tight) == 1013
        for c in held:
            await c.close()
    run(go())


def test_failed_authentications_are_refused_early(tight):
    async def go():
        for _ in range(2):
            c = await Client.connect(tight, "auth-rl")
            await c.send("hello", token="nonsense")
            assert await c.closed() == 4401
        # The address has spent its budget: refused at once, before any hello.
        assert await closed_before_hello(tight, "auth-rl") == 4429
    run(go())


def test_refresh_keeps_an_expiring_connection_open():
    server = Server(tokens={"requireRefresh": True, "leewaySeconds": 0})
    try:
        async def go():
            keeper = await Client.join(server, "refresh-room", "facilitator", "F", sub="staff-9", ttl=2)
            idle = await Client.join(server, "refresh-room", "cofacilitator", "C", sub="staff-10", ttl=2)
            rid = await keeper.send("refresh", token=mint("refresh-room", "facilitator", "F", sub="someone-else"))
            assert (await keeper.expect(lambda m: m.get("rid") == rid))["code"] == "authentication-failed"
            await keeper.request("refresh", token=mint("refresh-room", "facilitator", "F", sub="staff-9", ttl=60))
            # The connection that did not refresh is closed when its token expires.
            assert await idle.closed(timeout=6) == 4401
            await keeper.request("chat", to="room", text="still here")
        run(go())
    finally:
        assert server.stop() == 0, server.log()


def test_wrong_resume_secrets_spend_the_authentication_budget_and_are_not_journaled():
    server = Server(rateLimits={"authFailureBurst": 3, "authFailuresPerSecond": 0.01})
    try:
        async def go():
            staff = await Client.join(server, "resume-spam", "facilitator", "F")
            # An ack is sent once its journal entry (and everything written before it) is
            # committed: a journaled command is the barrier, not a sleep.
            await staff.request("raise-hand")
            journal_before = len(server.records("journal"))
            for _ in range(3):
                c = await Client.connect(server, "resume-spam")
                await c.send("resume", secret="not-a-secret", lastSeq=0)
                assert (await c.expect("error"))["code"] == "resume-failed"
                assert await c.closed() == 4401
            await staff.request("lower-hand")
            assert len(server.records("journal")) == journal_before + 1, "a refused resume changes nothing"
            refused = [r for r in server.records("audit") if r["reason"] == "resume_secret_unknown address:127.0.0.1"]
            assert len(refused) == 3
            # The address has spent its failed-authentication budget.
            assert await closed_before_hello(server, "resume-spam") == 4429
            await staff.close()
        run(go())
    finally:
        assert server.stop() == 0, server.log()


def with_idle_connections(limits, count, body):
    """Runs `body(server, idle)` against a server with `limits` while `count` TCP connections
    to it are open and silent (accepted, no ClientHello)."""
    server = Server(limits=limits)
    idle = []
    try:
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(count)]
        time.sleep(0.3)  # all accepted
        run(body(server, idle))
    finally:
        for s in idle:
            s.close()
        assert server.stop() == 0, server.log()


def test_connections_in_their_handshake_are_bounded():
    """limits.maxHandshakesInFlight: with that many accepted connections that have not sent a
    request yet, the listener accepts no more until one of them sends its request or closes;
    the next connection waits in the kernel's accept queue meanwhile, then is served."""
    async def go(server, idle):
        with pytest.raises((asyncio.TimeoutError, TimeoutError)):
            await asyncio.wait_for(Client.connect(server, "hs-room"), 1.5)
        idle[0].close()
        c = await Client.join(server, "hs-room", "facilitator", "F")
        await c.request("chat", to="room", text="served once a handshake slot was free")
        await c.close()
    with_idle_connections({"maxHandshakesInFlight": 2}, 2, go)


def test_no_bound_on_connections_in_their_handshake_when_zero():
    async def go(server, idle):
        c = await Client.join(server, "hs-free", "facilitator", "F")
        await c.close()
    with_idle_connections({"maxHandshakesInFlight": 0}, 3, go)
