"""The applier: stored events are applied in batches, each event's outcome its own, in a constant number of
queries; poison events fail alone and never cost their neighbours anything."""

from __future__ import annotations

import json

import pytest

from moderator.ingest import applier
from moderator.ingest.inbox import DUPLICATE, STORED, store_events
from moderator.models import Conference, Participant, WebhookEvent
from moderator.state import rules
from moderator.telnyx.event import parse_event
from tests.delivery import apply_stored, post_webhook
from tests.telnyx_events import at, encode, event, leg

pytestmark = pytest.mark.django_db

CONF = {"conference_id": "conf-batch", "connection_id": "conn-1"}


def stored(*documents) -> list[str]:
    return store_events([parse_event(encode(d)) for d in documents])


def joined(name: str, seconds: float, **extra) -> dict:
    return event("conference.participant.joined", {**leg(name), **CONF}, at(seconds), **extra)


def statuses() -> dict[str, str]:
    return dict(WebhookEvent.objects.values_list("event_id", "status"))


def legs() -> list[tuple[str, str]]:
    return sorted(Participant.objects.filter(conference__telnyx_id="conf-batch").values_list("call_control_id", "status"))


def test_stored_events_wait_as_pending_until_the_applier_applies_them():
    assert stored(joined("a", 1, event_id="joined-a")) == [STORED]
    assert statuses() == {"joined-a": "pending"} and not Participant.objects.exists()
    outcome = applier.apply_pending()
    assert (outcome.applied, outcome.failed) == (1, 0)
    row = WebhookEvent.objects.get()
    assert row.status == "applied" and row.applied_at is not None and row.applied_by == applier.WORKER
    assert legs() == [("v3:a", "joined")]


def test_an_event_this_worker_stored_is_applied_as_its_endpoint_parsed_it_and_any_other_from_its_row(monkeypatch):
    post_webhook(joined("a", 1, event_id="through-the-endpoint"))
    stored(joined("b", 2, event_id="stored-by-another-worker"))  # as another worker's inbox would: no parse kept
    parsed_again = []
    monkeypatch.setattr(applier, "parse_event", lambda body: parsed_again.append(body) or parse_event(body))
    outcome = applier.apply_pending()
    assert (outcome.applied, outcome.failed) == (2, 0)
    assert [json.loads(body)["data"]["id"] for body in parsed_again] == ["stored-by-another-worker"]
    assert legs() == [("v3:a", "joined"), ("v3:b", "joined")]


def test_a_stored_body_that_no_longer_parses_fails_alone():
    stored(joined("a", 1, event_id="good"), joined("b", 2, event_id="damaged"))
    WebhookEvent.objects.filter(event_id="damaged").update(raw="{not json")
    outcome = applier.apply_pending()
    assert (outcome.applied, outcome.failed) == (1, 1)
    assert statuses() == {"good": "applied", "damaged": "failed"}
    assert WebhookEvent.objects.get(event_id="damaged").error == "body is not JSON"
    assert legs() == [("v3:a", "joined")]


def test_a_failing_event_in_a_batch_fails_alone_and_the_rest_apply_once(monkeypatch):
    earlier = joined("old", 1, event_id="stored-before")
    stored(earlier)
    applier.apply_pending()
    original = rules.RULES["conference.participant.left"]

    def buggy(ws, event, when):
        raise RuntimeError("bug in the left rule")

    monkeypatch.setitem(rules.RULES, "conference.participant.left", buggy)
    batch = [
        joined("a", 2, event_id="joined-a"),
        event("conference.floor.changed", leg("b"), at(3), event_id="no-conference"),  # cannot apply
        event("conference.participant.left", {**leg("old"), **CONF}, at(3.5), event_id="left-old"),  # rule raises
        joined("c", 4, event_id="joined-c"),
        joined("a", 2, event_id="joined-a"),  # the same delivery twice in one batch
        earlier,  # stored by an earlier batch
        event("conference.something.new", CONF, at(5), event_id="unknown-type"),
    ]
    assert stored(*batch) == [STORED, STORED, STORED, STORED, DUPLICATE, DUPLICATE, STORED]
    outcome = applier.apply_pending()
    assert (outcome.applied, outcome.failed) == (2, 2)
    assert statuses() == {
        "stored-before": "applied",
        "joined-a": "applied",
        "no-conference": "failed",
        "left-old": "failed",
        "joined-c": "applied",
        "unknown-type": "ignored",
    }
    assert "conference_id" in WebhookEvent.objects.get(event_id="no-conference").error
    assert "bug in the left rule" in WebhookEvent.objects.get(event_id="left-old").error
    assert legs() == [("v3:a", "joined"), ("v3:c", "joined"), ("v3:old", "joined")]

    # After the fix, a replay applies the failed ones.
    monkeypatch.setitem(rules.RULES, "conference.participant.left", original)
    ids = list(WebhookEvent.objects.filter(status="failed").values_list("id", flat=True))
    assert sorted(applier.replay(ids).values()) == ["applied", "failed"]  # the one without a conference stays failed
    assert ("v3:old", "left") in legs()


