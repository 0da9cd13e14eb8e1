"""Store each verified event and apply it, in one transaction, then broadcast after commit.

Concurrent webhook requests in one process are grouped into a single transaction (group commit):
one SQLite/PostgreSQL commit per batch instead of one per request is what makes ingest fast. The
guarantees stay per event: an event is answered 2xx only after the transaction that stored it has
committed; a duplicate (same ``data.id``, from any worker) changes nothing; an event that fails to
apply is kept with its error, in its own savepoint, without touching the others.
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
    IntegrityError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    transaction,
)

from moderator import actions, broadcast, routing
from moderator.events import Changes, apply_event, event_time, is_known
from moderator.models import WebhookEvent

if TYPE_CHECKING:
    from moderator.webhooks import TelnyxEvent

logger = logging.getLogger(__name__)

APPLIED, DUPLICATE, STORED, FAILED = "applied", "duplicate", "stored", "failed"
MAX_BATCH = 64
TRANSIENT_RETRIES = 3


class StoreUnavailable(Exception):
    """The database could not store the event; the sender must retry."""


def _store_one(event: TelnyxEvent, changes: Changes) -> str:
    try:
        with transaction.atomic():
            row = WebhookEvent.objects.create(
                event_id=event.id,
                event_type=event.event_type,
                occurred_at=event.occurred_at,
                conference_telnyx_id=event.conference_id[:128],
                call_control_id=event.call_control_id[:255],
                attempt=event.attempt,
                raw=event.raw,
                status=WebhookEvent.Status.APPLIED
                if is_known(event.event_type)
                else WebhookEvent.Status.IGNORED,
            )
    except IntegrityError:
        return DUPLICATE
    if row.status == WebhookEvent.Status.IGNORED:
        return STORED
    return _apply_stored(row, event, changes)


def _apply_stored(row: WebhookEvent, event: TelnyxEvent, changes: Changes) -> str:
    applied = Changes()
    try:
        with transaction.atomic():
            apply_event(event, applied)
            routing.plan(event, applied)  # decided with the event; taken after commit
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
    return APPLIED


def store_events(events: list[TelnyxEvent]) -> list[str]:
    """Store and apply a batch in one transaction; return each event's outcome, in order."""
    # Apply in lock order (conference, then leg): workers take row locks in the same order, which
    # avoids deadlocks. The rules in `events` are order-independent, so this changes no outcome.
    order = sorted(range(len(events)), key=lambda i: (events[i].conference_id, events[i].call_control_id))
    for attempt in range(TRANSIENT_RETRIES):
        close_old_connections()  # a connection broken by a database restart is replaced, not reused
        changes = Changes()
        outcomes: list[str] = [""] * len(events)
        try:
            with transaction.atomic():
                for index in order:
                    outcomes[index] = _store_one(events[index], changes)
                broadcast.publish_on_commit(changes)
                if changes.unnamed and settings.TELNYX_API_KEY:
                    transaction.on_commit(lambda names=changes.unnamed: actions.fetch_names_later(names))
                if changes.routing:
                    transaction.on_commit(lambda steps=changes.routing: routing.run_later(steps))
            return outcomes
        except (OperationalError, InterfaceError) as exc:
            # Deadlock, serialization failure or "database is locked": retry the whole batch.
            last_error = exc
            logger.warning("storing %d events failed (attempt %d): %s", len(events), attempt + 1, exc)
        except DatabaseError as exc:
            raise StoreUnavailable(str(exc)) from exc
    raise StoreUnavailable(str(last_error))


def replay(event_row: WebhookEvent) -> str:
    """Apply a stored event again (``replay_events``). Idempotent: the rules ignore older state."""
    from moderator.webhooks import parse_event

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
