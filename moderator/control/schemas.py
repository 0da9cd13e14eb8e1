"""Declared input for every moderator action: the fields and enums of the Telnyx request bodies.

A bad body is refused here with the field named, before anything is sent to Telnyx.
"""

from __future__ import annotations

from typing import Annotated, Literal

from django.db.models import TextChoices
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from moderator.models import Participant, Room
from moderator.telnyx.event import is_text

URL_PATTERN = r"^https?://\S+$"
DTMF_PATTERN = r"^[0-9*#A-DwW]+$"
DIGIT_PATTERN = r"^[0-9*#A-D]$"
DIGITS_PATTERN = r"^[0-9*#A-D]+$"
FILE_NAME_PATTERN = r"^[\w.\-]+$"
# What each pattern allows, in words: the API's 400 and the dialog say this, never the expression.
PATTERN_HINTS = {
    URL_PATTERN: "an address that starts with http:// or https://",
    DTMF_PATTERN: "only the digits 0–9, *, #, the letters A–D, and w or W for a pause",
    DIGIT_PATTERN: "one of 0–9, *, # or A–D",
    DIGITS_PATTERN: "only 0–9, *, # and A–D",
    FILE_NAME_PATTERN: "letters, digits, dots, dashes and underscores only",
}

CallControlId = Annotated[str, Field(min_length=1, max_length=255)]
CallControlIds = Annotated[list[CallControlId], Field(min_length=1, max_length=1000)]
# Telnyx's enums: those the product keeps on its own rows come from the models' choices.
Region = Room.Region
Beep = Room.Beep
SupervisorRole = Participant.SupervisorRole
Url = Annotated[str, Field(min_length=1, max_length=2048, pattern=URL_PATTERN)]
MediaName = Annotated[str, Field(min_length=1, max_length=255)]
ClientState = Annotated[str, Field(max_length=4096)]


class Voice(TextChoices):
    FEMALE = "female", "female"
    MALE = "male", "male"


class PayloadType(TextChoices):
    TEXT = "text", "text"
    SSML = "ssml", "SSML"


class RecordingFormat(TextChoices):
    MP3 = "mp3", "MP3"
    WAV = "wav", "WAV"


class Channels(TextChoices):
    SINGLE = "single", "single (mixed)"
    DUAL = "dual", "dual"


class Language(TextChoices):
    ARB = "arb", "Arabic"
    CMN_CN = "cmn-CN", "Chinese (Mandarin)"
    CY_GB = "cy-GB", "Welsh"
    DA_DK = "da-DK", "Danish"
    DE_DE = "de-DE", "German"
    EN_AU = "en-AU", "English (Australia)"
    EN_GB = "en-GB", "English (UK)"
    EN_GB_WLS = "en-GB-WLS", "English (Wales)"
    EN_IN = "en-IN", "English (India)"
    EN_US = "en-US", "English (US)"
    ES_ES = "es-ES", "Spanish (Spain)"
    ES_MX = "es-MX", "Spanish (Mexico)"
    ES_US = "es-US", "Spanish (US)"
    FR_CA = "fr-CA", "French (Canada)"
    FR_FR = "fr-FR", "French (France)"
    HI_IN = "hi-IN", "Hindi"
    IS_IS = "is-IS", "Icelandic"
    IT_IT = "it-IT", "Italian"
    JA_JP = "ja-JP", "Japanese"
    KO_KR = "ko-KR", "Korean"
    NB_NO = "nb-NO", "Norwegian"
    NL_NL = "nl-NL", "Dutch"
    PL_PL = "pl-PL", "Polish"
    PT_BR = "pt-BR", "Portuguese (Brazil)"
    PT_PT = "pt-PT", "Portuguese (Portugal)"
    RO_RO = "ro-RO", "Romanian"
    RU_RU = "ru-RU", "Russian"
    SV_SE = "sv-SE", "Swedish"
    TR_TR = "tr-TR", "Turkish"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def storable(cls, value):
        """Every text is stored (the audit row, a conference's name): none may hold what a database refuses."""
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and not is_text(text):
                raise ValueError("holds a NUL character or a lone surrogate")
        return value


class Targets(Body):
    call_control_ids: CallControlIds | None = None
    region: Region | None = None


class Mute(Targets):
    pass


class Stop(Targets):
    pass


