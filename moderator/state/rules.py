"""Every rule about how a Telnyx webhook changes conference state lives here.

Telnyx delivers at least once and in any order, so each rule is written to be order-independent:
a state field only moves to an event that occurred later than the one that last set it (its ``*_at``
version), ties go to the terminal state (left beats joined, ended beats started), and the legs'
end bounds (conference end, call hangup) are applied as a clamp after every change rather than as
an event of their own. Applying any permutation of a conference's events, with duplicates, therefore
ends in the state of in-order delivery — and so does applying them in batches of any size.

The rules run in memory, on a batch's `WorkingSet` (loaded in a constant number of queries, written
back in bulk by the applier, `moderator.ingest.applier`). Mute, hold and role changes get no webhook:
`apply_accepted_command` and `reconcile_from_telnyx` at the end say what Telnyx's answers mean.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from django.db.models import F, Model
from django.utils import timezone

from moderator.models import Call, Caption, Conference, Participant, Recording, WaitingCall
from moderator.state.changes import Changes, TimelineNote
from moderator.telnyx.event import is_text, parse_time

if TYPE_CHECKING:
    from moderator.state.working_set import WorkingSet
    from moderator.telnyx.event import TelnyxEvent

Rule = Callable[["WorkingSet", "TelnyxEvent", datetime], None]


def _later(when: datetime, version: datetime | None) -> bool:
    return version is None or when > version


def _not_earlier(when: datetime, version: datetime | None) -> bool:
    return version is None or when >= version


def _latest(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _earliest(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


@cache
def _max_length(model: type[Model], name: str) -> int:
    return model._meta.get_field(name).max_length


def _text(payload: dict[str, Any], key: str, model: type[Model] | None = None, name: str = "") -> str:
    """A payload string, cut to the column it goes into (Telnyx never sends more; a hostile body might)."""
    value = payload.get(key)
    text = str(value) if value not in (None, "") else ""
    return text[: _max_length(model, name or key)] if model is not None else text


def _time(payload: dict[str, Any], key: str) -> datetime | None:
    return parse_time(payload.get(key))


def _int(payload: dict[str, Any], key: str) -> int | None:
    value = payload.get(key)
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31
    return value if ok else None


# --- bounds -----------------------------------------------------------------------------------------


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
        participant.hand_raised_at = None  # (`settle_hands` reads it again while the leg is in)
        participant.caption_line = ""  # nobody is saying anything on a leg that is gone
    if participant.hangup_at is not None:
        participant.transcribing = False  # Telnyx stops transcribing a call that hung up


# --- raised hands ---------------------------------------------------------------------------------
# A caller presses *1 to raise their hand and *1 again to lower it. Telnyx sends one call.dtmf.received per
# digit, in any order, maybe before the leg's joined: the call keeps its recent keys with their times, and each
# of its legs reads its hand from them once the batch is applied (`settle_hands`).

HAND_SIGNAL = ("*", "1")
HAND_SIGNAL_WITHIN = timedelta(seconds=3)  # between the two keys of one *1
DTMF_KEPT = 64  # recent keys per call: a late key older than these no longer counts


def hand_raised(digits: list[list[str]], lowered_at: datetime | None) -> datetime | None:
    """When the hand went up, or None: each *1 pressed after a moderator last lowered it toggles it."""
    raised = previous = None
    for stamp, digit in digits:
        at = datetime.fromisoformat(stamp)
        if (
            previous is not None
            and (previous[1], digit) == HAND_SIGNAL
            and at - previous[0] <= HAND_SIGNAL_WITHIN
            and (lowered_at is None or at > lowered_at)
        ):
            raised = None if raised else at
        previous = (at, digit)
    return raised


def settle_hands(ws: WorkingSet) -> None:
    """Every leg of the batch whose call it read: its hand, from the call's keys (down once it left)."""
    for leg in ws.legs.values():
        call = ws.calls.get(leg.call_control_id)
        if call is not None and leg.status != Participant.Status.LEFT:
            leg.hand_raised_at = hand_raised(call.dtmf_digits, leg.hand_lowered_at)


