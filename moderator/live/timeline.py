"""A conference's timeline: what happened and who did it, in the moderator's words, newest first.

One module says how every entry reads: the applied webhooks (from the applier's notes when they happen, from
the stored events for a page's first load or snapshot) and the moderator actions (from their audit rows), and
which of them are announced to screen readers. Every entry has a key (the event's id, or the action's row),
so a page never shows one twice when a snapshot and an update both carry it.
"""

from __future__ import annotations

from typing import Any

from moderator.models import Conference, ModeratorAction, WebhookEvent
from moderator.state.changes import TimelineNote
from moderator.state.serializers import calls_by_control_id, iso
from moderator.telnyx.event import WebhookRejected, parse_event

LENGTH = 60

WORDING = {
    "conference.created": "Conference started",
    "conference.ended": "Conference ended",
    "conference.floor.changed": "{leg} took the floor",
    "conference.participant.joined": "{leg} joined",
    "conference.participant.left": "{leg} left",
    "conference.participant.playback.started": "Playing {detail} to {leg}",
    "conference.participant.playback.ended": "Playback to {leg} ended",
    "conference.participant.speak.started": "Speaking text to {leg}",
    "conference.participant.speak.ended": "Text to {leg} finished",
    "conference.playback.started": "Playing {detail} to everyone",
    "conference.playback.ended": "Playback ended",
    "conference.speak.started": "Speaking text to everyone",
    "conference.speak.ended": "Text to everyone finished",
    "conference.recording.saved": "Recording saved",
}
# Said aloud by the page (aria-live): arrivals and departures, not every floor change.
ANNOUNCED = {"conference.participant.joined": "joined", "conference.participant.left": "left"}


def leg_name(call_control_id: str, callers: dict[str, str]) -> str:
    return callers.get(call_control_id) or (f"Leg …{call_control_id[-6:]}" if call_control_id else "")


def callers_of(call_control_ids) -> dict[str, str]:
    """The caller's number of each leg that has one (what the page names a leg by)."""
    return {ccid: call.from_number for ccid, call in calls_by_control_id(call_control_ids).items() if call.from_number}


def event_entry(note: TimelineNote, callers: dict[str, str]) -> dict[str, Any]:
    wording = WORDING.get(note.event_type, note.event_type)
    if note.event_type == "conference.ended" and note.detail:
        wording += " ({detail})"
    return {
        "key": note.key,
        "at": iso(note.at) if not isinstance(note.at, str) else note.at,
        "kind": note.event_type.rsplit(".", 1)[-1],
        "text": wording.format(leg=leg_name(note.call_control_id, callers), detail=note.detail or "audio"),
    }


def action_entry(action: ModeratorAction, callers: dict[str, str] | None = None) -> dict[str, Any]:
    """A moderator action, naming its legs as the page does (the caller's number)."""
    who = action.user.get_username() if action.user else "system"
    shown = action.call_control_ids[:3]
    callers = callers_of(shown) if callers is None else callers
    targets = ", ".join(leg_name(c, callers) for c in shown) + (" …" if len(action.call_control_ids) > 3 else "")
    failed = action.outcome != ModeratorAction.Outcome.OK
    return {
        "key": f"action:{action.pk}",
        "at": iso(action.created_at),
        "kind": "action-failed" if failed else "action",
        "text": f"{who}: {action.action.replace('_', ' ')}{' ' + targets if targets else ''}"
        + (f" — failed: {action.error_detail or action.outcome}" if failed else ""),
    }


def action_note(conference_id: str, action: ModeratorAction) -> TimelineNote:
    return TimelineNote(conference_id, action.created_at, key=f"action:{action.pk}", entry=action_entry(action))


def entries(notes: list[TimelineNote], callers: dict[str, str]) -> list[dict[str, Any]]:
    """Notes of one committed change, worded, newest first."""
    worded = [note.entry or event_entry(note, callers) for note in notes]
    return sorted(worded, key=lambda e: e["at"] or "", reverse=True)


def announcements(notes: list[TimelineNote], callers: dict[str, str]) -> list[str]:
    return [f"{leg_name(n.call_control_id, callers)} {ANNOUNCED[n.event_type]}" for n in notes if n.event_type in ANNOUNCED]


def history(conference: Conference) -> list[dict[str, Any]]:
    """The recent entries of a conference, newest first: its applied webhooks and its moderators' actions.
    (Events still waiting for the applier come with the update that applies them.)"""
    events = list(
        WebhookEvent.objects.filter(conference_telnyx_id=conference.telnyx_id, status=WebhookEvent.Status.APPLIED)
        .order_by("-occurred_at", "-id")
        .values_list("raw", flat=True)[:LENGTH]
    )
    actions = list(
        ModeratorAction.objects.filter(conference_telnyx_id=conference.telnyx_id)
        .select_related("user")
        .order_by("-created_at")[:LENGTH]
    )
    notes = []
    for raw in events:
        try:
            notes.append(TimelineNote.of(parse_event(raw.encode())))
        except WebhookRejected:
            continue  # stored and applied, so parseable; but a page must not fail on one old row
    callers = callers_of({n.call_control_id for n in notes if n.call_control_id}
                         | {c for a in actions for c in a.call_control_ids[:3]})
    worded = [event_entry(n, callers) for n in notes] + [action_entry(a, callers) for a in actions]
    return sorted(worded, key=lambda e: e["at"] or "", reverse=True)[:LENGTH]
