"""Webhook delivery like Telnyx's: signed, asynchronous, retried with backoff, then the failover URL.

Optional disorder (events held for up to ``shuffle_window`` seconds and sent in random order) and
duplication (``duplicate_rate``) let tests show that the dashboard copes with what Telnyx may do.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from nacl.signing import SigningKey

from moderator.simulator.state import iso, now

logger = logging.getLogger(__name__)


@dataclass
class Delivery:
    event_id: str
    event_type: str
    payload: dict[str, Any]
    occurred_at: str
    attempts: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = "pending"  # pending / delivered / failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.event_id,
            "event_type": self.event_type,
            "outcome": self.outcome,
            "attempts": self.attempts,
            "occurred_at": self.occurred_at,
        }


@dataclass
class DeliveryOptions:
    webhook_url: str | None
    failover_url: str | None = None
    timeout: float = 2.0  # Telnyx waits about 2 s for a 2xx
    attempts: int = 3
    backoff: float = 1.0  # seconds before the 2nd attempt, doubling
    shuffle_window: float = 0.0
    duplicate_rate: float = 0.0
    seed: int | None = None


class WebhookSender:
    def __init__(self, key: SigningKey, options: DeliveryOptions):
        self.key = key
        self.options = options
        self.random = random.Random(options.seed)
        self.deliveries: list[Delivery] = []
        self._held: list[Delivery] = []
        self._tasks: set[asyncio.Task] = set()
        self._session: aiohttp.ClientSession | None = None

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.key.sign(ts.encode() + b"|" + body).signature
        return {
            "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
            "telnyx-timestamp": ts,
            "content-type": "application/json",
        }

    def emit(self, event_type: str, payload: dict[str, Any]) -> None:
        """Called by the state machine (in the event loop) for every change Telnyx would report."""
        occurred_at = payload.get("occurred_at") or iso(now())
        delivery = Delivery(str(uuid.uuid4()), event_type, payload, occurred_at)
        self.deliveries.append(delivery)
        if not self.options.webhook_url:
            delivery.outcome = "not sent (no webhook URL)"
            return
        if self.options.shuffle_window > 0:
            self._held.append(delivery)
            if len(self._held) == 1:
                self._spawn(self._release_held())
        else:
            self._spawn(self._deliver(delivery))
        if self.options.duplicate_rate and self.random.random() < self.options.duplicate_rate:
            self._spawn(self._deliver(delivery, duplicate=True))

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _release_held(self) -> None:
        await asyncio.sleep(self.random.uniform(0, self.options.shuffle_window))
        held, self._held = self._held, []
        self.random.shuffle(held)
        for delivery in held:
            self._spawn(self._deliver(delivery))

    def envelope(self, delivery: Delivery, attempt: int, url: str) -> bytes:
        data: dict[str, Any] = {
            "record_type": "event",
            "event_type": delivery.event_type,
            "id": delivery.event_id,
            "occurred_at": delivery.occurred_at,
            "payload": delivery.payload,
        }
        return json.dumps({"data": data, "meta": {"attempt": attempt, "delivered_to": url}}).encode()

    async def _post(self, url: str, delivery: Delivery, attempt: int) -> bool:
        body = self.envelope(delivery, attempt, url)
        record: dict[str, Any] = {"attempt": attempt, "url": url, "at": iso(now())}
        delivery.attempts.append(record)
        try:
            if self._session is None or self._session.closed:
                self._session = aiohttp.ClientSession()
            async with self._session.post(
                url,
                data=body,
                headers=self.sign(body),
                timeout=aiohttp.ClientTimeout(total=self.options.timeout),
            ) as response:
                record["status"] = response.status
                return 200 <= response.status < 300
        except TimeoutError:
            record["error"] = "timeout"
        except aiohttp.ClientError as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
        return False

    async def _deliver(self, delivery: Delivery, duplicate: bool = False) -> None:
        attempt = 0
        for url in filter(None, (self.options.webhook_url, self.options.failover_url)):
            for round_ in range(self.options.attempts):
                if round_:
                    await asyncio.sleep(self.options.backoff * 2 ** (round_ - 1))
                attempt += 1
                if await self._post(url, delivery, attempt):
                    delivery.outcome = "delivered"
                    return
        if not duplicate and delivery.outcome != "delivered":
            delivery.outcome = "failed"
            logger.warning("webhook %s (%s) could not be delivered", delivery.event_id, delivery.event_type)

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until every delivery has finished (tests)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while (self._tasks or self._held) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()
