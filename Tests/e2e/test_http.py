"""The HTTP side of the port, end to end over TLS: message framing a reusing proxy can rely on, and
operations API reads that never hold up the event loop.

Framing (docs/api.md, "HTTP framing"): a HEAD is answered with the headers a GET would get and no
body; a request with more than one Content-Length, a Content-Length that is not a plain number, or a
Transfer-Encoding is refused with 400 and the connection closed; a POST without Content-Length gets
411 and the connection closed. These are checked with raw TLS sockets sending the exact bytes, and by
sending the next request on the same connection: a desync would show as the wrong answer to it.

Reads: a 50,000-row audit export streams from the reader thread while a bystander room's pings stay
fast, and arrives complete, in order, with every hash in the chain recomputed here.
"""
import asyncio
import hashlib
import json
import os
import socket
import sqlite3
import struct
import subprocess
import time

import pytest
from conftest import run
from hearth import Client, Server, client_tls
from test_api import ADMIN_SECRET, admin_token

GENESIS = "0" * 64
BIG_ROOM = "big-export"
BIG_ROWS = 50_000


@pytest.fixture(scope="module")
def server():
    s = Server(admin={"keys": [{"secret": ADMIN_SECRET}]}, rateLimits={"authFailureBurst": 200})
    yield s
    code = s.stop()
    assert code == 0, f"hearthd exited with {code}:\n{s.log()}"


# MARK: raw HTTP/1.1 over TLS


