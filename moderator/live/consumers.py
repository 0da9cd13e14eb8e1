"""Websocket consumers for the live pages: a snapshot on connect, then the broadcasts of their group.

Protocol (server → page, JSON text):
- ``{"type": "snapshot", "version", ...fragments}``: the whole page state; sent on connect and on request;
- ``{"type": "update", "conference_id", "since", "version", "summary", "rows", "timeline", "announce"}`` (live view);
- ``{"type": "conference", "conference_id", "since", "version", "live", "card"}`` and ``{"type": "queues", "html"}``
  (board);
- ``{"type": "presence", "viewers": [...]}``.
Versions are per conference and go up by one per committed change; an update covers the versions
``since..version`` (the applier's batches of one cycle). A page whose version is older than ``since - 1`` has
missed one: it sends ``{"type": "resync"}`` and gets a fresh snapshot. ``{"type": "ping"}`` keeps presence fresh.
"""

from __future__ import annotations

import asyncio
import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import timezone

from moderator.live import captions, fragments
from moderator.live.broadcast import BOARD_GROUP, conference_group, message
from moderator.models import Conference, Viewer

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_SLOW = 4008  # the page took too little of what it was sent: it reconnects and takes a fresh snapshot


class LiveConsumer(AsyncWebsocketConsumer):
    """Subclasses name their `group` and build their `snapshot()` (sync, runs in a thread)."""

    group: str

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not await self.resolve():
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.can_moderate = await database_sync_to_async(user.has_perm)("moderator.moderate_conference")
        self.can_read_captions = await database_sync_to_async(user.has_perm)(captions.PERMISSION)
        # Join before the snapshot: an update racing the snapshot is then received, and ignored by
        # the page if the snapshot already has its version.
        self._early: list[dict] | None = []
        add_direct = getattr(self.channel_layer, "group_add_direct", None)
        if add_direct is not None:  # the in-memory layer hands broadcasts straight to `_deliver`
            await add_direct(self.group, self.channel_name, self._deliver)
        else:
            await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self._transport = _transport_of(self.base_send)
        self._too_slow = False
        await self.joined()
        await self.send_snapshot()
        # What arrived directly while connecting goes out now, after the snapshot, in order.
        while self._early:
            await self.dispatch(self._early.pop(0))
        self._early = None

    async def _deliver(self, message: dict) -> None:
        """A group message delivered directly by the channel layer (see `moderator.channel_layer`)."""
        if self._early is not None:
            self._early.append(message)
        else:
            await self.dispatch(message)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await self.left()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            request = json.loads(text_data or "{}")
        except ValueError:
            return
        if request.get("type") == "resync":
            await self.send_snapshot()
        elif request.get("type") == "ping":
            await database_sync_to_async(Viewer.objects.filter(channel_name=self.channel_name).update)(
                seen_at=timezone.now()
            )

    async def dispatch(self, message: dict) -> None:
        # A broadcast touches no database: skip the close_old_connections() that Channels runs (in the
        # database thread) before every handler; with hundreds of sockets that hop was most of the cost.
        if message["type"] == "live.message":
            if self._falling_behind() or (message.get("audience") == captions.AUDIENCE and not self.can_read_captions):
                return
            # Already serialized once for every socket of the group (and once more for observers, if they
            # see it differently).
            await self.send(text_data=message["text"] if self.can_moderate else message.get("observer_text", message["text"]))
        else:
            await super().dispatch(message)

    def _falling_behind(self) -> bool:
        """A page that does not take what it is sent (a background tab, a bad network) must never cost the
        others their updates, nor this worker its memory: past WS_MAX_UNSENT_BYTES written and not taken, its
        socket is closed with CLOSE_TOO_SLOW, and the page reconnects to a fresh snapshot."""
        if self._too_slow:
            return True
        if self._transport is None or self._transport.get_write_buffer_size() <= settings.WS_MAX_UNSENT_BYTES:
            return False
        self._too_slow = True
        asyncio.ensure_future(self.close(code=CLOSE_TOO_SLOW))
        return True

    async def send_snapshot(self) -> None:
        snapshot = await database_sync_to_async(self.snapshot)()
        more_rows = snapshot.pop("more_rows", [])
        await self.send(text_data=json.dumps({"type": "snapshot", **snapshot, "parts": 1 + len(more_rows)},
                                             separators=(",", ":")))
        # The rest of a long roster, before anything else this consumer sends (it handles one message at a time).
        for html in more_rows:
            await self.send(text_data=json.dumps({"type": "rows", "version": snapshot["version"], "html": html},
                                                 separators=(",", ":")))

    async def resolve(self) -> bool:
        return True

    async def joined(self) -> None:
        pass

    async def left(self) -> None:
        pass


