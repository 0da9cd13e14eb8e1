"""HTML pages and the health check. Thin: data comes from `fragments`/`serializers`, rules from `events`."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache

from moderator.live import fragments, rows
from moderator.models import Conference, Room, UserProfile


def can_moderate(user) -> bool:
    return user.has_perm("moderator.moderate_conference")


def my_phone(user) -> str:
    profile = UserProfile.objects.filter(user=user).first()
    return profile.phone_number if profile else ""


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers, 503 when it does not. No login: load balancers call it."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return JsonResponse({"status": "unavailable", "database": str(exc)[:200]}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


@login_required
def board(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "moderator/board.html",
        {
            **fragments.board_parts(),
            "can_moderate": can_moderate(request.user),
            "my_phone": my_phone(request.user),
            "rooms": Room.objects.prefetch_related("numbers"),
            "can_edit_rooms": request.user.is_staff and request.user.has_perm("moderator.change_room"),
        },
    )


@login_required
def conference_page(request: HttpRequest, telnyx_id: str) -> HttpResponse:
    conference = Conference.objects.filter(telnyx_id=telnyx_id).first()
    if conference is None:
        raise Http404("No such conference")
    context = fragments.conference_context(conference)
    return render(
        request,
        "moderator/conference.html",
        {
            **context,
            "rows_html": rows.rows(context["participants"]),  # _participant_rows.html, in Python
            "timeline": fragments.timeline(conference),
            "version": conference.version,
            "can_moderate": can_moderate(request.user),
            "my_phone": my_phone(request.user),
        },
    )


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
