"""Bad input at the webhook endpoint: refused with a clear 4xx, nothing stored, nothing changed."""

from __future__ import annotations

import base64
import json
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


# Header garbage: whatever arrives in the two signature headers is a 4xx naming it, never a 5xx or a store.
SIGNED = sign(BODY)


@pytest.mark.parametrize(
    "raw_headers",
    [
        [(b"telnyx-signature-ed25519", "é".encode() * 44), (b"telnyx-timestamp", SIGNED["telnyx-timestamp"].encode())],
        [(b"telnyx-signature-ed25519", b"\xff\xfe\x80" * 30), (b"telnyx-timestamp", SIGNED["telnyx-timestamp"].encode())],
        [(b"telnyx-signature-ed25519", SIGNED["telnyx-signature-ed25519"].encode()), (b"telnyx-timestamp", b"\xb9\xb2\xb3")],
        [(b"telnyx-signature-ed25519", SIGNED["telnyx-signature-ed25519"].encode() + b"\x00"), (b"telnyx-timestamp", SIGNED["telnyx-timestamp"].encode())],
    ],
    ids=["utf-8 signature", "latin-1 signature", "latin-1 digits timestamp", "NUL after signature"],
)
def test_a_signature_header_that_is_not_ascii_is_refused(raw_headers):
    response = asgi_request("POST", "/webhooks/telnyx", BODY, raw_headers=raw_headers)
    assert response.status_code == 401
    assert "telnyx-" in response.json()["error"]
    assert_nothing_stored()


@pytest.mark.parametrize(
    "headers",
    [
        {"telnyx-signature-ed25519": "", "telnyx-timestamp": ""},
        {"telnyx-signature-ed25519": "", "telnyx-timestamp": SIGNED["telnyx-timestamp"]},
        {"telnyx-signature-ed25519": SIGNED["telnyx-signature-ed25519"], "telnyx-timestamp": ""},
        {"telnyx-signature-ed25519": " ", "telnyx-timestamp": " "},
    ],
    ids=["both empty", "empty signature", "empty timestamp", "blank"],
)
def test_empty_signature_headers_are_refused(headers):
    response = post_webhook(BODY, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]
    assert_nothing_stored()


@pytest.mark.parametrize("header", ["telnyx-signature-ed25519", "telnyx-timestamp"])
@pytest.mark.parametrize("order", ["valid last", "valid first", "both valid"])
def test_a_repeated_signature_header_is_refused_whichever_copy_is_valid(header, order):
    valid = SIGNED[header].encode()
    other = {"valid last": [b"garbage", valid], "valid first": [valid, b"garbage"], "both valid": [valid, valid]}[order]
    rest = [(name.encode(), value.encode()) for name, value in SIGNED.items() if name != header]
    response = asgi_request("POST", "/webhooks/telnyx", BODY, raw_headers=rest + [(header.encode(), v) for v in other])
    assert response.status_code == 401
    assert f"more than one {header}" in response.json()["error"]
    assert_nothing_stored()


@pytest.mark.parametrize("header", ["telnyx-signature-ed25519", "telnyx-timestamp"])
def test_a_huge_signature_header_is_refused_at_once(header):
    headers = {**SIGNED, header: "A" * 1_000_000}
    started = time.monotonic()
    response = post_webhook(BODY, headers=headers)
    assert response.status_code == 401
    assert time.monotonic() - started < 1
    assert_nothing_stored()


@pytest.mark.parametrize("value", ["abc", "-1", "1e3", " 12", "１２", ""])
def test_a_content_length_that_is_not_a_number_is_a_bad_request(value):
    response = asgi_request("POST", "/webhooks/telnyx", BODY, {**SIGNED, "content-length": value})
    assert response.status_code == 400
    assert "content-length" in response.json()["error"].lower()
    assert_nothing_stored()


@pytest.mark.parametrize("value", ["1048577", "10485760", "9" * 5000, "0" * 30 + "1048577"])
def test_a_declared_length_over_one_mebibyte_is_refused(value):
    response = asgi_request("POST", "/webhooks/telnyx", BODY, {**SIGNED, "content-length": value})
    assert response.status_code == 413
    assert "larger than 1048576 bytes" in response.json()["error"]
    assert_nothing_stored()


def test_a_repeated_content_length_over_the_limit_is_refused_whichever_comes_first():
    raw = [(b"content-length", str(len(BODY)).encode()), (b"content-length", b"10485760")]
    for order in (raw, raw[::-1]):
        assert asgi_request("POST", "/webhooks/telnyx", BODY, SIGNED, raw_headers=order).status_code == 413
    assert_nothing_stored()


# Signed bodies that are no event: a 400 naming the problem.
def nested(depth: int) -> bytes:
    """conference.created whose payload also holds `depth` nested arrays."""
    document = encode(event("conference.created", {**leg("a"), "conference_id": "conf-1", "deep": "X"}, at(1)))
    return document.replace(b'"X"', b"[" * depth + b"]" * depth)


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, nested(100_000)], ids=["bare", "in an event"])
def test_a_signed_body_of_a_hundred_thousand_nested_arrays_is_a_bad_request(body):
    response = post_webhook(body)
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]
    assert_nothing_stored()


@pytest.mark.parametrize("depth", [100, 500, 900, 990, 1000, 2000])
def test_deep_but_parseable_nesting_is_stored_or_refused_never_a_server_error(depth):
    response = post_webhook(nested(depth))
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert "nested too deeply" in response.json()["error"]
    apply_stored()  # the applier copes with what the endpoint stored
    assert not WebhookEvent.objects.filter(status="failed").exists()


@pytest.mark.parametrize(
    "encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be", "utf-8-sig"]
)
def test_a_signed_body_in_another_unicode_encoding_is_a_bad_request_naming_it(encoding):
    body = json.dumps(CREATED).encode(encoding)
    response = post_webhook(body)
    assert response.status_code == 400
    error = response.json()["error"]
    named = "byte order mark" if encoding == "utf-8-sig" else encoding[:6].upper()  # UTF-16, UTF-32
    assert named in error and "UTF-8" in error, error
    assert_nothing_stored()
