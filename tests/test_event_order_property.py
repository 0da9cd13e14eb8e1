"""Any delivery order, with any duplicates, applied in batches of any size, ends in the state of in-order
delivery — the property that lets the applier take events in batches, off the request path."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.lives import IN_ORDER, LIVES, reset, snapshot, store_and_apply

pytestmark = pytest.mark.django_db


@pytest.fixture
def in_order_state(deliver):
    deliver(*IN_ORDER)  # once through the real endpoint; the examples below store directly
    state = snapshot()
    reset()
    return state


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_order_with_duplicates_in_any_batches_ends_in_the_in_order_state(in_order_state, data):
    order = data.draw(st.permutations(LIVES))
    duplicates = data.draw(st.lists(st.sampled_from(LIVES), max_size=12))
    positions = data.draw(st.lists(st.integers(0, len(order)), min_size=len(duplicates), max_size=len(duplicates)))
    deliveries = list(order)
    for duplicate, position in zip(duplicates, positions, strict=True):
        deliveries.insert(position, duplicate)
    # Delivered in a few bursts (what the inbox stores between two batches), applied in batches of any size.
    cuts = sorted(data.draw(st.lists(st.integers(0, len(deliveries)), max_size=4)))
    batch_size = data.draw(st.integers(1, 80))
    for start, end in zip([0, *cuts], [*cuts, len(deliveries)], strict=True):
        store_and_apply(deliveries[start:end], batch_size)
    assert snapshot() == in_order_state
    reset()


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_batches_of_1_7_and_64_end_in_the_same_state(in_order_state, batch_size):
    store_and_apply(LIVES[::-1], batch_size)
    assert snapshot() == in_order_state


def test_the_in_order_state_is_the_expected_one(in_order_state):
    state = json.loads(in_order_state)
    assert {c["telnyx_id"]: c["status"] for c in state["conferences"]} == {
        "conf-a": "completed",
        "conf-b": "completed",
        "conf-c": "in_progress",
    }
    assert {p["call_control_id"] for p in state["participants"] if p["status"] != "left"} == {"v3:hand"}
    waiting = {w["call_control_id"]: w for w in state["waiting"]}
    assert waiting["v3:q1"]["leave_reason"] == "leave"
    assert waiting["v3:q2"]["leave_reason"] == "hangup"
    q1 = next(p for p in state["participants"] if p["call_control_id"] == "v3:q1")
    assert q1["left_at"].startswith("2026-11-24T09:00:05.5")
    hands = {p["call_control_id"]: p["hand_raised_at"] for p in state["participants"] if p["conference__telnyx_id"] == "conf-c"}
    assert hands == {"v3:q1": None, "v3:hand": "2026-11-24T09:00:06.200000+00:00"}  # q1 hung up; the other's is up
    talk = {p["call_control_id"]: p["talk_seconds"] for p in state["participants"] if p["conference__telnyx_id"] == "conf-a"}
    assert talk == {"v3:alice": 1.3, "v3:bob": 0.1, "v3:carol": 0.1}  # alice holds the floor until the end
    captions = {c["text"]: c["conference__telnyx_id"] for c in state["captions"]}
    assert captions == {"Can I ask a question?": "conf-c", "It is about the refund.": "conf-c", "Good morning all.": "conf-a"}
    hand = next(p for p in state["participants"] if p["call_control_id"] == "v3:hand")
    assert (hand["caption_line"], hand["caption_at"]) == ("", "2026-11-24T09:00:06.800000+00:00")  # the last line ended
