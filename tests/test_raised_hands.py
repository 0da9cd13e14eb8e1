"""Raised hands: a caller presses *1 (one call.dtmf.received per key, in any order) and waits in "Hands raised";
*1 again lowers it; a moderator answers it by unmuting or lowering it."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator

from moderator.asgi import application
from moderator.models import ModeratorAction, Participant
from tests.telnyx_events import at, event, leg

pytestmark = pytest.mark.django_db

CONF = {"conference_id": "conf-hands", "connection_id": "conn-1"}


def keys(name: str, *pressed: tuple[str, float]) -> list[dict]:
    return [event("call.dtmf.received", {**leg(name), "digit": digit, "from": "+15550801", "to": "+15550100"},
                  at(seconds)) for digit, seconds in pressed]


@pytest.fixture
def bob_in_a_conference(deliver):
    deliver(
        event("conference.created", {**leg("host"), **CONF}, at(1), occurred_in_payload=True),
        event("call.initiated", {**leg("bob"), "from": "+15550801", "to": "+15550100"}, at(1)),
        event("conference.participant.joined", {**leg("bob"), **CONF}, at(2)),
    )


def bob(client) -> dict:
    legs = client.get("/api/conferences/conf-hands").json()["participants"]
    return next(p for p in legs if p["call_control_id"] == "v3:bob")


def test_star_one_raises_the_hand_on_the_row_and_in_the_hands_list(bob_in_a_conference, deliver, moderator_client):
    deliver(*keys("bob", ("1", 10.2), ("*", 10.0)))  # the keys arrive in the wrong order
    assert bob(moderator_client)["hand_raised_at"] == "2026-11-24T09:00:10.200000Z"
    page = moderator_client.get("/conferences/conf-hands/").content.decode()
    assert '<span class="badge hand">hand raised</span>' in page
    assert '<h2 id="hands-title">Hands raised <span class="count">1</span></h2>' in page
    assert 'aria-label="Lower the hand of +15550801"' in page
    assert "Unmute next" not in page and 'aria-label="Unmute +15550801"' not in page  # bob is not muted: he can speak
    deliver(*keys("bob", ("*", 20.0), ("1", 20.1)))
    assert bob(moderator_client)["hand_raised_at"] is None
    assert "Hands raised" not in moderator_client.get("/conferences/conf-hands/").content.decode()


def test_unmute_next_is_the_first_hand_of_someone_muted(bob_in_a_conference, deliver, moderator_client):
    deliver(event("call.initiated", {**leg("carol"), "from": "+15550802", "to": "+15550100"}, at(3)),
            event("conference.participant.joined", {**leg("carol"), **CONF}, at(3)))
    Participant.objects.filter(call_control_id="v3:carol").update(muted=True)  # a moderator's mute: no webhook
    deliver(*keys("bob", ("*", 10.0), ("1", 10.1)), *keys("carol", ("*", 11.0), ("1", 11.1)))  # bob first
    page = moderator_client.get("/conferences/conf-hands/").content.decode()
    assert '<span class="count">2</span>' in page
    assert 'aria-label="Unmute next: +15550802"' in page and 'aria-label="Unmute +15550802"' in page
    assert 'aria-label="Unmute +15550801"' not in page and 'aria-label="Lower the hand of +15550801"' in page


@pytest.mark.parametrize(
    "pressed",
    [
        [("1", 10.0), ("*", 10.2)],  # 1 then *: not *1
        [("*", 10.0), ("1", 14.0)],  # too far apart to be one *1
        [("*", 10.0), ("5", 10.1), ("1", 10.2)],  # another key between
        [("5", 10.0)],
    ],
)
def test_other_keys_raise_no_hand(bob_in_a_conference, deliver, moderator_client, pressed):
    deliver(*keys("bob", *pressed))
    assert bob(moderator_client)["hand_raised_at"] is None


def test_a_hand_goes_down_when_the_caller_leaves(bob_in_a_conference, deliver, moderator_client):
    deliver(*keys("bob", ("*", 10.0), ("1", 10.1)))
    deliver(event("conference.participant.left", {**leg("bob"), **CONF}, at(11)))
    assert bob(moderator_client)["hand_raised_at"] is None


def test_a_moderator_lowers_a_hand_and_keys_pressed_before_count_no_more(bob_in_a_conference, deliver,
                                                                         moderator_client):
    deliver(*keys("bob", ("*", 10.0), ("1", 10.1)))
    response = moderator_client.post("/api/conferences/conf-hands/lower_hands", {"call_control_ids": ["v3:bob"]},
                                     content_type="application/json")
    assert response.status_code == 200 and response.json()["data"] == {"lowered": ["v3:bob"]}
    assert bob(moderator_client)["hand_raised_at"] is None
    (audit,) = ModeratorAction.objects.filter(action="lower_hands")
    assert audit.user.username == "mod" and audit.call_control_ids == ["v3:bob"]
    assert "mod lowered the hand of +15550801" in moderator_client.get("/conferences/conf-hands/").content.decode()
    # A *1 pressed before the moderator lowered it (its webhooks late) leaves it down; a new one raises it.
    deliver(*keys("bob", ("*", 12.0), ("1", 12.1)))
    assert bob(moderator_client)["hand_raised_at"] is None
    deliver(*keys("bob", ("*", 3600 * 24 * 400), ("1", 3600 * 24 * 400 + 0.1)))  # after now
    assert bob(moderator_client)["hand_raised_at"] is not None


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"call_control_ids": "v3:bob"}, 400, "call_control_ids: Input should be a valid list"),
        ({"call_control_ids": []}, 400, "call_control_ids: List should have at least 1 item after validation, not 0"),
        ({"everyone": True}, 400, "everyone: is not a field of this action"),
    ],
)
def test_a_bad_lowering_changes_nothing(bob_in_a_conference, deliver, moderator_client, body, status, detail):
    deliver(*keys("bob", ("*", 10.0), ("1", 10.1)))
    response = moderator_client.post("/api/conferences/conf-hands/lower_hands", body, content_type="application/json")
    assert response.status_code == status and response.json()["error"]["detail"] == detail
    assert bob(moderator_client)["hand_raised_at"] is not None
    assert not ModeratorAction.objects.exists()


def test_observers_may_not_lower_hands_and_unknown_conferences_are_404(bob_in_a_conference, client, observer_user,
                                                                       moderator_user):
    client.force_login(observer_user)
    assert client.post("/api/conferences/conf-hands/lower_hands", {}, content_type="application/json").status_code == 403
    client.force_login(moderator_user)
    response = client.post("/api/conferences/nope/lower_hands", {}, content_type="application/json")
    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_open_pages_get_the_hands_list_and_hear_who_raised_a_hand(observer_user):
    from tests.test_consumers import next_of_type, snapshot_of, webhook

    await webhook(event("conference.created", {**leg("host"), **CONF}, at(1), occurred_in_payload=True))
    await webhook(event("call.initiated", {**leg("bob"), "from": "+15550801", "to": "+15550100"}, at(1)))
    await webhook(event("conference.participant.joined", {**leg("bob"), **CONF}, at(2)))
    page = WebsocketCommunicator(application, "/ws/conferences/conf-hands/",
                                 headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")])
    page.scope["user"] = observer_user
    assert (await page.connect())[0]
    assert (await snapshot_of(page))["hands"] == ""
    for document in keys("bob", ("*", 10.0), ("1", 10.1)):
        await webhook(document)
    update = await next_of_type(page, "update", lambda m: "hands" in m and m["hands"])
    assert "+15550801" in update["hands"] and "data-action" not in update["hands"]  # an observer's: no buttons
    assert update["announce"] == ["+15550801 raised a hand"]
    assert "hand raised" in update["rows"]["v3:bob"]
    await page.disconnect()


def test_unmuting_a_caller_answers_their_hand(live_conference, moderator_client, deliver, telnyx):
    from tests.fixtures_actions import act, sim_legs

    guest = live_conference["legs"][1]
    assert act(moderator_client, live_conference, "mute", {"call_control_ids": [guest]}).status_code == 200
    deliver(*[event("call.dtmf.received", {"call_control_id": guest, "digit": digit}, at(10 + i / 10))
              for i, digit in enumerate("*1")])
    legs = {p["call_control_id"]: p for p in moderator_client.get(f"/api/conferences/{live_conference['id']}").json()["participants"]}
    assert legs[guest]["hand_raised_at"] and legs[guest]["muted"]
    assert act(moderator_client, live_conference, "unmute", {"call_control_ids": [guest]}).status_code == 200
    legs = {p["call_control_id"]: p for p in moderator_client.get(f"/api/conferences/{live_conference['id']}").json()["participants"]}
    assert legs[guest]["hand_raised_at"] is None and not legs[guest]["muted"]
    assert sim_legs(telnyx, live_conference["id"])[guest]["muted"] is False
