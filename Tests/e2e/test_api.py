"""The operations API (/api/v1/) end to end over TLS, every response checked against docs/openapi.json.

A server with an admin key of its own: rooms created with settings that the WebSocket session then
obeys, the staff-view roster, attendance and audit export, ending a room under connected clients,
and every refusal (bad or missing credential, a member join token, a wrong scope, unknown rooms,
bad settings, duplicates). Every call must leave an `api:` audit row.
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from conftest import run
from hearth import DEV_SECRET, ROOT, Client, Server, b64url, client_tls, mint
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry
from referencing.jsonschema import DRAFT202012

ADMIN_SECRET = "e2e-admin-secret-0123456789-abcdefghij"
DOC = json.loads((ROOT / "docs" / "openapi.json").read_text())
DOC_URI = "urn:hearth:openapi"
REGISTRY = Registry().with_resource(DOC_URI, DRAFT202012.create_resource(DOC))
TEMPLATES = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$"), p) for p in DOC["paths"]]


def admin_token(sub="op-1", scope="hearth-admin", ttl=300, secret=ADMIN_SECRET, **changes):
    """An HS256 admin JWT, made independently of the server."""
    now = int(time.time())
    body = {"sub": sub, "scope": scope, "iat": now, "exp": now + ttl}
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(body).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def pointer(*parts):
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def follow(obj):
    """Follows a local $ref (#/components/...) to the object it names; returns (object, pointer)."""
    ref = obj.get("$ref")
    if not ref:
        return obj, None
    target = DOC
    for part in ref[2:].split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target, ref


def response_schema_pointer(method, path, status):
    """The JSON pointer (in docs/openapi.json) of the schema for this response, or fail."""
    rest = path[len("/api/v1"):]
    template = next((t for rx, t in TEMPLATES if rx.match(rest)), None)
    operation = DOC["paths"].get(template, {}).get(method.lower()) if template else None
    if operation is None:
        # A path of the document with another method, or no such path at all.
        name = "MethodNotAllowed" if template and status == 405 else "NotFound"
        assert status == (405 if template else 404), f"{method} {path}: undocumented status {status}"
        return pointer("components", "responses", name, "content", "application/json", "schema")
    assert str(status) in operation["responses"], f"{method} {path}: status {status} not in docs/openapi.json"
    response, ref = follow(operation["responses"][str(status)])
    base = ref[2:].split("/") if ref else ["paths", template, method.lower(), "responses", str(status)]
    assert "application/json" in response["content"], f"{method} {path} {status}: no JSON body documented"
    return pointer(*base, "content", "application/json", "schema")


def check_against_document(method, path, status, body):
    schema = {"$ref": DOC_URI + response_schema_pointer(method, path, status)}
    OAS31Validator(schema, registry=REGISTRY).validate(body)


class API:
    """Calls the API of one server; every response is validated against the document and counted."""

    def __init__(self, server):
        self.server = server
        self.audited_calls = 0

    def call(self, method, path, body=None, token="default", raw=None, audited=True):
        url = f"https://127.0.0.1:{self.server.port}/api/v1{path}"
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if data is None and method in ("POST", "PUT", "PATCH"):
            data = b""  # an explicit Content-Length: 0
        request = urllib.request.Request(url, method=method, data=data)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token == "default":
            token = admin_token()
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, context=client_tls(), timeout=5) as r:
                status, content_type, payload = r.status, r.headers["Content-Type"], r.read()
        except urllib.error.HTTPError as e:
            status, content_type, payload = e.code, e.headers["Content-Type"], e.read()
        assert content_type.startswith("application/json"), (status, content_type, payload)
        reply = json.loads(payload)
        check_against_document(method, "/api/v1" + path.split("?")[0], status, reply)
        if audited:
            self.audited_calls += 1
        return status, reply


def api_audit_rows(server, expected, timeout=5):
    """The store's `api:` audit rows, once `expected` of them are committed."""
    deadline = time.time() + timeout
    while True:
        rows = [r for r in server.records("audit") if r["action"].startswith("api:")]
        if len(rows) >= expected or time.time() > deadline:
            return rows
        time.sleep(0.1)


