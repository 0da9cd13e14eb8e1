"""Bounded waits on the database: a request that must answer within Telnyx's ~2 s (the webhook, the health
check) waits for a lock at most that long, on any backend, and fails instead of queueing for minutes."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from django.db import DatabaseError, OperationalError, connection

T = TypeVar("T")

_dedicated = threading.local()
SQLITE_POLL_MS = 1  # how long SQLite's busy handler waits on a polling connection, before it is asked again


def polling_for_the_write_lock(write: Callable[[], T], within: float) -> T:
    """`write()` (one transaction) on a connection set up by `bound_this_threads_waits`, asked again every
    millisecond while SQLite's write lock is taken, for `within` seconds at most.

    SQLite's own busy handler sleeps 1, 2, 5 … 100 ms between tries. Against the outbox sender's eight threads,
    each writing a few short transactions per command it sends, a writer waiting there found the lock taken at
    each of its rare tries: a burst of commands (a town hall's callers entering their PIN at once) kept the
    inbox out for the whole 1.5 s, and Telnyx was answered 503 and delivered again. Asking every millisecond,
    it takes one of the many gaps between their transactions."""
    deadline = time.monotonic() + within
    while True:
        try:
            return write()
        except OperationalError as exc:
            if connection.vendor != "sqlite" or "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(SQLITE_POLL_MS / 1000)


def bound_this_threads_waits(seconds: float, *, durable: bool = False) -> None:
    """`bounded_waits`, for good, on the connection of a thread that has one to itself (the inbox's): set once
    per connection rather than around every transaction — each statement more is one more wait for the
    GIL, behind the applier's rendering, on the acknowledgement's path. On SQLite this connection does not wait
    in SQLite's busy handler at all: `polling_for_the_write_lock` waits for it."""
    connection.ensure_connection()
    if getattr(_dedicated, "connection", None) is connection.connection:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_POLL_MS}")
            if durable:
                cursor.execute("PRAGMA synchronous = FULL")
        elif connection.vendor == "postgresql":
            cursor.execute(f"SET lock_timeout = {int(seconds * 1000)}")
            cursor.execute(f"SET statement_timeout = {int(seconds * 1000)}")
    _dedicated.connection = connection.connection


@contextlib.contextmanager
def bounded_waits(seconds: float, *, durable: bool = False) -> Iterator[None]:
    """On this thread's connection, while inside: wait at most `seconds` for a lock (and for a statement, on
    PostgreSQL). `durable`: SQLite commits are flushed to disk (``synchronous=FULL``), not only to the OS."""
    milliseconds = int(seconds * 1000)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"PRAGMA busy_timeout = {milliseconds}")
            if durable and not connection.in_atomic_block:  # (the tests run inside one; refused there)
                cursor.execute("PRAGMA synchronous = FULL")
        elif connection.vendor == "postgresql":
            cursor.execute(f"SET lock_timeout = {milliseconds}")
            cursor.execute(f"SET statement_timeout = {milliseconds}")
    try:
        yield
    finally:
        with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                configured = connection.settings_dict.get("OPTIONS", {}).get("timeout", 5)
                cursor.execute(f"PRAGMA busy_timeout = {int(configured * 1000)}")
            elif connection.vendor == "postgresql":
                cursor.execute("RESET lock_timeout")
                cursor.execute("RESET statement_timeout")


class _Turns:
    """Writers of one process take turns in arrival order (a ticket lock). SQLite has one write lock and its
    busy handler polls for it with sleeps that grow to 100 ms: the inbox, waiting there, missed the short
    gaps between the applier's transactions for 80–100 ms at a time. Taking turns here first, the inbox's
    commit waits for one applier transaction at most."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._next = self._serving = 0

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        if connection.vendor != "sqlite":  # PostgreSQL locks rows, not the database: no turns needed
            yield
            return
        with self._condition:
            ticket, self._next = self._next, self._next + 1
            self._condition.wait_for(lambda: self._serving == ticket)
        try:
            yield
        finally:
            with self._condition:
                self._serving += 1
                self._condition.notify_all()


write_turns = _Turns()
