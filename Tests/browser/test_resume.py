"""Dropped connections: a page offline for 2 s resumes its seat and renegotiates; a reload of
the tab resumes too (the resume secret is in sessionStorage; the token is not kept)."""
import time

from conftest import new_room, poll, wait_media

COUNT_EVENTS = """() => {
  window.__events = {resumed: 0, welcome: 0, states: []};
  const c = window.hearth.client;
  c.addEventListener('resumed', () => window.__events.resumed++);
  c.addEventListener('welcome', () => window.__events.welcome++);
  c.addEventListener('state', (e) => window.__events.states.push(e.detail.state));
}"""


def test_drop_resume_and_reload(members):
    room = new_room()
    fac = members(room, "facilitator", "Dr. Rivera").join()
    pat = members(room, "participant", "Sam").join()
    fac.page.get_by_role("button", name="Admit Sam").click()
    wait_media(pat, 1)
    wait_media(fac, 1)
    sam = pat.my_id()
    pat.eval(COUNT_EVENTS)
    old_pc = fac.eval(f"window.__oldpc = window.hearth.mesh.peers.get('{sam}'), true")
    assert old_pc

    # Offline for 2 s: the page says it is reconnecting, then resumes the same seat.
    pat.context.set_offline(True)
    try:
        pat.page.locator("#conn", has_text="Reconnecting").wait_for(timeout=8000)
    except Exception:
        # Chromium's offline emulation may leave an open WebSocket alone: drop it for real.
        pat.eval("window.hearth.client.socket && window.hearth.client.socket.close(4999)")
        pat.page.locator("#conn", has_text="Reconnecting").wait_for(timeout=8000)
    time.sleep(2)
    pat.context.set_offline(False)
    pat.wait_for("window.__events.resumed === 1 && window.hearth.client.state === 'joined'", timeout=20000)
    pat.page.locator("#conn", has_text="Connected again").wait_for()
    assert pat.eval("window.__events.welcome") == 0, "a resume, not a new hello"
    assert pat.my_id() == sam
    # Signalling is never replayed: new peer connections on both sides, and video flows again.
    wait_media(pat, 1)
    wait_media(fac, 1)
    assert fac.eval(f"window.hearth.mesh.peers.get('{sam}') !== window.__oldpc")

    # A reload of the tab resumes too, straight into the room (no pre-join, no token needed).
    pat.page.reload()
    pat.wait_for("window.hearth && window.hearth.client.state === 'joined'", timeout=20000)
    assert pat.page.get_by_role("button", name="Join", exact=True).count() == 0
    assert pat.my_id() == sam
    assert pat.eval("JSON.parse(sessionStorage.getItem('hearth-app')).token") is None, "the token is not kept"
    wait_media(pat, 1)
    wait_media(fac, 1)
    fac.page.locator(".tile", has_text="Sam").wait_for()
    assert fac.page.locator(".tile", has_text="Sam").count() == 1


def test_query_string_token_is_ignored(members, server):
    room = new_room()
    pat = members(room, "participant", "Sam")
    pat.page.goto(f"{server.base}?room={room}&token={pat.token()}")
    pat.page.get_by_role("heading", name="Open your join link").wait_for()
    assert "token" not in pat.page.url
    assert pat.eval("window.hearth === undefined")


def test_server_restart_every_page_comes_back(members, server):
    room = new_room()
    fac = members(room, "facilitator", "Dr. Rivera").join()
    pat = members(room, "participant", "Sam").join()
    fac.page.get_by_role("button", name="Admit Sam").click()
    wait_media(fac, 1)
    ids = {m.name: m.my_id() for m in (fac, pat)}
    for m in (fac, pat):
        m.eval(COUNT_EVENTS)
    assert server.stop() == 0
    for m in (fac, pat):
        m.page.locator("#conn", has_text="Reconnecting").wait_for()
    server.start()
    for m in (fac, pat):
        m.wait_for("window.__events.resumed >= 1 && window.hearth.client.state === 'joined'", timeout=30000)
        assert m.my_id() == ids[m.name]
        assert m.eval("window.__events.welcome") == 0
    wait_media(fac, 1)
    wait_media(pat, 1)