@pytest.fixture(scope="module")
def admin_server():
    s = Server(admin={"keys": [{"secret": ADMIN_SECRET}]}, rooms={"graceSeconds": 2},
               rateLimits={"authFailureBurst": 200})
    s.api = API(s)
    yield s
    code = s.stop()
    assert code == 0, f"hearthd exited with {code}:\n{s.log()}"


def test_the_document_is_valid_openapi_with_closed_objects():
    validate_spec(DOC)
    for name, schema in DOC["components"]["schemas"].items():
        if schema.get("type") == "object":
            assert schema.get("additionalProperties") is False, f"{name} must set additionalProperties: false"


def test_room_lifecycle(admin_server):
    api = admin_server.api
    settings = {"capacity": 1, "consentVersion": "c-2026", "waitingRoom": True, "chatPolicy": "staff-only",
                "graceSeconds": 2, "privateMessages": False, "selfUnmute": False, "requireLocation": False,
                "facilitatorDrop": "hold", "maxWaiting": 5}
    status, room = api.call("POST", "/rooms", {"id": "api-1", "settings": settings})
    assert status == 201 and room["id"] == "api-1" and room["phase"] == "open"
    assert room["settings"] == {**settings, "consentText": None, "opensAt": None, "closesAt": None,
                                "media": "mesh", "meshLimit": 4}
    assert room["members"] == [] and room["waiting"] == []
    status, error = api.call("POST", "/rooms", {"id": "api-1"})
    assert (status, error["code"]) == (409, "room-exists")

    async def session():
        # The token's own room settings do not apply: the room already exists.
        fac = await Client.join(admin_server, "api-1", "facilitator", "Dr. F", sub="fac-1", capacity=12,
                                chatPolicy="everyone")
        state = fac.welcome["room"]["state"]
        assert state["capacity"] == 1 and state["chatPolicy"] == "staff-only" and state["selfUnmute"] is False
        first = await Client.join(admin_server, "api-1", "participant", "Sam", sub="pat-1")
        assert first.welcome["waiting"]["consentVersion"] == "c-2026"
        second = await Client.join(admin_server, "api-1", "participant", "Alex", sub="pat-2")
        # Consent is enforced, then capacity.
        refused = await fac.send("admit", member=first.welcome["you"]["id"])
        error = await fac.expect(lambda m: m.get("rid") == refused)
        assert error["type"] == "error" and error["code"] == "consent-required"
        await first.request("consent", version="c-2026")
        await second.request("consent", version="c-2026")
        await fac.request("admit", member=first.welcome["you"]["id"])
        await first.expect("admitted")
        refused = await fac.send("admit", member=second.welcome["you"]["id"])
        error = await fac.expect(lambda m: m.get("rid") == refused)
        assert error["type"] == "error" and error["code"] == "room-full"

        # The list and the room, staff view.
        status, listing = api.call("GET", "/rooms")
        summary = next(r for r in listing["rooms"] if r["id"] == "api-1")
        assert status == 200 and summary["members"] == 2 and summary["waiting"] == 1
        assert summary["staffPresent"] is True and summary["phase"] == "open" and summary["endedAt"] is None
        status, open_only = api.call("GET", "/rooms?phase=open")
        assert status == 200 and "api-1" in [r["id"] for r in open_only["rooms"]]
        status, room = api.call("GET", "/rooms/api-1")
        assert status == 200
        members = {m["userId"]: m for m in room["members"]}
        assert members["fac-1"]["role"] == "facilitator" and members["fac-1"]["placement"] == "room"
        assert members["pat-1"]["alias"] == "Sam" and members["pat-1"]["consentVersion"] == "c-2026"
        assert members["pat-1"]["connected"] is True and members["pat-1"]["waitingSince"] is None
        assert [(w["userId"], w["placement"], w["ready"]) for w in room["waiting"]] == [("pat-2", "waiting", True)]
        assert room["state"]["staffPresent"] is True and room["state"]["admittedMembers"] == 1

        await first.request("raise-hand")
        await asyncio.sleep(1.2)
        status, room = api.call("GET", "/rooms/api-1")
        assert {m["userId"]: m for m in room["members"]}["pat-1"]["handRaisedAt"] is not None

        # Attendance so far: open intervals run to now and agree with the audit trail.
        status, ledger = api.call("GET", "/rooms/api-1/attendance")
        assert status == 200 and ledger["matchesAuditTrail"] is True and ledger["endedAt"] is None
        assert ledger["participantCount"] == 1
        by_user = {m["userId"]: m for m in ledger["members"]}
        assert by_user["pat-1"]["intervals"] == 1 and by_user["pat-1"]["msInRoom"] >= 1000
        assert by_user["pat-2"]["firstAdmitted"] is None and by_user["pat-2"]["msWaiting"] >= 1000
        assert by_user["fac-1"]["role"] == "facilitator"

        # The audit export: the session's records and the API's own, each with its hash.
        status, export = api.call("GET", "/rooms/api-1/audit")
        actions = [r["action"] for r in export["records"]]
        for action in ["create", "api:create-room", "arrive", "admit", "consent", "api:get-room"]:
            assert action in actions, action
        assert all(r["room"] == "api-1" for r in export["records"])
        refused_admit = [r for r in export["records"] if r["action"] == "admit" and r["outcome"] == "refused"]
        assert {r["code"] for r in refused_admit} == {"consent-required", "room-full"}
        created = next(r for r in export["records"] if r["action"] == "api:create-room")
        assert created["reason"] == "operator:op-1" and created["actorUserId"] is None
        status, later = api.call("GET", f"/rooms/api-1/audit?since={int(time.time() * 1000) + 60_000}")
        assert status == 200 and later["records"] == []
        status, recent = api.call("GET", f"/rooms/api-1/audit?since={export['records'][-1]['at']}")
        assert status == 200 and recent["records"][0]["at"] >= export["records"][-1]["at"]

        # Ending through the API closes every connection with 4000 after `ended`.
        status, ended = api.call("POST", "/rooms/api-1/end")
        assert status == 200 and ended["phase"] == "ended" and ended["endedAt"] is not None
        assert ended["members"] == [] and ended["waiting"] == []
        for client in (fac, first, second):
            await client.expect("ended")
            assert await client.closed() == 4000
        return ended["endedAt"]

    ended_at = run(session())
    status, error = api.call("POST", "/rooms/api-1/end")
    assert (status, error["code"]) == (409, "room-ended")
    status, error = api.call("POST", "/rooms", {"id": "api-1"})
    assert (status, error["code"]) == (409, "room-ended")
    status, ledger = api.call("GET", "/rooms/api-1/attendance")
    assert status == 200 and ledger["endedAt"] == ended_at and ledger["matchesAuditTrail"] is True
    assert all(m["lastLeft"] is None or m["lastLeft"] <= ended_at for m in ledger["members"])
    # `hearthd attendance --format json` prints the API's object: the same keys, order and numbers.
    cli = hearthd("attendance", "--room", "api-1", "--format", "json", "--data-dir", str(admin_server.dir / "data"))
    assert cli.returncode == 0, cli.stderr
    assert json.dumps(json.loads(cli.stdout)) == json.dumps(ledger)
    status, listing = api.call("GET", "/rooms?phase=ended")
    assert [r["phase"] for r in listing["rooms"] if r["id"] == "api-1"] == ["ended"]


