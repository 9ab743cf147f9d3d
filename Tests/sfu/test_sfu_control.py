"""SFU mode's control plane (docs/protocol.md §11) against a real Janus: media sessions, publish
offers relayed to Janus and its answers back, waiting members and observers, grants, breakouts,
the refusals, and Janus lost and back. The offers here are written by hand and never carry
media, so Janus never subscribes anyone to them (it waits for a publisher's media): what
subscriptions carry, mutes in the media path and removal are the browser tests' subject
(Tests/browser/test_sfu.py), with real WebRTC."""
import asyncio
import json
import os
import urllib.request

import janus
from conftest import run
from hearth import Client, Server, client_tls

FINGERPRINT = ":".join(["AB"] * 32)


def offer_sdp(tag):
    """A publisher's offer as a browser makes it (audio mid 0, video mid 1, sendonly)."""
    lines = ["v=0", f"o=- {abs(hash(tag)) % 10**15} 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
             f"a=msid-semantic: WMS {tag}"]
    for mid, (kind, pt, rtpmap, ssrc) in enumerate([("audio", 111, "opus/48000/2", 1001),
                                                    ("video", 96, "VP8/90000", 2001)]):
        lines += [f"m={kind} 9 UDP/TLS/RTP/SAVPF {pt}", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
                  "a=ice-ufrag:abcd", "a=ice-pwd:abcdefghijklmnopqrstuvwx", "a=ice-options:trickle",
                  f"a=fingerprint:sha-256 {FINGERPRINT}", "a=setup:actpass", f"a=mid:{mid}", "a=sendonly",
                  f"a=msid:{tag} {kind}", "a=rtcp-mux", f"a=rtpmap:{pt} {rtpmap}", f"a=ssrc:{ssrc} cname:{tag}"]
    return "\r\n".join(lines) + "\r\n"


def answer_sdp(offer):
    """A subscriber's answer to Janus's offer: every m-line accepted recvonly."""
    out, mids = [], []
    session = ["v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0"]
    sections = offer.split("\r\nm=")[1:]
    body = []
    for section in sections:
        lines = ("m=" + section).split("\r\n")
        m = lines[0].split()
        mid = next(l[6:] for l in lines if l.startswith("a=mid:"))
        mids.append(mid)
        pts = m[3:]
        body += [f"{m[0]} 9 {m[2]} {' '.join(pts)}", "c=IN IP4 0.0.0.0", "a=ice-ufrag:wxyz",
                 "a=ice-pwd:zyxwvutsrqponmlkjihgfedc", f"a=fingerprint:sha-256 {FINGERPRINT}", "a=setup:active",
                 f"a=mid:{mid}", "a=recvonly" if m[1] != "0" else "a=inactive", "a=rtcp-mux"]
        body += [l for l in lines if l.startswith("a=rtpmap:")]
    out = session + [f"a=group:BUNDLE {' '.join(mids)}"] + body
    return "\r\n".join(out) + "\r\n"


class Room:
    """A hearthd in SFU mode with a Janus, and helpers for one room."""

    def __init__(self, **rooms):
        self.janus = janus.Janus()
        self.server = Server(sfu=self.janus.hearthd_config, rooms={"graceSeconds": 4, "media": "sfu", **rooms})

    def health(self):
        with urllib.request.urlopen(f"https://127.0.0.1:{self.server.port}/healthz", context=client_tls(),
                                    timeout=5) as r:
            return json.loads(r.read())

    async def wait_sfu(self, up, timeout=10):
        for _ in range(int(timeout * 10)):
            if (self.health().get("sfu") == "up") == up:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"sfu never {'up' if up else 'down'}: {self.health()}")

    def close(self):
        code = self.server.stop()
        self.janus.stop()
        assert code == 0, self.server.log()


def refused(server):
    """Janus's refusals in hearthd's log, whole lines (the request, code and reason)."""
    return [line for line in server.log().splitlines() if "media server refused" in line]


async def admitted(room, name, role="participant", fac=None, **claims):
    c = await Client.join(room.server, "g1", role, name, **claims)
    if role in ("facilitator", "cofacilitator"):
        return c
    if c.welcome["you"]["placement"] == "waiting":
        await fac.request("admit", member=c.welcome["you"]["id"])
        await c.expect("admitted")
    return c


async def publish(c):
    """Waits for the member's session, publishes, and returns (session, answer)."""
    s = await c.expect("sfu-session", timeout=10)
    assert s["publish"] is True
    await c.send("sfu-publish", session=s["session"], sdp=offer_sdp(c.name))
    answer = await c.expect("sfu-answer", timeout=10)
    assert answer["session"] == s["session"] and answer["sdp"].startswith("v=0")
    return s["session"], answer


async def subscribe(c, session, members, timeout=10):
    """Waits for an offer naming exactly `members` (audio and video each), answers it."""
    def names(o):
        return sorted({s["member"] for s in o["streams"]})
    while True:
        offer = await c.expect(lambda m: m["type"] == "sfu-offer" and m["session"] == session, timeout=timeout)
        if names(offer) == sorted(members):
            break
    kinds = sorted((s["member"], s["kind"]) for s in offer["streams"])
    assert kinds == sorted((m, k) for m in members for k in ("audio", "video"))
    await c.send("sfu-subscribe", session=session, sdp=answer_sdp(offer["sdp"]))
    return offer


