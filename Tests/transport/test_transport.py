"""Black-box tests of HearthTransport through the transport-demo echo server.

Run (see README.md):  TRANSPORT_DEMO_BIN=/path/to/transport-demo pytest -q Tests/transport
Loopback only; every test is bounded in time.
"""

import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.request

import pytest
import websockets

HOST = "127.0.0.1"
BASE_PORT = int(os.environ.get("TRANSPORT_TEST_PORT", "19443"))
PORT_MAIN = BASE_PORT          # default limits
PORT_KEEPALIVE = BASE_PORT + 1  # ping 1 s, hangup 2 s
PORT_ORIGIN = BASE_PORT + 2     # Origin allowlist
PORT_STOP = BASE_PORT + 3       # graceful stop
PORT_ORIGIN_ANY = BASE_PORT + 4  # allowedOrigins ["*"]
TEST_TIMEOUT = 30


def demo_bin():
    path = os.environ.get("TRANSPORT_DEMO_BIN")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("set TRANSPORT_DEMO_BIN to the built transport-demo executable")
    return path


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=20)
    return str(cert), str(key)


class Demo:
    def __init__(self, port, certs, *extra):
        cert, key = certs
        self.port = port
        self.stderr_lines = []
        self.proc = subprocess.Popen(
            [demo_bin(), "--host", HOST, "--port", str(port), "--cert", cert, "--key", key, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        threading.Thread(target=self._pump, daemon=True).start()
        ready = []
        t = threading.Thread(target=lambda: ready.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(10)
        if not ready or b"READY" not in ready[0]:
            self.kill()
            raise RuntimeError("demo did not start: %s" % "".join(self.stderr_lines))

    def _pump(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line.decode(errors="replace"))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def start_demo(port, certs, *extra):
    d = Demo(port, certs, *extra)
    return d


@pytest.fixture(scope="module")
def server(certs):
    d = start_demo(PORT_MAIN, certs)
    yield d
    d.proc.send_signal(signal.SIGTERM)
    try:
        d.proc.wait(5)
    finally:
        d.kill()


def client_ctx(minv=None, maxv=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if minv:
        ctx.minimum_version = minv
    if maxv:
        ctx.maximum_version = maxv
    return ctx


def run(coro, timeout=TEST_TIMEOUT):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def wss(port, path="/"):
    return "wss://%s:%d%s" % (HOST, port, path)


def https_get(port, path, method="GET", data=None):
    req = urllib.request.Request("https://%s:%d%s" % (HOST, port, path), method=method, data=data)
    try:
        with urllib.request.urlopen(req, context=client_ctx(), timeout=5) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def stats(port):
    status, _, body = https_get(port, "/stats")
    assert status == 200
    return json.loads(body)


# ---------------------------------------------------------------- raw client

class RawWS:
    """Minimal TLS WebSocket client that never answers pings and can stop reading."""

    def __init__(self, port, path="/", rcvbuf=None, timeout=5):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect((HOST, port))
        self.sock = client_ctx().wrap_socket(s, server_hostname="localhost")
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            "GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, key)).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_text(self, text):
        payload = text.encode()
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def read_frame(self):
        """Returns (opcode, payload); raises EOFError / OSError when the connection ends."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        n = b1 & 0x7F
        off = 2
        if n == 126:
            self._need(4)
            n = struct.unpack("!H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            self._need(10)
            n = struct.unpack("!Q", self.buf[2:10])[0]
            off = 10
        self._need(off + n)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return b0 & 0x0F, payload

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------- tests

def test_echo_and_path(server):
    async def go():
        async with websockets.connect(wss(server.port, "/hello/room-1?x=1"), ssl=client_ctx()) as ws:
            assert await ws.recv() == "path /hello/room-1"
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send("ünïcødé ✓")
            assert await ws.recv() == "ünïcødé ✓"
    run(go())


def test_subprotocol_and_default_binding(server):
    async def go():
        async with websockets.connect(wss(server.port), ssl=client_ctx(), subprotocols=["hearth.v1"]) as ws:
            assert ws.subprotocol == "hearth.v1"
            await ws.send("a")
            assert await ws.recv() == "a"
        async with websockets.connect(wss(server.port), ssl=client_ctx()) as ws:
            assert ws.subprotocol is None
            await ws.send("b")
            assert await ws.recv() == "b"
    run(go())


def test_fragments_reassembled(server):
    async def go():
        async with websockets.connect(wss(server.port), ssl=client_ctx()) as ws:
            parts = [("%04d" % i) * 250 for i in range(10)]  # 10 fragments x 1000 B
            await ws.send(parts)
            got = await ws.recv()
            assert got == "".join(parts) and len(got) == 10_000
    run(go())


def test_oversize_message_closes_1009(server):
    async def go():
        async with websockets.connect(wss(server.port), ssl=client_ctx(), max_size=None) as ws:
            await ws.send("x" * 70_000)
            with pytest.raises(websockets.ConnectionClosed) as e:
                await ws.recv()
            assert e.value.rcvd.code == 1009
            assert e.value.rcvd.reason == "message too big"
        # also when the total only goes over the limit across fragments
        async with websockets.connect(wss(server.port), ssl=client_ctx(), max_size=None) as ws:
            await ws.send(["y" * 30_000] * 3)
            with pytest.raises(websockets.ConnectionClosed) as e:
                await ws.recv()
            assert e.value.rcvd.code == 1009
    run(go())


def test_binary_closes_1003(server):
    async def go():
        async with websockets.connect(wss(server.port), ssl=client_ctx()) as ws:
            await ws.send(b"\x00\x01binary")
            with pytest.raises(websockets.ConnectionClosed) as e:
                await ws.recv()
            assert e.value.rcvd.code == 1003
            assert e.value.rcvd.reason == "binary frames not supported"
    run(go())


def test_burst_is_batched_in_order(server):
    async def go():
        async with websockets.connect(wss(server.port), ssl=client_ctx()) as ws:
            await ws.send("burst 100")
            msgs, frames = [], []
            while len(msgs) < 100:
                f = await asyncio.wait_for(ws.recv(), 5)
                frames.append(f)
                msgs.extend(f.split("\n"))
            assert msgs == ["burst-%d" % i for i in range(100)]
            print("burst 100: %d frame(s)" % len(frames))
            assert len(frames) < 100
            assert max(len(f.split("\n")) for f in frames) > 1
    run(go())


def test_stream_to_fast_reader_completes(server):
    async def go():
        async with websockets.connect(wss(server.port), ssl=client_ctx()) as ws:
            await ws.send("stream 3000 200")
            n = 0
            while n < 3000:
                for m in (await asyncio.wait_for(ws.recv(), 5)).split("\n"):
                    assert m.startswith("s%d-" % n) and len(m) == 200
                    n += 1
            await ws.send("still here")
            assert await ws.recv() == "still here"
    run(go())


def test_post_from_another_thread(server):
    async def go():
        async with websockets.connect(wss(server.port), ssl=client_ctx()) as ws:
            for i in range(5):
                await ws.send("later %d" % i)
            got = []
            while len(got) < 5:
                got.extend((await asyncio.wait_for(ws.recv(), 5)).split("\n"))
            assert sorted(got) == ["posted %d" % i for i in range(5)]
    run(go())


def test_close_flushes_queue_first(server):
    async def go():
        async with websockets.connect(wss(server.port), ssl=client_ctx()) as ws:
            await ws.send("burst 20")
            await ws.send("close 4321 bye-now")
            msgs = []
            with pytest.raises(websockets.ConnectionClosed) as e:
                while True:
                    msgs.extend((await ws.recv()).split("\n"))
            assert msgs == ["burst-%d" % i for i in range(20)]
            assert e.value.rcvd.code == 4321 and e.value.rcvd.reason == "bye-now"
    run(go())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_old_tls_refused(server, version):
    v = getattr(ssl.TLSVersion, version)
    ctx = client_ctx(v, v)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer old TLS at all
    with socket.create_connection((HOST, server.port), timeout=5) as s:
        with pytest.raises(ssl.SSLError) as e:
            ctx.wrap_socket(s, server_hostname="localhost")
    # the refusal must come from the server (alert), not from the client config
    assert "NO_PROTOCOLS_AVAILABLE" not in str(e.value)
    assert "PROTOCOL_VERSION" in str(e.value).upper() or "VERSION" in str(e.value).upper()


@pytest.mark.parametrize("version,expected", [("TLSv1_2", "TLSv1.2"), ("TLSv1_3", "TLSv1.3")])
def test_modern_tls_accepted(server, version, expected):
    v = getattr(ssl.TLSVersion, version)
    with socket.create_connection((HOST, server.port), timeout=5) as s:
        with client_ctx(v, v).wrap_socket(s, server_hostname="localhost") as t:
            assert t.version() == expected


def test_plaintext_refused(server):
    async def go():
        with pytest.raises(Exception):
            async with websockets.connect("ws://%s:%d/" % (HOST, server.port), open_timeout=5) as ws:
                await ws.send("should not work")
                await ws.recv()
    run(go())
    with socket.create_connection((HOST, server.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        assert b"200" not in data and b"ok" not in data


def test_http_endpoints(server):
    status, headers, body = https_get(server.port, "/healthz")
    assert status == 200 and json.loads(body) == {"ok": True}
    assert headers["content-type"] == "application/json"
    status, _, body = https_get(server.port, "/query?a=1&b=x%20y")
    assert status == 200 and body == b"a=1&b=x y"
    status, _, _ = https_get(server.port, "/nope")
    assert status == 404
    status, _, body = https_get(server.port, "/echo", method="POST", data=b"post-body" * 1000)
    assert status == 200 and body == b"post-body" * 1000
    # over the body limit: answered 413 from the headers alone, then closed
    with socket.create_connection((HOST, server.port), timeout=5) as s:
        with client_ctx().wrap_socket(s, server_hostname="localhost") as t:
            t.sendall(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 70000\r\n\r\n")
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = t.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except (OSError, ssl.SSLError):
                pass
            assert data.startswith(b"HTTP/1.1 413"), data


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_http2_is_not_offered(server):
    # HTTP/1.1 only: the request line is routed as sent, which HTTP/2's HPACK would hide.
    r = subprocess.run(["curl", "-sk", "--http2", "-w", "\n%{http_code} %{http_version}",
                        "https://%s:%d/healthz" % (HOST, server.port)],
                       capture_output=True, timeout=10, text=True)
    assert r.stdout.splitlines() == ['{"ok":true}', "200 1.1"]


def test_paths_are_delivered_as_sent(server):
    async def go():
        for path in ["/hello/a%20b", "/hello//x", "/hello/./x", "/hello/x/../y"]:
            async with websockets.connect(wss(server.port, path), ssl=client_ctx(), open_timeout=5) as ws:
                assert await ws.recv() == "path " + path
    run(go())


def wait_until(pred, timeout, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def test_slow_consumer_closed_4008_and_server_healthy(server):
    before = stats(server.port)
    # 1) a client that stops reading, then resumes: gets the 4008 close frame
    c = RawWS(server.port, rcvbuf=4096, timeout=10)
    c.send_text("stream 20000 1000")
    assert wait_until(lambda: stats(server.port)["queueOverflowCloses"] > before["queueOverflowCloses"], 15)
    code = None
    try:
        while True:
            op, payload = c.read_frame()
            if op == 8:
                code = struct.unpack("!H", payload[:2])[0]
                assert payload[2:] == b"send queue overflow"
                break
    finally:
        c.close()
    assert code == 4008

    # 2) a client that never reads again is dropped by the hard timeout
    mid = stats(server.port)
    c2 = RawWS(server.port, rcvbuf=4096, timeout=10)
    c2.send_text("stream 20000 1000")
    assert wait_until(lambda: stats(server.port)["queueOverflowCloses"] > mid["queueOverflowCloses"], 15)
    t0 = time.time()
    assert wait_until(lambda: stats(server.port)["sessionsClosed"] >= mid["sessionsClosed"] + 1, 10)
    print("never-reading client dropped %.2f s after the overflow was seen" % (time.time() - t0))
    assert time.time() - t0 < 8
    c2.close()

    # 3) the server is still healthy
    assert https_get(server.port, "/healthz")[0] == 200

    async def go():
        async with websockets.connect(wss(server.port), ssl=client_ctx()) as ws:
            await ws.send("after")
            assert await ws.recv() == "after"
    run(go())
    assert stats(server.port)["openSessions"] == 0


def test_keepalive_drops_silent_peer(certs):
    d = start_demo(PORT_KEEPALIVE, certs, "--ping", "1", "--hangup", "2")
    try:
        # a peer that never answers PING is dropped (~2 s)
        c = RawWS(PORT_KEEPALIVE, timeout=10)
        t0 = time.time()
        pings = 0
        with pytest.raises((EOFError, OSError)):
            while time.time() - t0 < 9:
                op, _ = c.read_frame()
                if op == 9:
                    pings += 1
        elapsed = time.time() - t0
        c.close()
        print("silent peer: %d ping(s), dropped after %.2f s" % (pings, elapsed))
        assert pings >= 1
        assert 1.5 <= elapsed <= 6, elapsed

        # a peer that answers PINGs (websockets auto-pong) stays connected
        async def go():
            async with websockets.connect(wss(PORT_KEEPALIVE), ssl=client_ctx(), ping_interval=None) as ws:
                await asyncio.sleep(4)
                await ws.send("alive")
                assert await ws.recv() == "alive"
        run(go())
    finally:
        d.kill()


def test_origin_allowlist(certs):
    d = start_demo(PORT_ORIGIN, certs, "--origin", "https://good.example")
    try:
        async def go():
            async with websockets.connect(wss(PORT_ORIGIN), ssl=client_ctx(),
                                          origin="https://good.example") as ws:
                await ws.send("ok")
                assert await ws.recv() == "ok"
            async with websockets.connect(wss(PORT_ORIGIN), ssl=client_ctx()) as ws:  # no Origin
                await ws.send("ok2")
                assert await ws.recv() == "ok2"
            with pytest.raises(websockets.InvalidStatus) as e:
                async with websockets.connect(wss(PORT_ORIGIN), ssl=client_ctx(), origin="https://evil.example"):
                    pass
            assert e.value.response.status_code == 403
        run(go())
        assert stats(PORT_ORIGIN)["originRejections"] == 1
    finally:
        d.kill()


def test_origin_star_allows_every_origin(certs):
    # "*" in the allowlist means any origin (as an empty list does), not a literal to compare.
    d = start_demo(PORT_ORIGIN_ANY, certs, "--origin", "*")
    try:
        async def go():
            for origin in ["https://any.example", "http://localhost:8080"]:
                async with websockets.connect(wss(PORT_ORIGIN_ANY), ssl=client_ctx(), origin=origin) as ws:
                    await ws.send("hi")
                    assert await ws.recv() == "hi"
        run(go())
        assert stats(PORT_ORIGIN_ANY)["originRejections"] == 0
    finally:
        d.kill()


def test_route_headers_are_sent(server):
    status, headers, body = https_get(server.port, "/healthz")
    assert status == 200 and json.loads(body) == {"ok": True}
    assert headers.get_all("x-content-type-options") == ["nosniff"]
    assert headers.get_all("cache-control") == ["no-store"]
    # HEAD: the same head, no body
    status, headers, body = https_get(server.port, "/healthz", method="HEAD")
    assert status == 200 and body == b""
    assert headers.get_all("x-content-type-options") == ["nosniff"]
    assert headers["content-length"] == "11"
    # a route's own cache-control replaces the no-store default
    status, headers, body = https_get(server.port, "/cached")
    assert status == 200 and body == b"cached\n"
    assert headers.get_all("cache-control") == ["max-age=60"]


def test_a_route_header_with_cr_lf_is_never_written(server):
    status, headers, body = https_get(server.port, "/bad-header")
    assert status == 500 and b"bad response header" in body
    assert headers.get("x-injected") is None and headers.get("set-cookie") is None
    assert https_get(server.port, "/healthz")[0] == 200  # the server goes on


def test_graceful_stop(certs):
    d = start_demo(PORT_STOP, certs)
    try:
        async def go():
            conns = [await websockets.connect(wss(PORT_STOP), ssl=client_ctx()) for _ in range(3)]
            await conns[0].send("burst 30")
            await asyncio.sleep(0.3)
            t0 = time.time()
            d.proc.send_signal(signal.SIGTERM)
            for i, ws in enumerate(conns):
                msgs = []
                with pytest.raises(websockets.ConnectionClosed) as e:
                    while True:
                        msgs.extend((await ws.recv()).split("\n"))
                assert e.value.rcvd.code == 1001 and e.value.rcvd.reason == "server restarting"
                assert msgs[-1] == "bye"
            return t0
        t0 = run(go())
        assert d.proc.wait(5) == 0
        print("graceful stop: process exited %.2f s after SIGTERM" % (time.time() - t0))
        assert time.time() - t0 < 3
    finally:
        d.kill()


# ---------------------------------------------------------------- accept pacing

PORT_BURST = BASE_PORT + 5    # a fresh server for the burst
PORT_FDS = BASE_PORT + 7      # RLIMIT_NOFILE 64


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_stopped(pid):
    """SIGSTOP is delivered asynchronously: waits (at most 2 s) until every thread of `pid` is
    stopped, so that no connection opened next can be answered before the resume."""
    deadline = time.time() + 2
    while time.time() < deadline:
        states = []
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        if all(st == "T" for st in states):
            return
        time.sleep(0.001)
    raise AssertionError("process %d not stopped 2 s after SIGSTOP: %s" % (pid, states))


def burst_while_stopped(d, count):
    """With the server stopped (SIGSTOP), opens `count` TCP connections and sends each one's
    TLS ClientHello, so that all of them wait in the accept queue at once; then resumes the
    server. Returns the TLS sockets, handshakes not finished."""
    d.proc.send_signal(signal.SIGSTOP)
    tls = []
    try:
        wait_until_stopped(d.proc.pid)
        for _ in range(count):
            s = socket.create_connection((HOST, d.port), timeout=5)
            t = client_ctx().wrap_socket(s, server_hostname="localhost", do_handshake_on_connect=False)
            t.setblocking(False)
            with pytest.raises(ssl.SSLWantReadError):
                t.do_handshake()  # sends the ClientHello
            tls.append(t)
    finally:
        d.proc.send_signal(signal.SIGCONT)
    return tls


def finish_and_echo(tls, deadline):
    """Completes every handshake, upgrades and checks an echo on each connection."""
    for i, t in enumerate(tls):
        t.setblocking(True)
        t.settimeout(max(0.1, deadline - time.time()))
        t.do_handshake()
        ws = RawWS.__new__(RawWS)
        ws.sock, ws.buf = t, b""
        key = base64.b64encode(os.urandom(16)).decode()
        t.sendall((
            "GET /burst HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
        while b"\r\n\r\n" not in ws.buf:
            chunk = t.recv(4096)
            assert chunk, "connection %d closed during the upgrade" % i
            ws.buf += chunk
        head, ws.buf = ws.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        ws.send_text("hello %d" % i)
        opcode, payload = ws.read_frame()
        assert (opcode, payload) == (1, b"hello %d" % i)
    for t in tls:
        t.close()


def test_a_burst_of_waiting_connections_is_served(certs):
    """150 connections wait in the accept queue at once, each with its ClientHello sent: the
    transport's own listener takes every one and hands it to lws for TLS and the upgrade. Each
    accept starts a TLS handshake, so the listener stops once an iteration's accept budget
    (5 ms of the loop thread's CPU time after a quiet iteration; the time the server was
    stopped does not count) is spent, and takes the rest in the following iterations: every
    one is still served."""
    d = start_demo(PORT_BURST, certs)
    try:
        tls = burst_while_stopped(d, 150)
        finish_and_echo(tls, time.time() + 20)
        s = stats(PORT_BURST)
        assert s["connectionsAccepted"] >= 150 and s["acceptFailures"] == 0, s
        # 150 handshakes take far more than 5 ms of CPU: at least one iteration stopped early.
        assert s["acceptDeferrals"] >= 1, s
        # OpenSSL's info callback timed them (the budget counts what runs after the accept).
        assert s["handshakeNanoseconds"] > 0, s
    finally:
        d.kill()


def test_out_of_descriptors_pauses_the_listener_without_spinning(certs):
    import resource

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    cert, key = certs
    proc = subprocess.Popen(
        [demo_bin(), "--host", HOST, "--port", str(PORT_FDS), "--cert", cert, "--key", key],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=low_limit)
    held = []
    try:
        assert b"READY" in proc.stdout.readline()
        for _ in range(100):  # more than the server has descriptors for
            held.append(socket.create_connection((HOST, PORT_FDS), timeout=5))
        # The server is now out of descriptors with connections still waiting: lws's own
        # listener would retry (and log) in a busy loop; this one pauses until the next tick.
        time.sleep(0.5)
        before = cpu_seconds(proc.pid)
        time.sleep(2)
        used = cpu_seconds(proc.pid) - before
        # Accepting fails with EMFILE while connections wait: a listener that kept trying
        # would use the whole core; paused, it tries once per tick.
        assert used < 0.5, "server used %.2f s of CPU in 2 s while out of descriptors" % used
        assert proc.poll() is None
        for s in held:
            s.close()
        held = []
        deadline = time.time() + 10
        while True:
            try:
                s = stats(PORT_FDS)
                break
            except OSError:
                assert time.time() < deadline, "the listener did not recover"
                time.sleep(0.2)
        assert s["acceptFailures"] >= 1, s

        async def echo():
            async with websockets.connect(wss(PORT_FDS), ssl=client_ctx()) as ws:
                await ws.send("after")
                return await ws.recv()

        assert run(echo()) == "after"
    finally:
        for s in held:
            s.close()
        proc.kill()
        proc.wait(5)
