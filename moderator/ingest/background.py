"""The background tasks of one worker process: the applier and the outbox sender, on the server's event loop.

Started when the server starts (ASGI lifespan; Daphne, which has none, when its reactor runs) or, at the
latest, with the first request. `MODERATOR_BACKGROUND_TASKS=0` keeps them out of a process: it then only
acknowledges webhooks (the other workers apply them), and the tests drive the applier and the sender
themselves, inside their own transactions.
"""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings

from moderator.control.outbox import OutboxSender
from moderator.ingest.applier import Applier
from moderator.live import broadcast

logger = logging.getLogger(__name__)


class BackgroundTasks:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        broadcast.serve_on(loop)  # what the outbox's sender threads commit is sent from here
        self.sender = OutboxSender()
        self.applier = Applier(after_commands=self.sender.wake)
        self._tasks = [
            loop.create_task(self.applier.run(), name="applier"),
            loop.create_task(self.sender.run(), name="outbox-sender"),
        ]
        for task in self._tasks:
            task.add_done_callback(_report_exit)

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        broadcast.serve_on(None)


def _report_exit(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.critical("background task %s died", task.get_name(), exc_info=task.exception())


_running: dict[asyncio.AbstractEventLoop, BackgroundTasks] = {}


def start() -> BackgroundTasks | None:
    """Start the tasks on the running loop, once per loop; None when this process runs none."""
    if not settings.BACKGROUND_TASKS:
        return None
    loop = asyncio.get_running_loop()
    tasks = _running.get(loop)
    if tasks is None:
        tasks = _running[loop] = BackgroundTasks(loop)
    return tasks


def stop() -> None:
    tasks = _running.pop(asyncio.get_running_loop(), None)
    if tasks is not None:
        tasks.stop()


def wake_applier() -> None:
    """Something was stored: apply it now rather than at the next poll. Call on the loop."""
    tasks = start()
    if tasks is not None:
        tasks.applier.wake()