def test_an_event_whose_write_fails_is_found_by_halving_the_batch(monkeypatch):
    """A rule that leaves a value the database refuses: the batch is split until that event is alone."""
    original = rules.RULES["conference.participant.joined"]

    def writes_garbage(ws, event, when):
        original(ws, event, when)
        if event.call_control_id == "v3:poison":
            ws.legs[(event.conference_id, event.call_control_id)].joined_at = "not a time"

    monkeypatch.setitem(rules.RULES, "conference.participant.joined", writes_garbage)
    names = [f"n{i}" for i in range(9)]
    stored(*[joined(name, i) for i, name in enumerate(names)], joined("poison", 5, event_id="poison"))
    outcome = applier.apply_pending()
    assert (outcome.taken, outcome.applied, outcome.failed) == (10, 9, 1)
    assert WebhookEvent.objects.get(event_id="poison").status == "failed"
    assert legs() == sorted((f"v3:{name}", "joined") for name in names)


def test_a_batch_of_only_duplicates_changes_nothing():
    document = event("conference.created", {**leg("x"), "conference_id": "conf-dup"}, at(1), event_id="once")
    stored(document)
    applier.apply_pending()
    version = Conference.objects.get(telnyx_id="conf-dup").version
    assert stored(document, document) == [DUPLICATE, DUPLICATE]
    assert applier.apply_pending().taken == 0
    assert WebhookEvent.objects.count() == 1
    assert Conference.objects.get(telnyx_id="conf-dup").version == version


def test_one_committed_batch_is_one_version_per_conference():
    stored(*[joined(f"v{i}", i) for i in range(5)])
    applier.apply_pending()
    assert Conference.objects.get(telnyx_id="conf-batch").version == 1


