"""In a real Chromium: live captions. Callers of a room that captions them speak (the simulator's phone side); two
readers' tabs, a desk's and a phone's, show each caller's line being said replaced in place, then the final line
once; an observer's tab has no captions at all; a moderator switches captions off with the mouse and on with the
keyboard; a line that says the room's keyword is marked and announced on the board; once the conference has
ended, its transcript is found by a search and stays on its page. Axe-core and screenshots, as for every screen."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.fixtures_browser import logged_in_page
from tests.fixtures_dial_in import CAPTIONED, dashboard_conference, dial, sim_call
from tests.fixtures_live_server import eventually
from tests.test_browser_screens import SCREENS, check_screen

pytestmark = pytest.mark.browser

WAIT = 10_000  # ms: what the page must show soon, with slack for a loaded 2-core CI machine
DESKTOP, PHONE = (1280, 800), (390, 844)
ADA, BOB, CAROL = "+15550741", "+15550742", "+15550743"

# Installed before the page's own scripts: counts the captions snapshots (the socket is open and the pane is
# the server's), and records the pane after every change to it, for assertions about what a reader could see
# at any moment (the simulator's interim results come a fraction of a second apart).
RECORDER = """
window.captionSnapshots = 0;
window.captionStates = [];
document.addEventListener('captions-snapshot', () => { window.captionSnapshots += 1; });
document.addEventListener('alerts-snapshot', () => { window.captionSnapshots += 1; });
document.addEventListener('DOMContentLoaded', () => {
  const pane = document.getElementById('captions');
  if (!pane) return;
  const record = () => window.captionStates.push({
    live: [...pane.querySelectorAll('#caption-live li')].map((li) => [li.dataset.leg, li.querySelector('.said').textContent]),
    finals: [...pane.querySelectorAll('#caption-lines li')].map((li) => [li.dataset.key, li.querySelector('.said').textContent]),
  });
  new MutationObserver(record).observe(pane, { childList: true, subtree: true, characterData: true });
  record();
});
"""


def open_tab(browser, server, path: str, username: str = "moderator", viewport=DESKTOP):
    page = logged_in_page(browser, server, username, viewport)
    page.add_init_script(RECORDER)
    page.goto(f"{server.url}{path}")
    return page


def connected(page) -> None:
    """The page's socket is open and its snapshot shown (a reader's: the captions pane, or the board's alerts)."""
    page.wait_for_function("() => window.captionSnapshots > 0", timeout=WAIT)


def finals(page) -> list[str]:
    return page.locator("#caption-lines li.caption .said").all_inner_texts()


def states(page) -> list[dict]:
    return page.evaluate("() => window.captionStates")


def assert_seen_once_each(page, leg: str, text: str) -> list[str]:
    """Every state of the pane the reader could have seen: at most one line being said (and one per caller), no
    final line twice; the caller's line grew word by word before its final line. The interims seen are returned."""
    seen = states(page)
    for state in seen:
        assert len(state["live"]) <= 1, f"two lines being said at once: {state['live']}"
        keys = [key for key, _ in state["finals"]]
        assert len(keys) == len(set(keys)), f"a final line shows twice: {state['finals']}"
    interims = [said for state in seen for who, said in state["live"] if who == leg]
    assert interims, f"the line being said never showed ({len(seen)} states seen)"
    for earlier, later in zip(interims, interims[1:], strict=False):
        assert text.startswith(later) and len(later) >= len(earlier), f"not a growing line: {interims}"
    return interims


def row(page, call_control_id):
    return page.locator(f'#participants tr[data-call-control-id="{call_control_id}"]')


def live_line(page, leg: str):
    return page.locator(f'#caption-live li.caption.live[data-leg="{leg}"]')


def final_line(page, text: str):
    return page.locator("#caption-lines li.caption", has=page.locator(".said", has_text=text))


