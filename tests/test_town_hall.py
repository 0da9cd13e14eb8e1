"""The bar, end to end: a town hall of 1,000 callers who dial one number within seconds, enter its PIN, join
muted with live captions and raise their hands. The product answers and routes every call itself, on one
worker, through the Telnyx simulator: no delivery is retried (each webhook answered within Telnyx's 2 s, so
no retry storm), no event is lost, and every command it decides is sent exactly once.

Telnyx holds at most 800 callers in a conference (`max_participants`): the other 200 wait in the room's
waiting room, and each place that frees takes the first of them in."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fixtures_dial_in import dashboard_conference, dashboard_waiting
from tests.fixtures_live_server import simulator_stack

CALLERS = 1000
SEATS = 800  # Telnyx's most
ROOM = "Big town hall"
NUMBER = "+15550900"
PIN = "2468"
LEAVING = 100
HANDS = 80
HUDDLE, HUDDLE_NUMBER = "Huddle", "+15550910"


@pytest.fixture(scope="module")
def town_hall(tmp_path_factory):
    def make_room(server) -> None:
        server.manage("rooms", "add", ROOM, "--number", NUMBER, "--participant-pin", PIN, "--mute-on-entry",
                      "--captions", "--max-participants", str(SEATS))
        server.manage("rooms", "add", HUDDLE, "--number", HUDDLE_NUMBER, "--max-participants", "2")

    with simulator_stack(tmp_path_factory.mktemp("town-hall"), ring_timeout=300, setup=make_room) as (sim, server):
        api = server.client()
        try:
            yield sim, server, api
        finally:
            api.close()


def until(condition, what: str, timeout: float = 240.0, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while not (outcome := condition()):
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(every)
    return outcome


def commands_per_call(sim, action: str) -> Counter:
    """How many times each call was sent `action` (a path /v2/calls/<id>/actions/<action>)."""
    return Counter(r["path"].split("/")[3] for r in sim.state_requests() if r["path"].endswith(f"/actions/{action}"))


def joined_legs(api) -> dict[str, dict]:
    conference = dashboard_conference(api, ROOM)
    return {p["call_control_id"]: p for p in conference["participants"] if p["status"] == "joined"} if conference else {}


def in_order_waiting(api) -> list[str]:
    queue = next(q for q in api.get("/api/queues").json()["queues"] if q["calls"])
    return [c["call_control_id"] for c in sorted(queue["calls"], key=lambda c: c["position"])]


def test_a_full_conference_keeps_the_next_caller_waiting_until_a_place_frees(town_hall):
    sim, server, api = town_hall
    callers = {sim.inbound(f"+1557000000{i}", HUDDLE_NUMBER)["call_control_id"] for i in range(3)}
    until(lambda: len(sim.members(HUDDLE)) == 2 and len(dashboard_waiting(api)) == 1, "two in, the third waits")
    (waiting,) = dashboard_waiting(api)
    queue = next(q["name"] for q in api.get("/api/queues").json()["queues"] if q["calls"])
    assert set(sim.members(HUDDLE)) == callers - {waiting}
    board = api.get("/").text
    assert "1 waiting · full: each place that frees takes the next in" in board, "the board says why"
    assert 'aria-label="Admit next into Huddle"' not in board, "admitting into a full conference would be refused"
    leaving = sim.members(HUDDLE)[0]
    sim.hangup(leaving)
    until(lambda: set(sim.members(HUDDLE)) == callers - {leaving}, "the place that freed takes the waiting caller in")
    until(lambda: not dashboard_waiting(api), "nobody waits any more")

    # A caller a moderator moves to the waiting room waits there for the moderator, not for a place.
    moved = sim.members(HUDDLE)[0]
    moderator = server.client()
    moderator.headers.update({"X-CSRFToken": moderator.cookies["csrftoken"], "Referer": server.url})
    answer = moderator.post(f"/api/calls/{moved}/actions/enqueue", json={"queue_name": queue})
    assert answer.status_code == 200, answer.text
    until(lambda: moved in dashboard_waiting(api), "moved to the waiting room")
    sim.hangup(next(c for c in sim.members(HUDDLE) if c != moved))
    time.sleep(2)  # what the freed place would have taken in by now
    assert moved in dashboard_waiting(api) and moved not in sim.members(HUDDLE)
    assert 'aria-label="Admit next into Huddle"' in api.get("/").text, "the moderator admits them"
    sim.hangup(moved)
    until(lambda: not dashboard_waiting(api), "(the town hall counts its own waiting callers)")


@pytest.mark.slow
def test_a_thousand_callers_dial_in_with_a_pin_join_muted_captioned_and_raise_hands(town_hall):
    sim, server, api = town_hall
    with ThreadPoolExecutor(16) as pool:
        callers = list(pool.map(lambda i: sim.inbound(f"+1556{i:07d}", NUMBER)["call_control_id"], range(CALLERS)))
        entered: set[str] = set()

        def enter_the_pin_when_asked() -> bool:  # as callers do: a PIN prompt waits 20 s for the keys
            asked = set(commands_per_call(sim, "gather_using_speak")) & set(callers) - entered
            list(pool.map(lambda call: sim.press(call, PIN + "#"), asked))
            entered.update(asked)
            return len(entered) == CALLERS

        until(enter_the_pin_when_asked, "every caller is asked for the PIN, and enters it")

        # The conference fills; the rest wait for a place, and the moderator sees them waiting.
        until(lambda: len(sim.members(ROOM)) == SEATS and len(dashboard_waiting(api)) == CALLERS - SEATS,
              f"{SEATS} callers in the conference, {CALLERS - SEATS} waiting")
        joined = until(lambda: (legs := joined_legs(api)) and len(legs) == SEATS and legs, "the dashboard shows them")
        assert set(joined) == set(sim.members(ROOM))
        assert all(leg["muted"] for leg in joined.values()), "a town hall's callers join muted"
        until(lambda: all(leg["transcribing"] for leg in joined_legs(api).values()), "every caller in it is captioned")

        # Places free: the first who waited take them, in order.
        first_waiting = in_order_waiting(api)[:LEAVING]
        leaving = sorted(joined)[:LEAVING]
        list(pool.map(sim.hangup, leaving))
        until(lambda: set(sim.members(ROOM)) == (set(joined) - set(leaving)) | set(first_waiting),
              f"the first {LEAVING} who waited took the places that freed")
        until(lambda: len(dashboard_waiting(api)) == CALLERS - SEATS - LEAVING, "and left the waiting room")
        until(lambda: (legs := joined_legs(api)).keys() >= set(first_waiting)
              and all(leg["transcribing"] for leg in legs.values()), "they are in the roster, captioned too")

        raising = sorted(sim.members(ROOM))[:HANDS]
        list(pool.map(lambda call: sim.press(call, "*1"), raising))

    def hands():
        return {ccid for ccid, leg in joined_legs(api).items() if leg["hand_raised_at"]}

    until(lambda: hands() == set(raising), f"{HANDS} hands are up, and no other")
    sim.wait_for_webhooks(timeout=60)

    # Every webhook answered at its first delivery: nothing for Telnyx to retry, nothing lost.
    deliveries = sim.deliveries()
    assert all(d.outcome == "delivered" for d in deliveries), Counter(d.outcome for d in deliveries)
    retried = [d for d in deliveries if len(d.attempts) > 1]
    assert not retried, f"{len(retried)} of {len(deliveries)} webhooks were delivered again, e.g. {retried[0].attempts}"

    # Every command the product decided, sent once: answer and ask for the PIN (everyone), caption (everyone who
    # got in), join (everyone who got in but the first, who started the conference), enqueue (everyone else).
    got_in = set(joined) | set(first_waiting)
    for action, who in (("answer", set(callers)), ("gather_using_speak", set(callers)),
                        ("transcription_start", got_in), ("enqueue", set(callers) - set(joined))):
        sent = {call: times for call, times in commands_per_call(sim, action).items() if call in set(callers)}
        assert set(sent) == who and set(sent.values()) == {1}, (action, len(sent), Counter(sent.values()))
    # Joins: one for each caller who got in at once (but the first, who started it), one refused (full) for each
    # who waited, and one more for each who then took a freed place.
    joins = Counter(json.loads(r["body"])["call_control_id"] for r in sim.state_requests()
                    if r["path"].endswith("/actions/join"))
    assert Counter(joins[c] for c in joined) == {1: SEATS - 1, 0: 1}
    assert Counter(joins[c] for c in set(callers) - set(joined)) == {2: LEAVING, 1: CALLERS - SEATS - LEAVING}
    assert all(joins[c] == 2 for c in first_waiting)

    # The live view, as a moderator loads it: every caller in it, the hands, who waits.
    conference_id = dashboard_conference(api, ROOM)["id"]
    page = api.get(f"/conferences/{conference_id}/").text
    assert page.count('data-status="joined"') == SEATS, page[:500]
    assert f'Hands raised <span class="count">{HANDS}</span>' in page
