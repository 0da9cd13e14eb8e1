"""Dial-in rooms: inbound calls are answered, identified and placed in their room's conference or waiting room.

Driven by the call webhooks, in two halves:

* `plan(ws, events)` runs in the applier's transaction, on the batch's working set. It decides what to
  do with each call — answer it, hang it up, put it in the waiting room, place it in the room's
  conference, end a conference — writes the decision on the call (`Call.routing_note`) and writes the
  command as an outbox row (`OutboxCommand`) in the same transaction. Nothing here talks to Telnyx.
* `execute(command)` takes one such step, when the outbox sender (`moderator.control.outbox`) sends
  it after the commit. Its `command_id` is derived from the call and the step: deciding the same step
  twice (a webhook delivered again, two workers) is one outbox row, and sending it twice (a crash
  between the send and its record) is one command for Telnyx, which ignores a repeated command_id.
  Every command leaves an audit row (user "system"); a refusal or failure is written on the call
  (`Call.routing_error`), shown on the board, and never retried blindly.

The rules:

* Routing is on once a room has a number (or is the default room): one that could take a call. An inbound call to a room's number is answered; a call to a
  number no room claims goes to the default room if one is marked, and is hung up otherwise.
* Once answered, a moderator — a number in the room's moderator numbers, or the profile phone of a
  user allowed to moderate — joins the room's live conference, creating it when none is running. A
  lock on the room and Telnyx's refusal of a second live conference with the same name make sure two
  moderators dialling at once end up in one conference.
* Anyone else waits in the room's waiting room (its Telnyx queue) if it has one, until a moderator
  admits them from the board. A room without a waiting room lets callers straight into the live
  conference, or starts it with them (on hold, hearing the hold audio, if the room starts only when
  a moderator joins).
* A conference that is full (Telnyx refuses a join past its `max_participants`) does not lose a caller: they wait
  in the room's waiting room for a place, and in a room without one of its own each place that frees (someone
  leaves) takes the first of them in. A room's waiting room holds `WAITING_ROOM_SIZE` callers.
* A room that ends "when the last moderator leaves" has its conference ended when a moderator leaves
  and no other moderator is still in it.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Exists, OuterRef, Value, When

from moderator.control import actions, captions
from moderator.control.steps import (
    ALREADY_ANSWERED,
    CALL_ENDED,
    CONFERENCE_ENDED,
    CONFERENCE_FULL,
    NAME_TAKEN,
    NO_SUCH_CONFERENCE,
    SENT,
    Outcome,
    refused,
    skipped,
)
from moderator.live import broadcast
from moderator.models import (
    Ban,
    Call,
    Conference,
    OutboxCommand,
    Participant,
    Room,
    UserProfile,
    WaitingCall,
    admission_under_way,
    derived_command_id,
)
from moderator.state.changes import Changes
from moderator.telnyx.client import TelnyxFailure, send

if TYPE_CHECKING:
    from moderator.state.working_set import WorkingSet
    from moderator.telnyx.event import TelnyxEvent

logger = logging.getLogger(__name__)

Kind = OutboxCommand.Kind
INCOMING = "incoming"
command_id = derived_command_id
command = OutboxCommand.step


def enabled() -> bool:
    return bool(settings.TELNYX_API_KEY)  # without an API key nothing could be answered


# --- who and where --------------------------------------------------------------------------------


class Rooms:
    """Every room with its numbers, read once per batch (or per step)."""

    def __init__(self) -> None:
        self.all = list(Room.objects.prefetch_related("numbers"))
        self.by_number = {number.number: room for room in self.all for number in room.numbers.all()}
        self.default = next((room for room in self.all if room.is_default), None)
        self._moderating_phones: set[str] | None = None
        self._banned: set[tuple[int, str]] | None = None
        self._waiting: dict[int, list[str]] = {}

    def __bool__(self) -> bool:
        return bool(self.by_number or self.default)

    def for_number(self, number: str) -> Room | None:
        """The room that owns the called number, else the default room, else none."""
        return self.by_number.get(number) or self.default

    def is_moderator(self, room: Room, number: str) -> bool:
        if not number:
            return False
        if number in (room.moderator_numbers or []):
            return True
        if self._moderating_phones is None:
            self._moderating_phones = moderating_phones()
        return number in self._moderating_phones

    def take_next_waiting(self, room: Room) -> str | None:
        """The first caller waiting for a place in the room's conference whom this batch has not taken in yet."""
        if room.pk not in self._waiting:
            # Only who waits for a place (not who a moderator moved there) and no admission takes in already,
            # in the order they came.
            for_a_place = Call.objects.filter(call_control_id=OuterRef("call_control_id"),
                                              routing_note=waiting_for_a_place(room))
            self._waiting[room.pk] = list(
                WaitingCall.objects.filter(queue_name=room.queue_name, status=WaitingCall.Status.WAITING)
                .filter(Exists(for_a_place)).exclude(admission_under_way())
                .order_by("enqueued_at", "id").values_list("call_control_id", flat=True)
            )
        return self._waiting[room.pk].pop(0) if self._waiting[room.pk] else None

    def is_banned(self, room: Room, number: str) -> bool:
        if self._banned is None:
            self._banned = set(Ban.active().values_list("room_id", "number"))
        return (room.pk, number) in self._banned


