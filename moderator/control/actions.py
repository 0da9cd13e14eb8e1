"""Moderator actions: validate → send through the SDK → audit → apply what no webhook will report.

Every attempt leaves a ModeratorAction row, accepted or not. State changes only after Telnyx has
accepted the command, in a transaction that broadcasts on commit. The moderators' own actions that are
no Telnyx command (name a caller, lower hands, lock, admit, ban) are at the end: applied at once, audited alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from moderator.control import schemas
from moderator.control.registry import CALL_ACTIONS, CONFERENCE_ACTIONS, CREATE_CONFERENCE, Action
from moderator.live import broadcast, timeline
from moderator.models import (
    Ban,
    Call,
    CallerName,
    Conference,
    ModeratorAction,
    OutboxCommand,
    Participant,
    Room,
    RoomNumber,
    WaitingCall,
    admission_under_way,
    derived_command_id,
)
from moderator.state import rules
from moderator.state.changes import Changes
from moderator.telnyx.client import RETRIES_WITH_COMMAND_ID, TelnyxFailure, as_dict, new_command_id, send

logger = logging.getLogger(__name__)


class UnknownConference(Exception):
    pass


class UnknownCall(Exception):
    pass


class NoNumber(Exception):
    """The call has no caller number to name (an anonymous or not yet reported caller)."""


class UnknownBan(Exception):
    pass


class NoRoom(Exception):
    """The conference was started for no dial-in room: nobody dials in to it, so there is no number to refuse
    (a ban) and no caller to keep waiting (a lock). The message says which."""


class NotARoomQueue(Exception):
    """The queue is no room's waiting room: there is no conference to admit its callers into."""


class ConferenceFull(Exception):
    """Every place of the room's conference is taken (or being taken): an admission would be refused."""

    def __init__(self, room: Room):
        super().__init__(f"{room.name} is full: all {room.places} places are taken. "
                         "The callers keep waiting; admit them once someone leaves.")


def _targets(params: dict[str, Any]) -> list[str]:
    if params.get("call_control_ids"):
        return list(params["call_control_ids"])
    return [params["call_control_id"]] if params.get("call_control_id") else []


def _target_text(conference: Conference | None, conference_id: str | None, targets: list[str]) -> str:
    """Whom a command was for, as the page names them: callers by name or number, a conference by its name."""
    if targets:
        callers = timeline.callers_of(targets[:3])
        return ", ".join(timeline.leg_name(t, callers) for t in targets[:3]) + (f" and {len(targets) - 3} more" if len(targets) > 3 else "")
    if conference is not None and conference.name:
        return f"conference “{conference.name}”"
    return f"conference {conference_id}" if conference_id else "the call"


def _attempt(
    user,
    name: str,
    action: Action,
    params: dict[str, Any],
    *,
    conference: Conference | None,
    conference_id: str,
    call: Callable,
    target_override: list[str] | None = None,
    command_id: str | None = None,
) -> Any:
    """Send one command through the SDK and audit it, whatever happens.

    `command_id` is fresh unless given: dial-in routing derives it from the call, so that the same
    step taken twice (a retried webhook, another worker) is one command for Telnyx.
    """
    command_id = (command_id or new_command_id()) if action.takes_command_id else ""
    targets = target_override if target_override is not None else _targets(params)
    started = time.monotonic()
    audit = ModeratorAction(
        user=user if getattr(user, "is_authenticated", False) else None,
        action=name,
        conference=conference,
        conference_telnyx_id=conference_id or "",
        call_control_ids=targets,
        parameters=params,
        command_id=command_id,
    )
    try:
        response = send(
            action.describe,
            _target_text(conference, conference_id, targets),
            lambda client: call(client, {**params, **({"command_id": command_id} if command_id else {})}),
            retries=RETRIES_WITH_COMMAND_ID if command_id else 0,
        )
    except TelnyxFailure as failure:
        audit.outcome = (
            ModeratorAction.Outcome.REFUSED
            if (failure.telnyx_status or 500) < 500 and failure.code not in ("timeout", "unreachable")
            else ModeratorAction.Outcome.FAILED
        )
        audit.http_status = failure.telnyx_status
        audit.telnyx_error_code = failure.code
        audit.error_detail = f"{failure.title}: {failure.detail}"[:4000]
        audit.latency_ms = (time.monotonic() - started) * 1000
        audit.save()
        with transaction.atomic():
            broadcast.publish_on_commit(on_timeline(conference, audit, Changes()))
        raise
    audit.outcome = ModeratorAction.Outcome.OK
    audit.http_status = 200
    audit.latency_ms = (time.monotonic() - started) * 1000
    audit.save()
    return response, audit


