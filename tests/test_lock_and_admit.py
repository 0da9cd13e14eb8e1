"""Locking a room's conference to new callers, and admitting a waiting room's callers in order or all at once —
end to end: the simulator's callers ring, the dashboard routes them, the moderator acts through the API."""

from __future__ import annotations

import json

from tests.fixtures_dial_in import (
    CLOSED_ROOM,
    HOST,
    OPEN_ROOM,
    PANEL,
    PANEL_HOST,
    PROFILE_PHONE,
    TOWN_HALL,
    dashboard_conference,
    dashboard_waiting,
    dial,
    sim_call,
    sim_members,
)
from tests.fixtures_live_server import eventually


def test_a_locked_conference_keeps_new_callers_waiting_until_it_is_unlocked(dial_in):
    sim, server, api = dial_in
    first = dial(sim, "+15550901", OPEN_ROOM)
    eventually(lambda: first in sim_members(sim, "Open room"), "the first caller starts the room's conference")
    conference = eventually(lambda: dashboard_conference(api, "Open room"), "the dashboard shows it")

    response = api.post(f"/api/conferences/{conference['id']}/lock", json={"locked": True})
    assert response.status_code == 200 and response.json()["data"] == {"locked": True, "admitted": []}
    assert dashboard_conference(api, "Open room")["locked"] is True
    page = api.get(f"/conferences/{conference['id']}/").text
    assert '<span class="badge locked"' in page and 'data-locked="true"' in page

    late = dial(sim, "+15550902", OPEN_ROOM)
    eventually(lambda: sim_call(sim, late)["queue"], "a caller to a locked conference waits in the room's queue")
    eventually(lambda: late in dashboard_waiting(api), "the board lists them waiting")
    mine = dial(sim, PROFILE_PHONE, OPEN_ROOM)  # a moderator's phone is let in
    eventually(lambda: mine in sim_members(sim, "Open room"), "the moderator joins the locked conference")
    assert late not in sim_members(sim, "Open room")

    response = api.post(f"/api/conferences/{conference['id']}/lock", json={"locked": False})
    assert response.json()["data"] == {"locked": False, "admitted": [late]}  # the room has no waiting room of its own
    eventually(lambda: late in sim_members(sim, "Open room"), "unlocking lets in who waited for the lock")
    eventually(lambda: not dashboard_waiting(api), "and nobody waits any more")
    timeline = api.get(f"/conferences/{conference['id']}/").text
    assert "moderator locked the conference: new callers wait" in timeline and "moderator unlocked the conference" in timeline
    for call in (first, late, mine):
        sim.hangup(call)


def test_a_waiting_room_is_admitted_one_at_a_time_in_order_or_all_at_once(dial_in):
    sim, server, api = dial_in
    host = dial(sim, HOST, TOWN_HALL)
    eventually(lambda: host in sim_members(sim, "Town hall"), "the host starts the town hall")
    callers = []
    for n in range(4):  # one at a time, so that their order in the queue is known
        callers.append(dial(sim, f"+1555091{n}", TOWN_HALL))
        eventually(lambda: callers[-1] in dashboard_waiting(api), "the caller waits")
    queue = sim_call(sim, callers[0])["queue"]

    response = api.post(f"/api/queues/{queue}/admit", json={"count": 1})
    assert response.status_code == 200 and response.json()["data"] == {"admitted": callers[:1]}
    eventually(lambda: callers[0] in sim_members(sim, "Town hall"), "the first in the queue is admitted")
    eventually(lambda: dashboard_waiting(api) == set(callers[1:]), "the board lists the others still waiting")
    assert api.post(f"/api/queues/{queue}/admit", json={}).json()["data"] == {"admitted": callers[1:]}
    eventually(lambda: set(callers) <= sim_members(sim, "Town hall"), "everyone waiting is admitted")
    eventually(lambda: not dashboard_waiting(api), "the waiting room is empty")
    for call in (host, *callers):
        sim.hangup(call)


