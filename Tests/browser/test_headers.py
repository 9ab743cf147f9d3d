"""hearthd serves the app at /app/ with strict headers; the app runs under that CSP; the
session runs in a loopback-only network namespace."""
import os
import subprocess

import pytest

from conftest import IN_CI, new_room


def need_hearthd_app(server):
    if server.app is not None:
        if IN_CI:
            pytest.fail("the hearthd under test does not serve /app/")
        pytest.skip("the hearthd under test does not serve /app/ (the app came from the test's own server)")


def get(server, path):
    with server.https(path) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()


def test_app_headers(server):
    need_hearthd_app(server)
    status, headers, body = get(server, "/app/")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert b'src="./app.js"' in body and b"<script>" not in body, "no inline script"
    csp = headers["content-security-policy"]
    directives = {d.strip().split()[0]: d.strip().split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp and "*" not in csp
    assert directives.get("frame-ancestors") == ["'none'"]
    permissions = headers["permissions-policy"]
    assert "camera=(self)" in permissions and "microphone=(self)" in permissions
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"
    etag = headers["etag"]
    assert etag and get(server, "/app/")[1]["etag"] == etag
    for path in ("/app/app.js", "/app/panel.js", "/app/dom.js", "/app/sdk/index.js", "/app/sdk/mesh.js"):
        status, h, _ = get(server, path)
        assert status == 200 and h["content-type"].startswith("text/javascript"), (path, h)
        assert h["content-security-policy"] == csp
    assert get(server, "/app/style.css")[1]["content-type"].startswith("text/css")


def test_app_runs_under_its_csp(members, server):
    need_hearthd_app(server)
    room = new_room()
    fac = members(room, "facilitator", "Dr. Rivera").join()
    fac.page.locator("#panel").wait_for()
    assert fac.page.url == server.base, "the fragment is gone from the address bar"
    violations = [line for line in fac.console if "Content Security Policy" in line]
    assert violations == []


def test_in_a_loopback_only_namespace():
    if os.environ.get("HEARTH_BROWSER_NETNS") != "1":
        pytest.skip("not re-executed in a network namespace (unshare not permitted here)")
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    names = [line.split(":")[1].strip() for line in links.splitlines()]
    assert names == ["lo"], names
