"""The SFU mode in a cluster (issue 15, "Media in a cluster"): each node brokers a Janus of its
own. When a room's node dies together with its Janus (a machine lost), the node that takes the
room over creates the room's VideoRoom on its own Janus, and the members, once resumed there,
get new media sessions and publish again. Two nodes with `store: postgres` on one PostgreSQL,
reached directly (the routing is Tests/cluster's subject), in this suite's network namespace."""
import asyncio
import json
import pathlib
import socket
import signal
import sys
import time

import janus
from conftest import run
from hearth import Client, Server

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "cluster"))
from cluster import Postgres  # noqa: E402
from test_sfu_control import offer_sdp, publish, refused  # noqa: E402

LEASE = 2


def videorooms(j):
    """The VideoRoom rooms a Janus has, asked on its API socket (a session, the plugin, `list`)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.settimeout(5)
        s.connect(j.socket)

        def ask(message):
            s.send(json.dumps({**message, "transaction": "t", "apisecret": janus.API_SECRET}).encode())
            while True:
                reply = json.loads(s.recv(1 << 20))
                if reply.get("janus") != "ack":
                    return reply
        session = ask({"janus": "create"})["data"]["id"]
        handle = ask({"janus": "attach", "session_id": session, "plugin": "janus.plugin.videoroom"})["data"]["id"]
        listed = ask({"janus": "message", "session_id": session, "handle_id": handle,
                      "body": {"request": "list", "admin_key": janus.ADMIN_KEY}})
        ask({"janus": "destroy", "session_id": session})
        return listed["plugindata"]["data"]["list"]


def node(name, pg, j):
    return Server(store="postgres", postgres={"conninfo": pg.conninfo, "node": name, "leaseSeconds": LEASE},
                  sfu=j.hearthd_config, rooms={"graceSeconds": 30, "media": "sfu"})


async def resume_on(server, room, client, deadline):
    """Resumes `client`'s seat on `server`, retrying while the dead node's lease lives (1013)."""
    while True:
        c = await Client.connect(server, room, client.name)
        await c.send("resume", secret=client.welcome["resumeSecret"], lastSeq=client.last_seq)
        reply = await c.expect(lambda m: m["type"] in ("resumed", "error"), timeout=5)
        if reply["type"] == "resumed":
            assert reply["gap"] is False, reply
            return c
        assert reply["code"] == "server-busy", reply
        assert time.monotonic() < deadline, "the room was never taken over"
        await asyncio.sleep(0.2)


def test_a_room_that_moves_gets_its_media_room_on_the_new_nodes_janus():
    async def scenario():
        pg = Postgres()
        j1, j2 = janus.Janus(), janus.Janus()
        a, b = node("sfu-a", pg, j1), node("sfu-b", pg, j2)
        try:
            room = "sfu-moves"
            fac = await Client.join(a, room, "facilitator", "fac", sub="f-1")
            member = await Client.join(a, room, "participant", "m", sub="p-1")
            await fac.request("admit", member=member.welcome["you"]["id"])
            await member.expect("admitted")
            first = {}
            for c in (fac, member):
                first[c.name], _ = await publish(c)
            # The machine is lost: the node and its Janus.
            a.process.send_signal(signal.SIGKILL)
            j1.kill()
            a.process.wait(5)
            deadline = time.monotonic() + 15
            back = {c.name: await resume_on(b, room, c, deadline) for c in (fac, member)}
            for name, c in back.items():
                # A new media session from the new node, on its Janus: publishing works again.
                session = await c.expect(lambda m: m["type"] == "sfu-session", timeout=10)
                assert session["publish"] is True
                await c.send("sfu-publish", session=session["session"], sdp=offer_sdp(name + "-again"))
                answer = await c.expect(lambda m: m["type"] == "sfu-answer", timeout=10)
                assert answer["session"] == session["session"] and answer["sdp"].startswith("v=0")
            assert refused(b) == []
            # The room's VideoRoom now lives on the new node's Janus, with both publishers' handles.
            rooms = videorooms(j2)
            assert len(rooms) == 1 and rooms[0]["num_participants"] == 2, rooms
        finally:
            for server in (a, b):
                if server.process.poll() is None:
                    server.stop()
            j1.stop()
            j2.stop()
            pg.stop()

    run(scenario(), timeout=120)
