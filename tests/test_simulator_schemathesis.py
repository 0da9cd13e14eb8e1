"""Schemathesis against the running simulator with the vendored Telnyx spec: every operation, with
generated valid and invalid requests (the examples, coverage and fuzzing phases), answers a status code
the spec documents, in JSON, with a body of the spec's schema, and never a server error.

Generated ids would only ever find nothing, so the examples run against a world made through the
simulator's phone side (/sim/) and its API, and its live ids are put into the requests (most of the time;
now and then the generated id is kept, for the not-found answers): the success answers are reached, and
the last test checks that every operation did reach one.

What the simulator does not do as the spec says is listed in DEVIATIONS, each with its reason: nowhere else.
"""

from __future__ import annotations

import base64
import copy
import json
import zlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from moderator.simulator.testing import SimulatorHandle, running_simulator
from tests.openapi_contract import assert_matches_spec, spec

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Deviation:
    reason: str
    # Statuses the simulator answers there that the spec does not list; none: the operation is not
    # simulated and not run.
    also_answers: frozenset[int] = frozenset()


# (METHOD, spec path) → where and why the simulator departs from the spec. The one list of them.
DEVIATIONS: dict[tuple[str, str], Deviation] = {
    ("POST", "/queues"): Deviation(
        "not simulated: queues are made on demand by enqueue, as on Telnyx; the dashboard never creates one"
    ),
    ("POST", "/queues/{queue_name}"): Deviation("not simulated: the dashboard never changes a queue's size"),
    ("DELETE", "/queues/{queue_name}"): Deviation("not simulated: the dashboard never deletes a queue"),
    ("DELETE", "/queues/{queue_name}/calls/{call_control_id}"): Deviation(
        "not simulated: without keep_after_hangup no call stays in a queue after its hangup, so there is "
        "never an inactive call to remove"
    ),
    ("PATCH", "/queues/{queue_name}/calls/{call_control_id}"): Deviation(
        "not simulated: keep_after_hangup is not simulated"
    ),
    ("GET", "/queues/{queue_name}/calls"): Deviation(
        "the spec lists only 200 and 404, yet the operation takes page[number] and page[size] with bounds: "
        "out of them the simulator answers Telnyx's 422 (10033), as on every other list",
        also_answers=frozenset({422}),
    ),
}

MAX_EXAMPLES = 25  # fuzzing examples per operation (and per mode): the module runs in about 40 s
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
NEVER_TELNYX = "http://127.0.0.1:9/v2"  # a closed loopback port: a request without base_url goes nowhere


def _schema() -> schemathesis.schemas.BaseSchema:
    document = copy.deepcopy(spec())
    document["servers"] = [{"url": NEVER_TELNYX}]
    config = schemathesis.Config.from_dict(
        {
            "seed": 20240601,  # the same examples on every run: CI must not be flaky
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "with-security-parameters": False},
            "phases": {"coverage": {"enabled": True}},
        }
    )
    loaded = schemathesis.openapi.from_dict(document, config=config)
    for (method, path), deviation in DEVIATIONS.items():
        if not deviation.also_answers:
            loaded = loaded.exclude(method=method, path=path)
    return loaded


schema = _schema()
REACHED: dict[str, set[int]] = defaultdict(set)  # operation → the statuses it answered


@pytest.fixture(scope="module")
def worlds():
    # Media and rings last longer than the run: nothing changes a world behind the examples' back.
    with running_simulator(None, media_seconds=600, ring_timeout=600) as sim:
        made = Worlds(sim)
        yield made
        made.http.close()


class World:
    """A conference (host and guest, being recorded unless asked not to be), a free answered leg, a ringing
    leg and a leg in the 'support' queue: made through /sim/ and the API on a reset simulator."""

    def __init__(self, sim: SimulatorHandle, http: httpx.Client, recording: bool):
        self.recording = recording

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = http.post(path, json=body)
            assert response.status_code < 300, response.text
            return response.json()

        post(f"{sim.url}/sim/reset", {})
        legs = [post(f"{sim.url}/sim/calls", {"from": f"+1555000{n}", "to": "+15550100"}) for n in range(1, 5)]
        self.host, self.guest, self.free, self.queued = (leg["call_control_id"] for leg in legs)
        self.post = post
        self.sim = sim
        self.ring()
        created = post(f"{sim.base_url}/conferences", {"call_control_id": self.host, "name": "Fuzz room"})
        self.conference = created["data"]["id"]
        post(f"{sim.base_url}/conferences/{self.conference}/actions/join", {"call_control_id": self.guest})
        post(f"{sim.base_url}/calls/{self.queued}/actions/enqueue", {"queue_name": "support"})
        if recording:
            post(f"{sim.base_url}/conferences/{self.conference}/actions/record_start", {"format": "mp3"})

    def ring(self) -> None:
        """A new ringing leg (the last one was answered)."""
        ringing = self.post(f"{self.sim.url}/sim/calls/inbound", {"from": "+15550005", "to": "+15550100"})
        self.ringing = ringing["call_control_id"]


