"""The server-rendered pages: login, board, live view (constant queries at any size), profile."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from moderator.models import Conference, Participant, UserProfile
from tests.telnyx_events import at, conference_life, event, leg

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/", "/conferences/conf-1/", "/profile/"])
def test_anonymous_pages_redirect_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_login_page_renders(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200 and b'name="username"' in response.content


def test_board_shows_live_ended_and_waiting(deliver, observer_client):
    deliver(*conference_life("done", ["a", "b"]))
    deliver(event("conference.created", {**leg("x"), "conference_id": "live-1"}, at(1), occurred_in_payload=True),
            event("call.enqueued", {**leg("w"), "queue": "support", "current_position": 1}, at(2)))
    page = observer_client.get("/").content.decode()
    assert 'data-conference-id="live-1"' in page and 'data-conference-id="done"' in page
    assert page.index('data-conference-id="live-1"') < page.index('id="ended-conferences"') < page.index('data-conference-id="done"')
    assert 'data-call-control-id="v3:w"' in page and "support" in page
    # Observers watch; they get no controls at all (not controls hidden by a style sheet).
    assert 'data-action=' not in page and "controls.js" not in page and 'id="action-dialog"' not in page


def test_an_observer_sees_the_live_view_without_any_control(deliver, observer_client):
    deliver(*conference_life("conf-1", ["alice", "bob"])[:6])
    page = observer_client.get("/conferences/conf-1/").content.decode()
    assert 'data-call-control-id="v3:bob"' in page and ">joined<" in page
    assert 'data-action=' not in page and 'class="leg-select"' not in page and 'role="toolbar"' not in page


def test_live_view_shows_each_leg_with_states_in_words(deliver, moderator_client):
    deliver(*conference_life("conf-1", ["alice", "bob"])[:6])
    Participant.objects.filter(call_control_id="v3:bob").update(muted=True, on_hold=True, supervisor_role="whisper")
    page = moderator_client.get("/conferences/conf-1/").content.decode()
    assert 'data-call-control-id="v3:alice"' in page and 'data-call-control-id="v3:bob"' in page
    for word in ("muted", "on hold", "whisper", "speaking", "joined"):
        assert f">{word}<" in page, word
    assert 'class="conference-view"' in page  # moderators see the controls
    assert 'data-action="mute"' in page


def test_a_leg_that_left_shows_no_state_it_had_in_the_call(deliver, moderator_client):
    deliver(*conference_life("conf-1", ["alice", "bob"])[:6])
    Participant.objects.filter(call_control_id="v3:bob").update(muted=True, on_hold=True, supervisor_role="whisper")
    deliver(event("conference.participant.left", {**leg("bob"), "conference_id": "conf-1"}, at(30)))
    page = moderator_client.get("/conferences/conf-1/").content.decode()
    bob = page[page.index('data-call-control-id="v3:bob"'):]
    bob = bob[:bob.index("</tr>")]
    assert ">left<" in bob and not any(f">{word}<" in bob for word in ("muted", "on hold", "whisper"))


@pytest.mark.parametrize(("callers", "folded"), [(3, False), (13, True)])
def test_an_ended_conference_folds_a_long_attendance_and_puts_away_the_live_only_choices(deliver, observer_client,
                                                                                        callers, folded):
    deliver(*conference_life("conf-1", [f"caller{i}" for i in range(callers)]))
    page = observer_client.get("/conferences/conf-1/").content.decode()
    assert f'<h2>Attendance <span class="count">{callers}</span></h2>' in page
    assert ('<details class="attendance-details">' in page) is folded
    assert ('<details class="attendance-details" open>' in page) is not folded
    assert '<label class="check live-only" hidden><input type="checkbox" id="hide-left">' in page
    assert '<label class="check live-only" hidden><input type="checkbox" id="hands-first">' in page


def test_ended_conference_shows_attendance_and_recordings(deliver, observer_client):
    deliver(*conference_life("conf-1", ["alice", "bob"]))
    page = observer_client.get("/conferences/conf-1/").content.decode()
    assert "Attendance" in page and "download mp3" in page and ">left<" in page


def test_unknown_conference_is_404(observer_client):
    assert observer_client.get("/conferences/nope/").status_code == 404


def big_conference(size: int) -> None:
    conference = Conference.objects.create(telnyx_id=f"big-{size}", status="in_progress", name="Town hall")
    Participant.objects.bulk_create(
        Participant(conference=conference, call_control_id=f"v3:{size}-{i}", status="joined") for i in range(size)
    )


def test_live_view_query_count_does_not_grow_with_participants(observer_client):
    big_conference(10)
    big_conference(1000)
    counts = {}
    for size in (10, 1000):
        with CaptureQueriesContext(connection) as queries:
            response = observer_client.get(f"/conferences/big-{size}/")
        assert response.status_code == 200
        assert response.content.decode().count('class="leg ') == size
        counts[size] = len(queries)
    assert counts[1000] == counts[10]


def test_profile_saves_a_phone_number_and_refuses_a_bad_one(moderator_client, moderator_user):
    assert moderator_client.post("/profile/", {"phone_number": "+15550199"}).status_code == 302
    assert UserProfile.objects.get(user=moderator_user).phone_number == "+15550199"
    response = moderator_client.post("/profile/", {"phone_number": "555-0199"})
    assert response.status_code == 200 and b"E.164" in response.content
    assert UserProfile.objects.get(user=moderator_user).phone_number == "+15550199"
    page = moderator_client.get("/").content.decode()
    assert 'data-my-phone="+15550199"' in page
