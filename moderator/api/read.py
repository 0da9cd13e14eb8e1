"""Read API: JSON for the conferences, their legs and recordings, and the waiting rooms."""

from __future__ import annotations

from functools import wraps

from django.core.paginator import EmptyPage, Paginator
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET, require_http_methods

from moderator.models import Conference
from moderator.state.serializers import conference_dict, conference_summary, conferences_with_counts, queues_dict

MAX_PAGE_SIZE = 250


def error(status: int, title: str, detail: str = "") -> JsonResponse:
    return JsonResponse({"error": {"status": status, "title": title, "detail": detail}}, status=status)


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


@require_http_methods(["GET", "POST"])
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


@require_GET
@login_required_json
def conference_detail(request: HttpRequest, telnyx_id: str) -> JsonResponse:
    conference = Conference.objects.filter(telnyx_id=telnyx_id).first()
    if conference is None:
        return error(404, "conference not found", f"no conference with id {telnyx_id!r}")
    return JsonResponse(conference_dict(conference))


@require_GET
@login_required_json
def queue_list(request: HttpRequest) -> JsonResponse:
    queues = queues_dict()
    return JsonResponse(
        {"queues": [{"name": name, "calls": calls, "waiting": len(calls)} for name, calls in queues.items()]}
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    """CSRF refusals as JSON for the API (the page shows the message), Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return error(403, "CSRF check failed", f"{reason}. Reload the page and try again.")
    from django.views.csrf import csrf_failure as default

    return default(request, reason)
