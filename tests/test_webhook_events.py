"""Each Telnyx event applied through the real endpoint ends in the state a moderator expects."""

from __future__ import annotations

from datetime import datetime

import pytest

from moderator.control.registry import CONFERENCE_ACTIONS
from moderator.live.timeline import end_reason, history
from moderator.models import Call, Conference, Participant, Recording, WaitingCall, WebhookEvent
from moderator.state import rules
from tests.delivery import apply_stored, post_webhook
from tests.telnyx_events import at, conference_life, event, leg

CONF = {"conference_id": "conf-1", "connection_id": "conn-1"}


def test_conference_created_makes_a_live_conference(deliver):
    deliver(event("conference.created", {**leg("alice"), **CONF}, at(1), occurred_in_payload=True))
    conference = Conference.objects.get(telnyx_id="conf-1")
    assert conference.status == "in_progress"
    assert conference.creator_call_control_id == "v3:alice"
    assert conference.created_at.isoformat().startswith("2026-11-24T09:00:01")


def test_whole_conference_life_ends_completed_with_attendance(deliver):
    deliver(*conference_life("conf-1", ["alice", "bob", "carol"]))
    conference = Conference.objects.get(telnyx_id="conf-1")
    assert conference.status == "completed"
    assert conference.end_reason == "host_left"
    assert not conference.playing and not conference.speaking
    legs = {p.call_control_id: p for p in conference.participants.all()}
    assert set(legs) == {"v3:alice", "v3:bob", "v3:carol"}
    assert all(p.status == "left" and p.left_at for p in legs.values())
    # alice never sent participant.left: the end of the conference bounds her attendance.
    assert legs["v3:alice"].left_at == conference.ended_at
    assert legs["v3:bob"].left_at < conference.ended_at
    # alice, bob, carol each held the floor for 0.1 s, then alice again until the end.
    assert legs["v3:bob"].talk_seconds == 0.1
    assert legs["v3:carol"].talk_seconds == 0.1
    assert legs["v3:alice"].talk_seconds > 0.1
    recording = Recording.objects.get(recording_id="rec-conf-1")
    assert recording.format == "mp3" and recording.channels == "single"
    assert recording.download_urls == {"mp3": "https://example.com/conf-1.mp3"}


def test_participant_joined_and_left(deliver):
    deliver(event("conference.participant.joined", {**leg("bob"), **CONF}, at(2)))
    bob = Participant.objects.get(call_control_id="v3:bob")
    assert bob.status == "joined" and bob.joined_at and bob.call_leg_id == "leg-bob"
    deliver(event("conference.participant.left", {**leg("bob"), **CONF}, at(5)))
    bob.refresh_from_db()
    assert bob.status == "left"
    assert bob.seconds_in_conference() == 3


def test_left_before_joined_leaves_the_leg_left(deliver):
    deliver(event("conference.participant.left", {**leg("bob"), **CONF}, at(5)))
    deliver(event("conference.participant.joined", {**leg("bob"), **CONF}, at(2)))
    bob = Participant.objects.get(call_control_id="v3:bob")
    assert bob.status == "left"
    assert bob.seconds_in_conference() == 3


def test_floor_change_before_created_creates_the_conference(deliver):
    deliver(
        {
            "record_type": "event",
            "event_type": "conference.floor.changed",
            "id": "flat-1",
            "payload": {**leg("dave"), **CONF, "occurred_at": at(3)},
        }
    )  # the flat shape of the spec
    conference = Conference.objects.get(telnyx_id="conf-1")
    assert conference.floor_call_control_id == "v3:dave"
    assert conference.status == "in_progress"
    deliver(event("conference.created", {**leg("alice"), **CONF}, at(1), occurred_in_payload=True))
    conference.refresh_from_db()
    assert conference.floor_call_control_id == "v3:dave"
    assert conference.creator_call_control_id == "v3:alice"


