"""The one place that talks to Telnyx: the SDK client and what its failures mean to a moderator.

Telnyx cannot de-duplicate mute, unmute, hold, unhold, play, stop or send_dtmf (they take no
``command_id``), so those are sent exactly once: a retried mute after a timeout could land twice,
and a retried "play" would play twice. Commands that take a ``command_id`` get a fresh one and may
be retried, because Telnyx ignores a repeat within 60 s.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import httpx
import telnyx
from django.conf import settings

RETRIES_WITH_COMMAND_ID = 2


@dataclass
class TelnyxFailure(Exception):
    """A command Telnyx refused or did not answer; `status` is what our API answers with."""

    status: int
    code: str
    title: str
    detail: str
    telnyx_status: int | None = None

    def __str__(self) -> str:
        return f"{self.title}: {self.detail}"



@lru_cache(maxsize=4)
def _client(api_key: str, base_url: str, timeout: float) -> telnyx.Telnyx:
    return telnyx.Telnyx(
        api_key=api_key or "unset",
        base_url=base_url or None,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
        max_retries=0,
    )


def client(*, retries: int = 0) -> telnyx.Telnyx:
    base = _client(settings.TELNYX_API_KEY, settings.TELNYX_BASE_URL, settings.TELNYX_TIMEOUT_SECONDS)
    return base.with_options(max_retries=retries) if retries else base


def new_command_id() -> str:
    return str(uuid.uuid4())


def _first_error(error: telnyx.APIStatusError) -> dict[str, str]:
    try:
        errors = error.response.json().get("errors") or [{}]
        first = errors[0] if isinstance(errors[0], dict) else {}
    except (ValueError, AttributeError):
        first = {}
    return {k: str(first.get(k) or "") for k in ("code", "title", "detail")}


def send(what: str, target: str, call: Callable[[telnyx.Telnyx], Any], *, retries: int = 0) -> Any:
    """Run one SDK call; turn every way it can fail into a TelnyxFailure naming `what` and `target`."""
    try:
        return call(client(retries=retries))
    except telnyx.APIStatusError as error:
        first = _first_error(error)
        if error.status_code < 500:
            return_status = (
                error.status_code if error.status_code != 401 else 502
            )  # our key is wrong, not the user
            raise TelnyxFailure(
                return_status,
                first["code"] or str(error.status_code),
                first["title"] or f"Telnyx refused to {what}",
                first["detail"] or f"Telnyx answered {error.status_code} to {what} on {target}.",
                error.status_code,
            ) from error
        raise TelnyxFailure(
            502,
            first["code"] or str(error.status_code),
            f"Telnyx failed to {what}",
            f"Telnyx answered {error.status_code} to {what} on {target}"
            + (f": {first['detail']}" if first["detail"] else "."),
            error.status_code,
        ) from error
    except telnyx.APITimeoutError as error:
        raise TelnyxFailure(
            504,
            "timeout",
            f"Telnyx did not answer in time to {what}",
            f"No answer from Telnyx within {settings.TELNYX_TIMEOUT_SECONDS:g} s to {what} on "
            f"{target}; it may or may not have happened — check the page before retrying.",
        ) from error
    except telnyx.APIConnectionError as error:
        raise TelnyxFailure(
            502,
            "unreachable",
            f"Could not reach Telnyx to {what}",
            f"The connection to Telnyx failed while sending {what} for {target}.",
        ) from error


def as_dict(response: Any) -> dict[str, Any]:
    data = getattr(response, "data", response)
    if hasattr(data, "to_dict"):
        return data.to_dict()
    return data if isinstance(data, dict) else {"result": str(data)}
