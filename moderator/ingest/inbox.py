"""Store each verified event and apply it, in one transaction, then broadcast after commit.

Concurrent webhook requests in one process are grouped into a single transaction (group commit):
one SQLite/PostgreSQL commit per batch instead of one per request is what makes ingest fast. The
guarantees stay per event: an event is answered 2xx only after the transaction that stored it has
committed; a duplicate (same ``data.id``, from any worker) changes nothing; an event that fails to
apply is kept with its error, in its own savepoint, without touching the others.

Per batch: one INSERT stores every event (duplicates skipped by the unique event id), then the new
events are applied without a savepoint each; only if one of them raises is the batch rolled back and
applied again with a savepoint per event (see `_store_batch`).
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from django.utils import timezone

from moderator.control import actions, routing
from moderator.live import broadcast
from moderator.models import Conference, Participant, WebhookEvent
from moderator.state.rules import Changes, apply_event, event_time, is_known

if TYPE_CHECKING:
    from moderator.telnyx.event import TelnyxEvent

logger = logging.getLogger(__name__)

APPLIED, DUPLICATE, STORED, FAILED = "applied", "duplicate", "stored", "failed"
MAX_BATCH = 64
TRANSIENT_RETRIES = 3


class StoreUnavailable(Exception):
    """The database could not store the event; the sender must retry."""


_COLUMNS = (
    "event_id", "event_type", "occurred_at", "received_at", "conference_telnyx_id", "call_control_id",
    "attempt", "raw", "status", "error",
)


def _insert_rows(events: list[TelnyxEvent]) -> dict[int, WebhookEvent]:
    """Store the batch's events with one INSERT; return the rows it created, by index in `events`.

    ``ON CONFLICT DO NOTHING RETURNING`` (SQLite ≥ 3.35, PostgreSQL) returns exactly the rows this
    statement inserted: an id already stored, by an earlier delivery, by another worker (PostgreSQL
    waits for its transaction) or earlier in the same batch, is a duplicate and is not returned.
    """
    fields = [WebhookEvent._meta.get_field(name) for name in _COLUMNS]
    now = timezone.now()
    rows: list[WebhookEvent] = []
    params: list = []
    for event in events:
        row = WebhookEvent(
            event_id=event.id,
            event_type=event.event_type,
            occurred_at=event.occurred_at,
            received_at=now,
            conference_telnyx_id=event.conference_id[:128],
            call_control_id=event.call_control_id[:255],
            attempt=event.attempt,
            raw=event.raw,
            status=WebhookEvent.Status.APPLIED if is_known(event.event_type) else WebhookEvent.Status.IGNORED,
        )
        rows.append(row)
        params.extend(field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields)
    quote = connection.ops.quote_name
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (
        f"INSERT INTO {quote(WebhookEvent._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES {', '.join([one] * len(events))} ON CONFLICT ({quote('event_id')}) DO NOTHING "
        f"RETURNING {quote('id')}, {quote('event_id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        created = dict((event_id, pk) for pk, event_id in cursor.fetchall())
    out: dict[int, WebhookEvent] = {}
    for index, row in enumerate(rows):
        pk = created.pop(row.event_id, None)  # pop: the same id twice in a batch is stored once
        if pk is not None:
            row.pk = row.id = pk
            row._state.adding = False
            out[index] = row
    return out


def _apply(event: TelnyxEvent, applied: Changes) -> None:
    apply_event(event, applied)
    routing.plan(event, applied)  # decided with the event; taken after commit


def _apply_stored(row: WebhookEvent, event: TelnyxEvent, changes: Changes) -> str:
    applied = Changes()
    try:
        with transaction.atomic():
            _apply(event, applied)
    except (OperationalError, InterfaceError):
        raise  # the database, not the event: let the batch retry or fail as a whole
    except Exception as exc:  # noqa: BLE001 - any bug in applying one event must not lose it
        logger.exception("webhook %s (%s) failed to apply", event.id, event.event_type)
        row.status = WebhookEvent.Status.FAILED
        row.error = "".join(traceback.format_exception_only(exc)).strip()[:4000]
        row.save(update_fields=["status", "error"])
        return FAILED
    if row.status != WebhookEvent.Status.APPLIED or row.error:
        row.status, row.error = WebhookEvent.Status.APPLIED, ""
        row.save(update_fields=["status", "error"])
    _note_applied(event, applied, changes)
    return APPLIED


def _note_applied(event: TelnyxEvent, applied: Changes, changes: Changes) -> None:
    """Merge what an applied event changed, with its entry for the live timeline."""
    if event.conference_id:
        applied.timeline.append(
            (
                event.conference_id,
                {
                    "at": event_time(event),
                    "event_type": event.event_type,
                    "call_control_id": event.call_control_id,
                    "detail": str(
                        event.payload.get("reason")
                        or event.payload.get("media_url")
                        or event.payload.get("media_name")
                        or ""
                    ),
                },
            )
        )
    changes.merge(applied)


class _ApplyFailed(Exception):
    """An event failed to apply in a batch applied without savepoints: apply the batch again, isolated."""


def _lock_conferences(events: list[TelnyxEvent]) -> None:
    """Lock every existing conference the batch will change, in one order, before applying any event.

    Without this, two workers deadlock (PostgreSQL stalls both for a second, then fails one): a
    call.hangup locks the conferences its leg is in while its worker still holds other rows, in an
    order sorting by conference id cannot see. SQLite serialises whole transactions instead.
    """
    if not connection.features.has_select_for_update:
        return
    telnyx_ids = {event.conference_id for event in events if event.conference_id}
    hangups = [event.call_control_id for event in events if event.event_type == "call.hangup"]
    if hangups:
        telnyx_ids.update(
            Participant.objects.filter(call_control_id__in=hangups).values_list("conference__telnyx_id", flat=True)
        )
    if telnyx_ids:
        locked = Conference.objects.select_for_update().filter(telnyx_id__in=telnyx_ids).order_by("telnyx_id")
        list(locked.values_list("pk", flat=True))


def _store_batch(events: list[TelnyxEvent], order: list[int], isolated: bool) -> list[str]:
    """One transaction: insert the batch, apply each new event, broadcast on commit.

    Not `isolated`, events are applied without a savepoint each (two queries fewer per event); if one
    raises, the whole transaction rolls back and the batch is applied again `isolated`: each event in
    its own savepoint, a failing one kept with its error without touching the others.
    """
    changes = Changes()
    outcomes: list[str] = [DUPLICATE] * len(events)
    with transaction.atomic():
        rows = _insert_rows(events)
        _lock_conferences([events[index] for index in rows])
        for index in order:
            row = rows.get(index)
            if row is None:
                continue
            if row.status == WebhookEvent.Status.IGNORED:
                outcomes[index] = STORED
            elif isolated:
                outcomes[index] = _apply_stored(row, events[index], changes)
            else:
                applied = Changes()
                try:
                    _apply(events[index], applied)
                except (OperationalError, InterfaceError):
                    raise
                except Exception as exc:  # noqa: BLE001 - rolled back and applied again, isolated
                    raise _ApplyFailed from exc
                _note_applied(events[index], applied, changes)
                outcomes[index] = APPLIED
        broadcast.publish_on_commit(changes)
        if changes.unnamed and settings.TELNYX_API_KEY:
            transaction.on_commit(lambda names=changes.unnamed: actions.fetch_names_later(names))
        if changes.routing:
            transaction.on_commit(lambda steps=changes.routing: routing.run_later(steps))
    return outcomes


def store_events(events: list[TelnyxEvent]) -> list[str]:
    """Store and apply a batch in one transaction; return each event's outcome, in order."""
    # Apply in lock order (conference, then leg): workers take row locks in the same order, which
    # avoids deadlocks. The rules in `events` are order-independent, so this changes no outcome.
    order = sorted(range(len(events)), key=lambda i: (events[i].conference_id, events[i].call_control_id))
    for attempt in range(TRANSIENT_RETRIES):
        close_old_connections()  # a connection broken by a database restart is replaced, not reused
        try:
            try:
                return _store_batch(events, order, isolated=False)
            except _ApplyFailed:
                return _store_batch(events, order, isolated=True)
        except (OperationalError, InterfaceError) as exc:
            # Deadlock, serialization failure or "database is locked": retry the whole batch.
            last_error = exc
            logger.warning("storing %d events failed (attempt %d): %s", len(events), attempt + 1, exc)
        except DatabaseError as exc:
            raise StoreUnavailable(str(exc)) from exc
    raise StoreUnavailable(str(last_error))