def _dtmf_received(ws: WorkingSet, event: TelnyxEvent, when: datetime) -> None:
    """A key the caller pressed, kept on the call (in time order, a duplicate once)."""
    digit = _text(event.payload, "digit")[:1]
    if not digit:
        return
    call = ws.call(event.call_control_id)
    digits = {(stamp, d) for stamp, d in call.dtmf_digits} | {(when.isoformat(), digit)}
    ordered = sorted(digits, key=lambda pair: (datetime.fromisoformat(pair[0]), pair[1]))
    call.dtmf_digits = [list(pair) for pair in ordered[-DTMF_KEPT:]]


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


def _leg(ws: WorkingSet, conference: Conference, payload: dict[str, Any]) -> Participant:
    leg = ws.leg(conference, _text(payload, "call_control_id"))
    for key in ("call_leg_id", "call_session_id"):
        if not getattr(leg, key) and payload.get(key):
            setattr(leg, key, _text(payload, key, Participant))
    return leg


# --- talk time ------------------------------------------------------------------------------------


def settle_talk_time(ws: WorkingSet) -> None:
    """Talk time of every leg from its conference's floor changes, whatever order they arrived in.

    A span runs from one floor change to the next, cut short by the holder leaving or the end of the
    conference. The span still open (the current speaker's) is not counted: it ticks live on the page.
    Run once per batch, after its events, for the conferences whose floor, legs or end changed: the
    working set holds their whole floor history, and every leg that ever held the floor (as a row, or as its
    talk time and when it left: `ws.talkers`; those whose talk time moves are loaded then).
    """
    moved: list[tuple[str, str, float]] = []  # legs not loaded, whose talk time moves
    for telnyx_id in ws.floor:
        conference = ws.conference(telnyx_id)
        floor = sorted(ws.floor[telnyx_id])
        legs = {ccid: leg for (conf, ccid), leg in ws.legs.items() if conf == telnyx_id}
        others = ws.talkers.get(telnyx_id, {})
        ended = conference.ended_at if conference.status == Conference.Status.COMPLETED else None
        totals: dict[str, float] = defaultdict(float)
        for index, (start, holder) in enumerate(floor):
            following = floor[index + 1][0] if index + 1 < len(floor) else None
            leg = legs.get(holder)
            if leg is not None:
                left = leg.left_at if leg.status == Participant.Status.LEFT else None
            else:
                left = others[holder][1] if holder in others else None
            stop = _earliest(following, left, ended)
            if stop is not None:
                totals[holder] += max(0.0, (stop - start).total_seconds())
        for ccid, leg in legs.items():
            if abs(leg.talk_seconds - totals[ccid]) > 1e-6:
                leg.talk_seconds = totals[ccid]
        moved += [(telnyx_id, ccid, totals[ccid]) for ccid, (seconds, _) in others.items()
                  if abs(seconds - totals[ccid]) > 1e-6]
    if moved:
        ws.load_legs((telnyx_id, ccid) for telnyx_id, ccid, _ in moved)
        for telnyx_id, ccid, seconds in moved:
            if (leg := ws.legs.get((telnyx_id, ccid))) is not None:
                leg.talk_seconds = seconds


# --- live captions --------------------------------------------------------------------------------
# call.transcription: interim results (is_final false) of the line a caller is saying, each replacing the last,
# then its final result. The line lives on the caller's leg (`caption_line`, versioned by `caption_at`); finals
# are kept as the conference's transcript (`Caption`, one per Telnyx event id). A final that comes before its
# leg's joined waits on the call, unplaced, and is placed once the leg is known (`settle_captions`), like a key
# pressed early; an interim that early is only ever shown until its final, and is dropped.

CAPTION_TEXT = 5000  # characters kept of a final line (Telnyx sends sentences; a hostile body might not)


def _transcript(payload: dict[str, Any]) -> tuple[str, bool, float | None] | None:
    data = payload.get("transcription_data")
    if not isinstance(data, dict) or not isinstance(data.get("transcript"), str):
        return None
    text = " ".join(data["transcript"].split())[:CAPTION_TEXT]
    if not text or not is_text(text):
        return None
    confidence = data.get("confidence")
    sure = isinstance(confidence, int | float) and not isinstance(confidence, bool) and 0 <= confidence <= 1
    return text, data.get("is_final") is True, float(confidence) if sure else None


