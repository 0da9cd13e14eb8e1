from __future__ import annotations

import csv
import io

import pytest

from moderator.models import Conference, WebhookEvent
from tests.telnyx_events import conference_life

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_with_data(admin_client, deliver):
    deliver(*conference_life("conf-1", ["alice", "bob"]))
    return admin_client


@pytest.mark.parametrize(
    "model",
    [
        "conference",
        "participant",
        "call",
        "waitingcall",
        "recording",
        "webhookevent",
        "moderatoraction",
        "outboxcommand",
        "room",
        "userprofile",
    ],
)
def test_every_model_has_a_working_changelist(admin_client_with_data, model):
    assert admin_client_with_data.get(f"/admin/moderator/{model}/").status_code == 200


def test_conference_page_shows_attendance(admin_client_with_data):
    conference = Conference.objects.get()
    page = admin_client_with_data.get(f"/admin/moderator/conference/{conference.pk}/change/").content.decode()
    assert "Attendance" in page and "v3:alice" in page and "talk time" in page.lower()


def test_webhook_event_is_read_only_with_pretty_json(admin_client_with_data):
    stored = WebhookEvent.objects.filter(event_type="conference.created").get()
    page = admin_client_with_data.get(f"/admin/moderator/webhookevent/{stored.pk}/change/").content.decode()
    assert "&quot;event_type&quot;: &quot;conference.created&quot;" in page
    assert 'name="_save"' not in page
    failed = admin_client_with_data.get("/admin/moderator/webhookevent/?status__exact=failed")
    assert failed.status_code == 200


def test_attendance_exports_as_csv(admin_client_with_data):
    conference = Conference.objects.get()
    response = admin_client_with_data.post(
        "/admin/moderator/conference/",
        {"action": "export_attendance_csv", "_selected_action": [conference.pk]},
    )
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {r["call_control_id"] for r in rows} == {"v3:alice", "v3:bob"}
    assert all(r["status"] == "left" and float(r["seconds_in_conference"]) > 0 for r in rows)
