"""One batch, one transaction: every event's outcome stays its own (applied, duplicate, stored, failed)."""

from __future__ import annotations

from moderator.ingest import inbox as store
from moderator.models import Conference, Participant, WebhookEvent
from moderator.telnyx.event import parse_event
from tests.telnyx_events import at, encode, event, leg


def telnyx(document) -> object:
    return parse_event(encode(document))


def test_a_failing_event_in_a_batch_fails_alone_and_the_rest_apply_once(db):
    conf = {"conference_id": "conf-batch", "connection_id": "conn-1"}
    earlier = event("conference.participant.joined", {**leg("old"), **conf}, at(1), event_id="stored-before")
    assert store.store_events([telnyx(earlier)]) == [store.APPLIED]
    joined = event("conference.participant.joined", {**leg("a"), **conf}, at(2), event_id="joined-a")
    batch = [
        joined,
        event("conference.floor.changed", leg("b"), at(3), event_id="no-conference"),  # cannot apply
        event("conference.participant.joined", {**leg("c"), **conf}, at(4), event_id="joined-c"),
        joined,  # the same delivery twice in one batch
        earlier,  # stored by an earlier batch
        event("conference.something.new", conf, at(5), event_id="unknown-type"),
    ]
    outcomes = store.store_events([telnyx(d) for d in batch])
    assert outcomes == [store.APPLIED, store.FAILED, store.APPLIED, store.DUPLICATE, store.DUPLICATE, store.STORED]
    statuses = dict(WebhookEvent.objects.values_list("event_id", "status"))
    assert statuses == {
        "stored-before": "applied",
        "joined-a": "applied",
        "no-conference": "failed",
        "joined-c": "applied",
        "unknown-type": "ignored",
    }
    assert "conference_id" in WebhookEvent.objects.get(event_id="no-conference").error
    legs = Participant.objects.filter(conference__telnyx_id="conf-batch")
    assert sorted(legs.values_list("call_control_id", "status")) == [
        ("v3:a", "joined"), ("v3:c", "joined"), ("v3:old", "joined"),
    ]
    # Two committed batches, two versions: the failure rolled the first attempt back without a trace.
    assert Conference.objects.get(telnyx_id="conf-batch").version == 2


def test_a_batch_of_only_duplicates_changes_nothing(db):
    document = event("conference.created", {**leg("x"), "conference_id": "conf-dup"}, at(1), event_id="once")
    assert store.store_events([telnyx(document)]) == [store.APPLIED]
    version = Conference.objects.get(telnyx_id="conf-dup").version
    assert store.store_events([telnyx(document), telnyx(document)]) == [store.DUPLICATE, store.DUPLICATE]
    assert WebhookEvent.objects.count() == 1
    assert Conference.objects.get(telnyx_id="conf-dup").version == version
