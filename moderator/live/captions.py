"""The live captions pane of a conference's page: what was said (its final lines) and what is being said now
(each caller's line, replaced as interim results arrive). Sent only to users who may read captions
(`moderator.view_captions`): the messages carry ``audience: captions`` and the consumers drop them for others.

Protocol (server → page): ``{"type": "captions", "conference_id", "lines": "<li>…", "live": {leg: "<li>…" | ""}}``.
`lines` are final lines, each with its Telnyx event id as `data-key` (a page already showing one ignores it
again: a redelivered webhook, or a message racing a snapshot); `live` sets or clears a caller's line. A line
that says one of its room's keyword alerts is also announced on the board:
``{"type": "alert", "key", "conference_id", "html": "<li>…"}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils.safestring import SafeString

from moderator.live import timeline
from moderator.live.fragments import render
from moderator.models import Caption, Conference, Participant
from moderator.state.serializers import iso

ALERTS_SHOWN = 10  # keyword alerts the board starts with
AUDIENCE = "captions"
PERMISSION = "moderator.view_captions"
SHOWN = 200  # final lines a page starts with; the conference's page (after the end) and exports have them all


def _line(caption: Caption, callers: dict[str, str]) -> dict[str, Any]:
    return {"key": caption.event_id, "leg": caption.call_control_id, "at": iso(caption.spoken_at),
            "name": timeline.leg_name(caption.call_control_id, callers), "text": caption.text,
            "keywords": caption.keywords, "confidence": caption.confidence}


def _live(leg: Participant, callers: dict[str, str]) -> dict[str, Any]:
    return {"leg": leg.call_control_id, "at": iso(leg.caption_at), "text": leg.caption_line,
            "name": timeline.leg_name(leg.call_control_id, callers)}


def pane(conference: Conference) -> SafeString:
    """The pane as a page first shows it (first load, snapshot): the last SHOWN final lines, then who is speaking."""
    lines = list(conference.captions.order_by("-spoken_at", "-id")[:SHOWN])[::-1]
    speaking = list(conference.participants.exclude(caption_line="").exclude(status=Participant.Status.LEFT)
                    .order_by("caption_at", "id"))
    callers = timeline.callers_of({c.call_control_id for c in lines} | {leg.call_control_id for leg in speaking})
    empty = ("No captions yet: what callers say shows here while captions are on." if conference.is_live
             else "Nothing was transcribed in this conference.")
    return render("captions.html", {"lines": [_line(c, callers) for c in lines],
                                    "live": [_live(leg, callers) for leg in speaking], "empty": empty})


def updates(conferences: dict[str, Conference], finals: Iterable[tuple[str, str]],
            lines: Iterable[tuple[str, str]]) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Per conference, the captions message for a committed change: its new final lines (by Telnyx event id) and
    the legs whose line being said changed; and the board's alerts for the lines that said a keyword. A few
    queries, for all the conferences at once."""
    event_ids = sorted({event_id for _, event_id in finals})
    by_pk = {c.pk: c for c in conferences.values()}
    kept = list(Caption.objects.filter(event_id__in=event_ids).order_by("spoken_at", "id")) if event_ids else []
    wanted = {(telnyx_id, leg) for telnyx_id, leg in lines if telnyx_id in conferences}
    legs = list(Participant.objects.filter(conference__in=[conferences[t].pk for t, _ in wanted],
                                           call_control_id__in={leg for _, leg in wanted})) if wanted else []
    legs = [leg for leg in legs if (by_pk[leg.conference_id].telnyx_id, leg.call_control_id) in wanted]
    callers = timeline.callers_of({c.call_control_id for c in kept} | {leg.call_control_id for leg in legs})
    out: dict[str, dict[str, Any]] = {}
    alerts = [{"type": "alert", "key": c.event_id, "conference_id": by_pk[c.conference_id].telnyx_id,
               "html": render("alert.html", {"line": _line(c, callers), "conference": by_pk[c.conference_id]})}
              for c in kept if c.keywords and c.conference_id in by_pk]
    for telnyx_id, conference in conferences.items():
        said = [_line(c, callers) for c in kept if c.conference_id == conference.pk]
        live = {leg.call_control_id: render("caption_live.html", {"c": _live(leg, callers)}) if leg.caption_line else ""
                for leg in legs if leg.conference_id == conference.pk}
        if said or live:
            out[telnyx_id] = {"type": "captions", "conference_id": telnyx_id,
                              "lines": render("caption_lines.html", {"lines": said}) if said else "", "live": live}
    return out, alerts


def recent_alerts() -> SafeString:
    """The board's keyword alerts as it first shows them: the newest lines that said one, newest first."""
    said = list(Caption.objects.exclude(keywords="").select_related("conference").order_by("-spoken_at", "-id")[:ALERTS_SHOWN])
    callers = timeline.callers_of({c.call_control_id for c in said})
    return SafeString("".join(render("alert.html", {"line": _line(c, callers), "conference": c.conference}) for c in said))
