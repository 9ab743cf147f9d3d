"""The operations API in a cluster (docs/api.md, "In a cluster"): any node creates and lists
rooms from the shared tables, a room's own routes reach its node, and a node that does not hold a
room says so (`503 room-elsewhere`) rather than answering from a copy. Records read from any node.
Three hearthd with `store: postgres` behind HAProxy, as in test_failover.py."""
import json
import ssl
import time
import urllib.error
import urllib.request
import uuid

from conftest import run
from cluster import admin_token
from hearth import Client
from test_failover import ADMIN_SECRET, cluster, node_named, owner_row  # noqa: F401 (the fixture)


def call(node, method, path, body=None):
    """An operations API call straight to one node's TLS port (not through HAProxy)."""
    request = urllib.request.Request(
        f"https://127.0.0.1:{node.port}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {admin_token(ADMIN_SECRET)}", "Content-Type": "application/json"})
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def listed(node, room):
    status, body = call(node, "GET", "/api/v1/rooms")
    assert status == 200, body
    return next((r for r in body["rooms"] if r["id"] == room), None)


def test_any_node_creates_and_lists_and_a_rooms_routes_reach_its_node(cluster):
    n1, n2, n3 = cluster.nodes
    room = f"ops-{uuid.uuid4().hex[:8]}"
    status, created = call(n1, "POST", "/api/v1/rooms", {"id": room, "settings": {"capacity": 5}})
    assert status == 201 and created["id"] == room and created["settings"]["capacity"] == 5, created
    # One id, one room, whichever node is asked.
    assert call(n2, "POST", "/api/v1/rooms", {"id": room})[1]["code"] == "room-exists"
    # Listed by every node from the shared tables; nobody holds it yet.
    for node in (n1, n2, n3):
        item = listed(node, room)
        assert item and item["phase"] == "open" and item["node"] is None and item["members"] is None, item
        assert item["createdAt"] == created["createdAt"]

    async def scenario():
        fac = await Client.join(cluster.proxy, room, "facilitator", "Dr", sub="f-ops")
        owner, epoch = owner_row(cluster.pg, room)
        assert epoch == 1, "the first node to take a created room has epoch 1"
        holder = node_named(cluster, owner)
        others = [n for n in cluster.nodes if n is not holder]
        # The holder lists it with its counts; the others name the holder and have no counts.
        mine = listed(holder, room)
        assert mine["node"] == owner and mine["members"] == 1 and mine["staffPresent"] is True, mine
        for node in others:
            item = listed(node, room)
            assert item["node"] == owner and item["members"] is None, item
            # A room's own route on a node that does not hold it: refused, not served from a copy.
            status, body = call(node, "GET", f"/api/v1/rooms/{room}")
            assert (status, body["code"]) == (503, "room-elsewhere"), body
        # The settings the create call wrote are the room's, on the node that took it.
        status, view = call(holder, "GET", f"/api/v1/rooms/{room}")
        assert status == 200 and view["settings"]["capacity"] == 5, view
        # Records from any node: attendance and the room's chain.
        status, attendance = call(others[0], "GET", f"/api/v1/rooms/{room}/attendance")
        assert status == 200 and [m["userId"] for m in attendance["members"]] == ["f-ops"], attendance
        status, export = call(others[1], "GET", f"/api/v1/rooms/{room}/audit")
        assert status == 200
        chains = {r["chain"] for r in export["records"]}
        assert f"room:{room}" in chains, chains
        # End through the proxy (it reaches the holder); the id is then taken for good.
        status, ended = call(holder, "POST", f"/api/v1/rooms/{room}/end")
        assert status == 200 and ended["phase"] == "ended", ended
        assert await fac.closed(timeout=5) == 4000
        deadline = time.monotonic() + 5
        while call(others[0], "POST", "/api/v1/rooms", {"id": room})[1]["code"] != "room-ended":
            assert time.monotonic() < deadline, "the end reaches the shared tables"
            time.sleep(0.1)
        assert listed(others[1], room)["phase"] == "ended"

    run(scenario())
