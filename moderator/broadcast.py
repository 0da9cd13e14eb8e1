"""After a transaction commits, tell the open dashboards what changed.

Called from ``transaction.on_commit`` only, so rolled-back state is never shown. The dashboard
consumers subscribe to these groups.
"""

from __future__ import annotations

import logging

from moderator.events import Changes

logger = logging.getLogger(__name__)

BOARD_GROUP = "board"


def conference_group(telnyx_id: str) -> str:
    # Channel-layer group names allow only ASCII alphanumerics, hyphens, underscores and periods.
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in telnyx_id)
    return f"conference.{safe}"[:99]


def publish(changes: Changes) -> None:
    """Hook for the live dashboard; filled in by the dashboard's broadcaster."""
    logger.debug("changed: %s", changes)