def on_timeline(
    conference: Conference | None, audit: ModeratorAction, changes: Changes
) -> Changes:
    """Every attempt, good or failed, shows on its conference's timeline in every open tab."""
    if conference is not None:
        changes.conference(conference.telnyx_id)
        changes.timeline.append(timeline.action_note(conference.telnyx_id, audit))
    return changes


def run_conference_action(
    user, conference_id: str, name: str, body: dict[str, Any], *, command_id: str | None = None
) -> dict[str, Any]:
    """Validate (raises pydantic.ValidationError), send, audit, apply. Raises TelnyxFailure when refused."""
    action = CONFERENCE_ACTIONS[name]
    params = action.schema.model_validate(body).model_dump(mode="json", exclude_none=True)
    conference = Conference.objects.filter(telnyx_id=conference_id).first()
    if conference is None:
        raise UnknownConference(conference_id)
    sdk_method = action.method
    response, audit = _attempt(
        user,
        name,
        action,
        params,
        conference=conference,
        conference_id=conference_id,
        call=lambda client, kwargs: getattr(client.conferences.actions, sdk_method)(conference_id, **kwargs),
        command_id=command_id,
    )
    with transaction.atomic():
        changes = rules.apply_accepted(conference, action.accepted, params) if action.accepted else Changes()
        broadcast.publish_on_commit(on_timeline(conference, audit, changes))
    return as_dict(response)


def run_call_action(
    user, call_control_id: str, name: str, body: dict[str, Any], *, command_id: str | None = None,
    conference: Conference | None = None,
) -> dict[str, Any]:
    """Validate, send, audit a command to one call. With the `conference` the call is in, the audit row is the
    conference's: a refusal shows on its timeline."""
    action = CALL_ACTIONS[name]
    params = action.schema.model_validate(body).model_dump(mode="json", exclude_none=True)
    sdk_method = action.method
    response, _ = _attempt(
        user,
        name,
        action,
        params,
        conference=conference,
        conference_id=conference.telnyx_id if conference is not None else "",
        target_override=[call_control_id],
        call=lambda client, kwargs: getattr(client.calls.actions, sdk_method)(call_control_id, **kwargs),
        command_id=command_id,
    )
    return as_dict(response)


def create_conference(
    user, body: dict[str, Any], *, room=None, command_id: str | None = None, creator: str = ""
) -> Conference:
    """Create a conference from a call; the Conference row exists (with its name) before any webhook.

    Started for a dial-in `room` that records automatically, the recording's start is decided in the
    same transaction: an outbox row (`creator` is the call it is reported on if it fails)."""
    params = schemas.CreateConference.model_validate(body).model_dump(mode="json", exclude_none=True)
    response, audit = _attempt(
        user,
        "create_conference",
        CREATE_CONFERENCE,
        params,
        conference=None,
        conference_id="",
        call=lambda client, kwargs: client.conferences.create(**kwargs),
        command_id=command_id,
    )
    data = as_dict(response)
    with transaction.atomic():
        conference, _ = Conference.objects.select_for_update().get_or_create(telnyx_id=data["id"])
        conference.name = data.get("name") or params["name"]
        conference.region = data.get("region") or conference.region
        if room is not None:
            conference.room = room
            conference.captions_on = room.captions_on_join and not room.transcription_forbidden
            if room.record_automatically:
                OutboxCommand.objects.bulk_create(
                    [OutboxCommand.step(OutboxCommand.Kind.RECORD, conference_id=conference.telnyx_id,
                                        call_control_id=creator, room=room)],
                    ignore_conflicts=True,
                )
        if (
            conference.status == Conference.Status.INIT
            and data.get("status") == Conference.Status.IN_PROGRESS
        ):
            conference.status = Conference.Status.IN_PROGRESS
        conference.save()
        audit.conference, audit.conference_telnyx_id = conference, conference.telnyx_id
        audit.save(update_fields=["conference", "conference_telnyx_id"])
        changes = Changes()
        changes.conference(conference.telnyx_id)
        broadcast.publish_on_commit(changes)
    return conference


