"""Signed Telnyx webhooks for the benchmark, signed with the simulator's development key."""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from nacl.signing import SigningKey

from moderator.simulator.keys import DEVELOPMENT_SEED, development_public_key

SIGNING_KEY = SigningKey(DEVELOPMENT_SEED)
PUBLIC_KEY = development_public_key()


class Clock:
    """Strictly increasing occurred_at values, so that every event of a run is newer than the last."""

    def __init__(self) -> None:
        self.base = datetime.now(UTC).replace(microsecond=0)
        self.ticks = itertools.count(1)

    def next(self) -> str:
        return (self.base + timedelta(milliseconds=next(self.ticks))).isoformat().replace("+00:00", "Z")


def body(event_id: str, event_type: str, payload: dict[str, Any], occurred_at: str) -> bytes:
    document = {
        "data": {
            "record_type": "event",
            "event_type": event_type,
            "id": event_id,
            "occurred_at": occurred_at,
            "payload": payload,
        },
        "meta": {"attempt": 1, "delivered_to": "http://127.0.0.1/webhooks/telnyx"},
    }
    return json.dumps(document, separators=(",", ":")).encode()


def sign(raw: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The two headers Telnyx sends: an ed25519 signature over ``f"{timestamp}|{body}"``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SIGNING_KEY.sign(ts.encode() + b"|" + raw).signature
    return {
        "content-type": "application/json",
        "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
        "telnyx-timestamp": ts,
    }


def leg(conference_id: str, index: int) -> dict[str, str]:
    name = f"{conference_id}-{index}"
    return {
        "call_control_id": f"v3:{name}",
        "call_leg_id": f"leg-{name}",
        "call_session_id": f"session-{name}",
        "connection_id": "conn-bench",
    }


def conference_life(conference_id: str, legs: int, clock: Clock) -> Iterator[tuple[str, dict[str, Any], str]]:
    """One conference from start to end as Telnyx reports it: calls ring and answer, legs join,
    the floor moves, media plays to everyone and to one leg, legs leave and hang up, it ends."""
    conf = {"conference_id": conference_id, "connection_id": "conn-bench"}
    yield "conference.created", {**leg(conference_id, 0), **conf}, clock.next()
    for i in range(legs):
        call = {**leg(conference_id, i), "from": f"+1555{i:07d}", "to": "+15550000000", "direction": "incoming"}
        yield "call.initiated", call, clock.next()
        yield "call.answered", call, clock.next()
        yield "conference.participant.joined", {**leg(conference_id, i), **conf}, clock.next()
    for i in range(legs):
        yield "conference.floor.changed", {**leg(conference_id, i), **conf}, clock.next()
    yield "conference.playback.started", {**conf, "media_url": "https://example.com/hold.mp3"}, clock.next()
    yield "conference.participant.speak.started", {**leg(conference_id, 1), **conf}, clock.next()
    yield "conference.participant.speak.ended", {**leg(conference_id, 1), **conf}, clock.next()
    yield "conference.playback.ended", {**conf, "media_url": "https://example.com/hold.mp3"}, clock.next()
    for i in range(legs):
        yield "conference.participant.left", {**leg(conference_id, i), **conf}, clock.next()
        yield "call.hangup", {**leg(conference_id, i), "hangup_cause": "normal_clearing"}, clock.next()
    yield "conference.ended", {**leg(conference_id, 0), **conf, "reason": "host_left"}, clock.next()


def realistic_mix(prefix: str, clock: Clock, concurrent: int = 40, legs: int = 8) -> Iterator[bytes]:
    """An endless stream of unique events: `concurrent` conferences live at once, their events
    interleaved the way many simultaneous calls interleave; each ended conference is replaced."""
    serial = itertools.count()
    numbers = itertools.count()
    lives = [conference_life(f"{prefix}-c{next(numbers)}", legs, clock) for _ in range(concurrent)]
    while True:
        for slot, life in enumerate(lives):
            item = next(life, None)
            if item is None:
                lives[slot] = life = conference_life(f"{prefix}-c{next(numbers)}", legs, clock)
                item = next(life)
            event_type, payload, occurred_at = item
            yield body(f"{prefix}-{next(serial)}", event_type, payload, occurred_at)


def presigned(stream: Iterator[bytes], count: int) -> list[tuple[bytes, dict[str, str]]]:
    """Sign ahead of a timed phase so the load generator spends its time sending, not signing."""
    now = int(time.time())
    return [(raw, sign(raw, now)) for raw in itertools.islice(stream, count)]
