"""The applier's plain-SQL reads and writes (`moderator.state.tables`) store and read values exactly as the ORM
does, on the fast paths too: datetimes in and out of UTC, JSON lists and objects empty or not, None."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection

from moderator.models import Call, Caption, Conference, FloorChange, Participant, WaitingCall
from moderator.state.tables import table

pytestmark = pytest.mark.django_db

WHEN = [
    None,
    datetime(2026, 11, 26, 2, 32, 26, tzinfo=UTC),
    datetime(2026, 11, 26, 2, 32, 26, 123456, tzinfo=UTC),
    datetime(2026, 11, 26, 4, 32, 26, 500, tzinfo=timezone(timedelta(hours=2))),  # not UTC: converted
]
DIGITS = [[], [["2026-11-26T02:32:26Z", "5"]], ["é", {"nested": [1, 2.5, None, True]}]]


@pytest.fixture(params=["driver's placeholders", "recorded by Django"])
def statements(request):
    """The statements go to the driver with its own placeholders, or through Django's cursor when it records
    them (as the tests that count queries make it)."""
    connection.force_debug_cursor = request.param == "recorded by Django"
    yield
    connection.force_debug_cursor = False


@pytest.mark.usefixtures("statements")
@pytest.mark.parametrize("when", WHEN)
@pytest.mark.parametrize("digits", DIGITS)
def test_a_row_written_in_bulk_reads_the_same_through_the_orm_and_back(when, digits):
    call = Call(call_control_id="v3:t", ended_at=when, dtmf_digits=digits, from_number="+15550001111")
    table(Call).upsert([call], ["call_control_id"], None)
    stored = Call.objects.get(call_control_id="v3:t")
    assert (stored.ended_at, stored.dtmf_digits, stored.from_number) == (when, digits, "+15550001111")
    [read] = table(Call).select(f"{table(Call).column('call_control_id')} = %s", ["v3:t"])
    assert (read.ended_at, read.dtmf_digits, read.pk) == (when, digits, stored.pk)
    if when is not None:
        assert read.ended_at.tzinfo is UTC


@pytest.mark.parametrize("whispered", [[], ["v3:a", "v3:b"]])
def test_a_row_the_orm_wrote_reads_the_same_in_bulk_and_an_upsert_changes_only_what_changed(whispered):
    conference = Conference.objects.create(telnyx_id="conf-t")
    joined = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    Participant.objects.create(conference=conference, call_control_id="v3:p", joined_at=joined,
                               whisper_call_control_ids=whispered, muted=True)
    legs = table(Participant)
    [leg] = legs.select(f"{legs.column('call_control_id')} = %s", ["v3:p"])
    assert (leg.joined_at, leg.whisper_call_control_ids, leg.muted, leg.conference_id) == (
        joined, whispered, True, conference.pk)
    leg.muted, leg.whisper_call_control_ids = False, [*whispered, "v3:c"]
    legs.upsert([leg], ["conference", "call_control_id"], ["muted", "whisper_call_control_ids"])
    stored = Participant.objects.get(pk=leg.pk)
    assert (stored.muted, stored.whisper_call_control_ids, stored.joined_at) == (False, [*whispered, "v3:c"], joined)


@pytest.mark.parametrize("model", [Conference, Participant, Call, WaitingCall, FloorChange, Caption])
def test_a_new_row_has_the_values_the_model_would_give_it(model):
    fields = [f.attname for f in model._meta.concrete_fields]
    new, constructed = table(model).new(), model()

    def value(row, name):  # a default of "now" is its own moment for each row
        v = getattr(row, name)
        return ("a moment", abs(v - datetime.now(UTC)) < timedelta(seconds=5)) if isinstance(v, datetime) else v

    assert [value(new, name) for name in fields] == [value(constructed, name) for name in fields]
    assert (new._state.adding, new._state.db) == (True, None)
    leg = table(Participant).new(call_control_id="v3:n", muted=True)
    assert (leg.call_control_id, leg.muted, leg.status) == ("v3:n", True, Participant().status)
