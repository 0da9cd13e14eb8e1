"""The API's one error shape: ``{"error": {"status", "code", "title", "detail", "field"?}}``.

`code` is machine-readable: Telnyx's own error code when Telnyx refused ("90018"), ours otherwise
("invalid", "not_found", …). `field` names the request field at fault, when one is. The page shows
`title: detail`; scripts switch on `code`.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from pydantic import ValidationError

from moderator.control.schemas import first_error
from moderator.telnyx.client import TelnyxFailure


def error(status: int, code: str, title: str, detail: str = "", field: str | None = None) -> JsonResponse:
    body = {"status": status, "code": code, "title": title, "detail": detail}
    if field is not None:
        body["field"] = field
    return JsonResponse({"error": body}, status=status)


class ApiError(Exception):
    """Raised by a view's helpers to answer with an error (see `answer`)."""

    def __init__(self, status: int, code: str, title: str, detail: str = "", field: str | None = None):
        super().__init__(detail or title)
        self.response = error(status, code, title, detail, field)


def invalid(exc: ValidationError) -> JsonResponse:
    field, message = first_error(exc)
    return error(400, "invalid", "invalid request", message, field)


def telnyx_failure(failure: TelnyxFailure) -> JsonResponse:
    """Telnyx refused (its status and code), failed (502) or did not answer (504)."""
    return error(failure.status, failure.code, failure.title, failure.detail)


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    """CSRF refusals as JSON for the API (the page shows the message), Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return error(403, "csrf", "CSRF check failed", f"{reason}. Reload the page and try again.")
    from django.views.csrf import csrf_failure as default

    return default(request, reason)
