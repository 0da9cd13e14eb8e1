"""A page that stops reading (a background tab, a bad network) never costs the other pages their updates, and
once too much waits for it (`WS_MAX_UNSENT_BYTES`: what the kernel's buffers hold, and then this) its socket is
closed with 4008 and the page reconnects to a fresh snapshot. (uvicorn: the server that lets the product see
its sockets' buffers; Daphne's Twisted buffers without a bound.)"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.fixtures_live_server import LiveServer
from tests.telnyx_events import at, encode, event, leg, sign

pytestmark = pytest.mark.slow

CONF = {"conference_id": "conf-slow", "connection_id": "conn-1"}
READERS = 99


def uvicorn_server(tmp: Path, max_unsent: str) -> Iterator[LiveServer]:
    live = LiveServer(tmp, {"MODERATOR_WS_MAX_UNSENT_BYTES": max_unsent}, server="uvicorn")
    live.prepare()
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from uvicorn_server(tmp_path_factory.mktemp("slow"), str(1024 * 1024))


@pytest.fixture(scope="module")
def impatient_server(tmp_path_factory):
    """Every byte not taken at once is too much: the first update proves the bound works on this server."""
    yield from uvicorn_server(tmp_path_factory.mktemp("impatient"), "-1")


def stalled_socket(server: LiveServer, cookie: str) -> socket.socket:
    """A websocket that completes its handshake and then reads nothing (a tiny receive buffer, so the server's
    side fills up after a few updates rather than after megabytes of kernel buffers)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(
        (
            f"GET /ws/conferences/{CONF['conference_id']}/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {server.url}\r\nCookie: sessionid={cookie}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def deliver(session: aiohttp.ClientSession, server: LiveServer, document: dict) -> None:
    body = encode(document)
    async with session.post(f"{server.url}/webhooks/telnyx", data=body, headers=sign(body)) as response:
        assert response.status == 200


async def read_until(ws, version: int, seen: list[int]) -> None:
    async for message in ws:
        data = json.loads(message.data)
        if "version" in data:
            seen.append(data["version"])
            if data["version"] >= version:
                return


def test_a_page_that_stops_reading_costs_the_other_pages_nothing(server):
    cookie = server.client().cookies["sessionid"]

    async def scenario() -> tuple[list[list[int]], dict]:
        async with aiohttp.ClientSession(cookies={"sessionid": cookie}) as session:
            await deliver(session, server, event("conference.created", {**leg("host"), **CONF}, at(0)))
            await asyncio.sleep(0.5)  # applied
            readers = [
                await session.ws_connect(f"ws://127.0.0.1:{server.port}/ws/conferences/{CONF['conference_id']}/",
                                         headers={"Origin": server.url})
                for _ in range(READERS)
            ]
            stalled = stalled_socket(server, cookie)
            for i in range(400):  # a leg joins (its row in every update), one after another
                await deliver(session, server, event("conference.participant.joined",
                                                     {**leg(f"guest-{i}"), **CONF}, at(1 + i / 100)))
            await asyncio.sleep(1.0)
            final = await fresh_snapshot(session, server)
            seen: list[list[int]] = [[] for _ in readers]
            await asyncio.wait_for(
                asyncio.gather(*(read_until(ws, final["version"], s) for ws, s in zip(readers, seen, strict=True))),
                30,
            )
            for ws in readers:
                await ws.close()
            stalled.close()
            return seen, final

    seen, final = asyncio.run(scenario())
    # Every reading page got the conference up to its last version, in order, while one page read nothing.
    for versions in seen:
        assert versions[-1] == final["version"] and versions == sorted(versions)
    assert 'data-call-control-id="v3:guest-399"' in final["rows"]


def test_a_page_past_the_bound_is_closed_with_4008_and_reconnects_to_a_snapshot(impatient_server):
    server = impatient_server
    cookie = server.client().cookies["sessionid"]

    async def scenario() -> tuple[int | None, dict]:
        async with aiohttp.ClientSession(cookies={"sessionid": cookie}) as session:
            await deliver(session, server, event("conference.created", {**leg("host"), **CONF}, at(0)))
            await asyncio.sleep(0.5)
            async with session.ws_connect(f"ws://127.0.0.1:{server.port}/ws/conferences/{CONF['conference_id']}/",
                                          headers={"Origin": server.url}) as ws:
                assert json.loads((await ws.receive()).data)["type"] in ("snapshot", "presence")
                await deliver(session, server, event("conference.participant.joined", {**leg("late"), **CONF}, at(1)))
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                code = ws.close_code
            return code, await fresh_snapshot(session, server)

    code, snapshot = asyncio.run(scenario())
    assert code == 4008
    assert 'data-call-control-id="v3:late"' in snapshot["rows"]  # what the page finds when it reconnects


async def fresh_snapshot(session: aiohttp.ClientSession, server: LiveServer) -> dict:
    async with session.ws_connect(f"ws://127.0.0.1:{server.port}/ws/conferences/{CONF['conference_id']}/",
                                  headers={"Origin": server.url}) as ws:
        async for message in ws:
            data = json.loads(message.data)
            if data["type"] == "snapshot":
                # A long roster comes in parts: the rest of its rows follow, before anything else.
                for _ in range(data["parts"] - 1):
                    part = json.loads((await ws.receive()).data)
                    assert (part["type"], part["version"]) == ("rows", data["version"])
                    data["rows"] += part["html"]
                return data
    raise AssertionError("no snapshot")