def test_generated_id_and_defaults(admin_server):
    api = admin_server.api
    status, room = api.call("POST", "/rooms", raw=b"")
    assert status == 201 and re.fullmatch(r"[A-Za-z0-9_-]{22}", room["id"])
    assert room["settings"]["capacity"] == 12 and room["settings"]["graceSeconds"] == 2
    status, room = api.call("POST", "/rooms", {"settings": {"waitingRoom": False, "consentVersion": None}})
    assert status == 201 and room["settings"]["waitingRoom"] is False and room["settings"]["consentVersion"] is None


def test_credentials_are_refused(admin_server):
    api = admin_server.api
    now = int(time.time())
    refused = {
        "no header": None,
        "not a jwt": "not-a-token",
        "expired": admin_token(iat=now - 900, exp=now - 600),
        "not yet valid": admin_token(nbf=now + 600),
        "too long-lived": admin_token(ttl=7200),
        "other secret": admin_token(secret="some-other-secret-0123456789-abcdefghij"),
        "signed with the join key": admin_token(secret=DEV_SECRET),
        "member join token": mint("api-x", "facilitator", "Dr. F", sub="fac-9"),
        "member join token signed with the admin key": mint("api-x", "facilitator", "Dr. F", secret=ADMIN_SECRET),
        "wrong scope": admin_token(scope="hearth"),
        "no scope": admin_token(scope=None),
        "no sub": admin_token(sub=None),
        "alg none": b64url(b'{"alg":"none"}') + "." + b64url(json.dumps(
            {"sub": "op", "scope": "hearth-admin", "iat": now, "exp": now + 60}).encode()) + ".",
    }
    for what, token in refused.items():
        for method, path in [("GET", "/rooms"), ("POST", "/rooms/nope/end")]:
            status, error = api.call(method, path, token=token)
            assert (status, error["code"]) == (401, "unauthenticated"), what

    # Bearer scheme is case-insensitive; other schemes are refused.
    url = f"https://127.0.0.1:{admin_server.port}/api/v1/rooms"
    for header, expected in [(f"bearer {admin_token()}", 200), (f"Basic {admin_token()}", 401)]:
        request = urllib.request.Request(url, headers={"Authorization": header})
        try:
            with urllib.request.urlopen(request, context=client_tls(), timeout=5) as r:
                status, body = r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            status, body = e.code, json.loads(e.read())
        check_against_document("GET", "/api/v1/rooms", status, body)
        api.audited_calls += 1
        assert status == expected, header

    # No token, and none of the refused ones, ever reaches the audit trail.
    rows = api_audit_rows(admin_server, api.audited_calls)
    text = json.dumps(rows)
    for token in refused.values():
        if token:
            assert token not in text
    reasons = {r["reason"] for r in rows if r["outcome"] == "refused" and r["code"] == "authentication-failed"}
    assert {"credential:missing", "credential:expired", "credential:missing_claim:scope",
            "credential:invalid_claim:scope", "credential:bad_signature"} <= reasons


