"""Live updates: one message per changed conference per committed change, rendered once, sent after commit.

A change takes its versions in its own transaction (a rolled-back change never takes one, and is never
sent); the message is rendered after the commit, outside the write transaction, so it shows the
committed state of its version or something newer — never older. Each update is serialized once per
group, not once per socket; the consumers forward the text as is. The applier applies webhooks in
batches, so a burst on one conference becomes one update per batch rather than one per event.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from moderator.live import captions, fragments, timeline
from moderator.models import Conference, Participant
from moderator.state.changes import Changes
from moderator.state.rules import bump_versions
from moderator.state.serializers import calls_by_control_id
from moderator.state.tables import placeholders, table

logger = logging.getLogger(__name__)

BOARD_GROUP = "board"


def conference_group(telnyx_id: str) -> str:
    # Channel-layer group names allow only ASCII alphanumerics, hyphens, underscores and periods.
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in telnyx_id)
    return f"conference.{safe}"[:99]


def _json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


def message(payload: dict[str, Any], for_observers: dict[str, Any] | None = None, audience: str = "") -> dict[str, Any]:
    """A channel-layer message whose text every consumer forwards unchanged, serialized once per group. Where
    observers see something else (no controls: they may not act), their text goes along, serialized once too.
    With an `audience` (captions), only the consumers of users allowed to read it forward it."""
    out = {"type": "live.message", "text": _json(payload)}
    if for_observers is not None:
        out["observer_text"] = _json(for_observers)
    if audience:
        out["audience"] = audience
    return out


def listened(layer=None) -> Callable[[str], bool]:
    """Whether a group has anyone to send to. The in-process layer knows (a page joins its group before it takes
    its snapshot, so a page that joins after this is asked reads what was committed before); any other layer is
    taken to be listened to."""
    has_members = getattr(layer if layer is not None else get_channel_layer(), "has_members", None)
    return has_members if has_members is not None else (lambda group: True)


def build_messages(changes: Changes) -> list[tuple[str, dict[str, Any]]]:
    """The messages for committed `changes` (their versions taken already): one per changed conference for
    its live view and one for the board, and the board's waiting room if it changed. Nothing is rendered for a
    group nobody is in: a page that opens later takes a snapshot."""
    heard = listened()
    board = heard(BOARD_GROUP)
    versions = changes.versions
    watched = {telnyx_id for telnyx_id in versions if heard(conference_group(telnyx_id))}
    if not board and not watched:
        return []
    # Plain-SQL reads (`moderator.state.tables`): this runs after every applied cycle.
    conferences_ = table(Conference)
    ids = sorted(versions if board else watched)
    conferences = {c.telnyx_id: c for c in conferences_.select(f"{conferences_.column('telnyx_id')} IN ({placeholders(ids)})", ids)} if ids else {}
    by_pk = {c.pk: c for c in conferences.values()}
    wanted: dict[str, set[str]] = defaultdict(set)
    for conference_id, call_control_id in changes.participants:
        if conference_id in watched:
            wanted[conference_id].add(call_control_id)
    legs = []
    if wanted:
        legs_ = table(Participant)
        pks = sorted(c.pk for t, c in conferences.items() if t in wanted)
        ccids = sorted({c for ids in wanted.values() for c in ids})
        for leg in legs_.select(
            f"{legs_.column('conference')} IN ({placeholders(pks)}) AND {legs_.column('call_control_id')} IN "
            f"({placeholders(ccids)})", [*pks, *ccids],
        ):
            leg.conference = by_pk[leg.conference_id]
            if leg.call_control_id in wanted[leg.conference.telnyx_id]:
                legs.append(leg)
    timeline_legs = {note.call_control_id for note in changes.timeline if note.call_control_id and note.conference_id in watched}
    calls = calls_by_control_id({p.call_control_id for p in legs} | timeline_legs)
    callers = {ccid: call.label for ccid, call in calls.items() if call.label}

    # Everything the summaries and cards need, for all of the batch's conferences at once.
    active = fragments.active_counts(list(conferences.values()))
    floors = fragments.floor_callers(list(conferences.values()))
    recordings = fragments.saved_recordings([c for t, c in conferences.items() if c.is_live and t in watched])
    out: list[tuple[str, dict[str, Any]]] = []
    for telnyx_id, conference in conferences.items():
        version = versions[telnyx_id]
        if board:
            out.append((BOARD_GROUP, message({
                "type": "conference",
                "conference_id": telnyx_id,
                "since": changes.since.get(telnyx_id, version),
                "version": version,
                "live": conference.is_live,
                "card": fragments.board_card(conference, active[conference.pk], floors),
            })))
        if telnyx_id not in watched:
            continue
        changed = [p for p in legs if p.conference_id == conference.pk]

        # Past a snapshot's part, the pages take a snapshot instead (in parts) of one message of every row.
        refresh = len(changed) > fragments.ROWS_PER_MESSAGE

        def rows(can_moderate: bool, changed=changed, conference=conference, refresh=refresh) -> dict[str, str]:
            if refresh:
                return {}
            return {p.call_control_id: fragments.participant_row(p, conference, calls, can_moderate) for p in changed}

        notes = [n for n in changes.timeline if n.conference_id == telnyx_id]
        # The hands panel, when a hand went up or down, or a leg with its hand up changed (its name, say).
        hands_changed = telnyx_id in changes.hands or any(p.hand_raised_at for p in changed)
        raised = [timeline.leg_name(ccid, callers) + " " + timeline.RAISED_HAND
                  for conference_id, ccid in changes.raised if conference_id == telnyx_id]
        update = {
            "type": "update",
            "conference_id": telnyx_id,
            "since": changes.since.get(telnyx_id, version),
            "version": version,
            "summary": fragments.summary(conference, active[conference.pk], floors, recordings),
            "rows": rows(True),
            "timeline": fragments.render("timeline.html", {"entries": timeline.entries(notes, callers)}) if notes else "",
            "announce": timeline.announcements(notes, callers) + raised,
            **({"refresh": True} if refresh else {}),
            **({"hands": fragments.hands(conference, True)} if hands_changed else {}),
            **({"bans": fragments.bans(conference, True)} if telnyx_id in changes.bans else {}),
        }
        observed = {**update}
        if changed and not refresh:
            observed["rows"] = rows(False)
        if hands_changed:
            observed["hands"] = fragments.hands(conference, False)
        if telnyx_id in changes.bans:
            observed["bans"] = fragments.bans(conference, False)
        out.append((conference_group(telnyx_id), message(update, observed if observed != update else None)))
    if changes.captions or changes.caption_lines:
        said, alerts = captions.updates(conferences, changes.captions, changes.caption_lines)
        out.extend((conference_group(telnyx_id), message(update, audience=captions.AUDIENCE))
                   for telnyx_id, update in said.items() if telnyx_id in watched)
        if board:
            out.extend((BOARD_GROUP, message(alert, audience=captions.AUDIENCE)) for alert in alerts)
    if changes.queues and board:
        context = fragments.queues_context()
        panel = {"type": "queues", "html": fragments.render("queues.html", {**context, "can_moderate": True})}
        observed = {**panel, "html": fragments.render("queues.html", {**context, "can_moderate": False})}
        out.append((BOARD_GROUP, message(panel, observed)))
    return out


async def send_async(messages: list[tuple[str, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        for group, payload in messages:
            await layer.group_send(group, payload)
    except Exception:  # noqa: BLE001 - the state is committed; pages resync on their next update or reconnect
        logger.exception("live update could not be sent")


# The server's event loop, once the worker's background tasks run on it (`serve_on`). A thread of our own (the
# outbox's senders) is no thread of asgiref's: `async_to_sync` would give it an event loop of its own for each
# call, and close it as soon as `group_send` returned — cancelling the in-memory layer's deliveries to the sockets
# of this process, which it had just started there. So those threads send on the server's loop instead.
_server_loop: asyncio.AbstractEventLoop | None = None
SEND_WITHIN = 10.0  # seconds: a send queues the messages, it never waits for a socket


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def serve_on(loop: asyncio.AbstractEventLoop | None) -> None:
    global _server_loop
    _server_loop = loop


def send(messages: list[tuple[str, dict[str, Any]]]) -> None:
    """From sync code (a request's thread, the outbox's senders): send on the server's event loop."""
    if not messages:
        return
    loop = _server_loop
    if loop is None or not loop.is_running() or _running_loop() is loop:
        # No server (tests), or called on the loop itself: asgiref's way (which refuses the latter, clearly).
        async_to_sync(send_async)(messages)
        return
    try:
        asyncio.run_coroutine_threadsafe(send_async(messages), loop).result(SEND_WITHIN)
    except TimeoutError:
        logger.error("live update not sent within %s s: pages catch up on their next update", SEND_WITHIN)


def publish_on_commit(changes: Changes) -> None:
    """Call inside the transaction that made `changes`: versions now, the messages after the commit."""
    if not changes:
        return
    bump_versions(changes)
    transaction.on_commit(lambda: send(build_messages(changes)))
