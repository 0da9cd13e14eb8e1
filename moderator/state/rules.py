"""Every rule about how a Telnyx webhook changes conference state lives here.

Telnyx delivers at least once and in any order, so each rule is written to be order-independent:
a state field only moves to an event that occurred later than the one that last set it (its ``*_at``
version), ties go to the terminal state (left beats joined, ended beats started), and the legs'
end bounds (conference end, call hangup) are applied as a clamp after every change rather than as
an event of their own. Applying any permutation of a conference's events, with duplicates, therefore
ends in the state of in-order delivery.

Callers hold a transaction; rows are locked with select_for_update so that several workers applying
events of the same conference at once serialise on that conference.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from moderator.models import Call, Conference, FloorChange, Participant, Recording, WaitingCall

if TYPE_CHECKING:
    from moderator.telnyx.event import TelnyxEvent


@dataclass
class Changes:
    """What a batch of events touched, for the broadcast after commit."""

    conferences: set[str] = field(default_factory=set)
    participants: set[tuple[str, str]] = field(default_factory=set)
    queues: bool = False
    # (conference id, entry) for the live timeline: what happened, when, to which leg.
    timeline: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # Conferences first seen without a name (webhooks carry none): their name is fetched from Telnyx.
    unnamed: set[str] = field(default_factory=set)
    # Dial-in routing steps decided in this transaction, run after commit (see `moderator.routing`).
    routing: list[Any] = field(default_factory=list)

    def conference(self, conference: Conference) -> None:
        self.conferences.add(conference.telnyx_id)

    def participant(self, participant: Participant) -> None:
        self.participants.add((participant.conference.telnyx_id, participant.call_control_id))
        self.conferences.add(participant.conference.telnyx_id)

    def merge(self, other: Changes) -> None:
        self.conferences |= other.conferences
        self.participants |= other.participants
        self.queues = self.queues or other.queues
        self.timeline.extend(other.timeline)
        self.unnamed |= other.unnamed
        self.routing.extend(other.routing)


def _later(when: datetime, version: datetime | None) -> bool:
    return version is None or when > version


def _not_earlier(when: datetime, version: datetime | None) -> bool:
    return version is None or when >= version


def _earliest(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _text(payload: dict[str, Any], key: str) -> str:
    value = payload.get(key)
    return str(value) if value not in (None, "") else ""


def _time(payload: dict[str, Any], key: str) -> datetime | None:
    value = payload.get(key)
    return parse_datetime(value) if isinstance(value, str) else None


# --- rows -----------------------------------------------------------------------------------------


def _locked_conference(telnyx_id: str) -> Conference:
    # Any event for an unknown conference creates it: a floor.changed may arrive before created.
    conference, _ = Conference.objects.select_for_update().get_or_create(telnyx_id=telnyx_id)
    return conference


def _hangup_time(call_control_id: str) -> datetime | None:
    return (
        Call.objects.filter(call_control_id=call_control_id, state=Call.State.HANGUP)
        .values_list("ended_at", flat=True)
        .first()
    )


def _participant(conference: Conference, payload: dict[str, Any]) -> Participant:
    call_control_id = _text(payload, "call_control_id")
    participant, created = Participant.objects.select_for_update().get_or_create(
        conference=conference,
        call_control_id=call_control_id,
        defaults={"hangup_at": _hangup_time(call_control_id)},
    )
    participant.conference = conference
    for key in ("call_leg_id", "call_session_id"):
        if not getattr(participant, key) and payload.get(key):
            setattr(participant, key, _text(payload, key))
    return participant


def _clamp_participant(participant: Participant, conference: Conference) -> None:
    """A leg cannot outlive its conference or its call: bound it by both."""
    bound = _earliest(
        conference.ended_at if conference.status == Conference.Status.COMPLETED else None,
        participant.hangup_at,
    )
    if bound is not None:
        if participant.status != Participant.Status.LEFT:
            participant.status = Participant.Status.LEFT
            participant.left_at = bound
        elif participant.left_at is None or participant.left_at > bound:
            participant.left_at = bound
    if participant.status == Participant.Status.LEFT:
        participant.playing = participant.speaking = False


def _clamp_conference(conference: Conference) -> None:
    if conference.status == Conference.Status.COMPLETED:
        conference.playing = conference.speaking = False
        conference.recording_status = Conference.RecordingStatus.IDLE


def _clamp_waiting(entry: WaitingCall) -> None:
    if entry.hangup_at is None:
        return
    if entry.status == WaitingCall.Status.WAITING:
        entry.status = WaitingCall.Status.LEFT
        entry.left_at = entry.hangup_at
        entry.leave_reason = entry.leave_reason or "hangup"
    elif entry.left_at is None or entry.left_at > entry.hangup_at:
        entry.left_at = entry.hangup_at


# --- talk time ------------------------------------------------------------------------------------


def _talk_time_changed(conference: Conference, changes: Changes) -> None:
    """Talk time of every leg from the conference's floor changes, whatever order they arrived in.

    A span runs from one floor change to the next, cut short by the holder leaving or the end of the
    conference. The span still open (the current speaker's) is not counted: it ticks live on the page.
    Only legs that ever held the floor (or already have talk time) are read: in a conference of a
    thousand listeners a floor change costs the same as in one of three.
    """
    floor = list(FloorChange.objects.filter(conference=conference).values_list("occurred_at", "call_control_id"))
    holders = {holder for _, holder in floor}
    legs = {
        call_control_id: (talk_seconds, left_at if status == Participant.Status.LEFT else None)
        for call_control_id, talk_seconds, status, left_at in Participant.objects.filter(conference=conference)
        .filter(Q(call_control_id__in=holders) | Q(talk_seconds__gt=0))
        .order_by()
        .values_list("call_control_id", "talk_seconds", "status", "left_at")
    }
    ended = conference.ended_at if conference.status == Conference.Status.COMPLETED else None
    totals: dict[str, float] = defaultdict(float)
    for index, (start, holder) in enumerate(floor):
        following = floor[index + 1][0] if index + 1 < len(floor) else None
        left = legs[holder][1] if holder in legs else None
        stop = _earliest(following, left, ended)
        if stop is not None:
            totals[holder] += max(0.0, (stop - start).total_seconds())
    for call_control_id, (talk_seconds, _) in legs.items():
        if abs(talk_seconds - totals[call_control_id]) > 1e-6:
            # The conference row is locked (every handler takes it first): no other writer of this leg.
            Participant.objects.filter(conference=conference, call_control_id=call_control_id).update(
                talk_seconds=totals[call_control_id], updated_at=timezone.now()
            )
            changes.participants.add((conference.telnyx_id, call_control_id))
            changes.conferences.add(conference.telnyx_id)


# --- handlers -------------------------------------------------------------------------------------


def _conference_created(event: TelnyxEvent, when: datetime, changes: Changes) -> None:
    payload = event.payload
    conference = _locked_conference(event.conference_id)
    conference.created_at = _earliest(conference.created_at, when)
    if _later(when, conference.status_at):
        conference.status_at = when
        conference.creator_call_control_id = (
            _text(payload, "call_control_id") or conference.creator_call_control_id
        )
        conference.creator_call_session_id = (
            _text(payload, "call_session_id") or conference.creator_call_session_id
        )
        conference.connection_id = _text(payload, "connection_id") or conference.connection_id
    if conference.status == Conference.Status.INIT:
        conference.status = Conference.Status.IN_PROGRESS
    conference.save()
    changes.conference(conference)
    if not conference.name:
        changes.unnamed.add(conference.telnyx_id)


def _conference_ended(event: TelnyxEvent, when: datetime, changes: Changes) -> None:
    conference = _locked_conference(event.conference_id)
    if conference.status != Conference.Status.COMPLETED or (
        conference.ended_at and when < conference.ended_at
    ):
        conference.ended_at = when
        conference.end_reason = _text(event.payload, "reason")
    conference.status = Conference.Status.COMPLETED
    _clamp_conference(conference)
    conference.save()
    changes.conference(conference)
    for participant in conference.participants.select_for_update():
        participant.conference = conference
        before = (participant.status, participant.left_at, participant.playing, participant.speaking)
        _clamp_participant(participant, conference)
        if before != (participant.status, participant.left_at, participant.playing, participant.speaking):
            participant.save()
            changes.participant(participant)
    _talk_time_changed(conference, changes)


def _floor_changed(event: TelnyxEvent, when: datetime, changes: Changes) -> None:
    conference = _locked_conference(event.conference_id)
    participant = _participant(conference, event.payload)
    _clamp_participant(participant, conference)
    participant.save()
    FloorChange.objects.get_or_create(
        conference=conference, occurred_at=when, call_control_id=participant.call_control_id
    )
    previous = conference.floor_call_control_id
    if _later(when, conference.floor_at):
        conference.floor_call_control_id = participant.call_control_id
        conference.floor_at = when
        if conference.status == Conference.Status.INIT:
            conference.status = Conference.Status.IN_PROGRESS
        conference.save()
    changes.conference(conference)
    changes.participant(participant)
    if previous and previous != participant.call_control_id:
        changes.participants.add((conference.telnyx_id, previous))
    _talk_time_changed(conference, changes)


def _participant_joined(event: TelnyxEvent, when: datetime, changes: Changes) -> None:
    conference = _locked_conference(event.conference_id)
    if conference.status == Conference.Status.INIT:
        conference.status = Conference.Status.IN_PROGRESS
        conference.save()
    participant = _participant(conference, event.payload)
    participant.joined_at = _earliest(participant.joined_at, when)
    if _later(when, participant.status_at):
        participant.status = Participant.Status.JOINED
        participant.status_at = when
        participant.left_at = None
    _clamp_participant(participant, conference)
    participant.save()
    changes.participant(participant)


def _participant_left(event: TelnyxEvent, when: datetime, changes: Changes) -> None:
    conference = _locked_conference(event.conference_id)
    participant = _participant(conference, event.payload)
    if _not_earlier(when, participant.status_at):
        participant.status = Participant.Status.LEFT
        participant.status_at = when
        participant.left_at = when
    _clamp_participant(participant, conference)
    participant.save()
    changes.participant(participant)
    _talk_time_changed(conference, changes)


def _media_name(payload: dict[str, Any]) -> str:
    return _text(payload, "media_url") or _text(payload, "media_name")


def _conference_media(kind: str, started: bool) -> Callable[[TelnyxEvent, datetime, Changes], None]:
    """conference.playback.* and conference.speak.*: conference-wide media on or off."""

    def handle(event: TelnyxEvent, when: datetime, changes: Changes) -> None:
        conference = _locked_conference(event.conference_id)
        version = getattr(conference, f"{kind}_at")
        if (_later if started else _not_earlier)(when, version):
            setattr(conference, "playing" if kind == "playback" else "speaking", started)
            setattr(conference, f"{kind}_at", when)
            if kind == "playback":
                conference.playback_media = _media_name(event.payload)
        _clamp_conference(conference)
        conference.save()
        changes.conference(conference)

    return handle


def _participant_media(kind: str, started: bool) -> Callable[[TelnyxEvent, datetime, Changes], None]:
    """conference.participant.playback.* and .speak.*: media to one leg on or off."""

    def handle(event: TelnyxEvent, when: datetime, changes: Changes) -> None:
        conference = _locked_conference(event.conference_id)
        participant = _participant(conference, event.payload)
        version = getattr(participant, f"{kind}_at")
        if (_later if started else _not_earlier)(when, version):
            setattr(participant, "playing" if kind == "playback" else "speaking", started)
            setattr(participant, f"{kind}_at", when)
            if kind == "playback":
                participant.playback_media = _media_name(event.payload)
        _clamp_participant(participant, conference)
        participant.save()
        changes.participant(participant)

    return handle


def _recording_saved(event: TelnyxEvent, when: datetime, changes: Changes) -> None:
    payload = event.payload
    conference = _locked_conference(event.conference_id)
    Recording.objects.update_or_create(
        recording_id=_text(payload, "recording_id") or event.id,
        defaults={
            "conference": conference,
            "call_control_id": _text(payload, "call_control_id"),
            "format": _text(payload, "format"),
            "channels": _text(payload, "channels"),
            "started_at": _time(payload, "recording_started_at"),
            "ended_at": _time(payload, "recording_ended_at"),
            "download_urls": payload.get("recording_urls") or {},
            "public_urls": payload.get("public_recording_urls") or {},
            "saved_at": when,
        },
    )
    # A saved recording has stopped, unless a later command started another one.
    ended = _time(payload, "recording_ended_at") or when
    if _not_earlier(ended, conference.recording_at):
        conference.recording_status = Conference.RecordingStatus.IDLE
        conference.recording_at = ended
        conference.save()
    changes.conference(conference)


def _waiting_entry(payload: dict[str, Any]) -> WaitingCall:
    call_control_id = _text(payload, "call_control_id")
    entry, _ = WaitingCall.objects.select_for_update().get_or_create(
        call_control_id=call_control_id,
        queue_name=_text(payload, "queue"),
        defaults={"hangup_at": _hangup_time(call_control_id)},
    )
    for key in ("call_leg_id", "call_session_id"):
        if not getattr(entry, key) and payload.get(key):
            setattr(entry, key, _text(payload, key))
    return entry


def _int(payload: dict[str, Any], key: str) -> int | None:
    value = payload.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _call_enqueued(event: TelnyxEvent, when: datetime, changes: Changes) -> None:
    entry = _waiting_entry(event.payload)
    entry.enqueued_at = _earliest(entry.enqueued_at, when)
    newer = _later(when, entry.status_at)
    if newer:
        entry.status = WaitingCall.Status.WAITING
        entry.status_at = when
        entry.left_at = None
        entry.leave_reason = ""
        entry.position = _int(event.payload, "current_position")
    if newer or entry.queue_avg_wait_secs is None:
        # Only the enqueue event carries the queue's average wait; a dequeue must not hide it.
        entry.queue_avg_wait_secs = _int(event.payload, "queue_avg_wait_time_secs")
    _clamp_waiting(entry)
    entry.save()
    changes.queues = True


def _call_dequeued(event: TelnyxEvent, when: datetime, changes: Changes) -> None:
    entry = _waiting_entry(event.payload)
    if _not_earlier(when, entry.status_at):
        entry.status = WaitingCall.Status.LEFT
        entry.status_at = when
        entry.left_at = when
        entry.leave_reason = _text(event.payload, "reason")
        entry.wait_time_secs = _int(event.payload, "wait_time_secs")
        entry.position = _int(event.payload, "queue_position")
    _clamp_waiting(entry)
    entry.save()
    changes.queues = True


_CALL_STATE_RANK = {Call.State.INITIATED: 0, Call.State.ANSWERED: 1, Call.State.HANGUP: 2}


def _call(event: TelnyxEvent, state: Call.State) -> Call:
    payload = event.payload
    call, _ = Call.objects.select_for_update().get_or_create(call_control_id=event.call_control_id)
    for attribute, key in (
        ("call_leg_id", "call_leg_id"),
        ("call_session_id", "call_session_id"),
        ("connection_id", "connection_id"),
        ("from_number", "from"),
        ("to_number", "to"),
        ("direction", "direction"),
    ):
        if not getattr(call, attribute) and payload.get(key):
            setattr(call, attribute, _text(payload, key)[:64])
    # Calls only move forward: ringing → answered → hung up.
    if _CALL_STATE_RANK[state] >= _CALL_STATE_RANK[Call.State(call.state)] or call.state_at is None:
        if _CALL_STATE_RANK[state] > _CALL_STATE_RANK[Call.State(call.state)] or call.state_at is None:
            call.state = state
        call.state_at = event.occurred_at or call.state_at
    return call


def _on_the_waiting_room_panel(call: Call) -> bool:
    """The board's waiting-room panel shows a call that waits (or waited) in a queue, or that dial-in
    routing has dealt with; any other call's events leave the panel as it is (no re-render for them)."""
    return bool(call.routing_note or call.routing_error) or (
        WaitingCall.objects.filter(call_control_id=call.call_control_id).exists()
    )


def _call_initiated(event: TelnyxEvent, when: datetime, changes: Changes) -> None:
    call = _call(event, Call.State.INITIATED)
    call.started_at = _earliest(call.started_at, _time(event.payload, "start_time") or when)
    call.save()
    changes.queues = changes.queues or _on_the_waiting_room_panel(call)


def _call_answered(event: TelnyxEvent, when: datetime, changes: Changes) -> None:
    call = _call(event, Call.State.ANSWERED)
    call.answered_at = _earliest(call.answered_at, when)
    call.save()
    changes.queues = changes.queues or _on_the_waiting_room_panel(call)


def _call_hangup(event: TelnyxEvent, when: datetime, changes: Changes) -> None:
    """The leg is gone: it leaves every conference and every queue it was in."""
    call = _call(event, Call.State.HANGUP)
    call.ended_at = _earliest(call.ended_at, when)
    call.hangup_cause = call.hangup_cause or _text(event.payload, "hangup_cause")
    call.started_at = _earliest(call.started_at, _time(event.payload, "start_time"))
    call.save()
    conference_ids = (
        Participant.objects.filter(call_control_id=call.call_control_id)
        .order_by("conference_id")
        .values_list("conference__telnyx_id", flat=True)
    )
    for telnyx_id in list(conference_ids):
        conference = _locked_conference(telnyx_id)
        participant = Participant.objects.select_for_update().get(
            conference=conference, call_control_id=call.call_control_id
        )
        participant.conference = conference
        participant.hangup_at = _earliest(participant.hangup_at, call.ended_at)
        _clamp_participant(participant, conference)
        participant.save()
        changes.participant(participant)
        _talk_time_changed(conference, changes)
    waited = False
    for entry in WaitingCall.objects.select_for_update().filter(call_control_id=call.call_control_id):
        entry.hangup_at = _earliest(entry.hangup_at, call.ended_at)
        _clamp_waiting(entry)
        entry.save()
        waited = True
    changes.queues = changes.queues or waited or bool(call.routing_note or call.routing_error)


HANDLERS: dict[str, Callable[[TelnyxEvent, datetime, Changes], None]] = {
    "conference.created": _conference_created,
    "conference.ended": _conference_ended,
    "conference.floor.changed": _floor_changed,
    "conference.participant.joined": _participant_joined,
    "conference.participant.left": _participant_left,
    "conference.participant.playback.started": _participant_media("playback", True),
    "conference.participant.playback.ended": _participant_media("playback", False),
    "conference.participant.speak.started": _participant_media("speak", True),
    "conference.participant.speak.ended": _participant_media("speak", False),
    "conference.playback.started": _conference_media("playback", True),
    "conference.playback.ended": _conference_media("playback", False),
    "conference.speak.started": _conference_media("speak", True),
    "conference.speak.ended": _conference_media("speak", False),
    "conference.recording.saved": _recording_saved,
    "call.enqueued": _call_enqueued,
    "call.dequeued": _call_dequeued,
    "call.initiated": _call_initiated,
    "call.answered": _call_answered,
    "call.hangup": _call_hangup,
}

# Events that must name a conference / a call leg to be applied at all.
_NEEDS_CONFERENCE = {name for name in HANDLERS if name.startswith("conference.")}
_NEEDS_CALL = {name for name in HANDLERS if name.startswith("call.")} | {
    "conference.floor.changed",
    "conference.participant.joined",
    "conference.participant.left",
    "conference.participant.playback.started",
    "conference.participant.playback.ended",
    "conference.participant.speak.started",
    "conference.participant.speak.ended",
}


class EventNotApplicable(ValueError):
    """The event is known but lacks what applying it needs (kept as failed, replayable)."""


def bump_versions(changes: Changes) -> dict[str, int]:
    """Give every changed conference its next version (the live pages' serial); return the new ones.

    Runs in the transaction that made the changes, so a rolled-back change never takes a version.
    """
    if not changes.conferences:
        return {}
    Conference.objects.filter(telnyx_id__in=changes.conferences).update(version=F("version") + 1)
    return dict(
        Conference.objects.filter(telnyx_id__in=changes.conferences).values_list("telnyx_id", "version")
    )


def is_known(event_type: str) -> bool:
    return event_type in HANDLERS


def event_time(event: TelnyxEvent) -> datetime:
    if event.occurred_at is not None:
        return event.occurred_at
    # recording.saved carries no occurred_at at all; its end time is when it happened.
    return _time(event.payload, "recording_ended_at") or timezone.now()


def apply_event(event: TelnyxEvent, changes: Changes) -> None:
    """Apply one stored event to the models. Raises for events that cannot be applied."""
    if event.event_type in _NEEDS_CONFERENCE and not event.conference_id:
        raise EventNotApplicable(f"{event.event_type} has no payload.conference_id")
    if event.event_type in _NEEDS_CALL and not event.call_control_id:
        raise EventNotApplicable(f"{event.event_type} has no payload.call_control_id")
    if event.event_type in ("call.enqueued", "call.dequeued") and not event.payload.get("queue"):
        raise EventNotApplicable(f"{event.event_type} has no payload.queue")
    HANDLERS[event.event_type](event, event_time(event), changes)


# --- accepted commands and resyncs ----------------------------------------------------------------
# Mute, unmute, hold, unhold and supervisor-role changes produce no webhook: their state comes from
# Telnyx's accepting answer, and from its participant lists when the product resyncs.

_FLAG_COMMANDS = {
    "mute": ("muted", True),
    "unmute": ("muted", False),
    "hold": ("on_hold", True),
    "unhold": ("on_hold", False),
}
_RECORDING_COMMANDS = {
    "record_start": Conference.RecordingStatus.RECORDING,
    "record_resume": Conference.RecordingStatus.RECORDING,
    "record_pause": Conference.RecordingStatus.PAUSED,
    "record_stop": Conference.RecordingStatus.IDLE,
}


def apply_accepted_command(conference: Conference, action: str, params: dict[str, Any]) -> Changes:
    """The state a command Telnyx accepted implies, where no webhook will report it."""
    changes = Changes()
    conference = Conference.objects.select_for_update().get(pk=conference.pk)
    if action in _FLAG_COMMANDS:
        field_name, value = _FLAG_COMMANDS[action]
        legs = conference.participants.select_for_update().exclude(status=Participant.Status.LEFT)
        if params.get("call_control_ids"):
            legs = legs.filter(call_control_id__in=params["call_control_ids"])
        for participant in legs:
            if getattr(participant, field_name) != value:
                setattr(participant, field_name, value)
                participant.conference = conference
                participant.save(update_fields=[field_name, "updated_at"])
                changes.participant(participant)
    elif action == "update":
        participant = (
            conference.participants.select_for_update()
            .filter(call_control_id=params["call_control_id"])
            .first()
        )
        if participant is not None:
            participant.supervisor_role = params["supervisor_role"]
            participant.whisper_call_control_ids = params.get("whisper_call_control_ids") or []
            participant.conference = conference
            participant.save(update_fields=["supervisor_role", "whisper_call_control_ids", "updated_at"])
            changes.participant(participant)
    elif action in _RECORDING_COMMANDS:
        conference.recording_status = _RECORDING_COMMANDS[action]
        conference.recording_at = timezone.now()
        conference.save(update_fields=["recording_status", "recording_at", "updated_at"])
        changes.conference(conference)
    elif action == "join":
        # The leg shows as "joining" until conference.participant.joined arrives (unless it already has).
        participant, created = Participant.objects.get_or_create(
            conference=conference,
            call_control_id=params["call_control_id"],
            defaults={
                "muted": bool(params.get("mute")),
                "on_hold": bool(params.get("hold")),
                "supervisor_role": params.get("supervisor_role") or "none",
                "whisper_call_control_ids": params.get("whisper_call_control_ids") or [],
            },
        )
        if created:
            changes.participant(participant)
    return changes


def reconcile_from_telnyx(
    conference: Conference, data: dict[str, Any], legs: list[dict[str, Any]]
) -> Changes:
    """Make the conference agree with Telnyx's own view (GET conference and its participants)."""
    changes = Changes()
    conference = Conference.objects.select_for_update().get(pk=conference.pk)
    if data.get("name") and data["name"] != conference.name:
        conference.name = data["name"]
    if data.get("region"):
        conference.region = data["region"]
    if data.get("status") == Conference.Status.COMPLETED and conference.status != Conference.Status.COMPLETED:
        conference.status = Conference.Status.COMPLETED
        conference.ended_at = conference.ended_at or timezone.now()
        conference.end_reason = data.get("end_reason") or conference.end_reason
    elif data.get("status") == Conference.Status.IN_PROGRESS and conference.status == Conference.Status.INIT:
        conference.status = Conference.Status.IN_PROGRESS
    conference.save()
    changes.conference(conference)
    for leg in legs:
        participant, _ = Participant.objects.select_for_update().get_or_create(
            conference=conference, call_control_id=leg["call_control_id"]
        )
        participant.conference = conference
        participant.call_leg_id = participant.call_leg_id or leg.get("call_leg_id") or ""
        participant.muted = bool(leg.get("muted"))
        participant.on_hold = bool(leg.get("on_hold"))
        participant.whisper_call_control_ids = leg.get("whisper_call_control_ids") or []
        if leg.get("status") in Participant.Status.values and leg["status"] != participant.status:
            participant.status = leg["status"]
            if participant.status == Participant.Status.LEFT:
                participant.left_at = participant.left_at or timezone.now()
            else:
                participant.left_at = None
        _clamp_participant(participant, conference)
        participant.save()
        changes.participant(participant)
    return changes
