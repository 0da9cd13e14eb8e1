"""Each server under test: its own ASGI server process (uvicorn or Daphne) on a free loopback port with its
own SQLite file."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from moderator.benchmark.events import PUBLIC_KEY

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    """Until something listens on the loopback port; fail early if `process` (the server) exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def stop_process(process: subprocess.Popen | None) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def base_env(db: Path, secret_key: str) -> dict[str, str]:
    """The embedded default configuration (SQLite in WAL mode, in-memory channel layer), production-like:
    debug off (no query log), the webhook key of the simulator, the SDK pointed nowhere."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "DJANGO_"))}
    return {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "moderator.settings",
        "DATABASE_URL": f"sqlite:///{db}",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secret_key,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "DJANGO_LOG_LEVEL": "ERROR",
        "TELNYX_PUBLIC_KEY": PUBLIC_KEY,
        "TELNYX_API_KEY": "",
        "TELNYX_BASE_URL": "http://127.0.0.1:9/v2",  # never the real Telnyx
    }


class Workspace:
    """A temp directory with one migrated database (with the benchmark user and its session) that
    every server copies, so each starts from the same state without migrating again."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.secret_key = secrets.token_urlsafe(40)
        self.template = directory / "template.sqlite3"
        self.session = ""

    def worker(self, db: Path, *args: str, debug: bool = False) -> dict:
        env = base_env(db, self.secret_key)
        if debug:
            env["DJANGO_DEBUG"] = "1"  # the development static files: no collectstatic manifest needed
        result = subprocess.run(
            [sys.executable, "-m", "moderator.benchmark.worker", *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )
        if result.returncode != 0:
            raise RuntimeError(f"worker {args[0]} failed:\n{result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def prepare(self) -> None:
        self.session = self.worker(self.template, "prepare")["session"]

    def database(self, name: str) -> Path:
        db = self.directory / f"{name}.sqlite3"
        shutil.copyfile(self.template, db)
        return db


# How each ASGI server the product supports is started (one process, one event loop, loopback only).
ASGI_SERVERS = {
    "daphne": lambda port, app: [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app],
    "uvicorn": lambda port, app: [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-access-log", "--log-level", "warning", "--lifespan", "auto",
                                  "--ws-per-message-deflate", "false", app],
}


class Server:
    def __init__(self, workspace: Workspace, name: str, app: str, settings_module: str = "moderator.settings",
                 asgi_server: str = "uvicorn"):
        self.name, self.app, self.asgi_server = name, app, asgi_server
        self.db = workspace.database(name)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**base_env(self.db, workspace.secret_key), "DJANGO_SETTINGS_MODULE": settings_module}
        self.log = workspace.directory / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Server:
        self.process = subprocess.Popen(
            ASGI_SERVERS[self.asgi_server](self.port, self.app),
            cwd=ROOT, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, self.process)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