def test_members_publish_and_subscribe_to_each_other_and_refusals():
    async def scenario():
        room = Room()
        try:
            await room.wait_sfu(True)
            fac = await admitted(room, "fac", "facilitator")
            assert fac.welcome["room"]["state"]["media"] == "sfu"
            fs, _ = await publish(fac)
            a = await admitted(room, "a", fac=fac)
            as_, _ = await publish(a)
            assert as_ != fs
            # Refusals: a stale session, a malformed message, and a waiting member.
            await a.send("sfu-publish", session=as_ + 1000, sdp=offer_sdp("x"))
            assert (await a.expect("error"))["code"] == "sfu-stale"
            await a.send("sfu-publish", session=as_, sdp="")
            assert (await a.expect("error"))["code"] == "bad-message"
            await a.send("sfu-candidate", session=as_, pc="sideways", candidate=None)
            assert (await a.expect("error"))["code"] == "bad-message"
            w = await Client.join(room.server, "g1", "participant", "w")
            assert w.welcome["you"]["placement"] == "waiting"
            await w.send("sfu-publish", session=1, sdp=offer_sdp("w"))
            assert (await w.expect("error"))["code"] == "not-admitted"
            assert all(not m["type"].startswith("sfu-") for m in w.seen)
            # Trickle to both connections is accepted silently.
            await a.send("sfu-candidate", session=as_, pc="publish",
                         candidate={"candidate": "candidate:1 1 udp 2122260223 10.77.0.2 50000 typ host",
                                    "sdpMid": "0", "sdpMLineIndex": 0})
            await a.send("sfu-candidate", session=as_, pc="subscribe", candidate=None)
            assert [m for m in await a.drain(0.5) if m["type"] == "error"] == []
            # A second offer in the same session (a renegotiation) is answered too.
            await a.send("sfu-publish", session=as_, sdp=offer_sdp("a2"))
            assert (await a.expect("sfu-answer", timeout=10))["session"] == as_
            # Removed: no more media session; a resume is a new one.
            await fac.request("remove", member=a.welcome["you"]["id"], ban=False)
            assert await a.closed() is not None
            assert refused(room.server) == []
        finally:
            room.close()
    run(scenario(), timeout=90)


def test_observers_without_a_grant_only_subscribe_and_mesh_rooms_refuse():
    async def scenario():
        room = Room()
        try:
            await room.wait_sfu(True)
            fac = await admitted(room, "fac", "facilitator")
            fs, _ = await publish(fac)
            o = await admitted(room, "obs", "observer", fac=fac)
            s = await o.expect("sfu-session", timeout=10)
            assert s["publish"] is False
            await o.send("sfu-publish", session=s["session"], sdp=offer_sdp("o"))
            assert (await o.expect("error"))["code"] == "forbidden"
            # A grant is a new session, with publishing.
            await fac.request("grant", member=o.welcome["you"]["id"], media=True, chat=False)
            s2 = await o.expect("sfu-session", timeout=10)
            assert s2["publish"] is True and s2["session"] > s["session"]
        finally:
            room.close()
        mesh = Server()
        try:
            c = await Client.join(mesh, "g2", "facilitator", "fac")
            assert c.welcome["room"]["state"]["media"] == "mesh"
            await c.send("sfu-publish", session=1, sdp=offer_sdp("m"))
            assert (await c.expect("error"))["code"] == "sfu-unavailable"
        finally:
            assert mesh.stop() == 0
    run(scenario(), timeout=90)


def test_breakouts_are_separate_media_rooms():
    async def scenario():
        room = Room()
        try:
            await room.wait_sfu(True)
            fac = await admitted(room, "fac", "facilitator")
            fs, _ = await publish(fac)
            members = [await admitted(room, n, fac=fac) for n in ("a", "b", "c", "d")]
            for m in members:
                await publish(m)
            ids = [m.welcome["you"]["id"] for m in members]
            await fac.request("breakouts-plan", breakouts=[{"name": "one", "members": ids[:2]},
                                                          {"name": "two", "members": ids[2:]}])
            await fac.request("breakouts-open")
            sessions = {}
            for m in members:
                sessions[m.name], _ = await publish(m)  # a move is a new media session
            # The facilitator did not move: no new session.
            assert [x for x in await fac.drain(0.5) if x["type"] == "sfu-session"] == []
            await fac.request("breakouts-close")
            for m in members:
                session, _ = await publish(m)
                assert session > sessions[m.name]
        finally:
            room.close()
    run(scenario(), timeout=120)


def test_janus_lost_then_back_control_and_chat_go_on():
    async def scenario():
        room = Room()
        try:
            await room.wait_sfu(True)
            fac = await admitted(room, "fac", "facilitator")
            await publish(fac)
            a = await admitted(room, "a", fac=fac)
            await publish(a)
            room.janus.kill()
            closed = await a.expect("sfu-closed", timeout=10)
            assert closed["reason"] == "unavailable"
            await fac.expect("sfu-closed", timeout=10)
            await room.wait_sfu(False)
            # Control and chat still work; SFU messages are refused meanwhile.
            await fac.request("chat", to="room", text="still here")
            assert (await a.expect("chat"))["message"]["text"] == "still here"
            await a.send("sfu-publish", session=1, sdp=offer_sdp("a"))
            assert (await a.expect("error"))["code"] == "sfu-unavailable"
            room.janus.start()
            await room.wait_sfu(True, timeout=15)
            await publish(a)
            await publish(fac)
            assert "media server link lost" in room.server.log()
        finally:
            room.close()
    run(scenario(), timeout=90)
