"""A Telnyx webhook event: its signature check and its parsing, the pipeline's hand-off type.

Telnyx signs ``f"{timestamp}|{raw body}"`` with ed25519. Events come in the ``{"data", "meta"}`` envelope,
and conference.floor.changed also in a flat shape; ``occurred_at`` sits at data level for some events and
inside the payload for others. Dispatch is on the raw ``data.event_type`` string (the SDK's ``unwrap()``
is slow and mistypes some events).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.utils.dateparse import parse_datetime
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey


class WebhookRejected(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TelnyxEvent:
    """One webhook event, normalised from either of the shapes Telnyx sends."""

    id: str
    event_type: str
    occurred_at: datetime | None
    payload: dict[str, Any]
    raw: str
    attempt: int | None = None

    @property
    def conference_id(self) -> str:
        return str(self.payload.get("conference_id") or "")

    @property
    def call_control_id(self) -> str:
        return str(self.payload.get("call_control_id") or "")


def is_text(value: str) -> bool:
    """Whether a database text column can hold `value` as sent: no NUL, no lone surrogate (JSON allows
    both as escapes; PostgreSQL and the SQLite driver refuse them)."""
    if value.isascii():
        return "\x00" not in value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


@lru_cache(maxsize=4)
def _verify_key(public_key_b64: str) -> VerifyKey:
    try:
        return VerifyKey(base64.b64decode(public_key_b64, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise WebhookRejected(500, "TELNYX_PUBLIC_KEY is not a base64 ed25519 public key") from exc


def verify_signature(
    body: bytes, signature: str | None, timestamp: str | None, now: float | None = None
) -> None:
    """Check Telnyx's ed25519 signature over ``f"{timestamp}|{body}"``; raise WebhookRejected if wrong."""
    if not settings.TELNYX_PUBLIC_KEY:
        raise WebhookRejected(500, "TELNYX_PUBLIC_KEY is not configured: cannot verify webhooks")
    if not signature or not timestamp:
        raise WebhookRejected(401, "missing telnyx-signature-ed25519 or telnyx-timestamp header")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise WebhookRejected(401, "telnyx-timestamp is not a unix time in seconds")
    # Refuse stale and future timestamps alike: a captured request must not be replayable later.
    if abs((now or time.time()) - int(timestamp)) > settings.WEBHOOK_TOLERANCE_SECONDS:
        raise WebhookRejected(401, "telnyx-timestamp is too far from the current time")
    if len(signature) > 128:  # an ed25519 signature is 88 base64 characters: decode no megabyte header
        raise WebhookRejected(401, "telnyx-signature-ed25519 is not an ed25519 signature")
    try:
        raw_signature = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected(401, "telnyx-signature-ed25519 is not base64") from None
    if len(raw_signature) != 64:
        raise WebhookRejected(401, "telnyx-signature-ed25519 is not an ed25519 signature")
    try:
        _verify_key(settings.TELNYX_PUBLIC_KEY).verify(timestamp.encode() + b"|" + body, raw_signature)
    except BadSignatureError:
        raise WebhookRejected(403, "signature does not match the body") from None


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time from a payload; None when absent or impossible. Without an offset: UTC."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = parse_datetime(value.replace(" ", "T", 1) if "T" not in value else value)
    except ValueError:
        return None
    if parsed is None:
        return None
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-12:00 is past the last time Python can hold
        return None


MAX_ATTEMPT = 2**31 - 1


def _not_utf8_json(body: bytes, otherwise: str) -> str:
    """Why a body that is no UTF-8 JSON was refused: JSON in another Unicode encoding is named (RFC 8259:
    JSON between systems is UTF-8, without a byte order mark), anything else is `otherwise`."""
    encoding = json.detect_encoding(body)  # from its first four bytes: BOMs and the NULs of UTF-16/32
    if encoding == "utf-8-sig":
        return "body starts with a byte order mark: JSON must be UTF-8 without one"
    if encoding != "utf-8":
        return f"body is {encoding.upper()}, not UTF-8: JSON must be UTF-8"
    return otherwise


def parse_event(body: bytes) -> TelnyxEvent:
    """Accept the ``{"data": ..., "meta": ...}`` envelope and the flat shape of floor.changed."""
    try:
        raw = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected(400, _not_utf8_json(body, "body is not UTF-8")) from None
    try:
        document = json.loads(raw)
    except ValueError:
        raise WebhookRejected(400, _not_utf8_json(body, "body is not JSON")) from None
    except RecursionError:
        raise WebhookRejected(400, "body is nested too deeply") from None
    if not isinstance(document, dict):
        raise WebhookRejected(400, "body is not a JSON object")
    data = document.get("data") if isinstance(document.get("data"), dict) else document
    meta = document.get("meta") if isinstance(document.get("meta"), dict) else {}
    event_id, event_type = data.get("id"), data.get("event_type")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str) or not event_type:
        raise WebhookRejected(400, "no event: data.id and data.event_type are required")
    if len(event_id) > 128 or len(event_type) > 96:
        raise WebhookRejected(400, "event id or type is too long")
    if not is_text(event_id) or not is_text(event_type):
        raise WebhookRejected(400, "event id or type holds a NUL or a lone surrogate")
    payload = data.get("payload")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "data.payload is not an object")
    # occurred_at sits at data level for some events and inside payload for others.
    occurred_at = parse_time(data.get("occurred_at")) or parse_time(payload.get("occurred_at"))
    attempt = meta.get("attempt")
    if not isinstance(attempt, int) or isinstance(attempt, bool) or not 0 <= attempt <= MAX_ATTEMPT:
        attempt = None  # Telnyx counts 1, 2, 3…; anything else says nothing
    return TelnyxEvent(
        id=event_id, event_type=event_type, occurred_at=occurred_at, payload=payload, raw=raw, attempt=attempt
    )