class Hold(Targets):
    audio_url: Url | None = None
    media_name: MediaName | None = None


class Unhold(Body):
    call_control_ids: CallControlIds
    region: Region | None = None


class Play(Targets):
    audio_url: Url | None = None
    media_name: MediaName | None = None
    loop: Literal["infinity"] | Annotated[int, Field(ge=1, le=100)] | None = None

    @model_validator(mode="after")
    def needs_audio(self):
        if not self.audio_url and not self.media_name:
            raise ValueError("audio_url or media_name is required")
        return self


class Speak(Targets):
    payload: Annotated[str, Field(min_length=1, max_length=3000)]
    voice: Annotated[str, Field(min_length=1, max_length=128)]  # female, male, or a Polly/Azure voice name
    language: Language | None = None
    payload_type: PayloadType | None = None


class RecordStart(Body):
    format: RecordingFormat
    channels: Channels | None = None
    play_beep: bool | None = None
    trim: Literal["trim-silence"] | None = None
    custom_file_name: Annotated[str, Field(min_length=1, max_length=255, pattern=FILE_NAME_PATTERN)] | None = None
    region: Region | None = None


class RecordControl(Body):
    recording_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    region: Region | None = None


class RecordStop(RecordControl):
    client_state: ClientState | None = None


class SendDtmf(Body):
    digits: Annotated[str, Field(min_length=1, max_length=64, pattern=DTMF_PATTERN)]
    call_control_ids: CallControlIds | None = None
    duration_millis: Annotated[int, Field(ge=100, le=500)] | None = None
    client_state: ClientState | None = None


class Gather(Body):
    call_control_id: CallControlId
    audio_url: Url | None = None
    media_name: MediaName | None = None
    invalid_audio_url: Url | None = None
    invalid_media_name: MediaName | None = None
    minimum_digits: Annotated[int, Field(ge=1, le=128)] | None = None
    maximum_digits: Annotated[int, Field(ge=1, le=128)] | None = None
    maximum_tries: Annotated[int, Field(ge=1, le=10)] | None = None
    timeout_millis: Annotated[int, Field(ge=1, le=600000)] | None = None
    initial_timeout_millis: Annotated[int, Field(ge=1, le=600000)] | None = None
    inter_digit_timeout_millis: Annotated[int, Field(ge=1, le=600000)] | None = None
    terminating_digit: Annotated[str, Field(pattern=DIGIT_PATTERN)] | None = None
    valid_digits: Annotated[str, Field(min_length=1, max_length=16, pattern=DIGITS_PATTERN)] | None = None
    stop_playback_on_dtmf: bool | None = None
    gather_id: Annotated[str, Field(max_length=128)] | None = None
    client_state: ClientState | None = None

    @model_validator(mode="after")
    def digits_in_order(self):
        if self.minimum_digits and self.maximum_digits and self.minimum_digits > self.maximum_digits:
            raise ValueError("minimum_digits must not exceed maximum_digits")
        return self


class Update(Body):
    call_control_id: CallControlId
    supervisor_role: SupervisorRole
    whisper_call_control_ids: Annotated[list[CallControlId], Field(max_length=1000)] | None = None
    region: Region | None = None


class Join(Body):
    call_control_id: CallControlId
    beep_enabled: Beep | None = None
    end_conference_on_exit: bool | None = None
    soft_end_conference_on_exit: bool | None = None
    hold: bool | None = None
    hold_audio_url: Url | None = None
    hold_media_name: MediaName | None = None
    mute: bool | None = None
    start_conference_on_enter: bool | None = None
    supervisor_role: SupervisorRole | None = None
    whisper_call_control_ids: Annotated[list[CallControlId], Field(max_length=1000)] | None = None
    client_state: ClientState | None = None
    region: Region | None = None


class Leave(Body):
    call_control_id: CallControlId
    beep_enabled: Beep | None = None
    region: Region | None = None


class End(Body):
    pass


class CreateConference(Body):
    call_control_id: CallControlId
    name: Annotated[str, Field(min_length=1, max_length=255)]
    beep_enabled: Beep | None = None
    client_state: ClientState | None = None
    comfort_noise: bool | None = None
    duration_minutes: Annotated[int, Field(ge=1, le=1440)] | None = None
    hold_audio_url: Url | None = None
    hold_media_name: MediaName | None = None
    max_participants: Annotated[int, Field(ge=2, le=800)] | None = None
    region: Region | None = None
    start_conference_on_create: bool | None = None