def test_floor_changes_accrue_talk_time(deliver):
    for name, second in (("a", 1), ("b", 4), ("a", 10)):
        deliver(
            event("conference.floor.changed", {**leg(name), **CONF}, at(second), occurred_in_payload=True)
        )
    talk = dict(Participant.objects.values_list("call_control_id", "talk_seconds"))
    assert talk == {"v3:a": 3.0, "v3:b": 6.0}
    assert Conference.objects.get().floor_call_control_id == "v3:a"


def test_conference_playback_and_speak(deliver):
    deliver(
        event(
            "conference.playback.started",
            {**CONF, "media_name": "hold-music"},
            at(1),
            occurred_in_payload=True,
        )
    )
    deliver(event("conference.speak.started", CONF, at(2), occurred_in_payload=True))
    conference = Conference.objects.get()
    assert conference.playing and conference.playback_media == "hold-music" and conference.speaking
    deliver(
        event(
            "conference.playback.ended", {**CONF, "media_name": "hold-music"}, at(3), occurred_in_payload=True
        )
    )
    deliver(event("conference.speak.ended", CONF, at(4), occurred_in_payload=True))
    conference.refresh_from_db()
    assert not conference.playing and not conference.speaking


def test_participant_playback_and_speak(deliver):
    payload = {**leg("bob"), **CONF, "media_url": "https://example.com/a.wav"}
    deliver(event("conference.participant.playback.started", payload, at(1), occurred_in_payload=True))
    deliver(
        event("conference.participant.speak.started", {**leg("bob"), **CONF}, at(1), occurred_in_payload=True)
    )
    bob = Participant.objects.get()
    assert bob.playing and bob.speaking and bob.playback_media == "https://example.com/a.wav"
    deliver(event("conference.participant.playback.ended", payload, at(2), occurred_in_payload=True))
    deliver(
        event("conference.participant.speak.ended", {**leg("bob"), **CONF}, at(2), occurred_in_payload=True)
    )
    bob.refresh_from_db()
    assert not bob.playing and not bob.speaking


def test_playback_ended_before_started_stays_stopped(deliver):
    deliver(event("conference.playback.ended", {**CONF, "media_name": "m"}, at(5), occurred_in_payload=True))
    deliver(
        event("conference.playback.started", {**CONF, "media_name": "m"}, at(1), occurred_in_payload=True)
    )
    assert not Conference.objects.get().playing


def test_queue_enqueued_and_dequeued(deliver):
    caller = {**leg("caller"), "queue": "support"}
    deliver(event("call.enqueued", {**caller, "current_position": 1, "queue_avg_wait_time_secs": 30}, at(1)))
    entry = WaitingCall.objects.get()
    assert entry.status == "waiting" and entry.position == 1 and entry.queue_avg_wait_secs == 30
    deliver(
        event(
            "call.dequeued", {**caller, "reason": "leave", "queue_position": 1, "wait_time_secs": 9}, at(10)
        )
    )
    entry.refresh_from_db()
    assert entry.status == "left" and entry.leave_reason == "leave" and entry.wait_time_secs == 9


def test_hangup_ends_the_leg_everywhere(deliver):
    deliver(
        event(
            "call.initiated",
            {**leg("x"), "from": "+15550001", "to": "+15550100", "direction": "incoming"},
            at(0),
        )
    )
    deliver(event("conference.participant.joined", {**leg("x"), **CONF}, at(1)))
    deliver(event("call.enqueued", {**leg("x"), "queue": "vip", "current_position": 1}, at(1)))
    deliver(event("call.hangup", {**leg("x"), "hangup_cause": "normal_clearing"}, at(7)))
    participant = Participant.objects.get()
    assert participant.status == "left" and participant.seconds_in_conference() == 6
    assert WaitingCall.objects.get().status == "left"
    call = Call.objects.get()
    assert (
        call.state == "hangup" and call.from_number == "+15550001" and call.hangup_cause == "normal_clearing"
    )


