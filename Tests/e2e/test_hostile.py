"""Hostile input against the running server (issue 4).

Every case is answered with a documented `error` or close code (docs/protocol.md sections 7
and 8), and after every test the server is still healthy: `/healthz` answers, a fresh
facilitator can join and chat, and a bystander room (a facilitator and an admitted
participant, connected for the whole module on their own event loop) has received nothing
from the hostile traffic and can still chat and signal.

The module's server is the usual test server (conftest.py's, with a failed-authentication
budget of 100: every refused token, resume and refresh below spends it, all from 127.0.0.1):
`maxMalformedMessages` is 5
(the sixth refusal on one connection closes it with 1008) and `helloTimeoutSeconds` is 2, so
pre-hello cases are sent in small batches on fresh connections. Everything is on loopback and
every test is bounded by `run(..., timeout)`.
"""
import asyncio
import base64
import hashlib
import hmac
import json
import ssl
import threading
import time
import uuid

import pytest
import websockets
from conftest import run
from hearth import DEV_SECRET, Client, Server, b64url, client_tls, mint

BYSTANDER_ROOM = "bystander-room"
BYSTANDER_STAFF = "bystander-staff-1"
BYSTANDER_PATIENT = "bystander-patient-2"
MAX_MESSAGE_BYTES = 65_536  # limits.maxMessageBytes default
MAX_BAD = 5  # Server(): limits.maxMalformedMessages


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def server():
    s = Server(rateLimits={"authFailureBurst": 100})
    yield s
    code = s.stop()
    assert code == 0, f"hearthd exited with {code}:\n{s.log()}"


# MARK: the bystander room, on its own event loop for the whole module


