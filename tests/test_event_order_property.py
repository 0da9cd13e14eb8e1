"""Any delivery order, with any duplicates, ends in the state of in-order delivery."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moderator.models import Call, Conference, Participant, Recording, WaitingCall
from tests.telnyx_events import at, conference_life, event, leg

pytestmark = pytest.mark.django_db


def _queue_life() -> list[dict]:
    caller, early = {**leg("q1"), "queue": "support"}, {**leg("q2"), "queue": "support"}
    return [
        event(
            "call.initiated",
            {**leg("q1"), "from": "+15550001", "to": "+15550100", "direction": "incoming"},
            at(0.5),
        ),
        event("call.answered", {**leg("q1"), "from": "+15550001", "to": "+15550100"}, at(0.6)),
        event("call.enqueued", {**caller, "current_position": 1, "queue_avg_wait_time_secs": 12}, at(0.7)),
        event("call.enqueued", {**early, "current_position": 2, "queue_avg_wait_time_secs": 12}, at(0.8)),
        event(
            "call.dequeued", {**caller, "reason": "leave", "queue_position": 1, "wait_time_secs": 3}, at(3.7)
        ),
        event("call.hangup", {**leg("q2"), "hangup_cause": "normal_clearing"}, at(4.0)),
        event("conference.participant.joined", {**leg("q1"), "conference_id": "conf-c"}, at(3.8)),
        event("call.hangup", {**leg("q1"), "hangup_cause": "normal_clearing"}, at(5.5)),
    ]


LIVES = (
    conference_life("conf-a", ["alice", "bob", "carol"])
    + conference_life("conf-b", ["dan", "erin"], t0=1.0)
    + _queue_life()
)


def snapshot() -> str:
    """Everything a moderator could see, without bookkeeping columns."""

    def rows(
        model, order, exclude=("id", "updated_at", "first_seen_at", "conference", "saved_at", "version")
    ):
        fields = [f.attname for f in model._meta.fields if f.name not in exclude and f.attname not in exclude]
        if model is not Conference and "conference_id" not in exclude:
            fields.append("conference__telnyx_id")
        return [
            {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
            for row in model.objects.order_by(*order).values(*[f for f in fields if f != "conference_id"])
        ]

    state = {
        "conferences": rows(Conference, ["telnyx_id"]),
        "participants": rows(Participant, ["conference__telnyx_id", "call_control_id"]),
        "recordings": rows(Recording, ["recording_id"]),
        "waiting": rows(WaitingCall, ["call_control_id"], ("id", "updated_at", "conference_id")),
        "calls": rows(Call, ["call_control_id"], ("id", "updated_at", "conference_id")),
    }
    for participant in state["participants"]:
        participant["talk_seconds"] = round(participant["talk_seconds"], 6)
    return json.dumps(state, sort_keys=True, default=str)


def reset():
    for model in (Participant, Recording, WaitingCall, Call, Conference):
        model.objects.all().delete()
    from moderator.models import FloorChange, WebhookEvent

    FloorChange.objects.all().delete()
    WebhookEvent.objects.all().delete()


@pytest.fixture
def in_order_state(deliver):
    deliver(
        *sorted(
            LIVES,
            key=lambda e: (
                e["data"].get("occurred_at")
                or e["data"]["payload"].get("occurred_at")
                or e["data"]["payload"]["recording_ended_at"]
            ),
        )
    )
    state = snapshot()
    reset()
    return state


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_order_with_duplicates_ends_in_the_in_order_state(in_order_state, deliver, data):
    order = data.draw(st.permutations(LIVES))
    duplicates = data.draw(st.lists(st.sampled_from(LIVES), max_size=12))
    positions = data.draw(
        st.lists(st.integers(0, len(order)), min_size=len(duplicates), max_size=len(duplicates))
    )
    deliveries = list(order)
    for duplicate, position in zip(duplicates, positions, strict=True):
        deliveries.insert(position, duplicate)
    deliver(*deliveries)
    assert snapshot() == in_order_state
    reset()


def test_the_in_order_state_is_the_expected_one(in_order_state):
    state = json.loads(in_order_state)
    assert {c["telnyx_id"]: c["status"] for c in state["conferences"]} == {
        "conf-a": "completed",
        "conf-b": "completed",
        "conf-c": "in_progress",
    }
    assert all(p["status"] == "left" for p in state["participants"])
    waiting = {w["call_control_id"]: w for w in state["waiting"]}
    assert waiting["v3:q1"]["leave_reason"] == "leave"
    assert waiting["v3:q2"]["leave_reason"] == "hangup"
    q1 = next(p for p in state["participants"] if p["call_control_id"] == "v3:q1")
    assert q1["left_at"].startswith("2026-11-24T09:00:05.5")
