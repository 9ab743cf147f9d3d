"""Transport and protocol rules against the running server: TLS, limits, bad input, HTTP."""
import json
import socket
import ssl

import pytest
import websockets
from conftest import run
from hearth import Client, Server, client_tls, mint


def plaintext_request(port):
    """Plain HTTP to the TLS port; returns what came back (b"" for a close or a reset). A port
    nothing listens on raises ConnectionRefusedError: the check cannot pass against a dead server."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        try:
            while chunk := s.recv(4096):
                data += chunk
        except ConnectionResetError:
            pass
    return data


def old_tls_handshake(port):
    """A TLS 1.0/1.1-only client handshake (old suites allowed, so that the client itself can
    offer them); returns the SSLError it ended with."""
    old = client_tls(minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1_1)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        with pytest.raises(ssl.SSLError) as e:
            with old.wrap_socket(s) as tls:
                tls.do_handshake()
    return e.value


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_plaintext_is_refused(server):
    data = plaintext_request(server.port)
    assert b"HTTP/" not in data and b"status" not in data, data
    # The server was there and is still serving over TLS.
    with server.https("/healthz") as r:
        assert r.status == 200
    # And the check above cannot pass against a dead server.
    with pytest.raises(ConnectionRefusedError):
        plaintext_request(closed_port())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_1_1_is_refused_and_1_2_1_3_work(server):
    error = old_tls_handshake(server.port)
    # The server's alert (protocol_version), not the client's own "no protocols available".
    assert error.reason == "TLSV1_ALERT_PROTOCOL_VERSION", error
    with pytest.raises(ConnectionRefusedError):
        old_tls_handshake(closed_port())
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_tls(minimum=version, maximum=version)
        with socket.create_connection(("127.0.0.1", server.port), timeout=3) as s:
            with ctx.wrap_socket(s) as tls:
                assert tls.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]


def test_hello_deadline_closes_silent_connections(server):
    async def go():
        c = await Client.connect(server, "room-silent")
        assert await c.closed(timeout=5) == 4408
    run(go())


def test_unknown_endpoint_is_closed(server):
    async def go():
        ws = await websockets.connect(f"{server.url}/v2/elsewhere", ssl=client_tls())
        c = Client(ws, "lost")
        assert await c.closed() == 4404
    run(go())


def test_oversized_frame_closes_1009(server):
    async def go():
        c = await Client.connect(server, "room-big")
        await c.ws.send(json.dumps({"type": "ping", "pad": "x" * 70_000}))
        assert await c.closed() == 1009
    run(go())


def test_binary_frame_closes_1003(server):
    async def go():
        c = await Client.connect(server, "room-bin")
        await c.ws.send(b"\x00\x01")
        assert await c.closed() == 1003
    run(go())


def test_bad_input_gets_errors_without_closing(server):
    async def go():
        c = await Client.connect(server, "room-bad")
        await c.ws.send("{not json")
        assert (await c.expect("error"))["code"] == "bad-json"
        await c.ws.send(json.dumps({"type": "dance", "rid": "r9"}))
        err = await c.expect("error")
        assert err["code"] == "unknown-type" and err["rid"] == "r9"
        await c.ws.send(json.dumps({"type": "chat", "to": "room", "text": "early", "rid": "r10"}))
        err = await c.expect("error")
        assert err["code"] == "hello-required" and err["rid"] == "r10"
        await c.ws.send(json.dumps({"type": "ping", "rid": "p"}))
        err = await c.expect("error")
        assert err["code"] == "hello-required" and err["rid"] == "p"
        # Repeated bad input closes the connection (each error is read before the next send,
        # so the close frame is not lost to a reset).
        code = None
        for _ in range(10):
            try:
                await c.ws.send("[")
                assert (await c.expect("error"))["code"] == "bad-json"
            except websockets.ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd else None
                break
        assert code == 1008
    run(go())


def test_authentication_failures_are_one_error(server):
    async def go():
        for token in [
            mint("room-auth", "facilitator", "F", secret="wrong-secret-wrong-secret-wrong-secret"),
            mint("another-room", "facilitator", "F"),
            mint("room-auth", "facilitator", "F", ttl=-120),
            "garbage",
        ]:
            c = await Client.connect(server, "room-auth")
            await c.send("hello", token=token)
            err = await c.expect("error")
            assert err["code"] == "authentication-failed"
            assert await c.closed() == 4401
        def failures(rows):
            return [r for r in rows if r["action"] == "authenticate"]
        rows = server.wait_records("audit", lambda rows: len(failures(rows)) >= 4)
        assert len(failures(rows)) >= 4
        assert not any("garbage" in json.dumps(r) for r in rows), "tokens never reach the records"
    run(go())


def test_healthz_and_metrics(server):
    with server.https("/healthz") as r:
        health = json.loads(r.read())
    assert health["status"] == "ok" and health["version"] and health["uptimeSeconds"] >= 0
    with server.https("/metrics") as r:
        text = r.read().decode()
    for name in ["hearth_connections", "hearth_rooms", "hearth_messages_in_total", "hearth_engine_dispatch_seconds"]:
        assert name in text, name


def test_operational_log_has_no_names_or_tokens(server):
    async def go():
        token = mint("room-log", "facilitator", "Zelda Quackenbush", sub="secret-user-77")
        c = await Client.connect(server, "room-log")
        await c.send("hello", token=token)
        await c.expect("welcome")
        await c.request("chat", to="room", text="my very private words")
        await c.close()
    run(go())
    log = server.log()
    for needle in ["Zelda", "secret-user-77", "my very private words", "eyJ"]:
        assert needle not in log, needle


def https_get_with_session(port, ctx, session=None):
    """GET /healthz over a fresh TLS connection made with `ctx` (offering `session`, if any, for
    resumption); returns the connection's session and whether it was resumed. The response is
    read whole first, so any TLS 1.3 session ticket the server sent has arrived by then."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        with ctx.wrap_socket(s, session=session) as tls:
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := tls.recv(4096):
                data += chunk
            assert data.startswith(b"HTTP/1.1 200"), data[:80]
            return tls.session, tls.session_reused


