"""A real dashboard server (Daphne, or uvicorn, on loopback, its own SQLite file) for end-to-end and browser
tests."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from moderator.benchmark.servers import ASGI_SERVERS, free_port, stop_process, wait_for_port
from tests.telnyx_events import TEST_PUBLIC_KEY

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "live-test-password-1"


WAIT = 20.0  # seconds to wait for something that must happen (generous: CI machines are slow)


def eventually(check, what: str, timeout: float = WAIT):
    """Wait until `check()` returns something truthy (what a server does after answering takes its time)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what} (last: {value!r})")
        time.sleep(0.1)


SERVERS = tuple(ASGI_SERVERS)


class LiveServer:
    """One Daphne (or uvicorn) process serving moderator.asgi with the given environment."""

    def __init__(self, tmp: Path, extra_env: dict[str, str] | None = None, server: str = "daphne"):
        assert server in SERVERS, server
        self.server = server
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"{server}-{self.port}.log"
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("DATABASE_URL", "REDIS_URL", "DJANGO_"))
            },
            "DJANGO_SETTINGS_MODULE": "moderator.settings",
            "DATABASE_URL": f"sqlite:///{tmp / 'live.sqlite3'}",
            "TELNYX_PUBLIC_KEY": TEST_PUBLIC_KEY,
            "TELNYX_API_KEY": "KEY_SIMULATOR",
            "TELNYX_BASE_URL": "http://127.0.0.1:9/v2",  # never the real Telnyx
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            **(extra_env or {}),
        }
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str, env: dict[str, str] | None = None) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def prepare(self) -> None:
        self.manage("migrate", "--noinput")
        self.manage(
            "shell",
            "-c",
            (
                "from django.contrib.auth.models import User, Permission;"
                f"u = User.objects.create_user('moderator', password='{PASSWORD}');"
                "u.user_permissions.add(*Permission.objects.filter(codename__in=['moderate_conference', 'view_captions']));"
                f"User.objects.create_user('observer', password='{PASSWORD}')"
            ),
        )

    def command(self) -> list[str]:
        return ASGI_SERVERS[self.server](self.port, "moderator.asgi:application")

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, self.process)

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, username: str = "moderator") -> httpx.Client:
        """An HTTP client logged in through the real login form."""
        client = httpx.Client(base_url=self.url, timeout=10)
        page = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = client.post(
            "/accounts/login/",
            data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
            headers={"Referer": f"{self.url}/accounts/login/"},
        )
        assert response.status_code in (302, 303), response.text[:500]
        return client


@pytest.fixture(scope="session")
def live_server_factory(tmp_path_factory):
    servers: list[LiveServer] = []

    def make(extra_env: dict[str, str] | None = None, server: str = "daphne") -> LiveServer:
        live = LiveServer(tmp_path_factory.mktemp("live"), extra_env, server)
        live.prepare()
        live.start()
        servers.append(live)
        return live

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def dashboard(live_server_factory):
    """A dashboard verifying webhooks with the test key (sign with tests.telnyx_events.sign)."""
    return live_server_factory()


@pytest.fixture(scope="session")
def uvicorn_dashboard(live_server_factory):
    """`dashboard`, served by uvicorn: it streams request bodies to the app (Daphne buffers them first)."""
    return live_server_factory(server="uvicorn")


@pytest.fixture(params=SERVERS)
def any_server(request) -> LiveServer:
    """`dashboard` and `uvicorn_dashboard` in turn: for what both servers must do alike."""
    return request.getfixturevalue("dashboard" if request.param == "daphne" else "uvicorn_dashboard")


@contextlib.contextmanager
def simulator_stack(
    tmp: Path, *, ring_timeout: float = 20, setup=None, env: dict[str, str] | None = None, **sim_options
) -> Iterator[tuple[object, LiveServer]]:
    """The Telnyx simulator and a dashboard wired to each other, as `manage.py demo` does: the simulator
    signs webhooks to the dashboard, the dashboard's SDK calls go to the simulator. `setup(server)` runs
    after migrating, before the dashboard starts; `env` is the dashboard's, `sim_options` the simulator's."""
    from moderator.simulator.keys import development_public_key
    from moderator.simulator.testing import running_simulator

    server = LiveServer(tmp, env)
    options = {"media_seconds": 0.3, **sim_options}
    with running_simulator(f"{server.url}/webhooks/telnyx", ring_timeout=ring_timeout, **options) as sim:
        server.env.update(
            {
                "TELNYX_PUBLIC_KEY": development_public_key(),
                "TELNYX_BASE_URL": sim.base_url,
                "TELNYX_API_KEY": sim.api_key,
            }
        )
        server.prepare()
        if setup is not None:
            setup(server)
        server.start()
        try:
            yield sim, server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def sim_stack(tmp_path_factory):
    with simulator_stack(tmp_path_factory.mktemp("stack")) as stack:
        yield stack
