"""A conference's timeline: what happened and who did it, in the moderator's words, newest first.

One module says how every entry reads: the applied webhooks (from the applier's notes when they happen, from
the stored events for a page's first load or snapshot) and the moderator actions (from their audit rows), and
which of them are announced to screen readers. Every entry has a key (the event's id, or the action's row),
so a page never shows one twice when a snapshot and an update both carry it.
"""

from __future__ import annotations

from dataclasses import replace
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
# Why a conference ended, in words (Telnyx's `reason`); an unknown reason reads with spaces for underscores.
END_REASONS = {
    "all_left": "everyone left",
    "ended_via_api": "ended by a moderator",
    "host_left": "the host left",
    "time_exceeded": "time limit reached",
}
# What a moderator did, by action (`{targets}`: the legs, or "everyone"); `update` reads by its role instead.
ACTION_WORDING = {
    "join": "added {targets} to the conference",
    "leave": "removed {targets} from the conference",
    "end": "ended the conference",
    "hold": "put {targets} on hold",
    "unhold": "took {targets} off hold",
    "mute": "muted {targets}",
    "unmute": "unmuted {targets}",
    "play": "played audio to {targets}",
    "stop": "stopped the audio for {targets}",
    "speak": "spoke text to {targets}",
    "record_start": "started recording",
    "record_pause": "paused the recording",
    "record_resume": "resumed the recording",
    "record_stop": "stopped the recording",
    "send_dtmf": "sent the digits {digits} to {targets}",
    "gather_using_audio": "asked {targets} for digits",
    "create_conference": "started the conference with {targets}",
    "enqueue": "moved {targets} to a queue",
    "leave_queue": "took {targets} out of the queue",
    "hangup": "hung up on {targets}",
    "answer": "answered {targets}",
    "name": "named {number} “{name}”",
    "lower_hands": "lowered the hand of {targets}",
    "lock": "locked the conference: new callers wait",
    "unlock": "unlocked the conference",
    "admit": "admitted {targets} from the waiting room",
    "ban": "removed and banned {targets}",
    "unban": "lifted the ban on {number}",
    "captions_on": "turned live captions on",
    "captions_off": "turned live captions off",
    "transcription_start": "started the live captions of {targets}",
    "transcription_stop": "stopped the live captions of {targets}",
    "delete_transcript": "deleted the transcript",
}
# A failed attempt reads in the infinitive: "could not mute …", not "could not muted …".
INFINITIVES = {
    "join": "add {targets} to the conference",
    "leave": "remove {targets} from the conference",
    "end": "end the conference",
    "hold": "put {targets} on hold",
    "unhold": "take {targets} off hold",
    "mute": "mute {targets}",
    "unmute": "unmute {targets}",
    "play": "play audio to {targets}",
    "stop": "stop the audio for {targets}",
    "speak": "speak text to {targets}",
    "record_start": "start recording",
    "record_pause": "pause the recording",
    "record_resume": "resume the recording",
    "record_stop": "stop the recording",
    "send_dtmf": "send the digits {digits} to {targets}",
    "gather_using_audio": "ask {targets} for digits",
    "update": "change the role of {targets}",
    "create_conference": "start a conference with {targets}",
    "enqueue": "move {targets} to a queue",
    "leave_queue": "take {targets} out of the queue",
    "hangup": "hang up on {targets}",
    "answer": "answer {targets}",
    "transcription_start": "start the live captions of {targets}",
    "transcription_stop": "stop the live captions of {targets}",
}
ROLE_WORDING = {
    "whisper": "made {targets} a whisperer",
    "barge": "let {targets} barge in",
    "monitor": "made {targets} a silent monitor",
    "none": "made {targets} a regular participant",
}


def end_reason(reason: str) -> str:
    return END_REASONS.get(reason, reason.replace("_", " "))


# Said aloud by the page (aria-live): arrivals and departures, not every floor change; and raised hands.
ANNOUNCED = {"conference.participant.joined": "joined", "conference.participant.left": "left"}
RAISED_HAND = "raised a hand"


def leg_name(call_control_id: str, callers: dict[str, str]) -> str:
    return callers.get(call_control_id) or (f"Leg …{call_control_id[-6:]}" if call_control_id else "")


def callers_of(call_control_ids) -> dict[str, str]:
    """The caller's name or number of each leg that has one (what the page names a leg by)."""
    return {ccid: call.label for ccid, call in calls_by_control_id(call_control_ids).items() if call.label}


def event_entry(note: TimelineNote, callers: dict[str, str]) -> dict[str, Any]:
    wording = WORDING.get(note.event_type, note.event_type)
    detail = note.detail or "audio"
    if note.event_type == "conference.ended" and note.detail:
        wording += " ({detail})"
        detail = end_reason(note.detail)
    return {
        "key": note.key,
        "at": iso(note.at) if not isinstance(note.at, str) else note.at,
        "kind": note.event_type.rsplit(".", 1)[-1],
        "text": wording.format(leg=leg_name(note.call_control_id, callers), detail=detail),
    }


def _names(call_control_ids: list[str], callers: dict[str, str]) -> str:
    shown = ", ".join(leg_name(c, callers) for c in call_control_ids[:3])
    return shown + (f" and {len(call_control_ids) - 3} more" if len(call_control_ids) > 3 else "")