def _speaking_leg(ws: WorkingSet, call_control_id: str, when: datetime) -> Participant | None:
    """The leg of the call that said it: the one in a conference then (a call is in one at a time)."""
    legs = sorted(ws.legs_by_call.get(call_control_id, ()), key=lambda leg: leg.joined_at or when)
    present = [leg for leg in legs if (leg.joined_at is None or leg.joined_at <= when)
               and (leg.left_at is None or when <= leg.left_at)]
    return present[-1] if present else None


def keywords_said(text: str, keywords: list[str]) -> list[str]:
    """The keywords (lower-cased words or phrases) the line says, as whole words."""
    said = " " + " ".join(re.findall(r"\w+", text.lower())) + " "
    return [k for k in keywords if " " + " ".join(re.findall(r"\w+", k)) + " " in said]


def _transcription(ws: WorkingSet, event: TelnyxEvent, when: datetime) -> None:
    said = _transcript(event.payload)
    if said is None:
        return
    text, final, confidence = said
    if final:
        ws.caption(Caption(call_control_id=event.call_control_id, spoken_at=when, text=text, confidence=confidence,
                           event_id=event.id))  # placed on its leg by `settle_captions`
        return
    leg = _speaking_leg(ws, event.call_control_id, when)
    if leg is not None and _later(when, leg.caption_at) and leg.status != Participant.Status.LEFT:
        leg.caption_line, leg.caption_at = text[: _max_length(Participant, "caption_line")], when


def settle_captions(ws: WorkingSet) -> None:
    """Place the batch's final lines, and those waiting for their leg, on the leg that said them: the line is the
    conference's, with the room's keywords it says; and it ends the leg's line being said, unless a later one
    has begun."""
    for caption in ws.unplaced_captions():
        leg = _speaking_leg(ws, caption.call_control_id, caption.spoken_at)
        if leg is None:
            continue
        caption.conference = leg.conference
        caption.keywords = ", ".join(keywords_said(caption.text, ws.keywords(leg.conference)))[
            : _max_length(Caption, "keywords")]
        if _not_earlier(caption.spoken_at, leg.caption_at):
            leg.caption_line, leg.caption_at = "", caption.spoken_at
            leg.caption_keywords = caption.keywords[: _max_length(Participant, "caption_keywords")]


# --- the rules, one per event type ----------------------------------------------------------------


def _conference_created(ws: WorkingSet, event: TelnyxEvent, when: datetime) -> None:
    payload = event.payload
    conference = ws.conference(event.conference_id)
    conference.created_at = _earliest(conference.created_at, when)
    if _later(when, conference.status_at):
        conference.status_at = when
        conference.creator_call_control_id = (
            _text(payload, "call_control_id", Conference, "creator_call_control_id")
            or conference.creator_call_control_id
        )
        conference.creator_call_session_id = (
            _text(payload, "call_session_id", Conference, "creator_call_session_id")
            or conference.creator_call_session_id
        )
        conference.connection_id = _text(payload, "connection_id", Conference) or conference.connection_id
    if conference.status == Conference.Status.INIT:
        conference.status = Conference.Status.IN_PROGRESS
    if not conference.name:
        ws.unnamed.add(conference.telnyx_id)


ALL_LEFT, ENDED_VIA_API = "all_left", "ended_via_api"  # conference end reasons


def _conference_ended(ws: WorkingSet, event: TelnyxEvent, when: datetime) -> None:
    conference = ws.conference(event.conference_id)
    was_live = conference.status != Conference.Status.COMPLETED
    if was_live or (conference.ended_at and when < conference.ended_at):
        conference.ended_at = when
        reason = _text(event.payload, "reason", Conference, "end_reason")
        # The webhook's reasons have no "ended_via_api": a moderator's end arrives as all_left. What the product
        # knows from Telnyx accepting that end (`ended_by_moderator`), in either order, is the truer reason.
        if not (reason == ALL_LEFT and conference.end_reason == ENDED_VIA_API):
            conference.end_reason = reason
    conference.status = Conference.Status.COMPLETED
    _clamp_conference(conference)
    for (telnyx_id, call_control_id), leg in ws.legs.items():
        if telnyx_id == conference.telnyx_id:
            _clamp_participant(leg, conference)
            if was_live:  # rows drawn while it was live carry controls (a left leg's disabled checkbox too)
                ws.reshown.add((telnyx_id, call_control_id))


