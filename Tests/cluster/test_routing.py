"""Routing a cluster (issue 15): HAProxy terminates TLS and sends every request for a room to the
room's node over the node's plaintext Unix socket; rooms stay where they run when a node comes
back; per-address limits see the real client through the proxy.

Each node here still keeps its own journal (the shared PostgreSQL store is the next part of the
issue), so a room that moves starts over on its new node: these tests check the routing only."""
import hashlib
import hmac
import json
import signal
import socket
import time
import urllib.request

import websockets
from conftest import run
from cluster import HAProxy, Node
from hearth import Client, b64url, client_tls, mint

ADMIN_SECRET = "cluster-admin-secret-0123456789-abcdef"


def nodes(n, **overrides):
    return [Node(admin={"keys": [{"secret": ADMIN_SECRET}]}, **overrides) for _ in range(n)]


def admin_token():
    """An HS256 admin JWT for the operations API, made here."""
    now = int(time.time())
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": "op", "scope": "hearth-admin", "iat": now, "exp": now + 300}).encode())
    signature = hmac.new(ADMIN_SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def api_status(base, room):
    request = urllib.request.Request(f"{base}/api/v1/rooms/{room}",
                                     headers={"Authorization": f"Bearer {admin_token()}"})
    try:
        with urllib.request.urlopen(request, context=client_tls(), timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None


def node_of(room, members):
    """Which nodes hold the room: those whose own API (on their TLS port) knows it."""
    return [f"n{i + 1}" for i, node in enumerate(members)
            if api_status(f"https://127.0.0.1:{node.port}", room)[0] == 200]


async def join_via(proxy, room, role, name, source="127.0.0.1", token=None, headers=None):
    """A client connecting to HAProxy from a chosen loopback source address."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", proxy.port))
    sock.setblocking(False)
    ws = await websockets.connect(f"{proxy.url}/v1/rooms/{room}", ssl=client_tls(), sock=sock,
                                  server_hostname="localhost", open_timeout=5, additional_headers=headers)
    c = Client(ws, name)
    try:
        await c.send("hello", token=token or mint(room, role, name))
    except websockets.ConnectionClosed:
        pass  # turned away at the door (the test reads the close code)
    return c


def test_rooms_are_routed_by_id_and_stay_on_their_node_after_a_failover():
    members = nodes(3)
    proxy = HAProxy(members)
    try:
        async def scenario():
            rooms = [f"room-{i}" for i in range(12)]
            for room in rooms:
                fac = await join_via(proxy, room, "facilitator", "fac")
                assert (await fac.expect("welcome"))["you"]["placement"] == "room"
                p = await join_via(proxy, room, "participant", "p")
                await p.expect("welcome")
                # The second member is in the same room process: the facilitator sees them wait.
                await fac.expect("waiting-updated")
                await fac.close()
                await p.close()
            placement = {room: proxy.owner(room) for room in rooms}
            assert all(placement.values()), placement
            assert len(set(placement.values())) >= 2, f"rooms all on one node: {placement}"
            # The operations API for a room reaches the room's node through the proxy as well.
            for room in rooms[:4]:
                assert node_of(room, members) == [placement[room]], (room, placement[room])
                status, body = api_status(f"https://127.0.0.1:{proxy.port}", room)
                assert status == 200 and body["id"] == room
            # Kill a node: its rooms go elsewhere at once, and stay there when it comes back.
            victim_name = placement[rooms[0]]
            victim = members[int(victim_name[1:]) - 1]
            victim.process.send_signal(signal.SIGKILL)
            victim.process.wait(5)
            moved = [r for r in rooms if placement[r] == victim_name]
            for room in moved:
                c = await join_via(proxy, room, "facilitator", "fac2")
                assert (await c.expect("welcome", timeout=5))["type"] == "welcome"
                await c.close()
                assert proxy.owner(room) not in (None, victim_name)
            new_placement = {room: proxy.owner(room) for room in moved}
            victim.start()
            proxy.wait_up(3, timeout=10)
            for room in moved:
                c = await join_via(proxy, room, "participant", "late")
                await c.expect("welcome")
                await c.close()
                assert proxy.owner(room) == new_placement[room], "a room moved back to its recovered node"
            untouched = [r for r in rooms if placement[r] != victim_name]
            assert all(proxy.owner(r) == placement[r] for r in untouched)
        run(scenario(), timeout=90)
    finally:
        proxy.stop()
        for node in members:
            node.stop(signal.SIGKILL)


def test_per_address_limits_see_the_client_not_the_proxy():
    members = nodes(2, rateLimits={"authFailureBurst": 3, "authFailuresPerSecond": 0.01})
    proxy = HAProxy(members)
    try:
        async def scenario():
            # 127.0.0.2 sends bad tokens until its budget is gone...
            refused = None
            for i in range(8):
                c = await join_via(proxy, "r-limits", "participant", f"bad{i}", source="127.0.0.2", token="not.a.token")
                try:
                    code = await c.closed(timeout=3)
                except Exception:
                    code = None
                if code == 4429:
                    refused = i
                    break
            assert refused is not None, "the failing address was never rate-limited"
            # ...and 127.0.0.3, through the same proxy to the same node, still joins.
            ok = await join_via(proxy, "r-limits", "facilitator", "good", source="127.0.0.3")
            assert (await ok.expect("welcome"))["you"]["placement"] == "room"
            # A client cannot choose its address with its own X-Forwarded-For: HAProxy replaces it,
            # so the locked-out address stays locked out whatever it claims.
            spoof = await join_via(proxy, "r-limits", "facilitator", "spoof", source="127.0.0.2",
                                   headers={"X-Forwarded-For": "127.0.0.3"})
            assert await spoof.closed(timeout=3) == 4429
        run(scenario(), timeout=60)
    finally:
        proxy.stop()
        for node in members:
            node.stop(signal.SIGKILL)
