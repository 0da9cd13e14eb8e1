"""How one outbox step went (`OutboxCommand.status`), and the Telnyx error codes the steps understand."""

from __future__ import annotations

from dataclasses import dataclass

from moderator.models import OutboxCommand
from moderator.telnyx.client import TelnyxFailure

ALREADY_ANSWERED, CALL_ENDED, CONFERENCE_ENDED, NO_SUCH_CONFERENCE, NAME_TAKEN, CONFERENCE_FULL = (
    "90039",
    "90018",
    "90019",
    "90058",
    "90033",
    "90032",  # "Maximum number of participants reached": max_participants (250 unless the room sets it; 800 at most)
)


@dataclass(frozen=True)
class Outcome:
    """How a step went, for its outbox row."""

    status: str
    error: str = ""


SENT = Outcome(OutboxCommand.Status.SENT)


def skipped(reason: str) -> Outcome:
    return Outcome(OutboxCommand.Status.SKIPPED, reason)


def refused(failure: TelnyxFailure, error: str) -> Outcome:
    """Telnyx said no (never retried), or could not be reached or errored (failed)."""
    said_no = (failure.telnyx_status or 500) < 500 and failure.code not in ("timeout", "unreachable")
    return Outcome(OutboxCommand.Status.REFUSED if said_no else OutboxCommand.Status.FAILED, error)
