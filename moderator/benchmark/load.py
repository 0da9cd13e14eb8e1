"""The load generator: aiohttp webhook senders and websocket clients, all in the benchmark's own process.

Times are taken with ``time.monotonic()`` in this process: a latency includes the client's own queueing
(the event loop reading many sockets in turn), so the figures are upper bounds of the server's.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

POOL = 32
MARKER = re.compile(r"bench-(\d+)-")
CAPTION_MARKER = re.compile(r"said-(\d+)-")
ROW = re.compile(r'<tr class="leg [^"]*" data-call-control-id="([^"]+)"')
Signed = tuple[bytes, dict[str, str]]


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def settle_memory() -> None:
    """Before a measurement: what this process holds so far (tens of thousands of signed requests, earlier
    phases' clients) is collected or frozen, so that a full collection of it never pauses the generator
    mid-measurement; such a pause would count as the server's latency (it delays every request due then)."""
    gc.collect()
    gc.freeze()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def http_session(limit: int = POOL) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, force_close=False),
        timeout=aiohttp.ClientTimeout(total=600),  # an overloaded server queues requests for a long time
    )


async def post(session: aiohttp.ClientSession, url: str, signed: Signed) -> int:
    raw, headers = signed
    async with session.post(url, data=raw, headers=headers) as response:
        await response.read()
        return response.status


async def post_all(url: str, requests: Sequence[Signed], concurrency: int = 8) -> list[int]:
    """Send every request, `concurrency` at a time; return their statuses in order."""
    statuses = [0] * len(requests)
    cursor = iter(range(len(requests)))
    async with http_session() as session:

        async def worker() -> None:
            for index in cursor:
                statuses[index] = await post(session, url, requests[index])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


@dataclass
class Saturation:
    sent: int
    seconds: float
    errors: int
    client_cpu: float

    @property
    def per_s(self) -> float:
        return self.sent / self.seconds


async def saturate(url: str, requests: Sequence[Signed], duration: float, concurrency: int = POOL) -> Saturation:
    """Closed loop: `concurrency` senders post back to back for `duration` seconds (or until the
    requests run out); events/s is what the server answered 2xx."""
    settle_memory()
    async with http_session(concurrency) as session:
        for signed in requests[:concurrency]:  # warm the pool: connections open, code paths loaded
            await post(session, url, signed)
        cursor = iter(range(concurrency, len(requests)))
        ok = errors = 0
        started, cpu = time.monotonic(), cpu_seconds()
        deadline = started + duration

        async def worker() -> None:
            nonlocal ok, errors
            for index in cursor:
                if time.monotonic() >= deadline:
                    return
                if await post(session, url, requests[index]) == 200:
                    ok += 1
                else:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return Saturation(ok, time.monotonic() - started, errors, cpu_seconds() - cpu)


async def paced(url: str, requests: Sequence[Signed], rate: float) -> tuple[list[float], int, float]:
    """Open loop: request i is due at start + i/rate whatever the server does; its latency runs from
    when it was due (no coordinated omission). Returns latencies in ms, the count of non-2xx and the
    start (request i was due at start + i/rate)."""
    latencies: list[float] = []
    errors = 0
    settle_memory()
    async with http_session() as session:
        start = time.monotonic() + 0.05

        async def one(signed: Signed, due: float) -> None:
            nonlocal errors
            try:
                status = await post(session, url, signed)
            except (TimeoutError, aiohttp.ClientError):
                status = 0  # not acknowledged: the sender (Telnyx) would deliver it again
            latencies.append((time.monotonic() - due) * 1000)
            errors += status != 200

        tasks = []
        for i, signed in enumerate(requests):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(signed, due)))
        await asyncio.gather(*tasks)
    return latencies, errors, start


