"""The edge of the server, seen by hand-written clients (issue 11, items 7, 12, 13, 14, 20).

These clients write HTTP and WebSocket bytes themselves over TLS, so nothing between the
test and the server tidies a request up: a refused `Upgrade: h2c`, TLS 1.2 cipher suites,
request paths exactly as sent, `X-Forwarded-For` from a trusted proxy, and a flood of frames
written without reading. Loopback only; every read is bounded by a socket timeout.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import socket
import ssl
import struct
import subprocess
import tempfile
import time

import pytest
from hearth import Server, b64url, client_tls, mint


# MARK: a raw TLS HTTP/WebSocket client


def tls_connect(server, ctx=None):
    ctx = ctx or client_tls()
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    return ctx.wrap_socket(raw)


class Raw:
    """One TLS connection: an HTTP request written byte for byte, then WebSocket frames."""

    def __init__(self, server, ctx=None):
        self.sock = tls_connect(server, ctx)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the server closed the connection")
        self.buf += data

    def response(self):
        """Reads one HTTP response head and its Content-Length body: (status, head, body)."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = b""
        if status != 101:
            length = int(headers.get("content-length", "0"))
            while len(self.buf) < length:
                self._fill()
            body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def request(self, method, target, headers=()):
        lines = [f"{method} {target} HTTP/1.1", "Host: localhost", *headers, "", ""]
        self.sock.sendall("\r\n".join(lines).encode())
        return self.response()

    def upgrade(self, target, headers=()):
        key = base64.b64encode(os.urandom(16)).decode()
        return self.request("GET", target, ["Upgrade: websocket", "Connection: Upgrade",
                                            f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13", *headers])

    @staticmethod
    def frame(text, opcode=1):
        payload = text.encode() if isinstance(text, str) else text
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

    def send(self, message):
        self.sock.sendall(self.frame(json.dumps(message)))

    def read_frame(self):
        """(opcode, payload) of the server's next frame (servers do not mask)."""
        while len(self.buf) < 2:
            self._fill()
        opcode, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
        start = 2
        if n == 126:
            while len(self.buf) < 4:
                self._fill()
            n, start = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            while len(self.buf) < 10:
                self._fill()
            n, start = struct.unpack("!Q", self.buf[2:10])[0], 10
        while len(self.buf) < start + n:
            self._fill()
        payload, self.buf = self.buf[start:start + n], self.buf[start + n:]
        return opcode, payload

    def messages(self):
        """Messages of the next text frame (a frame may hold several, one per line)."""
        opcode, payload = self.read_frame()
        if opcode == 8:
            raise ConnectionAbortedError(struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None)
        return [json.loads(line) for line in payload.decode().split("\n")] if opcode == 1 else []

    def expect(self, type):
        while True:
            for m in self.messages():
                if m["type"] == type:
                    return m

    def close_code(self):
        """The code of the server's close frame, skipping other frames. A connection that ends
        without one (a reset, or end of stream) fails the test."""
        while True:
            opcode, payload = self.read_frame()
            if opcode == 8:
                return struct.unpack("!H", payload[:2])[0]


def join_raw(server, room, headers=()):
    c = Raw(server)
    status, _, _ = c.upgrade(f"/v1/rooms/{room}", headers)
    assert status == 101
    c.send({"type": "hello", "rid": "h", "token": mint(room, "facilitator", "F")})
    return c


# MARK: item 7: h2c


H2C = ["Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"]


@pytest.mark.parametrize("target", ["/metrics", "/healthz", "/v1/rooms/h2c-room"])
def test_h2c_upgrade_is_refused(server, target):
    c = Raw(server)
    try:
        status, headers, body = c.request("GET", target, H2C)
        assert status == 400, (status, headers, body)
        assert b"hearth_" not in body and b"uptime" not in body
        # No HTTP/2 is spoken afterwards either: the connection is closed after the refusal.
        c.sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        with pytest.raises((EOFError, ConnectionError)):
            while True:
                c._fill()
        assert b"hearth_" not in c.buf
    finally:
        c.close()


def test_transport_refusals_are_counted_in_metrics(server):
    """What the transport refuses before the shell sees it shows in /metrics, by reason."""
    def refusals(reason):
        with server.https("/metrics") as r:
            text = r.read().decode()
        m = re.search(rf'^hearth_transport_refusals_total\{{reason="{reason}"\}} (\S+)$', text, re.M)
        return float(m.group(1)) if m else 0.0

    before = refusals("upgrade"), refusals("http-framing")
    c = Raw(server)
    try:
        assert c.request("GET", "/healthz", H2C)[0] == 400
    finally:
        c.close()
    c = Raw(server)
    try:
        assert c.request("GET", "/healthz", ["Content-Length: 0", "Content-Length: 1"])[0] == 400
    finally:
        c.close()
    # The gauges are refreshed when /metrics is read.
    assert refusals("upgrade") == before[0] + 1
    assert refusals("http-framing") == before[1] + 1


def test_accepted_connections_are_counted_in_metrics(server):
    """Every TCP connection the TLS listener takes shows in hearth_transport_accepts_total."""
    def accepts(result):
        with server.https("/metrics") as r:
            text = r.read().decode()
        m = re.search(rf'^hearth_transport_accepts_total\{{result="{result}"\}} (\S+)$', text, re.M)
        assert m, "no hearth_transport_accepts_total{result=%s}" % result
        return float(m.group(1))

    before = accepts("accepted")
    for _ in range(3):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
    # The three plain connections (queued first) and the next /metrics request's own: one
    # reading, so that polling cannot add connections of its own.
    assert accepts("accepted") >= before + 4
    assert accepts("failed") == 0


def test_http2_is_not_spoken(server):
    ctx = client_tls()
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.port), timeout=5)) as tls:
        assert tls.selected_alpn_protocol() == "http/1.1"
    # Prior knowledge (the HTTP/2 preface and an empty SETTINGS frame) gets no HTTP/2 either.
    with client_tls().wrap_socket(socket.create_connection(("127.0.0.1", server.port), timeout=5)) as tls:
        tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionError:
            pass
        assert data == b"" or data.startswith(b"HTTP/1."), data