def is_banned(room: Room, number: str) -> bool:
    return bool(number) and Ban.active().filter(room=room, number=number).exists()


def moderating_phones(numbers: set[str] | None = None) -> set[str]:
    """Profile phones of active users allowed to moderate."""
    profiles = UserProfile.objects.exclude(phone_number="").filter(user__is_active=True).select_related("user")
    if numbers is not None:
        profiles = profiles.filter(phone_number__in=numbers)
    return {p.phone_number for p in profiles if p.user.has_perm("moderator.moderate_conference")}


def room_for(number: str) -> Room | None:
    return Rooms().for_number(number)


def is_moderator(room: Room, number: str) -> bool:
    return bool(number) and (number in (room.moderator_numbers or []) or number in moderating_phones({number}))


# --- deciding (in the applier's transaction) --------------------------------------------------------


@dataclass
class Planned:
    commands: int = 0  # outbox rows written
    decided: bool = False  # routing notes changed: the board's waiting-room panel shows them


def plan(ws: WorkingSet, events: list[TelnyxEvent]) -> Planned:
    """Decide what routing does about this batch's (already applied) events; write the outbox rows."""
    relevant = [e for e in events if e.event_type in _PLANNERS]
    if not relevant or not enabled():
        return Planned()
    rooms = Rooms()
    if not rooms:
        return Planned()  # no rooms yet: dial-in routing is off, calls are someone else's business
    commands: list[OutboxCommand] = []
    notes: dict[str, str] = {}
    for event in relevant:
        _PLANNERS[event.event_type](ws, rooms, event, commands, notes)
    if notes:
        Call.objects.filter(call_control_id__in=notes).update(
            routing_note=Case(*(When(call_control_id=ccid, then=Value(note[:255])) for ccid, note in notes.items()))
        )
        for ccid, note in notes.items():
            ws.calls[ccid].routing_note = note[:255]
    if commands:
        # Unique command ids: a step decided again (another delivery, another worker) is not a second row.
        OutboxCommand.objects.bulk_create(commands, ignore_conflicts=True)
    return Planned(len(commands), bool(notes))


def _plan_initiated(ws, rooms: Rooms, event, commands: list[OutboxCommand], notes: dict[str, str]) -> None:
    call = ws.calls.get(event.call_control_id)
    if call is None or call.direction != INCOMING or call.state == Call.State.HANGUP:
        return
    if call.routing_note or call.call_control_id in notes:
        return  # decided by an earlier delivery (another event id, another worker)
    room = rooms.for_number(call.to_number)
    if room is not None and rooms.is_banned(room, call.from_number):
        notes[call.call_control_id] = f"Banned from {room.name}: hung up"
        commands.append(command(Kind.HANGUP, call_control_id=call.call_control_id, room=room))
    elif room is not None:
        notes[call.call_control_id] = f"Ringing: answering for {room.name}"
        commands.append(command(Kind.ANSWER, call_control_id=call.call_control_id, room=room))
    else:
        notes[call.call_control_id] = f"No room has the number {call.to_number or '(none)'}: hung up"
        commands.append(command(Kind.HANGUP, call_control_id=call.call_control_id))


def _plan_answered(ws, rooms: Rooms, event, commands: list[OutboxCommand], notes: dict[str, str]) -> None:
    call = ws.calls.get(event.call_control_id)
    if call is None or call.state == Call.State.HANGUP or call.direction != INCOMING:
        return
    room = rooms.for_number(call.to_number)
    if room is None:
        return
    moderator = rooms.is_moderator(room, call.from_number)
    if room.asks_for_pin and not moderator and not call.pin_role:
        notes[call.call_control_id] = f"Answered: asking for the PIN of {room.name}"
        commands.append(_ask_pin(call, room))
        return
    notes[call.call_control_id] = f"Answered: placing the caller in {room.name}"
    waits = room.waiting_room and not moderator
    commands.append(command(Kind.ENQUEUE if waits else Kind.PLACE, call_control_id=call.call_control_id, room=room))


