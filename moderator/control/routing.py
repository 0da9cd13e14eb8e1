"""Dial-in rooms: inbound calls are answered, identified and placed in their room's conference or waiting room.

Driven by the call webhooks, in two halves:

* `plan(event, changes)` runs inside the transaction that stores the event (see `store`). It decides
  what to do with the call — answer it, hang it up, route it, end a conference — writes the decision
  on the call (`Call.routing_note`) and appends a `Step` to `changes.routing`. Nothing here talks to
  Telnyx, so the webhook is answered at once.
* `run_later(steps)` runs the steps after that transaction commits, off the request path. Each step
  is a Telnyx command whose `command_id` is derived from the call and the step: the same step taken
  twice (a webhook delivered again, two workers) is one command for Telnyx, which ignores a repeated
  command_id. Every command leaves an audit row (user "system"); a refusal or failure is written on
  the call (`Call.routing_error`), shown on the board, and never retried blindly.

The rules:

* Routing is on once a room exists. An inbound call to a room's number is answered; a call to a
  number no room claims goes to the default room if one is marked, and is hung up otherwise.
* Once answered, a moderator — a number in the room's moderator numbers, or the profile phone of a
  user allowed to moderate — joins the room's live conference, creating it when none is running. A
  lock on the room and Telnyx's refusal of a second live conference with the same name make sure two
  moderators dialling at once end up in one conference.
* Anyone else waits in the room's waiting room (its Telnyx queue) if it has one, until a moderator
  admits them from the board. A room without a waiting room lets callers straight into the live
  conference, or starts it with them (on hold, hearing the hold audio, if the room starts only when
  a moderator joins).
* A room that ends "when the last moderator leaves" has its conference ended when a moderator leaves
  and no other moderator is still in it.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction

from moderator.control import actions
from moderator.live import broadcast
from moderator.models import Call, Conference, Participant, Room, RoomNumber, UserProfile
from moderator.state.rules import Changes
from moderator.telnyx.client import TelnyxFailure, send

if TYPE_CHECKING:
    from moderator.telnyx.event import TelnyxEvent

logger = logging.getLogger(__name__)

ANSWER, HANGUP, ROUTE, END = "answer", "hangup", "route", "end"
INCOMING = "incoming"
# Telnyx error codes routing understands.
ALREADY_ANSWERED, CALL_ENDED, CONFERENCE_ENDED, NO_SUCH_CONFERENCE, NAME_TAKEN = (
    "90039",
    "90018",
    "90019",
    "90058",
    "90033",
)
_COMMAND_IDS = uuid.UUID("6c0f7a3e-2b1d-4e55-9a57-0d1c6e1f3b21")


@dataclass(frozen=True)
class Step:
    kind: str  # answer, hangup, route, end
    call_control_id: str = ""
    conference_id: str = ""


def command_id(step: str, target: str) -> str:
    """The same step for the same call (or conference) always has the same command_id."""
    return str(uuid.uuid5(_COMMAND_IDS, f"{step}:{target}"))


# --- who and where --------------------------------------------------------------------------------


def room_for(number: str) -> Room | None:
    """The room that owns the called number, else the default room, else none."""
    if number:
        owned = RoomNumber.objects.filter(number=number).select_related("room").first()
        if owned is not None:
            return owned.room
    return Room.objects.filter(is_default=True).first()


def is_moderator(room: Room, number: str) -> bool:
    if not number:
        return False
    if number in (room.moderator_numbers or []):
        return True
    profiles = UserProfile.objects.filter(phone_number=number, user__is_active=True).select_related("user")
    return any(profile.user.has_perm("moderator.moderate_conference") for profile in profiles)


def live_conference(room: Room) -> Conference | None:
    return (
        Conference.objects.filter(room=room)
        .exclude(status=Conference.Status.COMPLETED)
        .order_by("-first_seen_at", "-id")
        .first()
    )


# --- deciding (inside the webhook's transaction) ----------------------------------------------------


def plan(event: TelnyxEvent, changes: Changes) -> None:
    """Decide what routing does about this (already applied) event; the steps run after commit."""
    if not enabled():
        return  # without an API key nothing could be answered
    if event.event_type == "call.initiated":
        _plan_initiated(event, changes)
    elif event.event_type == "call.answered":
        _plan_answered(event, changes)
    elif event.event_type == "conference.participant.left":  # hanging up leaves with this event too
        _plan_end_without_moderator(event, changes)


def _locked_call(call_control_id: str) -> Call | None:
    return Call.objects.select_for_update().filter(call_control_id=call_control_id).first()


def _plan_initiated(event: TelnyxEvent, changes: Changes) -> None:
    if event.payload.get("direction") != INCOMING:
        return
    if not Room.objects.exists():
        return  # no rooms yet: dial-in routing is off, the call is someone else's business
    call = _locked_call(event.call_control_id)
    if call is None or call.state == Call.State.HANGUP or call.routing_note:
        return  # gone already, or decided by an earlier delivery (another event id, another worker)
    room = room_for(call.to_number)
    if room is not None:
        call.routing_note = f"Ringing: answering for {room.name}"
        changes.routing.append(Step(ANSWER, call.call_control_id))
    else:
        call.routing_note = f"No room has the number {call.to_number or '(none)'}: hung up"
        changes.routing.append(Step(HANGUP, call.call_control_id))
    call.save(update_fields=["routing_note", "updated_at"])
    changes.queues = True


def _plan_answered(event: TelnyxEvent, changes: Changes) -> None:
    call = _locked_call(event.call_control_id)
    if call is None or call.state == Call.State.HANGUP or call.direction != INCOMING:
        return
    room = room_for(call.to_number)
    if room is None:
        return
    call.routing_note = f"Answered: placing the caller in {room.name}"
    call.save(update_fields=["routing_note", "updated_at"])
    changes.routing.append(Step(ROUTE, call.call_control_id))
    changes.queues = True


def _plan_end_without_moderator(event: TelnyxEvent, changes: Changes) -> None:
    leaving = event.call_control_id
    conferences = Conference.objects.filter(
        telnyx_id=event.conference_id, room__end_on_last_moderator_exit=True
    ).exclude(status=Conference.Status.COMPLETED)
    for conference in conferences.select_related("room"):
        room = conference.room
        caller = Call.objects.filter(call_control_id=leaving).values_list("from_number", flat=True).first()
        if not is_moderator(room, caller or ""):
            continue
        remaining = list(
            Participant.objects.filter(conference=conference)
            .exclude(status=Participant.Status.LEFT)
            .exclude(call_control_id=leaving)
            .values_list("call_control_id", flat=True)
        )
        numbers = Call.objects.filter(call_control_id__in=remaining).values_list("from_number", flat=True)
        if remaining and not any(is_moderator(room, number) for number in numbers):
            changes.routing.append(Step(END, conference_id=conference.telnyx_id))


# --- doing (after commit, off the request path) -----------------------------------------------------

_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dial-in")


def run_later(steps: list[Step]) -> None:
    for step in dict.fromkeys(steps):  # the same step twice in one batch is one step
        _pool.submit(_run_logged, step)


def _run_logged(step: Step) -> None:
    close_old_connections()
    try:
        run(step)
    except Exception as exc:  # noqa: BLE001 - a background job must not die silently
        logger.exception("dial-in step %s failed", step)
        if step.call_control_id:
            try:
                record(step.call_control_id, error=f"Routing failed: {type(exc).__name__}: {exc}")
            except Exception:  # noqa: BLE001
                logger.exception("could not record the failure of %s", step)
    finally:
        close_old_connections()


def run(step: Step) -> None:
    """Take one step now."""
    if step.kind == ANSWER:
        _answer(step.call_control_id)
    elif step.kind == HANGUP:
        _hangup(step.call_control_id)
    elif step.kind == ROUTE:
        _route(step.call_control_id)
    elif step.kind == END:
        _end(step.conference_id)


def record(call_control_id: str, *, note: str | None = None, error: str | None = None) -> None:
    """Write what routing did (or what went wrong) on the call; the board shows it at once."""
    with transaction.atomic():
        call = _locked_call(call_control_id)
        if call is None:
            return
        shown = call.routing_error
        if note is not None:
            call.routing_note = note[:255]
        if error is not None:
            call.routing_error = error[:4000]
        call.save(update_fields=["routing_note", "routing_error", "updated_at"])
        if call.routing_error != shown:  # the board shows errors; notes are in the admin
            changes = Changes()
            changes.queues = True
            broadcast.publish_on_commit(changes)


def _gone(call_control_id: str) -> bool:
    return Call.objects.filter(call_control_id=call_control_id, state=Call.State.HANGUP).exists()


def _failure(what: str, failure: TelnyxFailure) -> str:
    """What went wrong, for the board: "Could not answer the call: <Telnyx's title> — <detail> (code)"."""
    if failure.code == CALL_ENDED:
        return f"The caller hung up before routing could {what}."
    return f"Could not {what}: {failure.title} — {failure.detail} ({failure.code})"


def _answer(call_control_id: str) -> None:
    try:
        actions.run_call_action(None, call_control_id, "answer", {}, command_id=command_id(ANSWER, call_control_id))
    except TelnyxFailure as failure:
        if failure.code == ALREADY_ANSWERED:
            return  # answered by an earlier attempt: call.answered routes it
        record(call_control_id, note="Not answered", error=_failure("answer the call", failure))


def _hangup(call_control_id: str) -> None:
    try:
        actions.run_call_action(None, call_control_id, "hangup", {}, command_id=command_id(HANGUP, call_control_id))
    except TelnyxFailure as failure:
        if failure.code != CALL_ENDED:
            record(call_control_id, error=_failure("hang up the call", failure))


def _route(call_control_id: str) -> None:
    call = Call.objects.filter(call_control_id=call_control_id).first()
    if call is None or call.state == Call.State.HANGUP:
        return
    room = room_for(call.to_number)
    if room is None:
        return
    moderator = is_moderator(room, call.from_number)
    who = "Moderator" if moderator else "Caller"
    try:
        if not moderator and room.waiting_room:
            actions.run_call_action(
                None,
                call_control_id,
                "enqueue",
                {"queue_name": room.queue_name},
                command_id=command_id("enqueue", call_control_id),
            )
            record(call_control_id, note=f"Waiting in the waiting room of {room.name}", error="")
            return
        conference, created = _conference_for(room, call_control_id, moderator)
        if created:
            record(call_control_id, note=f"{who}: started the conference of {room.name}", error="")
            _record_automatically(room, conference, call_control_id)
            return
        try:
            _join(room, conference, call_control_id, moderator)
        except TelnyxFailure as failure:
            if failure.code not in (CONFERENCE_ENDED, NO_SUCH_CONFERENCE):
                raise
            # The conference ended before its webhook arrived: read Telnyx's view, then start over once.
            actions.sync_conference(conference.telnyx_id)
            conference, created = _conference_for(room, call_control_id, moderator)
            if not created:
                _join(room, conference, call_control_id, moderator)
            else:
                _record_automatically(room, conference, call_control_id)
        record(call_control_id, note=f"{who}: in the conference of {room.name}", error="")
    except TelnyxFailure as failure:
        if _gone(call_control_id):
            record(call_control_id, error="The caller hung up before joining.")
        else:
            record(call_control_id, error=_failure(f"place the caller in {room.name}", failure))


def _create_params(room: Room, call_control_id: str, moderator: bool) -> dict[str, Any]:
    starts = moderator or not room.start_on_moderator
    params: dict[str, Any] = {
        "call_control_id": call_control_id,
        "name": room.name,
        "beep_enabled": room.beep_enabled,
        "start_conference_on_create": starts,
    }
    if room.max_participants:
        params["max_participants"] = room.max_participants
    if room.region:
        params["region"] = room.region
    if not starts and room.hold_audio_url:
        params["hold_audio_url"] = room.hold_audio_url  # played until a moderator starts it
    return params


def _conference_for(room: Room, call_control_id: str, moderator: bool) -> tuple[Conference, bool]:
    """The room's live conference, or a new one started from this call; True when it was created here."""
    failure: TelnyxFailure | None = None
    # One creator per room: on PostgreSQL other workers routing into this room wait on its row lock.
    # SQLite has no row locks (a transaction there would stop every webhook for the length of a
    # Telnyx request); there, as whenever two creators still race, Telnyx refuses the second live
    # conference of the same name and the loser joins the winner's.
    row_locks = connection.features.has_select_for_update
    with transaction.atomic() if row_locks else contextlib.nullcontext():
        if row_locks:
            Room.objects.select_for_update().filter(pk=room.pk).first()
        conference = live_conference(room)
        if conference is not None:
            return conference, False
        try:
            conference = actions.create_conference(
                None,
                _create_params(room, call_control_id, moderator),
                room=room,
                command_id=command_id("create", call_control_id),
            )
            return conference, True
        except TelnyxFailure as refused:
            failure = refused  # raised after the block, so that the audit row is kept
    if failure.code == NAME_TAKEN:
        # Another worker (or process) started it first: Telnyx has it under the room's name.
        adopted = _adopt_running_conference(room)
        if adopted is not None:
            return adopted, False
    raise failure


