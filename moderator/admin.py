"""The Django admin: the administrators' view of every record (read-mostly: Telnyx owns the state)."""

from __future__ import annotations

import csv
import json
import re
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from moderator import transcripts
from moderator.ingest import applier
from moderator.live import captions, fragments, timeline
from moderator.models import (
    Ban,
    Call,
    CallerName,
    Caption,
    Conference,
    ModeratorAction,
    OutboxCommand,
    Participant,
    Recording,
    Room,
    RoomNumber,
    UserProfile,
    WaitingCall,
    WebhookEvent,
)
from moderator.state.serializers import calls_by_control_id, link_url


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def recording_links(recording: Recording):
    """A recording's files as links; a URL that may not be a link (see `link_url`) is shown as text, so an
    administrator still sees what Telnyx sent."""
    urls = {**(recording.public_urls or {}), **(recording.download_urls or {})}
    parts = [
        format_html('<a href="{}">{}</a>', url, fmt) if link_url(url) else format_html("{}: {} (not a link)", fmt, url)
        for fmt, url in urls.items()
        if url
    ]
    return format_html_join(" ", "{}", ((part,) for part in parts)) or "—"


class TelnyxOwned:
    """Records Telnyx owns (its webhooks and answers write them): nobody adds or deletes one here — an added
    "live" conference would be a lie, a deleted leg would come back with the next webhook."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnly(TelnyxOwned):
    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ParticipantInline(admin.TabularInline):
    """Attendance: who, joined, left, time in conference, talk time."""

    model = Participant
    extra = 0
    can_delete = False
    fields = (
        "call_control_id",
        "caller",
        "status",
        "joined_at",
        "left_at",
        "time_in_conference",
        "talk_time",
        "muted",
        "on_hold",
        "supervisor_role",
    )
    readonly_fields = fields
    verbose_name_plural = "Attendance"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="caller")
    def caller(self, participant: Participant) -> str:
        call = Call.objects.filter(call_control_id=participant.call_control_id).first()
        return str(call) if call else "—"

    @admin.display(description="time in conference")
    def time_in_conference(self, participant: Participant) -> str:
        return _duration(participant.seconds_in_conference())

    @admin.display(description="talk time")
    def talk_time(self, participant: Participant) -> str:
        return _duration(participant.talk_seconds)


class RecordingInline(admin.TabularInline):
    model = Recording
    extra = 0
    can_delete = False
    fields = ("recording_id", "format", "channels", "started_at", "ended_at", "links")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="files")
    def links(self, recording: Recording):
        return recording_links(recording)


class EndReasonFilter(admin.SimpleListFilter):
    """Why conferences ended, in words (the same table as the pages'); no empty link for the live ones."""

    title = "why it ended"
    parameter_name = "end_reason"

    def lookups(self, request, model_admin):
        reasons = Conference.objects.exclude(end_reason="").order_by("end_reason").values_list("end_reason", flat=True)
        return [(reason, timeline.end_reason(reason)) for reason in reasons.distinct()]

    def queryset(self, request, queryset):
        return queryset.filter(end_reason=self.value()) if self.value() else queryset


class RoutingProblemFilter(admin.SimpleListFilter):
    """The dial-in calls routing could not place: "recent" are those the board counts (it lists the latest few,
    and links here for all of them)."""

    title = "dial-in problem"
    parameter_name = "routing_problem"

    def lookups(self, request, model_admin):
        return [("recent", "in the last hour"), ("yes", "any time"), ("no", "none")]

    def queryset(self, request, queryset):
        if self.value() == "recent":
            return fragments.recent_dial_in_problems(queryset)
        if self.value() == "yes":
            return queryset.exclude(routing_error="")
        if self.value() == "no":
            return queryset.filter(routing_error="")
        return queryset


@admin.register(Conference)
class ConferenceAdmin(TelnyxOwned, admin.ModelAdmin):
    """Telnyx's record, but its name is ours to give."""

    list_display = (
        "__str__",
        "telnyx_id",
        "status",
        "why_it_ended",
        "started_at",
        "ended_at",
        "recording_status",
    )
    list_filter = ("status", EndReasonFilter, "recording_status")

    class Media:
        js = ("moderator/admin.js",)
    search_fields = ("telnyx_id", "name", "participants__call_control_id")
    date_hierarchy = "first_seen_at"
    readonly_fields = [f.name for f in Conference._meta.fields if f.name != "name"]
    inlines = [ParticipantInline, RecordingInline]
    actions = ["export_attendance_csv", "delete_transcript"]

    @admin.display(description="why it ended", ordering="end_reason")
    def why_it_ended(self, conference: Conference) -> str:
        return timeline.end_reason(conference.end_reason) if conference.end_reason else "—"

    @admin.action(description="Export attendance as CSV")
    def export_attendance_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = (
            f'attachment; filename="attendance-{timezone.now():%Y%m%d-%H%M%S}.csv"'
        )
        writer = csv.writer(response)
        writer.writerow(
            [
                "conference_id",
                "conference_name",
                "call_control_id",
                "name",
                "from",
                "to",
                "status",
                "joined_at",
                "left_at",
                "seconds_in_conference",
                "talk_seconds",
            ]
        )
        participants = Participant.objects.filter(conference__in=queryset).select_related("conference")
        calls = calls_by_control_id(participants.values_list("call_control_id", flat=True))
        for p in participants.order_by("conference_id", "joined_at", "id"):
            call = calls.get(p.call_control_id)
            writer.writerow(
                [
                    p.conference.telnyx_id,
                    p.conference.name,
                    p.call_control_id,
                    call.name if call else "",
                    call.from_number if call else "",
                    call.to_number if call else "",
                    p.status,
                    p.joined_at.isoformat() if p.joined_at else "",
                    p.left_at.isoformat() if p.left_at else "",
                    round(p.seconds_in_conference(), 1),
                    round(p.talk_seconds, 1),
                ]
            )
        return response

    def has_delete_transcript_permission(self, request) -> bool:
        return request.user.has_perms([captions.PERMISSION, "moderator.delete_caption"])

    @admin.action(description="Delete the transcripts (captions) of the selected conferences",
                  permissions=["delete_transcript"])
    def delete_transcript(self, request, queryset):
        """Everything transcribed in them, at once, kept in the audit trail: who, when, how many lines."""
        total = 0
        for conference in queryset:
            with transaction.atomic():
                lines = transcripts.delete(conference)
                ModeratorAction.objects.create(
                    user=request.user, action="delete_transcript", conference=conference,
                    conference_telnyx_id=conference.telnyx_id, parameters={"lines": lines},
                    outcome=ModeratorAction.Outcome.OK)
            total += lines
        count = queryset.count()
        self.message_user(request, f"Deleted {total} transcript line{'s' if total != 1 else ''} "
                                   f"of {count} conference{'s' if count != 1 else ''}.")


@admin.register(Caption)
class CaptionAdmin(admin.ModelAdmin):
    """Final caption lines, read-only. Only readers of captions see them; a conference's transcript is deleted as a
    whole, audited, with the conferences' action "Delete the transcripts"."""

    list_display = ("spoken_at", "conference", "call_control_id", "text", "keywords", "confidence")
    list_filter = (("keywords", admin.EmptyFieldListFilter),)
    search_fields = ("text", "conference__telnyx_id", "conference__name", "call_control_id")
    raw_id_fields = ("conference",)
    date_hierarchy = "spoken_at"

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(captions.PERMISSION) and super().has_view_permission(request, obj)

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Participant)
class ParticipantAdmin(ReadOnly, admin.ModelAdmin):
    list_display = (
        "call_control_id",
        "conference",
        "status",
        "joined_at",
        "left_at",
        "muted",
        "on_hold",
        "supervisor_role",
        "talk_seconds",
    )
    list_filter = ("status", "muted", "on_hold", "supervisor_role")
    search_fields = (
        "call_control_id",
        "call_leg_id",
        "call_session_id",
        "conference__telnyx_id",
        "conference__name",
    )
    list_select_related = ("conference",)
    raw_id_fields = ("conference",)


