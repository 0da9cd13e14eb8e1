"""`python manage.py sync_telnyx [CONFERENCE_ID ...]`: reconcile conferences with Telnyx's own lists.

Mute, hold and supervisor-role changes produce no webhook, and a webhook can be lost while the
dashboard is down; this brings the records back in line (muted, on hold, status, whisper targets).
Without ids it syncs every conference the dashboard thinks is live, and every conference Telnyx
lists as in progress (so one the dashboard never heard of appears).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from moderator.control import actions
from moderator.models import Conference
from moderator.telnyx.client import TelnyxFailure, send

PAGE_SIZE = 250


def telnyx_live_conference_ids() -> list[str]:
    ids: list[str] = []
    page_number = 1
    while True:
        page = send(
            "list the conferences",
            "the account",
            lambda c, n=page_number: c.conferences.list(
                filter={"status": "in_progress"}, page_number=n, page_size=PAGE_SIZE
            ),
            retries=2,  # a read: safe to retry
        )
        ids.extend(conference.id for conference in page.data)
        if page.meta is None or page.meta.page_number >= page.meta.total_pages:
            return ids
        page_number += 1


class Command(BaseCommand):
    help = "Reconcile conferences and their participants (muted, on hold, status, whisper targets) from Telnyx."

    def add_arguments(self, parser):
        parser.add_argument("conference_ids", nargs="*", help="Telnyx conference ids (default: every live one)")

    def handle(self, *args, conference_ids: list[str], **options):
        if not conference_ids:
            try:
                known = Conference.objects.exclude(status=Conference.Status.COMPLETED).values_list(
                    "telnyx_id", flat=True
                )
                conference_ids = sorted(set(known) | set(telnyx_live_conference_ids()))
            except TelnyxFailure as failure:
                raise CommandError(f"{failure.title}: {failure.detail}") from None
        failed = 0
        for conference_id in conference_ids:
            try:
                conference = actions.sync_conference(conference_id)
            except TelnyxFailure as failure:
                failed += 1
                self.stderr.write(f"{conference_id}: {failure.title}: {failure.detail}")
                continue
            legs = conference.participants.exclude(status="left").count()
            self.stdout.write(f"{conference_id}: {conference.name or '(no name)'}, {conference.status}, {legs} on the call")
        if failed:
            raise CommandError(f"{failed} of {len(conference_ids)} conferences could not be synced")
        self.stdout.write(self.style.SUCCESS(f"synced {len(conference_ids)} conference(s)"))