def _floor_changed(ws: WorkingSet, event: TelnyxEvent, when: datetime) -> None:
    conference = ws.conference(event.conference_id)
    leg = _leg(ws, conference, event.payload)
    _clamp_participant(leg, conference)
    ws.floor_changed(conference, when, leg.call_control_id)
    if _later(when, conference.floor_at):
        if conference.floor_call_control_id:
            ws.reshown.add((conference.telnyx_id, conference.floor_call_control_id))
        ws.reshown.add((conference.telnyx_id, leg.call_control_id))
        conference.floor_call_control_id = leg.call_control_id
        conference.floor_at = when
        if conference.status == Conference.Status.INIT:
            conference.status = Conference.Status.IN_PROGRESS


def _participant_joined(ws: WorkingSet, event: TelnyxEvent, when: datetime) -> None:
    conference = ws.conference(event.conference_id)
    if conference.status == Conference.Status.INIT:
        conference.status = Conference.Status.IN_PROGRESS
    leg = _leg(ws, conference, event.payload)
    leg.joined_at = _earliest(leg.joined_at, when)
    if _later(when, leg.status_at):
        leg.status = Participant.Status.JOINED
        leg.status_at = when
        leg.left_at = None
    _clamp_participant(leg, conference)


def _participant_left(ws: WorkingSet, event: TelnyxEvent, when: datetime) -> None:
    conference = ws.conference(event.conference_id)
    leg = _leg(ws, conference, event.payload)
    if _not_earlier(when, leg.status_at):
        leg.status = Participant.Status.LEFT
        leg.status_at = when
        leg.left_at = when
    _clamp_participant(leg, conference)


def _media_name(payload: dict[str, Any]) -> str:
    return (_text(payload, "media_url") or _text(payload, "media_name"))[: _max_length(Conference, "playback_media")]


def _conference_media(kind: str, started: bool) -> Rule:
    """conference.playback.* and conference.speak.*: conference-wide media on or off."""

    def rule(ws: WorkingSet, event: TelnyxEvent, when: datetime) -> None:
        conference = ws.conference(event.conference_id)
        if (_later if started else _not_earlier)(when, getattr(conference, f"{kind}_at")):
            setattr(conference, "playing" if kind == "playback" else "speaking", started)
            setattr(conference, f"{kind}_at", when)
            if kind == "playback":
                conference.playback_media = _media_name(event.payload)
        _clamp_conference(conference)

    return rule


def _participant_media(kind: str, started: bool) -> Rule:
    """conference.participant.playback.* and .speak.*: media to one leg on or off."""

    def rule(ws: WorkingSet, event: TelnyxEvent, when: datetime) -> None:
        conference = ws.conference(event.conference_id)
        leg = _leg(ws, conference, event.payload)
        if (_later if started else _not_earlier)(when, getattr(leg, f"{kind}_at")):
            setattr(leg, "playing" if kind == "playback" else "speaking", started)
            setattr(leg, f"{kind}_at", when)
            if kind == "playback":
                leg.playback_media = _media_name(event.payload)
        _clamp_participant(leg, conference)

    return rule


def _urls(payload: dict[str, Any], key: str) -> dict[str, Any]:
    value = payload.get(key)
    return value if isinstance(value, dict) else {}


