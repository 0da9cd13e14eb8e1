"""Only pages of this site may open the live sockets: the Origin must match the handshake's own scheme, host and
port (as Django's CSRF check compares a form's Origin), or be one of DJANGO_CSRF_TRUSTED_ORIGINS; another port
or scheme of the same host is another site."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from moderator.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def user(db):
    return User.objects.create_user("viewer", password="x-123456789")


def opens(user: User, headers: dict[str, str] | list[tuple[str, str]], scheme: str | None = None) -> bool:
    """Whether a logged-in page sending these handshake headers gets its board socket (through the real ASGI
    app: the origin check, then auth, then the consumer)."""

    async def attempt() -> bool:
        pairs = headers.items() if isinstance(headers, dict) else headers
        communicator = WebsocketCommunicator(application, "/ws/board/", [(k.encode(), v.encode()) for k, v in pairs])
        communicator.scope["user"] = user
        if scheme:
            communicator.scope["scheme"] = scheme
        connected, _ = await communicator.connect(timeout=5)
        if connected:
            await communicator.receive_json_from(timeout=5)  # the snapshot: really open
            await communicator.disconnect()
        return connected

    return asyncio.run(attempt())


def test_a_page_served_from_the_same_origin_opens_its_socket(user):
    assert opens(user, {"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000"})
    assert opens(user, {"host": "localhost", "origin": "http://localhost"})
    assert opens(user, {"host": "127.0.0.1", "origin": "http://127.0.0.1:80"})  # the default port, spelled out
    assert opens(user, {"host": "[::1]:8000", "origin": "http://[::1]:8000"})


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:1",
        "https://127.0.0.1:8000",
        "http://127.0.0.1",
        "http://evil.example",
        "http://127.0.0.1:8000.evil.example",
        "http://evil.example@127.0.0.1:8000",
        "http://127.0.0.1:8000/path",
        "null",
        "",
        "file://",
        "http://127.0.0.1:99999",
        "http://[::1",
        "http://127.0.0.1:８０００",
    ],
)
def test_a_page_from_another_port_scheme_or_host_cannot_open_a_socket(user, origin):
    assert not opens(user, {"host": "127.0.0.1:8000", "origin": origin})


def test_a_handshake_without_an_origin_or_with_two_is_refused(user):
    assert not opens(user, {"host": "127.0.0.1:8000"})
    assert not opens(user, [("host", "127.0.0.1:8000"), ("origin", "http://127.0.0.1:8000"), ("origin", "http://evil.example")])


def test_a_host_that_is_not_allowed_cannot_vouch_for_its_own_origin(user):
    assert not opens(user, {"host": "evil.example", "origin": "http://evil.example"})
    assert not opens(user, {"origin": "http://127.0.0.1:8000"})  # no Host at all


def test_behind_a_tls_proxy_the_https_page_opens_its_socket_and_a_plain_http_page_does_not(user, settings):
    # nginx passes Host and X-Forwarded-Proto; Daphne puts no scheme in a websocket's scope.
    settings.ALLOWED_HOSTS = ["moderator.example.com"]
    proxied = {"host": "moderator.example.com", "x-forwarded-proto": "https"}
    assert opens(user, {**proxied, "origin": "https://moderator.example.com"})
    assert not opens(user, {**proxied, "origin": "http://moderator.example.com"})
    assert not opens(user, {**proxied, "origin": "https://moderator.example.com:8443"})
    # uvicorn --proxy-headers puts the forwarded scheme in the scope instead.
    assert opens(user, {"host": "moderator.example.com", "origin": "https://moderator.example.com"}, scheme="wss")
    assert not opens(user, {"host": "moderator.example.com", "origin": "http://moderator.example.com"}, scheme="wss")


def test_csrf_trusted_origins_may_open_sockets_too(user, settings):
    # A proxy on a non-default port that does not pass it on in Host: the public origin is trusted by name.
    settings.ALLOWED_HOSTS = ["moderator.example.com"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://moderator.example.com:8443", "https://*.example.org"]
    assert opens(user, {"host": "moderator.example.com", "origin": "https://moderator.example.com:8443"})
    assert opens(user, {"host": "moderator.example.com", "origin": "https://live.example.org"})
    assert not opens(user, {"host": "moderator.example.com", "origin": "http://live.example.org"})
    assert not opens(user, {"host": "moderator.example.com", "origin": "https://example.org.evil.example"})


def test_a_live_server_opens_the_socket_of_its_own_page_only(any_server):
    dashboard = any_server
    client = dashboard.client()
    cookie = client.cookies["sessionid"]
    client.close()

    async def status(origin: str) -> int:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(
                    f"ws://127.0.0.1:{dashboard.port}/ws/board/",
                    headers={"Cookie": f"sessionid={cookie}", "Origin": origin},
                ) as ws:
                    assert (await ws.receive_json(timeout=10))["type"] == "snapshot"
                    return 101
            except aiohttp.WSServerHandshakeError as refused:
                return refused.status

    assert asyncio.run(status(dashboard.url)) == 101
    for origin in ("http://127.0.0.1:1", f"https://127.0.0.1:{dashboard.port}", "http://evil.example"):
        assert asyncio.run(status(origin)) == 403, origin
