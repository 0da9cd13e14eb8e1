"""A room's PINs: every caller but its moderator numbers is asked (gather_using_speak); the participant PIN lets
them in (here: into the waiting room), the moderator PIN makes them a moderator (straight in), three wrong ones
hang up. The digits are compared, never kept where anyone reads them."""

from __future__ import annotations

import json

import pytest

from moderator.admin import redacted
from moderator.control.routing import pin_role
from moderator.models import Room
from tests.fixtures_dial_in import AUDIO_VAULT, VAULT, dashboard_waiting, dial, sim_call, sim_conference, sim_members
from tests.fixtures_live_server import eventually


def prompts(sim, call_control_id) -> list[str]:
    return [json.loads(r["body"])["payload"] for r in sim.requests_to("/actions/gather_using_speak")
            if f"/calls/{call_control_id}/" in r["path"]]


def test_the_right_pin_lets_a_caller_in_the_moderator_pin_makes_a_moderator_three_wrong_hang_up(dial_in):
    sim, server, api = dial_in
    caller = dial(sim, "+15550601", VAULT)
    eventually(lambda: prompts(sim, caller), "the caller is asked for the PIN")
    assert prompts(sim, caller) == ["Welcome to Vault. Please enter your PIN, then press the pound key."]
    sim.press(caller, "1111#")
    eventually(lambda: len(prompts(sim, caller)) == 2, "a wrong PIN is asked again")
    assert prompts(sim, caller)[1] == "That PIN is not right. Please enter it again, then press the pound key."
    sim.press(caller, "4321#")
    eventually(lambda: caller in dashboard_waiting(api), "the participant PIN: into the room's waiting room")

    host = dial(sim, "+15550602", VAULT)
    eventually(lambda: prompts(sim, host), "asked too")
    sim.press(host, "9876#")
    eventually(lambda: host in sim_members(sim, "Vault"), "the moderator PIN: straight into the conference")
    assert caller not in sim_members(sim, "Vault")

    intruder = dial(sim, "+15550603", VAULT)
    for attempt in range(1, 4):
        eventually(lambda attempt=attempt: len(prompts(sim, intruder)) == attempt, f"asked ({attempt})")
        sim.press(intruder, "0000#")
    eventually(lambda: sim_call(sim, intruder)["state"] == "hangup", "three wrong PINs: hung up")
    assert intruder not in dashboard_waiting(api) and sim_conference(sim, "Vault")

    # Nowhere the dashboard shows a call, nor in its audit, is a PIN.
    for path in ("/", "/api/queues", "/api/conferences?name=Vault"):
        text = api.get(path).text
        assert "4321" not in text and "9876" not in text and "1111" not in text, path
    for call in (caller, host):
        sim.hangup(call)


def test_pins_are_compared_exactly_and_without_a_participant_pin_nothing_entered_is_a_participant():
    both = Room(participant_pin="4321", moderator_pin="9876")
    assert [pin_role(both, d) for d in ("4321", "9876", "43210", "", "0000")] == ["participant", "moderator", "", "", ""]
    moderators_only = Room(moderator_pin="9876")
    assert [pin_role(moderators_only, d) for d in ("9876", "", "1234")] == ["moderator", "participant", ""]


def test_the_admin_never_shows_gathered_digits():
    document = {"data": {"event_type": "call.gather.ended", "payload": {"digits": "4321", "status": "valid"}}}
    assert redacted(document)["data"]["payload"] == {"digits": "(hidden)", "status": "valid"}
    keys = {"data": {"event_type": "call.dtmf.received", "payload": {"digit": "1"}}}
    assert redacted(keys) == keys


@pytest.mark.django_db
def test_the_admin_sets_pins_without_showing_them_keeps_them_when_left_empty_and_removes_them(admin_client):
    from moderator.models import Room

    room = Room.objects.create(name="Vault", participant_pin="4321")
    page = admin_client.get(f"/admin/moderator/room/{room.pk}/change/").content.decode()
    assert "4321" not in page and "(A PIN is set.)" in page
    form = {"name": "Vault", "moderator_numbers": "", "beep_enabled": "never", "numbers-TOTAL_FORMS": "0",
            "numbers-INITIAL_FORMS": "0", "numbers-MIN_NUM_FORMS": "0", "numbers-MAX_NUM_FORMS": "1000"}
    assert admin_client.post(f"/admin/moderator/room/{room.pk}/change/", {**form, "moderator_pin": "9876"}).status_code == 302
    room.refresh_from_db()
    assert (room.participant_pin, room.moderator_pin) == ("4321", "9876")
    refused = admin_client.post(f"/admin/moderator/room/{room.pk}/change/", {**form, "participant_pin": "12"})
    assert refused.status_code == 200 and "4 to 12 digits." in refused.content.decode()
    assert admin_client.post(f"/admin/moderator/room/{room.pk}/change/", {**form, "remove_pins": "on"}).status_code == 302
    room.refresh_from_db()
    assert (room.participant_pin, room.moderator_pin) == ("", "")


def test_a_room_may_ask_for_its_pin_with_its_own_recording(dial_in):
    sim, server, api = dial_in
    caller = dial(sim, "+15550651", AUDIO_VAULT)
    asked = eventually(lambda: [json.loads(r["body"]) for r in sim.requests_to("/actions/gather_using_audio")
                                if f"/calls/{caller}/" in r["path"]], "asked with the room's recording")
    assert asked[0]["audio_url"] == "https://example.com/enter-your-pin.mp3" and "payload" not in asked[0]
    assert not [r for r in sim.requests_to("/actions/gather_using_speak") if f"/calls/{caller}/" in r["path"]]
    sim.press(caller, "5555#")
    eventually(lambda: caller in sim_members(sim, "Audio vault"), "the right PIN: into the conference")
    sim.hangup(caller)
