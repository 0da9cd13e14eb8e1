"""In a real Chromium: the board and live view follow webhooks without reloading, in every tab, across a
server restart; a moderator's click mutes a leg in another tab; a failure shows Telnyx's reason."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.fixtures_browser import ARTIFACTS, TIMEOUT, logged_in_page
from tests.telnyx_events import at, encode, event, leg, sign

pytestmark = pytest.mark.browser

def deliver(server, *documents):
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for document in documents:
            body = encode(document)
            assert client.post("/webhooks/telnyx", content=body, headers=sign(body)).status_code == 200


def row(page, call_control_id):
    return page.locator(f'tr[data-call-control-id="{call_control_id}"]')


def moderator_api(server):
    """The moderator's API client, as another tab would post."""
    api = server.client()
    api.headers.update({"X-CSRFToken": api.cookies["csrftoken"], "Referer": server.url})
    return api


def start_conference(sim, server, name: str, numbers: list[str], **join) -> tuple[str, list[str]]:
    """A conference made through the API from the first number's call, the others joined (with `join`'s options)."""
    legs = [sim.call(number, "+15550100")["call_control_id"] for number in numbers]
    api = moderator_api(server)
    response = api.post("/api/conferences", json={"call_control_id": legs[0], "name": name})
    assert response.status_code == 200, response.text
    conference_id = response.json()["data"]["id"]
    for joining in legs[1:]:
        response = api.post(f"/api/conferences/{conference_id}/actions/join", json={"call_control_id": joining, **join})
        assert response.status_code == 200, response.text
    api.close()
    return conference_id, legs


def two_tabs(browser, server, conference_id: str, joined: str):
    """A moderator's tab and an observer's on the conference, once `joined` shows there as joined."""
    pages = []
    for username in ("moderator", "observer"):
        page = logged_in_page(browser, server, username)
        page.goto(f"{server.url}/conferences/{conference_id}/")
        pages.append(page)
    row(pages[0], joined).locator(".badge", has_text="joined").wait_for(timeout=TIMEOUT * 2)
    return pages


def test_anonymous_page_redirects_to_login(browser, dashboard):
    page = browser.new_page()
    page.goto(f"{dashboard.url}/")
    assert "/accounts/login/" in page.url
    page.close()


def test_board_and_live_view_follow_webhooks_in_two_tabs_and_across_a_restart(browser, dashboard):
    conf = {"conference_id": "browser-1", "connection_id": "c"}
    board = logged_in_page(browser, dashboard)
    deliver(dashboard, event("conference.created", {**leg("host"), **conf}, at(1), occurred_in_payload=True))
    card = board.locator('#live-conferences [data-conference-id="browser-1"]')
    card.wait_for(timeout=TIMEOUT)

    first = logged_in_page(browser, dashboard)
    first.goto(f"{dashboard.url}/conferences/browser-1/")
    second = logged_in_page(browser, dashboard, "observer")
    second.goto(f"{dashboard.url}/conferences/browser-1/")
    for page in (first, second):
        page.locator("#viewers li", has_text="observer").wait_for(timeout=TIMEOUT)

    deliver(dashboard, event("conference.participant.joined", {**leg("alice"), **conf}, at(2)),
            event("conference.participant.joined", {**leg("bob"), **conf}, at(3)))
    for page in (first, second):
        row(page, "v3:bob").locator(".badge", has_text="joined").wait_for(timeout=TIMEOUT)
        row(page, "v3:alice").wait_for(timeout=TIMEOUT)
    assert first.locator("#announcer").inner_text().endswith("joined")

    deliver(dashboard, event("conference.floor.changed", {**leg("bob"), **conf}, at(4), occurred_in_payload=True))
    row(second, "v3:bob").locator(".badge", has_text="speaking").wait_for(timeout=TIMEOUT)
    card.locator(".floor", has_text="bob").wait_for(timeout=TIMEOUT)
    ARTIFACTS.mkdir(exist_ok=True)
    first.screenshot(path=str(ARTIFACTS / "live-view.png"), full_page=True)
    board.screenshot(path=str(ARTIFACTS / "board.png"), full_page=True)

    deliver(dashboard, event("conference.participant.left", {**leg("bob"), **conf}, at(5)))
    for page in (first, second):
        row(page, "v3:bob").locator(".badge", has_text="left").wait_for(timeout=TIMEOUT)
    second.check("#hide-left")  # remembered across visits
    row(second, "v3:bob").wait_for(state="hidden")

    # The server restarts: the pages say so, reconnect, and catch up with what happened meanwhile.
    dashboard.stop()
    first.locator("#connection", has_text="Reconnecting").wait_for(timeout=TIMEOUT)
    dashboard.start()
    deliver(dashboard, event("conference.participant.left", {**leg("alice"), **conf}, at(6)),
            event("conference.ended", {**conf, "reason": "all_left"}, at(7), occurred_in_payload=True))
    for page in (first, second):
        row(page, "v3:alice").locator(".badge", has_text="left").wait_for(timeout=TIMEOUT * 4)
        page.locator("#conference-summary", has_text="Attendance").wait_for(timeout=TIMEOUT)
        assert page.locator("#connection").is_hidden()
    # Ended, everyone has left: a remembered "hide who left" hides no one, and is put away with "hands first".
    roster = second.locator("#participants tr.leg")
    assert roster.count() == 2 and all(roster.nth(i).is_visible() for i in range(2))
    assert second.locator("#hide-left").is_hidden() and second.locator("#hands-first").is_hidden()
    board.locator('#ended-conferences [data-conference-id="browser-1"]').wait_for(timeout=TIMEOUT * 4)
    assert board.locator('#live-conferences [data-conference-id="browser-1"]').count() == 0
    for page in (board, first, second):
        page.context.close()


