"""SFU mode (issue 18) in real headless Chromium: the web app and web/sdk/sfu.js against hearthd
driving a real Janus, all inside the browser tests' own network namespace (a veth pair there gives
Janus an interface for ICE; see sfu_support.py).

- the media plane alone (a page publishing to and subscribing from Janus through its API, no
  hearthd): proves the namespace, veth, Janus configuration and Chromium flags;
- four pages: everyone receives everyone else's video and sends exactly one video stream;
- an enforced mute: a muted client that keeps sending is silent for the others;
- removal with ban: the member's media stops at once and the tile goes;
- waiting members get no media session and make no peer connection;
- breakouts: media stays inside each breakout;
- Janus killed mid-session: chat goes on, the pages say video is reconnecting, and media comes
  back once Janus is restarted.
Every wait is bounded; at most four pages at a time (two cores)."""
import http.server
import threading
import time

import pytest

import sfu_support
from conftest import new_room, poll, start_server, stop_server
from sfu_support import OUTBOUND_JS, PAGE_PROBE, Janus


@pytest.fixture(scope="module")
def janus():
    why = sfu_support.missing()
    if why:
        pytest.fail(f"the SFU tests cannot run: {why}")
    sfu_support.make_veth()
    j = Janus().start()
    yield j
    j.stop()


@pytest.fixture(scope="module")
def server(janus):
    """hearthd with every room in SFU mode, driving the module's Janus."""
    s = start_server(rooms={"graceSeconds": 4, "media": "sfu"}, sfu=janus.hearthd_config)
    yield s
    stop_server(s)


# ---------------------------------------------------------------------------------------------
# The media plane alone: no hearthd.

class _Blank(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<!doctype html><title>media plane</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


PUBLISH_JS = """async () => {
  const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: {width: 320, height: 180}});
  const pc = new RTCPeerConnection();
  for (const t of stream.getTracks()) pc.addTransceiver(t, {direction: 'sendonly', streams: [stream]});
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((r) => { if (pc.iceGatheringState === 'complete') r(); pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); setTimeout(r, 5000); });
  window.pub = pc;
  return pc.localDescription.sdp;
}"""

SUBSCRIBE_JS = """async (offer) => {
  const pc = new RTCPeerConnection();
  window.sub = pc;
  await pc.setRemoteDescription({type: 'offer', sdp: offer});
  await pc.setLocalDescription(await pc.createAnswer());
  await new Promise((r) => { if (pc.iceGatheringState === 'complete') r(); pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); setTimeout(r, 5000); });
  return pc.localDescription.sdp;
}"""

INBOUND_VIDEO_JS = """async () => {
  let frames = 0;
  (await window.sub.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0; });
  return [window.pub.connectionState, window.sub.connectionState, frames];
}"""


def test_media_plane_janus_in_the_namespace(browser, janus):
    """A page publishes to a Janus VideoRoom and subscribes to itself through it (the test
    speaks Janus's API on the Unix socket): ICE over the veth, video decoded."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Blank)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    context = browser.new_context()
    api = janus.api()
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/")
        offer = page.evaluate(PUBLISH_JS)
        assert "10.77.0." in offer, "Chromium offers a host candidate on the veth"
        api.create_session()
        pub = api.attach()
        api.message(pub, {"request": "create", "room": 4242, "admin_key": janus.admin_key, "publishers": 4})
        joined = api.message(pub, {"request": "join", "ptype": "publisher", "room": 4242, "display": "probe"})
        feed = joined["plugindata"]["data"]["id"]
        answer = api.message(pub, {"request": "publish", "audio": True, "video": True}, jsep={"type": "offer", "sdp": offer})
        assert "10.77.0.1" in answer["jsep"]["sdp"], "Janus gathers on hv0"
        page.evaluate("(sdp) => window.pub.setRemoteDescription({type: 'answer', sdp})", answer["jsep"]["sdp"])
        poll(lambda: page.evaluate("window.pub.connectionState") == "connected", timeout=20,
             what="the publishing connection up (ICE and DTLS with Janus over the veth)")
        sub = api.attach()
        joined = api.message(sub, {"request": "join", "ptype": "subscriber", "room": 4242, "streams": [{"feed": feed}]})
        sub_answer = page.evaluate(SUBSCRIBE_JS, joined["jsep"]["sdp"])
        api.message(sub, {"request": "start"}, jsep={"type": "answer", "sdp": sub_answer})
        first = poll(lambda: (lambda s: s if s[0] == s[1] == "connected" and s[2] > 0 else None)(page.evaluate(INBOUND_VIDEO_JS)),
                     timeout=30, what="both connections up with video decoded through Janus")
        time.sleep(1.0)
        second = page.evaluate(INBOUND_VIDEO_JS)
        assert second[2] > first[2], f"video through Janus is not flowing: {first} -> {second}"
    finally:
        api.close()
        context.close()
        httpd.shutdown()
