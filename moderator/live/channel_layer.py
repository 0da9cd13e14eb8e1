"""The in-memory channel layer (one process, no Redis) without its per-message costs that grow with the
number of sockets.

Channels' InMemoryChannelLayer scans every channel and every group membership for expired messages on
each ``receive`` and ``group_send``: with n sockets on a conference, one broadcast costs O(n²). It also
deep-copies the message and starts a task per member. Here the scan runs at most once a second, and a
message whose values are all immutable (our broadcasts: a type and a pre-serialized text) is copied
shallowly and queued directly. Semantics are the same: per-channel capacity (a full channel drops
the message, as before), message expiry, group expiry.

Direct delivery: a consumer in this process may join a group with `group_add_direct`, giving a
coroutine that takes the message. Group messages then skip the channel's queue and the consumer's
receive loop (a task wake-up and a dispatch per socket per message): one delivery task per event loop
hands each message to every direct member in turn, in the order the messages were sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from copy import deepcopy

from channels.layers import InMemoryChannelLayer as BaseInMemoryChannelLayer

logger = logging.getLogger(__name__)

IMMUTABLE = (str, bytes, int, float, bool, type(None))
CLEAN_EVERY_SECONDS = 1.0
Deliver = Callable[[dict], Awaitable[None]]


class InMemoryChannelLayer(BaseInMemoryChannelLayer):
    _cleaned_at = 0.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.direct: dict[str, Deliver] = {}
        # Per event loop: the messages waiting for direct delivery, and the task delivering them.
        self._outboxes: dict[asyncio.AbstractEventLoop, tuple[deque, asyncio.Task | None]] = {}

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._cleaned_at < CLEAN_EVERY_SECONDS:
            return
        self._cleaned_at = now
        super()._clean_expired()

    def has_members(self, group: str) -> bool:
        """Whether a consumer of this process is in `group`: the broadcasts render nothing for an empty one.
        Safe from another thread (one dict read)."""
        return bool(self.groups.get(group))

    async def group_add_direct(self, group: str, channel: str, deliver: Deliver) -> None:
        await self.group_add(group, channel)
        self.direct[channel] = deliver

    async def group_discard(self, group: str, channel: str) -> None:
        await super().group_discard(group, channel)
        if channel in self.direct and not any(channel in members for members in self.groups.values()):
            del self.direct[channel]

    async def flush(self) -> None:
        await super().flush()
        self.direct = {}

    async def group_send(self, group: str, message: dict) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        members = list(self.groups.get(group, ()))
        if not members:
            return
        flat = all(isinstance(value, IMMUTABLE) for value in message.values())
        expires = time.time() + self.expiry
        direct: list[Deliver] = []
        for channel in members:
            deliver = self.direct.get(channel)
            if deliver is not None:
                direct.append(deliver)
                continue
            queue = self.channels.get(channel)
            if queue is None:
                queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
            try:
                queue.put_nowait((expires, dict(message) if flat else deepcopy(message)))
            except asyncio.QueueFull:
                pass  # as the base layer: a full channel misses this group message (ChannelFull)
        if direct:
            self._post(direct, message, flat)

    def _post(self, direct: list[Deliver], message: dict, flat: bool) -> None:
        loop = asyncio.get_running_loop()
        outbox, task = self._outboxes.get(loop, (deque(), None))
        outbox.append((direct, message, flat))
        if task is None or task.done():
            task = loop.create_task(self._deliver(outbox))
        self._outboxes = {lp: entry for lp, entry in self._outboxes.items() if not lp.is_closed()}
        self._outboxes[loop] = (outbox, task)

    @staticmethod
    async def _deliver(outbox: deque) -> None:
        while outbox:
            direct, message, flat = outbox.popleft()
            for deliver in direct:
                try:
                    await deliver(dict(message) if flat else deepcopy(message))
                except Exception:  # noqa: BLE001 - one socket's failure must not cost the others their message
                    logger.exception("direct delivery failed")
