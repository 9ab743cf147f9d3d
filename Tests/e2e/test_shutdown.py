"""Graceful shutdown: SIGTERM tells every client to reconnect and exits 0."""
import asyncio
import signal

from conftest import run
from hearth import Client, Server


def test_sigterm_closes_clients_with_1001_and_exits_zero():
    server = Server()
    try:
        async def go():
            c = await Client.join(server, "room-stop", "facilitator", "F")
            server.process.send_signal(signal.SIGTERM)
            assert await c.closed(timeout=5) == 1001
        run(go())
        assert server.process.wait(timeout=10) == 0
    finally:
        server.stop(signal.SIGKILL)