# --- a room's PIN ---------------------------------------------------------------------------------

PIN_TRIES = 3


def _ask_pin(call: Call, room: Room) -> OutboxCommand:
    """The step that asks for the PIN (again): one per try, so a second try is a new command for Telnyx."""
    return OutboxCommand(command_id=derived_command_id(Kind.ASK_PIN, f"{call.call_control_id}#{call.pin_tries}"),
                         kind=Kind.ASK_PIN, call_control_id=call.call_control_id, room=room)


def pin_role(room: Room, digits: str) -> str:
    """Which of the room's PINs `digits` is ("moderator", "participant"), else "". Without a participant PIN,
    entering nothing joins as a participant: the moderator PIN alone is what is asked for."""
    if room.moderator_pin and hmac.compare_digest(digits, room.moderator_pin):
        return "moderator"
    if room.participant_pin and hmac.compare_digest(digits, room.participant_pin):
        return "participant"
    return "participant" if not room.participant_pin and not digits else ""


def _plan_pin(ws, rooms: Rooms, event, commands: list[OutboxCommand], notes: dict[str, str]) -> None:
    """call.gather.ended of a PIN asked: the right PIN places the caller (as a moderator, for the moderator
    PIN), a wrong one asks again, the third wrong one hangs up. The digits are compared, never kept."""
    call = ws.calls.get(event.call_control_id)
    if call is None or call.state == Call.State.HANGUP or call.direction != INCOMING or call.pin_role:
        return
    room = rooms.for_number(call.to_number)
    status = event.payload.get("status")
    if room is None or not room.asks_for_pin or status == "call_hangup":
        return
    digits = event.payload.get("digits")
    role = pin_role(room, digits if isinstance(digits, str) else "") if status in ("valid", "invalid") else ""
    if role:
        Call.objects.filter(pk=call.pk).update(pin_role=role)
        call.pin_role = role
        notes[call.call_control_id] = f"PIN accepted: placing the {role} in {room.name}"
        waits = room.waiting_room and role != "moderator"
        commands.append(command(Kind.ENQUEUE if waits else Kind.PLACE, call_control_id=call.call_control_id, room=room))
        return
    call.pin_tries += 1
    Call.objects.filter(pk=call.pk).update(pin_tries=call.pin_tries)
    if call.pin_tries >= PIN_TRIES:
        notes[call.call_control_id] = f"Wrong PIN {call.pin_tries} times for {room.name}: hung up"
        commands.append(command(Kind.HANGUP, call_control_id=call.call_control_id, room=room))
    else:
        notes[call.call_control_id] = f"Wrong PIN ({call.pin_tries} of {PIN_TRIES}) for {room.name}: asked again"
        commands.append(_ask_pin(call, room))


def _plan_end_without_moderator(ws, rooms: Rooms, event, commands: list[OutboxCommand], notes) -> None:
    """conference.participant.left (hanging up leaves with it too): was that the room's last moderator?"""
    conference = ws.conferences.get(event.conference_id)
    if conference is None or conference.status == Conference.Status.COMPLETED or conference.room_id is None:
        return
    room = next((r for r in rooms.all if r.pk == conference.room_id), None)
    if room is None or not room.end_on_last_moderator_exit:
        return
    leaving = event.call_control_id
    caller, role = (
        (ws.calls[leaving].from_number, ws.calls[leaving].pin_role) if leaving in ws.calls else _caller_of(leaving)
    )
    if not (rooms.is_moderator(room, caller) or role == "moderator"):
        return
    remaining = list(
        Participant.objects.filter(conference=conference)
        .exclude(status=Participant.Status.LEFT)
        .exclude(call_control_id=leaving)
        .values_list("call_control_id", flat=True)
    )
    callers = Call.objects.filter(call_control_id__in=remaining).values_list("from_number", "pin_role")
    if remaining and not any(rooms.is_moderator(room, number) or role == "moderator" for number, role in callers):
        commands.append(command(Kind.END, conference_id=conference.telnyx_id, room=room))