@admin.register(Call)
class CallAdmin(ReadOnly, admin.ModelAdmin):
    list_display = (
        "call_control_id",
        "from_number",
        "caller_name",
        "to_number",
        "direction",
        "state",
        "started_at",
        "ended_at",
        "hangup_cause",
        "routing_note",
        "routing_error",
    )
    list_filter = ("state", "direction", "hangup_cause", RoutingProblemFilter)
    search_fields = ("call_control_id", "from_number", "caller_name", "to_number", "call_session_id")


@admin.register(WaitingCall)
class WaitingCallAdmin(ReadOnly, admin.ModelAdmin):
    list_display = (
        "call_control_id",
        "queue_name",
        "status",
        "enqueued_at",
        "left_at",
        "leave_reason",
        "wait_time_secs",
    )
    list_filter = ("status", "queue_name", "leave_reason")
    search_fields = ("call_control_id", "queue_name")


@admin.register(Recording)
class RecordingAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("recording_id", "conference", "format", "channels", "started_at", "ended_at", "files")
    list_filter = ("format", "channels")
    search_fields = ("recording_id", "conference__telnyx_id", "conference__name")
    list_select_related = ("conference",)
    raw_id_fields = ("conference",)
    readonly_fields = ("files",)

    @admin.display(description="files")
    def files(self, recording: Recording):
        return recording_links(recording)


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    """Read-only: what Telnyx sent is evidence. Failed events can be replayed."""

    list_display = (
        "event_type",
        "event_id",
        "occurred_at",
        "received_at",
        "status",
        "applied_at",
        "conference_telnyx_id",
        "attempt",
    )
    list_filter = ("status", "event_type", "applied_by")
    search_fields = ("event_id", "conference_telnyx_id", "call_control_id")
    date_hierarchy = "received_at"
    fields = (
        "event_id",
        "event_type",
        "status",
        "error",
        "occurred_at",
        "received_at",
        "applied_at",
        "applied_by",
        "attempt",
        "conference_telnyx_id",
        "call_control_id",
        "pretty_raw",
    )
    readonly_fields = fields
    actions = ["replay"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="raw JSON")
    def pretty_raw(self, event: WebhookEvent):
        try:
            text = json.dumps(redacted(json.loads(event.raw)), indent=2, sort_keys=True)
        except ValueError:
            text = event.raw
        return format_html('<pre style="white-space: pre-wrap; max-width: 80em">{}</pre>', text)

    @admin.action(description="Replay (apply again)", permissions=["view"])
    def replay(self, request, queryset):
        statuses = applier.replay(list(queryset.values_list("id", flat=True)))
        outcomes = list(statuses.values())
        failed = outcomes.count(WebhookEvent.Status.FAILED)
        level = messages.WARNING if failed else messages.SUCCESS
        self.message_user(request, f"Replayed {len(outcomes)} event(s); {failed} failed.", level)


