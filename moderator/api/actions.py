"""The actions API the live pages use: thin views over `moderator.control.actions` (the registry says which).

POST /api/conferences/<id>/actions/<action>   (join, leave, end, hold, unhold, mute, unmute, play, stop, speak,
                                               record_start/pause/resume/stop, send_dtmf, gather_using_audio, update)
POST /api/conferences/<id>/resync             reconcile from Telnyx's lists
POST /api/conferences                         create a conference from a call
POST /api/calls/<call_control_id>/actions/<enqueue|leave_queue|hangup>
POST /api/calls/<call_control_id>/name         name the caller's number (not a Telnyx command)
POST /api/conferences/<id>/lower_hands        lower raised hands (not a Telnyx command)
POST /api/conferences/<id>/lock               lock (or unlock) to new dial-in callers (not a Telnyx command)
POST /api/conferences/<id>/captions           live captions on or off (each leg's transcription: the outbox)
POST /api/queues/<name>/admit                 admit the next `count` (or all) waiting callers of a room
POST /api/conferences/<id>/ban                hang up a caller and refuse their number in the room
POST /api/bans/<id>/lift                      undo a ban
Answers 200 ``{"data": ...}`` or the one error shape of `moderator.api.errors`.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from django.http import HttpRequest, JsonResponse
from pydantic import ValidationError

from moderator.api.access import moderator_required
from moderator.api.errors import ApiError, error, invalid, methods, possible_id, telnyx_failure
from moderator.control import actions, captions
from moderator.control.registry import CONFERENCE_ACTIONS, MODERATOR_CALL_ACTIONS
from moderator.state.serializers import conference_dict
from moderator.telnyx.client import TelnyxFailure


def json_body(request: HttpRequest) -> dict:
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except RecursionError:
        raise ApiError(400, "invalid request", "the body is not a JSON object: it is nested too deeply") from None
    except ValueError as exc:  # not JSON, or not UTF-8
        raise ApiError(400, "invalid request", f"the body is not a JSON object: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid request", "the body must be a JSON object")
    return body


def answer(run) -> JsonResponse:
    """Run an action and turn each way it can fail into the error answer the page shows."""
    try:
        return JsonResponse({"data": run()})
    except ApiError as exc:
        return exc.response
    except ValidationError as exc:
        return invalid(exc)
    except actions.UnknownConference as exc:
        return error(404, "conference not found", f"no conference with id {exc}")
    except actions.UnknownCall as exc:
        return error(404, "call not found", f"no call with call_control_id {exc}")
    except actions.NoNumber:
        return error(409, "no number", "the call has no caller number to name")
    except actions.NoRoom as exc:
        return error(409, "no room", f"the conference was started for no dial-in room: {exc}")
    except actions.UnknownBan as exc:
        return error(404, "ban not found", f"no ban with id {exc}")
    except actions.NotARoomQueue as exc:
        return error(404, "not a waiting room", f"no room's waiting room is called {exc}")
    except actions.ConferenceFull as exc:
        return error(409, "conference full", str(exc), code="conference_full")
    except captions.ConferenceEnded:
        return error(409, "conference ended", "the conference has ended: nothing said in it can be captioned any more")
    except captions.TranscriptionForbidden as exc:
        return error(409, "transcription forbidden", f"the room {exc} forbids transcription")
    except TelnyxFailure as failure:
        return telnyx_failure(failure)


def _no_such_conference(telnyx_id: str) -> JsonResponse:
    return error(404, "conference not found", f"no conference with id {telnyx_id!r}")


@methods("POST")
@moderator_required
def conference_action(request: HttpRequest, telnyx_id: str, action: str) -> JsonResponse:
    if action not in CONFERENCE_ACTIONS:
        return error(404, "unknown action", f"{action!r} is not one of {', '.join(CONFERENCE_ACTIONS)}")
    if not possible_id(telnyx_id):
        return _no_such_conference(telnyx_id)
    return answer(lambda: actions.run_conference_action(request.user, telnyx_id, action, json_body(request)))


@methods("POST")
@moderator_required
def call_action(request: HttpRequest, call_control_id: str, action: str) -> JsonResponse:
    if action not in MODERATOR_CALL_ACTIONS:
        return error(404, "unknown action", f"call actions are {', '.join(MODERATOR_CALL_ACTIONS)}")
    if not possible_id(call_control_id):
        return error(404, "call not found", f"no call with call_control_id {call_control_id!r}")
    return answer(lambda: actions.run_call_action(request.user, call_control_id, action, json_body(request)))


@methods("POST")
@moderator_required
def create_conference(request: HttpRequest) -> JsonResponse:
    return answer(lambda: conference_dict(actions.create_conference(request.user, json_body(request))))


@methods("POST")
@moderator_required
def resync(request: HttpRequest, telnyx_id: str) -> JsonResponse:
    if not possible_id(telnyx_id):
        return _no_such_conference(telnyx_id)
    return answer(lambda: conference_dict(actions.sync_conference(telnyx_id, request.user)))


@methods("POST")
@moderator_required
def name_caller(request: HttpRequest, call_control_id: str) -> JsonResponse:
    if not possible_id(call_control_id):
        return error(404, "call not found", f"no call with call_control_id {call_control_id!r}")
    return answer(lambda: actions.name_caller(request.user, call_control_id, json_body(request)))


def _on_conference(run) -> Callable[[HttpRequest, str], JsonResponse]:
    """A POST view for a moderator's action on a conference that is no Telnyx command: `run(user, id, body)`."""

    @methods("POST")
    @moderator_required
    def view(request: HttpRequest, telnyx_id: str) -> JsonResponse:
        if not possible_id(telnyx_id):
            return _no_such_conference(telnyx_id)
        return answer(lambda: run(request.user, telnyx_id, json_body(request)))

    return view


lower_hands = _on_conference(actions.lower_hands)
lock = _on_conference(actions.lock_conference)
ban = _on_conference(actions.ban_caller)
switch_captions = _on_conference(captions.switch)


@methods("POST")
@moderator_required
def lift_ban(request: HttpRequest, ban_id: int) -> JsonResponse:
    return answer(lambda: actions.lift_ban(request.user, ban_id))


@methods("POST")
@moderator_required
def admit(request: HttpRequest, queue_name: str) -> JsonResponse:
    return answer(lambda: actions.admit_waiting(request.user, queue_name, json_body(request)))