def _plan_place_freed(ws, rooms: Rooms, event, commands: list[OutboxCommand], notes: dict[str, str]) -> None:
    """conference.participant.left in a room without a waiting room of its own: the first caller waiting for a
    place (the conference was full) takes the one that freed. Not while the room is locked: they wait for the
    unlock. Derived from the leg that left, so the same leave never takes two callers in."""
    conference = ws.conferences.get(event.conference_id)
    if conference is None or conference.status == Conference.Status.COMPLETED or conference.locked:
        return
    room = next((r for r in rooms.all if r.pk == conference.room_id), None)
    if room is None or room.waiting_room:
        return
    waiting = rooms.take_next_waiting(room)
    if waiting is not None:  # (its note is written when it joins: the call is not in this batch's working set)
        step = derived_command_id(Kind.ADMIT, f"{waiting}@place-of:{event.call_control_id}")
        commands.append(OutboxCommand(command_id=step, kind=Kind.ADMIT, call_control_id=waiting, room=room))


def _plan_left(ws, rooms: Rooms, event, commands: list[OutboxCommand], notes: dict[str, str]) -> None:
    _plan_end_without_moderator(ws, rooms, event, commands, notes)
    _plan_place_freed(ws, rooms, event, commands, notes)


def _plan_said(ws, rooms: Rooms, event, commands: list[OutboxCommand], notes: dict[str, str]) -> None:
    """call.speak.ended of a caller told that a locked room is closed: hang up."""
    call = ws.calls.get(event.call_control_id)
    if call is not None and call.state != Call.State.HANGUP and call.routing_note == REFUSED_LOCKED:
        notes[call.call_control_id] = "Locked: told the room is closed, hung up"
        commands.append(command(Kind.HANGUP, call_control_id=call.call_control_id))


def _caller_of(call_control_id: str) -> tuple[str, str]:
    """The caller's number, and the PIN they entered ("moderator", "participant" or "")."""
    return Call.objects.filter(call_control_id=call_control_id).values_list("from_number", "pin_role").first() or ("", "")


_PLANNERS = {
    "call.initiated": _plan_initiated,
    "call.answered": _plan_answered,
    "call.gather.ended": _plan_pin,
    "call.speak.ended": _plan_said,
    "conference.participant.left": _plan_left,
}


# --- doing (the outbox sender, after the decision committed) ---------------------------------------


def execute(command: OutboxCommand) -> Outcome:
    """Take one step now (sync: the SDK and the database). Never raises for what Telnyx answers."""
    return _EXECUTORS[command.kind](command)


def record(call_control_id: str, *, note: str | None = None, error: str | None = None) -> None:
    """Write what routing did (or what went wrong) on the call; the board shows it at once."""
    with transaction.atomic():
        call = Call.objects.select_for_update().filter(call_control_id=call_control_id).first()
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


def _answer(command: OutboxCommand) -> Outcome:
    call_control_id = command.call_control_id
    if _gone(call_control_id):
        return skipped("the caller hung up before the answer")
    try:
        actions.run_call_action(None, call_control_id, "answer", {}, command_id=command.command_id)
    except TelnyxFailure as failure:
        if failure.code == ALREADY_ANSWERED:
            return SENT  # answered by an earlier attempt: call.answered routes it
        error = _failure("answer the call", failure)
        record(call_control_id, note="Not answered", error=error)
        return refused(failure, error)
    return SENT


def _hangup(command: OutboxCommand) -> Outcome:
    try:
        actions.run_call_action(None, command.call_control_id, "hangup", {}, command_id=command.command_id)
    except TelnyxFailure as failure:
        if failure.code == CALL_ENDED:
            return skipped("the caller had hung up")
        error = _failure("hang up the call", failure)
        record(command.call_control_id, error=error)
        return refused(failure, error)
    return SENT


def _caller(command: OutboxCommand) -> tuple[Call | None, Room | None]:
    call = Call.objects.filter(call_control_id=command.call_control_id).first()
    if call is None or call.state == Call.State.HANGUP:
        return None, None
    return call, command.room


# Telnyx makes a queue hold 100 calls unless its first enqueue says otherwise (and it cannot be changed later):
# a room's waiting room holds a town hall.
WAITING_ROOM_SIZE = 5000


def waiting_for_a_place(room: Room) -> str:
    """The note of a caller who waits because the conference was full: a place that frees takes them in."""
    return f"{Call.WAITING_FOR_A_PLACE}: {room.name} is full"[:255]  # (a routing note's length)