class Enqueue(Body):
    queue_name: Annotated[str, Field(min_length=1, max_length=255)]
    max_size: Annotated[int, Field(ge=1, le=5000)] | None = None
    max_wait_time_secs: Annotated[int, Field(ge=1, le=86400)] | None = None
    keep_after_hangup: bool | None = None
    client_state: ClientState | None = None


class CallCommand(Body):
    client_state: ClientState | None = None


class SpeakOnCall(Body):
    """speak on a call: dial-in routing tells a caller something (a locked room), before hanging up."""

    payload: Annotated[str, Field(min_length=1, max_length=3000)]
    voice: Annotated[str, Field(min_length=1, max_length=128)]


class GatherAudio(Body):
    """gather_using_audio on a call: dial-in routing asks for a room's PIN with the room's own recording."""

    audio_url: Url
    minimum_digits: Annotated[int, Field(ge=1, le=128)] | None = None
    maximum_digits: Annotated[int, Field(ge=1, le=128)] | None = None
    terminating_digit: Annotated[str, Field(pattern=DIGIT_PATTERN)] | None = None
    timeout_millis: Annotated[int, Field(ge=1, le=600000)] | None = None
    valid_digits: Annotated[str, Field(min_length=1, max_length=16, pattern=DIGITS_PATTERN)] | None = None


class GatherSpeak(Body):
    """gather_using_speak on a call: dial-in routing asks for a room's PIN (no moderator's button)."""

    payload: Annotated[str, Field(min_length=1, max_length=3000)]
    voice: Annotated[str, Field(min_length=1, max_length=128)]
    language: Language | None = None
    minimum_digits: Annotated[int, Field(ge=1, le=128)] | None = None
    maximum_digits: Annotated[int, Field(ge=1, le=128)] | None = None
    terminating_digit: Annotated[str, Field(pattern=DIGIT_PATTERN)] | None = None
    timeout_millis: Annotated[int, Field(ge=1, le=600000)] | None = None
    valid_digits: Annotated[str, Field(min_length=1, max_length=16, pattern=DIGITS_PATTERN)] | None = None


class GoogleTranscription(Body):
    transcription_engine: Literal["Google"] = "Google"
    language: Annotated[str, Field(min_length=2, max_length=16, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] = "en"
    interim_results: bool = True


class TranscriptionStart(Body):
    """transcription_start on a call: live captions of one leg (the product decides it: a conference's captions
    are on). Google's engine with interim results: the line being said shows as it is said."""

    transcription_engine: Literal["Google"] = "Google"
    transcription_engine_config: GoogleTranscription
    transcription_tracks: Literal["inbound"] = "inbound"  # what the caller says, not what they hear


class Captions(Body):
    """POST /api/conferences/<id>/captions: live captions of every leg, and of every leg that joins, on or off."""

    on: bool


class Lock(Body):
    """POST /api/conferences/<id>/lock: lock (or unlock) the conference to new dial-in callers."""

    locked: bool


class Admit(Body):
    """POST /api/queues/<name>/admit: the first `count` callers waiting (none given: all of them)."""

    count: Annotated[int, Field(ge=1, le=5000)] | None = None


class BanCaller(Body):
    """POST /api/conferences/<id>/ban: hang up this leg's call and refuse its number in the room."""

    call_control_id: CallControlId
    for_good: bool = False  # else until this conference ends


class LowerHands(Body):
    """POST /api/conferences/<id>/lower_hands: these legs' hands (none named: everyone's)."""

    call_control_ids: CallControlIds | None = None


class CallerName(Body):
    """POST /api/calls/<id>/name: what to call the caller's number by (empty: forget the name)."""

    name: Annotated[str, Field(max_length=128)]


def first_error(error: ValidationError) -> tuple[str, str]:
    """The first problem as (field, sentence), like healthchecks' `format_first_error`."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "body"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "string_pattern_mismatch":
        pattern = (first.get("ctx") or {}).get("pattern", "")
        message = f"use {PATTERN_HINTS[pattern]}" if pattern in PATTERN_HINTS else "is not in the expected form"
    elif first["type"] == "extra_forbidden":
        message = "is not a field of this action"
    elif first["type"] == "missing":
        message = "is required"
    return field, f"{field}: {message}" if field != "body" else message
