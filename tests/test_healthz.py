from __future__ import annotations

import pytest
from django.db import OperationalError

from moderator.models import Heartbeat
from tests.delivery import post_webhook
from tests.telnyx_events import at, event, leg

pytestmark = pytest.mark.django_db


def test_healthz_writes_and_says_how_far_behind_the_pipeline_is(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok", "database": "ok", "events_pending": 0, "oldest_pending_seconds": 0, "commands_unsent": 0,
    }  # fmt: skip
    assert Heartbeat.objects.count() == 1  # the probe is a real write

    post_webhook(event("conference.created", {**leg("a"), "conference_id": "conf-h"}, at(1)))
    backlog = client.get("/healthz").json()
    assert backlog["events_pending"] == 1 and backlog["oldest_pending_seconds"] >= 0


def test_healthz_is_503_when_the_database_does_not_answer(client, monkeypatch):
    from django.db.backends.utils import CursorWrapper

    def broken(self, sql, params=None):
        raise OperationalError("connection refused")

    monkeypatch.setattr(CursorWrapper, "execute", broken)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
