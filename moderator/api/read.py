"""The read API: JSON for the conferences, their legs and recordings, and the waiting rooms; the API's own
OpenAPI document."""

from __future__ import annotations

import functools
from pathlib import Path

from django.core.paginator import EmptyPage, Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse

from moderator.api.access import login_required_json
from moderator.api.errors import error, methods, possible_id
from moderator.models import Conference
from moderator.state.serializers import conference_dict, conference_summary, conferences_with_counts, queues_dict
from moderator.telnyx.event import is_text

MAX_PAGE_SIZE = 250
SCHEMA_PATH = Path(__file__).with_name("openapi.yml")


def _positive_int(value: str | None, default: int, field: str) -> int:
    if value in (None, ""):
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(field)
    return int(value)


@login_required_json
def conference_list(request: HttpRequest) -> JsonResponse:
    queryset = Conference.objects.order_by("-first_seen_at", "-id")
    status = request.GET.get("status")
    if status:
        if status not in Conference.Status.values:
            return error(400, "invalid filter", f"status must be one of {', '.join(Conference.Status.values)}",
                         field="status")
        queryset = queryset.filter(status=status)
    if name := request.GET.get("name"):
        if not is_text(name):
            return error(400, "invalid filter", "name holds a NUL character or a lone surrogate", field="name")
        queryset = queryset.filter(name__icontains=name)
    try:
        page_number = _positive_int(request.GET.get("page"), 1, "page")
        page_size = min(_positive_int(request.GET.get("page_size"), 50, "page_size"), MAX_PAGE_SIZE)
    except ValueError as exc:
        return error(400, "invalid paging", f"{exc} must be a positive whole number", field=str(exc))
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