class Raw:
    """One TLS connection that sends exact bytes and reads responses by their framing."""

    def __init__(self, server):
        tcp = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        self.sock = client_tls().wrap_socket(tcp, server_hostname="localhost")
        self.buffer = bytearray()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buffer.extend(chunk)

    def response(self, head=False):
        """Reads one response: (status, headers (lower-cased names), body). `head`: no body follows."""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        header, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = header.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        if head:
            return status, headers, b""
        if "content-length" in headers:
            n = int(headers["content-length"][0])
            while len(self.buffer) < n:
                self._fill()
            body, self.buffer = self.buffer[:n], self.buffer[n:]
            return status, headers, body
        assert headers.get("transfer-encoding") == ["chunked"], headers
        body = b""
        while True:
            while b"\r\n" not in self.buffer:
                self._fill()
            size_line, self.buffer = self.buffer.split(b"\r\n", 1)
            size = int(size_line, 16)
            while len(self.buffer) < size + 2:
                self._fill()
            body, self.buffer = body + self.buffer[:size], self.buffer[size + 2:]
            if size == 0:
                return status, headers, body

    def closed(self, timeout=5):
        """True once the server has closed the connection (nothing more arrives)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return self.buffer == b""
                self.buffer += chunk
        except (ConnectionResetError, BrokenPipeError):
            return self.buffer == b""
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def request(method, path, *headers, body=b""):
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def one(server, data, head=False):
    """Sends one request on a new connection; returns its response, and that the server then
    closed the connection with nothing more (plain HTTP is one request per connection, so a
    body after a HEAD's headers would show as bytes before the close)."""
    raw = Raw(server)
    try:
        raw.send(data)
        status, headers, body = raw.response(head=head)
        return status, headers, body, raw.closed()
    finally:
        raw.close()


def test_head_is_answered_with_headers_only(server):
    status, headers, _, closed = one(server, request("HEAD", "/healthz"), head=True)
    assert status == 200 and headers["content-type"] == ["application/json"]
    assert headers["connection"] == ["close"] and closed, "no body bytes follow the headers"
    length = int(headers["content-length"][0])
    status, _, body, _ = one(server, request("GET", "/healthz"))
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert abs(len(body) - length) <= 2, (length, body)  # uptime may have gained a digit

    status, headers, _, closed = one(server, request("HEAD", "/metrics"), head=True)
    assert status == 200 and int(headers["content-length"][0]) > 0 and closed
    status, headers, _, closed = one(server, request("HEAD", "/nope"), head=True)
    assert status == 404 and closed

    # The API takes GET and POST only: HEAD gets 405, also without a body.
    token = admin_token()
    status, headers, _, closed = one(
        server, request("HEAD", "/api/v1/rooms", f"Authorization: Bearer {token}"), head=True)
    assert status == 405 and headers["content-type"] == ["application/json"] and closed


def test_a_pipelined_request_after_a_head_is_not_answered(server):
    """One request per connection: what follows the first request is never read as a request
    (the path of a later one could not be checked as sent), so a proxy cannot be desynchronised."""
    raw = Raw(server)
    try:
        raw.send(request("HEAD", "/healthz") + request("GET", "/healthz"))
        status, headers, _ = raw.response(head=True)
        assert status == 200 and headers["connection"] == ["close"]
        assert raw.closed(), "the GET behind the HEAD got no answer"
    finally:
        raw.close()


@pytest.mark.parametrize("framing", [
    ["Content-Length: 0", "Content-Length: 5"],                  # conflicting
    ["Content-Length: 2", "Content-Length: 2"],                  # repeated, even when equal
    ["Content-Length: 2, 2"],                                    # a list in one header
    ["Content-Length: +2"],                                      # not a plain number
    ["Content-Length: 2", "Transfer-Encoding: chunked"],         # both framings
    ["Transfer-Encoding: chunked"],                              # chunked request bodies
])
def test_ambiguous_request_framing_is_refused_with_400_and_closed(server, framing):
    raw = Raw(server)
    try:
        raw.send(request("POST", "/api/v1/rooms", f"Authorization: Bearer {admin_token()}", *framing, body=b"{}")
                 + request("GET", "/healthz"))
        status, headers, body = raw.response()
        assert status == 400, (status, body)
        assert headers.get("connection") == ["close"]
        assert raw.closed(), "the connection must be closed after the refusal, not reused"
    finally:
        raw.close()


def test_a_post_without_content_length_gets_411_and_is_closed(server):
    raw = Raw(server)
    try:
        started = time.monotonic()
        raw.send(request("POST", "/api/v1/rooms/some-room/end", f"Authorization: Bearer {admin_token()}"))
        status, headers, body = raw.response()
        assert status == 411, (status, body)
        assert time.monotonic() - started < 2
        assert raw.closed()
    finally:
        raw.close()
    # A POST with Content-Length: 0 is served.
    status, _, body, closed = one(
        server, request("POST", "/api/v1/rooms", f"Authorization: Bearer {admin_token()}", "Content-Length: 0"))
    assert status == 201, body
    assert closed


def test_refusals_leave_the_server_serving(server):
    with server.https("/healthz") as r:
        assert r.status == 200


# MARK: a large audit export


def canonical(row):
    """AuditChain.canonical (Sources/HearthStore/AuditChain.swift), written independently."""
    out = bytearray([1])

    def integer(v):
        if v is None:
            out.append(0)
        else:
            out.append(1)
            out.extend(struct.pack(">q", v))

    def text(s):
        if s is None:
            out.append(0)
        else:
            b = s.encode()
            out.append(1)
            out.extend(struct.pack(">I", len(b)))
            out.extend(b)

    integer(row["id"])
    integer(row["at"])
    text(row["room"])
    for party in ("actor", "subject"):
        text(row[f"{party}UserId"])
        integer(None if row[f"{party}Member"] is None else int(row[f"{party}Member"][1:]))
        text(row[f"{party}Role"])
    text(row["action"])
    text(row["outcome"])
    text(row["code"])
    text(row["reason"])
    return bytes(out)


def chain_hash(prev, row):
    return hashlib.sha256(bytes.fromhex(prev) + canonical(row)).hexdigest()


def seed_audit(server, room, count):
    """Appends `count` chained audit rows of one room straight into the stopped server's file;
    returns the hash the first of them links to."""
    path = server.dir / "data" / "hearth.sqlite"
    with sqlite3.connect(path) as db:
        base_id, last_id, last_hash, n = db.execute(
            "SELECT base_id, last_id, last_hash, count FROM audit_head WHERE id = 1").fetchone()
        start_hash = last_hash
        at = int(time.time() * 1000) - count
        rows = []
        for i in range(count):
            member = i % 12 + 1
            row = {"id": last_id + 1 + i, "at": at + i, "room": room,
                   "actorUserId": f"user-{member}", "actorMember": f"p{member}", "actorRole": "participant",
                   "subjectUserId": None, "subjectMember": None, "subjectRole": None,
                   "action": "hand", "outcome": "done", "code": None, "reason": None}
            h = chain_hash(last_hash, row)
            rows.append((row["id"], row["at"], room, "hand", "done", None, None, row["actorUserId"], member,
                         "participant", None, None, None, last_hash, h))
            last_hash = h
        db.executemany("INSERT INTO audit (id, at, room, action, outcome, code, reason, actor_user, actor_member, "
                       "actor_role, subject_user, subject_member, subject_role, prev_hash, hash) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.execute("UPDATE audit_head SET last_id = ?, last_hash = ?, count = ? WHERE id = 1",
                   (last_id + count, last_hash, n + count))
    return start_hash


@pytest.fixture(scope="module")
def big_server(tmp_path_factory):
    # The bystander pings ~40 times a second while it measures: room for that in its budget.
    s = Server(admin={"keys": [{"secret": ADMIN_SECRET}]},
               rateLimits={"authFailureBurst": 200, "controlBurst": 1000, "controlPerSecond": 100})
    assert s.stop() == 0
    s.chain_start = seed_audit(s, BIG_ROOM, BIG_ROWS)
    s.start()
    yield s
    code = s.stop()
    assert code == 0, f"hearthd exited with {code}:\n{s.log()}"


async def export_while_pinging(server, out_path):
    """Runs curl for the export while a bystander pings; returns (ping RTTs in ms, curl's exit code)."""
    host = await Client.join(server, "bystander", "facilitator", "Dr. B")
    guest = await Client.join(server, "bystander", "participant", "Sam")
    try:
        for _ in range(5):  # warm up
            await host.request("ping")
        curl = await asyncio.create_subprocess_exec(
            "curl", "-sk", "--max-time", "60", "-o", str(out_path), "-w", "%{http_code}",
            "-H", f"Authorization: Bearer {admin_token()}",
            f"https://127.0.0.1:{server.port}/api/v1/rooms/{BIG_ROOM}/audit",
            stdout=asyncio.subprocess.PIPE)
        rtts = []
        while curl.returncode is None:
            started = time.monotonic()
            await host.request("ping")
            rtts.append((time.monotonic() - started) * 1000)
            try:
                await asyncio.wait_for(curl.wait(), 0.02)
            except asyncio.TimeoutError:
                pass
        status = (await curl.stdout.read()).decode()
        # The bystander room itself still works after the export.
        await guest.request("ping")
        return rtts, curl.returncode, status
    finally:
        await host.close()
        await guest.close()


def test_a_50000_row_audit_export_does_not_hold_up_another_room(big_server, tmp_path):
    out = tmp_path / "export.json"
    rtts, code, status = run(export_while_pinging(big_server, out), timeout=90)
    assert code == 0 and status == "200", (code, status)
    rtts.sort()
    print(f"\nbystander pings during the export: n={len(rtts)} median={rtts[len(rtts) // 2]:.1f} ms "
          f"max={rtts[-1]:.1f} ms; export {out.stat().st_size} bytes")
    assert rtts[-1] < 50, f"a bystander ping took {rtts[-1]:.0f} ms during the export"
    assert len(rtts) >= 5, "the export ended before the bystander could measure anything"

    # Complete and correct: every row, in order, each hash recomputed from the exported fields.
    export = json.loads(out.read_bytes())
    records = export["records"]
    assert export["room"] == BIG_ROOM and len(records) == BIG_ROWS
    prev = big_server.chain_start
    for record in records:
        assert record["hash"] == chain_hash(prev, record), record
        prev = record["hash"]
    assert [r["id"] for r in records] == list(range(records[0]["id"], records[0]["id"] + BIG_ROWS))


def test_a_slow_reader_gets_the_whole_export_and_a_read_queued_behind_it_is_answered(big_server):
    """A client reading at ~2 MB/s takes longer than lws's own HTTP timeout (5 s): the response
    must keep going as long as it makes progress. Meanwhile the reader thread is busy with it, so an
    attendance call made then waits longer than 5 s for its turn: it must still be answered."""
    raw = Raw(big_server)
    queued = None
    try:
        started = time.monotonic()
        raw.send(request("GET", f"/api/v1/rooms/{BIG_ROOM}/audit", f"Authorization: Bearer {admin_token()}"))
        received = 0
        while b"\r\n0\r\n\r\n" not in raw.buffer[-16:]:
            before = len(raw.buffer)
            raw._fill()
            received += len(raw.buffer) - before
            if received >= 1 << 20:
                received = 0
                if queued is None:  # two calls, each on its own connection
                    queued = [subprocess.Popen(
                        ["curl", "-sk", version, "--max-time", "60", "-w", "\n%{http_code}",
                         "-H", f"Authorization: Bearer {admin_token()}",
                         f"https://127.0.0.1:{big_server.port}/api/v1/rooms/{BIG_ROOM}/attendance"],
                        stdout=subprocess.PIPE) for version in ("--http1.1", "--http1.1")]
                time.sleep(0.5)  # a slow client, not a wait for an event
        status, headers, body = raw.response()
        assert status == 200 and headers["transfer-encoding"] == ["chunked"]
        assert len(json.loads(body)["records"]) >= BIG_ROWS  # and the rows of earlier exports
        assert time.monotonic() - started > 6, "the attendance calls did not have to wait long enough"
        for call in queued:
            out, _ = call.communicate(timeout=60)
            body, _, code = out.rpartition(b"\n")
            assert code == b"200" and json.loads(body)["room"] == BIG_ROOM, call.args
    finally:
        raw.close()
        for call in queued or []:
            if call.poll() is None:
                call.kill()


def test_an_export_abandoned_midway_frees_the_reader(big_server):
    raw = Raw(big_server)
    raw.send(request("GET", f"/api/v1/rooms/{BIG_ROOM}/audit?since=0", f"Authorization: Bearer {admin_token()}"))
    while len(raw.buffer) < 200_000:
        raw._fill()
    raw.close()
    # The next reads are served: the reader is not stuck writing to the abandoned one.
    for _ in range(2):
        out = subprocess.run(
            ["curl", "-sk", "--max-time", "30", "-H", f"Authorization: Bearer {admin_token()}",
             f"https://127.0.0.1:{big_server.port}/api/v1/rooms/{BIG_ROOM}/attendance"],
            capture_output=True, timeout=40)
        assert json.loads(out.stdout)["room"] == BIG_ROOM
    rows = big_server.records("audit")
    assert any(r["action"] == "api:export-audit" and r["room"] == BIG_ROOM for r in rows)


def test_the_audit_chain_still_verifies(big_server):
    out = subprocess.run([os.environ["HEARTHD_BIN"], "audit", "verify", "--data-dir", str(big_server.dir / "data")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stdout + out.stderr
