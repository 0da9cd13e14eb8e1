"""Records of conferences as Telnyx reports them.

State fields that webhooks set are paired with the ``occurred_at`` of the event that set them
(``*_at`` "version" fields), so that an older event never overwrites a newer one: Telnyx delivers
at least once and in any order. The rules that use them live in ``moderator.state.rules``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Conference(models.Model):
    class Status(models.TextChoices):
        INIT = "init", "init"
        IN_PROGRESS = "in_progress", "in progress"
        COMPLETED = "completed", "completed"

    class RecordingStatus(models.TextChoices):
        IDLE = "idle", "not recording"
        RECORDING = "recording", "recording"
        PAUSED = "paused", "recording paused"

    telnyx_id = models.CharField("Telnyx id", max_length=128, unique=True)
    name = models.CharField(max_length=255, blank=True)
    room = models.ForeignKey(
        "Room",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="conferences",
        help_text="The dial-in room this conference was started for, if any.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.INIT, db_index=True)
    end_reason = models.CharField(max_length=64, blank=True)
    region = models.CharField(max_length=32, blank=True)
    creator_call_control_id = models.CharField(max_length=255, blank=True)
    creator_call_session_id = models.CharField(max_length=255, blank=True)
    connection_id = models.CharField(max_length=128, blank=True)

    created_at = models.DateTimeField(null=True, blank=True, help_text="When Telnyx created the conference.")
    ended_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    # The active speaker: the leg that last took the floor, and since when.
    floor_call_control_id = models.CharField(max_length=255, blank=True)
    floor_at = models.DateTimeField(null=True, blank=True)

    # Conference-wide media. playing/speaking are set by *.started and cleared by *.ended.
    playing = models.BooleanField(default=False)
    playback_media = models.CharField(max_length=1024, blank=True)
    playback_at = models.DateTimeField(null=True, blank=True)
    speaking = models.BooleanField(default=False)
    speak_at = models.DateTimeField(null=True, blank=True)
    recording_status = models.CharField(
        max_length=16, choices=RecordingStatus.choices, default=RecordingStatus.IDLE
    )
    recording_at = models.DateTimeField(null=True, blank=True)

    # Version of `status`/`created_at`: the occurred_at of conference.created.
    status_at = models.DateTimeField(null=True, blank=True)

    # Locked by a moderator: new dial-in callers (not its moderators) wait in the room's waiting room.
    locked = models.BooleanField(default=False)
    # Live captions: every leg, and every leg that joins, is transcribed. A room's conference starts with its
    # room's `captions_on_join`; moderators turn them on and off.
    captions_on = models.BooleanField(default=False)

    # Bumped by every committed change to the conference or its legs: the serial number of live
    # updates. A page that sees a version jump asks for a fresh snapshot.
    version = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-first_seen_at", "-id"]
        permissions = [
            ("moderate_conference", "Can act on live conferences (mute, hold, record, end, ...)"),
            ("view_captions", "Can read live captions and transcripts"),
        ]

    def __str__(self) -> str:
        return self.name or self.telnyx_id

    def get_absolute_url(self) -> str:
        """Its live view (the admin's "View on site")."""
        return reverse("conference", args=[self.telnyx_id])

    @property
    def is_live(self) -> bool:
        return self.status != self.Status.COMPLETED

    @property
    def started_at(self):
        return self.created_at or self.first_seen_at

    def captions_wanted(self, room: Room | None) -> bool:
        """Whether its legs are to be transcribed now: never in a room that forbids it, nor once it ended."""
        return self.captions_on and self.is_live and not (room is not None and room.transcription_forbidden)


class Participant(models.Model):
    """One call leg's attendance of one conference."""

    class Status(models.TextChoices):
        JOINING = "joining", "joining"
        JOINED = "joined", "joined"
        LEFT = "left", "left"

    class SupervisorRole(models.TextChoices):
        NONE = "none", "none"
        WHISPER = "whisper", "whisper"
        BARGE = "barge", "barge"
        MONITOR = "monitor", "monitor"

    conference = models.ForeignKey(Conference, on_delete=models.CASCADE, related_name="participants")
    call_control_id = models.CharField(max_length=255)
    call_leg_id = models.CharField(max_length=255, blank=True)
    call_session_id = models.CharField(max_length=255, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.JOINING)
    # occurred_at of the last explicit joined/left event (an end or hangup only bounds the leg).
    status_at = models.DateTimeField(null=True, blank=True)
    joined_at = models.DateTimeField(null=True, blank=True)
    left_at = models.DateTimeField(null=True, blank=True)
    hangup_at = models.DateTimeField(null=True, blank=True)

    # No webhook reports these: they come from accepted commands and resyncs.
    muted = models.BooleanField(default=False)
    on_hold = models.BooleanField(default=False)
    supervisor_role = models.CharField(
        max_length=16, choices=SupervisorRole.choices, default=SupervisorRole.NONE
    )
    whisper_call_control_ids = models.JSONField(default=list, blank=True)

    talk_seconds = models.FloatField(default=0.0, help_text="Time holding the floor, closed spans only.")

    # A raised hand: the caller pressed *1 (the call's keys, `Call.dtmf_digits`), and *1 again to lower it.
    hand_raised_at = models.DateTimeField(null=True, blank=True, db_index=True)
    hand_lowered_at = models.DateTimeField(
        null=True, blank=True, help_text="When a moderator last lowered it (unmuted, or lowered): earlier presses count no more."
    )

    playing = models.BooleanField(default=False)
    playback_media = models.CharField(max_length=1024, blank=True)
    playback_at = models.DateTimeField(null=True, blank=True)
    speaking = models.BooleanField(default=False)
    speak_at = models.DateTimeField(null=True, blank=True)

    # Live captions. Telnyx reports no start nor stop of a transcription: `transcribing` comes from its accepting
    # answer. The line being said now (interim results, each replacing the last) and the time of the latest
    # result that set or cleared it: a late interim never brings back a line its final has closed.
    transcribing = models.BooleanField(default=False)
    caption_line = models.CharField(max_length=1000, blank=True)
    caption_at = models.DateTimeField(null=True, blank=True)
    # The room's keywords this leg's last final line said (highlighted on its row until its next line).
    caption_keywords = models.CharField(max_length=255, blank=True)

    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conference", "call_control_id"], name="participant_unique_leg")
        ]
        indexes = [models.Index(fields=["call_control_id"])]
        ordering = ["joined_at", "id"]

    def __str__(self) -> str:
        return self.call_control_id

    def seconds_in_conference(self, now=None) -> float:
        if not self.joined_at:
            return 0.0
        end = self.left_at or now or timezone.now()
        return max(0.0, (end - self.joined_at).total_seconds())


