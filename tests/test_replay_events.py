from __future__ import annotations

import pytest
from django.core.management import call_command

from moderator.models import Participant, WebhookEvent
from moderator.state import rules
from tests.telnyx_events import at, conference_life, event, leg

pytestmark = pytest.mark.django_db


def test_failed_event_is_applied_when_replayed_after_the_fix(deliver, monkeypatch):
    original = rules.RULES["conference.participant.joined"]

    def buggy(*args):
        raise RuntimeError("bug in joined handler")

    monkeypatch.setitem(rules.RULES, "conference.participant.joined", buggy)
    deliver(event("conference.participant.joined", {**leg("bob"), "conference_id": "c"}, at(1)))
    stored = WebhookEvent.objects.get()
    assert stored.status == "failed" and "bug in joined handler" in stored.error
    assert not Participant.objects.exists()

    monkeypatch.setitem(rules.RULES, "conference.participant.joined", original)
    call_command("replay_events", "--failed")
    stored.refresh_from_db()
    assert stored.status == "applied" and stored.error == ""
    assert Participant.objects.get().status == "joined"


def test_replaying_everything_is_idempotent(deliver):
    deliver(*conference_life("conf-1", ["alice", "bob"]))
    before = list(Participant.objects.order_by("id").values())
    call_command("replay_events")
    call_command("replay_events")
    after = list(Participant.objects.order_by("id").values())
    for row in before + after:
        row.pop("updated_at")
    assert after == before