def replay(event_row: WebhookEvent) -> str:
    """Apply a stored event again (``replay_events``). Idempotent: the rules ignore older state."""
    from moderator.telnyx.event import parse_event

    event = parse_event(event_row.raw.encode())
    changes = Changes()
    with transaction.atomic():
        if not is_known(event.event_type):
            return STORED
        outcome = _apply_stored(event_row, event, changes)
        broadcast.publish_on_commit(changes)
        if changes.routing:
            transaction.on_commit(lambda: routing.run_later(changes.routing))
    return outcome


class EventBatcher:
    """Group commit for the webhook endpoint, one per event loop.

    The first request to find no flush running becomes the leader: it stores whatever requests
    have queued meanwhile in one transaction, until its own event is stored. Nothing here outlives
    the requests in flight, so no other worker needs it.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[TelnyxEvent, asyncio.Future]] = []
        self._flushing = False
        self._store = sync_to_async(store_events, thread_sensitive=True)

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
            outcomes = await self._store([event for event, _ in batch])
        except StoreUnavailable as exc:
            for _, waiter in batch:
                waiter.done() or waiter.set_exception(exc)
        except Exception as exc:  # noqa: BLE001 - the database driver itself failed (e.g. cannot connect)
            unavailable = StoreUnavailable(f"{type(exc).__name__}: {exc}")
            for _, waiter in batch:
                waiter.done() or waiter.set_exception(unavailable)
        else:
            for (_, waiter), outcome in zip(batch, outcomes, strict=True):
                waiter.done() or waiter.set_result(outcome)


__all__ = ["EventBatcher", "StoreUnavailable", "store_events", "replay", "event_time"]
