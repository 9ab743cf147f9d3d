"""Drops, takeovers and restarts, against the real server over TLS on loopback."""
import asyncio
import signal

import pytest
import websockets
from conftest import run
from hearth import Client, Server, mint


async def group(server, room, n, **claims):
    fac = await Client.join(server, room, "facilitator", "F", sub=f"{room}-fac", **claims)
    members = []
    for i in range(n):
        m = await Client.join(server, room, "participant", f"M{i}", sub=f"{room}-m{i}", **claims)
        await fac.request("admit", member=m.welcome["you"]["id"])
        await m.expect("admitted")
        members.append(m)
    for c in [fac] + members:
        await c.drain(0.2)
    return fac, members


async def resume(server, room, client, name="back"):
    back = await Client.connect(server, room, name)
    await back.send("resume", secret=client.welcome["resumeSecret"], lastSeq=client.last_seq)
    back.welcome = client.welcome
    back.last_seq = client.last_seq
    return back, await back.expect("resumed")


def test_grace_expiry_sends_the_member_back_through_the_waiting_room(server):
    async def go():
        room = "res-grace"
        fac, (m,) = await group(server, room, 1)
        pid = m.welcome["you"]["id"]
        m.ws.transport.abort()
        left = await fac.expect(lambda x: x["type"] == "member-left" and x["member"] == pid, timeout=8)
        assert left["reason"] == "expired"
        back = await Client.connect(server, room, "late")
        await back.send("resume", secret=m.welcome["resumeSecret"], lastSeq=0)
        assert (await back.expect("error"))["code"] == "resume-failed"
        assert await back.closed() == 4401
        back = await Client.connect(server, room, "late")
        await back.send("hello", token=mint(room, "participant", "M0", sub=f"{room}-m0"))
        assert (await back.expect("welcome"))["you"]["placement"] == "waiting"

        def kinds(rows):
            return [r["kind"] for r in rows if r["member_user"] == f"{room}-m0"]
        rows = server.wait_records("attendance", lambda rows: len(kinds(rows)) >= 5)
        assert kinds(rows) == ["enter-waiting", "exit-waiting", "enter-room", "exit-room", "enter-waiting"]
    run(go())


def test_last_facilitator_returns_into_a_locked_room_with_full_rights(server):
    async def go():
        room = "res-locked"
        fac, (m,) = await group(server, room, 1)
        await fac.request("lock")
        fac.ws.transport.abort()
        state = await m.expect(lambda x: x["type"] == "room-updated" and not x["state"]["staffPresent"])
        assert state["state"]["locked"]
        back, resumed = await resume(server, room, fac)
        assert resumed["you"]["role"] == "facilitator"
        await m.expect(lambda x: x["type"] == "room-updated" and x["state"]["staffPresent"])
        await back.request("unlock")
        await back.request("mute", member=m.welcome["you"]["id"])
    run(go())


def test_takeover_by_a_second_connection_of_the_same_user(server):
    async def go():
        room = "res-takeover"
        fac, (m,) = await group(server, room, 1)
        await m.request("raise-hand")
        second = await Client.join(server, room, "participant", "M0", sub=f"{room}-m0")
        assert second.welcome["you"]["placement"] == "room"
        assert second.welcome["room"]["you"]["handRaisedAt"]
        assert await m.closed() == 4005
        await second.request("chat", to="room", text="on my phone now")
        assert (await fac.expect("chat"))["message"]["text"] == "on my phone now"
    run(go())


