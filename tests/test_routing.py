"""Dial-in rooms end to end: callers ring the simulator's numbers, the simulator sends signed webhooks to a real
dashboard (Daphne), the dashboard's routing answers and places them through the real SDK, and we check both
sides — what Telnyx (the simulator) holds and what the dashboard shows."""

from __future__ import annotations

import copy
import json
import uuid

import httpx
import pytest

from moderator.simulator.server import SENDER
from tests.fixtures_dial_in import (
    HOST,
    OPEN_ROOM,
    PROFILE_PHONE,
    RACE_ROOM,
    STRICT_ROOM,
    TOWN_HALL,
    answers_for,
    dashboard_conference,
    dashboard_waiting,
    dial,
    refuse_answers,
    sim_call,
    sim_conference,
    sim_members,
)
from tests.fixtures_live_server import eventually


def test_moderator_starts_the_room_callers_wait_and_one_is_admitted(dial_in):
    sim, server, api = dial_in
    host = dial(sim, HOST, TOWN_HALL)
    eventually(lambda: sim_conference(sim, "Town hall"), "the moderator's call creates the room's conference")
    eventually(lambda: host in sim_members(sim, "Town hall"), "the moderator is in the conference")

    callers = [dial(sim, f"+1555070000{i}", TOWN_HALL) for i in range(3)]
    queue = eventually(lambda: sim_call(sim, callers[0])["queue"], "the first caller is in a queue")
    eventually(lambda: all(sim_call(sim, c)["queue"] == queue for c in callers), "every caller waits")
    assert sim_members(sim, "Town hall") == {host}
    eventually(lambda: dashboard_waiting(api, queue) == set(callers), "the board's waiting room shows the three")
    board = api.get("/").text
    assert '<div class="queue" data-queue="room-1-waiting" data-room="Town hall">' in board
    assert '<li class="room" data-room="Town hall">' in board and "+15550100, +15550101" in board

    conference = eventually(lambda: dashboard_conference(api, "Town hall"), "the dashboard shows the conference")
    assert [p["call_control_id"] for p in conference["participants"] if p["status"] != "left"] == [host]
    # Each caller was answered once, with a command_id, by "system".
    for call_control_id in [host, *callers]:
        (answer,) = answers_for(sim, call_control_id)
        assert json.loads(answer["body"])["command_id"]

    # "Admit" on the board: join the caller to the room's conference.
    response = api.post(f"/api/conferences/{conference['id']}/actions/join", json={"call_control_id": callers[1]})
    assert response.status_code == 200, response.text
    eventually(lambda: sim_members(sim, "Town hall") == {host, callers[1]}, "the admitted caller is in the conference")
    assert sim_call(sim, callers[1])["queue"] is None
    eventually(lambda: dashboard_waiting(api, queue) == {callers[0], callers[2]}, "the waiting room loses the caller")
    eventually(
        lambda: (
            {p["call_control_id"]: p["status"] for p in dashboard_conference(api, "Town hall")["participants"]}.get(
                callers[1]
            )
            == "joined"
        ),
        "the live view shows the admitted caller as joined",
    )

    # "Drop": the caller is hung up and leaves the waiting room.
    assert api.post(f"/api/calls/{callers[2]}/actions/hangup", json={}).status_code == 200
    eventually(lambda: dashboard_waiting(api, queue) == {callers[0]}, "the dropped caller leaves the waiting room")
    assert sim_call(sim, callers[2])["state"] == "hangup"


def test_a_caller_who_hangs_up_while_waiting_leaves_the_waiting_room(dial_in):
    sim, server, api = dial_in
    caller = dial(sim, "+15550710001", "+15550101")  # the room's second number
    queue = eventually(lambda: sim_call(sim, caller)["queue"], "the caller waits")
    eventually(lambda: caller in dashboard_waiting(api, queue), "the board shows the caller waiting")
    sim.hangup(caller)
    eventually(lambda: caller not in dashboard_waiting(api), "the caller is gone from the waiting room")
    assert caller not in api.get("/").text