def sync_conference(conference_id: str, user=None) -> Conference:
    """Reconcile one conference and its legs from Telnyx's own lists (GET conference, participants)."""
    target = f"conference {conference_id}"
    data = as_dict(
        send("read the conference", target, lambda c: c.conferences.retrieve(conference_id), retries=2)
    )
    legs: list[dict[str, Any]] = []
    page_number = 1
    while True:
        page = send(
            "list the participants",
            target,
            lambda c, n=page_number: c.conferences.list_participants(
                conference_id, page_number=n, page_size=250
            ),
            retries=2,
        )
        legs.extend(item.to_dict() for item in page.data)
        if page.meta is None or page.meta.page_number >= page.meta.total_pages:
            break
        page_number += 1
    # Only a conference Telnyx knows gets a row: a mistyped id changes nothing.
    conference, _ = Conference.objects.get_or_create(telnyx_id=conference_id)
    with transaction.atomic():
        changes = rules.reconcile_from_telnyx(conference, data, legs)
        broadcast.publish_on_commit(changes)
    conference.refresh_from_db()
    return conference


# --- the moderators' own actions: no Telnyx command of their own, applied at once, audited alike ---------


def audit_action(user, action: str, conference: Conference | None, call_control_ids: list[str], params: dict) -> ModeratorAction:
    """The audit row of a moderator's action that is no Telnyx command (it is applied at once)."""
    return ModeratorAction.objects.create(
        user=user if getattr(user, "is_authenticated", False) else None,
        action=action,
        conference=conference,
        conference_telnyx_id=conference.telnyx_id if conference else "",
        call_control_ids=call_control_ids,
        parameters=params,
        outcome=ModeratorAction.Outcome.OK,
    )


