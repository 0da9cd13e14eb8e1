"""The live pages' websockets: who may connect, the snapshot, updates after webhooks, versions and resync."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission, User
from django.db import transaction

from moderator.asgi import application
from moderator.models import Conference
from tests.delivery import apply_stored
from tests.telnyx_events import at, encode, event, leg, sign

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

CONF = {"conference_id": "conf-ws", "connection_id": "conn-1"}
HEADERS = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]


async def webhook(document) -> int:
    """Post a signed webhook through the ASGI app in this event loop, then apply it (the applier's work)."""
    status = await post_only(encode(document))
    await database_sync_to_async(apply_stored)()
    return status


async def post_only(body: bytes) -> int:
    sent = []
    scope = {"type": "http", "method": "POST", "path": "/webhooks/telnyx", "headers":
             [(k.encode(), v.encode()) for k, v in sign(body).items()], "query_string": b""}
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    await application(scope, receive, send)
    return sent[0]["status"]


async def connect(path: str, user: User | None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=HEADERS)
    if user is not None:
        communicator.scope["user"] = user
    return communicator


@pytest.fixture
def user(db):
    return User.objects.create_user("viewer", password="x-123456789")


async def snapshot_of(communicator) -> dict:
    message = await communicator.receive_json_from(timeout=5)
    assert message["type"] == "snapshot"
    return message


async def next_of_type(communicator, kind: str, where=lambda message: True) -> dict:
    for _ in range(10):
        message = await communicator.receive_json_from(timeout=5)
        if message["type"] == kind and where(message):
            return message
    raise AssertionError(f"no {kind} message")


async def test_anonymous_sockets_are_closed_with_4401():
    for path in ("/ws/board/", "/ws/conferences/conf-ws/"):
        communicator = WebsocketCommunicator(application, path, headers=HEADERS)
        connected, code = await communicator.connect()
        assert not connected and code == 4401


async def test_foreign_origin_is_refused(user):
    communicator = WebsocketCommunicator(application, "/ws/board/", headers=[(b"origin", b"http://evil.example")])
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert not connected


async def test_board_snapshot_then_a_new_conference_appears(user):
    communicator = await connect("/ws/board/", user)
    assert (await communicator.connect())[0]
    snapshot = await snapshot_of(communicator)
    assert set(snapshot) >= {"live", "ended", "queues", "versions"}
    assert "No live conferences" in snapshot["live"]
    assert await webhook(event("conference.created", {**leg("host"), **CONF}, at(1), occurred_in_payload=True)) == 200
    update = await next_of_type(communicator, "conference")
    assert update["conference_id"] == "conf-ws" and update["live"] is True and update["version"] == 1
    assert 'data-conference-id="conf-ws"' in update["card"]
    await communicator.disconnect()


async def test_conference_snapshot_and_row_updates_with_consecutive_versions(user):
    await webhook(event("conference.created", {**leg("host"), **CONF}, at(1), occurred_in_payload=True))
    communicator = await connect("/ws/conferences/conf-ws/", user)
    assert (await communicator.connect())[0]
    snapshot = await snapshot_of(communicator)
    assert snapshot["version"] == 1
    assert {"summary", "rows", "timeline", "viewers"} <= set(snapshot)
    assert snapshot["viewers"] == ["viewer"]
    await webhook(event("conference.participant.joined", {**leg("bob"), **CONF}, at(2)))
    update = await next_of_type(communicator, "update")
    assert update["version"] == 2
    assert list(update["rows"]) == ["v3:bob"]
    assert 'data-call-control-id="v3:bob"' in update["rows"]["v3:bob"] and ">joined<" in update["rows"]["v3:bob"]
    assert update["announce"] == ["Leg …v3:bob joined"]
    await webhook(event("conference.participant.left", {**leg("bob"), **CONF}, at(3)))
    update = await next_of_type(communicator, "update")
    assert update["version"] == 3 and ">left<" in update["rows"]["v3:bob"]
    await communicator.disconnect()


async def test_timeline_entries_carry_their_event_id_in_updates_and_snapshots_alike(user):
    """The page shows an entry once, by its key, however a snapshot and an update overlap; and a snapshot
    lists only applied events (a stored one comes with the update that applies it)."""
    await webhook(event("conference.created", {**leg("host"), **CONF}, at(1), occurred_in_payload=True))
    communicator = await connect("/ws/conferences/conf-ws/", user)
    await communicator.connect()
    await snapshot_of(communicator)
    await webhook(event("conference.participant.joined", {**leg("bob"), **CONF}, at(2), event_id="ev-bob-joined"))
    update = await next_of_type(communicator, "update")
    assert update["timeline"].count('data-key="ev-bob-joined"') == 1
    await communicator.send_to(text_data=json.dumps({"type": "resync"}))
    snapshot = await next_of_type(communicator, "snapshot")
    assert snapshot["timeline"].count('data-key="ev-bob-joined"') == 1
    body = encode(event("conference.participant.left", {**leg("bob"), **CONF}, at(3), event_id="ev-pending"))
    await post_only(body)  # stored, not applied yet
    await communicator.send_to(text_data=json.dumps({"type": "resync"}))
    assert 'data-key="ev-pending"' not in (await next_of_type(communicator, "snapshot"))["timeline"]
    await communicator.disconnect()


async def test_an_observers_socket_gets_rows_without_controls_and_a_moderators_with(user):
    from django.contrib.auth.models import Permission

    moderator = await database_sync_to_async(User.objects.create_user)("mod-ws", password="x-123456789")
    permission = await database_sync_to_async(Permission.objects.get)(codename="moderate_conference")
    await database_sync_to_async(moderator.user_permissions.add)(permission)
    moderator = await database_sync_to_async(User.objects.get)(pk=moderator.pk)  # fresh permission cache
    await webhook(event("conference.created", {**leg("host"), **CONF}, at(1), occurred_in_payload=True))
    sockets = {}
    for name, who in (("observer", user), ("moderator", moderator)):
        sockets[name] = await connect("/ws/conferences/conf-ws/", who)
        await sockets[name].connect()
        await snapshot_of(sockets[name])
    await webhook(event("conference.participant.joined", {**leg("bob"), **CONF}, at(2)))
    rows = {name: (await next_of_type(socket, "update"))["rows"]["v3:bob"] for name, socket in sockets.items()}
    assert 'data-action="mute"' in rows["moderator"] and 'class="leg-select"' in rows["moderator"]
    assert "data-action" not in rows["observer"] and "leg-select" not in rows["observer"]
    for socket in sockets.values():
        await socket.disconnect()


async def test_when_a_conference_ends_every_row_loses_its_controls_even_the_legs_that_left_before(user):
    """A leg that left while the conference was live was drawn with a (disabled) checkbox; the end redraws it."""
    from django.contrib.auth.models import Permission

    moderator = await database_sync_to_async(User.objects.create_user)("mod-end", password="x-123456789")
    permission = await database_sync_to_async(Permission.objects.get)(codename="moderate_conference")
    await database_sync_to_async(moderator.user_permissions.add)(permission)
    moderator = await database_sync_to_async(User.objects.get)(pk=moderator.pk)
    await webhook(event("conference.created", {**leg("host"), **CONF}, at(1), occurred_in_payload=True))
    await webhook(event("conference.participant.joined", {**leg("bob"), **CONF}, at(2)))
    await webhook(event("conference.participant.left", {**leg("bob"), **CONF}, at(3)))
    communicator = await connect("/ws/conferences/conf-ws/", moderator)
    await communicator.connect()
    assert "leg-select" in (await snapshot_of(communicator))["rows"]
    await webhook(event("conference.ended", {**leg("host"), **CONF}, at(4)))
    update = await next_of_type(communicator, "update")
    assert "leg-select" not in update["rows"]["v3:bob"] and ">left<" in update["rows"]["v3:bob"]
    await communicator.send_to(text_data=json.dumps({"type": "resync"}))
    assert "leg-select" not in (await next_of_type(communicator, "snapshot"))["rows"]
    await communicator.disconnect()


async def test_a_crowd_comes_in_parts_and_a_change_to_most_of_it_asks_for_a_snapshot(user):
    """A 600-leg roster is 0.8 MB of rows: in one message it would pass Daphne's 1 MiB limit at 800 legs."""
    from moderator.live.fragments import ROWS_PER_MESSAGE
    from moderator.models import Participant

    await webhook(event("conference.created", {**leg("host"), **CONF}, at(1), occurred_in_payload=True))
    conference = await database_sync_to_async(Conference.objects.get)(telnyx_id="conf-ws")
    await database_sync_to_async(Participant.objects.bulk_create)(
        [Participant(conference=conference, call_control_id=f"v3:crowd-{i}", status="joined") for i in range(600)])
    communicator = await connect("/ws/conferences/conf-ws/", user)
    assert (await communicator.connect())[0]
    snapshot = await snapshot_of(communicator)
    assert snapshot["parts"] == 3 and snapshot["rows"].count('<tr class="leg') == ROWS_PER_MESSAGE
    parts = [await communicator.receive_json_from(timeout=5) for _ in range(2)]
    assert [(p["type"], p["version"]) for p in parts] == [("rows", snapshot["version"])] * 2
    ids = [f"v3:crowd-{i}" for i in range(600)]
    shown = snapshot["rows"] + "".join(p["html"] for p in parts)
    assert all(f'data-call-control-id="{ccid}"' in shown for ccid in ids)

    await webhook(event("conference.ended", {**leg("host"), **CONF}, at(5)))  # every row loses its controls
    update = await next_of_type(communicator, "update")
    assert update["refresh"] is True and update["rows"] == {}
    await communicator.disconnect()


async def test_an_update_lost_after_its_commit_shows_as_a_gap_to_the_pages(user):
    """A worker that dies between the applier's commit and the broadcast: the next update's versions start
    past the page's, so the page asks for a snapshot instead of missing the change for good."""
    from moderator.ingest.applier import apply_next_batch

    await webhook(event("conference.created", {**leg("host"), **CONF}, at(1), occurred_in_payload=True))
    communicator = await connect("/ws/conferences/conf-ws/", user)
    await communicator.connect()
    snapshot = await snapshot_of(communicator)
    await post_only(encode(event("conference.participant.joined", {**leg("lost"), **CONF}, at(2))))
    await database_sync_to_async(apply_next_batch)()  # applied and committed; its update never sent
    await webhook(event("conference.participant.joined", {**leg("bob"), **CONF}, at(3)))
    update = await next_of_type(communicator, "update")
    assert update["since"] == update["version"] == snapshot["version"] + 2
    await communicator.disconnect()


async def test_a_page_that_asks_gets_a_fresh_snapshot(user):
    await webhook(event("conference.created", {**leg("host"), **CONF}, at(1), occurred_in_payload=True))
    communicator = await connect("/ws/conferences/conf-ws/", user)
    await communicator.connect()
    await snapshot_of(communicator)
    await webhook(event("conference.participant.joined", {**leg("bob"), **CONF}, at(2)))
    await communicator.send_to(text_data=json.dumps({"type": "resync"}))
    snapshot = await next_of_type(communicator, "snapshot")
    assert snapshot["version"] == 2 and 'data-call-control-id="v3:bob"' in snapshot["rows"]
    await communicator.disconnect()


async def test_unknown_conference_socket_is_closed_with_4404(user):
    communicator = await connect("/ws/conferences/nope/", user)
    connected, code = await communicator.connect()
    assert not connected and code == 4404


async def test_presence_lists_who_is_watching(user):
    await webhook(event("conference.created", {**leg("host"), **CONF}, at(1), occurred_in_payload=True))
    other = await database_sync_to_async(User.objects.create_user)("second", password="x-123456789")
    first = await connect("/ws/conferences/conf-ws/", user)
    await first.connect()
    await snapshot_of(first)
    second = await connect("/ws/conferences/conf-ws/", other)
    await second.connect()
    presence = await next_of_type(first, "presence", lambda m: "second" in m["viewers"])
    assert presence["viewers"] == ["second", "viewer"]
    await second.disconnect()
    presence = await next_of_type(first, "presence", lambda m: "second" not in m["viewers"])
    assert presence["viewers"] == ["viewer"]
    await first.disconnect()


async def test_nothing_is_broadcast_for_a_rolled_back_change(user):
    from moderator.live import broadcast
    from moderator.state.rules import Changes

    await webhook(event("conference.created", {**leg("host"), **CONF}, at(1), occurred_in_payload=True))
    communicator = await connect("/ws/conferences/conf-ws/", user)
    await communicator.connect()
    await snapshot_of(communicator)
    await next_of_type(communicator, "presence")  # our own arrival

    def change_then_fail():
        with pytest.raises(RuntimeError), transaction.atomic():
            Conference.objects.filter(telnyx_id="conf-ws").update(name="rolled back")
            changes = Changes(conferences={"conf-ws"})
            broadcast.publish_on_commit(changes)
            raise RuntimeError("rollback")

    await database_sync_to_async(change_then_fail)()
    assert await communicator.receive_nothing(timeout=0.5)
    conference = await database_sync_to_async(Conference.objects.get)(telnyx_id="conf-ws")
    assert conference.name == "" and conference.version == 1
    await communicator.disconnect()


async def test_a_flood_of_arrivals_reads_as_one_timeline_entry_with_the_names_inside(user):
    await webhook(event("conference.created", {**leg("host"), **CONF}, at(1), occurred_in_payload=True))
    communicator = await connect("/ws/conferences/conf-ws/", user)
    await communicator.connect()
    await snapshot_of(communicator)
    for body in [encode(event("conference.participant.joined", {**leg(f"guest{i}"), **CONF}, at(2 + i / 10),
                              event_id=f"ev-join-{i}")) for i in range(6)]:
        await post_only(body)
    await database_sync_to_async(apply_stored)()  # one batch: one update
    update = await next_of_type(communicator, "update")
    assert update["timeline"].count("<li class=\"tl-joined tl-group\"") == 1 and "6 joined" in update["timeline"]
    assert all(f"ev-join-{i}" in update["timeline"] for i in range(6))  # the members' keys: never shown twice
    await communicator.send_to(text_data=json.dumps({"type": "resync"}))
    snapshot = await next_of_type(communicator, "snapshot")
    assert snapshot["timeline"].count("tl-group") == 1 and "6 joined" in snapshot["timeline"]
    await communicator.disconnect()


async def test_captions_reach_only_the_sockets_of_users_who_may_read_them(user):
    reader = await database_sync_to_async(User.objects.create_user)("reader", password="x-123456789")
    await database_sync_to_async(reader.user_permissions.add)(
        await database_sync_to_async(Permission.objects.get)(codename="view_captions"))
    reader = await database_sync_to_async(User.objects.get)(pk=reader.pk)  # no stale permission cache
    await webhook(event("conference.created", {**leg("host"), **CONF}, at(1), occurred_in_payload=True))
    await webhook(event("conference.participant.joined", {**leg("bob"), **CONF}, at(2)))
    sockets = {}
    for who in (reader, user):
        sockets[who.username] = communicator = await connect("/ws/conferences/conf-ws/", who)
        assert (await communicator.connect())[0]
        assert ("captions" in await snapshot_of(communicator)) == (who is reader)
    transcript = {"transcript": "Only for readers.", "is_final": True, "confidence": 0.9}
    await webhook(event("call.transcription", {**leg("bob"), "transcription_data": transcript}, at(3), event_id="ev-cc"))
    captions = await next_of_type(sockets["reader"], "captions")
    assert captions["conference_id"] == "conf-ws" and 'data-key="ev-cc"' in captions["lines"]
    assert "Only for readers." in captions["lines"]
    update = await next_of_type(sockets["viewer"], "update")  # the leg changed: everyone gets its row
    assert "Only for readers." not in json.dumps(update)
    while not await sockets["viewer"].receive_nothing(timeout=0.3):  # presence, say: never captions
        assert (await sockets["viewer"].receive_json_from())["type"] != "captions"
    for communicator in sockets.values():
        await communicator.disconnect()


async def test_nothing_is_rendered_for_pages_nobody_has_open_and_a_page_opened_later_starts_from_the_change(
    user, monkeypatch
):
    """The applier renders a conference's rows and summary only while someone has its page open, and the
    board's cards only while someone has the board open; a page opened later reads the change in its snapshot,
    and the next update follows it without a gap."""
    from moderator.live import broadcast, fragments

    rendered: list[str] = []
    real_render = fragments.render
    monkeypatch.setattr(fragments, "render", lambda name, context: rendered.append(name) or real_render(name, context))
    sent: list[str] = []
    real_send = broadcast.send
    monkeypatch.setattr(broadcast, "send", lambda messages: sent.extend(g for g, _ in messages) or real_send(messages))

    await webhook(event("conference.created", {**leg("host"), **CONF}, at(1), occurred_in_payload=True))
    await webhook(event("conference.participant.joined", {**leg("bob"), **CONF}, at(2)))
    assert rendered == [] and sent == []

    board = await connect("/ws/board/", user)
    assert (await board.connect())[0]
    await snapshot_of(board)
    rendered.clear()
    await webhook(event("conference.participant.joined", {**leg("ann"), **CONF}, at(3)))
    assert sent == ["board"]  # the card; no rows or summary for a page nobody has open
    assert set(rendered) == {"card.html"}
    assert (await next_of_type(board, "conference"))["version"] == 3

    page = await connect("/ws/conferences/conf-ws/", user)
    assert (await page.connect())[0]
    snapshot = await snapshot_of(page)
    assert snapshot["version"] == 3 and 'data-call-control-id="v3:ann"' in snapshot["rows"]
    await webhook(event("conference.participant.left", {**leg("ann"), **CONF}, at(4)))
    update = await next_of_type(page, "update")
    assert update["since"] == update["version"] == 4 and ">left<" in update["rows"]["v3:ann"]
    await page.disconnect()
    await board.disconnect()
