"""Conference transcripts after the call: the final caption lines as plain text and WebVTT, and a search across
conferences. Readers need `moderator.view_captions` (the views check it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from moderator.live import timeline
from moderator.models import Caption, Conference

SEARCH_RESULTS = 100
SECONDS_PER_WORD = 0.4  # a line is shown from about when it began: its final result comes as it ends
MIN_CUE_SECONDS = 1.0


@dataclass(frozen=True)
class Line:
    at: datetime
    name: str
    text: str
    keywords: str


def lines(conference: Conference) -> list[Line]:
    captions = list(conference.captions.order_by("spoken_at", "id"))
    callers = timeline.callers_of({c.call_control_id for c in captions})
    return [Line(c.spoken_at, timeline.leg_name(c.call_control_id, callers), c.text, c.keywords) for c in captions]


def origin(conference: Conference) -> tuple[datetime, str]:
    """Where the transcript's clock starts: the first recording's start (a WebVTT file then plays along with the
    recording), else the conference's."""
    recorded = conference.recordings.exclude(started_at=None).order_by("started_at").values_list("started_at", flat=True).first()
    if recorded is not None:
        return recorded, "the recording's start"
    return conference.started_at, "the conference's start"


def _clock(seconds: float, millis: bool) -> str:
    seconds = max(0.0, seconds)
    whole = int(seconds)
    text = f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
    return f"{text}.{int(round((seconds - whole) * 1000)) % 1000:03d}" if millis else text


def plain_text(conference: Conference) -> str:
    start, what = origin(conference)
    head = [f"Transcript of {conference} ({conference.telnyx_id})",
            f"Times from {what}, {start:%Y-%m-%d %H:%M:%S} UTC.", ""]
    body = [f"[{_clock((line.at - start).total_seconds(), False)}] {line.name}: {line.text}" for line in lines(conference)]
    return "\n".join(head + (body or ["Nothing was transcribed."])) + "\n"


def _cue_text(text: str) -> str:
    # WebVTT cue text: &, <, > as entities (a caller's words are never markup, and "-->" never ends a cue).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webvtt(conference: Conference) -> str:
    """Cues timed from `origin` (the recording's start when there is one); lines said before it are left out."""
    start, what = origin(conference)
    out = ["WEBVTT", "", f"NOTE {_cue_text(str(conference))}: times from {what} ({start:%Y-%m-%d %H:%M:%S} UTC)", ""]
    previous_end = 0.0
    for n, line in enumerate(lines(conference), 1):
        end = (line.at - start).total_seconds()
        if end <= 0:
            continue
        begin = max(previous_end, end - max(MIN_CUE_SECONDS, SECONDS_PER_WORD * len(line.text.split())))
        end = max(end, begin + MIN_CUE_SECONDS)
        previous_end = end
        out += [str(n), f"{_clock(begin, True)} --> {_clock(end, True)}",
                f"<v {_cue_text(line.name)}>{_cue_text(line.text)}", ""]
    return "\n".join(out)


@dataclass(frozen=True)
class Hit:
    conference: Conference
    at: datetime
    name: str
    parts: list[tuple[str, bool]]  # the line, cut into (text, is a match)


def search(query: str, limit: int = SEARCH_RESULTS) -> list[Hit]:
    """The newest final lines that say every word of `query` (case-insensitive), across conferences."""
    words = query.split()
    if not words:
        return []
    condition = Q()
    for word in words:
        condition &= Q(text__icontains=word)
    placed = Caption.objects.filter(condition, conference__isnull=False)
    found = list(placed.select_related("conference").order_by("-spoken_at", "-id")[:limit])
    callers = timeline.callers_of({c.call_control_id for c in found})
    pattern = re.compile("|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True)), re.IGNORECASE)
    return [Hit(c.conference, c.spoken_at, timeline.leg_name(c.call_control_id, callers), _marked(c.text, pattern))
            for c in found]


def _marked(text: str, pattern: re.Pattern) -> list[tuple[str, bool]]:
    parts, last = [], 0
    for match in pattern.finditer(text):
        parts += [(text[last:match.start()], False), (match.group(), True)]
        last = match.end()
    return [(part, marked) for part, marked in [*parts, (text[last:], False)] if part]


def delete(conference: Conference) -> int:
    """Every line of the conference's transcript; returns how many (the admin's action audits it)."""
    deleted, _ = Caption.objects.filter(conference=conference).delete()
    return deleted
