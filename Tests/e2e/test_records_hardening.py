"""The records under abuse: a failed-authentication flood folds into a bounded number of audit
rows that still count every attempt, and a stalled store writer makes the server refuse new
work (`server-busy`) instead of queueing without bound, while nothing accepted is dropped."""
import asyncio
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.error

import websockets
from conftest import run
from hearth import Client, Server, client_tls, mint

# docs/security.md section 2.8: the folding's fixed bounds.
ROWS_PER_ADDRESS_PER_INTERVAL = 5
ROWS_PER_SECOND = 5
FLOOD_SECONDS = float(os.environ.get("HEARTH_FLOOD_SECONDS", "10"))
FLOOD_ADDRESSES = [f"127.0.0.{i}" for i in range(2, 22)]


def hearthd(server, *args):
    return subprocess.run([os.environ["HEARTHD_BIN"], *args, "--data-dir", str(server.dir / "data")],
                          capture_output=True, text=True, timeout=60)


def audit_export(server, room):
    out = hearthd(server, "audit", "export", "--room", room)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line]


def reason_fields(reason):
    """`key:value` words of a failed-authentication reason (the value runs to the next space)."""
    return dict(word.split(":", 1) for word in reason.split(" ") if ":" in word)


def test_a_failed_authentication_flood_adds_a_bounded_number_of_rows_that_count_every_attempt():
    # A budget the flood never exhausts, so every attempt is verified and audited: the rows'
    # bound must come from the folding, not from the budget closing connections early.
    server = Server(rateLimits={"authFailureBurst": 1_000_000, "authFailuresPerSecond": 1000})
    attempts = {address: 0 for address in FLOOD_ADDRESSES}
    bad_token = mint("flood-room", "facilitator", "F", secret="not-the-server-secret-not-the-server-secret")
    try:
        async def worker(address, deadline):
            while time.monotonic() < deadline:
                ws = await websockets.connect(f"{server.url}/v1/rooms/flood-room", ssl=client_tls(),
                                              open_timeout=5, local_addr=(address, 0))
                client = Client(ws, address)
                await client.send("hello", token=bad_token)
                assert (await client.expect("error"))["code"] == "authentication-failed"
                assert await client.closed() == 4401
                attempts[address] += 1

        async def go():
            deadline = time.monotonic() + FLOOD_SECONDS
            await asyncio.gather(*(worker(a, deadline) for a in FLOOD_ADDRESSES for _ in range(3)))
        run(go(), timeout=FLOOD_SECONDS + 60)
    finally:
        # A graceful stop writes the summaries of the interval still open.
        assert server.stop() == 0, server.log()

    total = sum(attempts.values())
    rows = [r for r in audit_export(server, "flood-room") if r["action"].startswith("authenticate")]
    singles = [r for r in rows if r["action"] == "authenticate"]
    summaries = [r for r in rows if r["action"] == "authenticate-summary"]
    assert len(singles) + len(summaries) == len(rows)
    for r in rows:
        assert (r["outcome"], r["code"]) == ("refused", "authentication-failed"), r
        assert r["actorUserId"] is None and r["subjectUserId"] is None, r
    for r in singles:
        fields = reason_fields(r["reason"])
        assert r["reason"].startswith("bad_signature ") and fields["address"] in FLOOD_ADDRESSES, r
    counted = len(singles)
    for r in summaries:
        fields = reason_fields(r["reason"])
        assert fields["address"] in FLOOD_ADDRESSES + ["*"], r
        assert fields["reasons"] == f"bad_signature={fields['count']}", r
        counted += int(fields["count"])
    assert counted == total, f"{counted} counted in {len(rows)} rows, {total} attempts"
    # Per address: its own rows and its summaries never exceed its attempts.
    for address in FLOOD_ADDRESSES:
        mine = sum(1 for r in singles if reason_fields(r["reason"])["address"] == address)
        mine += sum(int(reason_fields(r["reason"])["count"]) for r in summaries
                    if reason_fields(r["reason"])["address"] == address)
        assert mine <= attempts[address]
    # Bounded: at most ROWS_PER_SECOND single rows a second and ROWS_PER_ADDRESS_PER_INTERVAL per
    # address and minute, plus one summary per address and one global summary per minute
    # interval the flood touched (at most two for a 10 s flood).
    intervals = int(FLOOD_SECONDS // 60) + 2
    per_second = {}
    for r in singles:
        second = int(r["at"]) // 1000
        per_second[second] = per_second.get(second, 0) + 1
    assert max(per_second.values()) <= ROWS_PER_SECOND, per_second
    for address in FLOOD_ADDRESSES:
        mine = [r for r in singles if reason_fields(r["reason"])["address"] == address]
        assert len(mine) <= ROWS_PER_ADDRESS_PER_INTERVAL * intervals, (address, len(mine))
    assert len(summaries) <= intervals * (len(FLOOD_ADDRESSES) + 1)
    bound = ROWS_PER_SECOND * (int(FLOOD_SECONDS) + 5) + intervals * (len(FLOOD_ADDRESSES) + 1)
    assert len(rows) <= bound, f"{len(rows)} rows for {total} attempts"
    assert summaries and total > len(rows), f"the flood was too weak to show folding: {total} attempts"
    verify = hearthd(server, "audit", "verify")
    assert verify.returncode == 0 and verify.stdout.startswith("ok"), verify.stdout + verify.stderr


def health(server):
    try:
        with server.https("/healthz") as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def metric(server, name):
    with server.https("/metrics") as r:
        text = r.read().decode()
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


async def eventually(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def test_a_stalled_writer_refuses_new_work_with_server_busy_and_drops_nothing(monkeypatch):
    limit = 20
    # The stall begins when the file appears and ends when it is removed (README, "Tests").
    stall = os.path.join(tempfile.mkdtemp(prefix="hearth-stall-"), "stall")
    monkeypatch.setenv("HEARTH_TEST_HOOKS", "1")
    monkeypatch.setenv("HEARTH_TEST_STALL_WRITER_FILE", stall)
    server = Server(limits={"journalQueueMaxEntries": limit},
                    rateLimits={"chatBurst": 1000, "chatPerSecond": 1000})
    try:
        # What the server recorded while starting may still be on its way to the disk: wait
        # (bounded) until the writer has taken everything, then the queue reads empty.
        deadline = time.monotonic() + 10
        while True:
            status, body = health(server)
            if body["journal"]["queued"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert status == 200 and body["journal"] == {"queued": 0, "limit": limit, "status": "ok"}, body

        async def go():
            staff = await Client.join(server, "busy-room", "facilitator", "F")
            leaver = await Client.join(server, "busy-room", "cofacilitator", "C")
            await staff.request("chat", to="room", text="before the stall")
            open(stall, "w").close()
            # A burst of chats: the first ones are accepted (their acks held until the commit),
            # the ones past the bound get server-busy. Replies come in order, so once the last
            # one's has arrived, every refusal has.
            rids = [await staff.send("chat", to="room", text=f"during the stall {i}") for i in range(limit + 10)]
            assert (await staff.expect(lambda m: m.get("rid") == rids[-1]))["code"] == "server-busy"
            replies = {m["rid"]: m for m in staff.seen if m.get("rid") in rids}
            accepted = [rid for rid in rids if rid not in replies]
            assert 0 < len(accepted) <= limit and accepted == rids[:len(accepted)], replies
            assert all(m["type"] == "error" and m["code"] == "server-busy" for m in replies.values())
            status, body = health(server)
            assert status == 503 and body["status"] == "backlogged", body
            assert body["journal"]["status"] == "backlogged" and body["journal"]["queued"] >= limit, body
            assert metric(server, "hearth_journal_queued") >= limit
            # A new join is refused too, and told to come back later.
            newcomer = await Client.connect(server, "busy-room")
            await newcomer.send("hello", token=mint("busy-room", "participant", "P"))
            assert (await newcomer.expect("error"))["code"] == "server-busy"
            assert await newcomer.closed() == 1013
            # What happens is still recorded past the bound: a departure.
            queued = health(server)[1]["journal"]["queued"]
            await leaver.close()
            await eventually(lambda: health(server)[1]["journal"]["queued"] > queued)
            # The stall ends: every held ack goes out, and the server takes work again.
            os.remove(stall)
            for rid in accepted:
                await staff.expect(lambda m, rid=rid: m.get("rid") == rid and m["type"] == "ack", timeout=5)
            await eventually(lambda: health(server)[0] == 200)
            await staff.request("chat", to="room", text="after the stall")
            later = await Client.join(server, "busy-room", "participant", "P2")
            await later.close()
            return len(accepted)
        accepted = run(go())
        assert metric(server, 'hearth_refused_total{reason="server-busy"}') >= 2
    finally:
        if os.path.exists(stall):
            os.remove(stall)
        assert server.stop() == 0, server.log()

    journal = server.records("journal")
    chats = [r for r in journal if r["kind"] == "command" and "during the stall" in r["body"]]
    assert len(chats) == accepted, "every accepted command is journaled"
    assert any(r["kind"] == "disconnected" for r in journal), "the departure during the stall is journaled"
    verify = hearthd(server, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