class Bystanders:
    """Two members of a room nobody hostile is in. Their websockets live on a background
    event loop (a connection cannot move between the `asyncio.run` loops of the tests)."""

    def __init__(self, server):
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.checks = 0
        self.call(self._open())

    def call(self, coro, timeout=20):
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, timeout), self.loop)
        return future.result(timeout + 5)

    async def _open(self):
        self.staff = await Client.join(self.server, BYSTANDER_ROOM, "facilitator", "Bystander F", sub=BYSTANDER_STAFF)
        self.patient = await Client.join(self.server, BYSTANDER_ROOM, "participant", "Bystander P",
                                         sub=BYSTANDER_PATIENT)
        self.staff_id = self.staff.welcome["you"]["id"]
        self.patient_id = self.patient.welcome["you"]["id"]
        assert (self.staff_id, self.patient_id) == ("p1", "p2")
        await self.staff.expect(lambda m: m["type"] == "waiting-updated" and m["member"]["id"] == "p2")
        await self.staff.request("admit", member="p2")
        await self.patient.expect("admitted")
        await self.staff.drain(0.3)
        await self.patient.drain(0.3)

    async def _check(self):
        """Nothing arrived since the last check; chat and signalling still work both ways."""
        self.checks += 1
        n = self.checks
        for c in (self.staff, self.patient):
            stray = await c.drain(0.25)
            assert stray == [], f"bystander {c.name} received hostile traffic: {stray}"
        await self.staff.request("chat", to="room", text=f"staff check {n}")
        for c in (self.staff, self.patient):
            got = await c.expect("chat")
            assert got["message"]["text"] == f"staff check {n}" and got["message"]["from"] == "p1"
        await self.patient.request("chat", to="room", text=f"patient check {n}")
        for c in (self.staff, self.patient):
            got = await c.expect("chat")
            assert got["message"]["text"] == f"patient check {n}" and got["message"]["from"] == "p2"
        await self.patient.request("signal", to="p1", kind="ice", payload={"candidate": f"c{n}"})
        got = await self.staff.expect("signal")
        assert got["from"] == "p2" and got["payload"] == {"candidate": f"c{n}"}
        for c in (self.staff, self.patient):
            assert await c.drain(0.1) == []

    def check(self):
        self.call(self._check())

    def secret(self, who):
        return (self.staff if who == "staff" else self.patient).welcome["resumeSecret"]

    def close(self):
        async def bye():
            for c in (self.staff, self.patient):
                await c.close()
        try:
            self.call(bye(), timeout=5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


@pytest.fixture(scope="module")
def bystanders(server):
    b = Bystanders(server)
    yield b
    b.close()


@pytest.fixture(autouse=True)
def still_healthy(server, bystanders):
    """After each test: /healthz, a fresh facilitator joins and chats, bystanders untouched."""
    yield
    assert server.process.poll() is None, f"hearthd died:\n{server.log()[-4000:]}"
    with server.https("/healthz") as r:
        assert r.status == 200 and json.loads(r.read())["status"] == "ok"

    async def fresh():
        c = await Client.join(server, unique("after"), "facilitator", "Fresh F")
        ack = await c.request("chat", to="room", text="after the storm")
        got = await c.expect("chat")
        assert got["message"]["id"] == ack["message"] and got["message"]["text"] == "after the storm"
        await c.close()
    run(fresh(), timeout=15)
    bystanders.check()


# MARK: helpers


async def error_reply(c, frame, code, rid=None, text=None):
    """Sends a raw text frame (str, or bytes sent as a text frame) and expects one error."""
    if isinstance(frame, bytes):
        await c.ws.send(frame, text=True)
    else:
        await c.ws.send(frame)
    err = await c.expect("error")
    assert err["code"] == code, (frame[:200], err)
    if rid is None:
        assert "rid" not in err, (frame[:200], err)
    else:
        assert err["rid"] == rid, (frame[:200], err)
    return err


async def joined(server, room=None, role="facilitator", name="Hostile F", **claims):
    return await Client.join(server, room or unique("hostile"), role, name, **claims)


async def expect_errors(server, cases, room=None):
    """(frame, code, rid) cases on joined connections, at most MAX_BAD refusals each (shell
    refusals count toward the 1008 close), each connection proven alive with a ping after."""
    room = room or unique("errors")
    for start in range(0, len(cases), MAX_BAD):
        c = await joined(server, room)
        for frame, code, rid in cases[start:start + MAX_BAD]:
            await error_reply(c, frame, code, rid)
        await c.ws.send('{"type":"ping","rid":"alive"}')
        assert (await c.expect("pong"))["rid"] == "alive"
        await c.close()


async def closed_with(c, timeout=5.0):
    """The close code the server sent (None if the connection dropped without one)."""
    try:
        while True:
            await c.next(timeout)
    except websockets.ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else None


def j(**fields):
    return json.dumps(fields)


# MARK: framing and JSON


def test_invalid_utf8_text_frame_closes_1007(server):
    """libwebsockets validates UTF-8 (LWS_SERVER_OPTION_VALIDATE_UTF8) before the decoder
    sees the frame: invalid UTF-8 in a text frame fails the WebSocket with 1007."""
    async def go():
        for frame in [
            b'{"type":"ping","rid":"\xc3\x28"}',       # bad continuation
            b'{"type":"ping","rid":"\xc0\xaf"}',       # overlong "/"
            b'{"type":"ping","rid":"\xed\xa0\x80"}',   # UTF-16 surrogate
            b'{"type":"ping","rid":"\xf4\x90\x80\x80"}',  # above U+10FFFF
            b"\xff\xfe\xfd",
        ]:
            c = await Client.connect(server, unique("utf8"))
            await c.ws.send(frame, text=True)
            assert await closed_with(c) == 1007, frame
        # Split across fragments: each fragment is valid on its own boundary check only
        # if the validator keeps state; "\xe2\x82" + "\x28" is invalid.
        c = await Client.connect(server, unique("utf8"))
        await c.ws.send([b'{"type":"ping","rid":"\xe2\x82', b'\x28"}'], text=True)
        assert await closed_with(c) == 1007
        # A joined member is closed the same way; the room keeps their seat (held).
        room = unique("utf8-room")
        staff = await joined(server, room)
        patient = await joined(server, room, "participant", "P")
        await patient.ws.send(b'{"type":"chat","to":"room","text":"\xff"}', text=True)
        assert await closed_with(patient) == 1007
        left = await staff.expect(lambda m: m["type"] == "waiting-updated" and not m["member"]["connected"])
        assert left["member"]["id"] == patient.welcome["you"]["id"]
        await staff.close()
    run(go())


def test_valid_multibyte_utf8_is_fine(server):
    async def go():
        c = await joined(server)
        ack = await c.request("chat", to="room", text="café ☕ 𝄞 — ok")
        assert (await c.expect("chat"))["message"]["id"] == ack["message"]
        await c.close()
    run(go())


def test_deep_nesting_is_bad_message(server):
    async def go():
        await expect_errors(server, [
            ("[" * 10_000, "bad-message", None),
            ("{" * 10_000, "bad-message", None),
            ('{"a":' * 5_000 + "1" + "}" * 5_000, "bad-message", None),
            # 33 levels in an otherwise valid signal (the message is level 1).
            (j(type="signal", rid="s", to="p1", kind="ice", payload=json.loads("[" * 32 + "]" * 32)),
             "bad-message", None),
            ("[" * 10_000 + "]" * 10_000, "bad-message", None),
        ])
        # Brackets inside strings do not count, and 32 levels are allowed.
        c = await joined(server)
        await c.ws.send(j(type="ping", rid="s1", pad="[" * 10_000))
        assert (await c.expect("pong"))["rid"] == "s1"
        deep = json.loads("[" * 31 + "]" * 31)
        await c.ws.send(j(type="ping", rid="s2", pad=deep))
        assert (await c.expect("pong"))["rid"] == "s2"
        await c.close()
    run(go())


def test_huge_numbers(server):
    async def go():
        await expect_errors(server, [
            ('{"type":"ping","rid":"n1","x":1e400}', "bad-message", None),
            ('{"type":"ping","rid":"n2","x":-1e400}', "bad-message", None),
            (f'{{"type":"ping","rid":"n3","x":{2**70}}}', "bad-message", None),
            (f'{{"type":"resume","rid":"n4","secret":"s","lastSeq":{2**64}}}', "bad-message", None),
            ('{"type":"resume","rid":"n5","secret":"s","lastSeq":' + "9" * 5000 + "}", "bad-message", None),
            # In range but not allowed: negative, real, string.
            ('{"type":"resume","rid":"n6","secret":"s","lastSeq":-1}', "bad-message", "n6"),
            ('{"type":"resume","rid":"n7","secret":"s","lastSeq":1.0}', "bad-message", "n7"),
            ('{"type":"resume","rid":"n8","secret":"s","lastSeq":"1"}', "bad-message", "n8"),
        ])
        # Fits 64 bits: decodes; 1e-400 underflows to 0.0, which is a valid real.
        c = await joined(server)
        await c.ws.send('{"type":"ping","rid":"u","x":1e-400,"y":' + str(2**63 - 1) + "}")
        assert (await c.expect("pong"))["rid"] == "u"
        await c.close()
        c = await Client.connect(server, unique("numbers"))
        await c.ws.send(f'{{"type":"resume","rid":"r","secret":"s","lastSeq":{2**63 - 1}}}')
        assert (await c.expect("error"))["code"] == "resume-failed"
        assert await closed_with(c) == 4401
    run(go())


def test_huge_strings_around_max_message_bytes(server):
    async def go():
        c = await joined(server)
        # Exactly maxMessageBytes: accepted.
        head = '{"type":"ping","rid":"big","pad":"'
        frame = head + "x" * (MAX_MESSAGE_BYTES - len(head) - 2) + '"}'
        assert len(frame.encode()) == MAX_MESSAGE_BYTES
        await c.ws.send(frame)
        assert (await c.expect("pong"))["rid"] == "big"
        # A chat text far over the room's limit but under the frame limit: too-long.
        await c.ws.send(j(type="chat", rid="long", to="room", text="y" * 60_000))
        assert (await c.expect("error"))["code"] == "too-long"
        # Chat text is limited in bytes: 1000 two-byte characters fit, 1001 do not.
        ack = await c.request("chat", to="room", text="é" * 1000)
        assert (await c.expect("chat"))["message"]["id"] == ack["message"]
        await c.ws.send(j(type="chat", rid="long2", to="room", text="é" * 1001))
        err = await c.expect("error")
        assert (err["code"], err["rid"]) == ("too-long", "long2")
        # One byte over: close 1009.
        frame = head + "x" * (MAX_MESSAGE_BYTES - len(head) - 1) + '"}'
        await c.ws.send(frame)
        assert await closed_with(c) == 1009
        # A much larger frame, before hello.
        c = await Client.connect(server, unique("huge"))
        await c.ws.send("z" * (1 << 20))
        assert await closed_with(c) == 1009
    run(go())


def test_duplicate_keys_are_bad_json(server):
    async def go():
        await expect_errors(server, [
            ('{"type":"ping","type":"hello","rid":"d1"}', "bad-json", None),
            ('{"type":"chat","rid":"d2","to":"room","text":"a","text":"b"}', "bad-json", None),
            ('{"type":"ping","rid":"d3","rid":"d4"}', "bad-json", None),
            ('{"type":"signal","rid":"d5","to":"p1","kind":"ice","payload":{"a":1,"a":2}}', "bad-json", None),
        ])
    run(go())


def test_not_an_object_or_not_json(server):
    async def go():
        await expect_errors(server, [
            ("[]", "bad-json", None),
            ('"ping"', "bad-json", None),
            ("null", "bad-json", None),
            ("", "bad-json", None),
            ('{"type":"ping"}\n{"type":"ping"}', "bad-json", None),  # one object per frame
            ("\ufeff" + '{"type":"ping"}', "bad-json", None),
            ("{'type':'ping'}", "bad-json", None),
            ('{"type":"ping",}', "bad-json", None),
            ("NaN", "bad-json", None),
        ])
    run(go())


def test_null_bytes(server):
    async def go():
        await expect_errors(server, [
            ('{"type":"ping"}\x00', "bad-json", None),
            ('\x00{"type":"ping"}', "bad-json", None),
            ('{"type":"chat","rid":"z1","to":"room","text":"a\x00b"}', "bad-json", None),   # raw NUL
            ('{"type":"chat","rid":"z2","to":"room","text":"a\\u0000b"}', "bad-json", None),  # escaped
            ('{"type":"ping","rid":"z3\\u0000"}', "bad-json", None),
            ('{"type\\u0000":"ping"}', "bad-json", None),
        ])
    run(go())


def test_wrong_field_types(server):
    async def go():
        await expect_errors(server, [
            ('{"type":7,"rid":"w1"}', "bad-message", "w1"),
            ('{"type":null,"rid":"w2"}', "bad-message", "w2"),
            ('{"type":"ping","rid":7}', "bad-message", None),
            ('{"type":"ping","rid":["a"]}', "bad-message", None),
            (j(type="chat", rid="w3", to="room", text=42), "bad-message", "w3"),
            (j(type="chat", rid="w4", to=["room"], text="x"), "bad-message", "w4"),
            (j(type="chat", rid="w5", to="everyone", text="x"), "bad-message", "w5"),
            (j(type="media", rid="w6", audio="yes"), "bad-message", "w6"),
            (j(type="media", rid="w7", audio=1), "bad-message", "w7"),
            (j(type="signal", rid="w8", to="p1", kind="sdp", payload={}), "bad-message", "w8"),
            (j(type="set-role", rid="w9", member="p1", role="admin"), "bad-message", "w9"),
            (j(type="spotlight", rid="w10", member=1), "bad-message", "w10"),
            (j(type="grant", rid="w11", member="p1", media="true", chat=False), "bad-message", "w11"),
            (j(type="settings", rid="w12", chatPolicy="anyone"), "bad-message", "w12"),
            (j(type="hello", rid="w13", token=["x"]), "bad-message", "w13"),
            (j(type="remove", rid="w14", member="p2", ban="yes"), "bad-message", "w14"),
        ])
    run(go())


def test_missing_fields(server):
    async def go():
        await expect_errors(server, [
            ('{"rid":"m1"}', "bad-message", "m1"),
            ("{}", "bad-message", None),
            (j(type="chat", rid="m2", to="room"), "bad-message", "m2"),
            (j(type="chat", rid="m3", text="x"), "bad-message", "m3"),
            (j(type="signal", rid="m4", to="p1", kind="ice"), "bad-message", "m4"),
            (j(type="admit", rid="m5"), "bad-message", "m5"),
            (j(type="spotlight", rid="m6"), "bad-message", "m6"),  # required, may be null
            (j(type="grant", rid="m7", member="p1", media=True), "bad-message", "m7"),
            (j(type="resume", rid="m8", secret="s"), "bad-message", "m8"),
            (j(type="hello", rid="m9"), "bad-message", "m9"),
            (j(type="refresh", rid="m10"), "bad-message", "m10"),
        ])
        # null is absent: optional fields may be null, required ones may not.
        c = await joined(server)
        await c.request("media", audio=None, video=True)
        await c.request("spotlight", member=None)
        await error_reply(c, j(type="chat", rid="m11", to="room", text=None), "bad-message", "m11")
        await c.close()
    run(go())


def test_unknown_types(server):
    async def go():
        await expect_errors(server, [
            (j(type="dance", rid="t1"), "unknown-type", "t1"),
            (j(type="HELLO", rid="t2", token="x"), "unknown-type", "t2"),
            (j(type="", rid="t3"), "unknown-type", "t3"),
            (j(type="__proto__", rid="t4"), "unknown-type", "t4"),
            (j(type="welcome", rid="t5"), "unknown-type", "t5"),  # a server message type
            (j(type="error", rid="t6", code="x"), "unknown-type", "t6"),
            (j(type="ping ", rid="t7"), "unknown-type", "t7"),
        ])
    run(go())


def test_rid_limits(server):
    async def go():
        c = await joined(server)
        for rid in ["r" * 64, "é" * 32, "☕" * 21]:  # 64, 64 and 63 bytes
            await c.ws.send(j(type="ping", rid=rid))
            assert (await c.expect("pong"))["rid"] == rid
        await c.close()
        await expect_errors(server, [
            (j(type="ping", rid="r" * 65), "bad-message", None),
            (j(type="ping", rid="é" * 33), "bad-message", None),  # 33 characters, 66 bytes
            (j(type="ping", rid="r" * 10_000), "bad-message", None),
            (j(type="ping", rid=""), "bad-message", None),
            (j(type="chat", rid="r" * 65, to="room", text="x"), "bad-message", None),
        ])
    run(go())


def test_bad_messages_accumulate_to_1008(server):
    async def go():
        room = unique("accumulate")
        staff = await joined(server, room)
        patient = await joined(server, room, "participant", "P")
        for i in range(MAX_BAD):
            await error_reply(patient, "{", "bad-json")
        await patient.ws.send("{")
        assert await closed_with(patient) == 1008
        # The room noticed a dropped connection, nothing more.
        got = await staff.expect(lambda m: m["type"] == "waiting-updated" and not m["member"]["connected"])
        assert got["member"]["id"] == "p2"
        await staff.close()
    run(go())


# MARK: frames


def test_binary_frames_close_1003(server):
    async def go():
        c = await Client.connect(server, unique("binary"))
        await c.ws.send(b"\x00\x01")
        assert await closed_with(c) == 1003
        c = await joined(server)
        await c.ws.send(j(type="ping").encode(), text=False)  # valid JSON, binary frame
        assert await closed_with(c) == 1003
        # The first fragment of a fragmented binary message is enough (raw socket: sending
        # the rest would race the close frame against a TCP reset).
        reader, writer = await _raw_upgrade(server, unique("binary"))
        writer.write(_masked_frame_header(0x2, 10, fin=False) + b"\x00\x00\x00\x00" + b"\x01" * 10)
        await writer.drain()
        assert await _raw_close_code(reader) == 1003
        writer.close()
    run(go())


def test_many_fragments_under_the_limit_are_reassembled(server):
    async def go():
        c = await joined(server)
        text = j(type="chat", rid="frag", to="room", text="pieced together " + "z" * 1000)
        await c.ws.send(iter(list(text)))  # one character per frame
        ack = await c.expect(lambda m: m.get("rid") == "frag")
        assert ack["type"] == "ack"
        assert (await c.expect("chat"))["message"]["text"].startswith("pieced together")
        # Empty continuation frames carry no bytes; under the cap on pieces they are reassembled.
        await c.ws.send(iter(['{"type":"ping",'] + [""] * 2_000 + ['"rid":"empty"}']))
        assert (await c.expect("pong", timeout=10))["rid"] == "empty"
        await c.close()
        # Past the cap (4096 pieces per message) the connection is closed with 1009. Raw
        # socket: exactly one piece over, then read, so the close frame is not lost to a reset.
        reader, writer = await _raw_upgrade(server, unique("fragments"))
        first = b'{"type":"ping",'
        writer.write(_masked_frame_header(0x1, len(first), fin=False) + b"\x00\x00\x00\x00" + first)
        for _ in range(4096):
            writer.write(_masked_frame_header(0x0, 0, fin=False) + b"\x00\x00\x00\x00")
        await writer.drain()
        assert await _raw_close_code(reader) == 1009
        writer.close()
    run(go(), timeout=90)


def _masked_frame_header(opcode, length, fin=True):
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        return bytes([first, 0x80 | length])
    if length < 1 << 16:
        return bytes([first, 0x80 | 126]) + length.to_bytes(2, "big")
    return bytes([first, 0x80 | 127]) + length.to_bytes(8, "big")


async def _raw_upgrade(server, room):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=client_tls())
    key = base64.b64encode(uuid.uuid4().bytes).decode()
    writer.write((f"GET /v1/rooms/{room} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def _raw_close_code(reader):
    """Reads server frames until a close frame; returns its code (None on EOF)."""
    while True:
        try:
            b0, b1 = await asyncio.wait_for(reader.readexactly(2), 5)
        except asyncio.IncompleteReadError:
            return None
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(await reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await reader.readexactly(8), "big")
        body = await reader.readexactly(n)
        if b0 & 0x0F == 0x8:
            return int.from_bytes(body[:2], "big") if len(body) >= 2 else None


def test_declared_frame_length_over_the_limit_closes_1009_without_waiting(server):
    """A frame header announcing 2**62 bytes (then only a few sent) is refused at once."""
    async def go():
        for length in (2**62, MAX_MESSAGE_BYTES + 1):
            reader, writer = await _raw_upgrade(server, unique("raw"))
            writer.write(_masked_frame_header(0x1, length) + b"\x00\x00\x00\x00" + b'{"type":"ping"'[:14])
            await writer.drain()
            assert await _raw_close_code(reader) == 1009
            writer.close()
    run(go())


def _fragments(pieces):
    """Masked (zero key) text fragments: first frame, continuations, the last one final."""
    out = bytearray()
    for i, piece in enumerate(pieces):
        opcode = 0x1 if i == 0 else 0x0
        out += _masked_frame_header(opcode, len(piece), fin=i == len(pieces) - 1) + b"\x00\x00\x00\x00" + piece
    return bytes(out)


def test_fragment_flood_over_the_limit_closes_1009(server):
    """Many tiny continuation frames adding up to one byte over maxMessageBytes. Sent on a
    raw TLS socket, exactly up to the byte that crosses the limit, so the close frame is not
    lost to a TCP reset while the client is still sending (see the websockets variant below)."""
    async def go():
        head = b'{"type":"ping","rid":"f","pad":"'
        # 100-byte pieces cross the byte limit; 1-byte pieces cross the cap of 4096 pieces
        # per message first (exactly one piece over, so nothing is in flight at the close).
        for size in (1, 100):
            n = (MAX_MESSAGE_BYTES + 1 - len(head) + size - 1) // size if size > 1 else 4096
            pieces = [head] + [b"x" * size] * n
            assert sum(map(len, pieces)) > MAX_MESSAGE_BYTES or len(pieces) > 4096
            reader, writer = await _raw_upgrade(server, unique("frag"))
            payload = _fragments(pieces)
            writer.write(payload)
            await writer.drain()
            assert await _raw_close_code(reader) == 1009, size
            writer.close()
    run(go(), timeout=90)


def test_fragment_flood_with_websockets_client(server):
    """The flood from python websockets (an async iterable of fragments), one fragment past the
    cap of 4096 pieces per message: the server closes with 1009, and the close frame reaches
    the client (only the library's final empty fragment can still be in flight)."""
    async def go():
        c = await joined(server)

        async def fragments():
            yield '{"type":"ping","rid":"f","pad":"'
            for _ in range(4096):
                yield "x"

        try:
            await c.ws.send(fragments())
        except websockets.ConnectionClosed:
            pass
        assert await closed_with(c) == 1009
    run(go(), timeout=90)


# MARK: joining


def test_messages_before_hello(server):
    async def go():
        c = await Client.connect(server, unique("early"))
        await error_reply(c, j(type="chat", rid="e1", to="room", text="hi"), "hello-required", "e1")
        await error_reply(c, j(type="admit", rid="e2", member="p1"), "hello-required", "e2")
        await error_reply(c, j(type="end", rid="e3"), "hello-required", "e3")
        await error_reply(c, j(type="refresh", rid="e4", token=mint("x", "facilitator", "F")), "hello-required", "e4")
        # ping too (section 2: anything but hello or resume first).
        await error_reply(c, j(type="ping", rid="e5"), "hello-required", "e5")
        room = unique("early-room")
        c2 = await Client.connect(server, room)
        await error_reply(c2, j(type="signal", rid="e6", to="p1", kind="ice", payload={}), "hello-required", "e6")
        await c2.send("hello", token=mint(room, "facilitator", "F"))
        await c2.expect("welcome")
        await c.close()
        await c2.close()
    run(go())


def test_hello_twice_and_resume_after_hello(server):
    async def go():
        room = unique("twice")
        c = await joined(server, room)
        await error_reply(c, j(type="hello", rid="h2", token=mint(room, "facilitator", "F")), "already-joined", "h2")
        # A second identity on the same connection is refused too: no new seat appears.
        other = mint(room, "cofacilitator", "Other", sub="someone-else")
        await error_reply(c, j(type="hello", rid="h3", token=other), "already-joined", "h3")
        await error_reply(c, j(type="resume", rid="h4", secret=c.welcome["resumeSecret"], lastSeq=0),
                          "already-joined", "h4")
        await error_reply(c, j(type="hello", rid="h5", token="garbage"), "already-joined", "h5")
        stray = await c.drain(0.3)
        assert not [m for m in stray if m["type"] in ("member-joined", "waiting-updated")], stray
        await c.request("chat", to="room", text="still one seat")
        got = await c.expect("chat")
        assert got["message"]["from"] == c.welcome["you"]["id"]
        await c.close()
    run(go())


def test_commands_from_the_waiting_room_do_not_leak(server):
    async def go():
        room = unique("waiting")
        staff = await joined(server, room, name="Staff")
        a = await joined(server, room, "participant", "Waiting A")
        b = await joined(server, room, "participant", "Waiting B")
        assert a.welcome["you"]["placement"] == "waiting" and "room" not in a.welcome
        assert "waiting" in a.welcome and "room" not in b.welcome
        refused = [
            ("chat", dict(to="room", text="let me in")),
            ("chat", dict(to="staff", text="hello staff")),
            ("chat", dict(to="p1", text="psst")),
            ("signal", dict(to="p1", kind="offer", payload={"sdp": "v=0"})),
            ("raise-hand", {}),
            ("media", dict(audio=True)),
            ("admit", dict(member="p3")),
            ("admit-all", {}),
            ("lock", {}),
            ("end", {}),
            ("spotlight", dict(member="p2")),
            ("mute-all", {}),
            ("remove", dict(member="p3")),
            ("set-role", dict(member="p2", role="facilitator")),
            ("delete-chat", dict(message="m1")),
        ]
        for type_, fields in refused:
            rid = await a.send(type_, **fields)
            err = await a.expect(lambda m: m.get("rid") == rid)
            assert err["type"] == "error" and err["code"] == "not-admitted", (type_, err)
        # What a waiting member may do.
        await a.request("help")
        await a.request("location", text="Home")
        rid = await a.send("consent", version="2024-06")
        assert (await a.expect(lambda m: m.get("rid") == rid))["code"] == "no-consent-required"
        # Meanwhile the room is busy.
        await staff.request("chat", to="room", text="room secret")
        await staff.request("media", audio=True, video=True)
        await staff.request("raise-hand")
        await staff.request("lock")
        await staff.request("unlock")
        rid = await staff.send("chat", to="p2", text="to a waiting member")
        assert (await staff.expect(lambda m: m.get("rid") == rid))["code"] == "unknown-member"
        rid = await staff.send("signal", to="p2", kind="offer", payload={})
        assert (await staff.expect(lambda m: m.get("rid") == rid))["code"] == "unknown-member"
        await staff.request("message-waiting-room", text="starting soon")
        await a.expect("waiting-room-message")
        await b.expect("waiting-room-message")
        for w in (a, b):
            await w.drain(0.3)
            leaked = [m for m in w.seen if m["type"] not in ("welcome", "waiting", "waiting-room-message", "ack", "error")]
            assert leaked == [], f"{w.name}: {leaked}"
            text = json.dumps(w.seen)
            for secret in ("room secret", "to a waiting member", "Staff", "Waiting B" if w is a else "Waiting A"):
                assert secret not in text, (w.name, secret)
        # Staff saw the requests, and none of them changed the room.
        await staff.expect("help-requested")
        await staff.drain(0.2)
        assert not [m for m in staff.seen if m["type"] in ("member-joined", "chat") and m.get("message", {}).get("from") in ("p2", "p3")]
        for c in (a, b, staff):
            await c.close()
    run(go())


def test_pids_are_room_scoped(server):
    """p2 exists in the bystander room; in this room it does not: unknown-member for every
    command that names it, and nothing is delivered to the bystander p2."""
    async def go():
        room = unique("scoped")
        c = await joined(server, room)
        assert c.welcome["you"]["id"] == "p1"
        for type_, fields in [
            ("signal", dict(to="p2", kind="offer", payload={"sdp": "v=0"})),
            ("signal", dict(to="p3", kind="ice", payload={"candidate": "x"})),
            ("chat", dict(to="p2", text="hello other room")),
            ("mute", dict(member="p2")),
            ("ask-unmute", dict(member="p2")),
            ("remove", dict(member="p2", ban=True, reason="cross-room")),
            ("admit", dict(member="p2")),
            ("deny", dict(member="p2")),
            ("send-back", dict(member="p2")),
            ("set-role", dict(member="p2", role="observer")),
            ("grant", dict(member="p2", media=True, chat=True)),
            ("spotlight", dict(member="p2")),
            ("acknowledge-help", dict(member="p2")),
            ("lower-hand", dict(member="p2")),
        ]:
            rid = await c.send(type_, **fields)
            err = await c.expect(lambda m: m.get("rid") == rid)
            assert (err["type"], err["code"]) == ("error", "unknown-member"), (type_, err)
        # Signalling oneself is not a way out either.
        rid = await c.send("signal", to="p1", kind="offer", payload={})
        assert (await c.expect(lambda m: m.get("rid") == rid))["code"] == "invalid-target"
        # A p2 that waits here is not a signalling target either (not admitted).
        w = await joined(server, room, "participant", "W")
        assert w.welcome["you"]["id"] == "p2"
        rid = await c.send("signal", to="p2", kind="offer", payload={})
        assert (await c.expect(lambda m: m.get("rid") == rid))["code"] == "unknown-member"
        assert [m["type"] for m in await w.drain(0.3)] in ([], ["waiting"])
        # The same user id as a bystander, in another room, does not take their seat over.
        twin = await joined(server, room, "facilitator", "Twin", sub=BYSTANDER_PATIENT)
        assert twin.welcome["you"]["id"] == "p3"
        for x in (c, w, twin):
            await x.close()
    run(go())


def test_ids_that_do_not_exist(server):
    async def go():
        c = await joined(server)
        for type_, fields, code in [
            ("admit", dict(member="p999"), "unknown-member"),
            ("mute", dict(member="p4294967295"), "unknown-member"),
            ("remove", dict(member="p0"), "unknown-member"),
            ("delete-chat", dict(message="m999"), "unknown-message"),
            ("delete-chat", dict(message="m0"), "unknown-message"),
            ("delete-chat", dict(message="m18446744073709551615"), "unknown-message"),
            ("acknowledge-help", dict(member="p1"), "invalid-target"),
        ]:
            rid = await c.send(type_, **fields)
            err = await c.expect(lambda m: m.get("rid") == rid)
            assert (err["type"], err["code"]) == ("error", code), (type_, fields, err)
        await c.close()
        # Ids that are not ids at all are bad-message.
        await expect_errors(server, [
            (j(type="admit", rid="i1", member="p4294967296"), "bad-message", "i1"),
            (j(type="admit", rid="i2", member="p01"), "bad-message", "i2"),
            (j(type="admit", rid="i3", member="P1"), "bad-message", "i3"),
            (j(type="admit", rid="i4", member="p"), "bad-message", "i4"),
            (j(type="admit", rid="i5", member="p-1"), "bad-message", "i5"),
            (j(type="admit", rid="i6", member=" p1"), "bad-message", "i6"),
            (j(type="delete-chat", rid="i7", message="m18446744073709551616"), "bad-message", "i7"),
            (j(type="delete-chat", rid="i8", message="p1"), "bad-message", "i8"),
            (j(type="chat", rid="i9", to="p1x", text="x"), "bad-message", "i9"),
            (j(type="spotlight", rid="i10", member="p+1"), "bad-message", "i10"),
        ])
    run(go())


def test_signal_payload_limit(server):
    async def go():
        room = unique("payload")
        a = await joined(server, room)
        b = await joined(server, room, "cofacilitator", "B")
        await a.drain(0.2)
        # 16384 bytes in compact form ("..." with its quotes) is allowed; one more is too long.
        await a.request("signal", to="p2", kind="offer", payload="x" * 16382)
        assert len((await b.expect("signal"))["payload"]) == 16382
        rid = await a.send("signal", to="p2", kind="offer", payload="x" * 16383)
        assert (await a.expect(lambda m: m.get("rid") == rid))["code"] == "too-long"
        # Whitespace does not count (compact form), null is a valid payload.
        await a.ws.send('{"type":"signal","rid":"ws","to":"p2","kind":"ice","payload":' + " " * 30_000 + "null}")
        assert (await a.expect(lambda m: m.get("rid") == "ws"))["type"] == "ack"
        assert (await b.expect("signal"))["payload"] is None
        for c in (a, b):
            await c.close()
    run(go())


# MARK: resume


def test_resume_with_garbage_secrets(server):
    async def go():
        room = unique("resume")
        owner = await joined(server, room)
        # Each refusal closes its connection (4401): one guess per connection.
        for i, secret in enumerate(["garbage", "", "x" * 10_000, owner.welcome["resumeSecret"][:-1]]):
            c = await Client.connect(server, room)
            await error_reply(c, j(type="resume", rid=f"g{i}", secret=secret, lastSeq=0), "resume-failed", f"g{i}")
            assert await closed_with(c) == 4401
        # lastSeq above the room's: refused, and the seat's connection is not taken over.
        c = await Client.connect(server, room)
        await error_reply(c, j(type="resume", rid="g9", secret=owner.welcome["resumeSecret"], lastSeq=2**63 - 1),
                          "resume-failed", "g9")
        assert await closed_with(c) == 4401
        # A new connection joins with hello.
        c = await Client.connect(server, room)
        await c.send("hello", token=mint(room, "cofacilitator", "C"))
        await c.expect("welcome")
        await owner.request("chat", to="room", text="owner still here")
        # A room that does not exist.
        d = await Client.connect(server, unique("no-such-room"))
        await error_reply(d, j(type="resume", rid="n", secret="garbage", lastSeq=0), "resume-failed", "n")
        for x in (owner, c, d):
            await x.close()
    run(go())


def test_resume_secret_from_another_room(server, bystanders):
    """A bystander's real resume secret presented in another room is unknown there; the
    bystander's connection is not taken over (the autouse check proves it still works)."""
    async def go():
        room = unique("steal")
        owner = await joined(server, room)
        for who in ("staff", "patient"):
            c = await Client.connect(server, room)
            await error_reply(c, j(type="resume", rid="s", secret=bystanders.secret(who), lastSeq=0),
                              "resume-failed", "s")
            await c.close()
        await owner.close()
    run(go())


# MARK: tokens


def _token(header, body, secret=DEV_SECRET, signature=None):
    h = b64url(json.dumps(header).encode())
    p = b64url(json.dumps(body).encode())
    if signature is None:
        signature = b64url(hmac.new(secret.encode(), f"{h}.{p}".encode(), hashlib.sha256).digest())
    return f"{h}.{p}.{signature}"


def _claims(room, **extra):
    now = int(time.time())
    body = {"sub": unique("u"), "room": room, "role": "facilitator", "name": "F", "iat": now, "exp": now + 300,
            "jti": uuid.uuid4().hex}
    body.update(extra)
    return body


async def _refused(server, room, token):
    c = await Client.connect(server, room)
    await c.send("hello", token=token)
    err = await c.expect("error")
    assert (err["code"], err["rid"]) == ("authentication-failed", f"{c.name}-1"), err
    assert await closed_with(c) == 4401


def test_token_refusals_are_one_error_and_4401(server):
    """Each costs one of the address's authFailureBurst (100 here): the module stays well under."""
    async def go():
        room = unique("tokens")
        now = int(time.time())
        none_header = {"alg": "none", "typ": "JWT"}
        for token in [
            mint(BYSTANDER_ROOM, "facilitator", "F"),            # a token for another room
            _token(none_header, _claims(room), signature=""),      # alg none, no signature
            _token({"alg": "None"}, _claims(room), signature=""),  # another spelling
            _token(none_header, _claims(room)),                     # alg none with an HMAC anyway
            mint(room, "facilitator", "F", ttl=-120),              # expired beyond leeway
            _token({"alg": "HS256"}, _claims(room, nbf=now + 600)),  # not yet valid
            _token({"alg": "HS256"}, _claims(room, role="admin")),   # a role that does not exist
            _token({"alg": "HS256", "kid": "unknown"}, _claims(room)),
        ]:
            await _refused(server, room, token)
        # A token for this room presented on the bystander room's path: refused there, and
        # the bystanders see no arrival (checked after the test).
        await _refused(server, BYSTANDER_ROOM, mint(room, "facilitator", "F"))
    run(go())


def test_token_type_errors_are_bad_message(server):
    async def go():
        c = await Client.connect(server, unique("tokens"))
        await error_reply(c, j(type="hello", rid="k1", token=12), "bad-message", "k1")
        await error_reply(c, j(type="hello", rid="k2", token=None), "bad-message", "k2")
        await c.close()
    run(go())


def test_refresh_with_hostile_tokens_keeps_the_connection(server):
    async def go():
        room = unique("refresh")
        c = await joined(server, room, sub="refresher")
        for i, token in enumerate([
            mint(BYSTANDER_ROOM, "facilitator", "F", sub="refresher"),    # another room
            _token({"alg": "none"}, _claims(room, sub="refresher"), signature=""),
            mint(room, "facilitator", "F", sub="refresher", ttl=-120),    # expired
            mint(room, "facilitator", "F", sub=BYSTANDER_STAFF),          # another user
        ]):
            await error_reply(c, j(type="refresh", rid=f"f{i}", token=token), "authentication-failed", f"f{i}")
        await c.request("refresh", token=mint(room, "facilitator", "F", sub="refresher"))
        await c.request("chat", to="room", text="refreshed")
        await c.close()
    run(go())


def test_unknown_endpoints(server):
    async def go():
        for path in ["/v1/rooms/" + "a" * 65, "/v1/rooms/", "/v1/rooms/caf%C3%A9", "/v1/rooms/a.b", "/v1/room/x"]:
            ws = await websockets.connect(f"{server.url}{path}", ssl=client_tls(), open_timeout=5)
            assert await closed_with(Client(ws, "lost")) == 4404, path
    run(go())