class FloorChange(models.Model):
    """Every conference.floor.changed, kept so talk time can be recomputed whatever the arrival order."""

    conference = models.ForeignKey(Conference, on_delete=models.CASCADE, related_name="floor_changes")
    call_control_id = models.CharField(max_length=255)
    occurred_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conference", "occurred_at", "call_control_id"], name="floor_change_unique"
            )
        ]
        ordering = ["occurred_at", "call_control_id"]

    def __str__(self) -> str:
        return f"{self.call_control_id} took the floor at {self.occurred_at:%H:%M:%S}"


class Caption(models.Model):
    """One final line of a conference's transcript (call.transcription with is_final): who said it, when, how
    sure the engine was. Interim results are never stored: they live on the leg (`Participant.caption_line`).
    A line whose leg is not known yet (its joined webhook is late) waits without a conference, and is placed
    when the leg is (`rules.settle_captions`)."""

    conference = models.ForeignKey(Conference, null=True, blank=True, on_delete=models.CASCADE, related_name="captions")
    call_control_id = models.CharField(max_length=255)
    spoken_at = models.DateTimeField(help_text="When Telnyx heard the line (its final result's occurred_at).")
    text = models.TextField()
    confidence = models.FloatField(null=True, blank=True)
    keywords = models.CharField(max_length=255, blank=True, help_text="The room's keywords the line said.")
    event_id = models.CharField(max_length=128, unique=True, help_text="Telnyx's event id: a redelivery is one line.")

    class Meta:
        ordering = ["spoken_at", "id"]
        indexes = [
            models.Index(fields=["conference", "spoken_at"]),
            models.Index(fields=["call_control_id"], condition=models.Q(conference__isnull=True), name="caption_unplaced"),
        ]

    def __str__(self) -> str:
        return self.text[:60]


