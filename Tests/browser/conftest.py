"""Browser tests of the web app (web/app) and the SDK under it (web/sdk) in real headless
Chromium with real WebRTC, against a real hearthd.

- The whole test session runs in a network namespace whose only interface is loopback
  (`unshare -n`, then `ip link set lo up`): hearthd, the page server and every browser see
  127.0.0.1 only, and ICE gathers only loopback candidates. The conftest re-executes pytest
  inside it (HEARTH_BROWSER_NETNS=1 marks the inner run; set HEARTH_BROWSER_NETNS=off to run
  on the host's loopback instead).
- Chromium is Debian's (/usr/lib/chromium/chromium, or CHROMIUM_BIN), driven by Playwright for
  Python through executable_path; no browser is ever downloaded. With fake camera and
  microphone, --allow-loopback-in-peer-connection and --ignore-certificate-errors for the test
  certificate. Without chromium or Playwright the tests are skipped, except under CI=true,
  where that is a failure.
- The app is served by hearthd itself at /app/ with `web.root` pointing at this repository's
  web/ directory when the hearthd under test serves /app/; otherwise by a small static server
  here that maps the same paths (/app/ -> web/app/index.html, /app/X -> web/app/X,
  /app/sdk/X -> web/sdk/X) with the same strict CSP, plus /app/config.json naming hearthd's
  WebSocket origin.
"""
import json
import os
import pathlib
import shutil
import sys
import threading
import time
import uuid
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "e2e"))
from hearth import Server, free_port, mint  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/lib/chromium/chromium")
CHROME_ARGS = [
    "--use-fake-device-for-media-stream=fps=15",  # half the default frame rate: 2 cores, up to 4 pages
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--ignore-certificate-errors",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # Real host addresses in ICE candidates instead of mDNS names: Janus (SFU mode) must reach
    # them over the veth the SFU tests make in this namespace (Tests/browser/sfu_support.py).
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
WEB = ROOT / "web"
SDK_DIR = pathlib.Path(os.environ.get("HEARTH_SDK_DIR", WEB / "sdk"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SHOTS = ROOT / "docs" / "screenshots" if os.environ.get("HEARTH_UPDATE_SCREENSHOTS") == "1" \
    else ROOT / ".build" / "screenshots"


def _missing():
    """Why the browser tests cannot run here, or None."""
    if not os.path.exists(CHROMIUM):
        return f"chromium not found at {CHROMIUM}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (python) is not installed"
    if not os.environ.get("HEARTHD_BIN"):
        return "HEARTHD_BIN is not set"
    return None


def pytest_configure(config):
    """Re-executes this pytest run inside a loopback-only network namespace."""
    mode = os.environ.get("HEARTH_BROWSER_NETNS", "")
    if mode in ("1", "off") or _missing() or not shutil.which("unshare") or not shutil.which("ip"):
        return
    argv = getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]
    env = dict(os.environ, HEARTH_BROWSER_NETNS="1")
    sys.stdout.flush()
    sys.stderr.flush()
    probe = os.system("unshare -n true >/dev/null 2>&1")
    if probe != 0:
        return  # not permitted here (no CAP_SYS_ADMIN): run on the host's loopback
    os.execvpe("unshare", ["unshare", "-n", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv], env)


def pytest_collection_modifyitems(config, items):
    """Without chromium or Playwright: skipped, except under CI=true (then the browser fixture
    fails every test with the reason)."""
    why = _missing()
    if why and not IN_CI:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=why))


# ---------------------------------------------------------------------------------------------
# Serving the app.

class _AppHandler(SimpleHTTPRequestHandler):
    """/app/ as hearthd serves it, from the working tree."""
    config = b"{}"
    csp = ""

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        if path == "/app":
            self.send_response(301)
            self.send_header("Location", "/app/")
            self.end_headers()
            return
        if path == "/app/config.json":
            return self._send(self.config, "application/json")
        if path == "/app/":
            file = WEB / "app" / "index.html"
        elif path.startswith("/app/sdk/"):
            file = SDK_DIR / path[len("/app/sdk/"):]
        elif path.startswith("/app/"):
            file = WEB / "app" / path[len("/app/"):]
        else:
            return self.send_error(404)
        if ".." in path or not file.is_file():
            return self.send_error(404)
        types = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".json": "application/json", ".png": "image/png",
                 ".svg": "image/svg+xml"}
        self._send(file.read_bytes(), types.get(file.suffix, "application/octet-stream"))

    def _send(self, body, ctype):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", self.csp)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)


class StaticApp:
    def __init__(self, ws_origin):
        port = free_port()
        handler = type("Handler", (_AppHandler,), {
            "config": json.dumps({"server": ws_origin}).encode(),
            "csp": ("default-src 'self'; connect-src 'self' " + ws_origin +
                    "; img-src 'self' data:; media-src 'self' blob: mediastream:; frame-ancestors 'none'"),
        })
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.base = f"http://127.0.0.1:{port}/app/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _serves_app(server):
    try:
        with server.https("/app/") as r:
            return r.status == 200 and b"app.js" in r.read()
    except OSError:
        return False


