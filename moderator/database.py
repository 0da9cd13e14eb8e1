"""Bounded waits on the database: a request that must answer within Telnyx's ~2 s (the webhook, the health
check) waits for a lock at most that long, on any backend, and fails instead of queueing for minutes."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from django.db import DatabaseError, connection

_dedicated = threading.local()


def bound_this_threads_waits(seconds: float, *, durable: bool = False) -> None:
    """`bounded_waits`, for good, on the connection of a thread that has one to itself (the inbox's): set once
    per connection rather than around every transaction — each statement more is one more wait for the
    GIL, behind the applier's rendering, on the acknowledgement's path."""
    connection.ensure_connection()
    if getattr(_dedicated, "connection", None) is connection.connection:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
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