def test_hangup_before_join_still_leaves_the_leg_left(deliver):
    deliver(event("call.hangup", {**leg("x"), "hangup_cause": "normal_clearing"}, at(7)))
    deliver(event("conference.participant.joined", {**leg("x"), **CONF}, at(1)))
    assert Participant.objects.get().status == "left"


def test_ended_before_joined_leaves_the_leg_left(deliver):
    deliver(event("conference.ended", {**CONF, "reason": "all_left"}, at(9), occurred_in_payload=True))
    deliver(event("conference.participant.joined", {**leg("late"), **CONF}, at(2)))
    participant = Participant.objects.get()
    assert participant.status == "left"
    assert Conference.objects.get().status == "completed"


@pytest.mark.parametrize("moderator_first", [True, False], ids=["end-accepted-first", "webhook-first"])
def test_a_conference_a_moderator_ended_says_so_though_its_webhook_says_all_left(deliver, moderator_first):
    deliver(event("conference.created", {**leg("alice"), **CONF}, at(1), occurred_in_payload=True))

    def end_accepted():  # what Telnyx accepting the moderator's end means (the action's own path)
        rules.apply_accepted(Conference.objects.get(), CONFERENCE_ACTIONS["end"].accepted, {})

    ended = event("conference.ended", {**CONF, "reason": "all_left"}, at(9), occurred_in_payload=True)
    if moderator_first:
        end_accepted()
        assert post_webhook(ended).status_code == 200
        (note,) = [n for n in apply_stored().changes.timeline if n.event_type == "conference.ended"]
        assert note.detail == "ended_via_api"  # the live pages' timeline says so too
    else:
        deliver(ended)
        end_accepted()
    conference = Conference.objects.get()
    assert conference.status == "completed" and conference.ended_at == datetime.fromisoformat(at(9))
    assert end_reason(conference.end_reason) == "ended by a moderator"
    assert "Conference ended (ended by a moderator)" in [e["text"] for e in history(conference)]


def test_a_conference_everyone_left_says_so(deliver):
    deliver(event("conference.created", {**leg("alice"), **CONF}, at(1), occurred_in_payload=True),
            event("conference.ended", {**CONF, "reason": "all_left"}, at(9), occurred_in_payload=True))
    assert end_reason(Conference.objects.get().end_reason) == "everyone left"


def test_duplicate_event_is_acknowledged_and_changes_nothing(deliver):
    joined = event("conference.participant.joined", {**leg("bob"), **CONF}, at(2))
    left = event("conference.participant.left", {**leg("bob"), **CONF}, at(5))
    deliver(joined, left)
    (response,) = deliver(joined)
    assert response.json() == {"status": "duplicate"}
    assert Participant.objects.get().status == "left"
    assert WebhookEvent.objects.count() == 2


def test_unknown_event_type_is_stored_and_acknowledged(deliver):
    (response,) = deliver(event("call.machine.detection.ended", {**leg("x")}, at(1)))
    assert response.json() == {"status": "stored"}
    stored = WebhookEvent.objects.get()
    assert stored.status == "ignored" and stored.event_type == "call.machine.detection.ended"


def test_event_that_cannot_apply_is_acknowledged_and_kept_with_its_error(deliver):
    (response,) = deliver(event("conference.participant.joined", {"call_control_id": "v3:x"}, at(1)))
    assert response.json() == {"status": "stored"}  # Telnyx must not deliver it again: it would fail again
    stored = WebhookEvent.objects.get()
    assert stored.status == "failed" and "conference_id" in stored.error
    assert not Participant.objects.exists()


def test_stored_event_keeps_the_raw_body(deliver):
    document = event("conference.created", {**leg("a"), **CONF}, at(1), occurred_in_payload=True)
    deliver(document)
    import json

    stored = WebhookEvent.objects.get()
    assert json.loads(stored.raw) == document
    assert stored.conference_telnyx_id == "conf-1" and stored.attempt == 1
