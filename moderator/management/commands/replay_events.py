"""Apply stored webhook events again: after a bug fix, or to retry events that failed to apply."""

from __future__ import annotations

from collections import Counter

from django.core.management.base import BaseCommand

from moderator.ingest import applier
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
        statuses = applier.replay(list(events.values_list("id", flat=True)))
        counts = Counter(statuses.values())
        for row in WebhookEvent.objects.filter(id__in=statuses, status=WebhookEvent.Status.FAILED):
            self.stderr.write(f"{row.event_id} ({row.event_type}) failed: {row.error}")
        applied, failures = counts[WebhookEvent.Status.APPLIED], counts[WebhookEvent.Status.FAILED]
        self.stdout.write(f"replayed {len(statuses)} event(s): {applied} applied, {failures} failed")
        if failures:
            raise SystemExit(1)
