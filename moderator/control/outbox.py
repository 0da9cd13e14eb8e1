"""The outbox: Telnyx commands the product decided on its own, sent after the decision committed.

Dial-in routing (answer, hang up, waiting room, place in the conference, end), recording on start and name
look-ups are written as `OutboxCommand` rows in the transaction that decided them. A sender task per
worker claims unsent rows, takes each step (`routing.execute`, through the same send-and-audit code as a
moderator's click) and records the outcome on the row. A claim is a lease: a row a dead worker claimed is
taken again when its lease runs out, with the same command_id, so Telnyx does not act on it twice. A
refusal is recorded (on the row, and on the call for the board) and never retried.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from moderator import crashpoints
from moderator.control import routing
from moderator.control.steps import Outcome
from moderator.models import OutboxCommand

logger = logging.getLogger(__name__)

Status = OutboxCommand.Status
CONCURRENCY = 8  # steps in flight per worker: each waits on Telnyx, not on this process
MAX_ATTEMPTS = 3  # claimed this often without an outcome: the step itself kills its worker
POLL_SECONDS = 1.0  # rows another process wrote (a replay, a worker that died) are found without a wake-up


def plan_look_ups(conference_ids: set[str]) -> int:
    """Conferences first seen through webhooks carry no name: read them from Telnyx (in the caller's
    transaction, like every decision). Returns the rows written."""
    if not conference_ids or not routing.enabled():
        return 0
    rows = [OutboxCommand.step(OutboxCommand.Kind.LOOK_UP, conference_id=c) for c in sorted(conference_ids)]
    OutboxCommand.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def claim(limit: int) -> list[OutboxCommand]:
    """Lease up to `limit` unsent rows (oldest first) to this worker."""
    now = timezone.now()
    due = OutboxCommand.objects.filter(Q(status=Status.PENDING) | Q(status=Status.SENDING, lease_until__lt=now))
    if not due.exists():
        return []  # a read: the poll takes no write lock (SQLite has one, which the inbox waits for)
    with transaction.atomic():
        rows = list(due.order_by("id").select_for_update(skip_locked=True, of=("self",)).select_related("room")[:limit])
        if not rows:
            return []
        worn = [row.id for row in rows if row.attempts >= MAX_ATTEMPTS]
        if worn:
            OutboxCommand.objects.filter(id__in=worn).update(
                status=Status.FAILED, lease_until=None, error=f"claimed {MAX_ATTEMPTS} times without an outcome"
            )
        rows = [row for row in rows if row.id not in worn]
        OutboxCommand.objects.filter(id__in=[row.id for row in rows]).update(
            status=Status.SENDING,
            lease_until=now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS),
            attempts=F("attempts") + 1,
        )
    crashpoints.reached("outbox-claimed")
    return rows


def send(command: OutboxCommand) -> Outcome:
    """Take one claimed step and record how it went. Sync: the SDK and the database."""
    close_old_connections()
    try:
        outcome = routing.execute(command)
    except Exception as exc:  # noqa: BLE001 - a bug in one step must not stop the others, nor be retried
        logger.exception("outbox command %s (%s) failed", command.command_id, command.kind)
        outcome = Outcome(Status.FAILED, f"{type(exc).__name__}: {exc}"[:4000])
        if command.call_control_id:
            routing.record(command.call_control_id, error=f"Routing failed: {type(exc).__name__}: {exc}")
    OutboxCommand.objects.filter(id=command.id).update(
        status=outcome.status, error=outcome.error[:4000], sent_at=timezone.now(), lease_until=None
    )
    return outcome


def send_pending() -> int:
    """Send every unsent row now, one by one (tests and management commands); returns how many."""
    sent = 0
    while rows := claim(CONCURRENCY):
        for row in rows:
            send(row)
            sent += 1
    return sent


class OutboxSender:
    """The sender task of one worker process: up to CONCURRENCY steps in flight, woken by the applier."""

    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self._claimer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._senders = ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="outbox-send")

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        in_flight: set[asyncio.Future] = set()
        failures = 0
        while True:
            room = CONCURRENCY - len(in_flight)
            rows: list[OutboxCommand] = []
            if room > 0:
                try:
                    rows = await loop.run_in_executor(self._claimer, _claim_fresh, room)
                    failures = 0
                except Exception:  # noqa: BLE001 - the database is unavailable: try again shortly
                    failures += 1
                    logger.exception("claiming outbox commands failed (%d in a row)", failures)
                    await asyncio.sleep(min(5.0, 0.2 * failures))
                    continue
            for row in rows:
                in_flight.add(loop.run_in_executor(self._senders, send, row))
            if rows and len(in_flight) < CONCURRENCY:
                continue  # there may be more to claim
            wake = asyncio.ensure_future(self._wake.wait())
            done, _ = await asyncio.wait([wake, *in_flight], timeout=POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            wake.cancel()
            self._wake.clear()
            for future in done & in_flight:
                in_flight.discard(future)
                if future.exception() is not None:
                    logger.error("outbox send failed", exc_info=future.exception())


def _claim_fresh(limit: int) -> list[OutboxCommand]:
    close_old_connections()
    return claim(limit)
