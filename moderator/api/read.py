"""Read API: JSON for the conferences, their legs and recordings, and the waiting rooms."""

from __future__ import annotations

import functools
from functools import wraps
from pathlib import Path

from django.core.paginator import EmptyPage, Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from moderator.models import Conference
from moderator.state.serializers import conference_dict, conference_summary, conferences_with_counts, queues_dict
from moderator.telnyx.event import is_text

MAX_PAGE_SIZE = 250
SCHEMA_PATH = Path(__file__).with_name("openapi.yml")
CODES = {400: "invalid", 401: "not_authenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}


def error(status: int, title: str, detail: str = "", code: str | None = None) -> JsonResponse:
    """The API's one error shape (Telnyx's failures carry Telnyx's code instead, see TelnyxFailure)."""
    body = {"status": status, "code": code or CODES.get(status, str(status)), "title": title, "detail": detail}
    return JsonResponse({"error": body}, status=status)


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


def possible_id(value: str) -> bool:
    """Whether `value` can be a Telnyx id at all: anything else is answered 404 before a database or Telnyx
    sees it (PostgreSQL refuses a NUL; the SDK refuses a "." or ".." path segment with a ValueError)."""
    return 0 < len(value) <= 255 and is_text(value) and value not in (".", "..")


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


def _positive_int(value: str | None, default: int, field: str) -> int:
    if value in (None, ""):
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{field} must be a positive whole number")
    return int(value)


@methods("GET", "POST")
def conference_collection(request: HttpRequest) -> JsonResponse:
    """GET lists conferences; POST creates one from a call (an action, see action_api)."""
    if request.method == "POST":
        from moderator.api.actions import create_conference

        return create_conference(request)
    return conference_list(request)


@login_required_json
def conference_list(request: HttpRequest) -> JsonResponse:
    queryset = Conference.objects.order_by("-first_seen_at", "-id")
    status = request.GET.get("status")
    if status:
        if status not in Conference.Status.values:
            return error(
                400, "invalid filter", f"status must be one of {', '.join(Conference.Status.values)}"
            )
        queryset = queryset.filter(status=status)
    if name := request.GET.get("name"):
        if not is_text(name):
            return error(400, "invalid filter", "name holds a NUL character or a lone surrogate")
        queryset = queryset.filter(name__icontains=name)
    try:
        page_number = _positive_int(request.GET.get("page"), 1, "page")
        page_size = min(_positive_int(request.GET.get("page_size"), 50, "page_size"), MAX_PAGE_SIZE)
    except ValueError as exc:
        return error(400, "invalid paging", str(exc))
    paginator = Paginator(conferences_with_counts(queryset), page_size)
    try:
        page = paginator.page(page_number)
    except EmptyPage:
        page = None
    conferences = [] if page is None else page.object_list
    return JsonResponse(
        {
            "conferences": [conference_summary(c, len(c.active_participants)) for c in conferences],
            "page": page_number,
            "page_size": page_size,
            "total": paginator.count,
            "total_pages": paginator.num_pages,
        }
    )


@methods("GET")
@login_required_json
def conference_detail(request: HttpRequest, telnyx_id: str) -> JsonResponse:
    conference = Conference.objects.filter(telnyx_id=telnyx_id).first() if possible_id(telnyx_id) else None
    if conference is None:
        return error(404, "conference not found", f"no conference with id {telnyx_id!r}")
    return JsonResponse(conference_dict(conference))


@methods("GET")
@login_required_json
def queue_list(request: HttpRequest) -> JsonResponse:
    queues = queues_dict()
    return JsonResponse(
        {"queues": [{"name": name, "calls": calls, "waiting": len(calls)} for name, calls in queues.items()]}
    )


@functools.cache
def _schema_document() -> bytes:
    return SCHEMA_PATH.read_bytes()


@methods("GET")
def schema(request: HttpRequest) -> HttpResponse:
    """The OpenAPI document of this API (moderator/api/openapi.yml). No login: it describes, it holds no data."""
    return HttpResponse(_schema_document(), content_type="application/yaml")


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


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    """CSRF refusals as JSON for the API (the page shows the message), Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return error(403, "CSRF check failed", f"{reason}. Reload the page and try again.", code="csrf_failed")
    from django.views.csrf import csrf_failure as default

    return default(request, reason)