class BoardConsumer(LiveConsumer):
    group = BOARD_GROUP

    def snapshot(self) -> dict:
        return {**fragments.board_parts(self.can_moderate),
                **({"alerts": captions.recent_alerts()} if self.can_read_captions else {})}


class ConferenceConsumer(LiveConsumer):
    """The live view of one conference, with presence: who else has it open."""

    async def resolve(self) -> bool:
        self.conference_id = self.scope["url_route"]["kwargs"]["conference_id"]
        exists = await database_sync_to_async(
            Conference.objects.filter(telnyx_id=self.conference_id).exists
        )()
        if exists:
            self.group = conference_group(self.conference_id)
        return exists

    def snapshot(self) -> dict:
        conference = Conference.objects.get(telnyx_id=self.conference_id)
        return {
            "version": conference.version,
            "viewers": self.viewers(),
            **fragments.conference_parts(conference, self.can_moderate, fragments.ROWS_PER_MESSAGE),
            **({"captions": captions.pane(conference)} if self.can_read_captions else {}),
        }

    def viewers(self) -> list[str]:
        return viewers_of(self.conference_id)

    async def joined(self) -> None:
        await database_sync_to_async(Viewer.objects.update_or_create)(
            channel_name=self.channel_name,
            defaults={"user": self.scope["user"], "conference_telnyx_id": self.conference_id},
        )
        await self.announce_presence()

    async def left(self) -> None:
        await database_sync_to_async(Viewer.objects.filter(channel_name=self.channel_name).delete)()
        await self.announce_presence()

    async def announce_presence(self) -> None:
        """Tell the conference's pages who watches, at most once per PRESENCE_DELAY: when a crowd opens
        a conference at once, each arrival announcing to all others would cost n² messages."""
        key = (asyncio.get_running_loop(), self.group)
        if key in _presence_pending:
            return  # an announcement is already due and will read the list when it runs
        _presence_pending[key] = asyncio.ensure_future(
            _announce_later(key, self.channel_layer, self.group, self.conference_id)
        )


PRESENCE_DELAY = 0.1
_presence_pending: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Future] = {}


def _transport_of(send) -> asyncio.WriteTransport | None:
    """The socket's transport, where the server shows it: uvicorn's websocket protocols are the object whose
    method is the ASGI `send` (under Channels' session wrapper, which keeps it as `real_send`), and keep it
    as `transport`. Daphne's is Twisted's: no bound there."""
    for _ in range(4):  # the few wrappers between the consumer and the server
        owner = getattr(send, "__self__", None)
        transport = getattr(owner, "transport", None)
        if hasattr(transport, "get_write_buffer_size"):
            return transport
        send = getattr(owner, "real_send", None)
    return None


def viewers_of(conference_id: str) -> list[str]:
    names = (
        Viewer.objects.filter(conference_telnyx_id=conference_id).values_list("user__username", flat=True).distinct()
    )
    return sorted(set(names))


async def _announce_later(key, channel_layer, group: str, conference_id: str) -> None:
    try:
        await asyncio.sleep(PRESENCE_DELAY)
    finally:
        _presence_pending.pop(key, None)  # from here on, a new arrival schedules the next announcement
    viewers = await database_sync_to_async(viewers_of)(conference_id)
    await channel_layer.group_send(group, message({"type": "presence", "viewers": viewers}))
