"""The JSON shape of conferences, legs, recordings and queues: one place for the API, the live
pages' snapshots and the broadcasts, so they can never disagree."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Prefetch
from django.utils import timezone

from moderator.models import Call, CallerName, Conference, Participant, Recording, RoomNumber, UserProfile, WaitingCall
from moderator.state.tables import placeholders, table


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


# An absolute http(s) URL with a host and nothing a browser would strip or re-read (controls, spaces).
_LINKABLE = re.compile(r"https?://[^\x00-\x20\x7f/?#\\]+[^\x00-\x20\x7f]*", re.IGNORECASE)


def link_url(value: Any) -> str | None:
    """`value` if it may be the target of a link, else None: the one rule for every URL that came from
    outside (a webhook, Telnyx) and is shown as a link, anywhere. Only http(s): a `javascript:` or `data:`
    URL in a recording's links would run in the moderator's session when clicked."""
    return value if isinstance(value, str) and _LINKABLE.fullmatch(value) else None


def link_urls(urls: Any) -> dict[str, str]:
    """The linkable entries of a {format: url} map (Telnyx's recording_urls); the others are dropped."""
    if not isinstance(urls, dict):
        return {}
    return {str(fmt): url for fmt, url in urls.items() if link_url(url) is not None}


def _caller(call: CallNumbers | None) -> dict[str, str]:
    if call is None:
        return {"from": "", "to": "", "name": ""}
    return {"from": call.from_number, "to": call.to_number, "name": call.name}


def participant_dict(
    participant: Participant, conference: Conference, call: CallNumbers | None = None
) -> dict[str, Any]:
    talking = (
        conference.is_live
        and participant.status == Participant.Status.JOINED
        and conference.floor_call_control_id == participant.call_control_id
    )
    return {
        "call_control_id": participant.call_control_id,
        "call_leg_id": participant.call_leg_id,
        "call_session_id": participant.call_session_id,
        **_caller(call),
        "status": participant.status,
        "muted": participant.muted,
        "on_hold": participant.on_hold,
        "supervisor_role": participant.supervisor_role,
        "whisper_call_control_ids": participant.whisper_call_control_ids,
        "joined_at": iso(participant.joined_at),
        "left_at": iso(participant.left_at),
        "talking": talking,
        # Closed spans only; while talking the page adds the time since `talk_since`.
        "talk_seconds": round(participant.talk_seconds, 3),
        "talk_since": iso(conference.floor_at) if talking else None,
        "playing": participant.playing,
        "playback_media": participant.playback_media,
        "speaking": participant.speaking,
        "hand_raised_at": iso(participant.hand_raised_at),
        # Live captions (what was said is for readers of captions only: `moderator.live.captions`).
        "transcribing": participant.transcribing and participant.status != Participant.Status.LEFT,
        "captioning": bool(participant.caption_line),
        "keyword_alert": bool(participant.caption_keywords) and participant.status != Participant.Status.LEFT,
    }


def recording_dict(recording: Recording) -> dict[str, Any]:
    return {
        "recording_id": recording.recording_id,
        "format": recording.format,
        "channels": recording.channels,
        "started_at": iso(recording.started_at),
        "ended_at": iso(recording.ended_at),
        "duration_seconds": recording.duration_seconds,
        # What Telnyx sent is kept in the database as evidence; only http(s) URLs leave it.
        "recording_urls": link_urls(recording.download_urls),
        "public_recording_urls": link_urls(recording.public_urls),
    }


def conference_summary(conference: Conference, participant_count: int | None = None) -> dict[str, Any]:
    """The conference without its legs: what the board and list show."""
    return {
        "id": conference.telnyx_id,
        "name": conference.name,
        "status": conference.status,
        "end_reason": conference.end_reason,
        "region": conference.region,
        "created_at": iso(conference.created_at),
        "started_at": iso(conference.started_at),
        "ended_at": iso(conference.ended_at),
        "creator_call_control_id": conference.creator_call_control_id,
        "floor_call_control_id": conference.floor_call_control_id if conference.is_live else "",
        "floor_since": iso(conference.floor_at)
        if conference.is_live and conference.floor_call_control_id
        else None,
        "playing": conference.playing,
        "playback_media": conference.playback_media,
        "playback_since": iso(conference.playback_at) if conference.playing else None,
        "speaking": conference.speaking,
        "speak_since": iso(conference.speak_at) if conference.speaking else None,
        "recording": conference.recording_status,
        "recording_since": iso(conference.recording_at)
        if conference.recording_status != Conference.RecordingStatus.IDLE
        else None,
        "participant_count": participant_count,
        "locked": conference.locked and conference.is_live,
        "captions": conference.captions_on and conference.is_live,
    }


def calls_by_control_id(call_control_ids: Iterable[str]) -> dict[str, CallNumbers]:
    """Who called whom, by leg, and the caller's name (`caller_name`), in one query: plain rows, not Call objects
    (loading whole Call objects, five timestamps each, was most of the cost)."""
    ids = sorted(set(call_control_ids))
    if not ids:
        return {}
    calls, numbers, names = table(Call), table(RoomNumber), table(CallerName)
    profiles, users = table(UserProfile), table(get_user_model())
    c = calls.column
    # The moderator's name for the number in the called room (or, calling no room, outside rooms), else the
    # dashboard user whose phone it is, else the caller id.
    sql = f"""
        SELECT c.{c("call_control_id")}, c.{c("from_number")}, c.{c("to_number")}, c.{c("caller_name")},
               n.{names.column("name")}, u.{users.column("first_name")}, u.{users.column("last_name")},
               u.{users.column("username")}
        FROM {calls.quoted} c
        LEFT JOIN {numbers.quoted} r ON r.{numbers.column("number")} = c.{c("to_number")}
        LEFT JOIN {names.quoted} n ON n.{names.column("number")} = c.{c("from_number")}
            AND (n.{names.column("room")} = r.{numbers.column("room")}
                 OR (n.{names.column("room")} IS NULL AND r.{numbers.column("room")} IS NULL))
        LEFT JOIN {profiles.quoted} p ON p.{profiles.column("phone_number")} = c.{c("from_number")} AND c.{c("from_number")} <> ''
        LEFT JOIN {users.quoted} u ON u.{users.column("id")} = p.{profiles.column("user")}
        WHERE c.{c("call_control_id")} IN ({placeholders(ids)})"""
    found: dict[str, CallNumbers] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, ids)
        for ccid, from_number, to_number, caller_id, given, first, last, username in cursor.fetchall():
            user = " ".join(part for part in (first, last) if part) or username or ""
            name = given or user or (caller_id if caller_id != from_number else "")
            found.setdefault(ccid, CallNumbers(ccid, from_number, to_number, name))
    return found


