"""The inbox: every verified webhook is stored, and acknowledged once that commit is durable. Nothing else.

Concurrent webhook requests in one process are grouped into one INSERT and one commit (group commit):
one commit per batch instead of one per request is what makes acknowledging fast. The guarantees stay
per event: an event is answered 2xx only after the transaction that stored it has committed (with
SQLite's ``synchronous=FULL`` on this connection: durable through a power cut, not only a crash), a
duplicate (same ``data.id``, from any worker) is acknowledged and stored once, and the applier
(`moderator.ingest.applier`) applies what was stored, off the request path.

Telnyx gives up on an answer after about 2 s and delivers again: when the database is locked or does not
take writes, the inbox answers 503 within `ANSWER_WITHIN` rather than after minutes of retries.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from django.db import DatabaseError, DataError, close_old_connections, transaction
from django.utils import timezone

from moderator import crashpoints
from moderator.database import bound_this_threads_waits, polling_for_the_write_lock, write_turns
from moderator.models import WebhookEvent
from moderator.state.rules import is_known
from moderator.state.tables import as_is, fetch, table
from moderator.telnyx.event import TelnyxEvent, is_text

logger = logging.getLogger(__name__)

STORED, DUPLICATE, REFUSED = "stored", "duplicate", "refused"
MAX_BATCH = 256
ANSWER_WITHIN = 1.5  # seconds: the store's own waits (locks) are bounded by this, the answer shortly after

_COLUMNS = (
    "event_id", "event_type", "occurred_at", "received_at", "conference_telnyx_id", "call_control_id",
    "attempt", "raw", "status", "error", "applied_by",
)  # fmt: skip


class StoreUnavailable(Exception):
    """The database could not store the event; the sender must retry."""


def _column(value: str, length: int) -> str:
    """A payload id for an index column; kept out when it cannot be stored (the raw body has it, and the
    applier fails that event on its own)."""
    return value[:length] if is_text(value) else ""


def _row(event: TelnyxEvent, now) -> list:
    """The event's values, in `_COLUMNS` order, as its model's fields would hand them to the driver."""
    status = WebhookEvent.Status.PENDING if is_known(event.event_type) else WebhookEvent.Status.IGNORED
    values = [event.id, event.event_type, event.occurred_at, now, _column(event.conference_id, 128),
              _column(event.call_control_id, 255), event.attempt, event.raw, status, "", ""]
    for i, write in _conversions():
        values[i] = write(values[i])
    return values


@cache
def _conversions() -> list[tuple[int, Callable[[Any], Any]]]:
    """The columns (by position) whose values the driver does not take as they are: the times, on SQLite."""
    webhook_events = table(WebhookEvent)
    return [(i, write) for i, name in enumerate(_COLUMNS) if (write := webhook_events.writer(name)) is not as_is]


@cache
def _insert_sql(rows: int) -> str:
    """The INSERT of `rows` events (built once per batch size: a batch is stored every few milliseconds)."""
    webhook_events = table(WebhookEvent)
    one = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    return (
        f"INSERT INTO {webhook_events.quoted} ({', '.join(webhook_events.column(name) for name in _COLUMNS)}) "
        f"VALUES {', '.join([one] * rows)} ON CONFLICT ({webhook_events.column('event_id')}) DO NOTHING "
        f"RETURNING {webhook_events.column('event_id')}"
    )


def _insert(rows: list[list]) -> set[str]:
    """One INSERT for the batch; the event ids it stored (not those stored before, or twice in the batch).

    ``ON CONFLICT DO NOTHING RETURNING`` (SQLite ≥ 3.35, PostgreSQL) returns exactly the rows this statement
    inserted: an id already stored, by an earlier delivery, by another worker (PostgreSQL waits for its
    transaction) or earlier in the same batch, is a duplicate and is not returned.
    """
    return {event_id for (event_id,) in fetch(_insert_sql(len(rows)), [value for row in rows for value in row])}


def _outcomes(rows: list[list], created: set[str]) -> list[str]:
    outcomes = []
    for row in rows:
        event_id = row[0]
        if event_id in created:
            created.discard(event_id)  # the same id twice in a batch is stored once
            outcomes.append(STORED)
        else:
            outcomes.append(DUPLICATE)
    return outcomes


def store_events(events: list[TelnyxEvent]) -> list[str]:
    """Store a batch in one transaction; return each event's outcome, in order. Sync: call from a thread."""
    if not events:
        return []
    now = timezone.now()
    rows = [_row(event, now) for event in events]
    try:
        with write_turns.turn():
            return polling_for_the_write_lock(lambda: _store(rows), ANSWER_WITHIN)
    except DatabaseError as exc:
        raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc


def _store(rows: list[list]) -> list[str]:
    try:
        with transaction.atomic():
            return _outcomes(rows, _insert(rows))
    except DataError:
        pass  # a value the database cannot hold: one such event must not refuse its neighbours
    outcomes = []
    for row in rows:
        try:
            with transaction.atomic():
                outcomes.extend(_outcomes([row], _insert([row])))
        except DataError as exc:
            logger.warning("webhook %r cannot be stored: %s", row[0], exc)
            outcomes.append(REFUSED)
    return outcomes


class StoredEvents:
    """The events this process stored and no applier has taken yet, as the endpoint parsed them: the applier
    takes them from here rather than reading their bodies back and parsing them again (a tenth of applying).
    Only a shortcut: the stored rows stay the truth, and an event that is not here (stored by another worker,
    replayed, or pushed out, oldest first, by a backlog of more than `kept` events or `kept_bytes` of bodies)
    is read from its row."""

    def __init__(self, kept: int = 4096, kept_bytes: int = 8 * 1024 * 1024) -> None:
        self.kept, self.kept_bytes = kept, kept_bytes  # Telnyx's events are 1–2 kB; the endpoint takes up to 1 MB
        self._events: OrderedDict[str, TelnyxEvent] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # kept on the event loop, taken on the applier's thread

    def keep(self, events: Iterable[TelnyxEvent]) -> None:
        with self._lock:
            for event in events:
                if event.id not in self._events:
                    self._events[event.id] = event
                    self._bytes += len(event.raw)
            while self._events and (len(self._events) > self.kept or self._bytes > self.kept_bytes):
                _, oldest = self._events.popitem(last=False)
                self._bytes -= len(oldest.raw)

    def take(self, event_ids: Iterable[str]) -> dict[str, TelnyxEvent]:
        with self._lock:
            taken = {event_id: event for event_id in event_ids if (event := self._events.pop(event_id, None))}
            self._bytes -= sum(len(event.raw) for event in taken.values())
            return taken

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
            self._bytes = 0


stored_events = StoredEvents()


class Inbox:
    """Group commit for the webhook endpoint, one per event loop.

    The first request to find no flush running becomes the leader: it stores whatever requests have
    queued meanwhile in one transaction, until its own event is stored. Nothing here outlives the
    requests in flight, so no other worker needs it.
    """

    def __init__(self, on_stored: Callable[[], None] = lambda: None) -> None:
        self._pending: list[tuple[TelnyxEvent, asyncio.Future]] = []
        self._flushing = False
        self._on_stored = on_stored
        # Its own thread and database connection: the ack never waits behind a page's snapshot or a
        # render (Channels runs those on the shared sync thread), and its lock waits are its own.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbox")
        self.run_store: Callable[[list[TelnyxEvent]], Awaitable[list[str]]] = self._in_own_thread

    async def _in_own_thread(self, events: list[TelnyxEvent]) -> list[str]:
        return await asyncio.get_running_loop().run_in_executor(self._thread, _store_in_thread, events)

    async def submit(self, event: TelnyxEvent) -> str:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((event, future))
        if not self._flushing:
            self._flushing = True
            try:
                while self._pending and not future.done():
                    await self._flush_one_batch()
            finally:
                self._flushing = False
            if self._pending:
                # Requests that queued behind our batch get a leader of their own.
                asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        if self._flushing:
            return
        self._flushing = True
        try:
            while self._pending:
                await self._flush_one_batch()
        finally:
            self._flushing = False

    async def _flush_one_batch(self) -> None:
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        try:
            outcomes = await asyncio.wait_for(self.run_store([event for event, _ in batch]), ANSWER_WITHIN + 0.3)
        except (StoreUnavailable, TimeoutError) as exc:
            unavailable = exc if isinstance(exc, StoreUnavailable) else StoreUnavailable("the database is too slow")
            for _, waiter in batch:
                waiter.done() or waiter.set_exception(unavailable)
            return
        except Exception as exc:  # noqa: BLE001 - the database driver itself failed (e.g. cannot connect)
            unavailable = StoreUnavailable(f"{type(exc).__name__}: {exc}")
            for _, waiter in batch:
                waiter.done() or waiter.set_exception(unavailable)
            return
        crashpoints.reached("inbox-committed")
        if STORED in outcomes:
            stored_events.keep(event for (event, _), outcome in zip(batch, outcomes, strict=True) if outcome == STORED)
            self._on_stored()
        for (_, waiter), outcome in zip(batch, outcomes, strict=True):
            waiter.done() or waiter.set_result(outcome)


def _store_in_thread(events: list[TelnyxEvent]) -> list[str]:
    close_old_connections()  # a connection broken by a database restart is replaced, not reused
    bound_this_threads_waits(ANSWER_WITHIN, durable=True)
    return store_events(events)
