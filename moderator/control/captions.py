"""Live captions: which legs Telnyx transcribes. A conference's captions are on or off (its room's setting at
the start, then its moderators'); every leg in a conference with captions on is transcribed, and every leg
that joins it. Each leg's transcription_start/stop is an outbox row — the decision is written in the
transaction that took it (the applier's for a join, the moderator's for the switch) and sent after it
commits, through the same send-and-audit path as a moderator's click (`actions.run_call_action`). A
refusal shows on the conference's timeline; the leg's row shows "CC" once Telnyx accepted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction

from moderator.control import actions, schemas
from moderator.control.steps import CALL_ENDED, SENT, Outcome, refused, skipped
from moderator.live import broadcast
from moderator.models import Conference, OutboxCommand, Participant, Room, derived_command_id
from moderator.state import rules
from moderator.telnyx.client import TelnyxFailure

if TYPE_CHECKING:
    from moderator.state.working_set import WorkingSet
    from moderator.telnyx.event import TelnyxEvent

Kind = OutboxCommand.Kind
JOINED = "conference.participant.joined"


class ConferenceEnded(Exception):
    pass


class TranscriptionForbidden(Exception):
    """The conference's room forbids transcription."""


def engine_config() -> dict[str, Any]:
    return {"transcription_engine": "Google", "language": settings.CAPTIONS_LANGUAGE, "interim_results": True}


def _step(kind: str, call_control_id: str, conference_id: str, decision: str) -> OutboxCommand:
    """One leg's start or stop; its command_id derives from the decision (the leg's join, or a moderator's switch
    by its audit row): deciding it again is the same row, and the same command for Telnyx."""
    return OutboxCommand(command_id=derived_command_id(kind, f"{call_control_id}@{conference_id}#{decision}"),
                         kind=kind, call_control_id=call_control_id, conference_telnyx_id=conference_id)


def plan_joined(ws: WorkingSet, events: list[TelnyxEvent]) -> int:
    """In the applier's transaction: transcribe the legs that joined a conference whose captions are on."""
    joined = {(e.conference_id, e.call_control_id) for e in events if e.event_type == JOINED}
    legs = [ws.legs[key] for key in sorted(joined) if key in ws.legs]
    legs = [leg for leg in legs if leg.conference.captions_on and leg.conference.is_live
            and leg.status == Participant.Status.JOINED and not leg.transcribing]
    if not legs:
        return 0
    forbidden = set(Room.objects.filter(pk__in={leg.conference.room_id for leg in legs}, transcription_forbidden=True)
                    .values_list("pk", flat=True))
    rows = [_step(Kind.TRANSCRIBE, leg.call_control_id, leg.conference.telnyx_id, "join")
            for leg in legs if leg.conference.room_id not in forbidden]
    OutboxCommand.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def plan_started(conference: Conference, call_control_id: str) -> None:
    """A room's conference just started from a call, with its room's captions on: the caller who started it is
    transcribed too. Its joined webhook may have been applied before the conference's captions were set (then
    `plan_joined` planned nothing, and this row finds the leg), or not yet (then this row finds no leg and is
    skipped, and `plan_joined` plans its own when it is applied): a row of its own, not `plan_joined`'s."""
    if conference.captions_on and call_control_id:
        OutboxCommand.objects.bulk_create(
            [_step(Kind.TRANSCRIBE, call_control_id, conference.telnyx_id, "start")], ignore_conflicts=True)


def switch(user, conference_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """A moderator turns the conference's captions on or off: every leg in it now (and every leg that joins
    while they are on) is transcribed, or no longer."""
    on = schemas.Captions.model_validate(body).on
    conference = Conference.objects.filter(telnyx_id=conference_id).select_related("room").first()
    if conference is None:
        raise actions.UnknownConference(conference_id)
    if not conference.is_live:
        raise ConferenceEnded(conference_id)
    if on and conference.room is not None and conference.room.transcription_forbidden:
        raise TranscriptionForbidden(conference.room.name)
    with transaction.atomic():
        changes = rules.apply_accepted(conference, rules.conference_flag("captions_on", on), {})
        audit = actions.audit_action(user, "captions_on" if on else "captions_off", conference, [], {"on": on})
        legs = conference.participants.filter(status=Participant.Status.JOINED, transcribing=not on)
        rows = [_step(Kind.TRANSCRIBE if on else Kind.STOP_TRANSCRIBING, ccid, conference_id, f"switch-{audit.pk}")
                for ccid in legs.order_by("joined_at", "id").values_list("call_control_id", flat=True)]
        OutboxCommand.objects.bulk_create(rows, ignore_conflicts=True)
        broadcast.publish_on_commit(actions.on_timeline(conference, audit, changes))
    return {"captions": on, "legs": [row.call_control_id for row in rows]}


def _leg(command: OutboxCommand) -> tuple[Participant | None, Conference | None]:
    leg = (Participant.objects.filter(conference__telnyx_id=command.conference_telnyx_id,
                                      call_control_id=command.call_control_id)
           .select_related("conference__room").first())
    return leg, leg.conference if leg is not None else None


def _send(command: OutboxCommand, name: str, body: dict[str, Any], transcribing: bool) -> Outcome:
    leg, conference = _leg(command)
    if leg is None:
        return skipped("the caller's leg is not known yet: its joined webhook plans its own")
    if leg.status == Participant.Status.LEFT:
        return skipped("the caller left the conference")
    if transcribing and not conference.captions_wanted(conference.room):
        return skipped("the conference's captions are off")
    if leg.transcribing == transcribing:
        return skipped("nothing to change")
    try:
        actions.run_call_action(None, leg.call_control_id, name, body, command_id=command.command_id,
                                conference=conference)
    except TelnyxFailure as failure:
        return skipped("the caller hung up") if failure.code == CALL_ENDED else refused(failure, str(failure))
    accepted = rules.legs_flag("transcribing", True) if transcribing else rules.transcription_stopped
    with transaction.atomic():  # Telnyx reports neither: its acceptance is what the row shows
        changes = rules.apply_accepted(conference, accepted, {"call_control_ids": [leg.call_control_id]})
        broadcast.publish_on_commit(changes)
    return SENT


def start(command: OutboxCommand) -> Outcome:
    if _planned_on_join_too(command):
        return skipped("the caller's joined webhook planned the start")
    return _send(command, "transcription_start", {"transcription_engine_config": engine_config()}, True)


def _planned_on_join_too(command: OutboxCommand) -> bool:
    """The starter's own row (`plan_started`) when its joined webhook, applied with captions on, planned a row as
    well: only that one is sent. The two were sent at once otherwise, each reading the leg as not transcribed yet.
    Settled once the leg is known: `plan_joined` runs in the transaction that applies the joined webhook."""
    conference_id, call_control_id = command.conference_telnyx_id, command.call_control_id
    if command.command_id != _step(Kind.TRANSCRIBE, call_control_id, conference_id, "start").command_id:
        return False
    joined = _step(Kind.TRANSCRIBE, call_control_id, conference_id, "join").command_id
    return OutboxCommand.objects.filter(command_id=joined).exists()


def stop(command: OutboxCommand) -> Outcome:
    return _send(command, "transcription_stop", {}, False)


EXECUTORS = {Kind.TRANSCRIBE: start, Kind.STOP_TRANSCRIBING: stop}
