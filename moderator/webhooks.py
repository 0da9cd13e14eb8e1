"""`POST /webhooks/telnyx`: verify the signature, parse the event, hand it to the store.

This is a bare ASGI app in front of Django: the endpoint is the hot path and needs none of
Django's middleware (no session, CSRF or auth), only the ed25519 signature. Everything else
is passed to Django.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.utils.dateparse import parse_datetime
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from moderator.store import EventBatcher, StoreUnavailable

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telnyx"
SIGNATURE_HEADER = b"telnyx-signature-ed25519"
TIMESTAMP_HEADER = b"telnyx-timestamp"


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
    if not timestamp.isascii() or not timestamp.isdigit():
        raise WebhookRejected(401, "telnyx-timestamp is not a unix time in seconds")
    # Refuse stale and future timestamps alike: a captured request must not be replayable later.
    if abs((now or time.time()) - int(timestamp)) > settings.WEBHOOK_TOLERANCE_SECONDS:
        raise WebhookRejected(401, "telnyx-timestamp is too far from the current time")
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


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value.replace(" ", "T", 1) if "T" not in value else value)
    except ValueError:
        return None


def parse_event(body: bytes) -> TelnyxEvent:
    """Accept the ``{"data": ..., "meta": ...}`` envelope and the flat shape of floor.changed."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise WebhookRejected(400, "body is not JSON") from None
    if not isinstance(document, dict):
        raise WebhookRejected(400, "body is not a JSON object")
    data = document.get("data") if isinstance(document.get("data"), dict) else document
    meta = document.get("meta") if isinstance(document.get("meta"), dict) else {}
    event_id, event_type = data.get("id"), data.get("event_type")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str) or not event_type:
        raise WebhookRejected(400, "no event: data.id and data.event_type are required")
    if len(event_id) > 128 or len(event_type) > 96:
        raise WebhookRejected(400, "event id or type is too long")
    payload = data.get("payload")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "data.payload is not an object")
    # occurred_at sits at data level for some events and inside payload for others.
    occurred_at = _parse_time(data.get("occurred_at")) or _parse_time(payload.get("occurred_at"))
    attempt = meta.get("attempt")
    return TelnyxEvent(
        id=event_id,
        event_type=event_type,
        occurred_at=occurred_at,
        payload=payload,
        raw=body.decode("utf-8"),
        attempt=attempt if isinstance(attempt, int) else None,
    )


async def _read_body(receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise WebhookRejected(400, "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise WebhookRejected(413, f"body is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(send, status: int, payload: dict[str, Any], extra_headers=()) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers.extend(extra_headers)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class TelnyxWebhookApp:
    """The ASGI app behind ``POST /webhooks/telnyx``."""

    def __init__(self) -> None:
        self.batcher = EventBatcher()

    async def __call__(self, scope, receive, send) -> None:
        if scope["method"] != "POST":
            await _respond(send, 405, {"error": "method not allowed: use POST"}, [(b"allow", b"POST")])
            return
        headers = dict(scope["headers"])
        try:
            declared = headers.get(b"content-length")
            limit = settings.WEBHOOK_MAX_BODY_BYTES
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                raise WebhookRejected(413, f"body is larger than {limit} bytes")
            body = await _read_body(receive, limit)
            verify_signature(
                body,
                headers.get(SIGNATURE_HEADER, b"").decode("latin-1") or None,
                headers.get(TIMESTAMP_HEADER, b"").decode("latin-1") or None,
            )
            event = parse_event(body)
        except WebhookRejected as rejected:
            if rejected.status >= 500:
                logger.error("webhook refused: %s", rejected.reason)
            await _respond(send, rejected.status, {"error": rejected.reason})
            return
        try:
            outcome = await self.batcher.submit(event)
        except StoreUnavailable as exc:
            # Never acknowledge an event we did not store: a 5xx makes Telnyx deliver it again.
            logger.error("webhook %s not stored: %s", event.id, exc)
            await _respond(send, 503, {"error": "event not stored, retry later"})
            return
        await _respond(send, 200, {"status": outcome})


class WebhookRouter:
    """Sends the webhook path to TelnyxWebhookApp and everything else to Django."""

    def __init__(self, django_app) -> None:
        self.django_app = django_app
        self.webhook_app = TelnyxWebhookApp()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].rstrip("/") == WEBHOOK_PATH:
            await self.webhook_app(scope, receive, send)
        else:
            await self.django_app(scope, receive, send)