def name_caller(user, call_control_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """A moderator names the caller of a call: kept for the number in the room it called (for calls to no room's
    number: outside rooms), shown at once on every live row of a call from that number, and next time it calls.
    An empty name forgets it. Audited like a command, on the timeline of the conference the call is in."""
    name = schemas.CallerName.model_validate(body).name
    call = Call.objects.filter(call_control_id=call_control_id).first()
    if call is None:
        raise UnknownCall(call_control_id)
    if not call.from_number:
        raise NoNumber(call_control_id)
    room_id = RoomNumber.objects.filter(number=call.to_number).values_list("room_id", flat=True).first()
    leg = (
        Participant.objects.filter(call_control_id=call_control_id)
        .exclude(conference__status=Conference.Status.COMPLETED)
        .select_related("conference")
        .order_by("-id")
        .first()
    )
    conference = leg.conference if leg else None
    with transaction.atomic():
        if name:
            CallerName.objects.update_or_create(
                room_id=room_id, number=call.from_number,
                defaults={"name": name, "named_by": user if getattr(user, "is_authenticated", False) else None},
            )
        else:
            CallerName.objects.filter(room_id=room_id, number=call.from_number).delete()
        audit = audit_action(user, "name", conference, [call_control_id], {"name": name, "number": call.from_number})
        broadcast.publish_on_commit(on_timeline(conference, audit, rules.caller_named(call.from_number)))
    return {"call_control_id": call_control_id, "number": call.from_number, "name": name}


def lower_hands(user, conference_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """A moderator lowers raised hands (the callers stay as they are). Not a Telnyx command: audited, applied,
    broadcast. Unmuting lowers the hand too (`rules.unmuted`)."""
    params = schemas.LowerHands.model_validate(body).model_dump(mode="json", exclude_none=True)
    conference = Conference.objects.filter(telnyx_id=conference_id).first()
    if conference is None:
        raise UnknownConference(conference_id)
    with transaction.atomic():
        changes = rules.apply_accepted(conference, rules.hands_lowered, params)
        audit = audit_action(user, "lower_hands", conference, params.get("call_control_ids", []), params)
        broadcast.publish_on_commit(on_timeline(conference, audit, changes))
    return {"lowered": sorted(ccid for telnyx_id, ccid in changes.participants)}


def _admit(room: Room, waiting: list[WaitingCall], audit: ModeratorAction) -> None:
    """Outbox rows that take waiting callers into the room's conference (sent within a second, after commit);
    one per caller per admission, so admitting the same caller again later is a new command."""
    OutboxCommand.objects.bulk_create(
        [OutboxCommand(command_id=derived_command_id(OutboxCommand.Kind.ADMIT, f"{w.call_control_id}@{audit.pk}"),
                       kind=OutboxCommand.Kind.ADMIT, call_control_id=w.call_control_id, room=room) for w in waiting],
        ignore_conflicts=True,
    )


ON_THE_WAY_IN = timedelta(seconds=30)  # an accepted join is in within seconds: an older admission holds no place


class _WaitingRoom:
    """Who waits in a room's waiting room to be admitted, in the order they came (not who an admission takes in
    already: "Admit next" twice takes two callers), and how many more its conference has places for."""

    def __init__(self, room: Room) -> None:
        self.room = room
        self.to_admit = list(WaitingCall.objects.filter(queue_name=room.queue_name, status=WaitingCall.Status.WAITING)
                             .exclude(admission_under_way()).order_by("enqueued_at", "id"))

    def places_left(self, conference: Conference | None) -> int:
        """Its places, less who is in it and who is on their way in: admitted, not in yet, still on the line (between
        leaving the queue and joining, a caller is in neither)."""
        if conference is None:
            return self.room.places  # the first admitted starts it
        since = timezone.now() - ON_THE_WAY_IN
        if conference.first_seen_at and conference.first_seen_at > since:
            since = conference.first_seen_at
        coming_in = (
            OutboxCommand.objects.filter(kind=OutboxCommand.Kind.ADMIT, room=self.room, created_at__gte=since,
                                         status__in=OutboxCommand.GOING_AHEAD)
            .exclude(Exists(conference.participants.filter(call_control_id=OuterRef("call_control_id"))))
            .exclude(Exists(Call.objects.filter(call_control_id=OuterRef("call_control_id"), ended_at__isnull=False)))
            .values("call_control_id").distinct().count()
        )
        inside = conference.participants.exclude(status=Participant.Status.LEFT).count()
        return max(0, self.room.places - inside - coming_in)


def lock_conference(user, conference_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Lock a room's conference to new dial-in callers (they wait in the room's waiting room; its moderators
    still join), or unlock it: in a room without a waiting room of its own, who waited for the lock is admitted."""
    locked = schemas.Lock.model_validate(body).locked
    conference = Conference.objects.filter(telnyx_id=conference_id).select_related("room").first()
    if conference is None:
        raise UnknownConference(conference_id)
    if conference.room is None:
        raise NoRoom("nobody dials in to it, so there is no new caller to keep waiting")
    with transaction.atomic():
        changes = rules.apply_accepted(conference, rules.conference_flag("locked", locked), {})
        admitted = []
        audit = audit_action(user, "lock" if locked else "unlock", conference, [], {"locked": locked})
        if not locked and conference.room is not None and not conference.room.waiting_room:
            admitted = _WaitingRoom(conference.room).to_admit
            _admit(conference.room, admitted, audit)
        broadcast.publish_on_commit(on_timeline(conference, audit, changes))
    return {"locked": locked, "admitted": [w.call_control_id for w in admitted]}


def admit_waiting(user, queue_name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Admit the first `count` callers waiting in a room's waiting room (all, without a count) into its conference,
    as many as it has places for: Telnyx would refuse the others (they would wait on, unseen), so the moderator is
    told at once who still waits."""
    count = schemas.Admit.model_validate(body).count
    room = next((r for r in Room.objects.all() if r.queue_name == queue_name), None)
    if room is None:
        raise NotARoomQueue(queue_name)
    conference = room.live_conference()
    waiting_room = _WaitingRoom(room)
    asked = waiting_room.to_admit[:count]
    waiting = asked[:waiting_room.places_left(conference)] if asked else []
    if asked and not waiting:
        raise ConferenceFull(room)
    with transaction.atomic():
        audit = audit_action(user, "admit", conference, [w.call_control_id for w in waiting],
                       {"queue_name": queue_name, **({"count": count} if count else {})})
        _admit(room, waiting, audit)
        broadcast.publish_on_commit(on_timeline(conference, audit, Changes()))
    admitted = {"admitted": [w.call_control_id for w in waiting]}
    if len(waiting) < len(asked):
        still = len(asked) - len(waiting)
        admitted["note"] = (f"{room.name} is full at {room.places} places: "
                            f"{still} more {'caller waits' if still == 1 else 'callers wait'} until someone leaves.")
    return admitted


def ban_caller(user, conference_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Remove a caller and refuse their number in the conference's room — until the conference ends, or for good.
    The ban is kept first (a quick redial is refused), then the call is hung up through the SDK (its own audit
    row); if Telnyx refuses that, the ban stays, listed and liftable, and the moderator is told what failed."""
    params = schemas.BanCaller.model_validate(body).model_dump(mode="json")
    conference = Conference.objects.filter(telnyx_id=conference_id).select_related("room").first()
    if conference is None:
        raise UnknownConference(conference_id)
    if conference.room is None:
        raise NoRoom("there is no room to ban from")
    call_control_id = params["call_control_id"]
    number = Call.objects.filter(call_control_id=call_control_id).values_list("from_number", flat=True).first()
    if not number:
        raise NoNumber(call_control_id)
    with transaction.atomic():
        ban = Ban.objects.create(room=conference.room, number=number, conference=None if params["for_good"] else conference,
                                 banned_by=user if getattr(user, "is_authenticated", False) else None)
        audit = audit_action(user, "ban", conference, [call_control_id], {**params, "number": number})
        changes = Changes()
        changes.bans.add(conference.telnyx_id)
        broadcast.publish_on_commit(on_timeline(conference, audit, changes))
    run_call_action(user, call_control_id, "hangup", {})
    return {"ban": ban.pk, "number": number, "for_good": params["for_good"]}


def lift_ban(user, ban_id: int) -> dict[str, Any]:
    """Undo a ban: the number may call the room again."""
    with transaction.atomic():
        ban = Ban.objects.select_for_update().select_related("conference").filter(pk=ban_id).first()
        if ban is None:
            raise UnknownBan(ban_id)
        if ban.lifted_at is None:
            ban.lifted_at, ban.lifted_by = timezone.now(), user if getattr(user, "is_authenticated", False) else None
            ban.save(update_fields=["lifted_at", "lifted_by"])
        conferences = Conference.objects.filter(room_id=ban.room_id).exclude(status=Conference.Status.COMPLETED)
        changes = Changes()
        for conference in conferences:
            changes.bans.add(conference.telnyx_id)
            on_timeline(conference, audit_action(user, "unban", conference, [], {"number": ban.number}), changes)
        broadcast.publish_on_commit(changes)
    return {"ban": ban.pk, "number": ban.number, "lifted": True}