def test_a_click_mutes_in_every_tab_and_a_failure_shows_telnyx_reason(browser, sim_stack):
    sim, server = sim_stack
    conference_id, (host, guest) = start_conference(sim, server, "Browser mute", ["+15550101", "+15550102"])
    moderator, observer = two_tabs(browser, server, conference_id, guest)

    row(moderator, guest).get_by_role("button", name="Mute").click()
    row(observer, guest).locator(".badge", has_text="muted").wait_for(timeout=TIMEOUT)
    # Every tab's timeline says who did it, to whom, by the caller's number.
    observer.locator("#timeline li", has_text="moderator muted +15550102").wait_for(timeout=TIMEOUT)
    assert next(p for c in sim.sim_state()["conferences"] if c["id"] == conference_id
                for p in c["participants"] if p["call_control_id"] == guest)["muted"] is True
    assert observer.locator(f'tr[data-call-control-id="{guest}"] button').count() == 0 or \
        not observer.locator(f'tr[data-call-control-id="{guest}"] button').first.is_visible()

    sim.fault("/v2/conferences/*/actions/hold", status=422, code="90018", title="Call has already ended",
              detail="This call is no longer active and can't receive commands.")
    row(moderator, guest).get_by_role("button", name="Hold…").click()
    moderator.locator("#action-submit").click()
    # Telnyx's reason, and which action it refused, for whom.
    moderator.locator(".toast.error", has_text="Hold (+15550102) refused. Call has already ended: This call is no "
                                                "longer active").wait_for(timeout=TIMEOUT)
    assert row(moderator, guest).locator(".badge", has_text="on hold").count() == 0
    moderator.screenshot(path=str(ARTIFACTS / "action-failure.png"), full_page=True)
    for page in (moderator, observer):
        page.context.close()


def test_the_dialogs_the_registry_declares_send_what_the_moderator_chose(browser, sim_stack):
    """Speak (a textarea and selects from the enums) and record (a checkbox that sends a value) go to Telnyx with
    the moderator's choices; a destructive confirmation looks destructive."""
    sim, server = sim_stack
    conference_id, (host,) = start_conference(sim, server, "Browser dialogs", ["+15550111"])
    page = logged_in_page(browser, server)
    page.goto(f"{server.url}/conferences/{conference_id}/")
    row(page, host).wait_for(timeout=TIMEOUT * 2)

    page.get_by_role("button", name="Speak…").click()
    page.fill("#f-payload", "The meeting starts in one minute.")
    page.select_option("#f-language", label="English (UK)")
    page.locator("#action-submit").click()
    page.locator(".toast", has_text="done").first.wait_for(timeout=TIMEOUT)
    (speak,) = [r for r in sim.requests_to("/actions/speak") if conference_id in r["path"]]
    assert json.loads(speak["body"]) | {"command_id": None} == {
        "payload": "The meeting starts in one minute.", "voice": "female", "language": "en-GB",
        "payload_type": "text", "command_id": None,
    }

    # A refusal about the fields together says it in the dialog, by the fields' labels (not the body's names).
    page.get_by_role("button", name="Play…").click()
    page.locator("#action-submit").click()
    page.locator("#action-dialog .dialog-error").wait_for(timeout=TIMEOUT)
    assert "“Audio URL” or “a stored media name” is required" in page.locator("#action-dialog .dialog-error").inner_text()
    page.get_by_role("button", name="Cancel").click()

    page.get_by_role("button", name="● Record…").click()
    page.check("#f-trim")
    page.locator("#action-submit").click()
    page.locator("#conference-summary .badge.rec", has_text="recording").wait_for(timeout=TIMEOUT)
    (record,) = [r for r in sim.requests_to("/actions/record_start") if conference_id in r["path"]]
    assert json.loads(record["body"])["trim"] == "trim-silence"

    page.get_by_role("button", name="End conference…").click()
    assert "danger" in page.locator("#action-submit").get_attribute("class")
    page.get_by_role("button", name="Cancel").click()
    page.context.close()