class CallNumbers(NamedTuple):
    call_control_id: str
    from_number: str
    to_number: str
    name: str = ""  # what to call the caller by, if anything better than the number

    @property
    def label(self) -> str:
        """How the page names the caller: the name, else the number."""
        return self.name or self.from_number


# What participant_dict reads, loaded as plain rows: a 1,000-leg live view builds no model instances.
PARTICIPANT_FIELDS = (
    "call_control_id", "call_leg_id", "call_session_id", "status", "muted", "on_hold", "supervisor_role",
    "whisper_call_control_ids", "joined_at", "left_at", "talk_seconds", "playing", "playback_media", "speaking",
    "hand_raised_at", "transcribing", "caption_line", "caption_keywords",
)


def conference_dict(conference: Conference) -> dict[str, Any]:
    """The conference with its legs and recordings, in a constant number of queries."""
    participants = list(conference.participants.values_list(*PARTICIPANT_FIELDS, named=True))
    recordings = list(conference.recordings.all())
    calls = calls_by_control_id(p.call_control_id for p in participants)
    active = sum(1 for p in participants if p.status != Participant.Status.LEFT)
    return {
        **conference_summary(conference, active),
        "participants": [participant_dict(p, conference, calls.get(p.call_control_id)) for p in participants],
        "recordings": [recording_dict(r) for r in recordings],
    }


def conferences_with_counts(queryset):
    return queryset.prefetch_related(
        Prefetch(
            "participants",
            queryset=Participant.objects.exclude(status=Participant.Status.LEFT).only("id", "conference_id"),
            to_attr="active_participants",
        )
    )


def waiting_call_dict(entry: WaitingCall, position: int, call: CallNumbers | None, now: datetime) -> dict[str, Any]:
    return {
        "call_control_id": entry.call_control_id,
        "queue": entry.queue_name,
        "position": position,
        **_caller(call),
        "enqueued_at": iso(entry.enqueued_at),
        "wait_seconds": round((now - entry.enqueued_at).total_seconds(), 1) if entry.enqueued_at else None,
        "queue_avg_wait_secs": entry.queue_avg_wait_secs,
    }


def queues_dict(now: datetime | None = None) -> dict[str, list[dict[str, Any]]]:
    """Calls waiting now, by queue; positions follow the order in which they were enqueued."""
    now = now or timezone.now()
    waiting = list(
        WaitingCall.objects.filter(status=WaitingCall.Status.WAITING).order_by(
            "queue_name", "enqueued_at", "id"
        )
    )
    calls = calls_by_control_id(entry.call_control_id for entry in waiting)
    queues: dict[str, list[dict[str, Any]]] = {}
    for entry in waiting:
        members = queues.setdefault(entry.queue_name, [])
        members.append(waiting_call_dict(entry, len(members) + 1, calls.get(entry.call_control_id), now))
    return queues
