"""Every moderator action, declared once: what Telnyx is sent, what the page asks for, what acceptance changes.

An entry drives the actions API (which actions exist, their body's schema), the SDK call and its audit
(`moderator.control.actions`), the state Telnyx's acceptance implies (a rule from `moderator.state.rules`)
and the page: the dialogs' fields are passed to the browser with `json_script` (`page_actions()`), so the
script declares none of its own. To add an action: its body in `schemas`, an entry here, a button.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel

from moderator.control import schemas
from moderator.models import Participant
from moderator.state import rules


@dataclass(frozen=True)
class Field:
    """One input of an action's dialog. Its HTML constraints (pattern, lengths, bounds) and the sentence that
    explains a pattern come from the action's body schema (`page_actions`): declared once, checked twice."""

    name: str
    label: str
    # text, url, number, textarea, select, checkbox; legs (of this conference, but the row's own), conferences
    # (live ones on the board); calls, queues: choices the page asks the server for (GET /api/choices/<kind>)
    kind: str = "text"
    options: tuple[tuple[str, str], ...] = ()  # (value, label)
    required: bool = False
    hint: str = ""  # shown under the input
    shown_when: tuple[str, str] | None = None  # (field, value): only then does this field apply
    empty: str = ""  # for legs, calls, queues: what the dialog says when there is nothing to choose


@dataclass(frozen=True)
class Form:
    title: str
    fields: tuple[Field, ...] = ()
    confirm: str = ""  # a sentence: the dialog asks to confirm instead of asking for values
    destructive: bool = False  # it disconnects someone: the confirm button says so


@dataclass(frozen=True)
class Action:
    name: str
    on: Literal["conference", "call"]
    schema: type[BaseModel]
    method: str  # the SDK method under client.conferences.actions / client.calls.actions
    takes_command_id: bool
    describe: str  # what the moderator asked for, for messages: "mute", "start recording"
    # Which legs a button's click addresses: "legs" (call_control_ids: one row, the selected, or everyone),
    # "leg" (call_control_id of its row), or nothing.
    targets: Literal["legs", "leg", "none"] = "none"
    form: Form | None = None
    accepted: rules.Accepted | None = None  # what Telnyx's acceptance changes (no webhook will say)


def _choices(choices) -> tuple[tuple[str, str], ...]:
    return tuple((str(value), str(label)) for value, label in choices)


ROLES = _choices(Participant.SupervisorRole.choices)
AUDIO = (
    Field("audio_url", "Audio URL", "url"),
    Field("media_name", "…or a stored media name"),
)