def say(sim, monkeypatch, leg: str, text: str, readers) -> None:
    """The caller says `text`; every reader's tab shows its line being said, then its final line once. A caller's
    pace, 0.25 s a word group: the simulator's 50 ms is quicker than a loaded CI machine applies webhooks one by
    one (the interim results would all be applied with the final one, and never show)."""
    for page in readers:
        page.evaluate("() => { window.captionStates = []; }")
    monkeypatch.setattr(sim.state, "SPEECH_GAP", 0.25)
    assert sim.say(leg, text) == {"result": "ok"}
    for page in readers:
        expect(final_line(page, text)).to_have_count(1, timeout=WAIT)
        expect(page.locator("#caption-live li")).to_have_count(0, timeout=WAIT)
        assert_seen_once_each(page, leg, text)


def test_two_readers_follow_captions_an_observer_has_none_and_the_transcript_is_found_after_the_end(
        browser, dial_in, monkeypatch):
    sim, server, api = dial_in
    ada = dial(sim, ADA, CAPTIONED)
    eventually(lambda: sim_call(sim, ada)["transcribing"], "the room's conference transcribes its first caller")
    bob, carol = dial(sim, BOB, CAPTIONED), dial(sim, CAROL, CAPTIONED)
    eventually(lambda: all(sim_call(sim, leg)["transcribing"] for leg in (bob, carol)), "and every caller who joins")
    conference = eventually(lambda: dashboard_conference(api, "Captioned"), "the dashboard shows the conference")
    path = f"/conferences/{conference['id']}/"

    board = open_tab(browser, server, "/")
    desk = open_tab(browser, server, path)
    phone = open_tab(browser, server, path, viewport=PHONE)  # the same moderator, on a phone
    observer = open_tab(browser, server, path, "observer")
    readers = (desk, phone)
    for page in (board, *readers):
        connected(page)
    for page in readers:
        expect(page.locator("#captions-title")).to_have_text("Live captions")
        expect(page.locator("#participants .badge.cc")).to_have_count(3, timeout=WAIT)
    desk.locator("#viewers li", has_text="observer").wait_for(timeout=WAIT)  # the observer's socket is open too

    # 1. A caller speaks: the line being said grows in place in both tabs, then is one final line; then another.
    first, second = "Good morning everyone and welcome to the review", "Thanks Ada the numbers look good this quarter"
    say(sim, monkeypatch, ada, first, readers)
    say(sim, monkeypatch, bob, second, readers)
    for page in readers:
        assert finals(page) == [first, second]
        expect(final_line(page, first).locator(".who")).to_have_text(ADA)
        expect(final_line(page, second).locator(".who")).to_have_text(BOB)

    # 2. The observer (no view_captions) has no captions panel, and was sent none of it.
    assert observer.locator("#captions, .captions-panel, #captions-title").count() == 0
    assert first not in observer.content() and second not in observer.content()

    # 3. Captions off with the mouse: the CC badges go in every tab; on again with the keyboard.
    desk.get_by_role("button", name="Captions off").click()
    for page in readers:
        expect(page.locator("#participants .badge.cc")).to_have_count(0, timeout=WAIT)
    eventually(lambda: not any(sim_call(sim, leg)["transcribing"] for leg in (ada, bob, carol)),
               "Telnyx stops transcribing everyone")
    on = desk.get_by_role("button", name="Captions on")
    expect(on).not_to_have_attribute("aria-disabled", "true", timeout=WAIT)
    on.focus()
    desk.keyboard.press("Enter")
    for page in readers:
        expect(page.locator("#participants .badge.cc")).to_have_count(3, timeout=WAIT)
    eventually(lambda: all(sim_call(sim, leg)["transcribing"] for leg in (ada, bob, carol)),
               "Telnyx transcribes everyone again")

    # 4. A slow speaker is mid-line (the next word a minute away): both tabs show the line being said, the
    # caller's CC badge lit: screenshots, light and dark. She hangs up mid-line: her line goes.
    for page in readers:
        page.evaluate("() => { window.captionStates = []; }")
    monkeypatch.setattr(sim.state, "SPEECH_GAP", 60.0)
    assert sim.say(carol, "Before we close I have one more question about the budget") == {"result": "ok"}
    for page, size in ((desk, "desktop"), (phone, "phone")):
        expect(live_line(page, carol).locator(".said")).to_have_text("Before we close", timeout=WAIT)
        expect(row(page, carol).locator(".badge.cc.live")).to_have_count(1)
        check_screen(page, f"captions-live-{size}")
        page.locator(".captions-panel").screenshot(path=str(SCREENS / f"captions-panel-live-{size}.png"))
        page.emulate_media(color_scheme="dark")
        check_screen(page, f"captions-live-dark-{size}")
        page.emulate_media(color_scheme="light")
        seen = states(page)
        assert seen and all(len(state["live"]) <= 1 for state in seen), seen
        expect(live_line(page, carol)).to_have_count(1)  # still mid-line: the screenshots show it
    sim.hangup(carol)
    for page in readers:
        expect(live_line(page, carol)).to_have_count(0, timeout=WAIT)
        expect(row(page, carol).locator(".badge", has_text="left")).to_have_count(1, timeout=WAIT)
        assert finals(page) == [first, second]

    # 5. The room's keyword: the final line is marked in both tabs, and the board announces it.
    keyword = "I would like a refund for last month please"
    say(sim, monkeypatch, ada, keyword, readers)
    for page in readers:
        expect(final_line(page, keyword)).to_have_class("caption alert")
        expect(final_line(page, keyword).locator(".badge.keyword")).to_have_text("refund")
        assert finals(page) == [first, second, keyword]
    alert = board.locator("#alerts li.alert-item", has_text=keyword)
    expect(alert).to_have_count(1, timeout=WAIT)
    expect(alert.locator(".badge.keyword")).to_have_text("refund")
    expect(alert.get_by_role("link", name="Captioned")).to_have_attribute("href", path)
    check_screen(board, "captions-board-alert-desktop")
    assert keyword not in observer.content()

    # 6. Everyone hangs up: the conference ends; its page calls the pane a transcript, every line still there.
    for leg in (ada, bob):
        sim.hangup(leg)
    for page in readers:
        page.locator("#conference-summary .summary[data-status=completed]").wait_for(timeout=WAIT * 2)
    for page in readers:
        expect(page.locator("#captions-title")).to_have_text("Transcript", timeout=WAIT)  # the open tab too
        expect(page.locator("#captions-follow")).to_have_count(0)
        page.reload()
        connected(page)
        expect(page.locator("#captions-title")).to_have_text("Transcript")
        assert finals(page) == [first, second, keyword]

    # Search every transcript: type, press Enter; the line is found, the word marked, a link to the conference.
    for page, size in ((desk, "desktop"), (phone, "phone")):
        page.goto(f"{server.url}/transcripts/")
        page.get_by_label("Find what was said, in every conference").fill("refund")
        page.keyboard.press("Enter")
        page.wait_for_url("**/transcripts/?q=refund")
        hit = page.locator(".hits li.hit", has_text="last month")
        expect(hit).to_have_count(1)
        assert "I would like a <mark>refund</mark> for last month please" in hit.locator(".said").inner_html()
        expect(hit.get_by_role("link", name="Captioned")).to_have_attribute("href", path)
        check_screen(page, f"captions-search-{size}")
    desk.locator(".hits li.hit", has_text="last month").get_by_role("link", name="Captioned").click()
    desk.wait_for_url(f"**{path}")
    expect(desk.locator("#captions-title")).to_have_text("Transcript")
    assert finals(desk) == [first, second, keyword]
    check_screen(desk, "captions-transcript-desktop")
    for page in (board, *readers, observer):
        page.context.close()