def test_an_admin_token_cannot_join_a_room(admin_server):
    async def attempt():
        client = await Client.connect(admin_server, "api-join", "intruder")
        await client.send("hello", token=admin_token())
        error = await client.expect("error")
        assert error["code"] == "authentication-failed"
        assert await client.closed() == 4401
    run(attempt())


def test_unknown_rooms_bad_requests_and_methods(admin_server):
    api = admin_server.api
    for method, path in [("GET", "/rooms/no-such-room"), ("POST", "/rooms/no-such-room/end"),
                         ("GET", "/rooms/no-such-room/attendance"), ("GET", "/rooms/no-such-room/audit"),
                         ("GET", "/rooms/bad%20id")]:
        status, error = api.call(method, path)
        assert (status, error["code"]) == (404, "unknown-room"), path

    bad_settings = {
        "capacity": ({"capacity": 0}, "settings.capacity"),
        "capacity type": ({"capacity": "12"}, "settings.capacity"),
        "capacity real": ({"capacity": 3.5}, "settings.capacity"),
        "chat policy": ({"chatPolicy": "loud"}, "settings.chatPolicy"),
        "grace": ({"graceSeconds": -1}, "settings.graceSeconds"),
        "drop": ({"facilitatorDrop": "panic"}, "settings.facilitatorDrop"),
        "consent": ({"consentVersion": ""}, "settings.consentVersion"),
        "bool": ({"waitingRoom": "yes"}, "settings.waitingRoom"),
        "unknown setting": ({"colour": "blue"}, "colour"),
    }
    for what, (settings, field) in bad_settings.items():
        status, error = api.call("POST", "/rooms", {"id": "api-bad", "settings": settings})
        assert (status, error["code"]) == (400, "invalid-settings"), what
        assert field in error["message"], (what, error)
    for body, code in [(b"{", "bad-json"), (b"[1]", "bad-json"), (b'{"id":"a","id":"b"}', "bad-json"),
                       (b'{"name":"x"}', "bad-request"), (b'{"id":"has space"}', "bad-request"),
                       (b'{"id":7}', "bad-request"), (b'{"settings":[]}', "invalid-settings")]:
        status, error = api.call("POST", "/rooms", raw=body)
        assert (status, error["code"]) == (400, code), body
    status, error = api.call("POST", "/rooms", raw=json.dumps({"id": "big", "pad": "x" * 20_000}).encode())
    assert (status, error["code"]) == (413, "body-too-large")
    status, _ = api.call("GET", "/rooms/api-bad")
    assert status == 404, "no refused create made a room"

    for method, path in [("DELETE", "/rooms"), ("PUT", "/rooms"), ("GET", "/rooms/x/end"), ("POST", "/rooms/x"),
                         ("POST", "/rooms/x/attendance"), ("DELETE", "/rooms/x/audit")]:
        status, error = api.call(method, path)
        assert (status, error["code"]) == (405, "method-not-allowed"), (method, path)
    for path in ["/nope", "/rooms/x/y/z", "/rooms/x/other", "/"]:
        status, error = api.call("GET", path)
        assert (status, error["code"]) == (404, "not-found"), path
    for query in ["since=soon", "since=-5"]:
        status, error = api.call("GET", f"/rooms/no-such-room/audit?{query}")
        assert (status, error["code"]) == (400, "bad-request"), query
    status, error = api.call("GET", "/rooms?phase=maybe")
    assert (status, error["code"]) == (400, "bad-request")