def test_a_retried_call_initiated_answers_once(dial_in):
    sim, server, api = dial_in
    caller = dial(sim, "+15550720001", TOWN_HALL)
    eventually(lambda: sim_call(sim, caller)["queue"], "the caller is answered and waits")
    sender = sim.app[SENDER]
    initiated = next(
        d for d in sender.deliveries if d.event_type == "call.initiated" and d.payload["call_control_id"] == caller
    )
    again = copy.copy(initiated)
    again.event_id = str(uuid.uuid4())  # the same call announced again under another event id
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for delivery, attempt in ((initiated, 2), (initiated, 3), (again, 1)):
            body = sender.envelope(delivery, attempt, f"{server.url}/webhooks/telnyx")
            assert client.post("/webhooks/telnyx", content=body, headers=sender.sign(body)).status_code == 200
    # Routing steps run in submission order: a call dialled after the retries is placed only after
    # any step they could have started, so by then a second answer would have been sent.
    late = dial(sim, "+15550720002", TOWN_HALL)
    eventually(lambda: sim_call(sim, late)["queue"], "a later caller is routed")
    assert len(answers_for(sim, caller)) == 1
    assert sim_call(sim, caller)["state"] == "answered" and sim_call(sim, caller)["queue"]


def test_an_unknown_number_is_hung_up(dial_in):
    sim, server, api = dial_in
    stranger = dial(sim, "+15550730001", "+15559999999")
    eventually(lambda: sim_call(sim, stranger)["state"] == "hangup", "the call to an unknown number is hung up")
    assert answers_for(sim, stranger) == []
    (hangup,) = [r for r in sim.requests_to("/actions/hangup") if f"/calls/{stranger}/" in r["path"]]
    assert json.loads(hangup["body"])["command_id"]


def test_a_failed_answer_is_shown_on_the_board(dial_in):
    sim, server, api = dial_in
    refuse_answers(sim)
    caller = dial(sim, "+15550740001", TOWN_HALL)
    eventually(lambda: "Simulated refusal to answer" in api.get("/").text, "the board shows why the call failed")
    board = api.get("/").text
    assert "Dial-in problems" in board and "+15550740001" in board
    assert sim_call(sim, caller)["state"] == "ringing"  # not retried blindly: it rings until it times out
    assert len(answers_for(sim, caller)) == 1
    # Drop it from the board.
    assert api.post(f"/api/calls/{caller}/actions/hangup", json={}).status_code == 200
    eventually(lambda: sim_call(sim, caller)["state"] == "hangup", "the dropped call is hung up")


def test_without_a_waiting_room_callers_join_directly_and_the_first_starts_the_conference(dial_in):
    sim, server, api = dial_in
    first = dial(sim, "+15550750001", OPEN_ROOM)
    eventually(lambda: first in sim_members(sim, "Open room"), "the first caller starts the room's conference")
    second = dial(sim, "+15550750002", OPEN_ROOM)
    eventually(lambda: sim_members(sim, "Open room") == {first, second}, "the second caller joins it")
    create = next(
        json.loads(r["body"])
        for r in sim.requests_to("/v2/conferences")
        if r["method"] == "POST" and json.loads(r["body"])["name"] == "Open room"
    )
    assert create["beep_enabled"] == "on_enter" and create["max_participants"] == 10
    assert create["start_conference_on_create"] is True


def test_two_moderators_dialling_at_once_end_up_in_one_conference(dial_in):
    sim, server, api = dial_in
    first = dial(sim, "+15550301", RACE_ROOM)
    second = dial(sim, "+15550302", RACE_ROOM)
    eventually(lambda: sim_members(sim, "Race room") == {first, second}, "both moderators are in one conference")
    assert len([c for c in sim.sim_state()["conferences"] if c["name"] == "Race room"]) == 1


def test_a_dashboard_users_profile_phone_moderates_and_an_observers_does_not(dial_in):
    sim, server, api = dial_in
    observer = dial(sim, "+15550177", TOWN_HALL)
    eventually(lambda: sim_call(sim, observer)["queue"], "an observer's phone waits like any caller")
    me = dial(sim, PROFILE_PHONE, TOWN_HALL)
    eventually(lambda: me in sim_members(sim, "Town hall"), "a moderator's profile phone joins the conference")