@pytest.mark.parametrize("size", [10, 100])
def test_a_batch_costs_the_same_number_of_queries_whatever_its_size(size, django_assert_max_num_queries):
    """Set-based: loading and writing back do not grow with the events of the batch."""
    documents = []
    for i in range(size // 5):
        name = f"leg{i}"
        documents += [
            event("call.initiated", {**leg(name), "from": f"+1555{i:07d}", "to": "+15550100"}, at(i)),
            event("call.answered", {**leg(name)}, at(i + 0.1)),
            joined(name, i + 0.2),
            event("conference.floor.changed", {**leg(name), **CONF}, at(i + 0.3), occurred_in_payload=True),
            event("conference.participant.playback.started", {**leg(name), **CONF, "media_name": "hi"}, at(i + 0.4)),
        ]
    stored(*documents)
    with django_assert_max_num_queries(20):
        applier.apply_next_batch(limit=size)
    assert WebhookEvent.objects.filter(status="applied").count() == size


def test_a_floor_change_in_a_long_conference_loads_only_the_legs_whose_talk_time_it_moves(monkeypatch):
    """Talk time is recomputed from the whole floor history, but of the many legs that held the floor only those
    whose talk time moves are loaded as rows (and written): the new speaker's and the one it took the floor from."""
    from moderator.state import tables

    speakers = [f"s{i}" for i in range(30)]
    stored(*[joined(name, 1) for name in speakers],
           *[event("conference.floor.changed", {**leg(name), **CONF}, at(10 + i), occurred_in_payload=True)
             for i, name in enumerate(speakers)])
    applier.apply_pending()
    loaded: list[str] = []
    select = tables.Table.select

    def counting(self, where, params=(), **kwargs):
        rows = select(self, where, params, **kwargs)
        loaded.extend(row.call_control_id for row in rows if isinstance(row, Participant))
        return rows

    monkeypatch.setattr(tables.Table, "select", counting)
    stored(event("conference.floor.changed", {**leg("s0"), **CONF}, at(50), occurred_in_payload=True))
    applier.apply_pending()
    assert sorted(loaded) == ["v3:s0", "v3:s29"]  # s29 held the floor from 39 s until now
    talk = dict(Participant.objects.values_list("call_control_id", "talk_seconds"))
    assert talk["v3:s29"] == 11.0 and talk["v3:s0"] == 1.0 and talk["v3:s1"] == 1.0


def test_batches_follow_the_flow_between_small_and_a_bound():
    """While few events arrive, transactions stay short (the acknowledgements wait for SQLite's write lock); in a
    burst each batch takes up to twice what the last one took, up to a bound, and shrinks back after it."""
    stored(*[joined(f"g{i}", i) for i in range(applier.BATCH_SIZE + 5)])
    full = applier.apply_next_batch(applier.BATCH_SIZE)
    assert full.taken == applier.BATCH_SIZE
    assert applier.next_batch_size(full) == 2 * applier.BATCH_SIZE
    assert applier.next_batch_size(applier.Applied(taken=applier.BACKLOG_BATCH_SIZE)) == applier.BACKLOG_BATCH_SIZE
    rest = applier.apply_next_batch(2 * applier.BATCH_SIZE)
    assert rest.taken == 5 and applier.next_batch_size(rest) == applier.BATCH_SIZE
    assert applier.next_batch_size(applier.Applied(taken=3 * applier.BATCH_SIZE // 4)) == 3 * applier.BATCH_SIZE // 2


POISON = {
    "absurd attempt": lambda: {**joined("p1", 1), "meta": {"attempt": 10**30}},
    "lone surrogate in a conference id": lambda: event(
        "conference.participant.joined", {**leg("p2"), "conference_id": "conf-\ud800"}, at(1)
    ),
    "NUL in a call id": lambda: event("conference.participant.joined", {**leg("p3\x00"), **CONF}, at(1)),
    "slashes in the ids": lambda: event(
        "conference.participant.joined", {**leg("a/b/c"), "conference_id": "conf/../x"}, at(1)
    ),
    "a conference id too long": lambda: event("conference.created", {**leg("p5"), "conference_id": "c" * 500}, at(1)),
    "an impossible time": lambda: event("conference.participant.joined", {**leg("p6"), **CONF}, "2026-13-45T99:00:00Z"),
    "a time without an offset": lambda: event("conference.participant.joined", {**leg("p7"), **CONF}, "2026-11-24T09:00:07"),
    "a year out of range": lambda: event("conference.floor.changed", {**leg("p8"), **CONF}, "9999-12-31T23:59:59-12:00"),
    "numbers where text goes": lambda: event("call.hangup", {**leg("p9"), "hangup_cause": 12345678901234567890 * 10}, at(1)),
}


@pytest.mark.parametrize("kind", POISON)
def test_a_poison_event_never_fails_its_innocent_neighbours(kind):
    innocents = [joined(f"innocent{i}", 10 + i) for i in range(6)]
    poison = POISON[kind]()
    answers = [post_webhook(d) for d in innocents[:3]] + [post_webhook(encode(poison))] + [
        post_webhook(d) for d in innocents[3:]
    ]
    assert [a.status_code for a in answers[:3] + answers[4:]] == [200] * 6
    assert answers[3].status_code in (200, 400, 422), answers[3].content
    apply_stored()
    assert [leg for leg in legs() if "innocent" in leg[0]] == [(f"v3:innocent{i}", "joined") for i in range(6)]
    assert not WebhookEvent.objects.filter(status="pending").exists()
    if answers[3].status_code == 200:  # stored: applied, or failed on its own with its error
        row = WebhookEvent.objects.get(event_id=poison["data"]["id"])
        assert row.status in ("applied", "failed")
        assert json.loads(row.raw) == json.loads(encode(poison))


def test_ids_with_slashes_work_in_the_pages_links_and_api(moderator_client):
    post_webhook(event("conference.participant.joined", {**leg("a/b"), "conference_id": "conf/x"}, at(1)))
    apply_stored()
    board = moderator_client.get("/")
    assert board.status_code == 200 and 'href="/conferences/conf/x/"' in board.content.decode()
    assert moderator_client.get("/conferences/conf/x/").status_code == 200
    assert moderator_client.get("/api/conferences/conf%2Fx").json()["participants"][0]["call_control_id"] == "v3:a/b"


def test_the_events_kept_parsed_are_bounded_by_count_and_by_bytes_oldest_out_first():
    from moderator.ingest.inbox import StoredEvents

    def parsed(name: str, padding: int = 0):
        payload = {**leg(name), **CONF, "padding": "x" * padding}
        return parse_event(encode(event("conference.participant.joined", payload, at(1), event_id=name)))

    kept = StoredEvents(kept=3, kept_bytes=10_000)
    kept.keep(parsed(name) for name in "abcd")
    assert set(kept.take("abcd")) == {"b", "c", "d"}  # a pushed out by count
    kept.keep([parsed("e"), parsed("big", padding=9_000), parsed("f")])
    assert set(kept.take(["e", "big", "f"])) == {"big", "f"}  # e pushed out by bytes
    assert kept.take(["big", "f"]) == {}  # taken once