def test_a_moderator_names_a_caller_from_the_row_menu_by_keyboard_and_every_tab_shows_it(browser, sim_stack):
    sim, server = sim_stack
    conference_id, (host, guest) = start_conference(sim, server, "Browser names", ["+15550121", "+15550122"])
    moderator, observer = two_tabs(browser, server, conference_id, guest)

    # Keyboard only: the row's "More" button, ArrowDown opens its menu on the first item, Enter opens the dialog.
    row(moderator, guest).get_by_role("button", name="More actions for +15550122").focus()
    moderator.keyboard.press("ArrowDown")
    assert moderator.evaluate("document.activeElement.textContent") == "Name this caller…"
    moderator.keyboard.press("Enter")
    moderator.locator("#f-name").wait_for(timeout=TIMEOUT)
    moderator.keyboard.type("Grace Hopper")
    moderator.keyboard.press("Enter")
    for page in (moderator, observer):
        row(page, guest).locator(".name", has_text="Grace Hopper").wait_for(timeout=TIMEOUT)
        assert row(page, guest).locator(".number").inner_text() == "+15550122"
    observer.locator("#timeline li", has_text="moderator named +15550122 “Grace Hopper”").wait_for(timeout=TIMEOUT)
    # The dialog opens with the name it has, to change or clear it.
    row(moderator, guest).get_by_role("button", name="More actions for Grace Hopper").click()
    moderator.get_by_role("menuitem", name="Name this caller…").click()
    assert moderator.locator("#f-name").input_value() == "Grace Hopper"
    moderator.screenshot(path=str(ARTIFACTS / "name-caller.png"), full_page=True)
    moderator.get_by_role("button", name="Cancel").click()
    for page in (moderator, observer):
        page.context.close()


def test_a_raised_hand_waits_in_every_tab_until_the_moderator_unmutes_or_lowers_it(browser, sim_stack):
    sim, server = sim_stack
    conference_id, (host, guest) = start_conference(sim, server, "Browser hands", ["+15550131", "+15550132"], mute=True)
    moderator, observer = two_tabs(browser, server, conference_id, guest)

    sim.press(guest, "*1")  # the caller raises a hand on their keypad
    for page in (moderator, observer):
        page.locator("#hands .hand-item", has_text="+15550132").wait_for(timeout=TIMEOUT)
        row(page, guest).locator(".badge", has_text="hand raised").wait_for(timeout=TIMEOUT)
    assert "+15550132 raised a hand" in observer.locator("#announcer").inner_text()
    assert observer.locator("#hands button").count() == 0  # observers watch, they do not answer
    ARTIFACTS.mkdir(exist_ok=True)
    moderator.screenshot(path=str(ARTIFACTS / "raised-hand.png"))

    moderator.get_by_role("button", name="Unmute next: +15550132").click()
    for page in (moderator, observer):
        page.locator("#hands .hand-item").wait_for(state="detached", timeout=TIMEOUT)
    row(observer, guest).locator(".badge", has_text="muted").wait_for(state="detached", timeout=TIMEOUT)
    assert next(p for c in sim.sim_state()["conferences"] if c["id"] == conference_id
                for p in c["participants"] if p["call_control_id"] == guest)["muted"] is False

    sim.press(guest, "*1")
    moderator.get_by_role("button", name="Lower the hand of +15550132").click()
    observer.locator("#timeline li", has_text="moderator lowered the hand of +15550132").wait_for(timeout=TIMEOUT)
    assert observer.locator("#hands .hand-item").count() == 0
    # The timeline shows one kind of entry at a time.
    observer.select_option("#timeline-filter", "actions")
    shown = observer.locator("#timeline > li:visible")
    assert shown.count() >= 2 and all("moderator" in text for text in shown.all_inner_texts())
    observer.select_option("#timeline-filter", "arrivals")
    assert all(text.endswith("joined") for text in observer.locator("#timeline > li:visible").all_inner_texts())
    for page in (moderator, observer):
        page.context.close()


