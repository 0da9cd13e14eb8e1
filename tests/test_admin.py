from __future__ import annotations

import csv
import html
import io
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from moderator.live.fragments import DIAL_IN_PROBLEMS
from moderator.models import Call, Conference, WebhookEvent
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
        "callername",
        "caption",
    ],
)
def test_every_model_has_a_working_changelist(admin_client_with_data, model):
    assert admin_client_with_data.get(f"/admin/moderator/{model}/").status_code == 200


def test_conference_page_shows_attendance(admin_client_with_data):
    conference = Conference.objects.get()
    page = admin_client_with_data.get(f"/admin/moderator/conference/{conference.pk}/change/").content.decode()
    assert "Attendance" in page and "v3:alice" in page and "talk time" in page.lower()
    # One click to the conference's live view ("View on site").
    view_on_site = re.search(r'href="([^"]+)" class="viewsitelink"', page).group(1)
    assert admin_client_with_data.get(view_on_site)["Location"].endswith("/conferences/conf-1/")


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


@pytest.mark.parametrize("model", ["conference", "participant", "call", "waitingcall", "recording"])
def test_records_telnyx_owns_can_be_neither_added_nor_deleted(admin_client_with_data, model):
    from django.apps import apps
    from django.contrib import admin as django_admin

    record = apps.get_model("moderator", model).objects.first()
    assert admin_client_with_data.get(f"/admin/moderator/{model}/add/").status_code == 403
    changelist = admin_client_with_data.get(f"/admin/moderator/{model}/").content.decode()
    assert "delete_selected" not in changelist and f"/admin/moderator/{model}/add/" not in changelist
    if record is not None:
        assert admin_client_with_data.get(f"/admin/moderator/{model}/{record.pk}/delete/").status_code == 403
    if model != "conference":  # only a conference's name is ours to change; the rest is Telnyx's word
        model_admin = django_admin.site._registry[apps.get_model("moderator", model)]
        assert model_admin.has_change_permission(None) is False


def test_room_moderator_numbers_are_one_per_line_validated_and_saved_as_a_list(admin_client):
    from moderator.models import Room

    form = {
        "name": "Town hall", "moderator_numbers": "+15550199\n+1 (555) 019-8\n", "beep_enabled": "never",
        "numbers-TOTAL_FORMS": "1", "numbers-INITIAL_FORMS": "0", "numbers-0-number": "+15550100",
    }
    response = admin_client.post("/admin/moderator/room/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    room = Room.objects.get(name="Town hall")
    assert room.moderator_numbers == ["+15550199", "+15550198"]
    page = admin_client.get(f"/admin/moderator/room/{room.pk}/change/").content.decode()
    assert "+15550199\n+15550198</textarea>" in page

    response = admin_client.post("/admin/moderator/room/add/", {
        **form, "name": "Bad", "moderator_numbers": "+15550199\n555-0199", "numbers-0-number": "0100",
    })
    page = response.content.decode()
    assert response.status_code == 200 and not Room.objects.filter(name="Bad").exists()
    assert "“555-0199” is not a phone number in E.164 form" in page and "“0100” is not a phone number" in page


def test_the_board_lists_the_latest_dial_in_problems_and_links_to_all_of_them(admin_client):
    total = DIAL_IN_PROBLEMS + 3
    for i in range(total):
        Call.objects.create(call_control_id=f"v3:stuck-{i}", from_number=f"+1555070{i:04d}", state="answered",
                            routing_error="Queue full: the queue is full (90036)")
    Call.objects.create(call_control_id="v3:placed", from_number="+15550799999", state="answered")
    old = Call.objects.create(call_control_id="v3:stuck-long-ago", from_number="+15550798888", state="answered",
                              routing_error="Queue full: the queue is full (90036)")
    Call.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(hours=2))  # past the board's hour
    board = admin_client.get("/").content.decode()
    assert board.count('class="routing-problem"') == DIAL_IN_PROBLEMS
    assert f'Dial-in problems <span class="count">{total}</span>' in board
    assert f"The latest {DIAL_IN_PROBLEMS} of {total} in the last hour" in board
    every_one = html.unescape(re.search(r'href="([^"]*routing_problem=recent)"', board).group(1))
    listed = admin_client.get(every_one).content.decode()
    assert all(f"v3:stuck-{i}" in listed for i in range(total)) and "v3:placed" not in listed
    assert "v3:stuck-long-ago" not in listed  # the link lists what the board counts


def test_the_admin_lists_times_to_the_second(admin_client_with_data):
    listed = admin_client_with_data.get("/admin/moderator/webhookevent/").content.decode()
    # The events of conference_life are 0.1–1 s apart: a minute would make them all alike.
    assert re.search(r"Nov\. 24, 2026, 09:00:0\d", listed), listed[:2000]


def test_the_records_carry_the_products_name_and_icon(admin_client, client):
    index = admin_client.get("/admin/").content.decode()
    assert "Conference Moderator records" in index and "Django administration" not in index
    icon = re.search(r'<link rel="icon" href="([^"]+)"', index).group(1)
    assert icon.endswith("favicon.svg")
    # A page that names no icon (a JSON answer) makes the browser ask for /favicon.ico: it is there too.
    asked = client.get("/favicon.ico")
    assert asked.status_code == 301 and asked["Location"] == icon
