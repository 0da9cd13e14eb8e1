"""`POST /webhooks/telnyx`: verify the signature, parse the event, hand it to the store.

This is a bare ASGI app in front of Django: the endpoint is the hot path and needs none of
Django's middleware (no session, CSRF or auth), only the ed25519 signature. Everything else
is passed to Django.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings

from moderator.ingest.inbox import EventBatcher, StoreUnavailable
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