def _recording_saved(ws: WorkingSet, event: TelnyxEvent, when: datetime) -> None:
    payload = event.payload
    conference = ws.conference(event.conference_id)
    ws.recording(
        Recording(
            recording_id=_text(payload, "recording_id", Recording) or event.id[: _max_length(Recording, "recording_id")],
            conference=conference,
            call_control_id=_text(payload, "call_control_id", Recording),
            format=_text(payload, "format", Recording),
            channels=_text(payload, "channels", Recording),
            started_at=_time(payload, "recording_started_at"),
            ended_at=_time(payload, "recording_ended_at"),
            download_urls=_urls(payload, "recording_urls"),
            public_urls=_urls(payload, "public_recording_urls"),
            saved_at=when,
        )
    )
    # A saved recording has stopped, unless a later command started another one.
    ended = _time(payload, "recording_ended_at") or when
    if _not_earlier(ended, conference.recording_at):
        conference.recording_status = Conference.RecordingStatus.IDLE
        conference.recording_at = ended


def _waiting(ws: WorkingSet, payload: dict[str, Any]) -> WaitingCall:
    entry = ws.waiting(_text(payload, "call_control_id"), _text(payload, "queue", WaitingCall, "queue_name"))
    for key in ("call_leg_id", "call_session_id"):
        if not getattr(entry, key) and payload.get(key):
            setattr(entry, key, _text(payload, key, WaitingCall))
    return entry


def _call_enqueued(ws: WorkingSet, event: TelnyxEvent, when: datetime) -> None:
    entry = _waiting(ws, event.payload)
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
    ws.queues = True


def _call_dequeued(ws: WorkingSet, event: TelnyxEvent, when: datetime) -> None:
    entry = _waiting(ws, event.payload)
    if _not_earlier(when, entry.status_at):
        entry.status = WaitingCall.Status.LEFT
        entry.status_at = when
        entry.left_at = when
        entry.leave_reason = _text(event.payload, "reason", WaitingCall, "leave_reason")
        entry.wait_time_secs = _int(event.payload, "wait_time_secs")
        entry.position = _int(event.payload, "queue_position")
    _clamp_waiting(entry)
    ws.queues = True


_CALL_STATE_RANK = {Call.State.INITIATED: 0, Call.State.ANSWERED: 1, Call.State.HANGUP: 2}
_CALL_FIELDS = (
    ("call_leg_id", "call_leg_id"),
    ("call_session_id", "call_session_id"),
    ("connection_id", "connection_id"),
    ("from_number", "from"),
    ("to_number", "to"),
    ("direction", "direction"),
    ("caller_name", "caller_id_name"),
)


def _call_fields(ws: WorkingSet, event: TelnyxEvent) -> Call:
    """The call, with whatever of its numbers and ids the event tells first."""
    payload = event.payload
    call = ws.call(event.call_control_id)
    for attribute, key in _CALL_FIELDS:
        if not getattr(call, attribute) and payload.get(key):
            setattr(call, attribute, _text(payload, key, Call, attribute))
    return call


def _call(ws: WorkingSet, event: TelnyxEvent, state: Call.State) -> Call:
    call = _call_fields(ws, event)
    # Calls only move forward: ringing → answered → hung up.
    if _CALL_STATE_RANK[state] >= _CALL_STATE_RANK[Call.State(call.state)] or call.state_at is None:
        if _CALL_STATE_RANK[state] > _CALL_STATE_RANK[Call.State(call.state)] or call.state_at is None:
            call.state = state
        call.state_at = event.occurred_at or call.state_at
    # The board's waiting-room panel shows calls that wait (or waited) in a queue, or that dial-in routing
    # dealt with: their changes re-render it; any other call's events leave it as it is.
    if call.routing_note or call.routing_error or ws.waiting_by_call.get(call.call_control_id):
        ws.queues = True
    return call


def _call_reported(ws: WorkingSet, event: TelnyxEvent, when: datetime) -> None:
    """A gather ended (a room's PIN was asked), or speaking to the caller started or ended: nothing a page shows
    but the call's numbers; dial-in routing reads them (`moderator.control.routing`). A gather's digits stay in
    the stored event only."""
    _call_fields(ws, event)


def _call_initiated(ws: WorkingSet, event: TelnyxEvent, when: datetime) -> None:
    call = _call(ws, event, Call.State.INITIATED)
    call.started_at = _earliest(call.started_at, _time(event.payload, "start_time") or when)


def _call_answered(ws: WorkingSet, event: TelnyxEvent, when: datetime) -> None:
    call = _call(ws, event, Call.State.ANSWERED)
    call.answered_at = _earliest(call.answered_at, when)