CONFERENCE_ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("join", "conference", schemas.Join, "join", True, "join a call to the conference",
               form=Form("Add a call to this conference", (
                   Field("call_control_id", "Call", "calls", required=True,
                         empty="No call is waiting, parked or recently left: nothing to add right now."),
                   Field("mute", "Join muted", "checkbox"),
                   Field("supervisor_role", "Role", "select", ROLES),
               )), accepted=rules.joined_with_options),
        Action("leave", "conference", schemas.Leave, "leave", True, "remove a participant", targets="leg",
               form=Form("Remove from the conference?", confirm="The caller leaves the conference (the call "
                         "stays up, parked).", destructive=True)),
        Action("end", "conference", schemas.End, "end_conference", True, "end the conference",
               form=Form("End the conference?", confirm="Everyone still on the call will be disconnected.",
                         destructive=True), accepted=rules.ended_by_moderator),
        Action("hold", "conference", schemas.Hold, "hold", False, "hold", targets="legs",
               form=Form("Put on hold", (Field("audio_url", "Hold music URL (optional)", "url"), AUDIO[1])),
               accepted=rules.legs_flag("on_hold", True)),
        Action("unhold", "conference", schemas.Unhold, "unhold", False, "unhold", targets="legs",
               accepted=rules.legs_flag("on_hold", False)),
        Action("mute", "conference", schemas.Mute, "mute", False, "mute", targets="legs",
               accepted=rules.legs_flag("muted", True)),
        Action("unmute", "conference", schemas.Mute, "unmute", False, "unmute", targets="legs",
               accepted=rules.unmuted),
        Action("play", "conference", schemas.Play, "play", False, "play audio", targets="legs",
               form=Form("Play audio", (*AUDIO, Field("loop", "Repeat", "select",
                                                       (("1", "once"), ("2", "twice"), ("3", "3 times"),
                                                        ("infinity", "until stopped")))))),
        Action("stop", "conference", schemas.Stop, "stop", False, "stop audio", targets="legs"),
        Action("speak", "conference", schemas.Speak, "speak", True, "speak text", targets="legs",
               form=Form("Speak text", (
                   Field("payload", "Text (or SSML)", "textarea", required=True),
                   Field("voice", "Voice", "select", _choices(schemas.Voice.choices)),
                   Field("language", "Language", "select", _choices(schemas.Language.choices)),
                   Field("payload_type", "Format", "select", _choices(schemas.PayloadType.choices)),
               ))),
        Action("record_start", "conference", schemas.RecordStart, "record_start", True, "start recording",
               form=Form("Start recording", (
                   Field("format", "Format", "select", _choices(schemas.RecordingFormat.choices)),
                   Field("channels", "Channels", "select", _choices(schemas.Channels.choices)),
                   Field("play_beep", "Play a beep", "checkbox"),
                   Field("trim", "Trim silence", "checkbox", (("trim-silence", "trim silence"),)),
               )), accepted=rules.recording("recording")),
        Action("record_pause", "conference", schemas.RecordControl, "record_pause", True, "pause recording",
               accepted=rules.recording("paused")),
        Action("record_resume", "conference", schemas.RecordControl, "record_resume", True, "resume recording",
               accepted=rules.recording("recording")),
        Action("record_stop", "conference", schemas.RecordStop, "record_stop", True, "stop recording",
               accepted=rules.recording("idle")),
        Action("send_dtmf", "conference", schemas.SendDtmf, "send_dtmf", False, "send DTMF", targets="legs",
               form=Form("Send DTMF", (Field("digits", "Digits", required=True),))),
        Action("gather_using_audio", "conference", schemas.Gather, "gather_dtmf_audio", False, "gather digits",
               targets="leg", form=Form("Gather digits", (
                   Field("audio_url", "Prompt audio URL", "url"),
                   Field("minimum_digits", "Minimum digits", "number"),
                   Field("maximum_digits", "Maximum digits", "number"),
                   Field("terminating_digit", "Digit that ends the input"),
               ))),
        Action("update", "conference", schemas.Update, "update", True, "change the supervisor role", targets="leg",
               form=Form("Supervisor role", (
                   Field("supervisor_role", "Role", "select", ROLES),
                   Field("whisper_call_control_ids", "Whisper to", "legs", shown_when=("supervisor_role", "whisper"),
                         hint="Only these participants hear the whisperer. Hold Ctrl or ⌘ to choose several.",
                         empty="Nobody else is on the call: a whisper would reach no one."),
               )), accepted=rules.supervisor_role),
    )
}

CALL_ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("enqueue", "call", schemas.Enqueue, "enqueue", True, "put the call in a queue",
               form=Form("Move to a queue", (Field("queue_name", "Queue", "queues", required=True,
                                                    empty="No room has a waiting room: add one in the admin."),))),
        Action("leave_queue", "call", schemas.CallCommand, "leave_queue", True, "take the call out of its queue"),
        Action("hangup", "call", schemas.CallCommand, "hangup", True, "hang up the call",
               form=Form("Drop this caller?", confirm="The caller is taken out of the queue and hung up.",
                         destructive=True)),
        # Dial-in routing's, not a moderator's: the page offers no button for them.
        Action("answer", "call", schemas.CallCommand, "answer", True, "answer the call"),
        Action("gather_using_speak", "call", schemas.GatherSpeak, "gather_using_speak", True, "ask for the PIN"),
        Action("gather_using_audio", "call", schemas.GatherAudio, "gather_using_audio", True, "ask for the PIN"),
        Action("speak", "call", schemas.SpeakOnCall, "speak", True, "tell the caller"),
        # Live captions of one leg: sent when a conference's captions are on (`moderator.control.captions`).
        Action("transcription_start", "call", schemas.TranscriptionStart, "start_transcription", True,
               "start live captions"),
        Action("transcription_stop", "call", schemas.CallCommand, "stop_transcription", True, "stop live captions"),
    )
}
MODERATOR_CALL_ACTIONS = ("enqueue", "leave_queue", "hangup")
# POST /api/conferences: a conference created from a call.
CREATE_CONFERENCE = Action("create_conference", "call", schemas.CreateConference, "create", True, "create a conference")


