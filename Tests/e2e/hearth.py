"""Helpers for the end-to-end tests: a hearthd launcher and a WebSocket client over TLS.

The client is python's `websockets` (an independent implementation). Every message the
server sends is validated against docs/protocol.schema.json.
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import pathlib
import signal
import socket
import sqlite3
import ssl
import subprocess
import tempfile
import time
import urllib.request
import uuid

import jsonschema
import websockets

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "protocol.schema.json").read_text())
SERVER_VALIDATOR = jsonschema.Draft202012Validator({"$ref": "#/$defs/server", "$defs": SCHEMA["$defs"]})
DEV_SECRET = "e2e-test-secret-0123456789-abcdefghij"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(room, role, name, sub=None, ttl=300, secret=DEV_SECRET, **claims):
    """An HS256 join token, made independently of the server's own minter."""
    now = int(time.time())
    body = {"sub": sub or f"user-{uuid.uuid4().hex[:8]}", "room": room, "role": role, "name": name,
            "iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex}
    body.update(claims)
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(body).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


class Server:
    """Starts hearthd on a loopback port with a fresh certificate and data directory."""

    def __init__(self, **overrides):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="hearth-e2e-"))
        self.port = free_port()
        cert, key = self.dir / "cert.pem", self.dir / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True)
        limits = {"helloTimeoutSeconds": 2, "maxMalformedMessages": 5}
        limits.update(overrides.pop("limits", {}))
        rooms = {"graceSeconds": 4}
        rooms.update(overrides.pop("rooms", {}))
        config = {
            "listen": f"127.0.0.1:{self.port}",
            "tls": {"certificate": str(cert), "privateKey": str(key)},
            "dataDirectory": str(self.dir / "data"),
            "dev": {"tokenSecret": DEV_SECRET},
            "limits": limits,
            "rooms": rooms,
            "ice": {"servers": [{"urls": ["turn:127.0.0.1:3478"], "turn": True}], "turnSecret": "turn-secret"},
        }
        rate_limits = overrides.pop("rateLimits", None)
        if rate_limits:
            config["rateLimits"] = rate_limits
        config.update(overrides)
        self.config_path = self.dir / "hearthd.yaml"
        # JSON is valid YAML.
        self.config_path.write_text(json.dumps(config))
        self.log_path = self.dir / "hearthd.log"
        self.start()

    def start(self):
        """Starts (or restarts) hearthd on the same port, certificate and data directory."""
        self.process = subprocess.Popen([os.environ["HEARTHD_BIN"], "serve", "--config", str(self.config_path)],
                                        stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT)
        self.wait_healthy()

    @property
    def url(self):
        return f"wss://127.0.0.1:{self.port}"

    def https(self, path):
        return urllib.request.urlopen(f"https://127.0.0.1:{self.port}{path}", context=client_tls(), timeout=5)

    def wait_healthy(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hearthd exited: {self.log_path.read_text()}")
            try:
                with self.https("/healthz") as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("hearthd did not become healthy")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.process.poll() is None:
            self.process.send_signal(sig)
            return self.process.wait(timeout=timeout)
        return self.process.returncode

    def log(self):
        return self.log_path.read_text(errors="replace")

    def records(self, table):
        """Rows of a table in the server's SQLite store (read while it runs: WAL allows it)."""
        path = self.dir / "data" / "hearth.sqlite"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute(f"SELECT * FROM {table} ORDER BY rowid")]

    def wait_records(self, table, until, timeout=5.0):
        """Rows of a table once `until(rows)` holds: the store commits a little after the event a
        test saw. Polls (bounded); returns the last rows read either way, for the test to assert."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.records(table)
            if until(rows) or time.monotonic() >= deadline:
                return rows
            time.sleep(0.02)


def client_tls(minimum=None, maximum=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if minimum:
        ctx.minimum_version = minimum
    if maximum:
        ctx.maximum_version = maximum
    return ctx


class Client:
    """One member's connection. Frames are split on newlines; every message is schema-checked."""

    #: What every received message is validated with (a subclass may narrow or widen it).
    validator = SERVER_VALIDATOR

    def __init__(self, ws, name):
        self.ws = ws
        self.name = name
        self.pending = []
        self.seen = []
        self.last_seq = 0
        self.welcome = None
        self.rid = 0

    @classmethod
    async def connect(cls, server, room, name="client", **kwargs):
        ws = await websockets.connect(f"{server.url}/v1/rooms/{room}", ssl=client_tls(), max_size=2**22,
                                      open_timeout=5, **kwargs)
        return cls(ws, name)

    @classmethod
    async def join(cls, server, room, role, name, sub=None, **claims):
        client = await cls.connect(server, room, name)
        await client.send("hello", token=mint(room, role, name, sub=sub, **claims))
        client.welcome = await client.expect("welcome")
        return client

    async def send(self, type, **fields):
        self.rid += 1
        message = {"type": type, "rid": f"{self.name}-{self.rid}", **fields}
        await self.ws.send(json.dumps(message))
        return message["rid"]

    async def request(self, type, **fields):
        """Sends a command and returns its ack (or raises on its error)."""
        rid = await self.send(type, **fields)
        reply = await self.expect(lambda m: m.get("rid") == rid)
        if reply["type"] == "error":
            raise AssertionError(f"{type} refused: {reply}")
        return reply

    async def _read(self, timeout):
        """Reads one frame into the backlog (a frame may hold several messages)."""
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(frame, str), "the server sends text frames only"
        for line in frame.split("\n"):
            message = json.loads(line)
            self.validator.validate(message)
            if "seq" in message:
                assert message["seq"] > self.last_seq, f"seq went backwards: {message}"
                self.last_seq = message["seq"]
            self.pending.append(message)
            self.seen.append(message)

    async def next(self, timeout=3.0):
        while not self.pending:
            await self._read(timeout)
        return self.pending.pop(0)

    async def expect(self, what, timeout=3.0):
        """Waits for the first message of a type (or matching a predicate). Messages that
        do not match stay in the backlog for later expectations."""
        match = (lambda m: m["type"] == what) if isinstance(what, str) else what
        deadline = time.monotonic() + timeout
        checked = 0
        while True:
            for i in range(checked, len(self.pending)):
                if match(self.pending[i]):
                    return self.pending.pop(i)
            checked = len(self.pending)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.name}: no {what} in {timeout}s; saw {[m['type'] for m in self.seen[-10:]]}")
            await self._read(remaining)

    async def drain(self, quiet=0.3):
        """Reads until the connection has been quiet for `quiet` seconds."""
        got = []
        while True:
            try:
                got.append(await self.next(quiet))
            except (TimeoutError, asyncio.TimeoutError):
                return got

    async def closed(self, timeout=5.0):
        """Waits for the server to close; returns the close code."""
        try:
            while True:
                await self.next(timeout)
        except websockets.ConnectionClosed as e:
            return e.rcvd.code if e.rcvd else None

    async def close(self):
        await self.ws.close()