class Call(models.Model):
    """A call leg as the call-lifecycle webhooks describe it (caller, callee, hangup)."""

    class State(models.TextChoices):
        INITIATED = "initiated", "ringing"
        ANSWERED = "answered", "answered"
        HANGUP = "hangup", "hung up"

    call_control_id = models.CharField(max_length=255, unique=True)
    call_leg_id = models.CharField(max_length=255, blank=True)
    call_session_id = models.CharField(max_length=255, blank=True)
    connection_id = models.CharField(max_length=128, blank=True)
    direction = models.CharField(max_length=16, blank=True)
    from_number = models.CharField(max_length=64, blank=True)
    to_number = models.CharField(max_length=64, blank=True)
    caller_name = models.CharField(max_length=128, blank=True, help_text="Telnyx's caller_id_name, if any.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.INITIATED)
    state_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    hangup_cause = models.CharField(max_length=64, blank=True)
    # The keys the caller pressed recently (call.dtmf.received, one webhook per digit, in any order), with their
    # times: what a raised hand is read from, whatever order they came in.
    dtmf_digits = models.JSONField(default=list, blank=True, help_text="Recent keys: [[ISO time, digit], …].")
    # What the product did with the call, and what went wrong (dial-in routing).
    routing_note = models.CharField(max_length=255, blank=True)
    WAITING_FOR_A_PLACE = "Waiting for a place"  # how its note starts while the conference is full
    routing_error = models.TextField(blank=True)
    # A room's PIN, as dial-in routing heard it: which one the caller entered (never the digits), and how
    # many wrong ones so far.
    pin_role = models.CharField(max_length=16, blank=True, choices=[("participant", "participant"), ("moderator", "moderator")])
    pin_tries = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.from_number or '?'} → {self.to_number or '?'}"


class WaitingCall(models.Model):
    """A call in a Telnyx queue (a conference's waiting room)."""

    class Status(models.TextChoices):
        WAITING = "waiting", "waiting"
        LEFT = "left", "left queue"

    call_control_id = models.CharField(max_length=255)
    queue_name = models.CharField(max_length=255, db_index=True)
    call_leg_id = models.CharField(max_length=255, blank=True)
    call_session_id = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING, db_index=True)
    status_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    left_at = models.DateTimeField(null=True, blank=True)
    position = models.PositiveIntegerField(null=True, blank=True)
    queue_avg_wait_secs = models.PositiveIntegerField(null=True, blank=True)
    leave_reason = models.CharField(max_length=64, blank=True)
    wait_time_secs = models.PositiveIntegerField(null=True, blank=True)
    hangup_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["call_control_id", "queue_name"], name="waiting_call_unique")
        ]
        ordering = ["queue_name", "enqueued_at", "id"]

    def __str__(self) -> str:
        return f"{self.call_control_id} in {self.queue_name}"


