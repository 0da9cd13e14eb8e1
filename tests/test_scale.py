"""Two uvicorn workers sharing one PostgreSQL database and one Redis, as in production.

What must hold when webhooks land on any worker: an update reaches websockets on every worker, a
redelivery that hits both workers at once has one effect, and a conference whose events are shuffled,
duplicated and split across both workers ends in the state of in-order delivery.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from collections.abc import Iterator

import aiohttp
import psycopg
import pytest

from tests.fixtures_live_server import LiveServer
from tests.fixtures_servers import PostgresCluster
from tests.telnyx_events import at, conference_life, encode, event, leg, sign

pytestmark = pytest.mark.scale

RECEIVE_TIMEOUT = 30  # seconds to wait for a websocket message before calling it lost


class Workers:
    def __init__(self, a: LiveServer, b: LiveServer, database_url: str):
        self.a, self.b, self.database_url = a, b, database_url

    def applied(self, event_ids: list[str], timeout: float = RECEIVE_TIMEOUT) -> dict[str, str]:
        """Wait until every one of these events is applied (by either worker's applier); who applied each."""
        deadline = time.monotonic() + timeout
        while True:
            with psycopg.connect(self.database_url) as connection:
                rows = dict(
                    connection.execute(
                        "SELECT event_id, applied_by FROM moderator_webhookevent "
                        "WHERE event_id = ANY(%s) AND status = 'applied'",
                        (event_ids,),
                    ).fetchall()
                )
            if len(rows) == len(set(event_ids)) or time.monotonic() > deadline:
                assert len(rows) == len(set(event_ids)), f"{len(set(event_ids)) - len(rows)} events never applied"
                return rows
            time.sleep(0.05)

    def webhook_rows(self, event_ids: list[str]) -> dict[str, int]:
        """How many stored rows each event id has, straight from PostgreSQL."""
        with psycopg.connect(self.database_url) as connection:
            rows = connection.execute(
                "SELECT event_id, count(*) FROM moderator_webhookevent WHERE event_id = ANY(%s) GROUP BY event_id",
                (event_ids,),
            ).fetchall()
        return dict(rows)


@pytest.fixture(scope="module")
def workers(postgres: PostgresCluster, redis_url: str, tmp_path_factory) -> Iterator[Workers]:
    database_url = postgres.create_database(f"scale_{uuid.uuid4().hex[:8]}")
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    # Two uvicorn workers, as README recommends for production.
    a = LiveServer(tmp_path_factory.mktemp("worker-a"), env, server="uvicorn")
    b = LiveServer(tmp_path_factory.mktemp("worker-b"), env, server="uvicorn")
    a.prepare()  # migrate the shared database once, and create the users both workers know
    try:
        a.start()
        b.start()
        yield Workers(a, b, database_url)
    finally:
        a.stop()
        b.stop()


async def post(session: aiohttp.ClientSession, server: LiveServer, body: bytes, headers: dict[str, str]):
    async with session.post(
        f"{server.url}/webhooks/telnyx", data=body, headers={**headers, "content-type": "application/json"}
    ) as response:
        return response.status, await response.json()


async def deliver(session: aiohttp.ClientSession, server: LiveServer, document: dict) -> str:
    body = encode(document)
    status, answer = await post(session, server, body, sign(body))
    assert status == 200, answer
    return answer["status"]


def session_cookie(server: LiveServer, username: str = "moderator") -> str:
    client = server.client(username)
    try:
        return client.cookies["sessionid"]
    finally:
        client.close()


async def open_live_view(session: aiohttp.ClientSession, server: LiveServer, conference_id: str, cookie: str):
    ws = await session.ws_connect(
        f"ws://127.0.0.1:{server.port}/ws/conferences/{conference_id}/",
        headers={"Cookie": f"sessionid={cookie}", "Origin": server.url},
    )
    snapshot = await next_message(ws, "snapshot")
    return ws, snapshot


async def next_message(ws, kind: str, seen: list[dict] | None = None) -> dict:
    """The next message of type `kind`; the others are kept in `seen`."""
    while True:
        # wait_for, not receive(timeout=...): the server's pings would restart that timeout forever.
        message = await asyncio.wait_for(ws.receive(), RECEIVE_TIMEOUT)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        data = json.loads(message.data)
        if data["type"] == kind:
            return data
        if seen is not None:
            seen.append(data)


async def updates_until_version(ws, since: int) -> tuple[int, list[dict]]:
    """The current version, and every update this socket received from `since` until that version.

    Updates from two workers may arrive out of version order (each worker sends after its own
    commit): the page resyncs on a gap; here we simply wait until every version is in.
    """
    received: list[dict] = []
    await ws.send_json({"type": "resync"})
    latest = (await next_message(ws, "snapshot", received))["version"]
    updates = [m for m in received if m["type"] == "update"]
    while not covered(updates) >= set(range(since + 1, latest + 1)):
        updates.append(await next_message(ws, "update"))
    return latest, updates


def covered(updates: list[dict]) -> set[int]:
    """The versions the updates carry: each covers since..version (one message for several batches)."""
    return {v for u in updates for v in range(u["since"], u["version"] + 1)}


def api_conference(server: LiveServer, conference_id: str) -> dict:
    client = server.client()
    try:
        response = client.get(f"/api/conferences/{conference_id}")
    finally:
        client.close()
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_webhook_posted_to_one_worker_reaches_a_websocket_on_the_other(workers):
    conference_id = f"conf-ws-{uuid.uuid4().hex[:8]}"
    conf = {"conference_id": conference_id, "connection_id": "conn-1"}
    cookie = session_cookie(workers.b)
    async with aiohttp.ClientSession() as session:
        created = event("conference.created", {**leg("ws-host"), **conf}, at(1))
        await deliver(session, workers.a, created)
        workers.applied([created["data"]["id"]])
        ws, snapshot = await open_live_view(session, workers.b, conference_id, cookie)
        assert "ws-guest" not in json.dumps(snapshot)
        # Idle for longer than the channel layer's 5 s blocking read: with redis-py 8's default 5 s
        # socket timeout, the worker used to tear the socket down (close 1011) right here.
        await asyncio.sleep(7)

        assert (
            await deliver(
                session, workers.a, event("conference.participant.joined", {**leg("ws-guest"), **conf}, at(2))
            )
            == "stored"
        )

        update = await next_message(ws, "update")
        while update["version"] <= snapshot["version"]:  # the creation's own update, late: the page ignores it
            update = await next_message(ws, "update")
        assert update["conference_id"] == conference_id
        assert update["version"] == snapshot["version"] + 1
        assert list(update["rows"]) == ["v3:ws-guest"]
        assert update["announce"] == ["Leg …-guest joined"]

        # Presence lives in the database: someone opening the conference on worker A shows on B.
        other, _ = await open_live_view(session, workers.a, conference_id, session_cookie(workers.a, "observer"))
        while (await next_message(ws, "presence"))["viewers"] != ["moderator", "observer"]:
            pass
        await other.close()
        await ws.close()


async def test_the_same_event_delivered_to_both_workers_at_once_has_one_effect(workers):
    run = uuid.uuid4().hex[:8]
    conference_id = f"conf-dup-{run}"
    conf = {"conference_id": conference_id, "connection_id": "conn-1"}
    names = [f"{run}-{n}" for n in ("alice", "bob", "carol")]
    alice, bob, carol = (f"v3:{n}" for n in names)
    life = [event("conference.created", {**leg(names[0]), **conf}, at(0), occurred_in_payload=True)]
    life += [event("conference.participant.joined", {**leg(n), **conf}, at(1 + i)) for i, n in enumerate(names)]
    # The floor goes alice (10 s), bob (5 s), carol (7 s), then alice again until the conference ends.
    for name, second in ((names[0], 10), (names[1], 20), (names[2], 25), (names[0], 32)):
        life.append(event("conference.floor.changed", {**leg(name), **conf}, at(second), occurred_in_payload=True))
    life += [event("conference.participant.left", {**leg(n), **conf}, at(40 + i)) for i, n in enumerate(names[1:])]
    life.append(
        event("conference.ended", {**leg(names[0]), **conf, "reason": "host_left"}, at(50), occurred_in_payload=True)
    )
    cookie = session_cookie(workers.a)

    async with aiohttp.ClientSession() as session:

        async def both_at_once(document: dict) -> list[str]:
            body = encode(document)
            headers = sign(body)
            answers = await asyncio.gather(
                post(session, workers.a, body, headers), post(session, workers.b, body, headers)
            )
            assert [status for status, _ in answers] == [200, 200], answers
            return sorted(answer["status"] for _, answer in answers)

        assert await both_at_once(life[0]) == ["duplicate", "stored"]
        workers.applied([life[0]["data"]["id"]])
        sockets = [await open_live_view(session, server, conference_id, cookie) for server in (workers.a, workers.b)]
        for document in life[1:]:
            assert await both_at_once(document) == ["duplicate", "stored"], document["data"]["event_type"]

        workers.applied([d["data"]["id"] for d in life])
        final = api_conference(workers.b, conference_id)
        for ws, snapshot in sockets:
            latest, updates = await updates_until_version(ws, snapshot["version"])
            # Each socket got every committed change once: no update twice, none lost.
            versions = sorted(v for u in updates for v in range(u["since"], u["version"] + 1))
            assert versions == list(range(snapshot["version"] + 1, latest + 1))
            announced = [text for u in updates for text in u["announce"]]
            assert sorted(announced) == sorted(
                [f"Leg …{c[-6:]} joined" for c in (alice, bob, carol)] + [f"Leg …{c[-6:]} left" for c in (bob, carol)]
            )
            await ws.close()

    assert workers.webhook_rows([d["data"]["id"] for d in life]) == {d["data"]["id"]: 1 for d in life}
    assert final["status"] == "completed"
    talk = {p["call_control_id"]: p["talk_seconds"] for p in final["participants"]}
    # alice 10→20 and 32→50 (the end), bob 20→25, carol 25→32: counted once, not twice.
    assert talk == {alice: 28.0, bob: 5.0, carol: 7.0}
    assert {p["call_control_id"]: p["status"] for p in final["participants"]} == dict.fromkeys(
        (alice, bob, carol), "left"
    )


def life_of(run: str, conference_id: str) -> list[dict]:
    """One conference, and the call legs around it: hung up after it ended."""
    names = [f"{run}-{n}" for n in ("alice", "bob", "carol", "dave")]
    events = [
        event(
            "call.initiated",
            {**leg(n), "from": f"+1555000{i}", "to": "+15550100", "direction": "incoming"},
            at(0.01 + i / 1000),
        )
        for i, n in enumerate(names)
    ]
    events += [event("call.answered", {**leg(n)}, at(0.05 + i / 1000)) for i, n in enumerate(names)]
    events += conference_life(conference_id, names)
    events += [
        event("call.hangup", {**leg(n), "hangup_cause": "normal_clearing"}, at(30 + i)) for i, n in enumerate(names)
    ]
    return events


def comparable(conference: dict, run: str) -> str:
    conference = {**conference, "participants": sorted(conference["participants"], key=lambda p: p["call_control_id"])}
    return json.dumps(conference, sort_keys=True).replace(run, "RUN")


# SCALE_ROUNDS=20 for a longer stress run.
@pytest.mark.parametrize("seed", range(1, 1 + int(os.environ.get("SCALE_ROUNDS", "3"))))
async def test_a_shuffled_life_split_across_both_workers_ends_in_the_in_order_state(workers, seed):
    rng = random.Random(seed)
    shuffled_run, in_order_run = f"s{seed}{uuid.uuid4().hex[:6]}", f"o{seed}{uuid.uuid4().hex[:6]}"
    # Two conferences at once, so the workers contend for locks on more than one conference.
    shuffled_lives = [life_of(f"{shuffled_run}{i}", f"conf-{shuffled_run}{i}") for i in range(2)]
    in_order_life = life_of(in_order_run + "0", f"conf-{in_order_run}0")

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as session:
        for document in in_order_life:  # one at a time: each is stored before the next is sent
            await deliver(session, workers.a if rng.random() < 0.5 else workers.b, document)

        deliveries = [d for life in shuffled_lives for d in life]
        deliveries += rng.choices(deliveries, k=len(deliveries) // 3)  # Telnyx redelivers some
        rng.shuffle(deliveries)
        outcomes = await asyncio.gather(*(deliver(session, rng.choice([workers.a, workers.b]), d) for d in deliveries))
    assert outcomes.count("stored") == len({d["data"]["id"] for d in deliveries})
    assert outcomes.count("duplicate") == len(deliveries) - outcomes.count("stored")
    # Both workers' appliers took part: each applies what either stored, one conference at a time.
    applied_by = workers.applied([d["data"]["id"] for d in deliveries + in_order_life])
    assert len(set(applied_by.values())) == 2, set(applied_by.values())

    expected = comparable(api_conference(workers.a, f"conf-{in_order_run}0"), in_order_run + "0")
    assert json.loads(expected)["status"] == "completed"
    assert len(json.loads(expected)["participants"]) == 4
    for i in range(2):
        run = f"{shuffled_run}{i}"
        assert comparable(api_conference(workers.b, f"conf-{run}"), run) == expected
