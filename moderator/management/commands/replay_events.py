"""Apply stored webhook events again: after a bug fix, or to retry events that failed to apply."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from moderator.ingest import inbox as store
from moderator.models import WebhookEvent


class Command(BaseCommand):
    help = "Re-apply stored Telnyx webhook events (idempotent: older events never overwrite newer state)."

    def add_arguments(self, parser):
        parser.add_argument("--failed", action="store_true", help="only events that failed to apply")
        parser.add_argument("--conference", help="only events of this Telnyx conference id")

    def handle(self, *args, failed: bool = False, conference: str | None = None, **options):
        events = WebhookEvent.objects.exclude(status=WebhookEvent.Status.IGNORED)
        if failed:
            events = events.filter(status=WebhookEvent.Status.FAILED)
        if conference:
            events = events.filter(conference_telnyx_id=conference)
        counts = {store.APPLIED: 0, store.FAILED: 0, store.STORED: 0}
        for event in events.order_by("occurred_at", "id").iterator():
            outcome = store.replay(event)
            counts[outcome] = counts.get(outcome, 0) + 1
            if outcome == store.FAILED:
                event.refresh_from_db()
                self.stderr.write(f"{event.event_id} ({event.event_type}) failed: {event.error}")
        self.stdout.write(
            f"replayed {sum(counts.values())} event(s): {counts[store.APPLIED]} applied, {counts[store.FAILED]} failed"
        )
        if counts[store.FAILED]:
            raise SystemExit(1)
