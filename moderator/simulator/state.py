"""The simulator's Telnyx: calls, conferences and queues with Telnyx's semantics and error codes.

Pure state, no I/O: every change that Telnyx reports by webhook is handed to ``emit(event_type,
payload)``; the server delivers them. Mute, unmute, hold, unhold and supervisor-role updates emit
nothing, as on Telnyx. Not thread-safe: the server calls it from one event loop.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moderator.simulator import bodies

Emit = Callable[[str, dict[str, Any]], None]
Schedule = Callable[[float, Callable[[], None]], None]

CONNECTION_ID = "sim-connection-1"
COMMAND_ID_WINDOW = timedelta(seconds=60)


def now() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z") if value else None


class ApiError(Exception):
    """An answer in Telnyx's error shape: ``{"errors": [{"code", "title", "detail", "source"}]}``; the
    source is a JSON pointer into the body (``pointer``) or the name of a query parameter (``parameter``)."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        pointer: str | None = None,
        parameter: str | None = None,
    ):
        super().__init__(detail)
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.pointer, self.parameter = pointer, parameter

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "title": self.title, "detail": self.detail}
        if self.pointer:
            error["source"] = {"pointer": self.pointer}
        elif self.parameter:
            error["source"] = {"parameter": self.parameter}
        return {"errors": [error]}


def call_ended() -> ApiError:
    return ApiError(
        422, "90018", "Call has already ended", "This call is no longer active and can't receive commands."
    )


def conference_ended() -> ApiError:
    return ApiError(
        422,
        "90019",
        "Conference has already ended",
        "This conference is no longer active and can't receive commands.",
    )


def conference_not_found(status: int = 404) -> ApiError:
    return ApiError(status, "90058", "Invalid conference_id", "The conference does not exist.")


def not_found(what: str) -> ApiError:
    return ApiError(404, "10005", "Resource not found", f"The requested {what} could not be found.")


def invalid(
    pointer: str, detail: str, code: str = "10004", title: str = "Missing required parameter"
) -> ApiError:
    return ApiError(422, code, title, detail, pointer=f"/{pointer}")


class NotTranscribed(Exception):
    """Speech on a call that no transcription hears: nothing to report (the phone side's say)."""


# Engines whose config in the spec has interim_results; the others (Telnyx, B, Azure) send final results only.
INTERIM_ENGINES = frozenset({"Google", "A", "Deepgram", "xAI", "AssemblyAI", "Speechmatics", "Soniox", "Parakeet"})
# Engines that say which track a result is of ("only available when transcription_engine is B", Telnyx's B).
TRACK_ENGINES = frozenset({"B", "Telnyx"})


@dataclass(frozen=True)
class SimTranscription:
    """A transcription running on a call: what its transcription_start asked for."""

    engine: str
    tracks: str  # inbound (what the call's party says), outbound (what they hear) or both
    interim_results: bool

    def hears(self, track: str) -> bool:
        return self.tracks in (track, "both")

    def as_dict(self) -> dict[str, Any]:
        return {"engine": self.engine, "tracks": self.tracks, "interim_results": self.interim_results}


@dataclass
class SimCall:
    call_control_id: str
    call_leg_id: str
    call_session_id: str
    from_number: str
    to_number: str
    direction: str
    state: str = "ringing"  # ringing → answered → hangup
    started_at: datetime = field(default_factory=now)
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    hangup_cause: str = ""
    conference_id: str | None = None
    queue_name: str | None = None
    client_state: str | None = None
    gather: dict[str, Any] | None = None  # a gather command collecting keys: its limits and what was pressed
    transcription: SimTranscription | None = None

    @property
    def alive(self) -> bool:
        return self.state != "hangup"

    def ids(self) -> dict[str, Any]:
        return {
            "call_control_id": self.call_control_id,
            "call_leg_id": self.call_leg_id,
            "call_session_id": self.call_session_id,
            "connection_id": CONNECTION_ID,
        }

    def event_ids(self) -> dict[str, Any]:
        """The ids every webhook about this call carries, with the client_state a command last gave it
        ("add state to every subsequent webhook"); none until one does (the spec's field is a string)."""
        if self.client_state is None:
            return self.ids()
        return {**self.ids(), "client_state": self.client_state}

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.ids(),
            "client_state": self.client_state,
            "from": self.from_number,
            "to": self.to_number,
            "direction": self.direction,
            "state": self.state,
            "started_at": iso(self.started_at),
            "answered_at": iso(self.answered_at),
            "ended_at": iso(self.ended_at),
            "hangup_cause": self.hangup_cause,
            "conference_id": self.conference_id,
            "queue": self.queue_name,
            "transcribing": self.transcription is not None,
            "transcription": self.transcription.as_dict() if self.transcription else None,
        }


@dataclass
class SimParticipant:
    id: str
    call: SimCall
    conference_id: str
    status: str = "joined"
    muted: bool = False
    on_hold: bool = False
    supervisor_role: str = "none"
    whisper_call_control_ids: list[str] = field(default_factory=list)
    end_conference_on_exit: bool = False
    soft_end_conference_on_exit: bool = False
    beep_enabled: str = "never"
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)

    @property
    def label(self) -> str:
        # The spec's join request carries no label: the simulator labels a participant with its caller.
        return self.call.from_number

    @property
    def whispering(self) -> bool:
        # A whisper supervisor with nobody to whisper to only listens (the spec's supervisor_role).
        return self.supervisor_role == "whisper" and bool(self.whisper_call_control_ids)


