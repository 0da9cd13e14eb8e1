"""The read API: shape, filters, paging and who may read it."""

from __future__ import annotations

import pytest

from moderator.models import Conference
from tests.telnyx_events import at, conference_life, event, leg

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/api/conferences", "/api/conferences/conf-1", "/api/queues"])
def test_anonymous_callers_get_401_json_not_a_redirect(client, url):
    response = client.get(url)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["title"] == "authentication required"


def test_conference_detail_shows_a_delivered_webhook_at_once(deliver, observer_client):
    deliver(*conference_life("conf-1", ["alice", "bob"])[:6])
    body = observer_client.get("/api/conferences/conf-1").json()
    assert body["id"] == "conf-1"
    assert body["status"] == "in_progress"
    participants = {p["call_control_id"]: p for p in body["participants"]}
    assert set(participants) == {"v3:alice", "v3:bob"}
    alice = participants["v3:alice"]
    assert alice["status"] == "joined" and alice["call_leg_id"] == "leg-alice"
    assert alice["muted"] is False and alice["on_hold"] is False and alice["supervisor_role"] == "none"
    assert body["floor_call_control_id"] == "v3:alice" and alice["talking"] is True
    assert body["participant_count"] == 2


def test_completed_conference_lists_recordings_and_end_reason(deliver, observer_client):
    deliver(*conference_life("conf-1", ["alice", "bob"]))
    body = observer_client.get("/api/conferences/conf-1").json()
    assert body["status"] == "completed" and body["end_reason"] == "host_left"
    assert body["floor_call_control_id"] == ""
    (recording,) = body["recordings"]
    assert recording["recording_id"] == "rec-conf-1"
    assert recording["format"] == "mp3" and recording["channels"] == "single"
    assert recording["recording_urls"]["mp3"].endswith("conf-1.mp3")
    assert recording["started_at"] and recording["ended_at"]


def test_unknown_conference_is_404(observer_client):
    response = observer_client.get("/api/conferences/nope")
    assert response.status_code == 404
    assert response.json()["error"]["title"] == "conference not found"


def test_list_is_newest_first_with_filters_and_paging(deliver, observer_client):
    for name in ("one", "two", "three"):
        deliver(
            event("conference.created", {**leg(name), "conference_id": name}, at(1), occurred_in_payload=True)
        )
    Conference.objects.filter(telnyx_id="two").update(name="Weekly sales", status="completed")
    body = observer_client.get("/api/conferences").json()
    assert [c["id"] for c in body["conferences"]] == ["three", "two", "one"]
    assert body["total"] == 3
    assert [
        c["id"] for c in observer_client.get("/api/conferences?status=completed").json()["conferences"]
    ] == ["two"]
    assert [c["id"] for c in observer_client.get("/api/conferences?name=sales").json()["conferences"]] == [
        "two"
    ]
    page = observer_client.get("/api/conferences?page=2&page_size=2").json()
    assert [c["id"] for c in page["conferences"]] == ["one"] and page["total_pages"] == 2


@pytest.mark.parametrize("query", ["status=bogus", "page=0", "page=x", "page_size=-1"])
def test_bad_list_parameters_are_400_naming_the_problem(observer_client, query):
    response = observer_client.get(f"/api/conferences?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["detail"]


def test_queues_show_waiting_calls_with_position_and_wait(deliver, observer_client):
    deliver(
        event(
            "call.initiated",
            {**leg("c1"), "from": "+15550001", "to": "+15550100", "direction": "incoming"},
            at(0),
        ),
        event(
            "call.enqueued",
            {**leg("c1"), "queue": "support", "current_position": 1, "queue_avg_wait_time_secs": 20},
            at(1),
        ),
        event("call.enqueued", {**leg("c2"), "queue": "support", "current_position": 2}, at(2)),
        event("call.enqueued", {**leg("c3"), "queue": "sales", "current_position": 1}, at(3)),
        event(
            "call.dequeued",
            {**leg("c1"), "queue": "support", "reason": "bridged", "queue_position": 1},
            at(4),
        ),
    )
    queues = {q["name"]: q for q in observer_client.get("/api/queues").json()["queues"]}
    assert set(queues) == {"support", "sales"}
    (waiting,) = queues["support"]["calls"]
    assert waiting["call_control_id"] == "v3:c2" and waiting["position"] == 1
    assert waiting["wait_seconds"] > 0


def test_api_refuses_writes_on_read_endpoints(observer_client):
    assert observer_client.post("/api/conferences/conf-1").status_code == 405


def test_a_name_filter_holding_a_nul_is_400(observer_client):
    response = observer_client.get("/api/conferences?name=a%00b")
    assert response.status_code == 400
    assert "NUL" in response.json()["error"]["detail"]


def test_the_openapi_document_is_served_without_a_login(client):
    response = client.get("/api/schema")
    assert response.status_code == 200 and response["Content-Type"] == "application/yaml"
    assert response.content.startswith(b"openapi: 3.1")


def test_an_unknown_api_path_is_a_json_404(observer_client, settings):
    settings.DEBUG = False  # with DEBUG on Django shows its own debugging page instead
    response = observer_client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
