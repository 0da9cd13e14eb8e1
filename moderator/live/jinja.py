"""The Jinja2 environment of the live fragments (templates/live/): the one renderer of everything a live page
shows, for the first page load, a reconnecting page's snapshot and every broadcast alike. Jinja2 compiles a
template to Python once; Django's engine walks its node tree per render, several times slower for the
broadcast path, which renders every changed conference after every applied batch."""

from __future__ import annotations

from typing import Any

import jinja2
from django.urls import reverse


def _finalize(value: Any) -> Any:
    return "" if value is None else value  # an absent time is an empty attribute, not "None"


class Environment(jinja2.Environment):
    def getattr(self, obj: Any, attribute: str) -> Any:
        # The fragments' data are plain dicts: look `p.status` up as a key first. (Jinja tries the attribute
        # first and falls back on the key through an AttributeError: a fifth of a broadcast's time.)
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


def environment(**options: Any) -> Environment:
    env = Environment(**{**options, "finalize": _finalize, "trim_blocks": True, "lstrip_blocks": True})
    env.globals["url"] = lambda name, *args: reverse(name, args=args)
    from moderator.live.timeline import end_reason  # here: the models are loaded once an engine is built

    env.filters["reason"] = end_reason  # one table of wordings (timeline.py): "all_left" reads "everyone left"
    return env
