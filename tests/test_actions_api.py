"""Every moderator action end to end: the page's API → the real SDK → the simulator, checked on both sides."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from moderator.models import Conference, ModeratorAction, Participant
from tests.fixtures_actions import act, db_leg, post, sim_legs

pytestmark = pytest.mark.django_db


def test_create_conference_answers_with_the_telnyx_conference(live_conference, telnyx):
    conference = Conference.objects.get(telnyx_id=live_conference["id"])
    assert conference.name == "Ops bridge"
    assert {p.call_control_id for p in conference.participants.all()} == set(live_conference["legs"])
    audit = ModeratorAction.objects.get(action="create_conference")
    assert audit.outcome == "ok" and audit.user.username == "mod" and audit.conference == conference


def test_mute_one_then_unmute_all(live_conference, moderator_client, telnyx):
    guest = live_conference["legs"][1]
    response = act(moderator_client, live_conference, "mute", {"call_control_ids": [guest]})
    assert response.status_code == 200 and response.json()["data"]["result"] == "ok"
    assert sim_legs(telnyx, live_conference["id"])[guest]["muted"] is True
    assert db_leg(guest).muted is True and db_leg(live_conference["legs"][0]).muted is False
    assert act(moderator_client, live_conference, "unmute").status_code == 200
    assert not any(p["muted"] for p in sim_legs(telnyx, live_conference["id"]).values())
    assert not Participant.objects.filter(muted=True).exists()


def test_hold_with_music_and_unhold(live_conference, moderator_client, telnyx):
    guest = live_conference["legs"][2]
    assert (
        act(
            moderator_client,
            live_conference,
            "hold",
            {"call_control_ids": [guest], "audio_url": "https://example.com/hold.mp3"},
        ).status_code
        == 200
    )
    assert sim_legs(telnyx, live_conference["id"])[guest]["on_hold"] is True and db_leg(guest).on_hold
    assert act(moderator_client, live_conference, "unhold", {"call_control_ids": [guest]}).status_code == 200
    assert not db_leg(guest).on_hold


def test_whisper_barge_monitor_and_none(live_conference, moderator_client, telnyx):
    supervisor, agent = live_conference["legs"][0], live_conference["legs"][1]
    for role in ("whisper", "barge", "monitor", "none"):
        body = {"call_control_id": supervisor, "supervisor_role": role}
        if role == "whisper":
            body["whisper_call_control_ids"] = [agent]
        assert act(moderator_client, live_conference, "update", body).status_code == 200
        assert sim_legs(telnyx, live_conference["id"])[supervisor]["supervisor_role"] == role
        assert db_leg(supervisor).supervisor_role == role
    assert db_leg(supervisor).whisper_call_control_ids == []


def test_media_recording_dtmf_and_gather(live_conference, moderator_client, telnyx):
    ok = [
        ("play", {"audio_url": "https://example.com/a.mp3", "loop": 2}),
        ("stop", {}),
        ("speak", {"payload": "Welcome", "voice": "female", "language": "en-GB"}),
        ("record_start", {"format": "wav", "channels": "dual", "play_beep": True}),
        ("record_pause", {}),
        ("record_resume", {}),
        ("send_dtmf", {"digits": "12#", "call_control_ids": [live_conference["legs"][1]]}),
        (
            "gather_using_audio",
            {
                "call_control_id": live_conference["legs"][2],
                "audio_url": "https://example.com/prompt.mp3",
                "maximum_digits": 4,
            },
        ),
    ]
    for action, body in ok:
        response = act(moderator_client, live_conference, action, body)
        assert response.status_code == 200, (action, response.content)
    conference = Conference.objects.get(telnyx_id=live_conference["id"])
    assert conference.recording_status == "recording"
    assert act(moderator_client, live_conference, "record_stop").status_code == 200
    conference.refresh_from_db()
    assert conference.recording_status == "idle"
    state = telnyx.sim_state()
    assert state["dtmf"] == [
        {
            "conference_id": live_conference["id"],
            "digits": "12#",
            "call_control_ids": [live_conference["legs"][1]],
        }
    ]
    assert state["gathers"][0]["maximum_digits"] == 4
    assert state["conferences"][0]["recordings"][0]["format"] == "wav"
    assert ModeratorAction.objects.filter(outcome="ok").count() >= len(ok) + 1


def test_commands_that_take_a_command_id_send_one(live_conference, moderator_client, telnyx):
    act(moderator_client, live_conference, "speak", {"payload": "Hi", "voice": "male"})
    (request,) = telnyx.requests_to("/actions/speak")
    assert json.loads(request["body"])["command_id"]
    act(moderator_client, live_conference, "mute")
    (request,) = telnyx.requests_to("/actions/mute")
    assert "command_id" not in json.loads(request["body"])


def test_leave_then_end(live_conference, moderator_client, telnyx):
    guest = live_conference["legs"][1]
    assert act(moderator_client, live_conference, "leave", {"call_control_id": guest}).status_code == 200
    assert sim_legs(telnyx, live_conference["id"])[guest]["status"] == "left"
    assert act(moderator_client, live_conference, "end").status_code == 200
    assert telnyx.sim_state()["conferences"][0]["status"] == "completed"
    assert post(moderator_client, f"/api/conferences/{live_conference['id']}/resync").status_code == 200
    assert Conference.objects.get(telnyx_id=live_conference["id"]).status == "completed"


def test_enqueue_leave_queue_and_hangup_a_call(telnyx, moderator_client):
    ccid = telnyx.call("+15550009", "+15550100")["call_control_id"]
    assert (
        post(moderator_client, f"/api/calls/{ccid}/actions/enqueue", {"queue_name": "vip"}).status_code == 200
    )
    assert telnyx.sim_state()["queues"][0]["calls"][0]["call_control_id"] == ccid
    assert post(moderator_client, f"/api/calls/{ccid}/actions/leave_queue").status_code == 200
    assert telnyx.sim_state()["queues"][0]["calls"] == []
    assert post(moderator_client, f"/api/calls/{ccid}/actions/hangup").status_code == 200
    assert telnyx.sim_state()["calls"][0]["state"] == "hangup"


def test_join_a_call_shows_it_joining_until_the_webhook(live_conference, moderator_client, telnyx):
    ccid = telnyx.call("+15550010", "+15550100")["call_control_id"]
    assert (
        act(moderator_client, live_conference, "join", {"call_control_id": ccid, "mute": True}).status_code
        == 200
    )
    leg = db_leg(ccid)
    assert leg.status == "joining" and leg.muted
    assert sim_legs(telnyx, live_conference["id"])[ccid]["muted"] is True


# --- who may act, and bad input -----------------------------------------------------------------


def test_observers_watch_but_get_403_on_actions(live_conference, observer_client, telnyx):
    response = act(observer_client, live_conference, "mute")
    assert response.status_code == 403
    assert "Observers" in response.json()["error"]["detail"]
    assert telnyx.requests_to("/actions/mute") == []


def test_anonymous_gets_401(client, live_conference):
    client.logout()
    assert act(client, live_conference, "mute").status_code == 401


def test_missing_csrf_token_is_403_json(live_conference, moderator_user, telnyx):
    client = Client(enforce_csrf_checks=True)
    client.force_login(moderator_user)
    response = act(client, live_conference, "mute")
    assert response.status_code == 403
    assert response.json()["error"]["title"] == "CSRF check failed"
    assert telnyx.requests_to("/actions/mute") == []


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("mute", {"call_control_ids": "not-a-list"}, "call_control_ids"),
        ("mute", {"bogus": 1}, "bogus"),
        ("play", {}, "body"),
        ("play", {"audio_url": "ftp://x"}, "audio_url"),
        ("speak", {"payload": "hi"}, "voice"),
        ("speak", {"payload": "hi", "voice": "female", "language": "xx-XX"}, "language"),
        ("record_start", {"format": "ogg"}, "format"),
        ("record_start", {}, "format"),
        ("send_dtmf", {"digits": "12x"}, "digits"),
        ("update", {"call_control_id": "v3:x", "supervisor_role": "boss"}, "supervisor_role"),
        ("unhold", {}, "call_control_ids"),
        ("gather_using_audio", {"call_control_id": "v3:x", "minimum_digits": 5, "maximum_digits": 2}, "body"),
    ],
)
def test_bad_bodies_get_400_naming_the_field_and_no_telnyx_call(
    live_conference, moderator_client, telnyx, action, body, field
):
    before = len(telnyx.sim_state()["requests"])
    response = act(moderator_client, live_conference, action, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["field"] == field and error["detail"]
    assert len(telnyx.sim_state()["requests"]) == before


def test_not_json_is_400(live_conference, moderator_client):
    response = moderator_client.post(
        f"/api/conferences/{live_conference['id']}/actions/mute", "{nope", content_type="application/json"
    )
    assert response.status_code == 400


def test_unknown_action_and_conference_are_404(live_conference, moderator_client):
    assert act(moderator_client, live_conference, "explode").status_code == 404
    assert post(moderator_client, "/api/conferences/nope/actions/mute").status_code == 404
