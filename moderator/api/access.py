"""Who may call the API: a session login for everything (401 otherwise), the moderate permission to act."""

from __future__ import annotations

from functools import wraps

from django.http import HttpRequest

from moderator.api.errors import error


def login_required_json(view):
    """Like login_required, but an API caller gets a 401 JSON answer instead of a login redirect."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return error(401, "authentication required", "log in at /accounts/login/")
        if not request.user.is_active:
            return error(403, "account disabled")
        return view(request, *args, **kwargs)

    return wrapper


def moderator_required(view):
    """Session login (401), then the moderate permission (403): observers watch, they do not act."""

    @login_required_json
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.has_perm("moderator.moderate_conference"):
            return error(403, "not allowed", "Observers can watch conferences but not act on them.")
        return view(request, *args, **kwargs)

    return wrapper
