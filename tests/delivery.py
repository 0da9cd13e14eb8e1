"""Deliver webhooks the way Telnyx does, through the real ASGI application, in the test's own thread and
transaction; then apply them, as the applier does after the inbox commits."""

from __future__ import annotations

import json

from asgiref.sync import async_to_sync

from tests.telnyx_events import encode, sign


class AsgiResponse:
    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes):
        self.status_code = status
        self.headers = {k.decode().lower(): v.decode() for k, v in headers}
        self.content = body

    def json(self):
        return json.loads(self.content)


def asgi_request(
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    chunks: list[bytes] | None = None,
    raw_headers: list[tuple[bytes, bytes]] | None = None,
) -> AsgiResponse:
    """One HTTP request through the real ASGI application (the webhook endpoint lives there). `raw_headers`
    are sent as they are, after `headers`: repeated names, bytes that are not UTF-8."""
    from moderator.asgi import application

    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()] + (raw_headers or [])
    messages = (
        [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
        if chunks
        else [{"type": "http.request", "body": body, "more_body": False}]
    )
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    sent: list[dict] = []

    async def run():
        queue = list(messages)

        async def receive():
            return queue.pop(0) if queue else {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        await application(scope, receive, send)

    # async_to_sync from this (test) thread: the app's database work runs back in this thread,
    # inside the test's transaction.
    async_to_sync(run)()
    start = next(m for m in sent if m["type"] == "http.response.start")
    body_out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return AsgiResponse(start["status"], start.get("headers", []), body_out)


def post_webhook(
    document, *, headers: dict[str, str] | None = None, timestamp: int | None = None
) -> AsgiResponse:
    body = document if isinstance(document, bytes) else encode(document)
    return asgi_request(
        "POST", "/webhooks/telnyx", body, headers if headers is not None else sign(body, timestamp)
    )


def apply_stored():
    """What the applier does after the inbox commits: apply every stored event (and broadcast)."""
    from moderator.ingest.applier import apply_pending

    return apply_pending()