class Recording(models.Model):
    recording_id = models.CharField(max_length=128, unique=True)
    conference = models.ForeignKey(Conference, on_delete=models.CASCADE, related_name="recordings")
    call_control_id = models.CharField(max_length=255, blank=True)
    format = models.CharField(max_length=8, blank=True)
    channels = models.CharField(max_length=8, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    download_urls = models.JSONField(default=dict, blank=True)
    public_urls = models.JSONField(default=dict, blank=True)
    saved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return self.recording_id

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.ended_at:
            return (self.ended_at - self.started_at).total_seconds()
        return None


class WebhookEvent(models.Model):
    """Every verified webhook: stored (the inbox) before it is acknowledged, applied afterwards in batches
    (the applier). Unique on Telnyx's event id."""

    class Status(models.TextChoices):
        PENDING = "pending", "stored, not applied yet"
        APPLIED = "applied", "applied"
        FAILED = "failed", "failed"
        IGNORED = "ignored", "stored only (unknown type)"

    event_id = models.CharField(max_length=128, unique=True)
    event_type = models.CharField(max_length=96, db_index=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    conference_telnyx_id = models.CharField(max_length=128, blank=True, db_index=True)
    call_control_id = models.CharField(max_length=255, blank=True)
    attempt = models.PositiveIntegerField(null=True, blank=True)
    raw = models.TextField(help_text="The event exactly as Telnyx sent it.")
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    error = models.TextField(blank=True)
    applied_at = models.DateTimeField(null=True, blank=True, help_text="When the applier committed its effect.")
    applied_by = models.CharField(max_length=64, blank=True, help_text="The worker (host:pid) that applied it.")

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The applier's queue: the oldest pending events first.
            models.Index(fields=["id"], condition=models.Q(status="pending"), name="webhookevent_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class ModeratorAction(models.Model):
    """Audit trail: every command a moderator sent to Telnyx, good or failed."""

    class Outcome(models.TextChoices):
        OK = "ok", "accepted"
        REFUSED = "refused", "refused by Telnyx"
        FAILED = "failed", "failed (Telnyx unreachable or errored)"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=64, db_index=True)
    conference = models.ForeignKey(
        Conference, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions"
    )
    conference_telnyx_id = models.CharField(max_length=128, blank=True, db_index=True)
    call_control_ids = models.JSONField(default=list, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    command_id = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, db_index=True)
    http_status = models.PositiveIntegerField(null=True, blank=True)
    telnyx_error_code = models.CharField(max_length=32, blank=True)
    error_detail = models.TextField(blank=True)
    latency_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} by {self.user or 'system'}: {self.outcome}"


TELNYX_DEFAULT_PLACES = 250  # a conference's max_participants unless its creation sets one (800 at most)


class Room(models.Model):
    """A dial-in room: calls to its numbers are answered and routed into its conference."""

    class Beep(models.TextChoices):
        ALWAYS = "always", "always"
        NEVER = "never", "never"
        ON_ENTER = "on_enter", "on enter"
        ON_EXIT = "on_exit", "on exit"

    class Region(models.TextChoices):
        AUSTRALIA = "Australia", "Australia"
        EUROPE = "Europe", "Europe"
        MIDDLE_EAST = "Middle East", "Middle East"
        US = "US", "US"

    name = models.CharField(max_length=255, unique=True)
    waiting_room = models.BooleanField(
        default=False, help_text="Callers wait in the room's Telnyx queue until a moderator admits them."
    )
    moderator_numbers = models.JSONField(
        default=list, blank=True, help_text="Callers from these numbers (E.164) join as moderators."
    )
    is_default = models.BooleanField(
        default=False, help_text="Calls to numbers no room claims are routed here instead of hung up."
    )
    beep_enabled = models.CharField(max_length=16, choices=Beep.choices, default=Beep.NEVER)
    hold_audio_url = models.URLField(max_length=1024, blank=True)
    max_participants = models.PositiveIntegerField(null=True, blank=True)
    region = models.CharField(max_length=16, choices=Region.choices, blank=True)
    record_automatically = models.BooleanField(default=False)
    start_on_moderator = models.BooleanField(
        "start when a moderator joins",
        default=False,
        help_text="Others hear hold audio until a moderator is in the conference.",
    )
    end_on_last_moderator_exit = models.BooleanField("end when the last moderator leaves", default=False)
    # Asked of every caller but the room's moderator numbers (gather_using_speak, three tries). Never shown nor
    # logged: the admin sets them without displaying them, `rooms list` says only whether one is set.
    participant_pin = models.CharField(
        max_length=12, blank=True, validators=[RegexValidator(r"^[0-9]{4,12}$", "4 to 12 digits.")],
        help_text="Callers must enter it to join (4 to 12 digits).",
    )
    moderator_pin = models.CharField(
        max_length=12, blank=True, validators=[RegexValidator(r"^[0-9]{4,12}$", "4 to 12 digits.")],
        help_text="A caller who enters it joins as a moderator (4 to 12 digits).",
    )
    refuse_when_locked = models.BooleanField(
        "refuse callers while locked", default=False,
        help_text="While its conference is locked, new callers hear that it is closed and are hung up (instead of waiting).",
    )
    pin_prompt_audio_url = models.URLField(
        "PIN prompt audio URL", max_length=1024, blank=True,
        help_text="Played to ask for the PIN (gather_using_audio) instead of the spoken prompt.",
    )
    mute_on_entry = models.BooleanField(
        "everyone but moderators joins muted",
        default=False,
        help_text="A listen-only room (a lecture, a town hall): moderators unmute whom they let speak.",
    )
    captions_on_join = models.BooleanField(
        "caption every caller", default=False,
        help_text="Live captions for every leg that joins (moderators can still turn them off for a conference).",
    )
    transcription_forbidden = models.BooleanField(
        "forbid transcription", default=False,
        help_text="Nothing said in this room is ever transcribed: captions cannot be turned on.",
    )
    caption_keywords = models.TextField(
        "keyword alerts", blank=True,
        help_text="Words or phrases, one per line or comma-separated: a caption that says one is highlighted and "
                  "announced on the board.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def queue_name(self) -> str:
        return f"room-{self.pk}-waiting"

    def live_conference(self) -> Conference | None:
        """The room's running conference (the newest, should two ever run), if any."""
        return (self.conferences.exclude(status=Conference.Status.COMPLETED)
                .order_by("-first_seen_at", "-id").first())

    @property
    def places(self) -> int:
        """How many callers the room's conference holds: Telnyx refuses a join past it (90032)."""
        return self.max_participants or TELNYX_DEFAULT_PLACES

    @property
    def asks_for_pin(self) -> bool:
        return bool(self.participant_pin or self.moderator_pin)

    @property
    def keywords(self) -> list[str]:
        """The keyword alerts, lower-cased, each once, in the order given."""
        words = (w.strip().lower() for line in self.caption_keywords.splitlines() for w in line.split(","))
        return list(dict.fromkeys(w for w in words if w))


class RoomNumber(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="numbers")
    number = models.CharField(max_length=64, unique=True, help_text="The called number, E.164 (+15550100).")

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return self.number


class Ban(models.Model):
    """A number a moderator removed and refused in a room: until that conference ends, or for good; undoable."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="bans")
    number = models.CharField(max_length=64, help_text="The caller's number, E.164.")
    conference = models.ForeignKey(
        Conference, null=True, blank=True, on_delete=models.CASCADE, related_name="bans",
        help_text="Banned until this conference ends; none: for good.",
    )
    banned_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["room", "number"])]

    def __str__(self) -> str:
        return f"{self.number} banned from {self.room}"

    @classmethod
    def active(cls):
        """Bans in force: not lifted, and for good or for a conference still running."""
        return cls.objects.filter(lifted_at__isnull=True).filter(
            models.Q(conference__isnull=True) | ~models.Q(conference__status=Conference.Status.COMPLETED)
        )


class CallerName(models.Model):
    """The name a moderator gave a number: shown for its calls to the room (or, with no room, for its calls to
    numbers no room claims), in preference to the caller id."""

    room = models.ForeignKey(Room, null=True, blank=True, on_delete=models.CASCADE, related_name="caller_names")
    number = models.CharField(max_length=64, help_text="The caller's number, E.164.")
    name = models.CharField(max_length=128)
    named_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "number"], name="caller_name_unique_in_room"),
            models.UniqueConstraint(fields=["number"], condition=models.Q(room__isnull=True),
                                    name="caller_name_unique_without_room"),
        ]
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.name} ({self.number})"


class UserProfile(models.Model):
    """A dashboard user's phone: their leg is "me" in the live view, and calls from it moderate."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    phone_number = models.CharField(max_length=64, blank=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.user}: {self.phone_number or 'no phone'}"


class Viewer(models.Model):
    """Who has a live page open (presence), one row per websocket, in the database so every worker sees it."""

    channel_name = models.CharField(max_length=255, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    conference_telnyx_id = models.CharField(max_length=128, blank=True, db_index=True)
    connected_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.user} on {self.conference_telnyx_id or 'the board'}"


class OutboxCommand(models.Model):
    """A Telnyx command the product decided on its own (dial-in routing, recording on start, name look-ups).

    Written in the transaction that took the decision, sent after it commits by the outbox sender, with
    the `command_id` derived from the decision: deciding twice (a redelivered webhook, two workers) is
    one row, and a crash between the commit and the send loses nothing (unsent rows are picked up on
    start). A refusal is kept on the row and never retried blindly.
    """

    class Kind(models.TextChoices):
        ANSWER = "answer", "answer the call"
        HANGUP = "hangup", "hang up the call"
        ENQUEUE = "enqueue", "put the caller in the waiting room"
        PLACE = "place", "join (or start) the room's conference"
        ADMIT = "admit", "admit a waiting caller into the room's conference"
        ASK_PIN = "ask_pin", "ask the caller for the room's PIN"
        TRANSCRIBE = "transcribe", "start live captions of the call"
        STOP_TRANSCRIBING = "untranscribe", "stop live captions of the call"
        END = "end", "end the conference"
        RECORD = "record", "start recording"
        LOOK_UP = "look_up", "read the conference from Telnyx"

    class Status(models.TextChoices):
        PENDING = "pending", "waiting to be sent"
        SENDING = "sending", "being sent"
        SENT = "sent", "sent"
        REFUSED = "refused", "refused by Telnyx"
        FAILED = "failed", "failed"
        SKIPPED = "skipped", "no longer needed"

    GOING_AHEAD = (Status.PENDING, Status.SENDING, Status.SENT)  # sent, or to be: not refused, failed nor skipped

    command_id = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    call_control_id = models.CharField(max_length=255, blank=True, db_index=True)
    conference_telnyx_id = models.CharField(max_length=128, blank=True)
    room = models.ForeignKey("Room", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # A sender claims a row until then; a row still "sending" afterwards was claimed by a worker that died.
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["id"], condition=models.Q(status__in=["pending", "sending"]), name="outbox_unsent"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.call_control_id or self.conference_telnyx_id}): {self.status}"

    @classmethod
    def step(
        cls, kind: str, *, call_control_id: str = "", conference_id: str = "", room: Room | None = None
    ) -> OutboxCommand:
        """The row for one step; its command_id derives from the step and what it acts on (the conference
        for end, record and look-up, the call otherwise), so the same decision always makes the same row."""
        on_conference = kind in (cls.Kind.END, cls.Kind.RECORD, cls.Kind.LOOK_UP)
        return cls(
            command_id=derived_command_id(kind, conference_id if on_conference else call_control_id),
            kind=kind,
            call_control_id=call_control_id,
            conference_telnyx_id=conference_id,
            room=room,
        )


def admission_under_way() -> models.Exists:
    """For a WaitingCall row: an admission (a moderator's, or a freed place's) is taking this caller in, sent or
    about to be since they came. They wait until Telnyx says they left the queue, but are on their way in: a second
    admission would be refused, and the place it was for lost."""
    return models.Exists(OutboxCommand.objects.filter(
        kind=OutboxCommand.Kind.ADMIT, call_control_id=models.OuterRef("call_control_id"),
        status__in=OutboxCommand.GOING_AHEAD, created_at__gte=models.OuterRef("enqueued_at"),
    ))


_COMMAND_IDS = uuid.UUID("6c0f7a3e-2b1d-4e55-9a57-0d1c6e1f3b21")


def derived_command_id(step: str, target: str) -> str:
    """The same step for the same call (or conference) always has the same command_id (a UUID, 36 chars)."""
    return str(uuid.uuid5(_COMMAND_IDS, f"{step}:{target}"))


class Heartbeat(models.Model):
    """One row per worker, written by the health check: proof that the database takes writes."""

    worker = models.CharField(max_length=64, unique=True)
    beat_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.worker} at {self.beat_at:%H:%M:%S}"
