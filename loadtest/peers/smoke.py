#!/usr/bin/env python3
"""Contract check for a benchmark room-relay peer (loadtest/peers/*), not for Hearth itself.

usage: python3 loadtest/peers/smoke.py --port P [--plain]

Three clients in room A and two in room B; every A client sends 50 ~200-byte messages, every
B client 20. Each client must receive every message of its own room, sender included, in
per-sender order, and nothing from the other room. Then one 6 KB message and one message
sent as three fragments (it must arrive whole), then one A client disconnects and the others
must still relay. Exits 0 with "smoke: ok PEER-agnostic".
"""
import argparse
import asyncio
import ssl
import sys
import uuid

from websockets.asyncio.client import connect

N_A, N_B = 50, 20


def payload(room, sender, n, size=200):
    head = f"{room}|{sender}|{n}|"
    return head + "x" * (size - len(head))


async def expect(ws, want, label):
    """Receive exactly len(want) messages; each sender's messages must arrive in order."""
    got = []
    while len(got) < len(want):
        msg = await ws.recv()
        if not isinstance(msg, str):
            raise AssertionError(f"{label}: binary frame received")
        got.append(msg)
    if sorted(got) != sorted(want):
        raise AssertionError(f"{label}: got {len(got)} messages, not the expected set "
                             f"(first unexpected: {next((m[:40] for m in got if m not in want), None)!r})")
    for sender in {m.split("|")[1] for m in want}:
        mine = [m for m in got if m.split("|")[1] == sender]
        if mine != [m for m in want if m.split("|")[1] == sender]:
            raise AssertionError(f"{label}: messages from {sender} reordered")


async def main(args):
    scheme = "ws" if args.plain else "wss"
    ctx = None
    if not args.plain:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    tag = uuid.uuid4().hex[:8]   # fresh rooms, so a peer reused across runs does not matter
    room_a, room_b = f"/relay/smoke-a-{tag}", f"/relay/smoke-b-{tag}"

    async def open_(path):
        return await connect(f"{scheme}://127.0.0.1:{args.port}{path}", ssl=ctx,
                             compression=None, max_size=1 << 20, ping_interval=None,
                             open_timeout=5)

    a = [await open_(room_a) for _ in range(3)]
    b = [await open_(room_b) for _ in range(2)]
    await asyncio.sleep(0.2)   # all joined before anyone sends

    want_a = [payload("A", f"a{i}", n) for n in range(N_A) for i in range(3)]
    want_b = [payload("B", f"b{i}", n) for n in range(N_B) for i in range(2)]

    async def send_all(ws, room, sender, count):
        for n in range(count):
            await ws.send(payload(room, sender, n))

    await asyncio.gather(
        *(send_all(ws, "A", f"a{i}", N_A) for i, ws in enumerate(a)),
        *(send_all(ws, "B", f"b{i}", N_B) for i, ws in enumerate(b)),
        *(expect(ws, want_a, f"A client {i}") for i, ws in enumerate(a)),
        *(expect(ws, want_b, f"B client {i}") for i, ws in enumerate(b)))

    big = payload("A", "big", 0, 6 * 1024)
    await a[1].send(big)
    await asyncio.gather(*(expect(ws, [big], f"A client {i} (6 KB)") for i, ws in enumerate(a)))

    # a message sent as three continuation frames must arrive as one whole message
    frag = payload("A", "frag", 0, 3000)
    await a[2].send([frag[:100], frag[100:2000], frag[2000:]])
    await asyncio.gather(*(expect(ws, [frag], f"A client {i} (fragmented)") for i, ws in enumerate(a)))

    await a[0].close()
    await asyncio.sleep(0.2)
    after = payload("A", "a2", 999)
    await a[2].send(after)
    await asyncio.gather(*(expect(ws, [after], f"A client {i} after a disconnect")
                           for i, ws in enumerate(a) if i))
    last_b = payload("B", "b0", 999)
    await b[0].send(last_b)
    await asyncio.gather(*(expect(ws, [last_b], f"B client {i} (last)") for i, ws in enumerate(b)))

    # nothing stray may be left in any queue (e.g. B traffic leaking into A)
    async def silent(ws, label):
        try:
            extra = await asyncio.wait_for(ws.recv(), 0.3)
        except asyncio.TimeoutError:
            return
        raise AssertionError(f"{label}: unexpected extra message {extra[:40]!r}")
    await asyncio.gather(*(silent(ws, f"client {i}") for i, ws in enumerate(a[1:] + b)))
    for ws in a[1:] + b:
        await ws.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--plain", action="store_true", help="ws:// instead of wss://")
    args = p.parse_args()
    try:
        asyncio.run(asyncio.wait_for(main(args), 20))
    except asyncio.TimeoutError:
        sys.exit("smoke: FAIL timed out after 20 s (messages missing or peer stalled)")
    except Exception as e:  # noqa: BLE001 - report any failure as one line
        sys.exit(f"smoke: FAIL {type(e).__name__}: {e}")
    print("smoke: ok PEER-agnostic")
