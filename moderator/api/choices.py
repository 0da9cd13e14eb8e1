"""What a dialog's choice fields offer (`Field` kinds "calls" and "queues" in the registry): the calls a moderator
can add to a conference, and the queues a call can be moved to. The page asks when it opens the dialog, so the
choices are as fresh as the dialog: GET /api/choices/<kind> answers ``{"choices": [{"value", "label", "group"}]}``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from moderator.api.access import moderator_required
from moderator.api.errors import error, methods
from moderator.models import Call, Conference, Participant, Room, WaitingCall
from moderator.state.serializers import calls_by_control_id

LIMIT = 50  # per group: a dialog's list, not a report
RECENT = timedelta(hours=2)  # a call parked longer ago than this is most likely forgotten by Telnyx's side too


def call_choices() -> list[dict[str, Any]]:
    """Calls that can join a conference: waiting in a queue, then answered calls in no live conference (those
    that left one first, naming it). A constant number of queries."""
    rooms = {room.queue_name: room.name for room in Room.objects.all()}
    waiting = list(WaitingCall.objects.filter(status=WaitingCall.Status.WAITING).order_by("enqueued_at", "id")[:LIMIT])
    in_conference = Participant.objects.filter(
        status__in=[Participant.Status.JOINING, Participant.Status.JOINED],
    ).exclude(conference__status=Conference.Status.COMPLETED).values("call_control_id")
    waiting_ids = WaitingCall.objects.filter(status=WaitingCall.Status.WAITING).values("call_control_id")
    parked = list(
        Call.objects.filter(state=Call.State.ANSWERED, updated_at__gte=timezone.now() - RECENT)
        .exclude(Q(call_control_id__in=in_conference) | Q(call_control_id__in=waiting_ids))
        .order_by("-updated_at", "-id")[:LIMIT]
    )
    callers = {ccid: call.label for ccid, call in
               calls_by_control_id([w.call_control_id for w in waiting] + [c.call_control_id for c in parked]).items()}
    left: dict[str, str] = {}
    for call_control_id, name, telnyx_id in (
        Participant.objects.filter(call_control_id__in=[c.call_control_id for c in parked], status=Participant.Status.LEFT)
        .order_by("left_at", "id")
        .values_list("call_control_id", "conference__name", "conference__telnyx_id")
    ):
        left[call_control_id] = name or telnyx_id  # the latest wins
    choices = [
        {
            "value": w.call_control_id,
            "label": f"{callers.get(w.call_control_id) or 'unknown caller'} · waiting in "
            f"{rooms.get(w.queue_name) or w.queue_name}",
            "group": "Waiting",
        }
        for w in waiting
    ]
    for call in parked:
        caller = callers.get(call.call_control_id) or "unknown caller"
        if call.call_control_id in left:
            choices.append({"value": call.call_control_id, "label": f"{caller} · left {left[call.call_control_id]}",
                            "group": "Recently left a conference"})
        else:
            choices.append({"value": call.call_control_id, "label": f"{caller} · answered, in no conference",
                            "group": "Parked"})
    return choices


def queue_choices() -> list[dict[str, Any]]:
    """The rooms' waiting rooms, then any other queue someone waits in now."""
    choices = [
        {"value": room.queue_name, "label": f"{room.name} waiting room", "group": "Waiting rooms"}
        for room in Room.objects.filter(waiting_room=True)
    ]
    known = {c["value"] for c in choices}
    in_use = (
        WaitingCall.objects.filter(status=WaitingCall.Status.WAITING)
        .order_by("queue_name")
        .values_list("queue_name", flat=True)
        .distinct()
    )
    choices += [{"value": name, "label": name, "group": "Other queues"} for name in in_use if name not in known]
    return choices


KINDS = {"calls": call_choices, "queues": queue_choices}


@methods("GET")
@moderator_required
def choices(request: HttpRequest, kind: str) -> JsonResponse:
    if kind not in KINDS:
        return error(404, "unknown choices", f"choices are {', '.join(KINDS)}")
    return JsonResponse({"choices": KINDS[kind]()})
