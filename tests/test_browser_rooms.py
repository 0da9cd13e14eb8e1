"""In a real Chromium: callers dial a room, show up in the waiting room of every open board at once, and a
moderator admits one with a click; a caller who hangs up and a call Telnyx refused to answer show in every tab."""

from __future__ import annotations

import pytest

from tests.fixtures_browser import ARTIFACTS, TIMEOUT, logged_in_page
from tests.fixtures_dial_in import HOST, TOWN_HALL, dial, refuse_answers, sim_call, sim_members
from tests.fixtures_live_server import eventually

pytestmark = pytest.mark.browser


def waiting(page, call_control_id):
    return page.locator(f'#queues li.waiting-call[data-call-control-id="{call_control_id}"]')


def host_then_callers_waiting(sim, page, host_number, room_number, room, caller_numbers):
    """The host starts the room's conference, then each caller dials and shows waiting on the page, in order."""
    host = dial(sim, host_number, room_number)
    eventually(lambda: host in sim_members(sim, room), f"the host starts {room}'s conference")
    callers = []
    for number in caller_numbers:
        callers.append(dial(sim, number, room_number))
        waiting(page, callers[-1]).wait_for(timeout=TIMEOUT * 3)
    return host, callers


def test_callers_wait_in_every_tab_and_a_click_admits_one(browser, dial_in):
    sim, server, api = dial_in
    first_tab = logged_in_page(browser, server)
    second_tab = logged_in_page(browser, server)

    host = dial(sim, HOST, TOWN_HALL)
    card = first_tab.locator("#live-conferences .conference-card", has_text="Town hall")
    card.wait_for(timeout=TIMEOUT * 3)
    conference_id = card.get_attribute("data-conference-id")
    eventually(lambda: host in sim_members(sim, "Town hall"), "the moderator is in the conference")

    guest, leaver = dial(sim, "+15550810001", TOWN_HALL), dial(sim, "+15550810002", TOWN_HALL)
    for tab in (first_tab, second_tab):
        for caller in (guest, leaver):
            waiting(tab, caller).wait_for(timeout=TIMEOUT * 3)
        tab.locator('#queues .queue[data-room="Town hall"]').wait_for(timeout=TIMEOUT)

    waiting(first_tab, guest).get_by_role("button", name="Admit…").click()
    # The room's live conference is chosen already.
    assert first_tab.locator("#f-conference").input_value() == conference_id
    first_tab.locator("#action-submit").click()
    for tab in (first_tab, second_tab):
        waiting(tab, guest).wait_for(state="detached", timeout=TIMEOUT * 3)
        assert waiting(tab, leaver).count() == 1
    eventually(lambda: guest in sim_members(sim, "Town hall"), "the admitted caller is in the conference")
    assert sim_call(sim, guest)["queue"] is None

    second_tab.goto(f"{server.url}/conferences/{conference_id}/")
    second_tab.locator(f'tr[data-call-control-id="{guest}"] .badge', has_text="joined").wait_for(timeout=TIMEOUT * 3)
    second_tab.goto(f"{server.url}/")

    sim.hangup(leaver)
    for tab in (first_tab, second_tab):
        waiting(tab, leaver).wait_for(state="detached", timeout=TIMEOUT * 3)

    refuse_answers(sim)
    refused = dial(sim, "+15550810003", TOWN_HALL)
    for tab in (first_tab, second_tab):
        problem = tab.locator(f'#queues .routing-problem[data-call-control-id="{refused}"]')
        problem.wait_for(timeout=TIMEOUT * 3)
        assert "Simulated refusal to answer" in problem.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    first_tab.screenshot(path=str(ARTIFACTS / "waiting-room.png"), full_page=True)
    sim.hangup(refused)
    for tab in (first_tab, second_tab):
        tab.context.close()


