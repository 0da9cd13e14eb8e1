"""The Jinja2 environment of the live fragments (templates/live/): the one renderer of everything a live page
shows, for the first page load, a reconnecting page's snapshot and every broadcast alike. Jinja2 compiles a
template to Python once; Django's engine walks its node tree per render, several times slower for the
broadcast path, which renders every changed conference after every applied batch."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from jinja2 import Environment


def _finalize(value: Any) -> Any:
    return "" if value is None else value  # an absent time is an empty attribute, not "None"


def environment(**options: Any) -> Environment:
    env = Environment(**{**options, "finalize": _finalize, "trim_blocks": True, "lstrip_blocks": True})
    env.globals["url"] = lambda name, *args: reverse(name, args=args)
    return env
