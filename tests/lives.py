"""Whole conference and queue lives, and the state a moderator could see: shared by the tests that check
that order, duplicates and batch size never change the outcome."""

from __future__ import annotations

import json

from moderator.ingest.applier import apply_pending
from moderator.ingest.inbox import store_events
from moderator.models import Call, Caption, Conference, FloorChange, Participant, Recording, WaitingCall, WebhookEvent
from moderator.telnyx.event import parse_event
from tests.telnyx_events import at, conference_life, encode, event, leg


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
        # The caller raises a hand (*1), lowers it (*1), raises it again; it goes down with the hang-up.
        *(event("call.dtmf.received", {**leg("q1"), "digit": digit}, at(seconds))
          for digit, seconds in (("*", 4.1), ("1", 4.2), ("*", 4.4), ("1", 4.5), ("*", 4.8), ("1", 4.9))),
        event("call.hangup", {**leg("q1"), "hangup_cause": "normal_clearing"}, at(5.5)),
    ]


def hand_life() -> list[dict]:
    """A caller who raises a hand and keeps it up in a live conference (keys may come before the joined)."""
    conf = {"conference_id": "conf-c"}
    return [
        event("conference.participant.joined", {**leg("hand"), **conf}, at(6.0)),
        *(event("call.dtmf.received", {**leg("hand"), "digit": digit}, at(seconds))
          for digit, seconds in (("5", 5.9), ("*", 6.1), ("1", 6.2), ("1", 6.3))),
    ]


def captions_life() -> list[dict]:
    """Two lines said by the caller with the raised hand: interim results, each final (a final may come before
    the joined it follows); and one by a caller of the ended conf-a, said while in it."""

    def said(name: str, text: str, seconds: float, final: bool) -> dict:
        return event("call.transcription", {**leg(name), "transcription_data": {
            "transcript": text, "is_final": final, "confidence": 0.9}}, at(seconds))

    return [
        said("hand", "Can I", 6.4, False), said("hand", "Can I ask", 6.5, False), said("hand", "Can I ask a question?", 6.6, True),
        said("hand", "It is about", 6.7, False), said("hand", "It is about the refund.", 6.8, True),
        said("alice", "Good morning all.", 1.5, True),
    ]


LIVES = (
    conference_life("conf-a", ["alice", "bob", "carol"])
    + conference_life("conf-b", ["dan", "erin"], t0=1.0)
    + _queue_life()
    + hand_life()
    + captions_life()
)


def occurred(document: dict) -> str:
    data = document["data"]
    return data.get("occurred_at") or data["payload"].get("occurred_at") or data["payload"]["recording_ended_at"]


IN_ORDER = sorted(LIVES, key=occurred)


def store_and_apply(documents: list[dict], batch_size: int = 100) -> None:
    """What the endpoint and the applier do, without HTTP: store the events, then apply them in batches."""
    store_events([parse_event(encode(document)) for document in documents])
    apply_pending(batch_size)


def snapshot() -> str:
    """Everything a moderator could see, without bookkeeping columns."""

    def rows(model, order, exclude=("id", "updated_at", "first_seen_at", "conference", "saved_at", "version")):
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
        "captions": rows(Caption, ["event_id"], ("id",)),
    }
    for participant in state["participants"]:
        participant["talk_seconds"] = round(participant["talk_seconds"], 6)
    return json.dumps(state, sort_keys=True, default=str)


def reset() -> None:
    for model in (Caption, Participant, Recording, WaitingCall, Call, FloorChange, Conference, WebhookEvent):
        model.objects.all().delete()