def test_admit_next_then_admit_all_from_the_board_and_lock_from_the_live_view(browser, dial_in):
    from tests.fixtures_dial_in import OPEN_ROOM

    sim, server, api = dial_in
    board = logged_in_page(browser, server)
    host, callers = host_then_callers_waiting(sim, board, HOST, TOWN_HALL, "Town hall",
                                              [f"+155508200{n}" for n in range(3)])

    board.get_by_role("button", name="Admit next into Town hall").click()
    waiting(board, callers[0]).wait_for(state="detached", timeout=TIMEOUT * 3)
    assert waiting(board, callers[1]).count() == 1 and waiting(board, callers[2]).count() == 1
    board.get_by_role("button", name="Admit all into Town hall").click()
    board.locator("#action-submit").click()  # it asks first: everyone waiting joins
    for caller in callers[1:]:
        waiting(board, caller).wait_for(state="detached", timeout=TIMEOUT * 3)
    eventually(lambda: set(callers) <= sim_members(sim, "Town hall"), "all three are in the conference")

    # Lock the open room's conference from its live view: the badge shows, on the board's card too.
    first = dial(sim, "+15550820100", OPEN_ROOM)
    eventually(lambda: first in sim_members(sim, "Open room"), "the open room's conference runs")
    card = board.locator("#live-conferences .conference-card", has_text="Open room")
    card.wait_for(timeout=TIMEOUT * 3)
    live = logged_in_page(browser, server)
    live.goto(f"{server.url}/conferences/{card.get_attribute('data-conference-id')}/")
    assert live.get_by_role("button", name="Unlock").get_attribute("aria-disabled") == "true"
    live.get_by_role("button", name="Lock", exact=True).click()
    live.locator("#action-submit").click()
    live.locator("#conference-summary .badge.locked").wait_for(timeout=TIMEOUT)
    card.locator(".badge.locked").wait_for(timeout=TIMEOUT)
    late = dial(sim, "+15550820101", OPEN_ROOM)
    waiting(board, late).wait_for(timeout=TIMEOUT * 3)
    live.get_by_role("button", name="Unlock").click()
    waiting(board, late).wait_for(state="detached", timeout=TIMEOUT * 3)
    eventually(lambda: late in sim_members(sim, "Open room"), "unlocking lets the caller in")
    board.screenshot(path=str(ARTIFACTS / "admit-and-lock-board.png"), full_page=True)
    for call in (host, *callers, first, late):
        sim.hangup(call)
    for page in (board, live):
        page.context.close()


def test_on_a_phone_admitting_into_a_full_conference_says_who_still_waits(browser, dial_in):
    from tests.fixtures_dial_in import PANEL, PANEL_HOST

    sim, server, api = dial_in
    phone = logged_in_page(browser, server, viewport=(390, 844))
    # The host takes one of the panel's three places.
    host, callers = host_then_callers_waiting(sim, phone, PANEL_HOST, PANEL, "Panel", [f"+155508400{n}" for n in range(3)])

    phone.get_by_role("button", name="Admit all into Panel").click()
    phone.locator("#action-submit").click()
    told = phone.locator(".toast.info", has_text="Panel is full at 3 places: 1 more caller waits until someone leaves.")
    told.wait_for(timeout=TIMEOUT)
    for caller in callers[:2]:
        waiting(phone, caller).wait_for(state="detached", timeout=TIMEOUT * 3)
    assert waiting(phone, callers[2]).count() == 1  # still listed: nothing pretends they were let in
    told.click()  # a tap dismisses it

    # Once they are in, the waiting room says the conference is full, and its Admit buttons say why they wait.
    heading = phone.locator('#queues .queue[data-room="Panel"] h3')
    heading.filter(has_text="full: all 3 places are taken").wait_for(timeout=TIMEOUT * 3)
    admit_next = phone.get_by_role("button", name="Admit next into Panel")
    assert admit_next.get_attribute("aria-disabled") == "true"
    joins = len(sim.requests_to("/actions/join"))
    admit_next.click(force=True)  # (Playwright waits for an aria-disabled button to be enabled; a finger does not)
    phone.locator(".toast.info", has_text="Panel is full: all 3 places are taken. Admit once someone leaves.").wait_for(
        timeout=TIMEOUT)
    ARTIFACTS.mkdir(exist_ok=True)
    phone.screenshot(path=str(ARTIFACTS / "admit-full-phone.png"))
    desktop = logged_in_page(browser, server)  # the same, on a desktop's board opened now
    desktop.locator('#queues .queue[data-room="Panel"] h3', has_text="full: all 3 places are taken").wait_for()
    assert desktop.get_by_role("button", name="Admit all into Panel").get_attribute("aria-disabled") == "true"
    assert "waiting room on · 1 moderator number · 3 places" in desktop.locator('li.room[data-room="Panel"]').inner_text()
    desktop.screenshot(path=str(ARTIFACTS / "admit-full-desktop.png"))
    desktop.context.close()
    assert len(sim.requests_to("/actions/join")) == joins and waiting(phone, callers[2]).count() == 1
    assert set(callers[:2]) <= sim_members(sim, "Panel")

    sim.hangup(callers[0])  # a place frees: the buttons work again, and the next caller is let in
    heading.filter(has_not_text="full").wait_for(timeout=TIMEOUT * 3)
    admit_next.click()
    waiting(phone, callers[2]).wait_for(state="detached", timeout=TIMEOUT * 3)
    eventually(lambda: callers[2] in sim_members(sim, "Panel"), "the next caller takes the freed place")
    for call in (host, *callers[1:]):
        sim.hangup(call)
    phone.context.close()