def _call_hangup(ws: WorkingSet, event: TelnyxEvent, when: datetime) -> None:
    """The leg is gone: it leaves every conference and every queue it was in."""
    call = _call(ws, event, Call.State.HANGUP)
    call.ended_at = _earliest(call.ended_at, when)
    call.hangup_cause = call.hangup_cause or _text(event.payload, "hangup_cause", Call)
    call.started_at = _earliest(call.started_at, _time(event.payload, "start_time"))
    for leg in ws.legs_by_call.get(call.call_control_id, ()):
        leg.hangup_at = _earliest(leg.hangup_at, call.ended_at)
        _clamp_participant(leg, leg.conference)
    for entry in ws.waiting_by_call.get(call.call_control_id, ()):
        entry.hangup_at = _earliest(entry.hangup_at, call.ended_at)
        _clamp_waiting(entry)


RULES: dict[str, Rule] = {
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
    "call.dtmf.received": _dtmf_received,
    "call.gather.ended": _call_reported,
    "call.speak.started": _call_reported,
    "call.speak.ended": _call_reported,
    "call.transcription": _transcription,
}

# What the working set must load for a batch (see `WorkingSet.load`).
ENDS_CONFERENCE = {"conference.ended"}
ENDS_CALL = {"call.hangup"}
REACHES_CALL_LEGS = {"call.dtmf.received", "call.transcription"}  # the call's legs in every conference are read too
MOVES_TALK_TIME = {"conference.ended", "conference.floor.changed", "conference.participant.left"}
# Events that make a call's leg known: a final line said before that waits on the call and is placed then.
PLACES_CAPTIONS = {name for name in RULES if name.startswith(("conference.participant.", "conference.floor."))}

# Events that must name a conference / a call leg / a queue to be applied at all.
_NEEDS_CONFERENCE = {name for name in RULES if name.startswith("conference.")}
_NEEDS_CALL = {name for name in RULES if name.startswith(("call.", "conference.participant.", "conference.floor."))}
_NEEDS_QUEUE = {"call.enqueued", "call.dequeued"}


class EventNotApplicable(ValueError):
    """The event is known but lacks what applying it needs (kept as failed, replayable)."""


def is_known(event_type: str) -> bool:
    return event_type in RULES


def event_time(event: TelnyxEvent) -> datetime:
    if event.occurred_at is not None:
        return event.occurred_at
    # recording.saved carries no occurred_at at all; its end time is when it happened.
    return _time(event.payload, "recording_ended_at") or timezone.now()


_ID_LENGTHS = {"conference_id": 128, "call_control_id": 255, "queue": 255}


def check(event: TelnyxEvent) -> None:
    """Raise EventNotApplicable when the event lacks what its rule needs (before any state is touched)."""
    if event.event_type in _NEEDS_CONFERENCE and not event.conference_id:
        raise EventNotApplicable(f"{event.event_type} has no payload.conference_id")
    if event.event_type in _NEEDS_CALL and not event.call_control_id:
        raise EventNotApplicable(f"{event.event_type} has no payload.call_control_id")
    if event.event_type in _NEEDS_QUEUE and not event.payload.get("queue"):
        raise EventNotApplicable(f"{event.event_type} has no payload.queue")
    for key, length in _ID_LENGTHS.items():
        value = str(event.payload.get(key) or "")
        if len(value) > length or not is_text(value):
            raise EventNotApplicable(f"payload.{key} is longer than {length} characters, or holds a NUL or a lone surrogate")


def apply(ws: WorkingSet, event: TelnyxEvent) -> None:
    """Apply one checked event to the working set, and note it for its conference's live timeline."""
    when = event_time(event)
    RULES[event.event_type](ws, event, when)
    if event.conference_id:
        note = TimelineNote.of(event, at=when)
        if event.event_type == "conference.ended":  # the product's reason (`_conference_ended`), not the webhook's
            note = replace(note, detail=ws.conference(event.conference_id).end_reason)
        ws.timeline.append(note)


