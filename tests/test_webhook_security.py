"""Bad input at the webhook endpoint: refused with a clear 4xx, nothing stored, nothing changed."""

from __future__ import annotations

import base64
import time

import pytest
from nacl.signing import SigningKey

from moderator.models import Conference, WebhookEvent
from tests.delivery import apply_stored, asgi_request, post_webhook
from tests.telnyx_events import at, encode, event, leg, sign

pytestmark = pytest.mark.django_db

CREATED = event(
    "conference.created", {**leg("a"), "conference_id": "conf-1"}, at(1), occurred_in_payload=True
)
BODY = encode(CREATED)


def assert_nothing_stored():
    assert not WebhookEvent.objects.exists()
    assert not Conference.objects.exists()


def test_valid_signature_is_accepted_and_applied():
    response = post_webhook(CREATED)
    assert response.status_code == 200
    assert response.json() == {"status": "stored"}
    assert WebhookEvent.objects.get().status == "pending"
    apply_stored()
    assert Conference.objects.filter(telnyx_id="conf-1").exists()
    assert WebhookEvent.objects.get().status == "applied"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"telnyx-timestamp": str(int(time.time()))},
        {"telnyx-signature-ed25519": sign(BODY)["telnyx-signature-ed25519"]},
    ],
    ids=["no headers", "no signature", "no timestamp"],
)
def test_missing_headers_are_refused(headers):
    response = post_webhook(BODY, headers=headers)
    assert response.status_code == 401
    assert "missing" in response.json()["error"]
    assert_nothing_stored()


@pytest.mark.parametrize("timestamp", ["abc", "12.5", "-5", "１２３", ""])
def test_non_numeric_timestamp_is_refused(timestamp):
    headers = {**sign(BODY), "telnyx-timestamp": timestamp}
    assert post_webhook(BODY, headers=headers).status_code == 401
    assert_nothing_stored()


@pytest.mark.parametrize("offset", [-301, 301, -86400, 10**6])
def test_timestamp_outside_five_minutes_is_refused_either_way(offset):
    response = post_webhook(BODY, timestamp=int(time.time()) + offset)
    assert response.status_code == 401
    assert "too far" in response.json()["error"]
    assert_nothing_stored()


def test_timestamp_just_inside_the_window_is_accepted():
    assert post_webhook(BODY, timestamp=int(time.time()) - 290).status_code == 200


@pytest.mark.parametrize("signature", ["not base64 at all!", base64.b64encode(b"short").decode(), "A" * 88])
def test_garbled_signature_is_refused(signature):
    headers = {**sign(BODY), "telnyx-signature-ed25519": signature}
    assert post_webhook(BODY, headers=headers).status_code in (401, 403)
    assert_nothing_stored()


def test_signature_from_another_key_is_refused():
    headers = sign(BODY, key=SigningKey(b"\x07" * 32))
    assert post_webhook(BODY, headers=headers).status_code == 403
    assert_nothing_stored()


def test_changed_body_is_refused():
    headers = sign(BODY)
    tampered = BODY.replace(b"conf-1", b"conf-2")
    assert post_webhook(tampered, headers=headers).status_code == 403
    assert_nothing_stored()


def test_signature_over_another_timestamp_is_refused():
    headers = sign(BODY, timestamp=int(time.time()) - 10)
    headers["telnyx-timestamp"] = str(int(time.time()))
    assert post_webhook(BODY, headers=headers).status_code == 403
    assert_nothing_stored()


def test_body_over_one_mebibyte_is_refused_by_declared_length():
    body = b"{" + b" " * (1024 * 1024) + b"}"
    response = asgi_request(
        "POST", "/webhooks/telnyx", body, {**sign(body), "content-length": str(len(body))}
    )
    assert response.status_code == 413
    assert_nothing_stored()


def test_body_over_one_mebibyte_is_refused_while_streaming():
    chunk = b" " * (256 * 1024)
    response = asgi_request("POST", "/webhooks/telnyx", headers=sign(b""), chunks=[chunk] * 5)
    assert response.status_code == 413
    assert_nothing_stored()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'"text"',
        b"{}",
        b'{"data": {"payload": {}}}',
        b'{"data": {"id": "x"}}',
        b'{"data": {"id": "x", "event_type": "conference.created", "payload": [1]}}',
        b"\xff\xfe",
    ],
    ids=[
        "not json",
        "array",
        "string",
        "empty object",
        "no id",
        "no type",
        "payload not object",
        "not utf-8",
    ],
)
def test_signed_body_without_an_event_is_a_bad_request(body):
    response = post_webhook(body)
    assert response.status_code == 400
    assert response.json()["error"]
    assert_nothing_stored()


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_not_allowed(method):
    response = asgi_request(method, "/webhooks/telnyx", BODY, sign(BODY))
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert_nothing_stored()


def test_unconfigured_public_key_refuses_rather_than_accepts(settings):
    settings.TELNYX_PUBLIC_KEY = ""
    response = post_webhook(CREATED)
    assert response.status_code == 500
    assert "TELNYX_PUBLIC_KEY" in response.json()["error"]
    assert_nothing_stored()


def test_database_unavailable_answers_5xx_so_telnyx_retries(monkeypatch):
    from django.db import OperationalError

    from moderator.ingest import inbox

    def broken(*args, **kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(inbox, "_insert", broken)
    response = post_webhook(CREATED)
    assert response.status_code == 503
    assert response.json() == {"error": "event not stored, retry later"}