def test_remove_and_ban_from_the_row_menu_then_lift_it(browser, dial_in):
    from tests.fixtures_dial_in import OPEN_ROOM

    sim, server, api = dial_in
    host, pest = dial(sim, "+15550830001", OPEN_ROOM), dial(sim, "+15550830002", OPEN_ROOM)
    eventually(lambda: {host, pest} <= sim_members(sim, "Open room"), "both are in the room's conference")
    page = logged_in_page(browser, server)
    page.goto(f"{server.url}/")
    card = page.locator("#live-conferences .conference-card", has_text="Open room")
    card.wait_for(timeout=TIMEOUT * 3)
    page.goto(f"{server.url}/conferences/{card.get_attribute('data-conference-id')}/")
    row = page.locator(f'#participants tr[data-call-control-id="{pest}"]')
    row.get_by_role("button", name="More actions for +15550830002").click()
    page.get_by_role("menuitem", name="Remove and ban…").click()
    page.select_option("#f-duration", label="for good")
    assert "danger" in page.locator("#action-submit").get_attribute("class")
    page.locator("#action-submit").click()
    row.locator(".badge", has_text="left").wait_for(timeout=TIMEOUT * 3)
    ban = page.locator("#bans .ban", has_text="+15550830002")
    ban.wait_for(timeout=TIMEOUT)
    assert "for good" in ban.inner_text()
    eventually(lambda: sim_call(sim, pest)["state"] == "hangup", "the banned caller is hung up")
    page.screenshot(path=str(ARTIFACTS / "ban.png"))
    ban.get_by_role("button", name="Lift the ban on +15550830002").click()
    ban.wait_for(state="detached", timeout=TIMEOUT)
    back = dial(sim, "+15550830002", OPEN_ROOM)
    eventually(lambda: back in sim_members(sim, "Open room"), "lifted: the number joins again")
    for call in (host, back):
        sim.hangup(call)
    page.context.close()


def test_a_listen_only_room_shows_its_callers_muted_and_a_pin_room_lets_in_who_knows_the_pin(browser, dial_in):
    from tests.fixtures_dial_in import LECTURE, LECTURER, VAULT

    sim, server, api = dial_in
    board = logged_in_page(browser, server)
    lecturer, listener = dial(sim, LECTURER, LECTURE), dial(sim, "+15550840001", LECTURE)
    card = board.locator("#live-conferences .conference-card", has_text="Lecture")
    card.wait_for(timeout=TIMEOUT * 3)
    live = logged_in_page(browser, server)
    live.goto(f"{server.url}/conferences/{card.get_attribute('data-conference-id')}/")
    listening = live.locator(f'#participants tr[data-call-control-id="{listener}"]')
    listening.locator(".badge", has_text="muted").wait_for(timeout=TIMEOUT * 3)
    live.locator(f'#participants tr[data-call-control-id="{lecturer}"] .badge', has_text="joined").wait_for(timeout=TIMEOUT)
    assert live.locator(f'#participants tr[data-call-control-id="{lecturer}"] .badge.muted').count() == 0
    listening.get_by_role("button", name="Unmute").click()  # the lecturer lets a listener speak
    listening.locator(".badge.muted").wait_for(state="detached", timeout=TIMEOUT)

    # Vault asks for a PIN: the caller shows in its waiting room only once they entered the right one.
    caller = dial(sim, "+15550840002", VAULT)
    eventually(lambda: sim.requests_to("/actions/gather_using_speak"), "the caller is asked for the PIN")
    assert waiting(board, caller).count() == 0
    sim.press(caller, "4321#")
    waiting(board, caller).wait_for(timeout=TIMEOUT * 3)
    assert "4321" not in board.content()
    board.screenshot(path=str(ARTIFACTS / "pin-room-board.png"), full_page=True)
    for call in (lecturer, listener, caller):
        sim.hangup(call)
    for page in (board, live):
        page.context.close()