def bump_versions(changes: Changes) -> None:
    """Give every changed conference its next version (the live pages' serial), in `changes.versions`.

    Runs in the transaction that made the changes, so a rolled-back change never takes a version.
    (The applier's batches take theirs in memory, on rows they hold locked: `WorkingSet.save`.)
    """
    if not changes.conferences:
        return
    Conference.objects.filter(telnyx_id__in=changes.conferences).update(version=F("version") + 1)
    changes.versions.update(
        Conference.objects.filter(telnyx_id__in=changes.conferences).values_list("telnyx_id", "version")
    )
    changes.since.update(changes.versions)


# --- accepted commands and resyncs ----------------------------------------------------------------
# Mute, unmute, hold, unhold and supervisor-role changes produce no webhook: their state comes from
# Telnyx's accepting answer, and from its participant lists when the product resyncs. Each action's entry
# in the registry (`moderator.control.actions`) names the rule below that says what its acceptance means.

Accepted = Callable[[Conference, dict[str, Any], Changes], None]


def _legs_named(conference: Conference, params: dict[str, Any]) -> list[Participant]:
    """The legs a command addressed: its `call_control_ids`, or everyone still in the conference. A named leg the
    dashboard has not seen join yet (its webhook is on its way) is in the conference, since Telnyx accepted a
    command for it: it gets its row now, so that what the command changed shows from the first moment."""
    legs = conference.participants.select_for_update().exclude(status=Participant.Status.LEFT)
    if not params.get("call_control_ids"):
        return list(legs)
    named = set(params["call_control_ids"])
    found = list(legs.filter(call_control_id__in=named))
    seen = set(conference.participants.filter(call_control_id__in=named).values_list("call_control_id", flat=True))
    for call_control_id in sorted(named - seen):
        found.append(Participant.objects.get_or_create(conference=conference, call_control_id=call_control_id)[0])
    return found


def legs_flag(field_name: str, value: bool) -> Accepted:
    """mute/unmute, hold/unhold: the flag on every leg the command addressed."""

    def accepted(conference: Conference, params: dict[str, Any], changes: Changes) -> None:
        for leg in _legs_named(conference, params):
            if getattr(leg, field_name) != value:
                setattr(leg, field_name, value)
                leg.save(update_fields=[field_name, "updated_at"])
                changes.participant(conference.telnyx_id, leg.call_control_id)

    return accepted


def ended_by_moderator(conference: Conference, params: dict[str, Any], changes: Changes) -> None:
    """end_conference accepted: the conference ends because a moderator ended it (Telnyx's own resource says
    ended_via_api). Its conference.ended webhook, before or after, brings when it ended and says all_left."""
    if conference.end_reason in ("", ALL_LEFT):
        conference.end_reason = ENDED_VIA_API
        conference.save(update_fields=["end_reason", "updated_at"])
        changes.conference(conference.telnyx_id)


def conference_flag(field_name: str, value: bool) -> Accepted:
    """A setting of the product's own on the conference, no Telnyx command: `locked` (whether new dial-in callers
    wait), `captions_on` (each leg's transcription is a command of its own, whose acceptance sets `transcribing`
    on the leg: `legs_flag`)."""

    def accepted(conference: Conference, params: dict[str, Any], changes: Changes) -> None:
        if getattr(conference, field_name) != value:
            setattr(conference, field_name, value)
            conference.save(update_fields=[field_name, "updated_at"])
            changes.conference(conference.telnyx_id)

    return accepted


def transcription_stopped(conference: Conference, params: dict[str, Any], changes: Changes) -> None:
    """transcription_stop accepted: the leg is no longer captioned, and a line it was saying ends there (no final
    will come for it; an interim result still on its way is older, and stays away)."""
    for leg in _legs_named(conference, params):
        if leg.transcribing or leg.caption_line:
            leg.transcribing, leg.caption_line, leg.caption_at = False, "", _latest(leg.caption_at, timezone.now())
            leg.save(update_fields=["transcribing", "caption_line", "caption_at", "updated_at"])
            changes.participant(conference.telnyx_id, leg.call_control_id)
            changes.caption_lines.add((conference.telnyx_id, leg.call_control_id))