@dataclass
class SimRecording:
    id: str
    format: str
    channels: str
    started_at: datetime
    status: str = "recording"  # recording / paused


@dataclass
class SimConference:
    id: str
    name: str
    creator: SimCall
    status: str = "in_progress"
    region: str = "US"
    max_participants: int = 250
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)
    duration_minutes: int | None = None
    end_reason: str | None = None
    ended_at: datetime | None = None
    participants: dict[str, SimParticipant] = field(default_factory=dict)
    recording: SimRecording | None = None
    recordings: list[dict[str, Any]] = field(default_factory=list)
    playing: dict[str, Any] | None = None
    speaking: bool = False

    @property
    def active(self) -> bool:
        return self.status != "completed"

    def joined(self) -> list[SimParticipant]:
        return [p for p in self.participants.values() if p.status != "left"]

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "record_type": "conference",
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "expires_at": iso(self.created_at + timedelta(minutes=self.duration_minutes or 240)),
            "region": self.region,
            "connection_id": CONNECTION_ID,
        }
        if self.end_reason:
            body["end_reason"] = self.end_reason
        return body

    def payload(self) -> dict[str, Any]:
        """What conference-wide webhooks carry about the conference."""
        return {
            "conference_id": self.id,
            "connection_id": CONNECTION_ID,
            "creator_call_session_id": self.creator.call_session_id,
        }


@dataclass
class SimQueue:
    name: str
    id: str
    max_size: int = 100
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)
    calls: list[tuple[SimCall, datetime]] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)

    def average_wait(self) -> int:
        return int(sum(self.waits) / len(self.waits)) if self.waits else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "record_type": "queue",
            "id": self.id,
            "name": self.name,
            "current_size": len(self.calls),
            "max_size": self.max_size,
            "average_wait_time_secs": self.average_wait(),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }

    def call_dict(self, call: SimCall, enqueued_at: datetime) -> dict[str, Any]:
        position = next(i for i, (c, _) in enumerate(self.calls, 1) if c is call)
        return {
            "record_type": "queue_call",
            **{k: v for k, v in call.ids().items()},
            "is_alive": call.alive,
            "from": call.from_number,
            "to": call.to_number,
            "enqueued_at": iso(enqueued_at),
            "wait_time_secs": int((now() - enqueued_at).total_seconds()),
            "queue_position": position,
            "queue_id": self.id,
        }


OK = {"data": {"result": "ok"}}


@dataclass(frozen=True)
class JoinOptions:
    """How a leg joins: from a join command, or as the creator of a conference."""

    mute: bool = False
    hold: bool = False
    supervisor_role: str = "none"
    whisper_call_control_ids: tuple[str, ...] = ()
    end_conference_on_exit: bool = False
    soft_end_conference_on_exit: bool = False
    beep_enabled: str = "never"
    start_conference_on_enter: bool = False

    @classmethod
    def of(cls, body: bodies.Join) -> JoinOptions:
        return cls(
            mute=bool(body.mute),
            hold=bool(body.hold),
            supervisor_role=body.supervisor_role or "none",
            whisper_call_control_ids=tuple(body.whisper_call_control_ids or ()),
            end_conference_on_exit=bool(body.end_conference_on_exit),
            soft_end_conference_on_exit=bool(body.soft_end_conference_on_exit),
            beep_enabled=body.beep_enabled or "never",
            start_conference_on_enter=bool(body.start_conference_on_enter),
        )


