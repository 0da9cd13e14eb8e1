"""The in-memory channel layer (one process, no Redis) without its per-message costs that grow with the
number of sockets.

Channels' InMemoryChannelLayer scans every channel and every group membership for expired messages on
each ``receive`` and ``group_send``: with n sockets on a conference, one broadcast costs O(n²). It also
deep-copies the message and starts a task per member. Here the scan runs at most once a second, and a
message whose values are all immutable (our broadcasts: a type and a pre-serialized text) is copied
shallowly and queued directly. Semantics are the same: per-channel capacity (a full channel drops
the message, as before), message expiry, group expiry.
"""

from __future__ import annotations

import asyncio
import time
from copy import deepcopy

from channels.layers import InMemoryChannelLayer as BaseInMemoryChannelLayer

IMMUTABLE = (str, bytes, int, float, bool, type(None))
CLEAN_EVERY_SECONDS = 1.0


class InMemoryChannelLayer(BaseInMemoryChannelLayer):
    _cleaned_at = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._cleaned_at < CLEAN_EVERY_SECONDS:
            return
        self._cleaned_at = now
        super()._clean_expired()

    async def group_send(self, group: str, message: dict) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        members = list(self.groups.get(group, ()))
        if not members:
            return
        flat = all(isinstance(value, IMMUTABLE) for value in message.values())
        expires = time.time() + self.expiry
        for channel in members:
            queue = self.channels.get(channel)
            if queue is None:
                queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
            try:
                queue.put_nowait((expires, dict(message) if flat else deepcopy(message)))
            except asyncio.QueueFull:
                pass  # as the base layer: a full channel misses this group message (ChannelFull)