def hands_lowered(conference: Conference, params: dict[str, Any], changes: Changes) -> None:
    """A moderator lowered hands (or unmuted them: they may speak now). Keys pressed before now count no more,
    those of a *1 still on its way included."""
    now = timezone.now()
    legs = _legs_named(conference, params)
    pressed = set(
        Call.objects.filter(call_control_id__in=[leg.call_control_id for leg in legs])
        .exclude(dtmf_digits=[])
        .values_list("call_control_id", flat=True)
    )
    for leg in legs:
        if leg.hand_raised_at is None and leg.call_control_id not in pressed:
            continue
        was_raised = leg.hand_raised_at is not None
        leg.hand_lowered_at, leg.hand_raised_at = now, None
        leg.save(update_fields=["hand_lowered_at", "hand_raised_at", "updated_at"])
        if was_raised:
            changes.hand(conference.telnyx_id, leg.call_control_id, raised=False)


def unmuted(conference: Conference, params: dict[str, Any], changes: Changes) -> None:
    """unmute: the legs may speak, so their hands are answered."""
    legs_flag("muted", False)(conference, params, changes)
    hands_lowered(conference, params, changes)


def supervisor_role(conference: Conference, params: dict[str, Any], changes: Changes) -> None:
    """update: the leg's supervisor role and whom it whispers to."""
    for leg in _legs_named(conference, {"call_control_ids": [params["call_control_id"]]}):
        leg.supervisor_role = params["supervisor_role"]
        leg.whisper_call_control_ids = params.get("whisper_call_control_ids") or []
        leg.save(update_fields=["supervisor_role", "whisper_call_control_ids", "updated_at"])
        changes.participant(conference.telnyx_id, leg.call_control_id)


def recording(status: str) -> Accepted:
    """record_start/pause/resume/stop: the conference's recording state, from now."""

    def accepted(conference: Conference, params: dict[str, Any], changes: Changes) -> None:
        conference.recording_status = status
        conference.recording_at = timezone.now()
        conference.save(update_fields=["recording_status", "recording_at", "updated_at"])
        changes.conference(conference.telnyx_id)

    return accepted


def joined_with_options(conference: Conference, params: dict[str, Any], changes: Changes) -> None:
    """join: the leg shows as "joining" until conference.participant.joined arrives (unless it has), and with
    the options it joined with (muted, on hold, role) from the first moment — Telnyx reports none of them."""
    leg, _ = Participant.objects.select_for_update().get_or_create(
        conference=conference, call_control_id=params["call_control_id"]
    )
    leg.muted = bool(params.get("mute"))
    leg.on_hold = bool(params.get("hold"))
    leg.supervisor_role = params.get("supervisor_role") or Participant.SupervisorRole.NONE
    leg.whisper_call_control_ids = params.get("whisper_call_control_ids") or []
    leg.save()
    changes.participant(conference.telnyx_id, leg.call_control_id)


def caller_named(number: str) -> Changes:
    """A moderator named (or un-named) a number: every live leg of a call from it is shown again."""
    changes = Changes()
    legs = Participant.objects.filter(
        call_control_id__in=Call.objects.filter(from_number=number).values("call_control_id"),
        conference__status__in=[Conference.Status.INIT, Conference.Status.IN_PROGRESS],
    ).values_list("conference__telnyx_id", "call_control_id")
    for telnyx_id, call_control_id in legs:
        changes.participant(telnyx_id, call_control_id)
    return changes


def apply_accepted(conference: Conference, accepted: Accepted, params: dict[str, Any]) -> Changes:
    """Apply what Telnyx's acceptance of a command means, on the conference's locked row."""
    changes = Changes()
    accepted(Conference.objects.select_for_update().get(pk=conference.pk), params, changes)
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
        for call_control_id in conference.participants.values_list("call_control_id", flat=True):
            changes.participant(conference.telnyx_id, call_control_id)  # their rows lose their controls
    elif data.get("status") == Conference.Status.IN_PROGRESS and conference.status == Conference.Status.INIT:
        conference.status = Conference.Status.IN_PROGRESS
    conference.save()
    changes.conference(conference.telnyx_id)
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
        changes.participant(conference.telnyx_id, participant.call_control_id)
    return changes
