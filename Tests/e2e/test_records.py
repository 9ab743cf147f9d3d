"""The clinic's records from a real session: audit chain verification, export, attendance."""
import csv
import io
import json
import os
import sqlite3
import subprocess
import time

from conftest import run
from hearth import Client, Server, mint
from test_resilience import group


def hearthd(server, *args, check=True):
    out = subprocess.run([os.environ["HEARTHD_BIN"], *args, "--data-dir", str(server.dir / "data")],
                         capture_output=True, text=True, timeout=30)
    if check:
        assert out.returncode == 0, out.stderr + out.stdout
    return out


def test_audit_verify_export_and_attendance_of_a_real_session():
    server = Server(rooms={"graceSeconds": 1})
    try:
        async def session():
            room = "rec-1"
            fac, members = await group(server, room, 3)
            await members[0].request("chat", to="room", text="private words")
            members[1].ws.transport.abort()          # drops and comes back in time: no gap
            await fac.expect(lambda x: x["type"] == "member-updated" and not x["member"]["connected"])
            back = await Client.connect(server, room, "back")
            await back.send("resume", secret=members[1].welcome["resumeSecret"], lastSeq=members[1].last_seq)
            await back.expect("resumed")
            await fac.request("send-back", member=members[2].welcome["you"]["id"])
            await fac.request("admit", member=members[2].welcome["you"]["id"])
            await fac.request("remove", member=members[0].welcome["you"]["id"], ban=False, reason="test")
            time_before_end = time.time()
            await fac.request("end")
            return time_before_end
        time_before_end = run(session())
        time.sleep(0.5)

        assert hearthd(server, "audit", "verify").stdout.startswith("ok")
        lines = hearthd(server, "audit", "export", "--room", "rec-1").stdout.splitlines()
        records = [json.loads(line) for line in lines]
        actions = [r["action"] for r in records]
        for action in ["arrive", "admit", "drop", "resume", "send-back", "remove", "end"]:
            assert action in actions, action
        assert "private words" not in "\n".join(lines)
        exported_csv = list(csv.DictReader(io.StringIO(hearthd(server, "audit", "export", "--room", "rec-1",
                                                                "--format", "csv").stdout)))
        assert len(exported_csv) == len(records)

        out = hearthd(server, "attendance", "--room", "rec-1", "--format", "json").stdout
        ledger = json.loads(out)
        # The operations API's attendance object: the same keys, the same types.
        assert set(ledger) == {"room", "participantCount", "endedAt", "members", "matchesAuditTrail"}
        assert ledger["participantCount"] == 3
        assert ledger["matchesAuditTrail"] is True
        assert isinstance(ledger["endedAt"], int) and ledger["endedAt"] >= int(time_before_end * 1000)
        by_user = {m["userId"]: m for m in ledger["members"]}
        assert by_user["rec-1-m1"]["intervals"] == 1, "a drop under the grace period is merged"
        assert by_user["rec-1-m2"]["intervals"] == 2, "sent back and admitted again"
        assert by_user["rec-1-m2"]["msWaiting"] > 0
        assert isinstance(by_user["rec-1-m2"]["minutesInRoom"], (int, float))
        assert hearthd(server, "attendance", "--room", "rec-1", "--format", "jsonl").stdout == out
        assert "matches the audit trail: yes" in hearthd(server, "attendance", "--room", "rec-1").stdout
        usage = subprocess.run([os.environ["HEARTHD_BIN"], "attendance", "--help"], capture_output=True, text=True)
        assert "--format <format> csv, json or jsonl" in " ".join(usage.stdout.split()), "the help names every format"

        # Tampering with any one row is detected and named.
        db_path = server.dir / "data" / "hearth.sqlite"
        server.stop()
        with sqlite3.connect(db_path) as db:
            db.execute("DROP TRIGGER audit_append_only")
            victim = db.execute("SELECT id FROM audit WHERE action = 'remove'").fetchone()[0]
            db.execute("UPDATE audit SET reason = 'nothing happened' WHERE id = ?", (victim,))
        out = hearthd(server, "audit", "verify", check=False)
        assert out.returncode == 1 and f"broken at record {victim}" in out.stdout
        with sqlite3.connect(db_path) as db:
            db.execute("UPDATE audit SET reason = 'test' WHERE id = ?", (victim,))
        assert hearthd(server, "audit", "verify").stdout.startswith("ok")
        with sqlite3.connect(db_path) as db:
            db.execute("DELETE FROM audit WHERE id = ?", (victim,))
        out = hearthd(server, "audit", "verify", check=False)
        assert out.returncode == 1 and "broken at record" in out.stdout
    finally:
        server.stop()
