"""A whole group session through hearthd, over real TLS, with an independent client."""
import base64
import hashlib
import hmac
import json
import re
import time

import websockets
from conftest import run
from hearth import Client, mint


def test_whole_session(server):
    run(whole_session(server))


async def whole_session(server):
    room = "group-a"
    consent = {"consentVersion": "2026-01"}
    fac = await Client.join(server, room, "facilitator", "Dr. F", sub="fac-1", **consent)
    assert fac.welcome["you"]["placement"] == "room"
    assert fac.welcome["resumeSecret"]
    # TURN REST credentials (coturn use-auth-secret), checked independently: the username is
    # "<expiry>:c<connection id>" (never the user id) and the credential HMAC-SHA1 of it with
    # the configured secret ("turn-secret" in hearth.py), base64.
    ice = fac.welcome["iceServers"][0]
    expiry, user = ice["username"].split(":", 1)
    assert re.fullmatch(r"c[0-9]+", user), ice["username"]
    assert time.time() < int(expiry) <= time.time() + 3600 + 5, "expires after the default TTL"
    expected = base64.b64encode(hmac.new(b"turn-secret", ice["username"].encode(), hashlib.sha1).digest()).decode()
    assert ice["credential"] == expected

    # Three members arrive and wait; none learns about the others or the room.
    members = []
    for i in range(3):
        m = await Client.join(server, room, "participant", f"Member {i}", sub=f"pt-{i}")
        assert m.welcome["you"]["placement"] == "waiting"
        assert "room" not in m.welcome
        members.append(m)
    waiting = await fac.drain()
    assert sum(1 for x in waiting if x["type"] == "waiting-updated") >= 3

    # Admission needs the consent version; then the facilitator admits everyone.
    refused = await fac.send("admit", member=members[0].welcome["you"]["id"])
    error = await fac.expect(lambda x: x.get("rid") == refused)
    assert error["type"] == "error" and error["code"] == "consent-required"
    for m in members:
        await m.request("consent", version="2026-01")
    for m in members:
        for other in members:
            assert all(x["type"] in ("ack", "waiting", "welcome") for x in other.seen), other.seen
    ack = await fac.request("admit-all")
    assert len(ack["admitted"]) == 3
    for m in members:
        admitted = await m.expect("admitted")
        names = {x["alias"] for x in admitted["room"]["members"]}
        assert all("userId" not in x for x in admitted["room"]["members"] if x["id"] != m.welcome["you"]["id"])
        # The snapshot plus the arrivals after it: everyone knows the whole group.
        joined = [x["member"]["alias"] for x in await m.drain() if x["type"] == "member-joined"]
        assert names | set(joined) == {"Dr. F", "Member 0", "Member 1", "Member 2"}

    # Chat fans out to everyone admitted.
    await members[0].request("chat", to="room", text="hello everyone")
    for c in [fac] + members:
        chat = await c.expect("chat")
        assert chat["message"]["text"] == "hello everyone"

    # Signalling relay between two members, payload intact.
    offer = {"sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n" + "a=x\r\n" * 50, "type": "offer"}
    p1 = members[1].welcome["you"]["id"]
    await members[0].request("signal", to=p1, kind="offer", payload=offer)
    relayed = await members[1].expect("signal")
    assert relayed["payload"] == offer and relayed["kind"] == "offer"

    # Mute and hand raise are seen by all.
    p0 = members[0].welcome["you"]["id"]
    await members[0].request("media", audio=True, video=True)
    await fac.request("mute", member=p0, audio=True)
    await members[2].expect(lambda x: x["type"] == "member-updated" and x["member"]["id"] == p0 and not x["member"]["audio"])
    await members[1].request("raise-hand")
    await fac.expect(lambda x: x["type"] == "member-updated" and "handRaisedAt" in x["member"])

    # A member may not use facilitator controls.
    rid = await members[1].send("lock")
    err = await members[1].expect(lambda x: x.get("rid") == rid)
    assert err == {"type": "error", "rid": rid, "code": "forbidden", "message": err["message"]}

    # Remove with ban: closed, and the same user cannot come back with a new token.
    await fac.request("remove", member=p0, ban=True, reason="safety")
    removed = await members[0].expect("removed")
    assert removed["banned"] is True
    assert await members[0].closed() == 4003
    again = await Client.connect(server, room, "again")
    await again.send("hello", token=mint(room, "participant", "Member 0", sub="pt-0"))
    err = await again.expect("error")
    assert err["code"] == "banned"
    assert await again.closed() == 4003

    # End: everyone is told and closed.
    await fac.send("end")
    for c in [fac, members[1], members[2]]:
        await c.expect("ended")
        assert await c.closed() == 4000
    # The audit trail has the story (its last row, the end, committed), and no chat text.
    audit = server.wait_records("audit", lambda rows: any(r["action"] == "end" and r["room"] == room for r in rows))
    actions = [r["action"] for r in audit]
    for action in ["arrive", "consent", "admit", "mute", "ban", "end"]:
        assert action in actions, action
    assert "hello everyone" not in json.dumps(audit)


def test_resume_after_drop_replays_missed_messages(server):
    run(resume_after_drop(server))


async def resume_after_drop(server):
    room = "group-resume"
    fac = await Client.join(server, room, "facilitator", "F", sub="f-r")
    m = await Client.join(server, room, "participant", "M", sub="m-r")
    await fac.request("admit", member=m.welcome["you"]["id"])
    await m.expect("admitted")
    await m.drain(0.2)
    secret, last = m.welcome["resumeSecret"], m.last_seq
    m.ws.transport.abort()  # the TCP connection vanishes, no close frame
    await fac.expect(lambda x: x["type"] == "member-updated" and not x["member"]["connected"])
    for i in range(5):
        await fac.request("chat", to="room", text=f"missed {i}")
    back = await Client.connect(server, room, "back")
    await back.send("resume", secret=secret, lastSeq=last)
    resumed = await back.expect("resumed")
    assert resumed["you"]["placement"] == "room" and not resumed["gap"]
    texts = [x["message"]["text"] for x in await back.drain() if x["type"] == "chat"]
    assert texts == [f"missed {i}" for i in range(5)]


def test_wrong_resume_secret_is_refused_then_hello_works(server):
    run(wrong_resume(server))


async def wrong_resume(server):
    c = await Client.connect(server, "group-x", "x")
    await c.send("resume", secret="not-a-secret", lastSeq=0)
    assert (await c.expect("error"))["code"] == "resume-failed"
    assert await c.closed() == 4401
    c = await Client.connect(server, "group-x", "x")
    await c.send("hello", token=mint("group-x", "facilitator", "F"))
    await c.expect("welcome")
