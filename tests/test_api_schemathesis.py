"""Schemathesis against the dashboard's own API, as documented in moderator/api/openapi.yml (and served at
GET /api/schema): every operation, with generated valid and invalid requests (the examples, coverage and
fuzzing phases), run against a live dashboard logged in as a moderator whose Telnyx SDK talks to the built-in
simulator. Each answer must be a status the document lists, of the documented content type and schema, and
never a server error; a 400 must have sent nothing to Telnyx and audited nothing (bad input changes nothing).

Generated ids would only ever find nothing, so the requests mostly carry the ids of a live world made through
the simulator's phone side and the API itself (now and then the generated id is kept, for the not-found
answers): the success answers are reached, and the last test checks that every operation did reach one.

Where the API departs from its document is listed in DEVIATIONS, each with its reason: nowhere else.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import zlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from moderator.api.read import SCHEMA_PATH
from moderator.simulator.server import REQUESTS
from tests.fixtures_live_server import LiveServer, simulator_stack

pytestmark = pytest.mark.slow  # a minute of fuzzing


@dataclass(frozen=True)
class Deviation:
    reason: str
    # Statuses the API answers there that the document does not list; none: the operation is not run.
    also_answers: frozenset[int] = frozenset()


# (METHOD, documented path) → where and why the API departs from its document. The one list of them: empty,
# the API answers as documented everywhere. Two leniencies are deliberate and stay unchecked, hence not in
# CHECKS: Schemathesis' negative_data_rejection, because the API, like Telnyx, reads bodies leniently (an
# optional field given as null counts as absent; "5" is read as 5) and because the live ids put into a
# generated request would also replace the invalid id of a negative example; and positive_data_acceptance,
# because a documented-valid command may still be one Telnyx refuses in this world (unhold a leg not held).
DEVIATIONS: dict[tuple[str, str], Deviation] = {}

FUZZ_ROOM_QUEUE = "room-1-waiting"  # the fixture's room, the first one made
MAX_EXAMPLES = 5  # fuzzing examples per operation and mode: the module runs in 60–90 s on this busy machine
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
NOWHERE = "http://127.0.0.1:9"  # a closed loopback port: a request without base_url goes nowhere


def document() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _schema() -> schemathesis.schemas.BaseSchema:
    loaded_document = copy.deepcopy(document())
    loaded_document["servers"] = [{"url": NOWHERE}]
    config = schemathesis.Config.from_dict(
        {
            "seed": 20261124,  # the same examples on every run: CI must not be flaky
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "with-security-parameters": False},
            # Every path answers a wrong method alike (one decorator): three of them are enough.
            "phases": {"coverage": {"enabled": True, "unexpected-methods": ["get", "put", "delete"]}},
        }
    )
    loaded = schemathesis.openapi.from_dict(loaded_document, config=config)
    for (method, path), deviation in DEVIATIONS.items():
        if not deviation.also_answers:
            loaded = loaded.exclude(method=method, path=path)
    return loaded


schema = _schema()
REACHED: dict[str, set[int]] = defaultdict(set)  # operation → the statuses it answered


class Dashboard:
    """The live dashboard, logged in as a moderator through the login form, and the simulator behind it."""

    def __init__(self, sim, server: LiveServer):
        self.sim, self.server = sim, server
        self.http = server.client("moderator")
        self.csrf = self.http.cookies["csrftoken"]
        self.cookies = {"sessionid": self.http.cookies["sessionid"], "csrftoken": self.csrf}
        self.headers = {"X-CSRFToken": self.csrf}
        self.database = server.env["DATABASE_URL"].removeprefix("sqlite:///")

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.post(path, json=body or {}, headers=self.headers)
        assert response.status_code == 200, (path, response.text)
        return response.json()["data"]

    def telnyx_requests(self) -> int:
        return len(self.sim.app[REQUESTS])

    def audit_rows(self) -> int:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=10) as connection:
            return connection.execute("SELECT COUNT(*) FROM moderator_moderatoraction").fetchone()[0]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    # Media and rings last longer than the run: nothing changes a world behind the examples' back.
    # A room without a number (dial-in routing stays off): its waiting room is what "admit" is fuzzed on.
    with simulator_stack(tmp_path_factory.mktemp("api-fuzz"), ring_timeout=600, media_seconds=600,
                         setup=lambda server: server.manage("rooms", "add", "Fuzz room")) as stack:
        made = Dashboard(*stack)
        yield made
        made.http.close()


class World:
    """A conference made through the API (a host and a guest, being recorded unless asked not to be), a free
    answered leg and a leg waiting in a queue."""

    made = 0

    def __init__(self, dashboard: Dashboard, recording: bool):
        self.recording = recording
        legs = [dashboard.sim.call(f"+1555000{n}", "+15550100")["call_control_id"] for n in range(1, 5)]
        self.host, self.guest, self.free, self.queued = legs
        World.made += 1  # a live conference's name is unique on Telnyx
        name = f"Fuzz room {World.made}"
        self.conference = dashboard.post("/api/conferences", {"call_control_id": self.host, "name": name})["id"]
        dashboard.post(f"/api/conferences/{self.conference}/actions/join", {"call_control_id": self.guest})
        # Its own queue: one shared by every world would fill up (an examples' max_size may also have shrunk it).
        dashboard.post(f"/api/calls/{self.queued}/actions/enqueue", {"queue_name": f"support {World.made}"})
        if recording:
            dashboard.post(f"/api/conferences/{self.conference}/actions/record_start", {"format": "mp3"})
        # The fixture's room is this conference's (as if dialled into; routing is off), and has a ban to lift.
        with sqlite3.connect(dashboard.database, timeout=10) as connection:
            connection.execute("UPDATE moderator_conference SET room_id = 1 WHERE telnyx_id = ?", [self.conference])
            self.ban = connection.execute(
                "INSERT INTO moderator_ban (room_id, number, created_at) VALUES (1, ?, CURRENT_TIMESTAMP)",
                [f"+1555099{World.made:04d}"],
            ).lastrowid


# Successes that leave the world usable: reads, and commands that flip a participant's flag or start media.
# Any other success (create, join, leave, end, record_start/stop, enqueue, hangup, ...) uses the world up.
KEEP_THE_WORLD = {
    f"/api/conferences/{{id}}/actions/{action}"
    for action in (
        "mute", "unmute", "hold", "unhold", "update", "play", "stop", "speak", "send_dtmf",
        "gather_using_audio", "record_pause", "record_resume",
    )
} | {"/api/conferences/{id}/resync", "/api/queues/{queue_name}/admit", "/api/bans/{ban_id}/lift",
     "/api/conferences/{id}/captions"}  # fmt: skip (its waiting room stays empty)


class Worlds:
    """The current world, made anew only when a success has used it up: a refused request changes nothing
    (checked on every 400), so the many refused examples share one world."""

    def __init__(self, dashboard: Dashboard):
        self.dashboard = dashboard
        self.current: World | None = None

    def get(self, recording: bool) -> World:
        if self.current is None or self.current.recording != recording:
            self.current = World(self.dashboard, recording)
        return self.current

    def after(self, method: str, path: str, status: int) -> None:
        if method != "GET" and 200 <= status < 300 and path not in KEEP_THE_WORLD:
            self.current = None


@pytest.fixture(scope="module")
def worlds(api):
    return Worlds(api)


def _coin(case: Any, salt: str) -> int:
    """A stable pseudo-random number from the generated data: the same example always makes the same choice."""
    data = json.dumps([salt, case.path_parameters, case.query, case.body], sort_keys=True, default=str)
    return zlib.crc32(data.encode())


def put_live_ids(case: Any, world: World) -> None:
    path = case.operation.path
    if case.path_parameters and _coin(case, "path") % 6:  # now and then: an id that does not exist
        if "id" in case.path_parameters:
            case.path_parameters["id"] = world.conference
        if "call_control_id" in case.path_parameters:
            case.path_parameters["call_control_id"] = world.queued if path.endswith("/leave_queue") else world.free
        if "queue_name" in case.path_parameters:
            case.path_parameters["queue_name"] = FUZZ_ROOM_QUEUE
        if "ban_id" in case.path_parameters:
            case.path_parameters["ban_id"] = world.ban
    body = case.body
    if isinstance(body, dict) and _coin(case, "body") % 6:
        if isinstance(body.get("call_control_id"), str):
            joining = path in ("/api/conferences", "/api/conferences/{id}/actions/join")
            body["call_control_id"] = world.free if joining else world.guest
        if isinstance(body.get("call_control_ids"), list) and body["call_control_ids"]:
            body["call_control_ids"] = [world.guest]
        if isinstance(body.get("whisper_call_control_ids"), list):
            body["whisper_call_control_ids"] = [world.host]
        body.pop("recording_id", None)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case, api, worlds):
    dashboard = api
    method, path = case.operation.method.upper(), case.operation.path
    world = worlds.get(recording=not path.endswith("/record_start"))
    put_live_ids(case, world)
    sent_before, audited_before = dashboard.telnyx_requests(), dashboard.audit_rows()
    response = case.call(base_url=dashboard.server.url, cookies=dashboard.cookies, headers=dashboard.headers, timeout=15)
    worlds.after(method, path, response.status_code)
    REACHED[case.operation.label].add(response.status_code)
    if response.status_code == 400:  # bad input: refused before anything was sent or written
        assert dashboard.telnyx_requests() == sent_before, response.text
        assert dashboard.audit_rows() == audited_before, response.text
    deviation = DEVIATIONS.get((method, path))
    if deviation and response.status_code in deviation.also_answers:
        assert response.headers["content-type"].startswith("application/json")
        case.validate_response(response, checks=[not_a_server_error])
        return
    case.validate_response(response, checks=CHECKS)


def test_the_fuzzing_reached_every_operations_success_answer():
    if not REACHED:  # run alone (-k): nothing to look at
        pytest.skip("runs after test_every_operation_answers_as_documented, in the same session")
    operations = {op.ok().label for op in schema.get_all_operations()}
    missing = {label for label in operations if not any(200 <= status < 300 for status in REACHED[label])}
    assert not missing, {label: sorted(REACHED[label]) for label in missing}


def test_the_document_lists_every_api_route_and_each_action_with_its_fields():
    from django.urls import get_resolver, resolve

    from moderator.control import actions

    def routes(patterns, prefix=""):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):  # an include()
                yield from routes(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern)

    paths = document()["paths"]
    api_routes = {route for route in routes(get_resolver().url_patterns) if route.startswith("api/")}
    documented_routes = {
        resolve(path.replace("{id}", "conf-1").replace("{call_control_id}", "v3:leg").replace("{kind}", "calls").replace("{queue_name}", "room-1-waiting").replace("{ban_id}", "1")).route
        for path in paths
    }
    assert documented_routes == api_routes
    documented = {path.rsplit("/", 1)[-1]: op["post"] for path, op in paths.items() if "/actions/" in path}
    routing_only = {"answer", "gather_using_speak", "transcription_start", "transcription_stop"}
    assert set(documented) == set(actions.CONFERENCE_ACTIONS) | set(actions.CALL_ACTIONS) - routing_only
    components = document()["components"]
    for name, operation in documented.items():
        action = actions.CONFERENCE_ACTIONS.get(name) or actions.CALL_ACTIONS[name]
        body = components["requestBodies"][operation["requestBody"]["$ref"].rsplit("/", 1)[-1]]
        body_schema = components["schemas"][body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]]
        fields = action.schema.model_fields
        assert set(body_schema.get("properties", {})) == set(fields), name
        assert set(body_schema.get("required", [])) == {f for f, info in fields.items() if info.is_required()}, name
        # A body is required where a field is (play: audio_url or media_name).
        assert body.get("required", False) == bool(body_schema.get("required") or body_schema.get("anyOf")), name


def test_the_schema_is_served_without_a_login(api):
    response = httpx.get(f"{api.server.url}/api/schema", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/yaml"
    assert yaml.safe_load(response.text) == document()


def test_deviations_name_operations_of_the_document_with_a_reason():
    for (method, path), deviation in DEVIATIONS.items():
        assert method.lower() in document()["paths"][path], (method, path)
        assert deviation.reason

