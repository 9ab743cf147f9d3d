"""Waiting room to admission, and a three-way mesh, in real Chromium."""
from conftest import new_room, poll, wait_media


def test_waiting_room_consent_location_admission(members):
    room = new_room()
    claims = {"consentVersion": "2024-06", "requireLocation": True}
    fac = members(room, "facilitator", "Dr. Rivera", **claims)
    pat = members(room, "participant", "Sam", viewport={"width": 390, "height": 844}, **claims)

    # Pre-join: preview and devices, then Join.
    pat.open()
    page = pat.page
    page.get_by_role("button", name="Join", exact=True).wait_for()
    pat.wait_for("document.querySelector('video.preview') && document.querySelector('video.preview').videoWidth > 0")
    assert "token=" not in page.url and "#" not in page.url, "the fragment must leave the address bar at once"
    pat.shot("prejoin")
    page.get_by_role("button", name="Join", exact=True).click()

    # Waiting room: the facilitator is not there yet.
    main = page.locator("#main")
    main.get_by_role("heading", name="Waiting room").wait_for()
    main.get_by_text("The facilitator has not arrived yet").wait_for()
    main.get_by_text("version 2024-06").first.wait_for()
    page.get_by_label("Where are you right now?").wait_for()

    fac.join()
    fpage = fac.page
    main.get_by_text("The facilitator will let you in shortly.").wait_for()
    item = fpage.locator("#wr-list li", has_text="Sam")
    item.get_by_text("Not ready yet").wait_for()

    # Consent and location.
    page.get_by_role("button", name="I agree").click()   # without the tick: refused
    page.get_by_label("I have read the agreement").check()
    page.get_by_role("button", name="I agree").click()
    main.get_by_text("You agreed to the agreement (version 2024-06).").wait_for()
    page.get_by_label("Where are you right now?").fill("Home, Portland")
    page.get_by_role("button", name="Save location").click()
    main.get_by_text("Your location was sent to staff.").wait_for()
    pat.shot("waiting-room")

    item.get_by_text("Ready", exact=True).wait_for()
    assert "Home, Portland" in item.inner_text()
    assert "version 2024-06" in item.inner_text()
    fac.shot("facilitator-waiting")

    # Admit: announced, then both tiles live.
    item.get_by_role("button", name="Admit Sam").click()
    main.get_by_text("You are in the session now. Welcome!").first.wait_for()
    poll(lambda: "in the session now" in page.locator("#live-assertive").inner_text(), what="admission announced")
    wait_media(pat, 1)
    wait_media(fac, 1)
    # The tiles show names; the patient's page shows no staff panel.
    page.locator(".tile", has_text="Dr. Rivera").wait_for()
    fpage.locator(".tile", has_text="Sam").wait_for()
    assert page.locator("#panel").count() == 0
    pat.shot("room-phone")
    fac.shot("facilitator-panel", full_page=True)
    # Every control has an accessible name; every form field a label.
    for m in (fac, pat):
        nameless = m.eval("""() => [...document.querySelectorAll('button, select, input, textarea')]
            .filter((el) => !el.hidden && !(el.getAttribute('aria-label') || el.textContent.trim()
                || (el.id && document.querySelector(`label[for="${el.id}"]`))))
            .map((el) => el.outerHTML.slice(0, 80))""")
        assert nameless == [], nameless


def test_three_pages_full_mesh(members):
    room = new_room()
    fac = members(room, "facilitator", "Dr. Rivera").join()
    a = members(room, "participant", "Alex").join()
    b = members(room, "participant", "Blair").join()
    for who in ("Alex", "Blair"):
        fac.page.get_by_role("button", name=f"Admit {who}").click()
    for m in (fac, a, b):
        wait_media(m, 2)
    a.page.get_by_role("heading", name="Chat").wait_for()
    a.page.get_by_role("textbox", name="Message").fill("Hello everyone")
    a.page.get_by_role("button", name="Send", exact=True).click()
    for m in (fac, b):
        m.page.locator("#chat-log li", has_text="Hello everyone").wait_for()
    a.shot("room")