def test_tls_sessions_are_never_resumed(server):
    """No session tickets (TLS 1.3 or 1.2) and no session cache: every connection does a full
    handshake, also one that offers the session of an earlier connection."""
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        ctx = client_tls(minimum=version, maximum=version)  # a session resumes in its own context
        first, resumed = https_get_with_session(server.port, ctx)
        assert not resumed
        assert not first.has_ticket, f"{version.name}: the server sent a session ticket"
        _, resumed = https_get_with_session(server.port, ctx, session=first)
        assert not resumed, f"{version.name}: the second connection resumed the first one's session"


def test_openssl_frees_through_hearthds_allocator_and_tls_works():
    """hearthd gives OpenSSL an allocator that skips free(NULL) (jemalloc's is slow, and
    libwebsockets clears OpenSSL's error queue, 32 of them, before every read and write). It
    must be installed before OpenSSL's first allocation, or OpenSSL refuses it: the debug log
    says whether it took. Then TLS of both versions, a join and a chat work through it, and the
    server stops cleanly."""
    s = Server(logLevel="debug")
    try:
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            ctx = client_tls(minimum=version, maximum=version)
            https_get_with_session(s.port, ctx)

        async def go():
            token = mint("room-allocator", "facilitator", "Fran")
            c = await Client.connect(s, "room-allocator")
            await c.send("hello", token=token)
            await c.expect("welcome")
            ack = await c.request("chat", to="room", text="through OpenSSL's frees")
            assert ack["type"] == "ack", ack
            await c.close()

        run(go())
    finally:
        code = s.stop()
    log = s.log()
    assert code == 0, log
    assert "skipsNullFrees=true" in log, log
