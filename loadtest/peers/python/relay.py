#!/usr/bin/env python3
"""python relay: a minimal WebSocket "room relay" on the `websockets` asyncio server.

A benchmark peer for the Hearth load tests, not a product: no auth, no limits. Every text
message is relayed to every connection in the same room (the request path), sender included,
in order. Usage: relay.py --port P --cert CERT.pem --key KEY.pem [--plain]

Relaying uses websockets' broadcast(): it writes each frame to every open member at once and
never waits for a slow reader to drain (no backpressure: a slow reader's write buffer just
grows). It skips only connections that are no longer OPEN (closing), which is what we want.
Messages are received as bytes (decode=False) and sent as text, so nothing is re-encoded.
"""
import argparse
import asyncio
import signal
import ssl

from websockets.asyncio.server import broadcast, serve
from websockets.exceptions import ConnectionClosed

try:  # only if already installed; the benchmark does not install it
    import uvloop
    run = uvloop.run
except ImportError:
    run = asyncio.run

rooms = {}  # path -> set of connections


async def relay(conn):
    path = conn.request.path
    room = rooms.setdefault(path, set())
    room.add(conn)
    try:
        while True:
            broadcast(room, await conn.recv(decode=False), text=True)
    except ConnectionClosed:
        pass
    finally:
        room.discard(conn)
        if not room and rooms.get(path) is room:
            del rooms[path]


async def main(args):
    tls = None
    if not args.plain:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.cert, args.key)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with serve(relay, "127.0.0.1", args.port, ssl=tls, compression=None,
                     max_size=1 << 20, ping_interval=None, close_timeout=1):
        print(f"listening on 127.0.0.1:{args.port}", flush=True)
        await stop


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="room relay benchmark peer (websockets)")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--plain", action="store_true", help="ws:// instead of wss://")
    args = p.parse_args()
    if not args.plain and not (args.cert and args.key):
        p.error("--cert and --key are required unless --plain")
    run(main(args))
