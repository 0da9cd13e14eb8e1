"""Run the simulator in a background thread on a free port: for tests and the benchmark."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web

from moderator.simulator.keys import DEFAULT_API_KEY, public_key_b64, signing_key
from moderator.simulator.server import REQUESTS, SENDER, STATE, build
from moderator.simulator.webhooks import Delivery


class SimulatorHandle:
    def __init__(
        self, app: web.Application, loop: asyncio.AbstractEventLoop, port: int, api_key: str, public_key: str
    ):
        self.app, self.loop, self.port = app, loop, port
        self.url = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.url}/v2"
        self.api_key = api_key
        self.public_key = public_key

    @property
    def state(self):
        return self.app[STATE]

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def call(self, from_number: str = "+15550001", to_number: str = "+15550100") -> dict[str, Any]:
        return self.request("POST", "/sim/calls", {"from": from_number, "to": to_number})

    def inbound(self, from_number: str, to_number: str, caller_id_name: str = "") -> dict[str, Any]:
        body = {"from": from_number, "to": to_number, **({"caller_id_name": caller_id_name} if caller_id_name else {})}
        return self.request("POST", "/sim/calls/inbound", body)

    def hangup(self, call_control_id: str) -> Any:
        return self.request("POST", f"/sim/calls/{call_control_id}/hangup", {})

    def talk(self, call_control_id: str) -> Any:
        return self.request("POST", f"/sim/calls/{call_control_id}/talk", {})

    def press(self, call_control_id: str, digits: str) -> Any:
        return self.request("POST", f"/sim/calls/{call_control_id}/dtmf", {"digits": digits})

    def say(self, call_control_id: str, text: str, **options: Any) -> Any:
        """The caller says `text` (options: confidence, track): call.transcription webhooks if it is transcribed."""
        return self.request("POST", f"/sim/calls/{call_control_id}/say", {"text": text, **options})

    def fault(self, path: str, **options: Any) -> Any:
        return self.request("POST", "/sim/faults", {"path": path, **options})

    def sim_state(self) -> dict[str, Any]:
        return self.request("GET", "/sim/state")

    def requests_to(self, path_suffix: str) -> list[dict[str, Any]]:
        return [r for r in self.sim_state()["requests"] if r["path"].endswith(path_suffix)]

    def _on_loop(self, read: Callable[[], Any]) -> Any:
        """`read()` run on the simulator's loop (its state changes there), for reads too large for /sim/state."""

        async def run() -> Any:
            return read()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def deliveries(self) -> list[Delivery]:
        """Every webhook the simulator sent or is sending, with its attempts."""
        return self._on_loop(lambda: list(self.app[SENDER].deliveries))

    def state_requests(self) -> list[dict[str, Any]]:
        """Every request to Telnyx's API, in order (as /sim/state's "requests")."""
        return self._on_loop(lambda: list(self.app[REQUESTS]))

    def members(self, name: str) -> list[str]:
        """The call control ids in the live conference called `name` (none if there is none)."""

        def read() -> list[str]:
            live = [c for c in self.state.conferences.values() if c.name == name and c.status != "completed"]
            return [p.call.call_control_id for c in live for p in c.joined()]

        return self._on_loop(read)

    def wait_for_webhooks(self, timeout: float = 10.0) -> None:
        """Block until every webhook emitted so far has been delivered or given up."""
        asyncio.run_coroutine_threadsafe(self.app[SENDER].idle(timeout), self.loop).result(timeout + 1)


@contextlib.contextmanager
def running_simulator(
    webhook_url: str | None = None,
    *,
    api_key: str = DEFAULT_API_KEY,
    seed_b64: str | None = None,
    **options: Any,
) -> Iterator[SimulatorHandle]:
    """Start a simulator; options are those of `server.build` (timeout, attempts, backoff, media_seconds, ...)."""
    key = signing_key(seed_b64)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def start() -> None:
        app = build(webhook_url, key=key, api_key=api_key, **options)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder.update(app=app, runner=runner, port=site._server.sockets[0].getsockname()[1])

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="telnyx-simulator", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the simulator did not start")
    handle = SimulatorHandle(holder["app"], loop, holder["port"], api_key, public_key_b64(key))
    try:
        yield handle
    finally:
        asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