# MARK: item 12: TLS 1.2 cipher suites


@pytest.fixture(scope="module")
def rsa_cert():
    """An RSA certificate: RSA key exchange suites are only possible with one."""
    d = tempfile.mkdtemp(prefix="hearth-rsa-")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return {"certificate": cert, "privateKey": key}


@pytest.fixture(scope="module")
def rsa_server(rsa_cert):
    s = Server(tls=rsa_cert)
    yield s
    assert s.stop() == 0, s.log()


def tls12(cipher):
    ctx = client_tls(minimum=ssl.TLSVersion.TLSv1_2, maximum=ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers(cipher + ":@SECLEVEL=0")
    return ctx


@pytest.mark.parametrize("cipher", ["AES128-SHA", "AES256-SHA", "AES256-SHA256", "AES128-GCM-SHA256",
                                    "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384"])
def test_tls12_without_forward_secrecy_or_aead_is_refused(rsa_server, cipher):
    with socket.create_connection(("127.0.0.1", rsa_server.port), timeout=5) as s:
        with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE|NO_SHARED_CIPHER|handshake failure"):
            with tls12(cipher).wrap_socket(s) as tls:
                tls.do_handshake()


@pytest.mark.parametrize("cipher", ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                                    "ECDHE-RSA-CHACHA20-POLY1305"])
def test_tls12_ecdhe_aead_works(rsa_server, cipher):
    with socket.create_connection(("127.0.0.1", rsa_server.port), timeout=5) as s:
        with tls12(cipher).wrap_socket(s) as tls:
            assert tls.cipher()[0] == cipher and tls.version() == "TLSv1.2"