def test_disabled_api_and_failure_budget():
    """Without admin keys every call is 503 api-disabled (audited); an address that keeps failing gets 429."""
    server = Server(rateLimits={"authFailureBurst": 3, "authFailuresPerSecond": 0.01})
    try:
        api = API(server)
        for _ in range(3):
            status, error = api.call("GET", "/rooms")
            assert (status, error["code"]) == (503, "api-disabled")
        status, error = api.call("GET", "/rooms", audited=False)
        assert (status, error["code"]) == (429, "rate-limited")
        rows = api_audit_rows(server, 3)
        time.sleep(0.3)
        rows = [r for r in server.records("audit") if r["action"].startswith("api:")]
        assert len(rows) == 3 and all(r["reason"] == "api-disabled" for r in rows)
    finally:
        assert server.stop() == 0, server.log()


def hearthd(*args, env=None):
    return subprocess.run([os.environ["HEARTHD_BIN"], *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})})


def test_hearthd_admin_token_is_accepted(admin_server):
    out = hearthd("admin-token", "--config", str(admin_server.config_path), "--operator", "ops-cli", "--ttl", "60")
    assert out.returncode == 0, out.stderr
    status, _ = admin_server.api.call("GET", "/rooms", token=out.stdout.strip())
    assert status == 200
    rows = api_audit_rows(admin_server, admin_server.api.audited_calls)
    assert rows[-1]["reason"] == "operator:ops-cli"
    # `hearthd token` (join tokens) is signed with the join key: the API refuses it.
    out = hearthd("token", "--config", str(admin_server.config_path), "--room", "r", "--role", "facilitator",
                  "--name", "F")
    status, error = admin_server.api.call("GET", "/rooms", token=out.stdout.strip())
    assert (status, error["code"]) == (401, "unauthenticated")


