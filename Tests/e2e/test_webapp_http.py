"""The web app's HTTP side, black box over TLS (docs/api.md, "The web app"; README, "Try a session
in your browser"): `/app/` serves the app built into hearthd with the headers a page holding health
data needs, revalidates with ETags, refuses paths outside the app, and `web.root` serves a clinic's
own directory instead. A token in a query string is never echoed anywhere."""
import pathlib
import urllib.error
import urllib.request

import pytest
from hearth import Server, client_tls

REPO = pathlib.Path(__file__).resolve().parents[2]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(server, path, method="GET", headers=None):
    """One request, redirects not followed: (status, lower-cased headers, body)."""
    request = urllib.request.Request(f"https://127.0.0.1:{server.port}{path}", method=method, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=client_tls()), NoRedirect)
    try:
        with opener.open(request, timeout=5) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    assert s.stop() == 0, s.log()


def test_the_built_in_app_is_served_with_strict_headers(server):
    status, headers, body = fetch(server, "/app/?token=should-be-ignored")
    assert status == 200
    assert body == (REPO / "web/app/index.html").read_bytes(), "the app built into hearthd is the repository's"
    assert headers["content-type"] == "text/html; charset=utf-8"
    csp = headers["content-security-policy"]
    assert csp.startswith("default-src 'self';") and "script-src 'self';" in csp and "connect-src 'self';" in csp
    assert "unsafe" not in csp and "http" not in csp, csp
    assert headers["permissions-policy"].startswith("camera=(self), microphone=(self)")
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-cache"
    assert "should-be-ignored" not in server.log(), "a token in a query string is never logged"


def test_modules_have_a_javascript_type_and_etags_revalidate(server):
    js = sorted(p.relative_to(REPO / "web") for p in (REPO / "web").glob("*/*.js"))
    if not js:
        pytest.skip("no JavaScript module in web/ yet")
    path = js[0]
    url = f"/app/{path.relative_to('app')}" if path.parts[0] == "app" else f"/app/{path}"
    status, headers, body = fetch(server, url)
    assert status == 200 and headers["content-type"] == "text/javascript; charset=utf-8", (url, headers)
    assert body == (REPO / "web" / path).read_bytes()
    status, again, body = fetch(server, url, headers={"If-None-Match": headers["etag"]})
    assert status == 304 and body == b"" and again["etag"] == headers["etag"]


def test_head_redirect_and_refusals(server):
    status, headers, body = fetch(server, "/app/", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0
    status, headers, _ = fetch(server, "/app", method="HEAD")
    assert status == 301 and headers["location"] == "/app/"
    for path in ["/app/../healthz", "/app/%2e%2e/healthz", "/app/.hidden", "/app/nothing.js", "/app//index.html"]:
        status, headers, _ = fetch(server, path)
        assert status == 404, path
        assert headers["x-content-type-options"] == "nosniff", path
    status, headers, _ = fetch(server, "/app/", method="POST")
    assert status == 405 and headers["allow"] == "GET, HEAD"


def test_web_root_serves_a_clinics_own_directory(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "index.html").write_text("<!doctype html><title>Our clinic</title>")
    s = Server(web={"root": str(tmp_path)})
    try:
        status, headers, body = fetch(s, "/app/")
        assert status == 200 and body == b"<!doctype html><title>Our clinic</title>"
        assert headers["content-security-policy"].startswith("default-src 'self';")
    finally:
        assert s.stop() == 0, s.log()


def test_a_web_root_without_an_index_is_refused_at_start(tmp_path):
    with pytest.raises(RuntimeError) as failure:
        Server(web={"root": str(tmp_path)})
    assert "web.root" in str(failure.value)