def _enqueue(command: OutboxCommand, note: str = "") -> Outcome:
    call, room = _caller(command)
    if call is None or room is None:
        return skipped("the caller hung up, or the room is gone")
    try:
        actions.run_call_action(
            None, call.call_control_id, "enqueue", {"queue_name": room.queue_name, "max_size": WAITING_ROOM_SIZE},
            command_id=command.command_id,
        )
    except TelnyxFailure as failure:
        return _placing_failed(call, room, failure)
    record(call.call_control_id, note=note or f"Waiting in the waiting room of {room.name}", error="")
    return SENT


def _place(command: OutboxCommand) -> Outcome:
    call, room = _caller(command)
    if call is None or room is None:
        return skipped("the caller hung up, or the room is gone")
    call_control_id = call.call_control_id
    if is_banned(room, call.from_number):  # banned since the call was answered
        record(call_control_id, note=f"Banned from {room.name}: hung up", error="")
        return _hangup(command)
    moderator = is_moderator(room, call.from_number) or call.pin_role == "moderator"
    who = "Moderator" if moderator else "Caller"
    running = room.live_conference()
    if running is not None and running.locked and not moderator and command.kind != Kind.ADMIT:
        if room.refuse_when_locked:
            return _refuse_while_locked(call, room, command)
        return _enqueue(command)  # locked: the caller waits until a moderator unlocks it or admits them
    # An admission is a join of its own: a caller who waits again later (or whose join found the conference full)
    # is taken in by a new command, which Telnyx does not take for a repeat of the first.
    join_id = command.command_id if command.kind == Kind.ADMIT else command_id("join", call_control_id)
    try:
        conference, created = _conference_for(room, call_control_id, moderator)
        if not created:
            try:
                _join(room, conference, call_control_id, moderator, join_id)
            except TelnyxFailure as failure:
                if failure.code not in (CONFERENCE_ENDED, NO_SUCH_CONFERENCE):
                    raise
                # The conference ended before its webhook arrived: read Telnyx's view, then start over once.
                actions.sync_conference(conference.telnyx_id)
                conference, created = _conference_for(room, call_control_id, moderator)
                if not created:
                    _join(room, conference, call_control_id, moderator, join_id)
    except TelnyxFailure as failure:
        if failure.code != CONFERENCE_FULL:
            return _placing_failed(call, room, failure)
        if command.kind == Kind.ADMIT:  # waiting already: a place freed and was taken, or an admission went past it
            record(call_control_id, note=waiting_for_a_place(room), error="")
            return skipped(f"{room.name} is full: the caller still waits")
        return _enqueue(command, note=waiting_for_a_place(room))
    verb = "started the conference" if created else "in the conference"
    error = ""
    if created:
        captions.plan_started(conference, call_control_id)
    if created and room.mute_on_entry and not moderator:
        # Creating a conference takes no `mute` (joining does): its first caller is muted right after.
        try:
            actions.run_conference_action(None, conference.telnyx_id, "mute", {"call_control_ids": [call_control_id]})
        except TelnyxFailure as failure:
            error = _failure("mute the caller on entry", failure)
    record(call_control_id, note=f"{who}: {verb} of {room.name}", error=error)
    return SENT


LOCKED_MESSAGE = "Sorry, {room} is closed to new callers right now. Goodbye."
REFUSED_LOCKED = "Locked: told the room is closed, hanging up"  # the note call.speak.ended hangs up on


def _refuse_while_locked(call: Call, room: Room, command: OutboxCommand) -> Outcome:
    """A room that refuses callers while locked: the caller hears why; call.speak.ended hangs up (`_plan_said`)."""
    try:
        actions.run_call_action(None, call.call_control_id, "speak",
                                {"payload": LOCKED_MESSAGE.format(room=room.name), "voice": "female"},
                                command_id=command.command_id)
    except TelnyxFailure as failure:
        return _placing_failed(call, room, failure)
    record(call.call_control_id, note=REFUSED_LOCKED, error="")
    return SENT


def _placing_failed(call: Call, room: Room, failure: TelnyxFailure) -> Outcome:
    if _gone(call.call_control_id):
        error = "The caller hung up before joining."
    else:
        error = _failure(f"place the caller in {room.name}", failure)
    record(call.call_control_id, error=error)
    return refused(failure, error)


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
        conference = room.live_conference()
        if conference is not None:
            return conference, False
        try:
            conference = actions.create_conference(
                None,
                _create_params(room, call_control_id, moderator),
                room=room,
                command_id=command_id("create", call_control_id),
                creator=call_control_id,
            )
            return conference, True
        except TelnyxFailure as failed:
            failure = failed  # raised after the block, so that the audit row is kept
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
                if conference.room_id is None:
                    conference.captions_on = room.captions_on_join and not room.transcription_forbidden
                conference.room = room
                conference.name = conference.name or room.name
                conference.save(update_fields=["room", "name", "captions_on", "updated_at"])
            return conference
    return None


