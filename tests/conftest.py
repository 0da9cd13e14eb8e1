from __future__ import annotations

import os

import pytest

from tests.delivery import apply_stored, post_webhook
from tests.telnyx_events import TEST_PUBLIC_KEY

pytest_plugins = [
    "tests.fixtures_simulator",
    "tests.fixtures_actions",
    "tests.fixtures_live_server",
    "tests.fixtures_servers",
    "tests.fixtures_browser",
    "tests.fixtures_dial_in",
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
    the inbox stores in the test's own thread and transaction (its own thread, in a server). The events it
    keeps parsed for the applier go with the test's rows: tests reuse event ids."""
    from asgiref.sync import sync_to_async

    from moderator.asgi import webhook_app
    from moderator.ingest.inbox import store_events, stored_events

    settings.BACKGROUND_TASKS = False
    monkeypatch.setattr(webhook_app.inbox, "run_store", sync_to_async(store_events, thread_sensitive=True))
    yield
    stored_events.clear()


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


def pytest_configure(config):
    # Tests log users in by the hundred: the fast hasher (about 40 s of a run was PBKDF2's).
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With REQUIRE_ALL=1 (CI), a test skipped for a missing dependency is a failure."""
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped, but REQUIRE_ALL=1 forbids skips: {reason}"