@dataclass
class LiveClient:
    """One browser tab's websocket on a conference's live view."""

    url: str
    session_key: str
    track_state: bool = False
    ws: aiohttp.ClientWebSocketResponse | None = None
    arrivals: dict[int, float] = field(default_factory=dict)
    caption_arrivals: dict[int, float] = field(default_factory=dict)  # markers of caption lines, when first seen
    updates: int = 0
    update_bytes: int = 0
    version: int = 0
    rows: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    gaps: int = 0
    snapshots: int = 0

    async def connect(self, session: aiohttp.ClientSession, origin: str) -> None:
        self.ws = await session.ws_connect(
            self.url, headers={"Origin": origin, "Cookie": f"sessionid={self.session_key}"}, max_msg_size=0
        )
        while True:  # the snapshot comes right after the accept (presence may come first)
            text = (await self.ws.receive()).data
            if not isinstance(text, str):
                raise RuntimeError(f"websocket {self.url} closed before its snapshot: {text}")
            if text.startswith('{"type":"snapshot"'):
                self.apply_snapshot(json.loads(text))
                return  # (the parts of a long roster follow: `read` takes them)

    def apply_snapshot(self, message: dict) -> None:
        self.snapshots += 1
        self.version = message["version"]
        self.summary = message["summary"]
        self.rows = split_rows(message["rows"])

    async def read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            text = msg.data
            if text.startswith('{"type":"update"'):
                now = time.monotonic()
                self.updates += 1
                self.update_bytes += len(text)
                for marker in MARKER.findall(text):
                    self.arrivals.setdefault(int(marker), now)
                if self.track_state:
                    await self.apply_update(json.loads(text))
            elif text.startswith('{"type":"captions"'):
                now = time.monotonic()
                for marker in CAPTION_MARKER.findall(text):
                    self.caption_arrivals.setdefault(int(marker), now)
            elif self.track_state and text.startswith('{"type":"snapshot"'):
                self.apply_snapshot(json.loads(text))
            elif self.track_state and text.startswith('{"type":"rows"'):
                self.apply_rows(json.loads(text))

    def apply_rows(self, message: dict) -> None:
        """The rest of a long roster's snapshot (it comes in parts)."""
        if message["version"] == self.version:
            self.rows.update(split_rows(message["html"]))

    async def apply_update(self, message: dict) -> None:
        """What the page does (static/moderator/live.js): apply the next version, resync on a gap."""
        if message["version"] <= self.version:
            return
        if message.get("since", message["version"]) > self.version + 1:
            self.gaps += 1
            await self.ws.send_str('{"type":"resync"}')
            return
        self.version = message["version"]
        self.summary = message["summary"]
        if message.get("refresh"):  # most rows changed: the page takes a snapshot instead
            await self.ws.send_str('{"type":"resync"}')
        for ccid, html in message["rows"].items():
            self.rows[ccid] = html.strip()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


def split_rows(html: str) -> dict[str, str]:
    starts = [m.start() for m in ROW.finditer(html)] + [len(html)]
    return {ROW.match(html, a).group(1): html[a:b].strip() for a, b in zip(starts, starts[1:], strict=False)}


class BoardWatcher:
    """The board open in one tab for the length of a phase: the product then renders every changed conference's
    card and sends it. Counts the cards it was sent."""

    def __init__(self, base_url: str, session_key: str):
        self.base_url, self.session_key = base_url, session_key
        self.cards = 0

    async def __aenter__(self) -> BoardWatcher:
        self.http = aiohttp.ClientSession()
        self.ws = await self.http.ws_connect(
            self.base_url.replace("http://", "ws://") + "/ws/board/",
            headers={"Origin": self.base_url, "Cookie": f"sessionid={self.session_key}"}, max_msg_size=0,
        )
        self.reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT and msg.data.startswith('{"type":"conference"'):
                self.cards += 1

    async def __aexit__(self, *exc) -> None:
        await self.ws.close()
        self.reader.cancel()
        await asyncio.gather(self.reader, return_exceptions=True)
        await self.http.close()


class Crowd:
    """Many websocket clients on live views, connected through one session without a pool limit."""

    def __init__(self, base_url: str, session_key: str):
        self.base_url = base_url
        self.ws_base = base_url.replace("http://", "ws://")
        self.session_key = session_key
        self.clients: list[LiveClient] = []
        self.readers: list[asyncio.Task] = []
        self.http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Crowd:
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self

    async def add(self, conference_ids: Sequence[str], count: int, track_state: bool = False) -> list[LiveClient]:
        new = [
            LiveClient(f"{self.ws_base}/ws/conferences/{conference_ids[i % len(conference_ids)]}/",
                       self.session_key, track_state)
            for i in range(count)
        ]
        gate = asyncio.Semaphore(16)

        async def connect(client: LiveClient) -> None:
            async with gate:
                await client.connect(self.http, self.base_url)
            self.readers.append(asyncio.create_task(client.read()))

        await asyncio.gather(*(connect(c) for c in new))
        self.clients.extend(new)
        return new

    async def __aexit__(self, *exc) -> None:
        await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        await self.http.close()


async def wait_for(predicate, timeout: float, step: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()
