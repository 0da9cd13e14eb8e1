"""Named points where a worker can be made to die on purpose (kill -9), to test what survives a crash.

`MODERATOR_CRASH_AT=<point>:<n>` makes the process SIGKILL itself the n-th time it passes <point>. Unset
(always, outside the crash tests), `reached()` is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = (
    "inbox-received",  # a webhook verified and parsed, not stored yet
    "inbox-committed",  # stored and committed, not acknowledged yet
    "applier-committed",  # a batch applied and committed, not broadcast yet
    "outbox-claimed",  # outbox commands claimed (committed), not sent yet
)


def _armed() -> dict[str, int]:
    spec = os.environ.get("MODERATOR_CRASH_AT", "")
    point, _, count = spec.partition(":")
    if not point:
        return {}
    if point not in POINTS:
        raise ValueError(f"MODERATOR_CRASH_AT: unknown point {point!r} (one of {', '.join(POINTS)})")
    return {point: int(count or 1)}


_countdown = _armed()


def reached(point: str) -> None:
    left = _countdown.get(point)
    if left is None:
        return
    if left <= 1:
        os.kill(os.getpid(), signal.SIGKILL)
    _countdown[point] = left - 1