def _join(room: Room, conference: Conference, call_control_id: str, moderator: bool, join_id: str) -> None:
    body: dict[str, Any] = {"call_control_id": call_control_id}
    if moderator and room.start_on_moderator:
        body["start_conference_on_enter"] = True
    if room.mute_on_entry and not moderator:
        body["mute"] = True  # the join's acceptance shows the row muted from the first moment
    actions.run_conference_action(
        None, conference.telnyx_id, "join", body, command_id=join_id
    )


PIN_PROMPT = "Welcome to {room}. Please enter your PIN, then press the pound key."
MODERATOR_PIN_PROMPT = "Welcome to {room}. If you are a moderator, enter your PIN. Then press the pound key."
PIN_AGAIN = "That PIN is not right. Please enter it again, then press the pound key."


def _ask_for_pin(command: OutboxCommand) -> Outcome:
    call, room = _caller(command)
    if call is None or room is None:
        return skipped("the caller hung up, or the room is gone")
    if call.pin_role or not room.asks_for_pin:
        return skipped("no PIN to ask for any more")
    body = {"maximum_digits": 12, "terminating_digit": "#", "timeout_millis": 20000, "valid_digits": "0123456789"}
    if room.pin_prompt_audio_url:  # the room's own recording, every try
        action, body = "gather_using_audio", {**body, "audio_url": room.pin_prompt_audio_url}
    else:
        prompt = PIN_AGAIN if call.pin_tries else (PIN_PROMPT if room.participant_pin else MODERATOR_PIN_PROMPT)
        action, body = "gather_using_speak", {**body, "payload": prompt.format(room=room.name), "voice": "female"}
    try:
        actions.run_call_action(None, call.call_control_id, action, body, command_id=command.command_id)
    except TelnyxFailure as failure:
        return _placing_failed(call, room, failure)
    record(call.call_control_id, note=f"Asked for the PIN of {room.name}", error="")
    return SENT


def _record(command: OutboxCommand) -> Outcome:
    conference = Conference.objects.filter(telnyx_id=command.conference_telnyx_id).first()
    if conference is None or conference.status == Conference.Status.COMPLETED:
        return skipped("the conference has ended")
    try:
        actions.run_conference_action(
            None,
            conference.telnyx_id,
            "record_start",
            {"format": "mp3", "channels": "single"},
            command_id=command.command_id,
        )
    except TelnyxFailure as failure:
        error = _failure("start the recording", failure)
        if command.call_control_id:
            record(command.call_control_id, error=error)
        return refused(failure, error)
    return SENT


def _end(command: OutboxCommand) -> Outcome:
    conference_id = command.conference_telnyx_id
    conference = Conference.objects.filter(telnyx_id=conference_id).first()
    if conference is None or conference.status == Conference.Status.COMPLETED:
        return skipped("the conference has ended already")
    try:
        actions.run_conference_action(None, conference_id, "end", {}, command_id=command.command_id)
    except TelnyxFailure as failure:
        if failure.code in (CONFERENCE_ENDED, NO_SUCH_CONFERENCE):
            return skipped("the conference had ended")
        logger.warning("could not end conference %s after its last moderator left: %s", conference_id, failure)
        return refused(failure, str(failure))
    return SENT


def _look_up(command: OutboxCommand) -> Outcome:
    try:
        actions.sync_conference(command.conference_telnyx_id)
    except TelnyxFailure as failure:
        logger.info("could not read conference %s from Telnyx: %s", command.conference_telnyx_id, failure)
        return refused(failure, str(failure))
    return SENT


_EXECUTORS = {
    Kind.ANSWER: _answer,
    Kind.HANGUP: _hangup,
    Kind.ENQUEUE: _enqueue,
    Kind.PLACE: _place,
    Kind.ADMIT: _place,  # a moderator's admission (or unlocking) takes the caller in, locked or not
    Kind.ASK_PIN: _ask_for_pin,
    Kind.RECORD: _record,
    Kind.END: _end,
    Kind.LOOK_UP: _look_up,
    **captions.EXECUTORS,
}