def test_admin_key_configuration(tmp_path):
    join = {"keys": [{"secret": "join-secret-0123456789-abcdefghijklmn"}]}
    dev_admin = "hearth-development-only-admin-secret-do-not-use-in-production"
    cases = {
        "shared with a join key": ({"tokens": join, "admin": {"keys": [{"secret": join["keys"][0]["secret"]}]}},
                                   "admin.keys[0].secret"),
        "too short": ({"tokens": join, "admin": {"keys": [{"secret": "short"}]}}, "admin.keys[0].secret"),
        "unknown key": ({"tokens": join, "admin": {"keyz": []}}, "admin.keyz"),
        "bad public key": ({"tokens": join, "admin": {"keys": [{"algorithm": "EdDSA", "publicKey": "nope"}]}},
                           "admin.keys[0]"),
        "public dev secret off loopback": ({"listen": "0.0.0.0:8443", "tokens": join,
                                            "admin": {"keys": [{"secret": dev_admin}]}}, "admin.keys[0].secret"),
    }
    for what, (config, key) in cases.items():
        path = tmp_path / "c.yaml"
        path.write_text(json.dumps(config))
        out = hearthd("admin-token", "--config", str(path))
        assert out.returncode != 0 and key in out.stderr, (what, out.stderr)
    # HEARTH_ADMIN_SECRET gives a file without admin keys one (HS256, no kid).
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps({"tokens": join}))
    assert hearthd("admin-token", "--config", str(path)).returncode != 0
    secret = "env-admin-secret-0123456789-abcdefghijk"
    out = hearthd("admin-token", "--config", str(path), env={"HEARTH_ADMIN_SECRET": secret})
    assert out.returncode == 0, out.stderr
    header, payload, signature = out.stdout.strip().split(".")
    expected = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert signature == b64url(expected)
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["scope"] == "hearth-admin" and claims["exp"] - claims["iat"] == 300
    # The embedded development defaults carry a (loopback-only) admin key.
    assert hearthd("admin-token").returncode == 0


