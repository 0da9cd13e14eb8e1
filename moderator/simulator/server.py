"""The simulator's HTTP side: Telnyx's API under /v2/, the phone side and test controls under /sim/.

/sim/ endpoints (JSON):
- ``POST /sim/calls {"from", "to", "caller_id_name"?}`` → 201, an answered call (call.initiated + call.answered sent);
- ``POST /sim/calls/inbound {"from", "to"}`` → 201, a ringing call: call.initiated is sent and the call
  waits for ``/v2/calls/<id>/actions/answer`` (then call.answered) or hangs up after the ring timeout;
- ``POST /sim/calls/<call_control_id>/hangup`` and ``/talk`` (the leg takes the floor), ``/dtmf {"digits": "*1"}``
  (the caller presses keys: call.dtmf.received per digit), ``/say {"text", "confidence"?, "track"?}`` (the caller
  speaks, or with track "outbound" is spoken to: on a transcribed call, call.transcription webhooks, interim
  results then the final one; 409 when the call is not being transcribed);
- ``GET /sim/state``: calls, conferences, participants, queues, recordings, webhooks with their delivery
  attempts, and every API request received;
- ``POST /sim/faults {"path", "method", "mode", "status", "code", "title", "detail", "times", "delay"}``:
  the next ``times`` requests whose path matches ``path`` (fnmatch pattern, e.g.
  ``/v2/conferences/*/actions/mute``) answer ``status`` with a Telnyx error body (mode ``error``), hang
  for ``delay`` seconds (mode ``timeout``) or have their connection closed (mode ``disconnect``);
  ``DELETE /sim/faults`` clears them;
- ``POST /sim/reset``: forget everything.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from moderator.simulator import bodies
from moderator.simulator.state import ApiError, NotTranscribed, TelnyxState, iso, not_found, now
from moderator.simulator.webhooks import DeliveryOptions, WebhookSender

logger = logging.getLogger(__name__)

STATE = web.AppKey("state", TelnyxState)
SENDER = web.AppKey("sender", WebhookSender)
CONFIG = web.AppKey("config", "SimulatorConfig")
FAULTS = web.AppKey("faults", list)
REQUESTS = web.AppKey("requests", list)


@dataclass
class SimulatorConfig:
    api_key: str
    media_seconds: float = 3.0
    ring_timeout: float = 30.0


def error_response(error: ApiError) -> web.Response:
    return web.json_response(error.body(), status=error.status)


def unauthorized() -> web.Response:
    return web.json_response(
        {
            "errors": [
                {
                    "code": "10009",
                    "title": "Authentication failed",
                    "detail": "The required authentication headers were either invalid or not included in the request.",
                    "meta": {"url": "https://developers.telnyx.com/docs/overview/errors/10009"},
                }
            ]
        },
        status=401,
    )


@web.middleware
async def telnyx_middleware(request: web.Request, handler) -> web.StreamResponse:
    """For /v2/: log the request, apply injected faults, check the bearer key, map ApiError."""
    if not request.path.startswith("/v2/"):
        return await handler(request)
    raw = await request.read()
    entry = {
        "method": request.method,
        "path": request.path,
        "query": dict(request.query),
        # Logged even when it is not UTF-8 (json_body refuses such a body, the log must not fail on it).
        "body": raw[:4000].decode("utf-8", errors="replace"),
        "at": iso(now()),
    }
    request.app[REQUESTS].append(entry)
    for fault in request.app[FAULTS]:
        if (
            fault["times"] > 0
            and fault["method"] in (request.method, "*")
            and fnmatch.fnmatchcase(request.path, fault["path"])
        ):
            fault["times"] -= 1
            entry["fault"] = fault["mode"]
            if fault["mode"] == "timeout":
                await asyncio.sleep(fault["delay"])
                return web.json_response(
                    {
                        "errors": [
                            {"code": "90000", "title": "Gateway timeout", "detail": "Simulated timeout."}
                        ]
                    },
                    status=504,
                )
            if fault["mode"] == "disconnect":
                request.transport.close()
                raise ConnectionResetError("simulated disconnect")
            return web.json_response(
                {"errors": [{"code": fault["code"], "title": fault["title"], "detail": fault["detail"]}]},
                status=fault["status"],
            )
    if request.headers.get("Authorization") != f"Bearer {request.app[CONFIG].api_key}":
        entry["status"] = 401
        return unauthorized()
    try:
        response = await handler(request)
    except ApiError as error:
        response = error_response(error)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as error:
        response = not_simulated(request, error)
    entry["status"] = response.status
    return response


def not_simulated(request: web.Request, error: web.HTTPException) -> web.Response:
    """A path or method the simulator does not serve answers in Telnyx's JSON error shape too."""
    if isinstance(error, web.HTTPNotFound):
        return error_response(not_found("resource or URL"))
    return web.json_response(
        ApiError(
            405,
            "10015",
            "Bad Request",
            f"The simulator does not simulate {request.method} {request.path}.",
        ).body(),
        status=405,
        headers={"Allow": error.headers.get("Allow", "")},
    )