def test_a_moderator_working_by_keyboard_keeps_the_focus_and_the_menu_through_live_updates(browser, sim_stack):
    """Rows and panels are re-rendered by every update: the focus stays on the control (or the one in its place),
    an open row menu stays open, Enter in any field of a dialog sends it, and a destructive one opens on Cancel."""
    sim, server = sim_stack
    conference_id, (host, guest) = start_conference(sim, server, "Browser keyboard", ["+15550141", "+15550142"])
    page = logged_in_page(browser, server)
    page.goto(f"{server.url}/conferences/{conference_id}/")
    row(page, guest).locator(".badge", has_text="joined").wait_for(timeout=TIMEOUT * 2)

    def focused():
        return page.evaluate("() => [document.activeElement.textContent.trim(), "
                             "document.activeElement.closest('tr')?.dataset.callControlId || '']")

    # The first Tab stop skips to the roster; the toolbar is one Tab stop, and the arrow keys move along it.
    page.keyboard.press("Tab")
    assert focused()[0] == "Skip to the participants"
    page.locator('[role="toolbar"] button').first.focus()
    for key, name in (("ArrowRight", "Mute all but me"), ("End", "End conference…"), ("ArrowRight", "Mute all"),
                      ("ArrowLeft", "End conference…"), ("Home", "Mute all")):
        page.keyboard.press(key)
        assert focused()[0] == name, key
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "roster-search"

    def enter_until(badge: str, state: str) -> None:
        """Enter on the focused control; the guest's row comes back with `badge` shown (or gone)."""
        page.keyboard.press("Enter")
        row(page, guest).locator(".badge", has_text=badge).wait_for(state=state, timeout=TIMEOUT)

    # Enter on a row's Mute: the row comes back muted, with the focus on its Unmute; and back.
    row(page, guest).get_by_role("button", name="Mute").focus()
    enter_until("muted", "visible")
    assert focused() == ["Unmute", guest]
    enter_until("muted", "detached")
    assert focused() == ["Mute", guest]

    # A dialog's action re-renders the row while the dialog is still open: when it closes, the focus goes to the
    # new row's control in the place of the one that opened it (Hold… becomes Unhold), not to the page.
    row(page, guest).get_by_role("button", name="Hold…").focus()
    page.keyboard.press("Enter")
    page.locator("#f-audio_url").wait_for()
    enter_until("on hold", "visible")
    page.locator("#action-dialog").wait_for(state="hidden")
    page.wait_for_function("() => document.activeElement !== document.body")
    assert focused() == ["Unhold", guest]
    enter_until("on hold", "detached")
    assert focused() == ["Hold…", guest]

    # The row's menu, opened by keyboard, stays open while its row changes under it (another tab mutes the caller).
    row(page, guest).get_by_role("button", name="More actions for +15550142").focus()
    page.keyboard.press("ArrowDown")
    api = moderator_api(server)
    assert api.post(f"/api/conferences/{conference_id}/actions/mute",
                    json={"call_control_ids": [guest]}).status_code == 200
    api.close()
    row(page, guest).locator(".badge", has_text="muted").wait_for(timeout=TIMEOUT)
    assert page.locator("#row-menu").is_visible() and focused()[0] == "Name this caller…"
    assert row(page, guest).locator("button[data-menu]").get_attribute("aria-expanded") == "true"
    page.keyboard.press("Escape")
    assert focused() == ["More ▾", guest]
    # …but not once the caller is gone: the menu never acts for a caller who is not there.
    page.keyboard.press("ArrowDown")
    api = moderator_api(server)
    assert api.post(f"/api/conferences/{conference_id}/actions/leave", json={"call_control_id": guest}).status_code == 200
    api.close()
    page.locator("#row-menu").wait_for(state="hidden", timeout=TIMEOUT)
    assert page.evaluate("document.activeElement.id") == "legs-title"

    # Enter on a checkbox of a dialog sends the dialog (it used to press Cancel, silently).
    page.get_by_role("button", name="● Record…").click()
    page.locator("#f-trim").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Enter")
    page.locator("#conference-summary .badge.rec", has_text="recording").wait_for(timeout=TIMEOUT)
    (record,) = [r for r in sim.requests_to("/actions/record_start") if conference_id in r["path"]]
    assert json.loads(record["body"])["trim"] == "trim-silence"

    # Alone on the call, the host's whisper has no one to choose, and says so.
    row(page, host).get_by_role("button", name="Role…").click()
    page.select_option("#f-supervisor_role", "whisper")
    assert page.locator("#f-whisper_call_control_ids option").all_inner_texts() == [
        "Nobody else is on the call: a whisper would reach no one."]
    page.get_by_role("button", name="Cancel").click()

    # A destructive confirmation opens on Cancel: a stray Enter ends nothing.
    page.get_by_role("button", name="End conference…").click()
    assert page.evaluate("document.activeElement.id") == "action-cancel"
    page.keyboard.press("Enter")
    page.locator("#action-dialog").wait_for(state="hidden")
    assert not [r for r in sim.requests_to("/actions/end") if conference_id in r["path"]]
    page.context.close()
