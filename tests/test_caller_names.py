"""Rows name a person, not only a number: the caller id name, a dashboard user's name for their phone, and the
name a moderator gives a number — kept for the room it called, used the next time it calls."""

from __future__ import annotations

import pytest

from moderator.models import Call, CallerName, ModeratorAction
from tests.fixtures_dial_in import OPEN_ROOM, PROFILE_PHONE, TOWN_HALL, dashboard_conference, dial, sim_members
from tests.fixtures_live_server import eventually
from tests.telnyx_events import at, event, leg

CONF = {"conference_id": "conf-names", "connection_id": "conn-1"}


def legs_by_number(conference: dict) -> dict[str, dict]:
    return {p["from"]: p for p in conference["participants"] if p["status"] != "left"}


def test_dialled_in_callers_show_by_caller_id_user_and_the_name_a_moderator_gave(dial_in):
    sim, server, api = dial_in
    ada = sim.inbound("+15550601", OPEN_ROOM, caller_id_name="Ada Lovelace")["call_control_id"]
    plain = dial(sim, "+15550602", OPEN_ROOM)  # Telnyx sends the number as the caller id name: no name
    mine = dial(sim, PROFILE_PHONE, OPEN_ROOM)
    eventually(lambda: {ada, plain, mine} <= sim_members(sim, "Open room"), "the three are in the conference")
    conference = eventually(lambda: dashboard_conference(api, "Open room"), "the dashboard shows the room")
    legs = eventually(lambda: len(legs_by_number(c := dashboard_conference(api, "Open room"))) == 3 and legs_by_number(c),
                      "the dashboard shows the three")
    assert legs["+15550601"]["name"] == "Ada Lovelace"
    assert legs["+15550602"]["name"] == ""
    assert legs[PROFILE_PHONE]["name"] == "moderator"  # the dashboard user whose phone it is
    page = api.get(f"/conferences/{conference['id']}/").text
    assert '<span class="name">Ada Lovelace</span>' in page and '<span class="sub number">+15550601</span>' in page

    response = api.post(f"/api/calls/{plain}/name", json={"name": "Grace Hopper"})
    assert response.status_code == 200, response.text
    assert legs_by_number(dashboard_conference(api, "Open room"))["+15550602"]["name"] == "Grace Hopper"
    page = api.get(f"/conferences/{conference['id']}/").text
    assert "moderator named +15550602 “Grace Hopper”" in page

    # Next time the number calls this room, the name is there from the first moment; another room knows nothing.
    sim.hangup(plain)
    again = dial(sim, "+15550602", OPEN_ROOM)
    eventually(lambda: again in sim_members(sim, "Open room"), "the caller is back")
    eventually(lambda: legs_by_number(dashboard_conference(api, "Open room")).get("+15550602", {}).get("name")
               == "Grace Hopper", "the name comes back with the number")
    elsewhere = dial(sim, "+15550602", TOWN_HALL)  # Town hall has a waiting room
    waiting = eventually(lambda: [c for q in api.get("/api/queues").json()["queues"] for c in q["calls"]
                                  if c["call_control_id"] == elsewhere], "the caller waits in the town hall")
    assert waiting[0]["name"] == "" and waiting[0]["from"] == "+15550602"

    # An empty name forgets it.
    assert api.post(f"/api/calls/{again}/name", json={"name": ""}).status_code == 200
    assert legs_by_number(dashboard_conference(api, "Open room"))["+15550602"]["name"] == ""
    for call in (ada, again, mine, elsewhere):
        sim.hangup(call)


@pytest.fixture
def two_callers(deliver):
    deliver(
        event("conference.created", {**leg("host"), **CONF}, at(1), occurred_in_payload=True),
        event("call.initiated", {**leg("bob"), "from": "+15550701", "to": "+15550999", "caller_id_name": "Bob"}, at(1)),
        event("call.initiated", {**leg("anon"), "from": "", "to": "+15550999"}, at(1)),
        event("conference.participant.joined", {**leg("bob"), **CONF}, at(2)),
        event("conference.participant.joined", {**leg("anon"), **CONF}, at(2)),
    )


def row_name(client, call_control_id: str) -> str:
    legs = client.get("/api/conferences/conf-names").json()["participants"]
    return next(p["name"] for p in legs if p["call_control_id"] == call_control_id)


@pytest.mark.django_db
def test_naming_a_caller_is_audited_and_shown_in_every_conference_the_number_is_in(two_callers, moderator_client):
    assert row_name(moderator_client, "v3:bob") == "Bob"
    response = moderator_client.post("/api/calls/v3:bob/name", {"name": "  Robert  "}, content_type="application/json")
    assert response.status_code == 200 and response.json()["data"] == {
        "call_control_id": "v3:bob", "number": "+15550701", "name": "Robert"}
    assert row_name(moderator_client, "v3:bob") == "Robert"
    (audit,) = ModeratorAction.objects.filter(action="name")
    assert audit.user.username == "mod" and audit.conference.telnyx_id == "conf-names"
    assert audit.parameters == {"name": "Robert", "number": "+15550701"}
    assert CallerName.objects.get(number="+15550701", room=None).name == "Robert"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body", "status", "detail"),
    [
        ("/api/calls/v3:bob/name", {"name": "x" * 129}, 400, "name: String should have at most 128 characters"),
        ("/api/calls/v3:bob/name", {}, 400, "name: is required"),
        ("/api/calls/v3:bob/name", {"name": "Bob\x00"}, 400, "name: holds a NUL character or a lone surrogate"),
        ("/api/calls/v3:bob/name", {"name": "Bob", "room": 1}, 400, "room: is not a field of this action"),
        ("/api/calls/v3:nobody/name", {"name": "Bob"}, 404, "no call with call_control_id v3:nobody"),
        ("/api/calls/v3:anon/name", {"name": "Bob"}, 409, "the call has no caller number to name"),
    ],
)
def test_a_bad_name_changes_nothing_and_says_why(two_callers, moderator_client, path, body, status, detail):
    response = moderator_client.post(path, body, content_type="application/json")
    assert response.status_code == status
    assert response.json()["error"]["detail"] == detail
    assert not CallerName.objects.exists() and not ModeratorAction.objects.exists()
    assert row_name(moderator_client, "v3:bob") == "Bob"


@pytest.mark.django_db
def test_observers_may_not_name_callers(two_callers, observer_client):
    response = observer_client.post("/api/calls/v3:bob/name", {"name": "Robert"}, content_type="application/json")
    assert response.status_code == 403
    assert not CallerName.objects.exists()


@pytest.mark.django_db
def test_a_caller_id_name_that_is_only_the_number_is_no_name(deliver, moderator_client):
    deliver(
        event("conference.created", {**leg("host"), **CONF}, at(1), occurred_in_payload=True),
        event("call.initiated", {**leg("carol"), "from": "+15550702", "caller_id_name": "+15550702"}, at(1)),
        event("conference.participant.joined", {**leg("carol"), **CONF}, at(2)),
    )
    assert Call.objects.get(call_control_id="v3:carol").caller_name == "+15550702"
    assert row_name(moderator_client, "v3:carol") == ""
