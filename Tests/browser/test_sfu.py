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
- a room in `auto` mode switching from mesh to SFU when a third member is admitted;
- Janus killed mid-session: chat goes on, the pages say video is reconnecting, and media comes
  back once Janus is restarted.
Every wait is bounded; at most four pages at a time (two cores)."""
import http.server
import os
import threading
import time

import pytest

import sfu_support
from conftest import SDK_DIR, Member, new_room, poll, start_server, stop_server, wait_media
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
    """A blank page at /, and the SDK at /sdk/ (http://127.0.0.1 is a secure context)."""

    def do_GET(self):
        body, ctype = b"<!doctype html><title>media plane</title>", "text/html"
        if self.path.startswith("/sdk/") and ".." not in self.path:
            file = SDK_DIR / self.path[len("/sdk/"):]
            if not file.is_file():
                return self.send_error(404)
            body, ctype = file.read_bytes(), "text/javascript"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
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


@pytest.fixture
def blank_page(browser):
    """A page on a blank loopback origin that can import the SDK from /sdk/."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Blank)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    context = browser.new_context()
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(f"{m.type}: {m.text}") if m.type in ("warning", "error") else None)
    page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/")
    yield page
    if errors:
        print("--- page console:\n" + "\n".join(errors[-30:]))
    context.close()
    httpd.shutdown()


def test_media_plane_janus_in_the_namespace(blank_page, janus):
    """A page publishes to a Janus VideoRoom and subscribes to itself through it (the test
    speaks Janus's API on the Unix socket): ICE over the veth, video decoded."""
    page = blank_page
    api = janus.api()
    try:
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


SDK_PAGE_JS = """async () => {
  const { Sfu } = await import('/sdk/sfu.js');
  const client = new EventTarget();
  Object.assign(client, { state: 'joined', iceServers: [], out: [], send(type, fields) { this.out.push({ ...fields, type }); return true; } });
  const model = new EventTarget();
  Object.assign(model, { you: { id: 'p1', audio: true }, members: new Map([['p1', { id: 'p1', audio: true }], ['p2', { id: 'p2', audio: true }]]) });
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 180 } });
  const sfu = new Sfu(client, model, { localStream: stream });
  window.events = [];
  for (const type of ['track', 'peer-removed', 'status']) sfu.addEventListener(type, (e) => window.events.push({ type, ...e.detail, stream: undefined }));
  window.sfu = sfu;
  window.fake = client;
  window.deliver = (m) => client.dispatchEvent(new CustomEvent('message', { detail: m }));
  return true;
}"""


class FakeHearth:
    """Plays hearthd's part between the SDK's Sfu (in the page, over a fake client) and Janus."""

    def __init__(self, page, api):
        self.page = page
        self.api = api
        self.seen = 0
        self.handles = {}

    def deliver(self, message):
        self.page.evaluate("(m) => window.deliver(m)", message)

    def drain(self):
        """The page's new messages; candidates go straight to Janus (trickle)."""
        out = self.page.evaluate("(n) => window.fake.out.slice(n)", self.seen)
        self.seen += len(out)
        rest = []
        for m in out:
            if m["type"] == "sfu-candidate" and m["pc"] in self.handles:
                candidate = m["candidate"] or {"completed": True}
                self.api.call({"janus": "trickle", "handle_id": self.handles[m["pc"]], "candidate": candidate}, want=("ack",))
            else:
                rest.append(m)
        return rest

    def expect(self, type, timeout=15.0):
        found = []

        def check():
            found.extend(self.drain())
            return [m for m in found if m["type"] == type]
        return poll(check, timeout=timeout, interval=0.2, what=f"the page sending {type}")[0]


def test_sdk_sfu_against_janus(blank_page, janus):
    """web/sdk/sfu.js against Janus, the test playing hearthd's part of the contract: publish
    (audio then video, sendonly) and trickle; a subscribe offer mapped by mid to a member, one
    MediaStream for that member with video decoded; an update without the member's streams; an
    old session's message ignored; sfu-closed."""
    page = blank_page
    page.evaluate(SDK_PAGE_JS)
    api = janus.api()
    hearth = FakeHearth(page, api)
    try:
        api.create_session()
        pub = api.attach()
        hearth.handles["publish"] = pub
        api.message(pub, {"request": "create", "room": 4343, "admin_key": janus.admin_key, "publishers": 4})
        feed = api.message(pub, {"request": "join", "ptype": "publisher", "room": 4343})["plugindata"]["data"]["id"]

        hearth.deliver({"type": "sfu-session", "session": 7, "publish": True})
        offer = hearth.expect("sfu-publish")
        assert offer["session"] == 7
        kinds = [line.split()[0][2:] for line in offer["sdp"].splitlines() if line.startswith("m=")]
        assert kinds == ["audio", "video"], kinds
        assert offer["sdp"].count("a=sendonly") == 2, "both transceivers sendonly"
        answer = api.message(pub, {"request": "publish", "audio": True, "video": True}, jsep={"type": "offer", "sdp": offer["sdp"]})
        hearth.deliver({"type": "sfu-answer", "session": 6, "sdp": "v=0 (an old session's: ignored)"})
        hearth.deliver({"type": "sfu-answer", "session": 7, "sdp": answer["jsep"]["sdp"]})
        poll(lambda: hearth.drain() is not None and page.evaluate("window.sfu.publishPc.connectionState") == "connected",
             timeout=20, what="the publishing connection up")

        sub = api.attach()
        hearth.handles["subscribe"] = sub
        joined = api.message(sub, {"request": "join", "ptype": "subscriber", "room": 4343, "streams": [{"feed": feed}]})
        streams = [{"mid": s["mid"], "member": "p2", "kind": s["type"]} for s in joined["plugindata"]["data"]["streams"]]
        hearth.deliver({"type": "sfu-offer", "session": 7, "sdp": joined["jsep"]["sdp"], "streams": streams})
        sub_answer = hearth.expect("sfu-subscribe")
        api.message(sub, {"request": "start"}, jsep={"type": "answer", "sdp": sub_answer["sdp"]})

        def frames():
            hearth.drain()
            s = page.evaluate("window.sfu.stats()")
            return s["members"].get("p2", {}).get("videoFramesDecoded", 0)
        first = poll(frames, timeout=30, what="video from p2 decoded")
        poll(lambda: frames() > first, timeout=10, what="video from p2 growing")
        assert page.evaluate("window.sfu.status") == "connected"
        assert page.evaluate("[...window.sfu.streams.keys()]") == ["p2"]
        assert page.evaluate("window.sfu.streams.get('p2').getTracks().map(t => t.kind).sort()") == ["audio", "video"]
        outbound_video = page.evaluate("""async () => { let n = 0;
            (await window.sfu.publishPc.getStats()).forEach(r => { if (r.type === 'outbound-rtp' && r.kind === 'video') n++; });
            return n; }""")
        assert outbound_video == 1

        # An update without p2's streams: the stream goes ('peer-removed').
        update = api.message(sub, {"request": "unsubscribe", "streams": [{"feed": feed}]})
        assert update.get("jsep"), update
        hearth.deliver({"type": "sfu-offer", "session": 7, "sdp": update["jsep"]["sdp"], "streams": []})
        poll(lambda: page.evaluate("window.fake.out.filter(m => m.type === 'sfu-subscribe').length") == 2,
             what="the answer to the update")
        again = page.evaluate("window.fake.out.filter(m => m.type === 'sfu-subscribe')[1]")
        api.message(sub, {"request": "start"}, jsep={"type": "answer", "sdp": again["sdp"]})
        poll(lambda: page.evaluate("window.sfu.streams.size") == 0, what="p2's stream gone")
        assert any(e["type"] == "peer-removed" and e["peer"] == "p2" for e in page.evaluate("window.events"))

        hearth.deliver({"type": "sfu-closed", "reason": "unavailable"})
        assert page.evaluate("[window.sfu.status, window.sfu.publishPc, window.sfu.subscribePc]") == ["unavailable", None, None]
    finally:
        api.close()


# ---------------------------------------------------------------------------------------------
# The app in SFU mode against hearthd.

class Explain:
    """On a failed check, adds what the pages exchanged (their SFU message logs and SFU stats)
    and the tails of hearthd's and Janus's logs to the failure."""

    def __init__(self, server, janus):
        self.server = server
        self.janus = janus
        self.pages = []

    def add(self, *pages):
        self.pages.extend(pages)

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if kind is None or not issubclass(kind, AssertionError):
            return False
        parts = [str(error)]
        for m in self.pages:
            try:
                log = m.eval("JSON.stringify((window.__sfuLog || []).slice(-40))")
                stats = m.eval("window.hearth && window.hearth.sfu ? window.hearth.sfu.stats().then(JSON.stringify) : 'no sfu'")
                who = m.eval("window.hearth && window.hearth.model.me ? window.hearth.model.me.id : '?'")
            except Exception as e:  # a closed page
                log, stats, who = f"(unreadable: {e})", "", "?"
            parts.append(f"--- {m.name} ({who}) sfu log: {log}\n    stats: {stats}")
        parts.append("--- hearthd log (tail):\n" + self.server.log()[-4000:])
        parts.append("--- janus log (tail):\n" + self.janus.log()[-2000:])
        raise AssertionError("\n".join(parts)) from error


def sfu_member(members, room, role, name, **claims):
    """A page with the probe (every peer connection, the SFU messages both ways) installed."""
    m = members(room, role, name, **claims)
    m.context.add_init_script(PAGE_PROBE)
    return m


def admit(fac, member):
    member_id = member.my_id()
    fac.eval("(id) => window.hearth.client.request('admit', {member: id})", member_id)
    member.wait_for("window.hearth.model.placement === 'room'")
    return member_id


def group(members, room, names, explain):
    """A facilitator and participants, all admitted."""
    fac = sfu_member(members, room, "facilitator", "Dr. Rivera").join()
    explain.add(fac)
    media = fac.eval("window.hearth.model.state && window.hearth.model.state.media")
    assert media == "sfu", f"the hearthd under test ({os.environ.get('HEARTHD_BIN')}) did not put the room in SFU mode: state.media = {media!r}"
    people = []
    for name in names:
        p = sfu_member(members, room, "participant", name).join()
        explain.add(p)
        admit(fac, p)
        people.append(p)
    return fac, people


def sfu_stats(m):
    return m.eval("window.hearth.sfu ? window.hearth.sfu.stats() : null")


def received(m):
    """{member: video frames decoded} of the members whose streams this page receives."""
    s = sfu_stats(m)
    if not s:
        return {}
    return {peer: v["videoFramesDecoded"] for peer, v in s["members"].items()}


def wait_sfu_media(m, expected, timeout=60.0):
    """Polls until the page receives video from exactly the `expected` members (frames decoded),
    then checks that it grows from every one of them; returns the frames seen."""
    expected = set(expected)

    def ready():
        got = received(m)
        streams = set(m.eval("window.hearth.sfu ? [...window.hearth.sfu.streams.keys()] : []"))
        if set(got) == expected and streams == expected and all(got[p] > 0 for p in expected):
            return got
        return None
    first = poll(ready, timeout=timeout, interval=0.5, what=f"{m.name}: video from exactly {sorted(expected)}")
    second = first
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.5)
        second = received(m)
        if all(second.get(p, 0) > first[p] for p in expected):
            break
    assert all(second.get(p, 0) > first[p] for p in expected), \
        f"{m.name}: video is not flowing from every member: {first} -> {second}"
    assert set(second) == expected, f"{m.name}: receives {sorted(second)}, expected {sorted(expected)}"
    return second


def outbound(m):
    """What the page sends, across every live peer connection it has (mesh or SFU)."""
    return m.eval(OUTBOUND_JS)


def assert_one_video_out(m):
    first = outbound(m)
    assert len(first["video"]) == 1, f"{m.name}: {len(first['video'])} outbound video streams over {first['pcs']} connections"
    time.sleep(1.0)
    second = outbound(m)
    assert len(second["video"]) == 1, second
    assert second["video"][0]["bytesSent"] > first["video"][0]["bytesSent"], f"{m.name}: its one video stream is not sending"


def audio_packets_from(m, member_id):
    s = sfu_stats(m)
    return (s or {}).get("members", {}).get(member_id, {}).get("audioPacketsReceived", 0)


def grows(fn, timeout=15.0, what="a counter growing"):
    """Polls until fn() is higher than its first value."""
    start = fn()
    return poll(lambda: fn() > start, timeout=timeout, interval=0.5, what=f"{what} (from {start})")


def sfu_log(m, direction="in", kind=None):
    entries = m.eval("window.__sfuLog || []")
    return [e for e in entries if e["dir"] == direction and (kind is None or e["type"] == kind)]


def test_every_page_receives_everyone_and_sends_one_video(members, server, janus):
    room = new_room()
    with Explain(server, janus) as explain:
        fac, (alex,) = group(members, room, ["Alex"], explain)
        ids = {"fac": fac.my_id(), "Alex": alex.my_id()}
        wait_sfu_media(fac, {ids["Alex"]})
        wait_sfu_media(alex, {ids["fac"]})
        for m in (fac, alex):
            assert_one_video_out(m)
        # Two more: still one video stream out per page, everyone's video in.
        blair = sfu_member(members, room, "participant", "Blair").join()
        casey = sfu_member(members, room, "participant", "Casey").join()
        explain.add(blair, casey)
        ids["Blair"] = admit(fac, blair)
        ids["Casey"] = admit(fac, casey)
        pages = {"fac": fac, "Alex": alex, "Blair": blair, "Casey": casey}
        for name, m in pages.items():
            wait_sfu_media(m, {i for n, i in ids.items() if n != name}, timeout=90)
        for m in pages.values():
            assert_one_video_out(m)
            live = m.eval("(window.__pcs || []).filter(pc => pc.signalingState !== 'closed').length")
            assert live == 2, f"{m.name}: {live} live peer connections (SFU mode: publish + subscribe)"
            assert m.eval("window.hearth.mesh") is None, "no mesh in SFU mode"
        # The app told the server its media (the SFU forwards only what the roster says is on).
        roster = fac.eval("[...window.hearth.model.members.values()].map(v => [v.id, v.audio, v.video])")
        assert all(a is True and v is True for _, a, v in roster), roster
        for m in pages.values():
            sent = sfu_log(m, "out", "media")
            assert sent and sent[-1].get("audio") is True and sent[-1].get("video") is True, (m.name, sent)
        # A tile per member, each playing the member's stream.
        for name, m in pages.items():
            for other, i in ids.items():
                if other == name:
                    continue
                m.page.locator(f'.tile[data-member="{i}"] video').wait_for()
                assert m.eval("(id) => { const v = document.querySelector(`.tile[data-member=\"${id}\"] video`);"
                              " return !!v.srcObject && v.srcObject.getVideoTracks().length === 1; }", i), (name, other)
        casey.shot("sfu-four-pages")


def test_enforced_mute_silences_a_client_that_keeps_sending(members, server, janus):
    room = new_room()
    with Explain(server, janus) as explain:
        fac, (alex, blair) = group(members, room, ["Alex", "Blair"], explain)
        b = blair.my_id()
        wait_sfu_media(alex, {fac.my_id(), b})
        grows(lambda: audio_packets_from(alex, b), what="Alex receiving Blair's audio")

        fac.eval("(id) => window.hearth.client.request('mute', {member: id})", b)
        alex.wait_for(f"window.hearth.model.members.get('{b}').audio === false")
        blair.wait_for("window.hearth.localStream.getAudioTracks()[0].enabled === false")
        mark = len(sfu_log(blair, "out", "media"))
        # A modified client ignores the mute: the microphone track on again, the publishing
        # connection keeps sending audio to Janus.
        blair.eval("window.hearth.localStream.getAudioTracks()[0].enabled = true")
        grows(lambda: sum(a["bytesSent"] for a in outbound(blair)["audio"]), what="Blair still sending audio to Janus")
        assert not [e for e in sfu_log(blair, "out", "media")[mark:] if e.get("audio")], \
            "the test's page must not declare its audio on again by itself"
        time.sleep(1.5)  # what was in flight is delivered
        before = {m.name: audio_packets_from(m, b) for m in (alex, fac)}
        video_before = received(alex)[b]
        time.sleep(3.0)
        after = {m.name: audio_packets_from(m, b) for m in (alex, fac)}
        assert after == before, f"Blair's audio still reaches the others while muted: {before} -> {after}"
        assert received(alex)[b] > video_before, "Blair's video goes on while the audio is muted"

        # Staff ask; Blair turns the microphone on in the app (which sends media {audio: true}).
        fac.eval("(id) => window.hearth.client.request('ask-unmute', {member: id, audio: true})", b)
        blair.page.locator("#notices li", has_text="asks you to turn on your microphone").wait_for()
        blair.page.get_by_role("button", name="Turn on microphone").click()
        blair.page.get_by_role("button", name="Turn off microphone").wait_for()
        poll(lambda: any(e.get("audio") is True for e in sfu_log(blair, "out", "media")[-2:]),
             what="Blair's app sending media {audio: true}")
        for m in (alex, fac):
            grows(lambda m=m: audio_packets_from(m, b), timeout=15, what=f"{m.name} receiving Blair's audio again")


def test_remove_with_ban_stops_the_media_at_once(members, server, janus):
    room = new_room()
    with Explain(server, janus) as explain:
        fac, (alex, blair) = group(members, room, ["Alex", "Blair"], explain)
        b = blair.my_id()
        wait_sfu_media(alex, {fac.my_id(), b})
        mids = alex.eval("(id) => [...window.hearth.sfu.mids.values()].filter(s => s.member === id).map(s => s.mid)", b)
        assert len(mids) == 2, mids
        offers_before = len(sfu_log(alex, "in", "sfu-offer"))
        bytes_on_mids = f"""async () => {{ const mids = {mids!r}; let n = 0;
            (await window.hearth.sfu.subscribePc.getStats()).forEach(r => {{
              if (r.type === 'inbound-rtp' && mids.includes(r.mid)) n += r.bytesReceived || 0; }});
            return n; }}"""
        grows(lambda: alex.eval(bytes_on_mids), what="Blair's media arriving at Alex")

        started = time.monotonic()
        fac.eval("(id) => window.hearth.client.request('remove', {member: id, ban: true})", b)
        alex.page.locator(f'.tile[data-member="{b}"]').wait_for(state="detached", timeout=10000)
        poll(lambda: b not in alex.eval("[...window.hearth.sfu.streams.keys()]"), timeout=10,
             what="Blair's stream gone at Alex")
        offer = poll(lambda: [o for o in sfu_log(alex, "in", "sfu-offer")[offers_before:]
                              if all(s["member"] != b for s in o.get("streams", []))],
                     timeout=10, what="a new sfu-offer without Blair's streams")
        elapsed = time.monotonic() - started
        assert elapsed < 10, f"Blair's media took {elapsed:.1f}s to go"
        time.sleep(1.0)
        first = alex.eval(bytes_on_mids)
        time.sleep(2.5)
        second = alex.eval(bytes_on_mids)
        assert second == first, f"media still arrives on Blair's old streams {mids}: {first} -> {second}; offer {offer[-1]}"
        blair.page.locator("#over-text", has_text="cannot rejoin").wait_for()
        wait_sfu_media(alex, {fac.my_id()})


def test_waiting_members_receive_no_media(members, server, janus):
    room = new_room()
    with Explain(server, janus) as explain:
        fac, (alex,) = group(members, room, ["Alex"], explain)
        robin = sfu_member(members, room, "participant", "Robin").join()
        explain.add(robin)
        robin.page.locator("#main").get_by_role("heading", name="Waiting room").wait_for()
        wait_sfu_media(fac, {alex.my_id()})
        wait_sfu_media(alex, {fac.my_id()})
        time.sleep(2.0)
        assert robin.eval("window.hearth.model.placement") == "waiting"
        got = [e for e in sfu_log(robin, "in") if e["type"].startswith("sfu-")]
        assert got == [], f"a waiting member got SFU messages: {got}"
        assert robin.eval("window.__pcs.length") == 0, "a waiting page made a peer connection"
        # Nobody in the room receives anything from the waiting member.
        assert robin.my_id() not in received(fac)


def test_breakouts_keep_media_inside_each_breakout(members, server, janus):
    room = new_room()
    with Explain(server, janus) as explain:
        fac, (alex, blair, casey) = group(members, room, ["Alex", "Blair", "Casey"], explain)
        ids = {m.name: m.my_id() for m in (fac, alex, blair, casey)}
        wait_sfu_media(alex, {ids["Dr. Rivera"], ids["Blair"], ids["Casey"]}, timeout=90)
        fac.eval("(ids) => window.hearth.client.request('breakouts-plan', {breakouts: ["
                 "{name: 'Pair 1', members: [ids[0], ids[1]]}, {name: 'Pair 2', members: [ids[2]]}]})",
                 [ids["Alex"], ids["Blair"], ids["Casey"]])
        fac.eval("window.hearth.client.request('breakouts-open')")
        alex.page.locator("#where", has_text="Breakout: Pair 1").wait_for()
        casey.page.locator("#where", has_text="Breakout: Pair 2").wait_for()
        wait_sfu_media(alex, {ids["Blair"]})
        wait_sfu_media(blair, {ids["Alex"]})
        poll(lambda: received(casey) == {} and received(fac) == {}, timeout=20,
             what="Casey (alone in Pair 2) and the facilitator (alone in the main room) receive nothing")
        # A visit: the facilitator meets only Casey; Pair 1 stays a pair.
        fac.eval("window.hearth.client.request('breakout-visit', {breakout: window.hearth.model.breakouts.open"
                 ".find(b => b.name === 'Pair 2').id})")
        fac.page.locator("#where", has_text="Breakout: Pair 2").wait_for()
        wait_sfu_media(fac, {ids["Casey"]})
        wait_sfu_media(casey, {ids["Dr. Rivera"]})
        assert set(received(alex)) == {ids["Blair"]} and set(received(blair)) == {ids["Alex"]}
        for m in (fac, alex, blair, casey):
            assert_one_video_out(m)


def test_auto_switches_from_mesh_to_sfu(browser, janus):
    """A room with `media: auto` and meshLimit 2: a mesh for two members; when the third is
    admitted, every page gets `media: "sfu"`, closes its mesh and receives everyone through the
    SFU, sending one video stream."""
    auto = start_server(rooms={"graceSeconds": 4, "media": "auto", "meshLimit": 2}, sfu=janus.hearthd_config)
    made = []

    def member(role, name):
        m = Member(browser, auto, room, role, name)
        m.context.add_init_script(PAGE_PROBE)
        made.append(m)
        return m
    room = new_room()
    try:
        with Explain(auto, janus) as explain:
            fac = member("facilitator", "Dr. Rivera").join()
            alex = member("participant", "Alex").join()
            explain.add(fac, alex)
            admit(fac, alex)
            assert fac.eval("window.hearth.model.state.media") == "mesh"
            wait_media(fac, 1)
            wait_media(alex, 1)
            assert fac.eval("window.hearth.sfu") is None
            blair = member("participant", "Blair").join()
            explain.add(blair)
            admit(fac, blair)
            ids = {m.name: m.my_id() for m in (fac, alex, blair)}
            for m in (fac, alex, blair):
                m.wait_for("window.hearth.model.state.media === 'sfu' && window.hearth.sfu !== null")
                assert m.eval("window.hearth.mesh") is None
            for m in (fac, alex, blair):
                wait_sfu_media(m, {i for n, i in ids.items() if n != m.name}, timeout=90)
            for m in (fac, alex, blair):
                assert_one_video_out(m)
                live = m.eval("(window.__pcs || []).filter(pc => pc.signalingState !== 'closed').length")
                assert live == 2, f"{m.name}: {live} live peer connections after the switch (mesh ones left open?)"
    finally:
        for m in made:
            m.close()
        stop_server(auto)


def test_janus_killed_chat_goes_on_and_media_comes_back(members, server, janus):
    room = new_room()
    with Explain(server, janus) as explain:
        fac, (alex,) = group(members, room, ["Alex"], explain)
        wait_sfu_media(alex, {fac.my_id()})
        wait_sfu_media(fac, {alex.my_id()})

        janus.kill()
        for m in (fac, alex):
            poll(lambda m=m: [e for e in sfu_log(m, "in", "sfu-closed") if e.get("reason") == "unavailable"],
                 timeout=30, what=f"{m.name} told sfu-closed (unavailable)")
            m.page.locator("#media-status", has_text="Video is reconnecting; chat still works").wait_for(timeout=10000)
            assert m.eval("window.hearth.sfu.status") == "unavailable"
            assert m.eval("window.hearth.sfu.subscribePc") is None and m.eval("window.hearth.sfu.publishPc") is None
        # Chat and control go on.
        alex.page.get_by_role("textbox", name="Message").fill("can you still read me?")
        alex.page.get_by_role("button", name="Send", exact=True).click()
        fac.page.locator("#chat-log li", has_text="can you still read me?").wait_for()
        assert alex.eval("window.hearth.client.state") == "joined" and fac.eval("window.hearth.client.state") == "joined"
        alex.shot("sfu-media-unavailable")

        janus.start()
        wait_sfu_media(alex, {fac.my_id()}, timeout=90)
        wait_sfu_media(fac, {alex.my_id()}, timeout=30)
        for m in (fac, alex):
            m.page.locator("#media-status").wait_for(state="hidden", timeout=10000)
            assert len(sfu_log(m, "in", "sfu-session")) >= 2, "a new media session after the media server came back"
