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


def test_a_command_for_a_leg_not_seen_joining_yet_shows_on_its_row_from_the_first_moment(telnyx, moderator_client,
                                                                                         deliver):
    """A conference's creator is in it before its joined webhook arrives: muting it at once (a listen-only room
    does) must not wait for that webhook to show, nor be undone by it."""
    from tests.telnyx_events import event

    creator = telnyx.call("+15550020", "+15550100")["call_control_id"]
    response = post(moderator_client, "/api/conferences", {"call_control_id": creator, "name": "Fresh"})
    conference = {"id": response.json()["data"]["id"]}
    assert not Participant.objects.filter(call_control_id=creator).exists()
    assert act(moderator_client, conference, "mute", {"call_control_ids": [creator]}).status_code == 200
    assert db_leg(creator).muted and db_leg(creator).status == "joining"
    deliver(event("conference.participant.joined", {"call_control_id": creator, "conference_id": conference["id"]}))
    assert db_leg(creator).muted and db_leg(creator).status == "joined"


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


def test_a_body_nested_too_deeply_is_400_not_a_server_error(live_conference, moderator_client, telnyx):
    before = len(telnyx.sim_state()["requests"])
    body = '{"call_control_ids": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = moderator_client.post(
        f"/api/conferences/{live_conference['id']}/actions/mute", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]["detail"]
    assert len(telnyx.sim_state()["requests"]) == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/conferences", {"call_control_id": "v3:x", "name": "a\x00b"}),
        ("/api/conferences/{id}/actions/speak", {"payload": "hi\x00", "voice": "female"}),
        ("/api/conferences/{id}/actions/mute", {"call_control_ids": ["v3:\x00"]}),
        ("/api/calls/v3:x/actions/enqueue", {"queue_name": "sup\x00port"}),
    ],
)
def test_a_nul_in_any_field_is_400_naming_it_and_nothing_is_sent_or_stored(
    live_conference, moderator_client, telnyx, path, body
):
    from moderator.models import ModeratorAction

    before, audited = len(telnyx.sim_state()["requests"]), ModeratorAction.objects.count()
    response = post(moderator_client, path.format(id=live_conference["id"]), body)
    assert response.status_code == 400, response.content
    assert "NUL" in response.json()["error"]["detail"] and response.json()["error"]["field"]
    assert len(telnyx.sim_state()["requests"]) == before and ModeratorAction.objects.count() == audited


@pytest.mark.parametrize("bad_id", ["..", ".", "a%00b", "x" * 256])
def test_an_id_that_cannot_be_telnyx_s_is_404_and_nothing_is_sent(live_conference, moderator_client, telnyx, bad_id):
    before = len(telnyx.sim_state()["requests"])
    for path in (f"/api/calls/{bad_id}/actions/hangup", f"/api/conferences/{bad_id}/resync",
                 f"/api/conferences/{bad_id}/actions/mute"):  # fmt: skip
        response = post(moderator_client, path)
        assert response.status_code == 404, (path, response.content)
        assert response.json()["error"]["code"] == "not_found"
    assert moderator_client.get(f"/api/conferences/{bad_id}").status_code == 404
    assert len(telnyx.sim_state()["requests"]) == before


def test_a_multipart_body_django_cannot_parse_is_a_json_400(live_conference, moderator_user):
    client = Client(enforce_csrf_checks=True)  # the CSRF check reads the form body: it is what fails to parse
    client.force_login(moderator_user)
    client.cookies["csrftoken"] = "a" * 32
    response = client.post(
        f"/api/conferences/{live_conference['id']}/actions/mute", b"{}", content_type="multipart/form-data",
        headers={"X-CSRFToken": "a" * 32},
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "boundary" in response.json()["error"]["detail"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("get", "/api/conferences/{id}/actions/mute", "POST"),
        ("delete", "/api/conferences", "GET, POST"),
        ("post", "/api/conferences/{id}", "GET"),
        ("post", "/api/queues", "GET"),
        ("put", "/api/schema", "GET"),
    ],
)
def test_a_wrong_method_is_a_json_405_naming_the_allowed_ones(live_conference, moderator_client, method, path, allowed):
    response = getattr(moderator_client, method)(path.format(id=live_conference["id"]))
    assert response.status_code == 405
    assert response["Allow"] == allowed
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_every_error_names_a_code(live_conference, moderator_client, observer_client):
    answers = [
        act(moderator_client, live_conference, "explode"),
        act(moderator_client, live_conference, "mute", {"bogus": 1}),
        act(observer_client, live_conference, "mute"),
    ]
    for response in answers:
        error = response.json()["error"]
        assert set(error) >= {"status", "code", "title", "detail"} and error["code"], error
