from __future__ import annotations

import os

import pytest
from asgiref.sync import async_to_sync

from tests.telnyx_events import TEST_PUBLIC_KEY, encode, sign

pytest_plugins = [
    "tests.fixtures_simulator",
    "tests.fixtures_actions",
    "tests.fixtures_live_server",
    "tests.fixtures_servers",
]


@pytest.fixture(autouse=True)
def _telnyx_settings(settings):
    settings.TELNYX_PUBLIC_KEY = TEST_PUBLIC_KEY
    settings.TELNYX_API_KEY = "KEY_TEST"
    settings.TELNYX_BASE_URL = (
        "http://127.0.0.1:9/v2"  # never the real Telnyx: tests that call it use the simulator
    )


@pytest.fixture(autouse=True)
def _pipeline_in_the_test(settings, monkeypatch):
    """In process, the tests drive the pipeline's stages themselves (`apply_pending`, `send_pending`), and
    the inbox stores in the test's own thread and transaction (its own thread, in a server)."""
    from asgiref.sync import sync_to_async

    from moderator.asgi import webhook_app
    from moderator.ingest.inbox import store_events

    settings.BACKGROUND_TASKS = False
    monkeypatch.setattr(webhook_app.inbox, "run_store", sync_to_async(store_events, thread_sensitive=True))


class AsgiResponse:
    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes):
        self.status_code = status
        self.headers = {k.decode().lower(): v.decode() for k, v in headers}
        self.content = body

    def json(self):
        import json

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


@pytest.fixture
def deliver(db):
    """Deliver signed webhooks through the real endpoint (asserting each is acknowledged), then apply them."""

    def _deliver(*documents):
        responses = [post_webhook(d) for d in documents]
        for response in responses:
            assert response.status_code == 200, response.content
        apply_stored()
        return responses

    return _deliver


@pytest.fixture
def moderator_user(django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("mod", password="pw-mod-123456")
    user.user_permissions.add(Permission.objects.get(codename="moderate_conference"))
    return user


@pytest.fixture
def observer_user(django_user_model):
    return django_user_model.objects.create_user("watcher", password="pw-watch-123456")


@pytest.fixture
def moderator_client(client, moderator_user):
    client.force_login(moderator_user)
    return client


@pytest.fixture
def observer_client(client, observer_user):
    client.force_login(observer_user)
    return client


REQUIRE_ALL = os.environ.get("REQUIRE_ALL") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With REQUIRE_ALL=1 (CI), a test skipped for a missing dependency is a failure."""
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped, but REQUIRE_ALL=1 forbids skips: {reason}"
