"""`POST /webhooks/telnyx`: verify the signature, parse the event, store it in the inbox, answer.

This is a bare ASGI app in front of Django: the endpoint is the hot path and needs none of Django's
middleware (no session, CSRF or auth), only the ed25519 signature. Nothing but storing runs before the
answer: the applier applies what the inbox stored, off the request path. Everything else is passed to
Django.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings

from moderator import crashpoints
from moderator.ingest import background
from moderator.ingest.inbox import REFUSED, Inbox, StoreUnavailable
from moderator.telnyx.event import WebhookRejected, parse_event, verify_signature

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telnyx"
SIGNATURE_HEADER = b"telnyx-signature-ed25519"
TIMESTAMP_HEADER = b"telnyx-timestamp"


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


def _header_values(scope, name: bytes) -> list[bytes]:
    return [value for key, value in scope["headers"] if key == name]


def _single_header(scope, name: bytes) -> str | None:
    """The header's value (None if absent or empty); two copies are refused: which one was signed for?"""
    values = _header_values(scope, name)
    if len(values) > 1:
        raise WebhookRejected(401, f"more than one {name.decode()} header")
    return values[0].decode("latin-1") if values and values[0] else None


async def _respond(send, status: int, payload: dict[str, Any], extra_headers=()) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers.extend(extra_headers)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class TelnyxWebhookApp:
    """The ASGI app behind ``POST /webhooks/telnyx``."""

    def __init__(self) -> None:
        self.inbox = Inbox(on_stored=background.wake_applier)

    async def __call__(self, scope, receive, send) -> None:
        if scope["method"] != "POST":
            await _respond(send, 405, {"error": "method not allowed: use POST"}, [(b"allow", b"POST")])
            return
        body: bytes | None = None
        try:
            limit = settings.WEBHOOK_MAX_BODY_BYTES
            # Refused before reading a byte of the body: a server that streams it (uvicorn) answers at once.
            for declared in _header_values(scope, b"content-length"):
                if not declared.isdigit():  # bytes: ASCII digits only
                    raise WebhookRejected(400, "Content-Length is not a number")
                digits = declared.lstrip(b"0")
                if len(digits) > 20 or int(digits or b"0") > limit:  # 5,000 digits are past int()'s own limit
                    raise WebhookRejected(413, f"body is larger than {limit} bytes")
            signature = _single_header(scope, SIGNATURE_HEADER)
            timestamp = _single_header(scope, TIMESTAMP_HEADER)
            body = await _read_body(receive, limit)
            verify_signature(body, signature, timestamp)
            event = parse_event(body)
        except WebhookRejected as rejected:
            if rejected.status >= 500:
                logger.error("webhook refused: %s", rejected.reason)
            # Refused before the whole body was read: close the connection rather than let the server read
            # (and discard) the rest of it to keep the connection alive — uvicorn would, up to any size.
            close = [] if body is not None else [(b"connection", b"close")]
            await _respond(send, rejected.status, {"error": rejected.reason}, close)
            return
        crashpoints.reached("inbox-received")
        try:
            outcome = await self.inbox.submit(event)
        except StoreUnavailable as exc:
            # Never acknowledge an event we did not store: a 5xx makes Telnyx deliver it again.
            logger.error("webhook %s not stored: %s", event.id, exc)
            await _respond(send, 503, {"error": "event not stored, retry later"})
            return
        if outcome == REFUSED:
            await _respond(send, 422, {"error": "the event holds a value that cannot be stored"})
            return
        await _respond(send, 200, {"status": outcome})


class WebhookRouter:
    """Sends the webhook path to TelnyxWebhookApp and everything else to Django."""

    def __init__(self, django_app, webhook_app: TelnyxWebhookApp) -> None:
        self.django_app = django_app
        self.webhook_app = webhook_app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].rstrip("/") == WEBHOOK_PATH:
            await self.webhook_app(scope, receive, send)
        else:
            await self.django_app(scope, receive, send)


class WithBackgroundTasks:
    """Starts the worker's background tasks (applier, outbox sender) with the server, through the ASGI
    lifespan protocol where the server speaks it, and otherwise with the first connection."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    background.start()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    background.stop()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        background.start()
        await self.app(scope, receive, send)
