"""Throwaway Redis and PostgreSQL servers on loopback, one of each per test session.

Each runs from a fresh directory under /tmp and is stopped (and its directory removed) at the end.
PostgreSQL refuses to run as root, so as root (CI) the cluster belongs to the ``postgres`` system
user that Debian's package creates, and its commands run through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from moderator.benchmark.servers import free_port, stop_process, wait_for_port


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``redis://`` URL of a redis-server that keeps nothing on disk."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server): the scale tests need it")
    workdir = Path(tempfile.mkdtemp(prefix="moderator-redis-", dir="/tmp"))
    port = free_port()
    log = (workdir / "redis.log").open("ab")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port)
        deadline = time.monotonic() + 20
        while not _redis_ping(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {(workdir / 'redis.log').read_text()[-2000:]}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(process)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


class PostgresCluster:
    """A PostgreSQL cluster in a temporary directory, listening on 127.0.0.1 only (trust auth)."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.port = free_port()
        self.as_user: list[str] = []
        self.workdir = Path(tempfile.mkdtemp(prefix="moderator-pg-", dir="/tmp"))
        if os.geteuid() == 0:
            # root: the cluster belongs to the postgres user, and only it may enter the directory.
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.workdir, ignore_errors=True)
                pytest.skip("running as root and there is no `postgres` user to run PostgreSQL as")
            os.chown(self.workdir, owner.pw_uid, owner.pw_gid)
            os.chmod(self.workdir, 0o700)
            runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
            if runuser is None:
                shutil.rmtree(self.workdir, ignore_errors=True)
                pytest.skip("running as root and `runuser` (util-linux) is missing: cannot run PostgreSQL")
            self.as_user = [runuser, "-u", "postgres", "--"]
        self.data = self.workdir / "data"
        self.log = self.workdir / "postgres.log"

    def run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [*self.as_user, str(self.bindir / tool), *args],
            cwd=self.workdir,  # the postgres user may not be allowed into the caller's directory
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            log = self.log.read_text()[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{result.stdout}{result.stderr}{log}")

    def start(self) -> None:
        # No fsync: a test cluster that loses its data on a power cut loses nothing anyone needs.
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-p {self.port} -h 127.0.0.1 -k {self.workdir} -F -c max_connections=200"
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def postgres_bindir() -> Path | None:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3].split(".")[0])
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    bindir = postgres_bindir()
    if bindir is None or not (bindir / "initdb").exists():
        pytest.skip(
            "PostgreSQL server binaries are not installed (apt-get install postgresql): the scale tests need them"
        )
    cluster = PostgresCluster(bindir)
    try:
        cluster.start()
        wait_for_port(cluster.port)
        yield cluster
    finally:
        cluster.stop()