# Successes that leave the world usable: they flip a participant's or a call's flag or start media. Answer
# uses up only the ringing leg; any other success (join, leave, end, enqueue, hangup, ...) uses up the world.
KEEP_THE_WORLD = {
    f"/conferences/{{id}}/actions/{action}"
    for action in (
        "mute", "unmute", "hold", "unhold", "update", "play", "stop", "speak", "send_dtmf",
        "gather_using_audio", "record_pause", "record_resume",
    )
} | {
    "/conferences/{id}/participants/{participant_id}",
    "/calls/{call_control_id}/actions/transcription_start",
    "/calls/{call_control_id}/actions/transcription_stop",
}  # fmt: skip


class Worlds:
    """The current world, made anew only when a success has used it up. A refused request changes nothing
    (the simulator's promise, tested in test_simulator_hostile_input), so the many refused examples share
    one world: a new one for each example would take four times as long."""

    def __init__(self, sim: SimulatorHandle):
        self.sim = sim
        self.http = httpx.Client(headers={"Authorization": f"Bearer {sim.api_key}"}, timeout=10)
        self.current: World | None = None

    def get(self, recording: bool) -> World:
        if self.current is None or self.current.recording != recording:
            self.current = World(self.sim, self.http, recording)
        return self.current

    def after(self, method: str, path: str, status: int) -> None:
        if method == "GET" or not 200 <= status < 300 or path in KEEP_THE_WORLD or self.current is None:
            return
        if path == "/calls/{call_control_id}/actions/answer":
            self.current.ring()
        else:
            self.current = None


def _coin(case: Any, salt: str) -> int:
    """A stable pseudo-random number from the generated data: the same example always makes the same choice."""
    data = json.dumps([salt, case.path_parameters, case.query, case.body], sort_keys=True, default=str)
    return zlib.crc32(data.encode())


def put_live_ids(case: Any, world: World) -> None:
    path = case.operation.path
    keep_generated = _coin(case, "path") % 6 == 0  # now and then: an id that does not exist
    if case.path_parameters and not keep_generated:
        leg = {
            "/calls/{call_control_id}/actions/answer": world.ringing,
            "/calls/{call_control_id}/actions/leave_queue": world.queued,
            "/queues/{queue_name}/calls/{call_control_id}": world.queued,
        }.get(path, world.free)
        live = {
            "id": world.conference,
            "conference_id": world.conference,
            "participant_id": world.guest,
            "queue_name": "support",
            "call_control_id": leg,
        }
        for name in case.path_parameters:
            if name in live:
                case.path_parameters[name] = live[name]
    body = case.body
    if isinstance(body, dict) and _coin(case, "body") % 6:
        if isinstance(body.get("call_control_id"), str):
            joining = path in ("/conferences", "/conferences/{id}/actions/join")
            body["call_control_id"] = world.free if joining else world.guest
        if isinstance(body.get("call_control_ids"), list) and body["call_control_ids"]:
            body["call_control_ids"] = [world.guest]
        if isinstance(body.get("whisper_call_control_ids"), list):
            body["whisper_call_control_ids"] = [world.host]
        if isinstance(body.get("client_state"), str):
            body["client_state"] = base64.b64encode(body["client_state"].encode()).decode()
        body.pop("recording_id", None)


@schema.parametrize()
# The answer request's 35 fields make slow and large examples by Hypothesis's measure: not a problem here.
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_the_spec_says(case, worlds):
    sim, method = worlds.sim, case.operation.method.upper()
    world = worlds.get(recording=not case.operation.path.endswith("/record_start"))
    put_live_ids(case, world)
    response = case.call(base_url=sim.base_url, headers={"Authorization": f"Bearer {sim.api_key}"})
    worlds.after(method, case.operation.path, response.status_code)
    REACHED[case.operation.label].add(response.status_code)
    deviation = DEVIATIONS.get((method, case.operation.path))
    if deviation and response.status_code in deviation.also_answers:
        # An answer the spec does not list: still JSON, still Telnyx's error body, never a server error.
        assert response.headers["content-type"][0].startswith("application/json")
        assert_matches_spec(case.operation.path, method, response.status_code, response.json())
        case.validate_response(response, checks=[not_a_server_error])
        return
    case.validate_response(response, checks=CHECKS)


def test_the_fuzzing_reached_every_operations_success_answer():
    if not REACHED:  # run alone (-k): nothing to look at
        pytest.skip("runs after test_every_operation_answers_as_the_spec_says, in the same session")
    operations = {op.ok().label for op in schema.get_all_operations()}
    missing = {label for label in operations if not any(200 <= status < 300 for status in REACHED[label])}
    assert not missing, {label: sorted(REACHED[label]) for label in missing}


def test_deviations_name_operations_of_the_spec_with_a_reason():
    for (method, path), deviation in DEVIATIONS.items():
        assert method.lower() in spec()["paths"][path], (method, path)
        assert deviation.reason
