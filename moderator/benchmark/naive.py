"""The naive peer: the obvious Django webhook view, built honestly.

A sync view behind Django's full middleware stack (csrf_exempt), verifying with PyNaCl, one ORM
insert of the event in its own transaction (store before ack, duplicates answered 200 and not
stored twice), then ``group_send`` of the event to a group. It does not apply the event to the
conference models: the product does strictly more work per event.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from functools import lru_cache

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from moderator.models import WebhookEvent

GROUP = "webhooks"


@lru_cache(maxsize=1)
def verify_key() -> VerifyKey:
    return VerifyKey(base64.b64decode(settings.TELNYX_PUBLIC_KEY))


@csrf_exempt
@require_POST
def telnyx_webhook(request: HttpRequest) -> JsonResponse:
    signature = request.headers.get("telnyx-signature-ed25519", "")
    timestamp = request.headers.get("telnyx-timestamp", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > settings.WEBHOOK_TOLERANCE_SECONDS:
        return JsonResponse({"error": "bad timestamp"}, status=401)
    try:
        verify_key().verify(timestamp.encode() + b"|" + request.body, base64.b64decode(signature))
    except (BadSignatureError, binascii.Error, ValueError):
        return JsonResponse({"error": "bad signature"}, status=403)
    try:
        data = json.loads(request.body)["data"]
        payload = data.get("payload") or {}
    except (ValueError, KeyError, TypeError, AttributeError):
        return JsonResponse({"error": "bad body"}, status=400)
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(
                event_id=data["id"],
                event_type=data["event_type"],
                occurred_at=parse_datetime(data.get("occurred_at") or ""),
                conference_telnyx_id=payload.get("conference_id") or "",
                call_control_id=payload.get("call_control_id") or "",
                raw=request.body.decode(),
                status=WebhookEvent.Status.APPLIED,
            )
    except IntegrityError:
        return JsonResponse({"status": "duplicate"})
    async_to_sync(get_channel_layer().group_send)(GROUP, {"type": "webhook.event", "event": data})
    return JsonResponse({"status": "stored"})


urlpatterns = [path("webhooks/telnyx", telnyx_webhook)]
