"""The API's one error shape: ``{"error": {"status", "code", "title", "detail", "field"?}}``.

`code` is machine-readable: Telnyx's own error code when Telnyx refused ("90018"), ours otherwise
("invalid", "not_found", …). `field` names the request field at fault, when one is. The page shows
`title: detail`; scripts switch on `code`. Every answer under /api/ is JSON — Django's own refusals too
(a wrong method, a body it cannot parse, no such path, a CSRF failure).
"""

from __future__ import annotations

from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from pydantic import ValidationError

from moderator.control.schemas import first_error
from moderator.telnyx.client import TelnyxFailure
from moderator.telnyx.event import is_text

CODES = {400: "invalid", 401: "not_authenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}


def error(status: int, title: str, detail: str = "", *, code: str | None = None, field: str | None = None) -> JsonResponse:
    body = {"status": status, "code": code or CODES.get(status, str(status)), "title": title, "detail": detail}
    if field is not None:
        body["field"] = field
    return JsonResponse({"error": body}, status=status)


class ApiError(Exception):
    """Raised by a view's helpers to answer with an error (see `moderator.api.actions.answer`)."""

    def __init__(self, status: int, title: str, detail: str = "", **extra):
        super().__init__(detail or title)
        self.response = error(status, title, detail, **extra)


def invalid(exc: ValidationError) -> JsonResponse:
    field, message = first_error(exc)
    return error(400, "invalid request", message, field=field)


def telnyx_failure(failure: TelnyxFailure) -> JsonResponse:
    """Telnyx refused (its status and code), failed (502) or did not answer (504)."""
    return error(failure.status, failure.title, failure.detail, code=failure.code)


def possible_id(value: str) -> bool:
    """Whether `value` can be a Telnyx id at all: anything else is answered 404 before a database or Telnyx
    sees it (PostgreSQL refuses a NUL; the SDK refuses a "." or ".." path segment with a ValueError)."""
    return 0 < len(value) <= 255 and is_text(value) and value not in (".", "..")


def methods(*allowed: str):
    """Like Django's require_http_methods, but the refusal is the API's JSON error naming the methods allowed
    (Django's is an empty HTML 405)."""

    def decorator(view):
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if request.method not in allowed:
                response = error(405, "method not allowed", f"{request.method} is not allowed here: use {' or '.join(allowed)}")
                response["Allow"] = ", ".join(allowed)
                return response
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def no_such_path(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    return error(404, "not found", f"nothing is at {request.path}")


def _json_for_the_api(status: int, title: str, default):
    """Django's error page for `status`, except under /api/: the API's JSON error there, with the reason
    (a multipart body without a boundary, refused by Django before any view, is a 400 saying so)."""

    def view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
        if request.path.startswith("/api/"):
            detail = "" if status >= 500 or exception is None else str(exception)
            return error(status, title, detail[:500] if status != 404 else f"nothing is at {request.path}")
        return default(request) if status >= 500 else default(request, exception)

    return view


bad_request = _json_for_the_api(400, "bad request", defaults.bad_request)
permission_denied = _json_for_the_api(403, "forbidden", defaults.permission_denied)
page_not_found = _json_for_the_api(404, "not found", defaults.page_not_found)
server_error = _json_for_the_api(500, "server error", defaults.server_error)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF refusals as JSON for the API (the page shows the message), Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return error(403, "CSRF check failed", f"{reason}. Reload the page and try again.", code="csrf_failed")
    from django.views.csrf import csrf_failure as default

    return default(request, reason)
