"""When Telnyx refuses or fails, the moderator gets a clear message, state stays true, the attempt is audited,
and a command Telnyx cannot de-duplicate is sent exactly once."""

from __future__ import annotations

import pytest

from moderator.models import Call, ModeratorAction, Participant
from tests.fixtures_actions import act

pytestmark = pytest.mark.django_db


def test_telnyx_422_is_kept_as_422_with_its_code_and_detail(live_conference, moderator_client, telnyx):
    telnyx.fault(
        "/v2/conferences/*/actions/mute",
        status=422,
        code="90018",
        title="Call has already ended",
        detail="This call is no longer active and can't receive commands.",
    )
    response = act(
        moderator_client, live_conference, "mute", {"call_control_ids": [live_conference["legs"][1]]}
    )
    assert response.status_code == 422
    assert response.json()["error"] == {
        "status": 422,
        "code": "90018",
        "title": "Call has already ended",
        "detail": "This call is no longer active and can't receive commands.",
    }
    assert not Participant.objects.filter(muted=True).exists()
    audit = ModeratorAction.objects.get(action="mute")
    assert audit.outcome == "refused" and audit.telnyx_error_code == "90018" and audit.http_status == 422
    assert len(telnyx.requests_to("/actions/mute")) == 1


def test_telnyx_404_is_404(live_conference, moderator_client, telnyx):
    telnyx.fault(
        "/v2/conferences/*/actions/hold",
        status=404,
        code="90058",
        title="Invalid conference_id",
        detail="The conference does not exist.",
    )
    response = act(
        moderator_client, live_conference, "hold", {"call_control_ids": [live_conference["legs"][1]]}
    )
    assert response.status_code == 404 and response.json()["error"]["code"] == "90058"
    assert not Participant.objects.filter(on_hold=True).exists()


def test_a_real_telnyx_refusal_reaches_the_moderator(live_conference, moderator_client, telnyx):
    act(moderator_client, live_conference, "end")
    response = act(moderator_client, live_conference, "mute")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "90019"
    assert "no longer active" in response.json()["error"]["detail"]


def test_telnyx_500_is_502_naming_the_action_and_the_caller(live_conference, moderator_client, telnyx):
    guest, other = live_conference["legs"][1:]
    Call.objects.create(call_control_id=guest, from_number="+15550002")  # as its call.initiated tells
    telnyx.fault("/v2/conferences/*/actions/mute", status=500, times=5)
    response = act(moderator_client, live_conference, "mute", {"call_control_ids": [guest, other]})
    assert response.status_code == 502
    error = response.json()["error"]
    # Named as the page names them: by number, or (a caller not known yet) by the end of the leg's id.
    assert error == {"status": 502, "code": "90000", "title": "Telnyx failed to mute",
                     "detail": f"Telnyx answered 500 to mute on +15550002, Leg …{other[-6:]}: Simulated failure."}
    assert not Participant.objects.filter(muted=True).exists()
    assert len(telnyx.requests_to("/actions/mute")) == 1  # never retried blindly
    assert ModeratorAction.objects.get(action="mute").outcome == "failed"


def test_timeout_is_504_and_not_retried(live_conference, moderator_client, telnyx):
    telnyx.fault("/v2/conferences/*/actions/play", mode="timeout", delay=4, times=5)
    response = act(moderator_client, live_conference, "play", {"audio_url": "https://example.com/a.mp3"})
    assert response.status_code == 504
    assert "did not answer in time to play audio" in response.json()["error"]["title"]
    assert len(telnyx.requests_to("/actions/play")) == 1
    audit = ModeratorAction.objects.get(action="play")
    assert audit.outcome == "failed" and audit.telnyx_error_code == "timeout" and audit.latency_ms >= 1000


def test_closed_connection_is_502(live_conference, moderator_client, telnyx):
    telnyx.fault("/v2/conferences/*/actions/unmute", mode="disconnect", times=5)
    response = act(moderator_client, live_conference, "unmute")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "unreachable"
    assert len(telnyx.requests_to("/actions/unmute")) == 1


def test_refused_connection_is_502(live_conference, moderator_client, settings):
    settings.TELNYX_BASE_URL = "http://127.0.0.1:9/v2"  # nothing listens there
    response = act(moderator_client, live_conference, "send_dtmf", {"digits": "1"})
    assert response.status_code == 502
    assert response.json()["error"]["title"] == "Could not reach Telnyx to send DTMF"
    assert ModeratorAction.objects.get(action="send_dtmf").outcome == "failed"


def test_commands_with_a_command_id_are_retried_safely(live_conference, moderator_client, telnyx):
    telnyx.fault("/v2/conferences/*/actions/record_start", status=500, times=1)
    response = act(moderator_client, live_conference, "record_start", {"format": "mp3"})
    assert response.status_code == 200
    requests = telnyx.requests_to("/actions/record_start")
    assert len(requests) == 2
    import json

    assert json.loads(requests[0]["body"])["command_id"] == json.loads(requests[1]["body"])["command_id"]
