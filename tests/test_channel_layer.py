"""The in-memory channel layer keeps Channels' semantics while a broadcast stays O(members)."""

from __future__ import annotations

import asyncio

from moderator.live import channel_layer
from moderator.live.channel_layer import InMemoryChannelLayer


async def test_group_send_reaches_every_member_once_with_its_own_copy():
    layer = InMemoryChannelLayer()
    channels = [await layer.new_channel() for _ in range(3)]
    for name in channels:
        await layer.group_add("conference.a", name)
    await layer.group_add("conference.b", channels[0])
    await layer.group_send("conference.a", {"type": "live.message", "text": "{}"})
    nested = {"type": "presence", "viewers": ["ann"]}
    await layer.group_send("conference.a", nested)
    for name in channels:
        assert await layer.receive(name) == {"type": "live.message", "text": "{}"}
        received = await layer.receive(name)
        assert received == nested and received["viewers"] is not nested["viewers"]  # nested values deep-copied
        received["viewers"].append("mutated")
    assert nested["viewers"] == ["ann"]
    await layer.group_send("nobody.listens", {"type": "live.message", "text": "{}"})
    assert all(layer.channels.get(name) is None for name in channels)


async def test_a_full_channel_misses_the_message_and_others_still_get_it():
    layer = InMemoryChannelLayer(capacity=1)
    slow, fast = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", slow)
    await layer.group_add("g", fast)
    await layer.group_send("g", {"type": "live.message", "text": "1"})
    assert (await layer.receive(fast))["text"] == "1"
    await layer.group_send("g", {"type": "live.message", "text": "2"})
    assert (await layer.receive(slow))["text"] == "1"
    assert (await layer.receive(fast))["text"] == "2"
    assert layer.channels.get(slow) is None


async def test_expired_messages_still_expire_and_drop_the_channel_from_its_groups(monkeypatch):
    monkeypatch.setattr(channel_layer, "CLEAN_EVERY_SECONDS", 0)
    layer = InMemoryChannelLayer(expiry=0)
    gone, alive = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", gone)
    await layer.group_send("g", {"type": "live.message", "text": "old"})
    await asyncio.sleep(0.01)
    await layer.group_add("g", alive)
    await layer.group_send("g", {"type": "live.message", "text": "new"})  # the scan runs first
    assert gone not in layer.groups["g"] and alive in layer.groups["g"]


async def test_direct_members_get_every_message_in_order_and_a_failing_one_costs_nobody():
    layer = InMemoryChannelLayer()
    got: dict[str, list[str]] = {"a": [], "b": []}

    def collector(name):
        async def deliver(message):
            if name == "b" and message["text"] == "2":
                raise RuntimeError("this socket is broken")
            got[name].append(message["text"])
        return deliver

    direct_a, direct_b, queued = [await layer.new_channel() for _ in range(3)]
    await layer.group_add_direct("g", direct_a, collector("a"))
    await layer.group_add_direct("g", direct_b, collector("b"))
    await layer.group_add("g", queued)
    for text in ("1", "2", "3"):
        await layer.group_send("g", {"type": "live.message", "text": text})
    await asyncio.sleep(0.05)
    assert got == {"a": ["1", "2", "3"], "b": ["1", "3"]}
    assert [(await layer.receive(queued))["text"] for _ in range(3)] == ["1", "2", "3"]
    assert direct_a not in layer.channels  # nothing queued for direct members
    await layer.group_discard("g", direct_a)
    await layer.group_send("g", {"type": "live.message", "text": "4"})
    await asyncio.sleep(0.05)
    assert got["a"] == ["1", "2", "3"] and got["b"] == ["1", "3", "4"]
    assert direct_a not in layer.direct


async def test_a_broadcast_sent_from_a_thread_of_our_own_reaches_every_socket_of_this_process(settings):
    """The outbox's senders are plain threads: what they send goes out on the server's loop, where the sockets
    are, and is not cut short with a loop of their own (a socket's write suspends, like this one's)."""
    from concurrent.futures import ThreadPoolExecutor

    from channels.layers import get_channel_layer

    from moderator.live import broadcast

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "moderator.live.channel_layer.InMemoryChannelLayer"}}
    layer = get_channel_layer()
    delivered = []

    async def socket_write(message):
        await asyncio.sleep(0.01)
        delivered.append(message["text"])

    for name in ("socket-1", "socket-2", "socket-3"):
        await layer.group_add_direct("board", name, socket_write)
    loop = asyncio.get_running_loop()
    broadcast.serve_on(loop)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-send") as sender:
            await loop.run_in_executor(sender, broadcast.send, [("board", {"type": "live.message", "text": "hi"})])
        for _ in range(100):
            if len(delivered) == 3:
                break
            await asyncio.sleep(0.01)
    finally:
        broadcast.serve_on(None)
        for name in ("socket-1", "socket-2", "socket-3"):
            await layer.group_discard("board", name)
    assert delivered == ["hi", "hi", "hi"]
