"""`manage.py sync_telnyx`: what no webhook reports (mute, hold, whisper) and what was missed while the
dashboard was down is brought back from Telnyx's own lists, here the simulator's."""

from __future__ import annotations

from io import StringIO

import pytest
import telnyx as telnyx_sdk
from django.core.management import CommandError, call_command

from moderator.models import Conference, Participant


@pytest.fixture
def sdk(telnyx):
    return telnyx_sdk.Telnyx(api_key=telnyx.api_key, base_url=telnyx.base_url, max_retries=0, timeout=5)


def sync(*ids: str) -> str:
    out = StringIO()
    call_command("sync_telnyx", *ids, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_a_conference_the_dashboard_never_heard_of_appears_with_its_legs_states(telnyx, sdk):
    host, guest, agent = (telnyx.call(f"+1555020{n}", "+15550100")["call_control_id"] for n in (1, 2, 3))
    conference = sdk.conferences.create(call_control_id=host, name="Missed while down").data
    for leg in (guest, agent):
        sdk.conferences.actions.join(conference.id, call_control_id=leg)
    sdk.conferences.actions.mute(conference.id, call_control_ids=[guest])
    sdk.conferences.actions.hold(conference.id, call_control_ids=[agent])
    sdk.conferences.actions.update(
        conference.id, call_control_id=host, supervisor_role="whisper", whisper_call_control_ids=[agent]
    )

    output = sync()

    assert "Missed while down" in output and "3 on the call" in output
    row = Conference.objects.get(telnyx_id=conference.id)
    assert row.name == "Missed while down" and row.status == Conference.Status.IN_PROGRESS
    legs = {p.call_control_id: p for p in row.participants.all()}
    assert legs[guest].muted and not legs[guest].on_hold
    assert legs[agent].on_hold and not legs[agent].muted
    assert legs[host].whisper_call_control_ids == [agent]
    assert all(p.status == Participant.Status.JOINED for p in legs.values())


@pytest.mark.django_db
def test_a_conference_that_ended_at_telnyx_is_completed_here(telnyx, sdk):
    host = telnyx.call("+15550211", "+15550100")["call_control_id"]
    conference = sdk.conferences.create(call_control_id=host, name="Ended elsewhere").data
    sync(conference.id)
    assert Conference.objects.get(telnyx_id=conference.id).is_live

    sdk.conferences.actions.end_conference(conference.id)
    sync()  # no ids: every conference the dashboard thinks is live

    row = Conference.objects.get(telnyx_id=conference.id)
    assert row.status == Conference.Status.COMPLETED and not row.is_live
    assert {p.status for p in row.participants.all()} == {Participant.Status.LEFT}


@pytest.mark.django_db
def test_an_unknown_conference_is_an_error_and_changes_nothing(telnyx):
    with pytest.raises(CommandError, match="1 of 1 conferences could not be synced"):
        sync("no-such-conference")
    assert not Conference.objects.filter(telnyx_id="no-such-conference").exists()


@pytest.mark.django_db
def test_an_unreachable_telnyx_is_a_clear_error(settings):
    settings.TELNYX_BASE_URL = "http://127.0.0.1:9/v2"  # nothing listens there
    with pytest.raises(CommandError, match="Could not reach Telnyx to list the conferences"):
        sync()
