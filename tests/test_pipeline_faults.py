"""What the pipeline promises when things break, with real processes: a worker killed (kill -9) at any step of
a burst loses no acknowledged event, applies each once, sends each planned Telnyx command once, and every
open page converges after it reconnects; a locked database is answered 503 at once, not after minutes."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from pathlib import Path

import aiohttp
import pytest

from tests.fixtures_live_server import LiveServer, eventually, simulator_stack
from tests.lives import IN_ORDER, store_and_apply
from tests.telnyx_events import at, conference_life, encode, event, leg, sign

pytestmark = pytest.mark.slow

WAIT = 60.0  # seconds for what must happen eventually here (a restart, a burst on a slow CI machine)


def database(server: LiveServer) -> Path:
    return Path(server.env["DATABASE_URL"].removeprefix("sqlite:///"))


def event_statuses(server: LiveServer) -> dict[str, str]:
    with sqlite3.connect(database(server), timeout=30) as connection:
        return dict(connection.execute("SELECT event_id, status FROM moderator_webhookevent"))


# --- a locked database --------------------------------------------------------------------------------------


def test_a_locked_database_is_answered_503_at_once_and_the_event_applied_once_it_is_free(tmp_path):
    server = LiveServer(tmp_path)
    server.prepare()
    server.start()
    try:
        created = encode(event("conference.created", {**leg("a"), "conference_id": "conf-locked"}, at(1)))
        lock = sqlite3.connect(database(server), isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # another process holds the write lock (a long migration, a backup)
        with aiohttp_session() as post:
            started = time.monotonic()
            status, _ = post(server, created)
            waited = time.monotonic() - started
        health = status_of(server, "/healthz")
        lock.execute("ROLLBACK")
        lock.close()
        # Telnyx gives up after about 2 s: the inbox waits 1.5 s at most, not SQLite's 20 s or minutes of retries.
        assert status == 503 and waited < 5, (status, waited)
        assert health == 503

        with aiohttp_session() as post:
            # Telnyx delivers it again. (The refused attempt may still have committed once the lock was free:
            # then this one is a duplicate. Either way it is stored once.)
            status, answer = post(server, created)
            assert status == 200 and answer["status"] in ("stored", "duplicate")
        eventually(lambda: event_statuses(server) == {json.loads(created)["data"]["id"]: "applied"}, "applied", WAIT)
        assert status_of(server, "/healthz") == 200
    finally:
        server.stop()


class aiohttp_session:
    """A tiny synchronous webhook poster for the tests that need one request at a time."""

    def __enter__(self):
        self.loop = asyncio.new_event_loop()
        self.session = self.loop.run_until_complete(_session())
        return self.post

    def post(self, server: LiveServer, body: bytes) -> tuple[int, dict]:
        return self.loop.run_until_complete(_post(self.session, server, body))

    def __exit__(self, *exc):
        self.loop.run_until_complete(self.session.close())
        self.loop.close()


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))


async def _post(session: aiohttp.ClientSession, server: LiveServer, body: bytes) -> tuple[int, dict]:
    async with session.post(f"{server.url}/webhooks/telnyx", data=body, headers=sign(body)) as response:
        return response.status, await response.json()


def status_of(server: LiveServer, path: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{server.url}{path}", timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


# --- kill -9 during a burst ---------------------------------------------------------------------------------

BURST = IN_ORDER + [e for i in range(6) for e in conference_life(f"conf-burst-{i}", [f"b{i}x", f"b{i}y", f"b{i}z"])]
WATCHED = "conf-a"  # the conference a page keeps open through the crash


class Telnyx:
    """Delivers a burst the way Telnyx does: concurrently, again until a 2xx, whatever happens to the worker."""

    def __init__(self, server: LiveServer, documents: list[dict]):
        self.server = server
        self.bodies = [encode(d) for d in documents]
        self.acknowledged: set[int] = set()

    async def deliver(self, concurrency: int = 16) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(len(self.bodies)):
            queue.put_nowait(index)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:

            async def sender() -> None:
                while not queue.empty():
                    index = queue.get_nowait()
                    while True:
                        try:
                            status, _ = await _post(session, self.server, self.bodies[index])
                        except (aiohttp.ClientError, TimeoutError):
                            status = 0  # the worker is down: Telnyx retries later
                        if status == 200:
                            self.acknowledged.add(index)
                            break
                        await asyncio.sleep(0.2)

            await asyncio.gather(*(sender() for _ in range(concurrency)))


class Page:
    """A live view as the page's script keeps it: a snapshot, then updates in version order; on a gap it asks
    for a snapshot; when the socket drops it reconnects (and gets a snapshot)."""

    ROW = re.compile(r'(<tr class="leg[^"]*" data-call-control-id="([^"]+)".*?</tr>)', re.S)

    def __init__(self, server: LiveServer, cookie: str, conference_id: str):
        self.server, self.cookie, self.conference_id = server, cookie, conference_id
        self.version = -1
        self.rows: dict[str, str] = {}
        self.summary = ""
        self.reconnects = 0

    async def follow(self) -> None:
        """Until cancelled."""
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.ws_connect(
                        f"ws://127.0.0.1:{self.server.port}/ws/conferences/{self.conference_id}/",
                        headers={"Cookie": f"sessionid={self.cookie}", "Origin": self.server.url},
                    ) as ws:
                        async for message in ws:
                            await self.take(ws, json.loads(message.data))
                except (aiohttp.ClientError, OSError):
                    pass
                self.reconnects += 1
                await asyncio.sleep(0.2)

    async def take(self, ws, message: dict) -> None:
        if message["type"] == "snapshot":
            self.version = message["version"]
            self.rows = {ccid: html for html, ccid in self.ROW.findall(message["rows"])}
            self.summary = message["summary"]
        elif message["type"] == "rows" and message["version"] == self.version:  # a long roster's other parts
            self.rows.update({ccid: html for html, ccid in self.ROW.findall(message["html"])})
        elif message["type"] == "update" and message["version"] > self.version:
            if message["since"] > self.version + 1 or message.get("refresh"):
                await ws.send_json({"type": "resync"})  # a gap (or most rows changed): a fresh snapshot
                return
            self.version = message["version"]
            self.rows.update({ccid: html.strip() for ccid, html in message["rows"].items()})
            self.summary = message["summary"] or self.summary


async def fresh_page(server: LiveServer, cookie: str, conference_id: str) -> Page:
    page = Page(server, cookie, conference_id)
    async with aiohttp.ClientSession() as session, session.ws_connect(
        f"ws://127.0.0.1:{server.port}/ws/conferences/{conference_id}/",
        headers={"Cookie": f"sessionid={cookie}", "Origin": server.url},
    ) as ws:
        while page.version < 0:
            await page.take(ws, json.loads((await ws.receive()).data))
    return page


def wait_for_crash(server: LiveServer) -> None:
    eventually(lambda: server.process.poll() is not None, "the worker kills itself at its crash point", WAIT)
    assert server.process.returncode == -9


# Where a worker dies, and the how-manieth time it passes there.
CRASHES = {
    "in the request, before the inbox stored it": "inbox-received:60",
    "after the inbox commit, before the answer": "inbox-committed:5",  # the 5th batch stored
    "after the applier's commit, before the broadcast": "applier-committed:3",
}


@pytest.fixture
def reference(moderator_client):
    """The state of in-order delivery, in this process: what every conference must look like in the end."""
    store_and_apply(BURST)

    def of(conference_id: str) -> dict:
        return comparable(moderator_client.get(f"/api/conferences/{conference_id}").json())

    return of


def comparable(conference: dict) -> dict:
    # A conference whose conference.created never came starts when first seen: this server's clock.
    return {**conference, "started_at": conference["started_at"] if conference["created_at"] else "first seen"}


@pytest.mark.parametrize("where", CRASHES)
def test_a_worker_killed_during_a_burst_loses_nothing_and_applies_everything_once(tmp_path, where, reference):
    server = LiveServer(tmp_path, {"MODERATOR_CRASH_AT": CRASHES[where]})
    server.prepare()
    # The watched conference exists before the burst, so a page can have it open.
    server.env.pop("MODERATOR_CRASH_AT")
    server.start()
    with aiohttp_session() as post:
        assert post(server, encode(IN_ORDER[0]))[0] == 200
    eventually(lambda: "applied" in event_statuses(server).values(), "the first event applied", WAIT)
    server.stop()
    server.env["MODERATOR_CRASH_AT"] = CRASHES[where]
    server.start()
    cookie = server.client().cookies["sessionid"]
    telnyx = Telnyx(server, BURST)
    page = Page(server, cookie, WATCHED)

    async def burst_and_restart() -> None:
        following = asyncio.ensure_future(page.follow())
        delivering = asyncio.ensure_future(telnyx.deliver())
        await asyncio.get_running_loop().run_in_executor(None, wait_for_crash, server)
        server.env.pop("MODERATOR_CRASH_AT")
        server.start()
        await delivering
        await asyncio.get_running_loop().run_in_executor(None, lambda: eventually(
            lambda: set(event_statuses(server).values()) == {"applied"}, "every stored event applied", WAIT))
        await asyncio.sleep(1.0)  # the last broadcasts reach the page
        following.cancel()

    try:
        asyncio.run(burst_and_restart())
        statuses = event_statuses(server)
        # Every event acknowledged, stored once, applied once (the status moves in the applying transaction).
        assert len(telnyx.acknowledged) == len(BURST)
        assert sorted(statuses) == sorted({d["data"]["id"] for d in BURST})
        assert set(statuses.values()) == {"applied"}
        client = server.client()
        for conference_id in ["conf-a", "conf-b", "conf-c"] + [f"conf-burst-{i}" for i in range(6)]:
            assert comparable(client.get(f"/api/conferences/{conference_id}").json()) == reference(conference_id)
        client.close()
        # The page that stayed open (and reconnected) shows what a page opened now shows.
        assert page.reconnects >= 1
        fresh = asyncio.run(fresh_page(server, cookie, WATCHED))
        assert page.version == fresh.version
        assert page.rows == fresh.rows and page.summary == fresh.summary
    finally:
        server.stop()


# --- kill -9 between deciding a Telnyx command and sending it ---------------------------------------------------

ROOM = "+15550100"


def make_room(server: LiveServer) -> None:
    server.manage("rooms", "add", "Crash room", "--number", ROOM, "--waiting-room")


@pytest.mark.parametrize("crash_at", ["applier-committed:2", "outbox-claimed:3"])
def test_a_worker_killed_before_sending_its_commands_sends_each_once_after_the_restart(tmp_path, crash_at):
    env = {"MODERATOR_CRASH_AT": crash_at, "MODERATOR_OUTBOX_LEASE_SECONDS": "2"}
    # Telnyx keeps delivering while the worker is down (8 attempts, from 0.5 s apart).
    with simulator_stack(tmp_path, setup=make_room, env=env, attempts=8, backoff=0.5) as (sim, server):
        callers = [sim.inbound(f"+1555020{i:04d}", ROOM)["call_control_id"] for i in range(20)]
        eventually(lambda: server.process.poll() is not None, "the worker kills itself at its crash point", WAIT)
        server.env.pop("MODERATOR_CRASH_AT")
        server.start()

        def waiting() -> set[str]:
            return {c["call_control_id"] for c in sim.sim_state()["calls"] if c.get("queue")}

        eventually(lambda: waiting() == set(callers), "every caller answered and waiting in the room's queue", WAIT)
        requests = sim.sim_state()["requests"]
        for action in ("answer", "enqueue"):
            # One decision, one command_id: a command in flight when the worker died is sent again after the
            # lease, with its id, and Telnyx does not act on it twice (the simulator de-duplicates too).
            sent = [r for r in requests if r["path"].endswith(f"/actions/{action}")]
            ids = {c: {json.loads(r["body"])["command_id"] for r in sent if f"/calls/{c}/" in r["path"]} for c in callers}
            assert all(len(command_ids) == 1 for command_ids in ids.values()), (action, ids)
        api = server.client()
        queues = api.get("/api/queues").json()["queues"]
        problems = api.get("/").text
        api.close()
        assert {c["call_control_id"] for q in queues for c in q["calls"]} == set(callers)
        assert "Dial-in problems" not in problems  # no command refused (an answer sent twice would be: 90039)
