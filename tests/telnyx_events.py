"""Build and sign Telnyx webhooks the way Telnyx does, for tests (and the benchmark)."""

from __future__ import annotations

import base64
import itertools
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from nacl.signing import SigningKey

# A fixed test key: tests sign with it; settings.TELNYX_PUBLIC_KEY is set to its public half.
TEST_SIGNING_KEY = SigningKey(bytes(range(32)))
TEST_PUBLIC_KEY = base64.b64encode(bytes(TEST_SIGNING_KEY.verify_key)).decode()

BASE_TIME = datetime(2026, 11, 24, 9, 0, 0, tzinfo=UTC)
_sequence = itertools.count(1)


def at(seconds: float) -> str:
    """An ISO occurred_at `seconds` after a fixed base time."""
    return (BASE_TIME + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def event(
    event_type: str,
    payload: dict[str, Any],
    occurred_at: str | None = None,
    *,
    event_id: str | None = None,
    occurred_in_payload: bool = False,
    attempt: int = 1,
) -> dict[str, Any]:
    """A webhook in the `{"data": ..., "meta": ...}` envelope."""
    data: dict[str, Any] = {
        "record_type": "event",
        "event_type": event_type,
        "id": event_id or str(uuid.uuid4()),
        "payload": dict(payload),
    }
    if occurred_at is not None:
        if occurred_in_payload:
            data["payload"]["occurred_at"] = occurred_at
        else:
            data["occurred_at"] = occurred_at
    return {"data": data, "meta": {"attempt": attempt, "delivered_to": "http://127.0.0.1/webhooks/telnyx"}}


def leg(name: str) -> dict[str, str]:
    return {
        "call_control_id": f"v3:{name}",
        "call_leg_id": f"leg-{name}",
        "call_session_id": f"session-{name}",
        "connection_id": "conn-1",
    }


def sign(body: bytes, timestamp: int | None = None, key: SigningKey = TEST_SIGNING_KEY) -> dict[str, str]:
    """The two headers Telnyx sends with every webhook."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = key.sign(ts.encode() + b"|" + body).signature
    return {"telnyx-signature-ed25519": base64.b64encode(signature).decode(), "telnyx-timestamp": ts}


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def conference_life(conference_id: str, legs: list[str], t0: float = 0.0) -> list[dict[str, Any]]:
    """A whole conference, in order: created, legs join, talk, media, a recording, legs leave, end."""
    first = leg(legs[0])
    ts = itertools.count(int(t0 * 10) + 1)

    def t() -> str:
        return at(next(ts) / 10)

    conf = {"conference_id": conference_id, "connection_id": "conn-1"}
    events = [event("conference.created", {**first, **conf}, t(), occurred_in_payload=True)]
    for name in legs:
        events.append(event("conference.participant.joined", {**leg(name), **conf}, t()))
    for name in legs + legs[:1]:
        events.append(event("conference.floor.changed", {**leg(name), **conf}, t(), occurred_in_payload=True))
    events.append(
        event(
            "conference.playback.started",
            {**conf, "media_url": "https://example.com/hold.mp3"},
            t(),
            occurred_in_payload=True,
        )
    )
    events.append(event("conference.speak.started", conf, t(), occurred_in_payload=True))
    events.append(
        event(
            "conference.participant.playback.started",
            {**leg(legs[-1]), **conf, "media_name": "greeting"},
            t(),
            occurred_in_payload=True,
        )
    )
    events.append(
        event(
            "conference.participant.playback.ended",
            {**leg(legs[-1]), **conf, "media_name": "greeting"},
            t(),
            occurred_in_payload=True,
        )
    )
    events.append(
        event("conference.participant.speak.started", {**leg(legs[0]), **conf}, t(), occurred_in_payload=True)
    )
    events.append(event("conference.speak.ended", conf, t(), occurred_in_payload=True))
    events.append(
        event(
            "conference.playback.ended",
            {**conf, "media_url": "https://example.com/hold.mp3"},
            t(),
            occurred_in_payload=True,
        )
    )
    start, end = t(), t()
    events.append(
        event(
            "conference.recording.saved",
            {
                **conf,
                "call_control_id": first["call_control_id"],
                "channels": "single",
                "format": "mp3",
                "recording_id": f"rec-{conference_id}",
                "recording_started_at": start,
                "recording_ended_at": end,
                "recording_urls": {"mp3": f"https://example.com/{conference_id}.mp3"},
                "public_recording_urls": {"mp3": None},
            },
        )
    )
    for name in legs[1:]:
        events.append(event("conference.participant.left", {**leg(name), **conf}, t()))
    events.append(
        event("conference.ended", {**first, **conf, "reason": "host_left"}, t(), occurred_in_payload=True)
    )
    return events
