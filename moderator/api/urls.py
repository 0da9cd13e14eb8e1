"""The API's URLs. Telnyx ids are matched as paths: a v2 call_control_id is base64 and may hold a "/" (sent as
%2F, decoded before matching)."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import path, re_path

from moderator.api import actions, choices, read
from moderator.api.errors import methods, no_such_path


@methods("GET", "POST")
def conference_collection(request: HttpRequest):
    """GET lists conferences; POST creates one from a call."""
    return (read.conference_list if request.method == "GET" else actions.create_conference)(request)


urlpatterns = [
    path("api/schema", read.schema, name="api-schema"),
    path("api/conferences", conference_collection, name="api-conferences"),
    path("api/queues", read.queue_list, name="api-queue-list"),
    path("api/choices/<slug:kind>", choices.choices, name="api-choices"),
    path("api/conferences/<path:telnyx_id>/actions/<slug:action>", actions.conference_action,
         name="api-conference-action"),
    path("api/conferences/<path:telnyx_id>/resync", actions.resync, name="api-conference-resync"),
    path("api/conferences/<path:telnyx_id>/lower_hands", actions.lower_hands, name="api-conference-lower-hands"),
    path("api/conferences/<path:telnyx_id>/lock", actions.lock, name="api-conference-lock"),
    path("api/conferences/<path:telnyx_id>/ban", actions.ban, name="api-conference-ban"),
    path("api/conferences/<path:telnyx_id>/captions", actions.switch_captions, name="api-conference-captions"),
    path("api/bans/<int:ban_id>/lift", actions.lift_ban, name="api-ban-lift"),
    path("api/queues/<path:queue_name>/admit", actions.admit, name="api-queue-admit"),
    path("api/calls/<path:call_control_id>/actions/<slug:action>", actions.call_action, name="api-call-action"),
    path("api/calls/<path:call_control_id>/name", actions.name_caller, name="api-call-name"),
    # Last: the paths above end in /actions/…, /resync.
    path("api/conferences/<path:telnyx_id>", read.conference_detail, name="api-conference-detail"),
    # Anything else under /api/ (an id no path matches: one with a newline) is the API's JSON 404, also with
    # DEBUG on (Django's debug 404 page ignores handler404).
    re_path(r"^api/", no_such_path),
]