@admin.register(OutboxCommand)
class OutboxCommandAdmin(admin.ModelAdmin):
    """Read-only: the Telnyx commands dial-in routing (and look-ups, recording on start) decided, and how each
    went. A refused one is not retried: its error says why."""

    list_display = ("created_at", "kind", "call_control_id", "conference_telnyx_id", "room", "status", "attempts",
                    "sent_at")
    list_filter = ("status", "kind", "room")
    search_fields = ("command_id", "call_control_id", "conference_telnyx_id", "error")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in OutboxCommand._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ModeratorAction)
class ModeratorActionAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "user",
        "action",
        "conference_telnyx_id",
        "outcome",
        "http_status",
        "telnyx_error_code",
        "latency_ms",
    )
    list_filter = ("outcome", "action", "telnyx_error_code", "user")
    search_fields = (
        "conference_telnyx_id",
        "call_control_ids",
        "error_detail",
        "command_id",
        "user__username",
    )
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in ModeratorAction._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def e164(value: str) -> str:
    number = re.sub(r"[\s().\-]", "", value)  # "+1 (555) 010-0" is +15550100 written for people
    if not E164.match(number):
        raise ValidationError(f"“{value}” is not a phone number in E.164 form, like +15550100.", code="e164")
    return number


class PhoneNumbersField(forms.Field):
    """A list of E.164 numbers, one a line (commas work too), instead of raw JSON; each bad one is named."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 30, "spellcheck": "false", "autocomplete": "off"})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(str(number) for number in value)
        return value

    def to_python(self, value) -> list[str]:
        if isinstance(value, list):
            return value
        return [part.strip() for part in re.split(r"[\n,;]", value or "") if part.strip()]

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        errors = []
        for number in value:
            try:
                e164(number)
            except ValidationError as exc:
                errors.append(exc)
        if errors:
            raise ValidationError(errors)

    def clean(self, value) -> list[str]:
        numbers = super().clean(value)
        return list(dict.fromkeys(e164(number) for number in numbers))  # normalized, each once


def redacted(document: Any) -> Any:
    """A stored webhook as the admin shows it: the digits a caller entered for a gather (a room's PIN) hidden."""
    data = document.get("data") if isinstance(document, dict) else None
    payload = data.get("payload") if isinstance(data, dict) else None
    if isinstance(payload, dict) and data.get("event_type") == "call.gather.ended" and payload.get("digits"):
        payload["digits"] = "(hidden)"
    return document


class RoomForm(forms.ModelForm):
    moderator_numbers = PhoneNumbersField(
        required=False,
        label="Moderator numbers",
        help_text="One number a line, in E.164 form (+15550199). Callers from these numbers join as moderators.",
    )
    hold_audio_url = forms.URLField(label="Hold audio URL", max_length=1024, required=False, assume_scheme="https")
    pin_prompt_audio_url = forms.URLField(
        label="PIN prompt audio URL", max_length=1024, required=False, assume_scheme="https",
        help_text=Room._meta.get_field("pin_prompt_audio_url").help_text,
    )
    # PINs are set here, never shown: an empty field keeps the PIN the room has.
    participant_pin = forms.RegexField(
        r"^[0-9]{4,12}$", required=False, label="Participant PIN", widget=forms.PasswordInput(render_value=False),
        error_messages={"invalid": "4 to 12 digits."},
        help_text="Callers must enter it to join. Leave empty to keep the current one.",
    )
    moderator_pin = forms.RegexField(
        r"^[0-9]{4,12}$", required=False, label="Moderator PIN", widget=forms.PasswordInput(render_value=False),
        error_messages={"invalid": "4 to 12 digits."},
        help_text="A caller who enters it joins as a moderator. Leave empty to keep the current one.",
    )
    remove_pins = forms.BooleanField(required=False, label="Remove both PINs",
                                     help_text="Callers join without being asked for a PIN.")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in ("participant_pin", "moderator_pin"):
            if name in self.fields and self.instance.pk and getattr(self.instance, name):
                self.fields[name].help_text += " (A PIN is set.)"

    def clean(self) -> dict:
        cleaned = super().clean()
        for name in ("participant_pin", "moderator_pin"):
            if not cleaned.get(name):
                cleaned[name] = "" if cleaned.get("remove_pins") else getattr(self.instance, name, "")
        if cleaned.get("participant_pin") and cleaned["participant_pin"] == cleaned.get("moderator_pin"):
            self.add_error("moderator_pin", "The moderator PIN must differ from the participant PIN.")
        if cleaned.get("captions_on_join") and cleaned.get("transcription_forbidden"):
            self.add_error("captions_on_join", "This room forbids transcription: it cannot caption its callers.")
        return cleaned

    class Meta:
        model = Room
        fields = ("name", "moderator_numbers", "waiting_room", "is_default", "beep_enabled", "hold_audio_url",
                  "max_participants", "region", "record_automatically", "start_on_moderator",
                  "end_on_last_moderator_exit")


class RoomNumberForm(forms.ModelForm):
    class Meta:
        model = RoomNumber
        fields = ("number",)
        # A tabular inline's inputs have only a column heading: name them for screen readers.
        widgets = {"number": forms.TextInput(attrs={"aria-label": "Dial-in number", "inputmode": "tel"})}

    def clean_number(self) -> str:
        return e164(self.cleaned_data["number"])


class RoomNumberFormSet(BaseInlineFormSet):
    def add_fields(self, form, index) -> None:
        super().add_fields(form, index)
        if "DELETE" in form.fields:
            form.fields["DELETE"].widget.attrs["aria-label"] = "Delete this number"


class RoomNumberInline(admin.TabularInline):
    model = RoomNumber
    form = RoomNumberForm
    formset = RoomNumberFormSet
    extra = 1


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    form = RoomForm
    list_display = (
        "name",
        "dial_in_numbers",
        "waiting_room",
        "is_default",
        "start_on_moderator",
        "record_automatically",
    )
    list_filter = ("waiting_room", "is_default", "record_automatically")
    search_fields = ("name", "numbers__number")
    inlines = [RoomNumberInline]
    fieldsets = (
        (None, {"fields": ("name", "moderator_numbers", "waiting_room", "is_default")}),
        (
            "Conference options",
            {
                "fields": (
                    "beep_enabled",
                    "hold_audio_url",
                    "max_participants",
                    "region",
                    "record_automatically",
                    "start_on_moderator",
                    "end_on_last_moderator_exit",
                    "mute_on_entry",
                    "refuse_when_locked",
                )
            },
        ),
        ("Live captions", {"fields": ("captions_on_join", "transcription_forbidden", "caption_keywords")}),
        (
            "PINs",
            {
                "description": "Asked of every caller but the room's moderator numbers, three tries. Never shown.",
                "fields": ("participant_pin", "moderator_pin", "remove_pins", "pin_prompt_audio_url"),
            },
        ),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("numbers")

    @admin.display(description="dial-in numbers")
    def dial_in_numbers(self, room: Room) -> str:
        return ", ".join(n.number for n in room.numbers.all()) or "—"


@admin.register(UserProfile)
class UserProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "phone_number")
    search_fields = ("user__username", "phone_number")


@admin.register(CallerName)
class CallerNameAdmin(admin.ModelAdmin):
    """The names moderators gave numbers (the live view's "Name this caller…"), per room."""

    list_display = ("name", "number", "room", "named_by", "updated_at")
    list_filter = ("room",)
    search_fields = ("name", "number")
    readonly_fields = ("named_by", "updated_at")


@admin.register(Ban)
class BanAdmin(admin.ModelAdmin):
    """Numbers moderators banned from a room (the live view's "Remove and ban…"), lifted or not."""

    list_display = ("number", "room", "conference", "banned_by", "created_at", "lifted_at", "lifted_by")
    list_filter = ("room", ("lifted_at", admin.EmptyFieldListFilter))
    search_fields = ("number", "room__name")
    readonly_fields = ("banned_by", "created_at", "lifted_by")
    raw_id_fields = ("conference",)
