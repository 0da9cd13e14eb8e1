"""Bounded waits on the database: a request that must answer within Telnyx's ~2 s (the webhook, the health
check) waits for a lock at most that long, on any backend, and fails instead of queueing for minutes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import DatabaseError, connection


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