def _adopt_running_conference(room: Room) -> Conference | None:
    page = send(
        "find the room's conference",
        f"room {room.name}",
        lambda client: client.conferences.list(filter={"name": room.name}),
        retries=2,
    )
    for item in page.data:
        data = item.to_dict()
        if data.get("status") != Conference.Status.COMPLETED and data.get("name") == room.name:
            with transaction.atomic():
                conference, _ = Conference.objects.select_for_update().get_or_create(telnyx_id=data["id"])
                conference.room = room
                conference.name = conference.name or room.name
                conference.save(update_fields=["room", "name", "updated_at"])
            return conference
    return None


def _join(room: Room, conference: Conference, call_control_id: str, moderator: bool) -> None:
    body: dict[str, Any] = {"call_control_id": call_control_id}
    if moderator and room.start_on_moderator:
        body["start_conference_on_enter"] = True
    actions.run_conference_action(
        None, conference.telnyx_id, "join", body, command_id=command_id("join", call_control_id)
    )


def _record_automatically(room: Room, conference: Conference, call_control_id: str) -> None:
    if not room.record_automatically:
        return
    try:
        actions.run_conference_action(
            None,
            conference.telnyx_id,
            "record_start",
            {"format": "mp3", "channels": "single"},
            command_id=command_id("record", conference.telnyx_id),
        )
    except TelnyxFailure as failure:
        record(call_control_id, error=_failure("start the recording", failure))


def _end(conference_id: str) -> None:
    conference = Conference.objects.filter(telnyx_id=conference_id).first()
    if conference is None or conference.status == Conference.Status.COMPLETED:
        return
    try:
        actions.run_conference_action(None, conference_id, "end", {}, command_id=command_id(END, conference_id))
    except TelnyxFailure as failure:
        if failure.code not in (CONFERENCE_ENDED, NO_SUCH_CONFERENCE):
            logger.warning("could not end conference %s after its last moderator left: %s", conference_id, failure)


def enabled() -> bool:
    return bool(settings.TELNYX_API_KEY)