def test_a_client_that_stops_reading_is_cut_off_and_the_others_get_everything():
    """Functional only: the stalled member is closed with 4008 and counted once, the others are
    told, and the other member receives every message meanwhile. Whether the others are slowed
    is a latency claim: the slow-consumer benchmark measures it (loadtest/scenarios/slow-consumer,
    P99_LIMIT_MS)."""
    server = Server(limits={"sendQueueMaxMessages": 64, "sendQueueMaxBytes": 65536 * 4},
                    rateLimits={"chatBurst": 5000, "chatPerSecond": 5000})
    try:
        async def go():
            room = "res-slow"
            fac, (slow, other) = await group(server, room, 2)
            slow_id = slow.welcome["you"]["id"]
            slow.ws.transport.pause_reading()
            for i in range(6000):
                rid = await fac.send("chat", to="room", text=f"{i}:" + "x" * 1900)
                await other.expect(lambda x: x["type"] == "chat" and x["message"]["text"].startswith(f"{i}:"))
                await fac.expect(lambda x: x.get("rid") == rid)  # keeps the sender reading
                fac.pending.clear()
                # The server's decision (logged when the queue overflows): the close frame then
                # waits behind what the stalled socket holds, for at most 5 s.
                if "send queue overflow" in server.log():
                    break
            else:
                raise AssertionError("the stalled member was never cut off")
            print(f"slow consumer cut off after {i + 1} messages")
            # Reading again, it gets what was already on its way, then the close: 4008.
            slow.ws.transport.resume_reading()
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(slow.ws.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008, closed.value
            await other.expect(lambda x: x["type"] == "member-updated" and x["member"]["id"] == slow_id
                               and not x["member"]["connected"], timeout=10)
        run(go(), timeout=90)
        metrics = server.https("/metrics").read().decode()
        assert "hearth_send_queue_drops_total 1\n" in metrics, "exactly one member was cut off"
    finally:
        assert server.stop() == 0, server.log()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_restart_everyone_resumes_nothing_acknowledged_is_lost(sig):
    server = Server(rooms={"graceSeconds": 30})
    try:
        async def before():
            fac, members = await group(server, "res-crash", 2)
            await fac.request("lock")
            await members[0].request("raise-hand")
            acked = []
            for i in range(20):
                ack = await members[i % 2].request("chat", to="room", text=f"before crash {i}")
                acked.append(ack["message"])
            for c in [fac] + members:
                await c.drain(0.2)
            return fac, members, acked

        fac, members, acked = asyncio.run(before())
        server.process.send_signal(sig)
        code = server.process.wait(timeout=10)
        assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
        server.start()

        async def after():
            back = []
            for c in [fac] + members:
                client, resumed = await resume(server, "res-crash", c, name=c.name)
                back.append((client, resumed))
            (f2, r0), (m0, r1), (m1, r2) = back
            assert r0["you"]["role"] == "facilitator" and r1["you"]["placement"] == "room"
            # A fresh hello shows the whole room as it was: locked, hand up, chat intact.
            f3 = await Client.join(server, "res-crash", "facilitator", "F", sub="res-crash-fac")
            state = f3.welcome["room"]
            assert state["state"]["locked"]
            hands = [x for x in state["members"] if x.get("handRaisedAt")]
            assert [x["id"] for x in hands] == [members[0].welcome["you"]["id"]]
            texts = [x["text"] for x in state["chat"]]
            assert texts == [f"before crash {i}" for i in range(20)]
            ids = [x["id"] for x in state["chat"]]
            assert ids == acked
            # The room works after the restart.
            await m1.request("chat", to="room", text="after")
            await f3.expect(lambda x: x["type"] == "chat" and x["message"]["text"] == "after")
        asyncio.run(asyncio.wait_for(after(), 30))
    finally:
        server.stop(signal.SIGKILL)


def test_hearthd_allocates_with_jemalloc(server):
    """hearthd is linked against jemalloc, which replaces glibc's malloc for the whole process
    (OpenSSL and libwebsockets included): after thousands of connections closed at once, glibc's
    fragmented bins made every allocation search them (loadtest/RESULTS.md, issue 16 part 2).
    A build that lost the link would still pass everything else, only slower in a storm."""
    maps = open(f"/proc/{server.process.pid}/maps").read()
    assert "libjemalloc.so" in maps, "hearthd does not have jemalloc mapped"
