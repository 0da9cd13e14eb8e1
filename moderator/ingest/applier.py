"""The applier: stored events are applied in batches, off the request path, then broadcast.

The inbox stores each webhook and answers; from there the applier takes the oldest pending events (up to
`BATCH_SIZE`; those this worker stored as its endpoint parsed them, `StoredEvents`), loads every row they
touch at once (`WorkingSet`), runs the rules in memory, writes back in bulk, plans the Telnyx commands
routing decides (outbox rows), marks the events applied — all in one transaction — and after the commit
sends one update per touched conference to the live pages.

Several workers share the work on PostgreSQL: each claims pending events with ``FOR UPDATE SKIP LOCKED``
and the working set locks the batch's calls and conferences in one order, so one conference's events are
never applied in two places at once. A restart resumes from the pending rows: an event's status changes
to applied in the transaction that applies it, so it is applied exactly once whatever crashes when.

One event never fails its batch: one that cannot be parsed or lacks what its rule needs is marked failed
before the others are applied; one whose rule raises is marked failed and the rest are applied again
without it; if writing the batch fails, the batch is split in halves until the culprit is alone. Failed
events keep their error and can be replayed (`manage.py replay_events --failed`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.db import InterfaceError, OperationalError, close_old_connections, transaction
from django.utils import timezone

from moderator import crashpoints
from moderator.control import captions, outbox, routing
from moderator.database import write_turns
from moderator.ingest.inbox import stored_events
from moderator.live import broadcast
from moderator.models import WebhookEvent
from moderator.state import rules
from moderator.state.changes import Changes
from moderator.state.working_set import WorkingSet
from moderator.telnyx.event import TelnyxEvent, WebhookRejected, parse_event

logger = logging.getLogger(__name__)

BATCH_SIZE = 40  # events per transaction while few arrive: a few ms of SQLite's write lock, which the inbox waits for
# In a burst, batches follow the flow (twice what the last one took) up to this: fewer transactions, their
# fixed costs (loading, rendering the conferences' summaries) shared by more events. Measured on 2 cores: from
# 1.3k to 1.8-2.0k events/s applied, and the acknowledgements at 500/s no slower.
BACKLOG_BATCH_SIZE = 320
CYCLE_SECONDS = 0.3  # with a backlog, the longest the live pages wait for what was applied meanwhile
POLL_SECONDS = 1.0  # also look without being woken: events another worker stored, or left by a crash
BUSY = 10  # events in a batch that mean a burst is on
GATHER_SECONDS = 0.05  # during a burst, the wait between batches (part of the acknowledged → applied lag)
WORKER = f"{socket.gethostname()}:{os.getpid()}"[:64]


@dataclass
class Applied:
    """What one batch did."""

    taken: int = 0  # pending events taken (applied or failed)
    applied: int = 0
    failed: int = 0
    commands: int = 0  # outbox rows planned
    changes: Changes = field(default_factory=Changes)

    def merge(self, other: Applied) -> Applied:
        self.applied += other.applied
        self.failed += other.failed
        self.commands += other.commands
        self.changes.merge(other.changes)
        return self


class _RuleFailed(Exception):
    def __init__(self, event_id: int, error: BaseException):
        super().__init__(str(error))
        self.event_id, self.error = event_id, error


def _error_text(error: BaseException) -> str:
    return "".join(traceback.format_exception_only(error)).strip()[:4000]


# A claimed event: its row id, and the event or why it cannot be parsed.
Claimed = tuple[int, TelnyxEvent | str]


def _claim(limit: int) -> list[Claimed]:
    """Up to `limit` pending events, oldest first: as the inbox parsed them when this process stored them,
    otherwise parsed from their rows."""
    pending = WebhookEvent.objects.filter(status=WebhookEvent.Status.PENDING).order_by("id")
    rows = list(pending.select_for_update(skip_locked=True).values_list("id", "event_id")[:limit])
    parsed = stored_events.take(event_id for _, event_id in rows)
    unparsed = [row_id for row_id, event_id in rows if event_id not in parsed]
    bodies = dict(WebhookEvent.objects.filter(id__in=unparsed).values_list("id", "raw")) if unparsed else {}
    claimed: list[Claimed] = []
    for row_id, event_id in rows:
        event = parsed.get(event_id)
        if event is None:
            try:
                event = parse_event(bodies[row_id].encode())
            except WebhookRejected as rejected:
                claimed.append((row_id, rejected.reason))
                continue
        claimed.append((row_id, event))
    return claimed


def _mark_failed(failures: dict[int, str]) -> None:
    for event_id, error in failures.items():
        WebhookEvent.objects.filter(id=event_id).update(status=WebhookEvent.Status.FAILED, error=error)


def _apply(rows: list[Claimed]) -> Applied:
    """Apply these claimed events in the current transaction; raise _RuleFailed if a rule raised."""
    events: list[tuple[int, TelnyxEvent]] = []
    failures: dict[int, str] = {}
    for event_id, event in rows:
        if isinstance(event, str):
            failures[event_id] = event
            continue
        try:
            rules.check(event)
        except rules.EventNotApplicable as exc:
            failures[event_id] = str(exc)
            continue
        events.append((event_id, event))
    batch = [event for _, event in events]
    ws = WorkingSet.load(
        batch, ends_conference=rules.ENDS_CONFERENCE, ends_call=rules.ENDS_CALL, moves_talk_time=rules.MOVES_TALK_TIME,
        reaches_call_legs=rules.REACHES_CALL_LEGS, places_captions=rules.PLACES_CAPTIONS,
    )
    for event_id, event in events:
        try:
            rules.apply(ws, event)
        except Exception as exc:  # noqa: BLE001 - a bug in one rule must not cost the others their effect
            raise _RuleFailed(event_id, exc) from exc
    rules.settle_talk_time(ws)
    rules.settle_hands(ws)
    rules.settle_captions(ws)
    changes = ws.save()
    planned = routing.plan(ws, batch)
    changes.queues = changes.queues or planned.decided
    commands = planned.commands + outbox.plan_look_ups(ws.unnamed) + captions.plan_joined(ws, batch)
    applied_ids = [event_id for event_id, _ in events]
    WebhookEvent.objects.filter(id__in=applied_ids).update(
        status=WebhookEvent.Status.APPLIED, error="", applied_at=timezone.now(), applied_by=WORKER
    )
    _mark_failed(failures)
    return Applied(len(rows), len(applied_ids), len(failures), commands, changes)


def _apply_isolating(rows: list[Claimed]) -> Applied:
    """`_apply` in a savepoint; a failing event is marked failed on its own and the rest applied again."""
    try:
        with transaction.atomic():
            return _apply(rows)
    except (OperationalError, InterfaceError):
        raise  # the database, not an event: the whole batch is retried later
    except _RuleFailed as failed:
        logger.error("webhook row %s failed to apply: %s", failed.event_id, failed.error, exc_info=failed.error)
        _mark_failed({failed.event_id: _error_text(failed.error)})
        rest = [row for row in rows if row[0] != failed.event_id]
        return Applied(taken=len(rows), failed=1).merge(_apply_isolating(rest)) if rest else Applied(len(rows), failed=1)
    except Exception as exc:  # noqa: BLE001 - writing failed: find the event that made it fail
        if len(rows) == 1:
            logger.error("webhook row %s failed to apply: %s", rows[0][0], exc, exc_info=exc)
            _mark_failed({rows[0][0]: _error_text(exc)})
            return Applied(1, failed=1)
        half = len(rows) // 2
        outcome = _apply_isolating(rows[:half]).merge(_apply_isolating(rows[half:]))
        outcome.taken = len(rows)
        return outcome


def apply_next_batch(limit: int = BATCH_SIZE) -> Applied:
    """Claim and apply up to `limit` pending events in one transaction. Sync: call it from a thread."""
    with write_turns.turn(), transaction.atomic():
        rows = _claim(limit)
        return _apply_isolating(rows) if rows else Applied()


def publish(changes: Changes) -> list[tuple[str, dict[str, Any]]]:
    """The live updates for committed `changes`, rendered outside any write transaction (the inbox never waits
    behind a render): one message per conference for all the batches they came from, carrying the range of
    versions they took. A page gets what is committed at that version or newer, never older."""
    return broadcast.build_messages(changes) if changes else []


def apply_pending(limit: int = BATCH_SIZE) -> Applied:
    """Apply every pending event now, batch after batch, and broadcast (tests, `replay_events`, the admin's
    replay). The commands it plans are sent by the workers' outbox senders, which poll for them."""
    total = Applied()
    while True:
        batch = apply_next_batch(limit)
        total.taken += batch.taken
        total.merge(batch)
        broadcast.send(publish(batch.changes))
        if batch.taken < limit:
            return total


