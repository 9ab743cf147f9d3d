"""Drives three Chromium pages (a facilitator and two participants) through the SDK's mesh
against a real hearthd; run by test_mesh.py (inside a loopback-only network namespace when it
can make one). Exits non-zero on the first failed check."""
import functools
import http.server
import os
import pathlib
import sys
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "e2e"))
from hearth import Server, mint  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/lib/chromium/chromium")
ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        "--allow-loopback-in-peer-connection", "--ignore-certificate-errors", "--disable-gpu",
        "--disable-dev-shm-usage"]


class Files(http.server.SimpleHTTPRequestHandler):
    """/ -> Tests/web/mesh-page, /sdk/ -> web/sdk (http://127.0.0.1 is a secure context)."""

    def translate_path(self, path):
        path = path.split("?", 1)[0].split("#", 1)[0]
        if path.startswith("/sdk/"):
            return str(ROOT / "web" / "sdk" / path[len("/sdk/"):])
        return str(HERE / "mesh-page" / (path.lstrip("/") or "index.html"))

    def log_message(self, *args):
        pass


Files.extensions_map = {**Files.extensions_map, ".js": "text/javascript"}


def poll(check, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        time.sleep(0.2)


def media_flowing(pages, peers, timeout=25.0):
    """Every page has exactly `peers` peer connections, all connected, with inbound video frames
    decoded growing between two polls."""
    def frames():
        result = {}
        for name, page in pages.items():
            stats = page.evaluate("hearth.mesh.stats()")
            if len(stats) != peers or any(s["connectionState"] != "connected" for s in stats.values()):
                return None
            result.update({(name, peer): s["videoFramesDecoded"] for peer, s in stats.items()})
        return result
    first = poll(frames, f"{peers} connected peers on {list(pages)}", timeout)
    time.sleep(0.6)
    second = poll(frames, f"{peers} connected peers on {list(pages)}", timeout)
    grown = all(second.get(k, 0) > v for k, v in first.items())
    assert grown, f"video frames did not grow: {first} -> {second}"


def serve_page():
    """Serves the test page and the SDK on loopback; returns (server, the page's URL)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/index.html"


def open_pages(browser, base, server, room, people, options=""):
    """One page per (role, name), each in its own context, joined to `room`: {name: page}."""
    pages = {}
    for role, name in people:
        page = browser.new_context().new_page()
        page.on("pageerror", lambda e, n=name: print(f"{n}: page error: {e}"))
        page.goto(f"{base}#server={server.url}&room={room}{options}&token={mint(room, role, name)}")
        page.wait_for_function("window.ready === true", timeout=15000)
        pages[name] = page
    return pages


def main():
    server = Server()
    httpd, base = serve_page()
    room = "mesh-1"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pages = open_pages(browser, base, server, room,
                               [("facilitator", "Dr. Kim"), ("participant", "Sam"), ("participant", "Alex")])
            fac, sam, alex = pages["Dr. Kim"], pages["Sam"], pages["Alex"]
            ids = {n: p.evaluate("hearth.client.me.id") for n, p in pages.items()}

            # A full mesh, video flowing on every pair; the video cap for three members.
            fac.evaluate("hearth.client.request('admit-all')")
            for page in (sam, alex):
                page.wait_for_function("hearth.model.placement === 'room'")
                page.evaluate("hearth.client.request('media', {audio: true, video: true})")
            media_flowing(pages, 2)
            print("mesh: 3 pages, every pair connected with video")
            caps = sam.evaluate("""[...hearth.mesh.peers.values()].flatMap(pc => pc.getSenders())
                .filter(s => s.track && s.track.kind === 'video')
                .map(s => s.getParameters().encodings.map(e => e.maxBitrate))""")
            assert caps and all(c == [1_250_000] for c in caps), caps
            print("bitrate cap:", caps)

            # Drops: the socket goes away again and again; the peers are made again every time.
            for i in range(3):
                sam.evaluate("hearth.client.socket.close()")
                sam.wait_for_function(f"window.resumes === {i + 1} && hearth.client.state === 'joined'", timeout=10000)
                media_flowing(pages, 2)
            print("resume: 3 drops, the mesh came back each time")

            # Receiver-side mute: Sam is muted by staff; Alex's inbound audio from Sam is disabled,
            # and Sam's own microphone track is turned off.
            audio_from_sam = f"""hearth.mesh.peers.get('{ids["Sam"]}').getReceivers()
                .filter(r => r.track.kind === 'audio').map(r => r.track.enabled)"""
            assert alex.evaluate(audio_from_sam) == [True]
            fac.evaluate(f"hearth.client.request('mute', {{member: '{ids['Sam']}'}})")
            poll(lambda: alex.evaluate(audio_from_sam) == [False], "Alex no longer plays Sam's audio")
            poll(lambda: sam.evaluate("hearth.stream.getAudioTracks()[0].enabled") is False, "Sam's mic off")
            print("mute: enforced on the receiving side")

            # Breakouts: Sam and Alex in a pair; the facilitator (main room) has no peer until a
            # visit; back in one mesh after the close.
            fac.evaluate(f"""hearth.client.request('breakouts-plan',
                {{breakouts: [{{name: 'Pair 1', members: ['{ids["Sam"]}', '{ids["Alex"]}']}}]}})""")
            fac.evaluate("hearth.client.request('breakouts-open')")
            poll(lambda: fac.evaluate("hearth.mesh.peers.size") == 0, "the facilitator alone in the main room")
            media_flowing({"Sam": sam, "Alex": alex}, 1)
            fac.evaluate("hearth.client.request('breakout-visit', {breakout: hearth.model.breakouts.open[0].id})")
            media_flowing(pages, 2)
            fac.evaluate("hearth.client.request('breakouts-close')")
            poll(lambda: all(p.evaluate("hearth.model.breakout === null") for p in pages.values()), "back")
            media_flowing(pages, 2)
            print("breakouts: pair mesh, visit, back to one mesh")
            for name, page in pages.items():
                warnings = page.evaluate("window.warnings")
                assert not warnings, f"{name}: {warnings}"
            browser.close()
    finally:
        httpd.shutdown()
        code = server.stop()
        assert code == 0, f"hearthd exited with {code}"


if __name__ == "__main__":
    main()
    print("mesh driver: all checks passed")