def malformed(detail: str) -> ApiError:
    # Telnyx's code for a request that is not well-formed; 422, the status the spec gives every refusal.
    return ApiError(422, "10015", "Bad Request", detail)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object ({} when empty); ValueError saying what is wrong with it otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("The request body is not valid UTF-8.") from None
    if not text.strip():
        return {}
    try:
        # NaN and Infinity are not JSON; a deeply nested document must not reach the recursion limit.
        body = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise ValueError("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ValueError("The request body must be a JSON object.")
    return body


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        return json_object(await request.read())
    except ValueError as error:
        raise malformed(str(error)) from None


# --- query parameters: declared per endpoint, refused with the parameter named ---------------------

REGIONS = ("Australia", "Europe", "Middle East", "US")
_DIGITS = re.compile(r"[0-9]{1,9}")  # ASCII digits only ("²".isdigit() is true), and no 5,000-digit ints


def query_int(request: web.Request, names: tuple[str, ...], default: int, high: int) -> int:
    for name in names:
        value = request.query.get(name)
        if value is not None:
            if not _DIGITS.fullmatch(value) or not 1 <= int(value) <= high:
                raise ApiError(
                    422,
                    "10033",
                    "Value outside of range",
                    f"{name} must be an integer from 1 to {high}",
                    parameter=name,
                )
            return int(value)
    return default


def query_bool(request: web.Request, name: str) -> bool | None:
    value = request.query.get(name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise ApiError(422, "10015", f"Invalid value for {name}", f"{name} must be true or false", parameter=name)
    return value == "true"


def query_enum(request: web.Request, name: str, values: tuple[str, ...]) -> str | None:
    value = request.query.get(name)
    if value is not None and value not in values:
        raise ApiError(
            422,
            "10032",
            "Invalid enumerated value",
            f"{name} must be one of {', '.join(values)}",
            parameter=name,
        )
    return value


def page(request: web.Request, items: list[Any]) -> dict[str, Any]:
    """Telnyx's page[number] and page[size] (page[limit] is another name for the size; page[after] and
    page[before] are cursors of other endpoints, ignored here); the flat page_number and page_size that
    the SDK sends too."""
    page_number = query_int(request, ("page[number]", "page_number"), 1, 10**9)
    page_size = query_int(request, ("page[size]", "page_size", "page[limit]"), 20, 250)
    total_pages = max(1, -(-len(items) // page_size))
    start = (page_number - 1) * page_size
    return {
        "data": items[start : start + page_size],
        "meta": {
            "page_number": page_number,
            "page_size": page_size,
            "total_pages": total_pages,
            "total_results": len(items),
        },
    }


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def command(
    method_name: str,
    model: type[bodies.Body],
    *,
    key: str = "id",
    flag: tuple[str, bool] | None = None,
    by_name: bool = False,
) -> Handler:
    """A POST action: the JSON body validated as `model` (nothing else happens when it is refused), then
    one TelnyxState method called with the path id and the validated body. With `by_name`, the path may
    name a live conference instead of giving its id."""

    async def handle(request: web.Request) -> web.Response:
        state = request.app[STATE]
        body = bodies.parse(model, await json_body(request))
        target = request.match_info[key]
        if by_name:
            target = state.conference_id_of(target)
        if flag:
            result = state.set_flag(target, body, *flag)
        else:
            result = getattr(state, method_name)(target, body)
        return web.json_response(result)

    return handle


async def list_conferences(request: web.Request) -> web.Response:
    state = request.app[STATE]
    query_enum(request, "region", REGIONS)
    status = query_enum(request, "filter[status]", ("init", "in_progress", "completed"))
    conferences = state.list_conferences(request.query.get("filter[name]"), status)
    return web.json_response(page(request, [c.as_dict() for c in conferences]))


async def create_conference(request: web.Request) -> web.Response:
    body = bodies.parse(bodies.CreateConference, await json_body(request))
    return web.json_response(request.app[STATE].create_conference(body))


async def retrieve_conference(request: web.Request) -> web.Response:
    conference = request.app[STATE].conference(request.match_info["id"], active=False)
    return web.json_response({"data": conference.as_dict()})


async def list_participants(request: web.Request) -> web.Response:
    """The spec's filters: filter[muted], filter[on_hold] and filter[whispering] (booleans), region."""
    state = request.app[STATE]
    query_enum(request, "region", REGIONS)
    wanted = {name: query_bool(request, f"filter[{name}]") for name in ("muted", "on_hold", "whispering")}
    conference = state.conference(request.match_info["id"], active=False)
    participants = [
        p
        for p in conference.participants.values()
        if all(value is None or getattr(p, attribute) is value for attribute, value in wanted.items())
    ]
    return web.json_response(page(request, [state.participant_dict(p, conference) for p in participants]))


async def retrieve_participant(request: web.Request) -> web.Response:
    state = request.app[STATE]
    participant = state.find_participant(request.match_info["id"], request.match_info["participant_id"])
    return web.json_response({"data": state.single_participant_dict(participant)})


async def update_participant(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = bodies.parse(bodies.UpdateParticipant, await json_body(request))
    participant = state.update_participant(request.match_info["id"], request.match_info["participant_id"], body)
    return web.json_response({"data": state.single_participant_dict(participant)})


async def list_queues(request: web.Request) -> web.Response:
    return web.json_response(page(request, [q.as_dict() for q in request.app[STATE].queues.values()]))


def _queue(request: web.Request):
    queue = request.app[STATE].queues.get(request.match_info["name"])
    if queue is None:
        raise not_found("queue")
    return queue


async def retrieve_queue(request: web.Request) -> web.Response:
    return web.json_response({"data": _queue(request).as_dict()})


async def list_queue_calls(request: web.Request) -> web.Response:
    queue = _queue(request)
    return web.json_response(page(request, [queue.call_dict(c, t) for c, t in queue.calls]))


async def retrieve_queue_call(request: web.Request) -> web.Response:
    queue = _queue(request)
    for call, enqueued_at in queue.calls:
        if call.call_control_id == request.match_info["call_control_id"]:
            return web.json_response({"data": queue.call_dict(call, enqueued_at)})
    raise not_found("queue call")


# --- /sim/ ----------------------------------------------------------------------------------------


def sim_refusal(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


async def sim_body(request: web.Request) -> dict[str, Any]:
    try:
        return json_object(await request.read())
    except ValueError as error:
        raise sim_refusal(str(error)) from None


SimModelT = TypeVar("SimModelT", bound=BaseModel)


async def sim_parse(request: web.Request, model: type[SimModelT]) -> SimModelT:
    """The body as `model`, or a 400 naming the first field in error."""
    try:
        return model.model_validate(await sim_body(request))
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = "/".join(str(part) for part in first["loc"])
        raise sim_refusal(f"{where}: {first['msg']}") from None


def _new_call(answer: bool) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        body = await sim_body(request)
        if not body.get("from") or not body.get("to"):
            return web.json_response({"error": "from and to are required"}, status=400)
        name = body.get("caller_id_name") or ""
        if not isinstance(name, str):
            return web.json_response({"error": "caller_id_name must be a string"}, status=400)
        call = request.app[STATE].new_call(str(body["from"]), str(body["to"]), answer=answer, caller_id_name=name)
        return web.json_response({**call.ids(), "state": call.state}, status=201)

    return handle


def _sim_call(request: web.Request):
    call = request.app[STATE].calls.get(request.match_info["call_control_id"])
    if call is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "no such call"}), content_type="application/json")
    return call


async def sim_hangup(request: web.Request) -> web.Response:
    try:
        request.app[STATE].hangup(_sim_call(request))
    except ApiError as error:
        return error_response(error)
    return web.json_response({"result": "ok"})


async def sim_talk(request: web.Request) -> web.Response:
    try:
        request.app[STATE].talk(_sim_call(request))
    except ApiError as error:
        return error_response(error)
    return web.json_response({"result": "ok"})


async def sim_dtmf(request: web.Request) -> web.Response:
    body = await sim_body(request)
    digits = body.get("digits")
    if not isinstance(digits, str) or not re.fullmatch(r"[0-9*#A-D]{1,32}", digits):
        return web.json_response({"error": "digits: 1 to 32 of 0-9, *, #, A-D"}, status=400)
    try:
        request.app[STATE].press(_sim_call(request), digits)
    except ApiError as error:
        return error_response(error)
    return web.json_response({"result": "ok"})


def _spoken(text: str) -> str:
    if not text.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return text


class SayBody(BaseModel):
    """POST /sim/calls/<id>/say (strict: 1 is not a text, "0.9" is not a confidence)."""

    model_config = ConfigDict(strict=True)

    text: Annotated[str, Field(min_length=1, max_length=5000), AfterValidator(_spoken)]
    confidence: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.92
    track: Literal["inbound", "outbound"] = "inbound"


async def sim_say(request: web.Request) -> web.Response:
    body = await sim_parse(request, SayBody)
    try:
        request.app[STATE].say(_sim_call(request), body.text, body.confidence, body.track)
    except NotTranscribed as refusal:
        return web.json_response({"error": str(refusal)}, status=409)
    return web.json_response({"result": "ok"})


async def sim_state(request: web.Request) -> web.Response:
    snapshot = request.app[STATE].snapshot()
    snapshot["webhooks"] = [d.as_dict() for d in request.app[SENDER].deliveries]
    snapshot["requests"] = request.app[REQUESTS]
    return web.json_response(snapshot)


class FaultBody(BaseModel):
    """POST /sim/faults (a test control, so lax: "500" is 500)."""

    path: str
    method: str = "*"
    mode: Literal["error", "timeout", "disconnect"] = "error"
    status: Annotated[int, Field(ge=100, le=599)] = 500
    code: str | int | None = None
    title: str | None = None
    detail: str = "Simulated failure."
    times: Annotated[int, Field(ge=0)] = 1
    delay: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 30.0


async def sim_add_fault(request: web.Request) -> web.Response:
    body = await sim_parse(request, FaultBody)
    fault = {
        **body.model_dump(),
        "code": str(body.code) if body.code is not None else "90000" if body.status >= 500 else "10005",
        "title": body.title or ("Internal server error" if body.status >= 500 else "Request refused"),
    }
    request.app[FAULTS].append(fault)
    return web.json_response(fault, status=201)


async def sim_clear_faults(request: web.Request) -> web.Response:
    request.app[FAULTS].clear()
    return web.json_response({"result": "ok"})


async def sim_reset(request: web.Request) -> web.Response:
    app = request.app
    config = app[CONFIG]
    app[STATE].__init__(
        app[SENDER].emit,
        app[STATE].schedule,
        media_seconds=config.media_seconds,
        ring_timeout=config.ring_timeout,
    )
    app[FAULTS].clear()
    app[REQUESTS].clear()
    app[SENDER].deliveries.clear()
    return web.json_response({"result": "ok"})


def create_app(sender: WebhookSender, config: SimulatorConfig) -> web.Application:
    app = web.Application(middlewares=[telnyx_middleware], client_max_size=1024 * 1024)

    def schedule(delay: float, callback: Callable[[], None]) -> None:
        asyncio.get_running_loop().call_later(delay, callback)

    app[CONFIG] = config
    app[SENDER] = sender
    app[STATE] = TelnyxState(
        sender.emit, schedule, media_seconds=config.media_seconds, ring_timeout=config.ring_timeout
    )
    app[FAULTS] = []
    app[REQUESTS] = []

    async def close_sender(app: web.Application) -> None:
        await app[SENDER].close()

    app.on_cleanup.append(close_sender)

    # The spec's path parameter of these says "by id or name"; end, gather_using_audio and send_dtmf
    # ("Uniquely identifies the conference", a uuid) take the id only.
    conference_actions = {
        "join": command("join", bodies.Join, by_name=True),
        "leave": command("leave", bodies.Leave, by_name=True),
        "end": command("end", bodies.End),
        "hold": command("", bodies.Hold, flag=("on_hold", True), by_name=True),
        "unhold": command("", bodies.Unhold, flag=("on_hold", False), by_name=True),
        "mute": command("", bodies.Targets, flag=("muted", True), by_name=True),
        "unmute": command("", bodies.Targets, flag=("muted", False), by_name=True),
        "play": command("play", bodies.Play, by_name=True),
        "stop": command("stop", bodies.Targets, by_name=True),
        "speak": command("speak", bodies.Speak, by_name=True),
        "record_start": command("record_start", bodies.RecordStart, by_name=True),
        "record_pause": command("record_pause", bodies.Recording, by_name=True),
        "record_resume": command("record_resume", bodies.Recording, by_name=True),
        "record_stop": command("record_stop", bodies.RecordStop, by_name=True),
        "send_dtmf": command("send_dtmf", bodies.SendDtmf),
        "gather_using_audio": command("gather_using_audio", bodies.GatherUsingAudio),
        "update": command("update", bodies.Update, by_name=True),
    }

    def call_command(name: str, model: type[bodies.Body]) -> Handler:
        return command(name, model, key="call_control_id")

    routes = [
        web.post("/v2/calls/{call_control_id}/actions/answer", call_command("answer", bodies.Answer)),
        web.post("/v2/calls/{call_control_id}/actions/hangup", call_command("hangup_command", bodies.Hangup)),
        web.post("/v2/calls/{call_control_id}/actions/enqueue", call_command("enqueue", bodies.Enqueue)),
        web.post("/v2/calls/{call_control_id}/actions/gather_using_speak",
                 call_command("gather_using_speak", bodies.GatherUsingSpeak)),
        web.post("/v2/calls/{call_control_id}/actions/gather_using_audio",
                 call_command("gather_using_audio_call", bodies.GatherUsingAudioCall)),
        web.post("/v2/calls/{call_control_id}/actions/speak", call_command("speak_call", bodies.SpeakCall)),
        web.post(
            "/v2/calls/{call_control_id}/actions/leave_queue", call_command("leave_queue", bodies.LeaveQueue)
        ),
        web.post("/v2/calls/{call_control_id}/actions/transcription_start",
                 call_command("transcription_start", bodies.TranscriptionStart)),
        web.post("/v2/calls/{call_control_id}/actions/transcription_stop",
                 call_command("transcription_stop", bodies.TranscriptionStop)),
        web.get("/v2/conferences", list_conferences),
        web.post("/v2/conferences", create_conference),
        web.get("/v2/conferences/{id}", retrieve_conference),
        web.get("/v2/conferences/{id}/participants", list_participants),
        web.get("/v2/conferences/{id}/participants/{participant_id}", retrieve_participant),
        web.patch("/v2/conferences/{id}/participants/{participant_id}", update_participant),
        *[
            web.post(f"/v2/conferences/{{id}}/actions/{name}", handler)
            for name, handler in conference_actions.items()
        ],
        web.get("/v2/queues", list_queues),
        web.get("/v2/queues/{name}", retrieve_queue),
        web.get("/v2/queues/{name}/calls", list_queue_calls),
        web.get("/v2/queues/{name}/calls/{call_control_id}", retrieve_queue_call),
        web.post("/sim/calls", _new_call(answer=True)),
        web.post("/sim/calls/inbound", _new_call(answer=False)),
        web.post("/sim/calls/{call_control_id}/hangup", sim_hangup),
        web.post("/sim/calls/{call_control_id}/talk", sim_talk),
        web.post("/sim/calls/{call_control_id}/dtmf", sim_dtmf),
        web.post("/sim/calls/{call_control_id}/say", sim_say),
        web.get("/sim/state", sim_state),
        web.post("/sim/faults", sim_add_fault),
        web.delete("/sim/faults", sim_clear_faults),
        web.post("/sim/reset", sim_reset),
    ]
    app.add_routes(routes)
    return app


def build(
    webhook_url: str | None, *, key, api_key: str, failover_url: str | None = None, **options
) -> web.Application:
    delivery_keys = {"timeout", "attempts", "backoff", "shuffle_window", "duplicate_rate", "seed"}
    sender = WebhookSender(
        key,
        DeliveryOptions(
            webhook_url=webhook_url,
            failover_url=failover_url,
            **{k: v for k, v in options.items() if k in delivery_keys},
        ),
    )
    config = SimulatorConfig(
        api_key=api_key, **{k: v for k, v in options.items() if k in ("media_seconds", "ring_timeout")}
    )
    return create_app(sender, config)