def replay(event_ids: list[int]) -> dict[int, str]:
    """Apply stored events again (`manage.py replay_events`, the admin): idempotent, the rules ignore older
    state. Returns each event's status afterwards."""
    stored = WebhookEvent.objects.filter(id__in=event_ids).exclude(status=WebhookEvent.Status.IGNORED)
    stored.update(status=WebhookEvent.Status.PENDING, error="")
    apply_pending()
    return dict(WebhookEvent.objects.filter(id__in=event_ids).values_list("id", "status"))


def next_batch_size(last: Applied) -> int:
    """Twice what the last batch took, between BATCH_SIZE and BACKLOG_BATCH_SIZE: batches follow the flow."""
    return min(BACKLOG_BATCH_SIZE, max(BATCH_SIZE, 2 * last.taken))


def _apply_in_thread(limit: int) -> Applied:
    close_old_connections()  # a connection broken by a database restart is replaced, not reused
    applied = apply_next_batch(limit)
    crashpoints.reached("applier-committed")
    return applied


class Applier:
    """The applier task of one worker process: woken by the inbox's commits, and every POLL_SECONDS.

    A transaction applies BATCH_SIZE events at most while few arrive, so the inbox (which waits for the same
    SQLite write lock) is never held up for long. In a burst each takes up to twice what the last one took (up
    to BACKLOG_BATCH_SIZE: fewer transactions, their fixed costs shared); after one that left more pending the
    next follows at once, and the live pages get one message per conference for all of them, at most every
    CYCLE_SECONDS.
    """

    def __init__(self, after_commands: Callable[[], None]) -> None:
        self._wake = asyncio.Event()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="applier")
        self._after_commands = after_commands

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        unpublished = Changes()
        cycle_started = loop.time()
        failures = 0
        batch_size = BATCH_SIZE
        while True:
            try:
                applied = await loop.run_in_executor(self._thread, _apply_in_thread, batch_size)
            except Exception:  # noqa: BLE001 - the database is down or locked: wait, then resume from the rows
                failures += 1
                logger.exception("applying webhook events failed (%d in a row)", failures)
                await asyncio.sleep(min(5.0, 0.2 * failures))
                continue
            failures = 0
            unpublished.merge(applied.changes)
            if applied.commands:
                self._after_commands()
            more = applied.taken >= batch_size
            batch_size = next_batch_size(applied)
            if more and loop.time() - cycle_started < CYCLE_SECONDS:
                continue  # a backlog: apply more before rendering what changed
            if unpublished:
                await self._publish(unpublished)
                unpublished = Changes()
            if not more:
                if applied.taken >= BUSY:
                    # Under load, let the next batch gather: a batch costs about the same to load and render
                    # whatever its size, and the requests get the CPU meanwhile. A lone event goes at once.
                    await asyncio.sleep(GATHER_SECONDS)
                else:
                    await self._until_woken()
            cycle_started = loop.time()

    async def _until_woken(self) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
        except TimeoutError:
            pass
        self._wake.clear()

    async def _publish(self, changes: Changes) -> None:
        try:
            messages = await asyncio.get_running_loop().run_in_executor(self._thread, publish, changes)
        except Exception:  # noqa: BLE001 - committed already: pages catch up on their next update or reconnect
            logger.exception("live updates for an applied batch could not be built")
            return
        await broadcast.send_async(messages)
