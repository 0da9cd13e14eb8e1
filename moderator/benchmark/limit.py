"""The ceiling: a bare ASGI app that reads the body, verifies the signature and answers 200.

Served by the same Daphne as the product (``daphne moderator.benchmark.limit:application``) with the
same verification code, it costs what no webhook endpoint under this server can avoid.
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderator.settings")
django.setup()

from django.conf import settings  # noqa: E402

from moderator.ingest.endpoint import _read_body, _respond  # noqa: E402
from moderator.telnyx.event import WebhookRejected, verify_signature  # noqa: E402


async def application(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    headers = dict(scope["headers"])
    try:
        raw = await _read_body(receive, settings.WEBHOOK_MAX_BODY_BYTES)
        verify_signature(
            raw,
            headers.get(b"telnyx-signature-ed25519", b"").decode("latin-1") or None,
            headers.get(b"telnyx-timestamp", b"").decode("latin-1") or None,
        )
    except WebhookRejected as rejected:
        await _respond(send, rejected.status, {"error": rejected.reason})
        return
    await _respond(send, 200, {"status": "verified"})
