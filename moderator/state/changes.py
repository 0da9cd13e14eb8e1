"""What a committed change touched: the hand-off from the rules (and the actions) to the live pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class TimelineNote:
    """One line for a conference's live timeline: an applied webhook, or a moderator action (with `text`)."""

    conference_id: str
    at: datetime | str | None
    event_type: str = ""
    call_control_id: str = ""
    detail: str = ""
    entry: dict[str, Any] | None = None  # an action's entry, already worded


@dataclass
class Changes:
    """The conferences, legs and panels a transaction changed, for the broadcast after it commits."""

    conferences: set[str] = field(default_factory=set)
    participants: set[tuple[str, str]] = field(default_factory=set)  # (conference id, call_control_id)
    queues: bool = False  # the board's waiting-room panel
    timeline: list[TimelineNote] = field(default_factory=list)
    # The conferences' versions as the transaction left them (set where they were bumped).
    versions: dict[str, int] = field(default_factory=dict)

    def conference(self, telnyx_id: str) -> None:
        self.conferences.add(telnyx_id)

    def participant(self, telnyx_id: str, call_control_id: str) -> None:
        self.conferences.add(telnyx_id)
        self.participants.add((telnyx_id, call_control_id))

    def merge(self, other: Changes) -> None:
        self.conferences |= other.conferences
        self.participants |= other.participants
        self.queues = self.queues or other.queues
        self.timeline.extend(other.timeline)
        self.versions.update(other.versions)

    def __bool__(self) -> bool:
        return bool(self.conferences or self.queues)
