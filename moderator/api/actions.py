"""The actions API the live pages use: thin views over `moderator.actions`.

POST /api/conferences/<id>/actions/<action>   (join, leave, end, hold, unhold, mute, unmute, play, stop, speak,
                                               record_start/pause/resume/stop, send_dtmf, gather_using_audio, update)
POST /api/conferences/<id>/resync             reconcile from Telnyx's lists
POST /api/conferences                         create a conference from a call (see api.conference_collection)
POST /api/calls/<call_control_id>/actions/<enqueue|leave_queue|hangup>
Answers 200 ``{"data": ...}`` or ``{"error": {"status", "code", "title", "detail"}}``.
"""

from __future__ import annotations

import json
from functools import wraps

from django.http import HttpRequest, JsonResponse
from django.urls import path
from pydantic import ValidationError

from moderator.api.read import error, login_required_json, methods, possible_id
from moderator.control import actions
from moderator.control.schemas import first_error
from moderator.state.serializers import conference_dict
from moderator.telnyx.client import TelnyxFailure


def moderator_required(view):
    """Session login (401), then the moderate permission (403): observers watch, they do not act."""

    @login_required_json
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.has_perm("moderator.moderate_conference"):
            return error(403, "not allowed", "Observers can watch conferences but not act on them.")
        return view(request, *args, **kwargs)

    return wrapper


class BadBody(ValueError):
    pass


def json_body(request: HttpRequest) -> dict:
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except RecursionError:
        raise BadBody("it is nested too deeply") from None
    except ValueError as exc:  # not JSON, or not UTF-8
        raise BadBody(str(exc)) from None
    if not isinstance(body, dict):
        raise BadBody("the body must be a JSON object")
    return body


def answer(run) -> JsonResponse:
    """Run an action and turn each way it can fail into the error answer the page shows."""
    try:
        return JsonResponse({"data": run()})
    except ValidationError as exc:  # before ValueError: it is one
        field, message = first_error(exc)
        return JsonResponse(
            {
                "error": {
                    "status": 400,
                    "code": "invalid",
                    "title": "invalid request",
                    "detail": message,
                    "field": field,
                }
            },
            status=400,
        )
    except BadBody as exc:
        return error(400, "invalid request", f"body is not a JSON object: {exc}")
    except actions.UnknownConference as exc:
        return error(404, "conference not found", f"no conference with id {exc}")
    except TelnyxFailure as failure:
        return JsonResponse({"error": failure.as_json()}, status=failure.status)


@methods("POST")
@moderator_required
def conference_action(request: HttpRequest, telnyx_id: str, action: str) -> JsonResponse:
    if action not in actions.CONFERENCE_ACTIONS:
        return error(
            404, "unknown action", f"{action!r} is not one of {', '.join(actions.CONFERENCE_ACTIONS)}"
        )
    if not possible_id(telnyx_id):
        return error(404, "conference not found", f"no conference with id {telnyx_id!r}")
    return answer(lambda: actions.run_conference_action(request.user, telnyx_id, action, json_body(request)))


@methods("POST")
@moderator_required
def call_action(request: HttpRequest, call_control_id: str, action: str) -> JsonResponse:
    if action not in actions.CALL_ACTIONS or action == "answer":
        return error(404, "unknown action", "call actions are enqueue, leave_queue and hangup")
    if not possible_id(call_control_id):
        return error(404, "call not found", f"no call with call_control_id {call_control_id!r}")
    return answer(lambda: actions.run_call_action(request.user, call_control_id, action, json_body(request)))


@moderator_required
def create_conference(request: HttpRequest) -> JsonResponse:
    return answer(lambda: conference_dict(actions.create_conference(request.user, json_body(request))))


@methods("POST")
@moderator_required
def resync(request: HttpRequest, telnyx_id: str) -> JsonResponse:
    if not possible_id(telnyx_id):
        return error(404, "conference not found", f"no conference with id {telnyx_id!r}")
    return answer(lambda: conference_dict(actions.sync_conference(telnyx_id, request.user)))


# Telnyx ids are matched as paths: a v2 call_control_id is base64 and may hold a "/" (sent as %2F).
urlpatterns = [
    path(
        "api/conferences/<path:telnyx_id>/actions/<slug:action>",
        conference_action,
        name="api-conference-action",
    ),
    path("api/conferences/<path:telnyx_id>/resync", resync, name="api-conference-resync"),
    path("api/calls/<path:call_control_id>/actions/<slug:action>", call_action, name="api-call-action"),
]