@dataclass(frozen=True)
class PageVerb:
    """A button of the page that is not one action of one target: what it posts, and what it asks for."""

    # "conference:<action>", "call:<action>", "create" (POST /api/conferences), "resync", "name" (of a caller),
    # "lower_hands", "lock:on|off", "captions:on|off", "admit_waiting:next|all", "ban", "lift_ban"
    api: str
    form: Form | None = None


PAGE_VERBS: dict[str, PageVerb] = {
    # A waiting caller joins a conference the moderator picks (the room's is preselected).
    "admit": PageVerb("conference:join", Form("Admit caller", (Field("conference", "Into conference",
                                                                     "conferences", required=True),))),
    "drop": PageVerb("call:hangup", CALL_ACTIONS["hangup"].form),
    "create_conference": PageVerb("create", Form("Start a new conference with this caller",
                                                 (Field("name", "Conference name", required=True),))),
    "resync": PageVerb("resync"),
    # Not Telnyx commands: the hand goes down, the caller stays as they are (POST …/lower_hands); new dial-in
    # callers wait, or no longer do (POST …/lock); a room's waiting callers are taken in (POST /api/queues/…/admit).
    "lower_hand": PageVerb("lower_hands"),
    "lock": PageVerb("lock:on", Form("Lock the conference?", confirm="New callers wait in the room's waiting room "
                                     "until you unlock it or admit them; the room's moderators still join.")),
    "unlock": PageVerb("lock:off"),
    # Live captions of every leg, and of every leg that joins (POST …/captions; each leg's command: the outbox).
    "captions_on": PageVerb("captions:on"),
    "captions_off": PageVerb("captions:off"),
    "ban": PageVerb("ban", Form("Remove and ban this caller?", (
        Field("duration", "Ban", "select", (("conference", "until this conference ends"), ("forever", "for good"))),
    ), confirm="The call is hung up, and calls from this number to this room are refused (you can lift it).",
        destructive=True)),
    "lift_ban": PageVerb("lift_ban"),
    "admit_next": PageVerb("admit_waiting:next"),
    "admit_all": PageVerb("admit_waiting:all", Form("Admit everyone waiting?",
                                                    confirm="Every caller in this waiting room joins the conference.")),
    "name": PageVerb("name", Form("Name this caller", (Field(
        "name", "Name", hint="Shown instead of the number, now and whenever this number calls this room again. "
        "Leave empty to forget the name."),))),
}


def constraints(schema: type[BaseModel] | None, field: Field) -> dict[str, Any]:
    """The HTML constraints of a text or number input, from the body schema's own (so the browser refuses what
    the API would, before sending), and the sentence that says what a pattern allows."""
    if schema is None or field.kind not in ("text", "url", "number", "textarea"):
        return {}
    spec = schema.model_json_schema()["properties"].get(field.name, {})
    spec = next((s for s in spec.get("anyOf", [spec]) if s.get("type") in ("string", "integer")), spec)
    html = {
        "pattern": spec.get("pattern", "").removeprefix("^").removesuffix("$"),  # HTML anchors patterns itself
        "minlength": spec.get("minLength"),
        "maxlength": spec.get("maxLength"),
        "min": spec.get("minimum"),
        "max": spec.get("maximum"),
        "hint": field.hint or ("Use " + schemas.PATTERN_HINTS[spec["pattern"]] + "."
                               if spec.get("pattern") in schemas.PATTERN_HINTS else ""),
    }
    return {key: value for key, value in html.items() if value not in (None, "")}


# The body a verb posts, for its dialog's constraints.
VERB_SCHEMAS: dict[str, type[BaseModel]] = {"create": schemas.CreateConference, "name": schemas.CallerName}


@cache  # declared once, the same for every page: built (schemas walked) once per process
def page_actions() -> dict[str, Any]:
    """What the page's script needs to know of every action and verb (for `json_script`)."""

    def form(f: Form | None, schema: type[BaseModel] | None) -> dict[str, Any] | None:
        if f is None:
            return None
        data = asdict(f)
        data["fields"] = [{**asdict(field), **constraints(schema, field)} for field in f.fields]
        return data

    actions = {
        a.name: {"api": f"{a.on}:{a.name}", "targets": a.targets, "form": form(a.form, a.schema)}
        for a in (*CONFERENCE_ACTIONS.values(), *(CALL_ACTIONS[n] for n in MODERATOR_CALL_ACTIONS))
    }
    verbs = {name: {"api": v.api, "targets": "none", "form": form(v.form, VERB_SCHEMAS.get(v.api))}
             for name, v in PAGE_VERBS.items()}
    return {**actions, **verbs}
