"""The request bodies the simulated Telnyx accepts: one declared model per endpoint, fields, types, enums
and ranges as Telnyx's OpenAPI spec gives them (and ranges its descriptions state).

Validation is the first step of every command, before any state changes or webhook is sent; the first
error found (in field order: required fields first) is answered as Telnyx does, a 422 naming the field:

- missing, null or blank required field → 10004 Missing required parameter;
- value not in the enum → 10032 Invalid enumerated value;
- number or length out of range → 10033 Value outside of range;
- wrong type, or a string of the wrong form → 10015 Invalid value for <field>.

Fields Telnyx accepts but the simulator does not act on are declared too (typed, enums checked), so that
a bad value is refused as Telnyx refuses it; nested objects are only checked to be objects. Unknown fields
are ignored, as the spec's schemas allow them.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from moderator.simulator.state import ApiError, invalid

INT32_MAX = 2**31 - 1  # Telnyx's integers are 32-bit; the bound also keeps timers and dates computable

NonBlank = Annotated[str, Field(min_length=1)]
Count = Annotated[int, Field(ge=1, le=INT32_MAX)]
Integer = Annotated[int, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]
CallControlIds = list[str]
Region = Literal["Australia", "Europe", "Middle East", "US"]
Beep = Literal["always", "never", "on_enter", "on_exit"]
SupervisorRole = Literal["barge", "monitor", "none", "whisper"]
RecordingFormat = Literal["wav", "mp3"]
Channels = Literal["single", "dual"]
Language = Literal[
    "arb", "cmn-CN", "cy-GB", "da-DK", "de-DE", "en-AU", "en-GB", "en-GB-WLS", "en-IN", "en-US", "es-ES",
    "es-MX", "es-US", "fr-CA", "fr-FR", "hi-IN", "is-IS", "it-IT", "ja-JP", "ko-KR", "nb-NO", "nl-NL",
    "pl-PL", "pt-BR", "pt-PT", "ro-RO", "ru-RU", "sv-SE", "tr-TR",
]  # fmt: skip
StreamCodec = Literal["PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16"]
HttpMethod = Literal["POST", "GET"]


def _base64(value: str) -> str:
    # "It must be a valid Base-64 encoded string" (every client_state of the spec).
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise PydanticCustomError("invalid_value", "must be a valid Base-64 encoded string") from None
    return value


def _loop(value: Any) -> int | str | None:
    # The spec types loop as string or integer; its description: from 1 to 100, or "infinity".
    if value is None or value == "infinity":
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if 1 <= value <= 100:
            return value
        raise PydanticCustomError("out_of_range", "must be from 1 to 100")
    raise PydanticCustomError("invalid_value", "must be an integer from 1 to 100 or 'infinity'")


ClientState = Annotated[str, AfterValidator(_base64)]
Loop = Annotated[Any, AfterValidator(_loop)]  # checked by _loop: a union would report two errors


class Body(BaseModel):
    # strict: "5" is not an integer and 1 is not a string, as in the spec's JSON Schema.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


# --- call commands --------------------------------------------------------------------------------


class Answer(Body):
    client_state: ClientState | None = None
    command_id: str | None = None
    assistant: dict[str, Any] | None = None
    billing_group_id: str | None = None
    conversation_relay_config: dict[str, Any] | None = None
    custom_headers: list[dict[str, Any]] | None = None
    deepfake_detection: dict[str, Any] | None = None
    preferred_codecs: Literal["G722,PCMU,PCMA,G729,OPUS,VP8,H264"] | None = None
    record: Literal["record-from-answer"] | None = None
    record_channels: Channels | None = None
    record_custom_file_name: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    record_format: RecordingFormat | None = None
    record_max_length: Annotated[int, Field(ge=0, le=43200)] | None = None
    record_timeout_secs: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = None
    record_track: Literal["both", "inbound", "outbound"] | None = None
    record_trim: Literal["trim-silence"] | None = None
    send_silence_when_idle: bool | None = None
    sip_headers: list[dict[str, Any]] | None = None
    sound_modifications: dict[str, Any] | None = None
    stream_bidirectional_codec: StreamCodec | None = None
    stream_bidirectional_mode: Literal["mp3", "rtp"] | None = None
    stream_bidirectional_target_legs: Literal["both", "self", "opposite"] | None = None
    stream_codec: StreamCodec | Literal["default"] | None = None
    stream_track: Literal["inbound_track", "outbound_track", "both_tracks"] | None = None
    stream_url: str | None = None
    transcription: bool | None = None
    transcription_config: dict[str, Any] | None = None
    webhook_retries_policies: dict[str, Any] | None = None
    webhook_url: str | None = None
    webhook_url_method: HttpMethod | None = None
    webhook_urls: dict[str, str] | None = None
    webhook_urls_method: HttpMethod | None = None


class Hangup(Body):
    client_state: ClientState | None = None
    command_id: str | None = None
    custom_headers: list[dict[str, Any]] | None = None


class Enqueue(Body):
    queue_name: NonBlank
    client_state: ClientState | None = None
    command_id: str | None = None
    keep_after_hangup: bool | None = None
    max_size: Count | None = None
    max_wait_time_secs: Count | None = None


class LeaveQueue(Body):
    client_state: ClientState | None = None
    command_id: str | None = None


class SpeakCall(Body):
    payload: Annotated[str, Field(min_length=1, max_length=3000)]
    voice: NonBlank
    client_state: ClientState | None = None
    command_id: str | None = None
    language: str | None = None
    payload_type: Literal["text", "ssml"] | None = None
    service_level: Literal["basic", "premium"] | None = None
    stop: str | None = None
    voice_settings: dict[str, Any] | None = None


class GatherUsingAudioCall(Body):
    audio_url: str | None = None
    client_state: ClientState | None = None
    command_id: str | None = None
    inter_digit_timeout_millis: Count | None = None
    invalid_audio_url: str | None = None
    invalid_media_name: str | None = None
    maximum_digits: Annotated[int, Field(ge=1, le=128)] | None = None
    maximum_tries: Count | None = None
    media_name: str | None = None
    minimum_digits: Annotated[int, Field(ge=1, le=128)] | None = None
    terminating_digit: Annotated[str, Field(pattern=r"^[0-9#*A-D]$")] | None = None
    timeout_millis: Count | None = None
    valid_digits: str | None = None

    @model_validator(mode="after")
    def _media(self) -> GatherUsingAudioCall:
        if not self.audio_url and not self.media_name:
            raise PydanticCustomError("missing", "Either 'audio_url' or 'media_name' is required.")
        return self


class GatherUsingSpeak(Body):
    payload: Annotated[str, Field(min_length=1, max_length=3000)]
    voice: NonBlank
    client_state: ClientState | None = None
    command_id: str | None = None
    inter_digit_timeout_millis: Count | None = None
    invalid_payload: str | None = None
    language: str | None = None
    maximum_digits: Annotated[int, Field(ge=1, le=128)] | None = None
    maximum_tries: Count | None = None
    minimum_digits: Annotated[int, Field(ge=1, le=128)] | None = None
    payload_type: Literal["text", "ssml"] | None = None
    service_level: Literal["basic", "premium"] | None = None
    terminating_digit: Annotated[str, Field(pattern=r"^[0-9#*A-D]$")] | None = None
    timeout_millis: Count | None = None
    valid_digits: str | None = None
    voice_settings: dict[str, Any] | None = None


TranscriptionEngine = Literal[
    "Google", "Telnyx", "Deepgram", "Azure", "xAI", "AssemblyAI", "Speechmatics", "Soniox", "Parakeet", "A", "B",
]  # fmt: skip


class TranscriptionEngineConfig(Body):
    """Each engine's config is its own schema (the spec's oneOf, by transcription_engine); the simulator checks
    the two fields it acts on and takes the rest unchecked, as it does other nested objects."""

    transcription_engine: TranscriptionEngine | None = None
    interim_results: bool | None = None


class TranscriptionStart(Body):
    client_state: ClientState | None = None
    command_id: str | None = None
    transcription_engine: TranscriptionEngine | None = None
    transcription_engine_config: TranscriptionEngineConfig | None = None
    # A string in the spec; its description names the three values.
    transcription_tracks: Literal["inbound", "outbound", "both"] | None = None


class TranscriptionStop(Body):
    client_state: ClientState | None = None
    command_id: str | None = None


# --- conferences ----------------------------------------------------------------------------------


class CreateConference(Body):
    call_control_id: NonBlank
    name: NonBlank
    beep_enabled: Beep | None = None
    client_state: ClientState | None = None
    comfort_noise: bool | None = None
    command_id: str | None = None
    duration_minutes: Count | None = None
    hold_audio_url: str | None = None
    hold_media_name: str | None = None
    # "Must be between 2 and 800" (the field's description).
    max_participants: Annotated[int, Field(ge=2, le=800)] | None = None
    region: Region | None = None
    start_conference_on_create: bool | None = None


class Join(Body):
    call_control_id: NonBlank
    beep_enabled: Beep | None = None
    client_state: ClientState | None = None
    command_id: str | None = None
    end_conference_on_exit: bool | None = None
    hold: bool | None = None
    hold_audio_url: str | None = None
    hold_media_name: str | None = None
    mute: bool | None = None
    region: Region | None = None
    soft_end_conference_on_exit: bool | None = None
    start_conference_on_enter: bool | None = None
    supervisor_role: SupervisorRole | None = None
    whisper_call_control_ids: CallControlIds | None = None


class Leave(Body):
    call_control_id: NonBlank
    beep_enabled: Beep | None = None
    command_id: str | None = None
    region: Region | None = None


class End(Body):
    command_id: str | None = None


class Targets(Body):
    """Mute, unmute and stop: the participants (all when none are named)."""

    call_control_ids: CallControlIds | None = None
    region: Region | None = None


class Hold(Targets):
    audio_url: str | None = None
    media_name: str | None = None


class Unhold(Body):
    call_control_ids: Annotated[CallControlIds, Field(min_length=1)]
    region: Region | None = None


class Update(Body):
    call_control_id: NonBlank
    supervisor_role: SupervisorRole
    command_id: str | None = None
    region: Region | None = None
    whisper_call_control_ids: CallControlIds | None = None


class Play(Targets):
    audio_url: str | None = None
    loop: Loop = None
    media_name: str | None = None

    @model_validator(mode="after")
    def _media(self) -> Play:
        if not self.audio_url and not self.media_name:
            raise PydanticCustomError("missing", "Either 'audio_url' or 'media_name' is required.")
        return self


class Speak(Body):
    # "There is a 3,000 character limit" (the payload's description).
    payload: Annotated[str, Field(min_length=1, max_length=3000)]
    voice: NonBlank
    call_control_ids: CallControlIds | None = None
    command_id: str | None = None
    language: Language | None = None
    payload_type: Literal["text", "ssml"] | None = None
    region: Region | None = None
    voice_settings: dict[str, Any] | None = None


class SendDtmf(Body):
    digits: NonBlank
    call_control_ids: CallControlIds | None = None
    client_state: ClientState | None = None
    duration_millis: Annotated[int, Field(ge=100, le=500)] | None = None


class GatherUsingAudio(Body):
    call_control_id: NonBlank
    audio_url: str | None = None
    client_state: ClientState | None = None
    gather_id: Annotated[str, Field(max_length=100)] | None = None
    initial_timeout_millis: Integer | None = None
    inter_digit_timeout_millis: Integer | None = None
    invalid_audio_url: str | None = None
    invalid_media_name: str | None = None
    maximum_digits: Count | None = None
    maximum_tries: Count | None = None
    media_name: str | None = None
    minimum_digits: Count | None = None
    stop_playback_on_dtmf: bool | None = None
    terminating_digit: str | None = None
    timeout_millis: Integer | None = None
    valid_digits: str | None = None


class RecordStart(Body):
    format: RecordingFormat
    channels: Channels | None = None
    command_id: str | None = None
    custom_file_name: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    play_beep: bool | None = None
    region: Region | None = None
    trim: Literal["trim-silence"] | None = None


class Recording(Body):
    """Record pause and resume."""

    command_id: str | None = None
    recording_id: str | None = None
    region: Region | None = None


class RecordStop(Recording):
    client_state: ClientState | None = None


class UpdateParticipant(Body):
    beep_enabled: Beep | None = None
    end_conference_on_exit: bool | None = None
    soft_end_conference_on_exit: bool | None = None


# --- from a pydantic error to Telnyx's answer ----------------------------------------------------

_TYPES = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
}
_RANGE = {
    "greater_than_equal",
    "less_than_equal",
    "greater_than",
    "less_than",
    "string_too_long",
    "too_long",
    "string_too_short",
    "too_short",
    "out_of_range",
}


def _pointer(location: list[str]) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in location)


def _described(message: str) -> str:
    # pydantic's "Input should be ..." / "String should have ..." as "must be ..." / "must have ...".
    return re.sub(r"^\w+ should ", "must ", message)


def refusal(error: ErrorDetails) -> ApiError:
    """Telnyx's 422 for the first thing wrong with a body."""
    location = [str(part) for part in error["loc"]]
    field = location[0] if location else "body"
    pointer = _pointer(location)
    kind, value = error["type"], error.get("input")
    blank = kind in ("string_too_short", "too_short") and error.get("ctx", {}).get("min_length") == 1
    if kind == "missing" or blank or (kind in _TYPES and value is None and len(location) == 1):
        if not location:  # a whole-body rule (play's audio_url or media_name)
            return invalid("audio_url", error["msg"])
        return invalid(field, f"The '{field}' parameter is required and cannot be blank.")
    if kind in ("literal_error", "enum"):
        expected = error.get("ctx", {}).get("expected", "")
        return invalid(pointer, f"{field} must be one of {expected}.", "10032", "Invalid enumerated value")
    if kind in _RANGE:
        return invalid(pointer, f"{pointer} {_described(error['msg'])}.", "10033", "Value outside of range")
    described = f"must be {_TYPES[kind]}" if kind in _TYPES else _described(error["msg"])
    return invalid(pointer, f"{pointer} {described}.", "10015", f"Invalid value for {field}")


ModelT = TypeVar("ModelT", bound=Body)


def parse(model: type[ModelT], body: dict[str, Any]) -> ModelT:
    """The body as `model`, or ApiError naming the first field in error."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise refusal(error.errors(include_url=False)[0]) from None
