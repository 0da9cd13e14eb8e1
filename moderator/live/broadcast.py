"""Live updates: rendered once inside the transaction that made the change, sent after it commits.

Rendering inside the transaction makes each update exactly the committed state of its version (no
later change can slip in between), and a rolled-back change is never sent: its on_commit never runs.
Each update is serialized once per group, not once per socket; the consumers forward the text as is.
Concurrent webhooks share one transaction (see `store`), so a burst on one conference becomes one
update per batch rather than one per event.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from moderator.live import fragments
from moderator.models import Conference, Participant
from moderator.state.rules import Changes, bump_versions
from moderator.state.serializers import calls_by_control_id, iso

logger = logging.getLogger(__name__)

BOARD_GROUP = "board"
ANNOUNCED = {"conference.participant.joined": "joined", "conference.participant.left": "left"}


def conference_group(telnyx_id: str) -> str:
    # Channel-layer group names allow only ASCII alphanumerics, hyphens, underscores and periods.
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in telnyx_id)
    return f"conference.{safe}"[:99]


def message(payload: dict[str, Any]) -> dict[str, Any]:
    """A channel-layer message whose text every consumer forwards unchanged."""
    return {"type": "live.message", "text": json.dumps(payload, separators=(",", ":"))}


def build_messages(changes: Changes) -> list[tuple[str, dict[str, Any]]]:
    versions = bump_versions(changes)
    conferences = {c.telnyx_id: c for c in Conference.objects.filter(telnyx_id__in=versions)}
    wanted: dict[str, set[str]] = defaultdict(set)
    for conference_id, call_control_id in changes.participants:
        wanted[conference_id].add(call_control_id)
    legs = (
        Participant.objects.filter(
            conference__telnyx_id__in=list(wanted),
            call_control_id__in={c for ids in wanted.values() for c in ids},
        ).select_related("conference")
        if wanted
        else []
    )
    legs = [p for p in legs if p.call_control_id in wanted[p.conference.telnyx_id]]
    timeline_legs = {entry["call_control_id"] for _, entry in changes.timeline if entry.get("call_control_id")}
    calls = calls_by_control_id({p.call_control_id for p in legs} | timeline_legs)
    callers = {ccid: call.from_number for ccid, call in calls.items() if call.from_number}

    # Everything the summaries and cards need, for all of the batch's conferences at once.
    active = fragments.active_counts(list(conferences.values()))
    floors = fragments.floor_callers(list(conferences.values()))
    out: list[tuple[str, dict[str, Any]]] = []
    for telnyx_id, conference in conferences.items():
        rows = {p.call_control_id: fragments.participant_row(p, conference, calls)
                for p in legs if p.conference_id == conference.pk}
        entries = sorted((e for cid, e in changes.timeline if cid == telnyx_id),
                         key=lambda e: e["at"] if isinstance(e["at"], str) else iso(e["at"]), reverse=True)
        out.append((conference_group(telnyx_id), message({
            "type": "update",
            "conference_id": telnyx_id,
            "version": conference.version,
            "summary": fragments.summary(conference, active[conference.pk], floors),
            "rows": rows,
            "timeline": _timeline_html(entries, callers),
            "announce": [f"{fragments.leg_name(e['call_control_id'], callers)} {ANNOUNCED[e['event_type']]}"
                         for e in entries if e.get("event_type") in ANNOUNCED],
        })))
        out.append((BOARD_GROUP, message({
            "type": "conference",
            "conference_id": telnyx_id,
            "version": conference.version,
            "live": conference.is_live,
            "card": fragments.board_card(conference, active[conference.pk], floors),
        })))
    if changes.queues:
        out.append(
            (
                BOARD_GROUP,
                message(
                    {
                        "type": "queues",
                        "html": fragments.render("moderator/_queues.html", fragments.queues_context()),
                    }
                ),
            )
        )
    return out


def _timeline_html(entries: list[dict[str, Any]], callers: dict[str, str]) -> str:
    """Webhook entries are described here; action entries arrive already described (with a `text`)."""
    if not entries:
        return ""
    described = [e if "text" in e else fragments.timeline_entry(e["at"], e["event_type"], e["call_control_id"],
                                                                e["detail"], callers) for e in entries]
    return fragments.render("moderator/_timeline.html", {"entries": described})


def send(messages: list[tuple[str, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    if layer is None or not messages:
        return

    async def send_all() -> None:
        for group, payload in messages:
            await layer.group_send(group, payload)

    try:
        async_to_sync(send_all)()
    except Exception:  # noqa: BLE001 - the state is committed; pages resync on their next update or reconnect
        logger.exception("live update could not be sent")


def publish_on_commit(changes: Changes) -> None:
    """Call inside the transaction that made `changes`."""
    if not (changes.conferences or changes.queues):
        return
    messages = build_messages(changes)
    transaction.on_commit(lambda: send(messages))
