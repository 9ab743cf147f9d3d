"""Two Chromium pages behind "NAT": both forced to relay-only ICE (iceTransportPolicy 'relay')
through a real coturn (Debian's `turnserver`, `use-auth-secret` with the secret hearthd is
configured with), started here on loopback. Video must flow with the short-lived TURN credentials
hearthd handed out in `welcome`: proof that the credentials work with a real TURN server, not
just that they are well-formed. Run by test_turn.py (inside a loopback-only network namespace
when it can make one). Exits non-zero on the first failed check."""
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "Tests" / "e2e"))
from hearth import Server  # noqa: E402
from mesh_driver import ARGS, CHROMIUM, media_flowing, open_pages, serve_page  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

SECRET = "turn-test-secret"


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_coturn(port, log):
    binary = shutil.which("turnserver") or "/usr/bin/turnserver"
    return subprocess.Popen(
        [binary, "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1", "--listening-port", str(port),
         "--min-port", "49160", "--max-port", "49200", "--use-auth-secret", f"--static-auth-secret={SECRET}",
         "--realm", "hearth.test", "--allow-loopback-peers", "--no-cli", "--no-tls", "--no-dtls",
         "--fingerprint", "--no-multicast-peers", "--simple-log", "--log-file", "stdout"],
        stdout=log, stderr=subprocess.STDOUT)


def main():
    port = free_udp_port()
    log = tempfile.NamedTemporaryFile(prefix="coturn-", suffix=".log", delete=False)
    coturn = start_coturn(port, log)
    time.sleep(0.5)
    assert coturn.poll() is None, f"coturn exited: {pathlib.Path(log.name).read_text()}"
    server = Server(ice={"servers": [{"urls": [f"turn:127.0.0.1:{port}?transport=udp"], "turn": True}],
                         "turnSecret": SECRET, "turnTTLSeconds": 600})
    httpd, base = serve_page()
    room = "turn-1"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pages = open_pages(browser, base, server, room, [("facilitator", "Dr. Kim"), ("participant", "Sam")],
                               options="&relay=1")
            fac, sam = pages["Dr. Kim"], pages["Sam"]
            # The credentials are hearthd's, short-lived, for this TURN server only.
            ice = fac.evaluate("hearth.client.iceServers")
            assert ice and ice[0]["urls"] == [f"turn:127.0.0.1:{port}?transport=udp"], ice
            expiry = int(ice[0]["username"].split(":")[0])
            assert time.time() < expiry <= time.time() + 600 + 5, ice[0]["username"]
            fac.evaluate("hearth.client.request('admit-all')")
            sam.wait_for_function("hearth.model.placement === 'room'")
            sam.evaluate("hearth.client.request('media', {audio: true, video: true})")
            media_flowing(pages, 1, timeout=40)
            for name, page in pages.items():
                stats = page.evaluate("hearth.mesh.stats()")
                for peer, s in stats.items():
                    kinds = (s.get("localCandidateType"), s.get("remoteCandidateType"))
                    assert kinds == ("relay", "relay"), f"{name} -> {peer}: selected pair {kinds}"
            print("turn: both pages relay-only, video flowing through coturn with hearthd's credentials")
            browser.close()
    finally:
        httpd.shutdown()
        code = server.stop()
        coturn.terminate()
        coturn.wait(timeout=10)
        assert code == 0, f"hearthd exited with {code}"


if __name__ == "__main__":
    main()
    print("turn driver: all checks passed")
