"""Remove and ban: the caller is hung up and their number refused in the room — until the conference ends or
for good — listed on the live view and undoable; end to end through the simulator."""

from __future__ import annotations

import pytest

from moderator.models import Ban, Conference, ModeratorAction
from tests.fixtures_dial_in import OPEN_ROOM, dashboard_conference, dial, sim_call, sim_members
from tests.fixtures_live_server import eventually
from tests.telnyx_events import at, event, leg


def test_a_banned_caller_is_hung_up_refused_when_calling_back_and_let_in_once_lifted(dial_in):
    sim, server, api = dial_in
    first, pest = dial(sim, "+15550701", OPEN_ROOM), dial(sim, "+15550702", OPEN_ROOM)
    eventually(lambda: {first, pest} <= sim_members(sim, "Open room"), "both are in the room's conference")
    conference = dashboard_conference(api, "Open room")

    response = api.post(f"/api/conferences/{conference['id']}/ban", json={"call_control_id": pest})
    assert response.status_code == 200, response.text
    ban = response.json()["data"]
    assert (ban["number"], ban["for_good"]) == ("+15550702", False)
    eventually(lambda: sim_call(sim, pest)["state"] == "hangup", "the banned caller is hung up")
    page = api.get(f"/conferences/{conference['id']}/").text
    assert '<li class="ban" data-ban="{}">'.format(ban["ban"]) in page and "until this conference ends" in page
    assert "moderator removed and banned +15550702 until the conference ends" in page

    again = dial(sim, "+15550702", OPEN_ROOM)
    eventually(lambda: sim_call(sim, again)["state"] == "hangup", "calling back: refused before it is answered")
    assert sim_call(sim, again)["answered_at"] is None
    assert api.post(f"/api/bans/{ban['ban']}/lift", json={}).json()["data"]["lifted"] is True
    assert "Banned from this room" not in api.get(f"/conferences/{conference['id']}/").text
    back = dial(sim, "+15550702", OPEN_ROOM)
    eventually(lambda: back in sim_members(sim, "Open room"), "once lifted, the number joins again")
    for call in (first, back):
        sim.hangup(call)


def test_a_ban_for_good_outlives_the_conference_and_one_until_it_ends_does_not(dial_in):
    sim, server, api = dial_in
    host, forever, for_now = (dial(sim, number, OPEN_ROOM) for number in ("+15550711", "+15550712", "+15550713"))
    eventually(lambda: {host, forever, for_now} <= sim_members(sim, "Open room"), "all three are in")
    conference = dashboard_conference(api, "Open room")
    assert api.post(f"/api/conferences/{conference['id']}/ban",
                    json={"call_control_id": forever, "for_good": True}).status_code == 200
    assert api.post(f"/api/conferences/{conference['id']}/ban", json={"call_control_id": for_now}).status_code == 200
    assert api.post(f"/api/conferences/{conference['id']}/actions/end", json={}).status_code == 200
    eventually(lambda: api.get(f"/api/conferences/{conference['id']}").json()["status"] == "completed", "it ended")

    refused, welcome = dial(sim, "+15550712", OPEN_ROOM), dial(sim, "+15550713", OPEN_ROOM)
    eventually(lambda: welcome in sim_members(sim, "Open room"), "banned until that conference ended: welcome now")
    eventually(lambda: sim_call(sim, refused)["state"] == "hangup", "banned for good: still refused")
    sim.hangup(welcome)


@pytest.fixture
def adhoc(deliver):
    deliver(
        event("conference.created", {**leg("host"), "conference_id": "conf-adhoc"}, at(1), occurred_in_payload=True),
        event("call.initiated", {**leg("bob"), "from": "+15550721", "to": "+15550999"}, at(1)),
        event("conference.participant.joined", {**leg("bob"), "conference_id": "conf-adhoc"}, at(2)),
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body", "status", "detail"),
    [
        ("/api/conferences/conf-adhoc/ban", {"call_control_id": "v3:bob"}, 409,
         "the conference was started for no dial-in room: there is no room to ban from"),
        ("/api/conferences/conf-adhoc/ban", {}, 400, "call_control_id: is required"),
        ("/api/conferences/conf-adhoc/ban", {"call_control_id": "v3:bob", "for_good": "always"}, 400,
         "for_good: Input should be a valid boolean, unable to interpret input"),
        ("/api/conferences/nope/ban", {"call_control_id": "v3:bob"}, 404, "no conference with id nope"),
        ("/api/bans/999/lift", {}, 404, "no ban with id 999"),
        ("/api/conferences/conf-adhoc/lock", {"locked": True}, 409, "the conference was started for no dial-in "
         "room: nobody dials in to it, so there is no new caller to keep waiting"),
    ],
)
def test_a_ban_or_lock_that_cannot_be_is_a_clear_error_that_changes_nothing(adhoc, moderator_client, path, body, status,
                                                                             detail):
    response = moderator_client.post(path, body, content_type="application/json")
    assert response.status_code == status and response.json()["error"]["detail"] == detail
    assert not Ban.objects.exists() and not ModeratorAction.objects.exists()
    assert not Conference.objects.filter(locked=True).exists()


@pytest.mark.django_db
def test_a_conference_no_one_dials_in_to_offers_no_lock(adhoc, moderator_client):
    page = moderator_client.get("/conferences/conf-adhoc/").content.decode()
    assert 'data-action="end"' in page and 'data-action="lock"' not in page and 'data-action="unlock"' not in page


@pytest.mark.django_db
def test_observers_may_not_ban(adhoc, observer_client):
    response = observer_client.post("/api/conferences/conf-adhoc/ban", {"call_control_id": "v3:bob"},
                                    content_type="application/json")
    assert response.status_code == 403 and not Ban.objects.exists()
