"""HTML pages and the health check. Thin: data comes from `fragments`/`serializers`, rules from `events`."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils import timezone
from django.views.decorators.cache import never_cache

from moderator import transcripts
from moderator.api.errors import possible_id
from moderator.control.registry import page_actions
from moderator.database import bounded_waits
from moderator.ingest.applier import WORKER
from moderator.live import captions, fragments
from moderator.models import Conference, Heartbeat, OutboxCommand, Room, UserProfile, WebhookEvent


def can_moderate(user) -> bool:
    return user.has_perm("moderator.moderate_conference")


def can_read_captions(user) -> bool:
    return user.has_perm(captions.PERMISSION)


def my_phone(user) -> str:
    profile = UserProfile.objects.filter(user=user).first()
    return profile.phone_number if profile else ""


HEALTH_WITHIN = 1.5  # seconds: a probe answers well inside a load balancer's timeout


def favicon(request: HttpRequest) -> HttpResponse:
    """Asked for by browsers on a page that names no icon (a JSON answer, an error page). The static URL is
    looked up per request, not when the URLs load: without collectstatic's manifest that lookup fails, and it
    must fail here alone, not in every `reverse()`."""
    return HttpResponsePermanentRedirect(static("moderator/favicon.svg"))


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database takes a write (a probe that only reads misses a locked or read-only database),
    503 when it does not. Also how far behind the pipeline is. No login: load balancers call it."""
    try:
        with bounded_waits(HEALTH_WITHIN), transaction.atomic():
            Heartbeat.objects.update_or_create(worker=WORKER, defaults={"beat_at": timezone.now()})
            backlog = pipeline_backlog()
    except DatabaseError as exc:
        return JsonResponse({"status": "unavailable", "database": str(exc)[:200]}, status=503)
    return JsonResponse({"status": "ok", "database": "ok", **backlog})


def pipeline_backlog() -> dict[str, object]:
    """Events stored but not applied yet (and the oldest one's age), Telnyx commands not sent yet."""
    pending = WebhookEvent.objects.filter(status=WebhookEvent.Status.PENDING)
    oldest = pending.order_by("id").values_list("received_at", flat=True).first()
    unsent = OutboxCommand.objects.filter(status__in=[OutboxCommand.Status.PENDING, OutboxCommand.Status.SENDING])
    return {
        "events_pending": pending.count(),
        "oldest_pending_seconds": round((timezone.now() - oldest).total_seconds(), 3) if oldest else 0,
        "commands_unsent": unsent.count(),
    }


@login_required
def board(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "moderator/board.html",
        {
            **fragments.board_parts(can_moderate(request.user)),
            "can_moderate": can_moderate(request.user),
            "my_phone": my_phone(request.user),
            "page_actions": page_actions(),
            "rooms": Room.objects.prefetch_related("numbers"),
            "can_edit_rooms": request.user.is_staff and request.user.has_perm("moderator.change_room"),
            "can_read_captions": can_read_captions(request.user),
            "alerts": captions.recent_alerts() if can_read_captions(request.user) else "",
        },
    )


@login_required
def conference_page(request: HttpRequest, telnyx_id: str) -> HttpResponse:
    conference = Conference.objects.filter(telnyx_id=telnyx_id).select_related("room").first() if possible_id(telnyx_id) else None
    if conference is None:
        raise Http404("No such conference")
    readable = can_read_captions(request.user)
    return render(
        request,
        "moderator/conference.html",
        {
            "conference": conference,
            **fragments.conference_parts(conference, can_moderate(request.user)),
            "page_actions": page_actions(),
            "version": conference.version,
            "can_moderate": can_moderate(request.user),
            "my_phone": my_phone(request.user),
            "can_read_captions": readable,
            "captions": captions.pane(conference) if readable else "",
            "transcription_forbidden": conference.room is not None and conference.room.transcription_forbidden,
        },
    )


def _readable_conference(request: HttpRequest, telnyx_id: str) -> Conference:
    if not can_read_captions(request.user):
        raise PermissionDenied("Reading transcripts needs the permission to read captions.")
    conference = Conference.objects.filter(telnyx_id=telnyx_id).first() if possible_id(telnyx_id) else None
    if conference is None:
        raise Http404("No such conference")
    return conference


def _download(text: str, content_type: str, name: str) -> HttpResponse:
    response = HttpResponse(text, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
def transcript_text(request: HttpRequest, telnyx_id: str) -> HttpResponse:
    conference = _readable_conference(request, telnyx_id)
    return _download(transcripts.plain_text(conference), "text/plain; charset=utf-8", "transcript.txt")


@login_required
def transcript_webvtt(request: HttpRequest, telnyx_id: str) -> HttpResponse:
    conference = _readable_conference(request, telnyx_id)
    return _download(transcripts.webvtt(conference), "text/vtt; charset=utf-8", "transcript.vtt")


@login_required
def transcript_search(request: HttpRequest) -> HttpResponse:
    if not can_read_captions(request.user):
        raise PermissionDenied("Searching transcripts needs the permission to read captions.")
    query = request.GET.get("q", "").replace("\x00", "").strip()[:200]  # PostgreSQL refuses a NUL
    return render(request, "moderator/transcripts.html", {
        "query": query, "hits": transcripts.search(query) if query else [], "limit": transcripts.SEARCH_RESULTS,
        "can_moderate": can_moderate(request.user)})


class ProfileForm(forms.ModelForm):
    phone_number = forms.RegexField(
        regex=r"^(\+[1-9]\d{6,14})?$",
        required=False,
        help_text="E.164, like +15550100. Your leg is marked “me” and calls from it moderate.",
        error_messages={"invalid": "Enter the number in E.164 form, like +15550100."},
    )

    class Meta:
        model = UserProfile
        fields = ["phone_number"]


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    instance, _ = UserProfile.objects.get_or_create(user=request.user)
    form = ProfileForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Saved.")
        return redirect("profile")
    return render(
        request, "moderator/profile.html", {"form": form, "can_moderate": can_moderate(request.user)}
    )