def test_strict_room_starts_with_a_moderator_records_and_ends_when_the_last_moderator_leaves(dial_in):
    sim, server, api = dial_in
    guest = dial(sim, "+15550760001", STRICT_ROOM)
    eventually(lambda: guest in sim_members(sim, "Strict room"), "the guest is placed in the room's conference")
    assert sim_conference(sim, "Strict room")["status"] == "init"  # on hold until a moderator joins
    create = next(
        json.loads(r["body"])
        for r in sim.requests_to("/v2/conferences")
        if r["method"] == "POST" and json.loads(r["body"])["name"] == "Strict room"
    )
    assert create["start_conference_on_create"] is False
    assert create["hold_audio_url"] == "https://example.com/hold.mp3"
    host = dial(sim, "+15550401", STRICT_ROOM)
    eventually(lambda: host in sim_members(sim, "Strict room"), "the moderator joins")
    conference = sim_conference(sim, "Strict room")
    assert conference["status"] == "in_progress"
    eventually(lambda: (sim_conference(sim, "Strict room") or {}).get("recording"), "the room records automatically")

    sim.hangup(host)
    eventually(lambda: sim_conference(sim, "Strict room") is None, "the conference ends with its last moderator")
    ended = next(c for c in sim.sim_state()["conferences"] if c["id"] == conference["id"])
    assert ended["end_reason"] == "ended_via_api"
    assert sim_call(sim, guest)["state"] == "hangup"


# --- the decisions alone, in process: what routing plans for each webhook (nothing is sent) ---------


@pytest.fixture
def planned():
    """Deliver webhooks through the real endpoint and apply them; the outbox rows routing wrote, oldest first."""
    from moderator.models import OutboxCommand
    from tests.delivery import apply_stored, post_webhook

    def deliver(*documents):
        for document in documents:
            assert post_webhook(document).status_code == 200
        apply_stored()
        return [(row.kind, row.call_control_id) for row in OutboxCommand.objects.order_by("id")]

    return deliver


def _incoming(name: str, to_number: str, *, direction: str = "incoming", from_number: str = "+15550900001"):
    from tests.telnyx_events import leg

    return {**leg(name), "from": from_number, "to": to_number, "direction": direction, "state": "parked"}


@pytest.mark.django_db
def test_without_rooms_routing_leaves_inbound_calls_alone(planned):
    from moderator.models import Call
    from tests.telnyx_events import event

    assert planned(event("call.initiated", _incoming("a", "+15550100"))) == []
    assert Call.objects.get().routing_note == ""


@pytest.mark.django_db
def test_plans_answer_once_hangup_for_unknown_numbers_and_nothing_for_outgoing_calls(planned):
    from moderator.models import Call, OutboxCommand, Room, RoomNumber
    from tests.telnyx_events import event

    room = Room.objects.create(name="Ops", waiting_room=True)
    RoomNumber.objects.create(room=room, number="+15550100")
    ringing = event("call.initiated", _incoming("a", "+15550100"))
    steps = planned(
        ringing,
        ringing,  # Telnyx retries with the same id
        event("call.initiated", _incoming("a", "+15550100")),  # the same call under another id
        event("call.initiated", _incoming("b", "+15559999999")),
        event("call.initiated", _incoming("c", "+15550100", direction="outgoing")),
    )
    assert steps == [("answer", "v3:a"), ("hangup", "v3:b")]
    assert Call.objects.get(call_control_id="v3:a").routing_note == "Ringing: answering for Ops"
    assert "No room has the number +15559999999" in Call.objects.get(call_control_id="v3:b").routing_note
    assert Call.objects.get(call_control_id="v3:c").routing_note == ""

    OutboxCommand.objects.all().delete()
    assert planned(event("call.answered", _incoming("a", "+15550100"))) == [("enqueue", "v3:a")]


@pytest.mark.django_db
def test_a_default_room_takes_calls_to_unknown_numbers(planned):
    from moderator.models import Room
    from tests.telnyx_events import event

    Room.objects.create(name="Lobby", is_default=True)
    assert planned(event("call.initiated", _incoming("a", "+15559999999"))) == [("answer", "v3:a")]


def test_command_ids_are_stable_per_step_and_target():
    from moderator.control.routing import command_id

    assert command_id("answer", "v3:a") == command_id("answer", "v3:a")
    assert len({command_id("answer", "v3:a"), command_id("answer", "v3:b"), command_id("join", "v3:a")}) == 3
    assert len(command_id("answer", "v3:" + "x" * 200)) == 36  # fits the audit row's command_id