def test_a_full_conference_admits_as_many_as_it_has_places_for_and_says_who_still_waits(dial_in):
    sim, server, api = dial_in
    host = dial(sim, PANEL_HOST, PANEL)
    eventually(lambda: host in sim_members(sim, "Panel"), "the host starts the panel: one of its three places")
    callers = []
    for n in range(4):
        callers.append(dial(sim, f"+1555072{n}", PANEL))
        eventually(lambda: callers[-1] in dashboard_waiting(api), "the caller waits")
    admit = f"/api/queues/{sim_call(sim, callers[0])['queue']}/admit"

    # Clicked twice at once, "Admit next" takes the next caller the second time, not the first again (who
    # still waits until Telnyx says they left the queue).
    assert api.post(admit, json={"count": 1}).json()["data"] == {"admitted": callers[:1]}
    assert api.post(admit, json={"count": 1}).json()["data"] == {"admitted": callers[1:2]}
    # The two on their way in take the last places: another admission is refused, saying why, and sends nothing.
    joins = len(sim.requests_to("/actions/join"))
    response = api.post(admit, json={})
    assert response.status_code == 409 and response.json()["error"] == {
        "status": 409, "code": "conference_full", "title": "conference full",
        "detail": "Panel is full: all 3 places are taken. The callers keep waiting; admit them once someone leaves.",
    }
    eventually(lambda: set(callers[:2]) <= sim_members(sim, "Panel"), "the two admitted join")
    eventually(lambda: dashboard_waiting(api) == set(callers[2:]), "the others still wait on the board")
    assert len(sim.requests_to("/actions/join")) == joins + 2

    sim.hangup(callers[0])
    eventually(lambda: dashboard_conference(api, "Panel")["participant_count"] == 2, "a place frees")
    assert api.post(admit, json={}).json()["data"] == {  # "Admit all": one place for two callers
        "admitted": callers[2:3], "note": "Panel is full at 3 places: 1 more caller waits until someone leaves.",
    }
    eventually(lambda: callers[2] in sim_members(sim, "Panel"), "the next in the queue takes the freed place")
    assert dashboard_waiting(api) == {callers[3]}
    for call in (host, *callers[1:]):
        sim.hangup(call)


def test_admitting_or_locking_wrongly_is_a_clear_error_that_changes_nothing(dial_in):
    sim, server, api = dial_in
    for path, body, status, detail in (
        ("/api/queues/support/admit", {}, 404, "no room's waiting room is called support"),
        ("/api/queues/room-1-waiting/admit", {"count": 0}, 400, "count: Input should be greater than or equal to 1"),
        ("/api/conferences/nope/lock", {"locked": True}, 404, "no conference with id nope"),
    ):
        response = api.post(path, json=body)
        assert response.status_code == status and response.json()["error"]["detail"] == detail, response.text
    observer = server.client("observer")
    observer.headers.update({"X-CSRFToken": observer.cookies["csrftoken"], "Referer": server.url})
    assert observer.post("/api/queues/room-1-waiting/admit", json={}).status_code == 403
    observer.close()


def test_a_room_that_refuses_callers_while_locked_tells_them_and_hangs_up(dial_in):
    sim, server, api = dial_in
    first = dial(sim, "+15550661", CLOSED_ROOM)
    eventually(lambda: first in sim_members(sim, "Closed room"), "the first caller starts the room's conference")
    conference = eventually(lambda: dashboard_conference(api, "Closed room"), "the dashboard shows it")
    assert api.post(f"/api/conferences/{conference['id']}/lock", json={"locked": True}).status_code == 200
    late = dial(sim, "+15550662", CLOSED_ROOM)
    told = eventually(lambda: [json.loads(r["body"])["payload"] for r in sim.requests_to("/actions/speak")
                               if f"/calls/{late}/" in r["path"]], "the caller is told the room is closed")
    assert told == ["Sorry, Closed room is closed to new callers right now. Goodbye."]
    eventually(lambda: sim_call(sim, late)["state"] == "hangup", "then hung up, once it was said")
    assert late not in dashboard_waiting(api) and late not in sim_members(sim, "Closed room")
    sim.hangup(first)