def test_tls12_ecdsa_certificate_gets_ecdhe_ecdsa(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        with tls12("ECDHE-ECDSA-AES128-GCM-SHA256").wrap_socket(s) as tls:
            assert tls.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"


def test_tls_ciphers_setting_is_applied(rsa_cert):
    s = Server(tls={**rsa_cert, "ciphers": "ECDHE-RSA-AES256-GCM-SHA384"})
    try:
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as raw:
            with pytest.raises(ssl.SSLError):
                with tls12("ECDHE-RSA-AES128-GCM-SHA256").wrap_socket(raw) as tls:
                    tls.do_handshake()
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as raw:
            with tls12("ECDHE-RSA-AES256-GCM-SHA384").wrap_socket(raw) as tls:
                assert tls.cipher()[0] == "ECDHE-RSA-AES256-GCM-SHA384"
        # TLS 1.3 suites are not affected by tls.ciphers.
        ctx = client_tls(minimum=ssl.TLSVersion.TLSv1_3)
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as tls:
                assert tls.version() == "TLSv1.3"
    finally:
        assert s.stop() == 0, s.log()


# MARK: item 13: the request path as sent


@pytest.mark.parametrize("path", ["/v1/rooms/bys%74ander", "/v1/rooms//bystander", "/v1/rooms/../rooms/bystander",
                                  "/v1/rooms/./bystander", "/v1//rooms/bystander", "/v1/rooms/bystander/.",
                                  "/v1/rooms/bystander/", "/v1/rooms/%62ystander"])
def test_non_canonical_room_paths_close_4404(server, path):
    c = Raw(server)
    try:
        status, _, _ = c.upgrade(path)
        assert status == 101
        assert c.close_code() == 4404
    finally:
        c.close()


def test_canonical_room_path_still_joins(server):
    c = join_raw(server, "bystander")
    try:
        assert c.expect("welcome")["you"]["role"] == "facilitator"
    finally:
        c.close()


ADMIN_SECRET = "edge-admin-secret-0123456789-abcdefghij"


def admin_token():
    now = int(time.time())
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": "op", "scope": "hearth-admin", "iat": now, "exp": now + 300}).encode())
    signature = hmac.new(ADMIN_SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


@pytest.fixture(scope="module")
def api_server():
    s = Server(admin={"keys": [{"secret": ADMIN_SECRET}]})
    yield s
    assert s.stop() == 0, s.log()


def test_non_canonical_http_paths_are_refused(api_server):
    staff = join_raw(api_server, "x")
    try:
        staff.expect("welcome")
        auth = [f"Authorization: Bearer {admin_token()}"]
        status, _, body = Raw(api_server).request("GET", "/api/v1/rooms/x/audit", auth)
        assert status == 200, body
        for target in ["/api/v1/rooms/x%2Faudit", "/api/v1/rooms/x/%61udit", "/api//v1/rooms/x/audit",
                       "/api/v1/rooms/x/../x/audit", "/api/v1/rooms/./x/audit", "/api/v1/rooms/x/audit/",
                       "/api/v1/rooms/%78/audit"]:
            c = Raw(api_server)
            try:
                status, _, body = c.request("GET", target, auth)
                assert status in (400, 404), (target, status, body)
            finally:
                c.close()
        status, _, body = Raw(api_server).request("GET", "/h%65althz")
        assert status in (400, 404), body
    finally:
        staff.close()


def test_plain_http_serves_one_request_per_connection(server):
    c = Raw(server)
    try:
        status, headers, _ = c.request("GET", "/healthz")
        assert status == 200 and headers["connection"] == "close"
        c.sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        with pytest.raises((EOFError, ConnectionError)):
            c.response()
    finally:
        c.close()


# MARK: item 14: trusted proxies


@pytest.fixture(scope="module")
def proxied():
    s = Server(trustedProxies=["127.0.0.1/32"], limits={"maxConnectionsPerAddress": 2})
    yield s
    assert s.stop() == 0, s.log()


def opened(server, forwarded):
    """Opens a room connection from the test (127.0.0.1) with an X-Forwarded-For header; returns
    it once it is admitted, or the close code it got instead."""
    c = Raw(server)
    headers = [f"X-Forwarded-For: {forwarded}"] if forwarded is not None else []
    status, _, _ = c.upgrade("/v1/rooms/proxied", headers)
    assert status == 101
    c.send({"type": "hello", "rid": "h", "token": mint("proxied", "facilitator", "F")})
    try:
        c.expect("welcome")
        return c
    except ConnectionAbortedError as e:
        c.close()
        return e.args[0]


def test_forwarded_address_is_the_client_behind_a_trusted_proxy(proxied):
    held = []
    try:
        for _ in range(2):
            c = opened(proxied, "198.51.100.7")
            assert isinstance(c, Raw)
            held.append(c)
        assert opened(proxied, "198.51.100.7") == 1013
        # Another client behind the same proxy has its own slots.
        c = opened(proxied, "198.51.100.8")
        assert isinstance(c, Raw)
        held.append(c)
        # Entries a client wrote itself (left of what the proxy appended) do not count.
        assert opened(proxied, "198.51.100.9, 198.51.100.7") == 1013
        # Trusted hops on the right are skipped: the client is the rightmost untrusted one.
        assert opened(proxied, "198.51.100.7, 127.0.0.1") == 1013
    finally:
        for c in held:
            c.close()


def test_ipv6_clients_share_slots_per_64(proxied):
    held = []
    try:
        for forwarded in ["2001:db8:1:2::1", "2001:db8:1:2:ffff::9"]:
            c = opened(proxied, forwarded)
            assert isinstance(c, Raw)
            held.append(c)
        assert opened(proxied, "2001:db8:1:2::77") == 1013
        c = opened(proxied, "2001:db8:1:3::1")
        assert isinstance(c, Raw)
        held.append(c)
    finally:
        for c in held:
            c.close()


def test_forwarded_for_from_an_untrusted_peer_is_ignored():
    s = Server(limits={"maxConnectionsPerAddress": 2})
    held = []
    try:
        for forwarded in ["198.51.100.1", "198.51.100.2"]:
            c = opened(s, forwarded)
            assert isinstance(c, Raw)
            held.append(c)
        # The header is ignored: all three come from 127.0.0.1.
        assert opened(s, "198.51.100.3") == 1013
    finally:
        for c in held:
            c.close()
        assert s.stop() == 0, s.log()


# MARK: item 20: a flood written without reading


def test_flood_without_reading_ends_with_the_4429_close_frame(server):
    c = join_raw(server, "flood-room")
    try:
        c.expect("welcome")
        # Each frame in its own TLS record, as a client writing in a loop does: the server decides
        # to close (4429) while most of them are still on their way.
        for i in range(500):
            c.sock.sendall(Raw.frame(json.dumps({"type": "chat", "rid": f"f{i}", "to": "room", "text": f"flood {i}"})))
        assert c.close_code() == 4429
    finally:
        c.close()


# MARK: allowedOrigins: "*" (issue 12)


def test_allowed_origins_star_lets_any_browser_origin_join():
    # The configuration accepts "*" ("any web page may connect"); the transport must agree.
    s = Server(allowedOrigins=["*"])
    try:
        for i, origin in enumerate(["https://any.example", "http://localhost:3000"]):
            c = join_raw(s, f"star-origin-{i}", [f"Origin: {origin}"])
            try:
                c.expect("welcome")
            finally:
                c.close()
    finally:
        assert s.stop() == 0, s.log()


def test_a_listed_origin_still_refuses_others():
    s = Server(allowedOrigins=["https://app.example"])
    try:
        c = join_raw(s, "listed-origin", ["Origin: https://app.example"])
        try:
            c.expect("welcome")
        finally:
            c.close()
        c = Raw(s)
        try:
            status, _, body = c.upgrade("/v1/rooms/listed-origin", ["Origin: https://evil.example"])
            assert status == 403 and body == b"origin not allowed\n"
        finally:
            c.close()
    finally:
        assert s.stop() == 0, s.log()