def action_text(action: str, parameters: dict[str, Any], call_control_ids: list[str], callers: dict[str, str],
                failed: bool = False) -> str:
    """What a moderator did (or tried to do), in words: "muted +15550102", "made +15550103 a whisperer"."""
    targets = _names(call_control_ids, callers) or "everyone"
    fallback = action.replace("_", " ") + " {targets}"
    if failed:
        wording = "could not " + INFINITIVES.get(action, fallback)
    elif action == "update":
        wording = ROLE_WORDING.get(parameters.get("supervisor_role", "none"), "changed the role of {targets}")
    elif action == "name" and not parameters.get("name"):
        wording = "forgot the name of {number}"
    elif action == "ban":
        wording = ACTION_WORDING["ban"] + (" for good" if parameters.get("for_good") else " until the conference ends")
    else:
        wording = ACTION_WORDING.get(action, fallback)
    text = wording.format(targets=targets, digits=str(parameters.get("digits", "")),
                          number=str(parameters.get("number", "")), name=str(parameters.get("name", "")))
    whisper_to = [c for c in parameters.get("whisper_call_control_ids") or [] if isinstance(c, str)]
    if action == "update" and not failed and parameters.get("supervisor_role") == "whisper" and whisper_to:
        text += f" to {_names(whisper_to, callers)}"
    return text


def action_entry(action: ModeratorAction, callers: dict[str, str] | None = None) -> dict[str, Any]:
    """A moderator action, naming its legs as the page does (the caller's number)."""
    who = action.user.get_username() if action.user else "system"
    callers = callers_of(named_legs(action)) if callers is None else callers
    failed = action.outcome != ModeratorAction.Outcome.OK
    text = f"{who} {action_text(action.action, action.parameters or {}, action.call_control_ids, callers, failed)}"
    return {
        "key": f"action:{action.pk}",
        "at": iso(action.created_at),
        "kind": "action-failed" if failed else "action",
        "text": text + (f": {action.error_detail or action.get_outcome_display()}" if failed else ""),
    }


def named_legs(action: ModeratorAction) -> list[str]:
    """The legs an action's entry names: its first targets and whom a whisperer whispers to."""
    whisper = (action.parameters or {}).get("whisper_call_control_ids") or []
    return action.call_control_ids[:3] + [c for c in whisper[:3] if isinstance(c, str)]


def action_note(conference_id: str, action: ModeratorAction) -> TimelineNote:
    return TimelineNote(conference_id, action.created_at, key=f"action:{action.pk}", entry=action_entry(action))


# A flood of arrivals or departures (a town hall dialling in) reads as one entry: "12 joined", names inside.
FLOOD = 4
FLOODING = {"joined": "joined", "left": "left"}


def grouped(worded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries (newest first) with each run of FLOOD or more arrivals (or departures) folded into one. The
    folded entry keeps its members' keys: a page that has one of them already takes the group as a duplicate."""
    out: list[dict[str, Any]] = []
    run: list[dict[str, Any]] = []

    def close() -> None:
        if len(run) >= FLOOD:
            out.append({"key": f"group:{run[-1]['key']}", "at": run[0]["at"], "kind": run[0]["kind"],
                        "text": f"{len(run)} {FLOODING[run[0]['kind']]}", "members": list(reversed(run))})
        else:
            out.extend(run)
        run.clear()

    for entry in worded:
        if run and entry["kind"] != run[0]["kind"]:
            close()
        if entry["kind"] in FLOODING:
            run.append(entry)
        else:
            out.append(entry)
    close()
    return out


def entries(notes: list[TimelineNote], callers: dict[str, str]) -> list[dict[str, Any]]:
    """Notes of one committed change, worded, newest first, floods folded."""
    worded = [note.entry or event_entry(note, callers) for note in notes]
    return grouped(sorted(worded, key=lambda e: e["at"] or "", reverse=True))


def announcements(notes: list[TimelineNote], callers: dict[str, str]) -> list[str]:
    return [f"{leg_name(n.call_control_id, callers)} {ANNOUNCED[n.event_type]}" for n in notes if n.event_type in ANNOUNCED]


QUIET_WHEN_ACCEPTED = ("transcription_start", "transcription_stop")


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
        # Each leg's accepted transcription start or stop is audited, not told: the moderator's switch is.
        .exclude(action__in=QUIET_WHEN_ACCEPTED, outcome=ModeratorAction.Outcome.OK)
        .select_related("user")
        .order_by("-created_at")[:LENGTH]
    )
    notes = []
    for raw in events:
        try:
            note = TimelineNote.of(parse_event(raw.encode()))
        except WebhookRejected:
            continue  # stored and applied, so parseable; but a page must not fail on one old row
        if note.event_type == "conference.ended" and conference.end_reason:
            note = replace(note, detail=conference.end_reason)  # Telnyx says all_left when a moderator ended it
        notes.append(note)
    callers = callers_of({n.call_control_id for n in notes if n.call_control_id}
                         | {c for a in actions for c in named_legs(a)})
    worded = [event_entry(n, callers) for n in notes] + [action_entry(a, callers) for a in actions]
    return grouped(sorted(worded, key=lambda e: e["at"] or "", reverse=True)[:LENGTH])
