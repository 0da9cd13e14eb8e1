"""What the pages say and offer, without a browser: human words, recordings playable while live (http(s) only),
read-only ended conferences, the choices a dialog offers, and the API's 400 in words."""

from __future__ import annotations

import pytest
from django.utils import timezone

from moderator.live import fragments, timeline
from moderator.models import Call, Conference, ModeratorAction, Participant, Recording, Room, WaitingCall
from moderator.state.serializers import link_url
from tests.telnyx_events import at, conference_life, event

pytestmark = pytest.mark.django_db


def test_end_reasons_and_role_changes_read_as_words(deliver, observer_client, moderator_user):
    deliver(*conference_life("conf-1", ["alice", "bob"]))
    page = observer_client.get("/conferences/conf-1/").content.decode()
    assert "the host left" in page and "host_left" not in page
    board = observer_client.get("/").content.decode()
    assert "ended · the host left" in board and "hostleft" not in board
    Call.objects.create(call_control_id="v3:bob", from_number="+15550102")
    Call.objects.create(call_control_id="v3:alice", from_number="+15550101")
    role = ModeratorAction(user=moderator_user, action="update", call_control_ids=["v3:bob"], outcome="ok",
                           parameters={"supervisor_role": "whisper", "whisper_call_control_ids": ["v3:alice"]})
    assert timeline.action_entry(role)["text"] == "mod made +15550102 a whisperer to +15550101"
    barge = ModeratorAction(user=moderator_user, action="update", call_control_ids=["v3:bob"], outcome="ok",
                            parameters={"supervisor_role": "barge"})
    assert timeline.action_entry(barge)["text"] == "mod let +15550102 barge in"
    failed = ModeratorAction(user=moderator_user, action="mute", call_control_ids=[], outcome="refused",
                             error_detail="Conference has already ended: no longer active")
    assert timeline.action_entry(failed)["text"] == (
        "mod could not mute everyone: Conference has already ended: no longer active")


def test_a_saved_recording_is_offered_while_the_conference_is_live_and_only_http_urls_become_links(
        deliver, observer_client):
    deliver(*conference_life("conf-1", ["alice", "bob"])[:4])
    conference = Conference.objects.get(telnyx_id="conf-1")
    conference.recording_at = timezone.now()  # as recording.saved leaves it
    conference.save()
    Recording.objects.create(recording_id="r1", conference=conference, format="mp3", channels="single",
                             download_urls={"mp3": "https://files.example.com/r1.mp3"},
                             public_urls={"wav": "javascript:alert(1)"})
    Recording.objects.create(recording_id="r2", conference=conference, format="wav",
                             download_urls={"wav": "data:audio/wav;base64,AAAA"})
    page = observer_client.get("/conferences/conf-1/").content.decode()
    assert conference.is_live and 'src="https://files.example.com/r1.mp3"' in page and "download mp3" in page
    assert "javascript:" not in page and "data:audio" not in page and "no file to download" in page
    html = fragments.summary(conference)  # what a broadcast carries
    assert "https://files.example.com/r1.mp3" in html and "javascript:" not in html
    assert not link_url("ftp://example.com/a.mp3") and not link_url("https://")


def test_an_ended_conference_renders_no_controls_even_for_a_moderator(deliver, moderator_client):
    deliver(*conference_life("conf-1", ["alice", "bob"])[:6])
    live = moderator_client.get("/conferences/conf-1/").content.decode()
    assert 'data-action="mute"' in live and 'role="toolbar"' in live
    deliver(event("conference.ended", {"conference_id": "conf-1", "reason": "ended_via_api"}, at(60),
                  occurred_in_payload=True))
    ended = moderator_client.get("/conferences/conf-1/").content.decode()
    assert "data-action=" not in ended and 'class="leg-select"' not in ended and 'id="row-menu"' not in ended
    assert "nothing here can be changed" in ended and "ended by a moderator" in ended
    conference = Conference.objects.get(telnyx_id="conf-1")
    leg = Participant.objects.filter(conference=conference).first()
    assert "data-action" not in fragments.participant_row(leg, conference, {}, can_moderate=True)


def test_the_add_a_call_and_queue_dialogs_offer_what_the_product_knows(deliver, moderator_client, observer_user):
    room = Room.objects.create(name="Town hall", waiting_room=True)
    Room.objects.create(name="No waiting", waiting_room=False)
    Call.objects.create(call_control_id="v3:w", from_number="+15550181", state="answered")
    WaitingCall.objects.create(call_control_id="v3:w", queue_name=room.queue_name, enqueued_at=timezone.now())
    Call.objects.create(call_control_id="v3:parked", from_number="+15550177", state="answered")
    Call.objects.create(call_control_id="v3:gone", from_number="+15550176", state="hangup")
    deliver(*conference_life("conf-1", ["alice", "bob"]))
    Call.objects.create(call_control_id="v3:bob", from_number="+15550102", state="answered")
    response = moderator_client.get("/api/choices/calls")
    assert response.status_code == 200, response.content
    calls = response.json()["choices"]
    assert {"value": "v3:w", "label": "+15550181 · waiting in Town hall", "group": "Waiting"} in calls
    assert {"value": "v3:parked", "label": "+15550177 · answered, in no conference", "group": "Parked"} in calls
    assert {"value": "v3:bob", "label": "+15550102 · left conf-1", "group": "Recently left a conference"} in calls
    assert "v3:gone" not in {c["value"] for c in calls}
    queues = moderator_client.get("/api/choices/queues").json()["choices"]
    assert queues == [{"value": room.queue_name, "label": "Town hall waiting room", "group": "Waiting rooms"}]
    assert moderator_client.get("/api/choices/nope").status_code == 404
    moderator_client.force_login(observer_user)
    assert moderator_client.get("/api/choices/calls").status_code == 403


def test_a_bad_dtmf_string_is_refused_in_words_naming_its_field(deliver, moderator_client):
    deliver(*conference_life("conf-1", ["alice", "bob"])[:4])
    response = moderator_client.post("/api/conferences/conf-1/actions/send_dtmf", {"digits": "12x"},
                                     content_type="application/json")
    error = response.json()["error"]
    assert response.status_code == 400 and error["field"] == "digits"
    assert error["detail"] == "digits: use only the digits 0–9, *, #, the letters A–D, and w or W for a pause"