def start_server(**overrides):
    """hearthd for browser tests: no ICE servers (loopback host candidates suffice), a grace
    period long enough for a reload, and /app/ from this tree when hearthd can serve it."""
    rooms = {"graceSeconds": 30}
    rooms.update(overrides.pop("rooms", {}))
    base = dict(ice={"servers": []}, rooms=rooms, **overrides)
    if os.environ.get("HEARTH_APP_STATIC") != "1":
        try:
            server = Server(web={"root": str(WEB)}, **base)
        except Exception:
            server = None
        if server is not None:
            if _serves_app(server):
                server.app = None
                server.base = f"https://127.0.0.1:{server.port}/app/"
                return server
            server.stop()
    server = Server(**base)
    server.app = StaticApp(server.url)
    server.base = server.app.base
    return server


def stop_server(server):
    if server.app:
        server.app.close()
    code = server.stop()
    assert code == 0, f"hearthd exited with {code}:\n{server.log()}"


@pytest.fixture(scope="module")
def server():
    s = start_server()
    yield s
    stop_server(s)


# ---------------------------------------------------------------------------------------------
# Browsers and pages.

@pytest.fixture(scope="session")
def browser():
    why = _missing()
    if why:
        pytest.fail(f"the browser tests cannot run (CI=true requires them): {why}")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        br = pw.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS, timeout=30000)
        yield br
        br.close()


class Member:
    """One person's browser tab (its own context, so its own sessionStorage)."""

    def __init__(self, browser, server, room, role, name, sub=None, viewport=None, **claims):
        self.server = server
        self.room = room
        self.role = role
        self.name = name
        self.sub = sub or f"user-{uuid.uuid4().hex[:8]}"
        self.claims = claims
        self.context = browser.new_context(viewport=viewport or {"width": 1100, "height": 800})
        self.page = self.context.new_page()
        self.console = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.set_default_timeout(20000)

    def token(self):
        return mint(self.room, self.role, self.name, sub=self.sub, **self.claims)

    def link(self):
        return f"{self.server.base}#room={self.room}&token={self.token()}"

    def open(self):
        self.page.goto(self.link())
        return self

    def join(self):
        """Opens the join link and presses Join on the pre-join screen."""
        self.open()
        self.page.get_by_role("button", name="Join", exact=True).click()
        try:
            self.wait_for("window.hearth && window.hearth.client.state === 'joined'")
        except Exception as e:
            state = self.eval("window.hearth ? [window.hearth.client.state, window.hearth.client.why] : null")
            raise AssertionError(f"{self.name} did not join: {state}; page: {self.page.inner_text('#main')[:300]!r}") from e
        return self

    def wait_for(self, expression, timeout=15000, arg=None):
        """Waits until a JavaScript expression (or function) is truthy. Given as a function, so
        Playwright does not eval() it: the app's CSP forbids eval."""
        if not expression.lstrip().startswith(("(", "async")):
            expression = f"() => ({expression})"
        return self.page.wait_for_function(expression, arg=arg, timeout=timeout, polling=100)

    def eval(self, expression, arg=None):
        return self.page.evaluate(expression, arg)

    def my_id(self):
        return self.eval("window.hearth.model.me.id")

    def stats(self):
        return self.eval("window.hearth.mesh.stats()")

    def shot(self, name, full_page=False):
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)

    def close(self):
        try:
            self.context.close()
        except Exception:
            pass


@pytest.fixture
def members(browser, server):
    """Makes members; closes their contexts at the end (and prints their consoles on failure)."""
    made = []

    def make(room, role, name, **kw):
        m = Member(browser, server, room, role, name, **kw)
        made.append(m)
        return m

    yield make
    for m in made:
        if m.console:
            print(f"--- console of {m.name}:\n" + "\n".join(m.console[-30:]))
        m.close()


def new_room():
    return f"room-{uuid.uuid4().hex[:10]}"


def wait_media(member, peers, timeout=25.0):
    """Polls mesh.stats() until the member has exactly `peers` peer connections, all
    `connected` with inbound video frames decoded, then checks that framesDecoded grows between
    two polls on every one. Returns the last stats."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = member.stats()
        if len(last) == peers and all(s["connectionState"] == "connected" and s["videoFramesDecoded"] > 0
                                      for s in last.values()):
            break
        time.sleep(0.25)
    else:
        raise AssertionError(f"{member.name}: mesh not up within {timeout}s: {last}")
    first = last
    time.sleep(1.0)
    second = member.stats()
    for peer, s in first.items():
        assert peer in second, f"{member.name}: peer {peer} vanished: {second}"
        assert second[peer]["connectionState"] == "connected", second
        assert second[peer]["videoFramesDecoded"] > s["videoFramesDecoded"], \
            f"{member.name}: video from {peer} is not flowing: {s} then {second[peer]}"
    return second


def poll(fn, timeout=10.0, interval=0.2, what="condition"):
    """Calls fn until it returns a truthy value; fails after the timeout."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value {value!r}")
