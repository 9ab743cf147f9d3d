"""A room's life beyond its members' commands: idle expiry, staff decisions that outlive a seat,
and resume secrets that work once. Against the real server over TLS on loopback."""
import asyncio
import signal
import time

from conftest import run
from hearth import Client, Server, mint


def wait_for(what, check, timeout=15.0):
    """Polls `check()` (bounded) until it returns something truthy; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} in {timeout}s")
        time.sleep(0.1)


def idle_ends(server, rooms):
    """The audit records of rooms that ended by themselves for being idle, once all have."""
    ends = [r for r in server.records("audit") if r["action"] == "end" and r["reason"] == "idle"]
    return ends if {r["room"] for r in ends} >= set(rooms) else None


def marked_ended(server):
    return {r["room"] for r in server.records("room_end")}


async def hello(server, room, role="facilitator", name="F", sub=None):
    """A hello whose answer may be a refusal: returns (client, first reply)."""
    c = await Client.connect(server, room, name)
    await c.send("hello", token=mint(room, role, name, sub=sub))
    reply = await c.expect(lambda m: m["type"] in ("welcome", "error"))
    if reply["type"] == "welcome":
        c.welcome = reply
    return c, reply


async def join_and_leave(server, room):
    c = await Client.join(server, room, "facilitator", "F", sub=f"{room}-fac")
    await c.request("leave")
    assert await c.closed() == 4001


def test_rooms_whose_members_left_end_by_themselves_and_stop_counting_against_max_rooms():
    server = Server(rooms={"idleCloseSeconds": 2}, limits={"maxRooms": 2})
    try:
        async def full():
            for room in ("idle-1", "idle-2"):
                await join_and_leave(server, room)
            # Emptied but not yet idle long enough: both still count.
            c, reply = await hello(server, "idle-3")
            assert reply["code"] == "server-full"
            assert await c.closed() == 1013
        run(full())

        ends = wait_for("idle end", lambda: idle_ends(server, ["idle-1", "idle-2"]))
        assert all(r["actor_user"] is None and r["outcome"] == "done" for r in ends)
        wait_for("rooms marked ended", lambda: {"idle-1", "idle-2"} <= marked_ended(server))
        # Attendance was closed when the members left; nothing is left open.
        kinds = [r["kind"] for r in server.records("attendance") if r["room"] == "idle-1"]
        assert kinds == ["enter-room", "exit-room"]

        async def freed():
            # Ended rooms do not count: two new rooms fit under maxRooms 2 again.
            for room in ("idle-3", "idle-4"):
                c, reply = await hello(server, room)
                assert reply["type"] == "welcome", reply
            # An ended room's id is not reused.
            c, reply = await hello(server, "idle-1")
            assert reply["code"] == "room-ended"
            assert await c.closed() == 4000
        run(freed())
    finally:
        assert server.stop() == 0, server.log()


def test_idle_expiry_survives_a_restart():
    server = Server(rooms={"idleCloseSeconds": 2, "graceSeconds": 1}, limits={"maxRooms": 2})
    try:
        async def before():
            # Room A is empty at the restart; room B's member is still connected when the
            # server is killed: after the restart the seat is held, expires, then B idles.
            await join_and_leave(server, "rs-a")
            b = await Client.join(server, "rs-b", "facilitator", "F", sub="rs-b-fac")
            await b.request("raise-hand")  # acked once committed: B's arrival is journaled
            return b
        b = run(before())
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        server.start()
        del b

        wait_for("idle ends after the restart", lambda: idle_ends(server, ["rs-a", "rs-b"]))
        wait_for("rooms marked ended", lambda: {"rs-a", "rs-b"} <= marked_ended(server))

        async def after():
            for room in ("rs-c", "rs-d"):
                c, reply = await hello(server, room)
                assert reply["type"] == "welcome", reply
        run(after())
    finally:
        assert server.stop() == 0, server.log()


def test_a_demoted_and_muted_member_who_leaves_and_rejoins_is_still_observer_and_muted(server):
    async def go():
        room = "lc-sanctions"
        fac = await Client.join(server, room, "facilitator", "F", sub=f"{room}-fac", selfUnmute=False)
        token = mint(room, "participant", "Sam", sub=f"{room}-sam")
        sam = await Client.connect(server, room, "sam")
        await sam.send("hello", token=token)
        sam.welcome = await sam.expect("welcome")
        pid = sam.welcome["you"]["id"]
        await fac.request("admit", member=pid)
        await sam.expect("admitted")
        await sam.request("media", audio=True, video=True)
        await fac.request("set-role", member=pid, role="observer")
        await fac.request("mute", member=pid, audio=True, video=True)
        await sam.request("leave")
        assert await sam.closed() == 4001

        # The same token again: a new seat, but staff's decisions are the user's.
        again = await Client.connect(server, room, "sam2")
        await again.send("hello", token=token)
        welcome = await again.expect("welcome")
        assert welcome["you"]["role"] == "observer"
        assert welcome["you"]["placement"] == "waiting"
        new_pid = welcome["you"]["id"]
        assert new_pid != pid
        await fac.request("admit", member=new_pid)
        admitted = await again.expect("admitted")
        assert admitted["room"]["you"]["role"] == "observer"
        # An observer needs a grant to publish; with one, what staff muted stays muted.
        rid = await again.send("media", audio=True)
        assert (await again.expect(lambda m: m.get("rid") == rid))["code"] == "forbidden"
        await fac.request("grant", member=new_pid, media=True, chat=False)
        rid = await again.send("media", audio=True)
        assert (await again.expect(lambda m: m.get("rid") == rid))["code"] == "self-unmute-disabled"
        await fac.request("ask-unmute", member=new_pid, audio=True)
        await again.request("media", audio=True)
        for c in (again, fac):
            await c.close()
    run(go())


def test_each_resume_secret_works_once(server):
    async def go():
        room = "lc-rotate"
        fac = await Client.join(server, room, "facilitator", "F", sub=f"{room}-fac")
        first = fac.welcome["resumeSecret"]
        fac.ws.transport.abort()

        back = await Client.connect(server, room, "back")
        await back.send("resume", secret=first, lastSeq=0)
        resumed = await back.expect("resumed")
        second = resumed["resumeSecret"]
        assert second and second != first

        # Someone holding the old secret cannot take the live seat over...
        thief = await Client.connect(server, room, "thief")
        await thief.send("resume", secret=first, lastSeq=0)
        assert (await thief.expect("error"))["code"] == "resume-failed"
        await back.request("raise-hand")  # still connected and in charge

        # ...nor the held seat after a drop; the new secret works, once.
        back.ws.transport.abort()
        thief2 = await Client.connect(server, room, "thief2")
        await thief2.send("resume", secret=first, lastSeq=0)
        assert (await thief2.expect("error"))["code"] == "resume-failed"
        again = await Client.connect(server, room, "again")
        await again.send("resume", secret=second, lastSeq=0)
        third = (await again.expect("resumed"))["resumeSecret"]
        assert third not in (first, second)
        late = await Client.connect(server, room, "late")
        await late.send("resume", secret=second, lastSeq=0)
        assert (await late.expect("error"))["code"] == "resume-failed"
        await again.request("lower-hand")
        rows = [r for r in server.records("audit") if r["room"] == room and r["action"] in ("resume", "takeover")]
        assert len(rows) == 2
        for c in (again, thief, thief2, late):
            await c.close()
    run(go())