class TelnyxState:
    """Everything the simulated account holds."""

    def __init__(
        self, emit: Emit, schedule: Schedule, *, media_seconds: float = 3.0, ring_timeout: float = 30.0
    ):
        self.emit = emit
        self.schedule = schedule
        self.media_seconds = media_seconds
        self.ring_timeout = ring_timeout
        self.calls: dict[str, SimCall] = {}
        self.conferences: dict[str, SimConference] = {}
        self.queues: dict[str, SimQueue] = {}
        self.command_ids: dict[tuple[str, str, str], datetime] = {}
        self.dtmf: list[dict[str, Any]] = []
        self.gathers: list[dict[str, Any]] = []

    # --- helpers ------------------------------------------------------------------------------

    def repeated(self, target: str, action: str, command_id: str | None) -> bool:
        """True when this command_id already succeeded for this target and action in the last 60 s."""
        if not command_id:
            return False
        moment = now()
        for key, when in list(self.command_ids.items()):
            if moment - when > COMMAND_ID_WINDOW:
                del self.command_ids[key]
        return (target, action, command_id) in self.command_ids

    def remember(self, target: str, action: str, command_id: str | None) -> None:
        """Called once a command has passed every check: a refused command leaves no trace."""
        if command_id:
            self.command_ids[(target, action, command_id)] = now()

    def call(self, call_control_id: str, *, answered: bool = True) -> SimCall:
        call = self.calls.get(call_control_id)
        if call is None:
            raise invalid(
                "call_control_id",
                "The call_control_id provided was not valid.",
                "90015",
                "Invalid Call Control ID",
            )
        if not call.alive:
            raise call_ended()
        if answered and call.state != "answered":
            raise ApiError(
                422,
                "90034",
                "Call not answered yet",
                "This call can't receive this command because it has not been answered yet.",
            )
        return call

    def conference(self, conference_id: str, *, active: bool = True, unknown_status: int = 404) -> SimConference:
        conference = self.conferences.get(conference_id)
        if conference is None:
            raise conference_not_found(unknown_status)
        if active and not conference.active:
            raise conference_ended()
        return conference

    def participants(
        self, conference: SimConference, call_control_ids: list[str] | None
    ) -> list[SimParticipant]:
        if not call_control_ids:
            return conference.joined()
        chosen = []
        for call_control_id in call_control_ids:
            participant = conference.participants.get(call_control_id)
            if participant is None or participant.status == "left":
                raise invalid(
                    "call_control_ids",
                    f"{call_control_id} is not a participant of this conference.",
                    "90015",
                    "Invalid Call Control ID",
                )
            chosen.append(participant)
        return chosen

    @staticmethod
    def _set_client_state(call: SimCall, client_state: str | None) -> None:
        if client_state is not None:
            call.client_state = client_state

    def participant_payload(self, participant: SimParticipant) -> dict[str, Any]:
        return {**participant.call.event_ids(), "conference_id": participant.conference_id}

    # --- phone side ---------------------------------------------------------------------------

    def new_call(
        self, from_number: str, to_number: str, *, direction: str = "incoming", answer: bool = True,
        caller_id_name: str = "",
    ) -> SimCall:
        call = SimCall(
            call_control_id=f"v3:{uuid.uuid4().hex}",
            call_leg_id=str(uuid.uuid4()),
            call_session_id=str(uuid.uuid4()),
            from_number=from_number,
            to_number=to_number,
            direction=direction,
        )
        self.calls[call.call_control_id] = call
        self.emit(
            "call.initiated",
            {
                **call.event_ids(),
                "from": from_number,
                "to": to_number,
                # Telnyx sends the caller's number when the network gives it no name.
                "caller_id_name": caller_id_name or from_number,
                "direction": direction,
                "state": "parked",
                "start_time": iso(call.started_at),
            },
        )
        if answer:
            self._answered(call)
        else:
            self.schedule(self.ring_timeout, lambda: self._ring_timeout(call))
        return call

    def _ring_timeout(self, call: SimCall) -> None:
        if call.state == "ringing":
            self.hangup(call, cause="timeout")

    def _answered(self, call: SimCall) -> None:
        call.state, call.answered_at = "answered", now()
        self.emit(
            "call.answered",
            {
                **call.event_ids(),
                "from": call.from_number,
                "to": call.to_number,
                "direction": call.direction,
                "state": "answered",
                "start_time": iso(call.started_at),
            },
        )

    def hangup(self, call: SimCall, cause: str = "normal_clearing", source: str = "caller") -> None:
        if not call.alive:
            raise call_ended()
        if call.conference_id:
            conference = self.conferences[call.conference_id]
            self._leave(conference, conference.participants[call.call_control_id], reason_exit=True)
        if call.queue_name:
            self._dequeue(call, "hangup")
        if call.gather is not None:
            self._end_gather(call, "call_hangup")
        call.transcription = None  # "Transcription will stop on call hang-up"
        call.state, call.ended_at, call.hangup_cause = "hangup", now(), cause
        self.emit(
            "call.hangup",
            {
                **call.event_ids(),
                "from": call.from_number,
                "to": call.to_number,
                "hangup_cause": cause,
                "hangup_source": source,
                "state": "hangup",
                "start_time": iso(call.started_at),
                "sip_hangup_cause": "200",
            },
        )

    def talk(self, call: SimCall) -> None:
        if not call.conference_id:
            raise invalid(
                "call_control_id", "The call is not in a conference.", "90015", "Invalid Call Control ID"
            )
        self.emit(
            "conference.floor.changed",
            {**call.event_ids(), "conference_id": call.conference_id, "occurred_at": iso(now())},
        )

    KEY_GAP = 0.15  # seconds between the keys of one press: a keypad's pace

    def press(self, call: SimCall, digits: str) -> None:
        """The caller presses keys: one call.dtmf.received per digit, in order, a keypad's pace apart."""
        if call.state != "answered":
            raise invalid("call_control_id", "The call is not answered.", "90018", "Call has already ended"
                          if call.state == "hangup" else "Call is not answered")
        for index, digit in enumerate(digits):
            def send(digit=digit) -> None:
                if call.state != "answered":
                    return
                if call.gather is not None:  # a gather takes the keys (a PIN is not reported key by key)
                    self._gathered(call, digit)
                    return
                self.emit("call.dtmf.received",
                          {**call.event_ids(), "digit": digit, "from": call.from_number, "to": call.to_number})
            if index == 0:
                send()
            else:
                self.schedule(index * self.KEY_GAP, send)

    SPEECH_GAP = 0.05  # seconds between the results of one utterance: speech's pace, quickened for tests
    MAX_INTERIMS = 4

    def say(self, call: SimCall, text: str, confidence: float, track: str = "inbound") -> None:
        """Speech on the call's `track` (inbound: its party speaks): when it is transcribed, call.transcription
        with interim results of ever more of its words (if the transcription asked for them), then the final
        result, the whole text with `confidence`, a short pace apart. NotTranscribed, nothing sent, when not."""
        transcription = call.transcription
        if transcription is None:
            raise NotTranscribed("call is not being transcribed")
        if not transcription.hears(track):
            raise NotTranscribed(f"the call's {track} track is not being transcribed")
        words = text.split()
        results: list[dict[str, Any]] = []
        if transcription.interim_results:
            # Interims carry no confidence: engines set it on final results only.
            count = min(self.MAX_INTERIMS, len(words))
            results = [{"transcript": " ".join(words[: -(-len(words) * n // count)]), "is_final": False}
                       for n in range(1, count + 1)]
        results.append({"transcript": " ".join(words), "confidence": confidence, "is_final": True})
        if transcription.engine in TRACK_ENGINES:
            results = [{**result, "transcription_track": track} for result in results]
        for index, result in enumerate(results):
            def send(result=result) -> None:
                if call.transcription is transcription:  # not stopped, restarted or hung up meanwhile
                    self.emit("call.transcription", {**call.event_ids(), "transcription_data": result})
            if index == 0:
                send()
            else:
                self.schedule(index * self.SPEECH_GAP, send)

    def _gathered(self, call: SimCall, digit: str) -> None:
        gather = call.gather
        if digit == gather["terminating_digit"]:
            return self._end_gather(call)
        if digit in gather["valid_digits"]:
            gather["digits"] += digit
        if len(gather["digits"]) >= gather["maximum_digits"]:
            self._end_gather(call)

    def _end_gather(self, call: SimCall, status: str | None = None) -> None:
        gather, call.gather = call.gather, None
        if gather is None:
            return
        digits = gather["digits"]
        if status is None:
            status = "valid" if gather["minimum_digits"] <= len(digits) <= gather["maximum_digits"] else "invalid"
        self.emit("call.gather.ended", {**call.event_ids(), "from": call.from_number, "to": call.to_number,
                                        "digits": digits, "status": status})

    # --- call commands ------------------------------------------------------------------------

    def speak_call(self, call_control_id: str, body: bodies.SpeakCall) -> dict[str, Any]:
        """Speak text on the call: call.speak.started now, call.speak.ended once said (or hung up meanwhile)."""
        call = self.call(call_control_id)
        if self.repeated(call_control_id, "speak", body.command_id):
            return OK
        self.remember(call_control_id, "speak", body.command_id)
        self._set_client_state(call, body.client_state)
        self.emit("call.speak.started", call.event_ids())

        def said() -> None:
            self.emit("call.speak.ended",
                      {**call.event_ids(), "status": "completed" if call.state == "answered" else "call_hangup"})

        self.schedule(max(self.media_seconds / 2, min(self.media_seconds * 2, len(body.payload) / 15)), said)
        return OK

    def transcription_start(self, call_control_id: str, body: bodies.TranscriptionStart) -> dict[str, Any]:
        """Transcribe the call until transcription_stop or its hangup (what is said: the phone side's say).
        A start on a call already transcribed replaces the running transcription."""
        call = self.call(call_control_id)
        if self.repeated(call_control_id, "transcription_start", body.command_id):
            return OK
        self.remember(call_control_id, "transcription_start", body.command_id)
        self._set_client_state(call, body.client_state)
        config = body.transcription_engine_config
        # The engine defaults to Google (the spec), unless only the config's discriminator names one.
        engine = body.transcription_engine or (config and config.transcription_engine) or "Google"
        call.transcription = SimTranscription(
            engine=engine,
            tracks=body.transcription_tracks or "inbound",
            interim_results=bool(config and config.interim_results) and engine in INTERIM_ENGINES,
        )
        return OK

    def transcription_stop(self, call_control_id: str, body: bodies.TranscriptionStop) -> dict[str, Any]:
        """Stop the call's transcription; harmless on a call not being transcribed (ok, nothing changes)."""
        call = self.call(call_control_id)
        if self.repeated(call_control_id, "transcription_stop", body.command_id):
            return OK
        self.remember(call_control_id, "transcription_stop", body.command_id)
        self._set_client_state(call, body.client_state)
        call.transcription = None
        return OK

    def gather_using_audio_call(self, call_control_id: str, body: bodies.GatherUsingAudioCall) -> dict[str, Any]:
        """Play the prompt and gather keys, as gather_using_speak does."""
        return self.gather_using_speak(call_control_id, body, action="gather_using_audio")

    def gather_using_speak(self, call_control_id: str, body, action: str = "gather_using_speak") -> dict[str, Any]:
        """Speak the prompt and gather keys until the terminating digit, `maximum_digits`, or the timeout (then
        call.gather.ended, "invalid" when too few were pressed)."""
        call = self.call(call_control_id)
        if self.repeated(call_control_id, action, body.command_id):
            return OK
        self.remember(call_control_id, action, body.command_id)
        self._set_client_state(call, body.client_state)
        if call.gather is not None:
            self._end_gather(call, "cancelled")  # a new gather replaces the one running
        call.gather = gather = {
            "digits": "",
            "minimum_digits": body.minimum_digits or 1,
            "maximum_digits": body.maximum_digits or 128,
            "terminating_digit": body.terminating_digit or "#",
            "valid_digits": body.valid_digits or "0123456789#*",
        }
        timeout = (body.timeout_millis or 60000) / 1000

        def timed_out() -> None:
            if call.gather is gather and call.state == "answered":
                self._end_gather(call)

        self.schedule(timeout, timed_out)
        return OK

    # Each takes its body already validated (moderator.simulator.bodies); each checks everything it
    # can refuse before it changes anything, so a refused command changes nothing and sends nothing.

    def answer(self, call_control_id: str, body: bodies.Answer) -> dict[str, Any]:
        call = self.call(call_control_id, answered=False)
        if self.repeated(call_control_id, "answer", body.command_id):
            return OK
        if call.state == "answered":
            raise ApiError(422, "90039", "Call already answered", "This call has already been answered.")
        self.remember(call_control_id, "answer", body.command_id)
        self._set_client_state(call, body.client_state)
        self._answered(call)
        return OK

    def hangup_command(self, call_control_id: str, body: bodies.Hangup) -> dict[str, Any]:
        call = self.call(call_control_id, answered=False)
        if self.repeated(call_control_id, "hangup", body.command_id):
            return OK
        self.remember(call_control_id, "hangup", body.command_id)
        self._set_client_state(call, body.client_state)
        self.hangup(call, cause="normal_clearing", source="callee")
        return OK

    def enqueue(self, call_control_id: str, body: bodies.Enqueue) -> dict[str, Any]:
        call = self.call(call_control_id)
        if self.repeated(call_control_id, "enqueue", body.command_id):
            return OK
        name = body.queue_name
        if call.queue_name == name:
            raise ApiError(
                422, "90038", "Call already in queue", "Call can't be added to a queue it's already in."
            )
        queue = self.queues.get(name)
        if queue is not None and len(queue.calls) >= queue.max_size:
            raise ApiError(
                422, "90036", "Queue full", f"The '{name}' queue is full and can't accept more calls."
            )
        self.remember(call_control_id, "enqueue", body.command_id)
        if queue is None:
            queue = self.queues[name] = SimQueue(name=name, id=str(uuid.uuid4()), max_size=body.max_size or 100)
        self._set_client_state(call, body.client_state)
        if call.conference_id:
            conference = self.conferences[call.conference_id]
            self._leave(conference, conference.participants[call.call_control_id])
        if call.queue_name:
            self._dequeue(call, "leave")
        queue.calls.append((call, now()))
        queue.updated_at = now()
        call.queue_name = name
        self.emit(
            "call.enqueued",
            {
                **call.event_ids(),
                "queue": name,
                "current_position": len(queue.calls),
                "queue_avg_wait_time_secs": queue.average_wait(),
            },
        )
        if body.max_wait_time_secs:
            self.schedule(float(body.max_wait_time_secs), lambda: self._queue_timeout(call, name))
        return OK

    def _queue_timeout(self, call: SimCall, name: str) -> None:
        if call.alive and call.queue_name == name:
            self._dequeue(call, "timeout")

    def leave_queue(self, call_control_id: str, body: bodies.LeaveQueue) -> dict[str, Any]:
        call = self.call(call_control_id)
        if self.repeated(call_control_id, "leave_queue", body.command_id):
            return OK
        if not call.queue_name:
            raise ApiError(422, "90037", "Call not in queue", "This call is not in a queue.")
        self.remember(call_control_id, "leave_queue", body.command_id)
        self._set_client_state(call, body.client_state)
        self._dequeue(call, "leave")
        return OK

    def _dequeue(self, call: SimCall, reason: str) -> None:
        queue = self.queues[call.queue_name]
        index = next(i for i, (c, _) in enumerate(queue.calls) if c is call)
        _, enqueued_at = queue.calls.pop(index)
        waited = (now() - enqueued_at).total_seconds()
        queue.waits.append(waited)
        queue.updated_at = now()
        call.queue_name = None
        self.emit(
            "call.dequeued",
            {
                **call.event_ids(),
                "queue": queue.name,
                "queue_position": index + 1,
                "reason": reason,
                "wait_time_secs": int(waited),
            },
        )

    # --- conferences --------------------------------------------------------------------------

    def live_conference(self, name: str) -> SimConference | None:
        return next((c for c in self.conferences.values() if c.name == name and c.active), None)

    def conference_id_of(self, id_or_name: str) -> str:
        """The id of the conference with this id, else of the live conference with this name (names are
        reused once a conference has ended), else the path as given (so that it is not found)."""
        if id_or_name in self.conferences:
            return id_or_name
        live = self.live_conference(id_or_name)
        return live.id if live else id_or_name

    def create_conference(self, body: bodies.CreateConference) -> dict[str, Any]:
        call = self.call(body.call_control_id)
        if self.repeated(call.call_control_id, "create_conference", body.command_id):
            existing = self.live_conference(body.name)
            if existing:
                return {"data": existing.as_dict()}
        if self.live_conference(body.name):
            raise ApiError(
                422,
                "90033",
                "Unable to execute command",
                "Conference with given name already exists and it's active.",
            )
        self.remember(call.call_control_id, "create_conference", body.command_id)
        start = body.start_conference_on_create is not False  # true unless said otherwise
        conference = SimConference(
            id=str(uuid.uuid4()),
            name=body.name,
            creator=call,
            region=body.region or "US",
            max_participants=body.max_participants or 250,
            duration_minutes=body.duration_minutes,
            status="in_progress" if start else "init",
        )
        self.conferences[conference.id] = conference
        self._set_client_state(call, body.client_state)
        self.emit(
            "conference.created", {**call.event_ids(), "conference_id": conference.id, "occurred_at": iso(now())}
        )
        self._join(
            conference,
            call,
            JoinOptions(beep_enabled=body.beep_enabled or "never", start_conference_on_enter=start),
        )
        if conference.duration_minutes:
            self.schedule(conference.duration_minutes * 60.0, lambda: self._time_exceeded(conference))
        return {"data": conference.as_dict()}

    def _time_exceeded(self, conference: SimConference) -> None:
        if conference.active:
            self._end(conference, "time_exceeded")

    def join(self, conference_ref: str, body: bodies.Join) -> dict[str, Any]:
        # The spec gives join no 404: an unknown conference is refused with a 422, code 90058 as elsewhere.
        conference = self.conference(conference_ref, unknown_status=422)
        call = self.call(body.call_control_id)
        action = "join:" + call.call_control_id
        if self.repeated(conference.id, action, body.command_id):
            return OK
        existing = conference.participants.get(call.call_control_id)
        if existing and existing.status != "left":
            raise ApiError(
                422, "90016", "Call already in conference", "This call is already in the conference."
            )
        if len(conference.joined()) >= conference.max_participants:
            raise ApiError(
                422,
                "90032",
                "Maximum number of participants reached",
                f"The maximum allowed value of `max_participants` has been reached at {conference.max_participants}.",
            )
        self.remember(conference.id, action, body.command_id)
        self._set_client_state(call, body.client_state)
        self._join(conference, call, JoinOptions.of(body))
        return OK

    def _join(self, conference: SimConference, call: SimCall, options: JoinOptions) -> None:
        if call.conference_id and call.conference_id != conference.id:
            other = self.conferences[call.conference_id]
            self._leave(other, other.participants[call.call_control_id])
        if call.queue_name:
            self._dequeue(call, "bridged")
        participant = SimParticipant(
            id=str(uuid.uuid4()),
            call=call,
            conference_id=conference.id,
            muted=options.mute,
            on_hold=options.hold,
            supervisor_role=options.supervisor_role,
            whisper_call_control_ids=list(options.whisper_call_control_ids),
            end_conference_on_exit=options.end_conference_on_exit,
            soft_end_conference_on_exit=options.soft_end_conference_on_exit,
            beep_enabled=options.beep_enabled,
        )
        conference.participants[call.call_control_id] = participant
        conference.updated_at = now()
        call.conference_id = conference.id
        if conference.status == "init" and options.start_conference_on_enter:
            conference.status = "in_progress"
        self.emit("conference.participant.joined", self.participant_payload(participant))

    def leave(self, conference_ref: str, body: bodies.Leave) -> dict[str, Any]:
        # The spec gives leave no 404: an unknown conference is refused with a 422, code 90058 as elsewhere.
        conference = self.conference(conference_ref, unknown_status=422)
        call = self.call(body.call_control_id)
        action = "leave:" + call.call_control_id
        if self.repeated(conference.id, action, body.command_id):
            return OK
        participant = conference.participants.get(call.call_control_id)
        if participant is None or participant.status == "left":
            raise invalid(
                "call_control_id", "This call is not in the conference.", "90015", "Invalid Call Control ID"
            )
        self.remember(conference.id, action, body.command_id)
        self._leave(conference, participant, reason_exit=True)
        return OK

    def _leave(
        self, conference: SimConference, participant: SimParticipant, reason_exit: bool = False
    ) -> None:
        if participant.status == "left":
            return
        participant.status, participant.updated_at = "left", now()
        participant.call.conference_id = None
        conference.updated_at = now()
        self.emit("conference.participant.left", self.participant_payload(participant))
        if not conference.active:
            return
        if reason_exit and (participant.end_conference_on_exit or participant.soft_end_conference_on_exit):
            self._end(conference, "host_left", hang_up=participant.end_conference_on_exit)
        elif not conference.joined():
            self._end(conference, "all_left")

    def end(self, conference_id: str, body: bodies.End) -> dict[str, Any]:
        conference = self.conference(conference_id)
        if self.repeated(conference.id, "end", body.command_id):
            return OK
        self.remember(conference.id, "end", body.command_id)
        self._end(conference, "ended_via_api", hang_up=True)
        return OK

    def _end(self, conference: SimConference, reason: str, hang_up: bool = False) -> None:
        conference.status, conference.end_reason, conference.ended_at = "completed", reason, now()
        if conference.recording:
            self._save_recording(conference)
        if conference.playing:
            self._media_ended(conference, None, "playback", conference.playing)
        if conference.speaking:
            self._media_ended(conference, None, "speak", {})
        remaining = conference.joined()
        for participant in remaining:
            participant.status, participant.updated_at = "left", now()
            participant.call.conference_id = None
            self.emit("conference.participant.left", self.participant_payload(participant))
        self.emit(
            "conference.ended",
            {
                **conference.creator.event_ids(),
                "conference_id": conference.id,
                # The resource says ended_via_api, but the webhook's reason enum (all_left, host_left,
                # time_exceeded) has no such value: when the API ends it, everybody has left.
                "reason": reason if reason != "ended_via_api" else "all_left",
                "occurred_at": iso(now()),
            },
        )
        if hang_up:
            for participant in remaining:
                if participant.call.alive:
                    self.hangup(participant.call, cause="normal_clearing", source="callee")

    def list_conferences(self, name: str | None, status: str | None) -> list[SimConference]:
        conferences = sorted(self.conferences.values(), key=lambda c: c.created_at, reverse=True)
        if name:
            conferences = [c for c in conferences if c.name == name]
        if status:
            conferences = [c for c in conferences if c.status == status]
        return conferences

    def participant_dict(self, participant: SimParticipant, conference: SimConference) -> dict[str, Any]:
        return {
            "record_type": "participant",
            "id": participant.id,
            "call_control_id": participant.call.call_control_id,
            "call_leg_id": participant.call.call_leg_id,
            "conference": {"id": conference.id, "name": conference.name},
            "whisper_call_control_ids": list(participant.whisper_call_control_ids),
            "created_at": iso(participant.created_at),
            "updated_at": iso(participant.updated_at),
            "end_conference_on_exit": participant.end_conference_on_exit,
            "soft_end_conference_on_exit": participant.soft_end_conference_on_exit,
            "status": participant.status,
            "muted": participant.muted,
            "on_hold": participant.on_hold,
        }

    def single_participant_dict(self, participant: SimParticipant) -> dict[str, Any]:
        return {
            "call_control_id": participant.call.call_control_id,
            "call_leg_id": participant.call.call_leg_id,
            "conference_id": participant.conference_id,
            "created_at": iso(participant.created_at),
            "updated_at": iso(participant.updated_at),
            "end_conference_on_exit": participant.end_conference_on_exit,
            "soft_end_conference_on_exit": participant.soft_end_conference_on_exit,
            "id": participant.id,
            "label": participant.label,
            "muted": participant.muted,
            "on_hold": participant.on_hold,
            "status": participant.status,
            "whisper_call_control_ids": list(participant.whisper_call_control_ids),
        }

    def find_participant(self, conference_id: str, participant_ref: str) -> SimParticipant:
        """By id (or call control id, or call leg id), else by label ("by their ID or label", the spec).
        Labels can repeat: the participant still in the conference, the latest, is the one meant."""
        conference = self.conference(conference_id, active=False)
        participants = list(conference.participants.values())
        for participant in participants:
            if participant_ref in (participant.id, participant.call.call_control_id, participant.call.call_leg_id):
                return participant
        labelled = [p for p in participants if p.label == participant_ref]
        if labelled:
            return max(labelled, key=lambda p: (p.status != "left", p.created_at))
        raise not_found("participant")

    def update_participant(
        self, conference_id: str, participant_id: str, body: bodies.UpdateParticipant
    ) -> SimParticipant:
        participant = self.find_participant(conference_id, participant_id)
        if body.end_conference_on_exit is not None:
            participant.end_conference_on_exit = body.end_conference_on_exit
        if body.soft_end_conference_on_exit is not None:
            participant.soft_end_conference_on_exit = body.soft_end_conference_on_exit
        if body.beep_enabled is not None:
            participant.beep_enabled = body.beep_enabled
        participant.updated_at = now()
        return participant

    # --- conference commands that emit no webhook -------------------------------------------

    def set_flag(
        self, conference_id: str, body: bodies.Targets | bodies.Unhold, flag: str, value: bool
    ) -> dict[str, Any]:
        conference = self.conference(conference_id)
        for participant in self.participants(conference, body.call_control_ids):
            setattr(participant, flag, value)
            participant.updated_at = now()
        return OK

    def update(self, conference_id: str, body: bodies.Update) -> dict[str, Any]:
        # The spec gives update no 404: an unknown conference is refused with a 422, code 90058 as elsewhere.
        conference = self.conference(conference_id, unknown_status=422)
        (participant,) = self.participants(conference, [body.call_control_id])
        action = "update:" + participant.call.call_control_id
        if self.repeated(conference.id, action, body.command_id):
            return OK
        self.remember(conference.id, action, body.command_id)
        participant.supervisor_role = body.supervisor_role
        participant.whisper_call_control_ids = list(body.whisper_call_control_ids or [])
        participant.updated_at = now()
        return OK

    def send_dtmf(self, conference_id: str, body: bodies.SendDtmf) -> dict[str, Any]:
        conference = self.conference(conference_id)
        targets = self.participants(conference, body.call_control_ids)
        for participant in targets:
            self._set_client_state(participant.call, body.client_state)
        self.dtmf.append(
            {
                "conference_id": conference.id,
                "digits": body.digits,
                "call_control_ids": [p.call.call_control_id for p in targets],
            }
        )
        return OK

    def gather_using_audio(self, conference_id: str, body: bodies.GatherUsingAudio) -> dict[str, Any]:
        conference = self.conference(conference_id)
        (participant,) = self.participants(conference, [body.call_control_id])
        self._set_client_state(participant.call, body.client_state)
        self.gathers.append({"conference_id": conference.id, **body.model_dump(exclude_none=True)})
        return OK

    # --- media --------------------------------------------------------------------------------

    def play(self, conference_id: str, body: bodies.Play) -> dict[str, Any]:
        conference = self.conference(conference_id)
        media = {"media_url": body.audio_url} if body.audio_url else {"media_name": body.media_name}
        loop = body.loop
        seconds = self.media_seconds * (1 if loop in (None, 1) else 3 if loop != "infinity" else math.inf)
        self._media(conference, body.call_control_ids, "playback", media, seconds)
        return OK

    def speak(self, conference_id: str, body: bodies.Speak) -> dict[str, Any]:
        conference = self.conference(conference_id)
        if self.repeated(conference.id, "speak", body.command_id):
            return OK
        seconds = max(self.media_seconds / 2, min(self.media_seconds * 2, len(body.payload) / 15))
        self._media(conference, body.call_control_ids, "speak", {}, seconds)
        self.remember(conference.id, "speak", body.command_id)
        return OK

    def _media(
        self,
        conference: SimConference,
        call_control_ids: list[str] | None,
        kind: str,
        media: dict[str, Any],
        seconds: float,
    ) -> None:
        targets = self.participants(conference, call_control_ids) if call_control_ids else None
        token = object()
        if targets is None:
            if kind == "playback":
                conference.playing = {**media, "token": token}
            else:
                conference.speaking = True
            self.emit(
                f"conference.{kind}.started", {**conference.payload(), **media, "occurred_at": iso(now())}
            )
        else:
            for participant in targets:
                self.emit(
                    f"conference.participant.{kind}.started",
                    {
                        **self.participant_payload(participant),
                        "creator_call_session_id": conference.creator.call_session_id,
                        **media,
                        "occurred_at": iso(now()),
                    },
                )
        if math.isfinite(seconds):
            self.schedule(seconds, lambda: self._media_finished(conference, targets, kind, media, token))

    def _media_finished(self, conference, targets, kind, media, token) -> None:
        if not conference.active:
            return
        if (
            targets is None
            and kind == "playback"
            and (not conference.playing or conference.playing.get("token") is not token)
        ):
            return
        if targets is None and kind == "speak" and not conference.speaking:
            return
        self._media_ended(conference, targets, kind, media)

    def _media_ended(self, conference, targets, kind: str, media: dict[str, Any]) -> None:
        media = {k: v for k, v in media.items() if k != "token"}
        if targets is None:
            if kind == "playback":
                conference.playing = None
            else:
                conference.speaking = False
            self.emit(
                f"conference.{kind}.ended", {**conference.payload(), **media, "occurred_at": iso(now())}
            )
        else:
            for participant in targets:
                self.emit(
                    f"conference.participant.{kind}.ended",
                    {
                        **self.participant_payload(participant),
                        "creator_call_session_id": conference.creator.call_session_id,
                        **media,
                        "occurred_at": iso(now()),
                    },
                )

    def stop(self, conference_id: str, body: bodies.Targets) -> dict[str, Any]:
        conference = self.conference(conference_id)
        if body.call_control_ids:
            self._media_ended(conference, self.participants(conference, body.call_control_ids), "playback", {})
        elif conference.playing:
            self._media_ended(conference, None, "playback", conference.playing)
        return OK

    # --- recording ----------------------------------------------------------------------------

    def record_start(self, conference_id: str, body: bodies.RecordStart) -> dict[str, Any]:
        conference = self.conference(conference_id)
        if self.repeated(conference.id, "record_start", body.command_id):
            return OK
        if conference.recording:
            raise ApiError(
                422, "90021", "Recording already in progress", "The conference is already being recorded."
            )
        self.remember(conference.id, "record_start", body.command_id)
        conference.recording = SimRecording(
            id=str(uuid.uuid4()), format=body.format, channels=body.channels or "single", started_at=now()
        )
        return OK

    def _recording(self, conference_id: str, body: bodies.Recording) -> tuple[SimConference, SimRecording]:
        conference = self.conference(conference_id)
        recording = conference.recording
        if recording is None or (body.recording_id and body.recording_id != recording.id):
            raise ApiError(404, "90059", "Recording not found", "The conference is not being recorded.")
        return conference, recording

    def record_pause(self, conference_id: str, body: bodies.Recording) -> dict[str, Any]:
        _, recording = self._recording(conference_id, body)
        recording.status = "paused"
        return OK

    def record_resume(self, conference_id: str, body: bodies.Recording) -> dict[str, Any]:
        _, recording = self._recording(conference_id, body)
        recording.status = "recording"
        return OK

    def record_stop(self, conference_id: str, body: bodies.RecordStop) -> dict[str, Any]:
        conference, _ = self._recording(conference_id, body)
        if self.repeated(conference.id, "record_stop", body.command_id):
            return OK
        self.remember(conference.id, "record_stop", body.command_id)
        # A conference's webhooks carry its creator's client_state.
        self._set_client_state(conference.creator, body.client_state)
        self._save_recording(conference)
        return OK

    def _save_recording(self, conference: SimConference) -> None:
        recording, conference.recording = conference.recording, None
        base = f"https://recordings.telnyx-simulator.invalid/{recording.id}"
        urls = {
            "mp3": f"{base}.mp3" if recording.format == "mp3" else None,
            "wav": f"{base}.wav" if recording.format == "wav" else None,
        }
        payload = {
            **conference.creator.event_ids(),
            "conference_id": conference.id,
            "channels": recording.channels,
            "format": recording.format,
            "recording_id": recording.id,
            "recording_started_at": iso(recording.started_at),
            "recording_ended_at": iso(now()),
            "recording_urls": urls,
            "public_recording_urls": urls,
        }
        conference.recordings.append(payload)
        self.emit("conference.recording.saved", payload)

    # --- snapshot for /sim/state -------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "calls": [c.as_dict() for c in self.calls.values()],
            "conferences": [
                {
                    **c.as_dict(),
                    "participants": [
                        self.participant_dict(p, c)
                        | {"supervisor_role": p.supervisor_role, "from": p.call.from_number}
                        for p in c.participants.values()
                    ],
                    "recording": None
                    if not c.recording
                    else {"id": c.recording.id, "status": c.recording.status, "format": c.recording.format},
                    "recordings": c.recordings,
                    "playing": bool(c.playing),
                    "speaking": c.speaking,
                }
                for c in self.conferences.values()
            ],
            "queues": [
                {**q.as_dict(), "calls": [q.call_dict(c, t) for c, t in q.calls]}
                for q in self.queues.values()
            ],
            "dtmf": self.dtmf,
            "gathers": self.gathers,
        }
