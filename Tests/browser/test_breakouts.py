"""Breakouts from the facilitator panel: plan two pairs by hand, open them with a time limit,
each pair's mesh holds only its pair, a visit, a broadcast, then close and back to one mesh."""
from conftest import new_room, poll, wait_media


def peers(member):
    return set(member.stats().keys())


def test_breakouts_in_the_ui(members):
    room = new_room()
    fac = members(room, "facilitator", "Dr. Rivera").join()
    alex = members(room, "participant", "Alex").join()
    blair = members(room, "participant", "Blair").join()
    casey = members(room, "participant", "Casey").join()
    fpage = fac.page
    for m in (alex, blair, casey):
        fpage.locator("#wr-list li", has_text=m.name).get_by_text("Ready", exact=True).wait_for()
    fpage.get_by_role("button", name="Admit all ready").click()
    for m in (alex, blair, casey):
        m.page.locator("#controls").wait_for()
    ids = {m.name: m.my_id() for m in (alex, blair, casey)}
    fpage.locator("#people-list li", has_text="Casey").wait_for()

    # Plan: Alex and Blair in Pair 1, Casey in Pair 2 (the facilitator will join Casey there).
    fpage.get_by_label("Breakout names (one per line)").fill("Pair 1\nPair 2")
    assign = fpage.locator("#bo-assign")
    assign.get_by_label("Alex").select_option(label="Pair 1")
    assign.get_by_label("Blair").select_option(label="Pair 1")
    assign.get_by_label("Casey").select_option(label="Pair 2")
    fpage.get_by_role("button", name="Save plan").click()
    fpage.locator("#bo-plan-list li", has_text="Pair 1").get_by_text("Alex, Blair").wait_for()
    fpage.get_by_label("Time limit in minutes (empty: no limit)").fill("10")
    fpage.get_by_role("button", name="Open breakouts").click()

    # Members see where they are and the time left; each mesh holds only its pair.
    alex.page.locator("#where", has_text="Breakout: Pair 1").wait_for()
    assert "left" in alex.page.locator("#where").inner_text()
    casey.page.locator("#where", has_text="Breakout: Pair 2").wait_for()
    wait_media(alex, 1)
    wait_media(blair, 1)
    assert peers(alex) == {ids["Blair"]} and peers(blair) == {ids["Alex"]}
    assert peers(casey) == set()
    fpage.locator("#bo-open-list li", has_text="Pair 1").wait_for()
    fpage.locator("#bo-left").wait_for()

    # A visit: the facilitator joins Pair 2 and meets only Casey.
    fpage.get_by_role("button", name="Join Pair 2").click()
    fpage.locator("#where", has_text="Breakout: Pair 2").wait_for()
    wait_media(casey, 1)
    wait_media(fac, 1)
    assert peers(fac) == {ids["Casey"]}
    assert peers(alex) == {ids["Blair"]}
    fac.shot("facilitator-breakouts")

    # A broadcast reaches every breakout.
    fpage.get_by_label("Message to every breakout").fill("Two minutes to go")
    fpage.get_by_role("button", name="Send to every breakout").click()
    for m in (alex, blair, casey):
        m.page.locator("#notices li", has_text="Two minutes to go").wait_for()

    # Close all: everyone is back in the main room, in one mesh again.
    fpage.get_by_role("button", name="Close all breakouts").click()
    for m in (alex, blair, casey, fac):
        m.page.locator("#where", has_text="Main room").wait_for()
    for m in (fac, alex, blair, casey):
        wait_media(m, 3, timeout=40)
