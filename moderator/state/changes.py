"""What a committed change touched: the hand-off from the rules (and the actions) to the live pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moderator.telnyx.event import TelnyxEvent


@dataclass(frozen=True, slots=True)
class TimelineNote:
    """One line for a conference's live timeline: an applied webhook, or a moderator action (already worded,
    in `entry`). `key` identifies it on the page: a snapshot and an update may both carry it."""

    conference_id: str
    at: datetime | str | None
    key: str = ""
    event_type: str = ""
    call_control_id: str = ""
    detail: str = ""  # the event's reason, or the media it played
    entry: dict[str, Any] | None = None

    @classmethod
    def of(cls, event: TelnyxEvent, at: datetime | None = None) -> TimelineNote:
        payload = event.payload
        detail = payload.get("reason") or payload.get("media_url") or payload.get("media_name") or ""
        return cls(
            conference_id=event.conference_id,
            at=at or event.occurred_at,
            key=event.id,
            event_type=event.event_type,
            call_control_id=event.call_control_id,
            detail=str(detail)[:300],
        )


@dataclass
class Changes:
    """The conferences, legs and panels a transaction changed, for the broadcast after it commits."""

    conferences: set[str] = field(default_factory=set)
    participants: set[tuple[str, str]] = field(default_factory=set)  # (conference id, call_control_id)
    queues: bool = False  # the board's waiting-room panel
    hands: set[str] = field(default_factory=set)  # conferences whose raised hands changed
    bans: set[str] = field(default_factory=set)  # conferences whose room's bans changed
    raised: list[tuple[str, str]] = field(default_factory=list)  # (conference id, call_control_id): hands just up
    # Live captions: the final lines kept, (conference id, Telnyx event id), and the legs whose line being said
    # changed, (conference id, call_control_id). Only readers of captions are sent them.
    captions: list[tuple[str, str]] = field(default_factory=list)
    caption_lines: set[tuple[str, str]] = field(default_factory=set)
    timeline: list[TimelineNote] = field(default_factory=list)
    # The versions these changes took, per conference: from `since` to `versions` (several transactions, one
    # message). A page at `since - 1` or later applies the message; one further behind has missed a change.
    versions: dict[str, int] = field(default_factory=dict)
    since: dict[str, int] = field(default_factory=dict)

    def conference(self, telnyx_id: str) -> None:
        self.conferences.add(telnyx_id)

    def participant(self, telnyx_id: str, call_control_id: str) -> None:
        self.conferences.add(telnyx_id)
        self.participants.add((telnyx_id, call_control_id))

    def hand(self, telnyx_id: str, call_control_id: str, raised: bool) -> None:
        self.participant(telnyx_id, call_control_id)
        self.hands.add(telnyx_id)
        if raised:
            self.raised.append((telnyx_id, call_control_id))

    def merge(self, other: Changes) -> None:
        self.conferences |= other.conferences
        self.participants |= other.participants
        self.hands |= other.hands
        self.bans |= other.bans
        self.raised.extend(other.raised)
        self.captions.extend(other.captions)
        self.caption_lines |= other.caption_lines
        self.queues = self.queues or other.queues
        self.timeline.extend(other.timeline)
        for telnyx_id, version in other.versions.items():
            self.versions[telnyx_id] = max(version, self.versions.get(telnyx_id, version))
            self.since[telnyx_id] = min(other.since[telnyx_id], self.since.get(telnyx_id, other.since[telnyx_id]))

    def __bool__(self) -> bool:
        return bool(self.conferences or self.queues)