def test_every_call_is_audited_and_the_chain_holds(admin_server):
    """Last in this module: every API call made to this server above left exactly one `api:` row."""
    api = admin_server.api
    rows = api_audit_rows(admin_server, api.audited_calls)
    assert len(rows) == api.audited_calls
    for row in rows:
        assert row["reason"].startswith(("operator:", "credential:")), row
        assert row["actor_user"] is None and row["subject_user"] is None
        assert (row["outcome"] == "done") == (row["code"] is None)
    assert {r["room"] for r in rows if r["action"] == "api:list-rooms"} == {"-"}
    out = subprocess.run([os.environ["HEARTHD_BIN"], "audit", "verify", "--data-dir", str(admin_server.dir / "data")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stdout + out.stderr


def test_a_scheduled_room_opens_and_closes_by_itself(admin_server):
    """The schedule is wall-clock by nature; the test waits for the server's events (the opening
    reaches the waiting member, the end reaches everyone) and checks each against the clock only
    one way (never before its time), so a slow machine cannot fail it."""
    api = admin_server.api

    def ms():
        return int(time.time() * 1000)

    slack = 50  # the server's timers may fire within a few ms of their time, on either side

    now = ms()
    opens, closes = now + 1500, now + 4000
    settings = {"consentVersion": "2026-02", "consentText": "What is said here stays here.",
                "opensAt": opens, "closesAt": closes}
    status, room = api.call("POST", "/rooms", {"id": "scheduled-1", "settings": settings})
    assert status == 201 and room["settings"]["opensAt"] == opens
    status, _ = api.call("POST", "/rooms", {"settings": {"opensAt": now + 5000, "closesAt": now + 4000}})
    assert status == 400

    async def go():
        fac = await Client.join(admin_server, "scheduled-1", "facilitator", "F")
        patient = await Client.join(admin_server, "scheduled-1", "participant", "P")
        waiting = patient.welcome["waiting"]
        assert waiting["reason"] == "waiting-for-opening" and waiting["opensAt"] == opens
        assert waiting["consentText"] == "What is said here stays here."
        await patient.request("consent", version="2026-02")
        rid = await fac.send("admit", member=patient.welcome["you"]["id"])
        reply = await fac.expect(lambda m: m.get("rid") == rid)
        if reply["type"] == "error":
            # Before the opening: refused, and the member is told when it opens.
            assert reply["code"] == "room-not-open"
            opened = await patient.expect(
                lambda m: m["type"] == "waiting" and m["status"]["reason"] != "waiting-for-opening",
                timeout=(opens - ms()) / 1000 + 5)
            assert ms() >= opens - slack, "opened early"
            assert opened["status"]["reason"] == "waiting-for-admission"
            rid = await fac.send("admit", member=patient.welcome["you"]["id"])
            reply = await fac.expect(lambda m: m.get("rid") == rid)
        else:
            # The machine was slow enough that the admit came after the opening.
            assert ms() >= opens - slack, f"admitted before the opening: {reply}"
        if reply["type"] == "ack":
            await patient.expect("admitted")
        else:
            assert ms() >= closes - slack, f"admit refused while open: {reply}"
        # At the closing time the room ends for everyone.
        for c in (fac, patient):
            await c.expect("ended", timeout=max(0, closes - ms()) / 1000 + 6)
            assert ms() >= closes - slack, "ended early"
            assert await c.closed() == 4000
    run(go(), timeout=30)


def test_a_room_shows_its_breakouts_and_who_is_in_them(admin_server):
    api = admin_server.api
    status, _ = api.call("POST", "/rooms", {"id": "api-breakouts", "settings": {"waitingRoom": False}})
    assert status == 201

    async def session():
        fac = await Client.join(admin_server, "api-breakouts", "facilitator", "Dr. F", sub="bo-fac")
        members = [await Client.join(admin_server, "api-breakouts", "participant", f"M{i}", sub=f"bo-{i}")
                   for i in range(3)]
        for m in members:
            await m.expect("admitted")
        ids = [m.welcome["you"]["id"] for m in members]
        await fac.request("breakouts-plan", breakouts=[{"name": "Pair", "members": ids[:2]}])
        await fac.request("breakouts-open", durationSeconds=600)
        aside = await fac.request("pull-aside", member=ids[2])
        status, room = api.call("GET", "/rooms/api-breakouts")
        assert status == 200
        assert [(b["name"], b["kind"], b["members"]) for b in room["state"]["breakouts"]] == \
            [("Pair", "planned", ids[:2]), ("Pull-aside", "pull-aside", sorted([fac.welcome["you"]["id"], ids[2]]))]
        assert room["state"]["breakouts"][1]["id"] == aside["breakout"]
        assert room["state"]["breakoutsEndAt"] is not None
        where = {m["id"]: m["breakout"] for m in room["members"]}
        assert where[ids[0]] == where[ids[1]] == room["state"]["breakouts"][0]["id"]
        assert where[ids[2]] == where[fac.welcome["you"]["id"]] == aside["breakout"]
        await fac.request("breakouts-close")
        status, room = api.call("GET", "/rooms/api-breakouts")
        assert room["state"]["breakouts"] == [] and room["state"]["breakoutsEndAt"] is None
        assert all(m["breakout"] is None for m in room["members"])

    run(session())


def test_the_server_threads_carry_their_names(admin_server):
    """An operator finds hearthd's threads by name (`top -H`, perf, /proc/<pid>/task): the event
    loop, the store's writer and, once the API has read the store, its reader."""
    api = admin_server.api
    status, room = api.call("POST", "/rooms", raw=b"")
    assert status == 201
    status, _ = api.call("GET", f"/rooms/{room['id']}/attendance")  # runs on the API's reader
    assert status == 200
    task = f"/proc/{admin_server.process.pid}/task"
    names = {open(f"{task}/{t}/comm").read().strip() for t in os.listdir(task)}
    assert {"hearth-loop", "store-writer", "api-reader"} <= names, names
