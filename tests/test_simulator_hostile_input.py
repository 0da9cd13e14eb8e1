"""Hostile input to the simulator over HTTP: bodies that are not UTF-8, not JSON or not an object, and
fields of the wrong type or out of range get Telnyx's 422 error body naming the field, never a 500, and
change nothing: no call, conference or queue, no webhook."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.openapi_contract import assert_matches_spec, spec

NOT_UTF8 = b'{"name": "caf\xe9"}'


@pytest.fixture
def world(simulator) -> dict[str, str]:
    """A live conference (host and guest), a ringing call and a call in a queue: ids for every path."""
    host = simulator.call("+15550001", "+15550100")["call_control_id"]
    guest = simulator.call("+15550002", "+15550100")["call_control_id"]
    waiting = simulator.call("+15550003", "+15550100")["call_control_id"]
    api = client(simulator)
    conference = api.post("/conferences", json={"call_control_id": host, "name": "Hostile"}).json()["data"]
    api.post(f"/conferences/{conference['id']}/actions/join", json={"call_control_id": guest})
    api.post(f"/calls/{waiting}/actions/enqueue", json={"queue_name": "support"})
    return {
        "id": conference["id"],
        "conference_id": conference["id"],
        "call_control_id": waiting,
        "participant_id": guest,
        "queue_name": "support",
        "host": host,
        "guest": guest,
    }


def client(simulator, authorized: bool = True) -> httpx.Client:
    headers = {"Authorization": f"Bearer {simulator.api_key}"} if authorized else {}
    return httpx.Client(base_url=simulator.base_url, headers=headers, timeout=5)


def without_requests(snapshot: dict[str, Any]) -> dict[str, Any]:
    """What the simulator holds, less its log of the requests it received."""
    return {key: value for key, value in snapshot.items() if key != "requests"}


def body_operations(world: dict[str, str]) -> list[tuple[str, str, str]]:
    """(method, spec path, concrete path) of every operation of the spec that takes a JSON body."""
    operations = []
    for path, methods in spec()["paths"].items():
        for method, operation in methods.items():
            if "requestBody" in operation and method in ("post", "patch") and not path.startswith("/queues"):
                operations.append((method, path, path.format(**world)))
    return operations


def assert_refused(response: httpx.Response, spec_path: str, method: str, code: str, pointer: str | None):
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert_matches_spec(spec_path, method, 422, response.json())
    (error,) = response.json()["errors"]
    assert error["code"] == code, error
    assert error.get("source", {}).get("pointer") == pointer, error


def test_a_body_that_is_not_utf8_gets_422_on_every_post_and_401_without_the_key(simulator, world):
    before = without_requests(simulator.sim_state())
    with client(simulator) as api, client(simulator, authorized=False) as anonymous:
        for method, spec_path, path in body_operations(world):
            headers = {"content-type": "application/json"}
            answer = api.request(method, path, content=NOT_UTF8, headers=headers)
            assert_refused(answer, spec_path, method, "10015", None)
            assert "UTF-8" in answer.json()["errors"][0]["detail"]
            assert anonymous.request(method, path, content=NOT_UTF8, headers=headers).status_code == 401
    assert without_requests(simulator.sim_state()) == before
    # The request log keeps what it could read of them.
    assert simulator.sim_state()["requests"][-1]["body"] == '{"name": "caf\ufffd"}'


@pytest.mark.parametrize(
    "content",
    [b"[1, 2]", b'"a string"', b"42", b"null", b"{not json", b'{"loop": NaN}', b"[" * 100_000],
    ids=["array", "string", "number", "null", "not JSON", "NaN", "nested too deep"],
)
def test_a_body_that_is_not_a_json_object_gets_422(simulator, world, content):
    before = without_requests(simulator.sim_state())
    with client(simulator) as api:
        answer = api.post(f"/conferences/{world['id']}/actions/mute", content=content)
    assert_refused(answer, "/conferences/{id}/actions/mute", "post", "10015", None)
    assert without_requests(simulator.sim_state()) == before


# Each: (spec path, body, code, pointer of the field named). {host} and {guest} are live legs.
REFUSED_BODIES = [
    ("/conferences/{id}/actions/mute", {"call_control_ids": [["x"]]}, "10015", "/call_control_ids/0"),
    ("/conferences/{id}/actions/mute", {"call_control_ids": "{guest}"}, "10015", "/call_control_ids"),
    ("/conferences/{id}/actions/join", {"call_control_id": ["x"]}, "10015", "/call_control_id"),
    ("/conferences/{id}/actions/join", {"call_control_id": None}, "10004", "/call_control_id"),
    ("/conferences/{id}/actions/join", {"call_control_id": "{guest}", "mute": "yes"}, "10015", "/mute"),
    ("/conferences/{id}/actions/join", {"call_control_id": "{guest}", "supervisor_role": "boss"}, "10032",
     "/supervisor_role"),
    ("/conferences/{id}/actions/join", {"call_control_id": "{guest}", "client_state": "not base64!"}, "10015",
     "/client_state"),
    ("/conferences/{id}/actions/end", {"command_id": [1]}, "10015", "/command_id"),
    ("/conferences/{id}/actions/leave", {}, "10004", "/call_control_id"),
    ("/conferences/{id}/actions/unhold", {"call_control_ids": []}, "10004", "/call_control_ids"),
    ("/conferences/{id}/actions/update", {"call_control_id": "{host}"}, "10004", "/supervisor_role"),
    ("/conferences/{id}/actions/update", {"call_control_id": "{host}", "supervisor_role": "whisper",
                                          "whisper_call_control_ids": [7]}, "10015", "/whisper_call_control_ids/0"),
    ("/conferences/{id}/actions/play", {}, "10004", "/audio_url"),
    ("/conferences/{id}/actions/play", {"audio_url": "https://example.com/a.mp3", "loop": 0}, "10033", "/loop"),
    ("/conferences/{id}/actions/play", {"audio_url": "https://example.com/a.mp3", "loop": "twice"}, "10015",
     "/loop"),
    ("/conferences/{id}/actions/speak", {"payload": "Hi"}, "10004", "/voice"),
    ("/conferences/{id}/actions/speak", {"payload": "x" * 3001, "voice": "female"}, "10033", "/payload"),
    ("/conferences/{id}/actions/record_start", {"format": "ogg"}, "10032", "/format"),
    ("/conferences/{id}/actions/record_start", {"format": "mp3", "play_beep": 1}, "10015", "/play_beep"),
    ("/conferences/{id}/actions/send_dtmf", {"digits": 1234}, "10015", "/digits"),
    ("/conferences/{id}/actions/send_dtmf", {"digits": "1", "duration_millis": 50}, "10033", "/duration_millis"),
    ("/conferences/{id}/actions/gather_using_audio", {"call_control_id": "{guest}", "maximum_digits": 0}, "10033",
     "/maximum_digits"),
    ("/conferences/{id}/participants/{participant_id}", {"end_conference_on_exit": "true"}, "10015",
     "/end_conference_on_exit"),
    ("/conferences", {"call_control_id": "{guest}", "name": "Other", "duration_minutes": "5"}, "10015",
     "/duration_minutes"),
    ("/conferences", {"call_control_id": "{guest}", "name": "Other", "max_participants": 801}, "10033",
     "/max_participants"),
    ("/conferences", {"call_control_id": "{guest}", "name": ""}, "10004", "/name"),
    ("/conferences", {"name": "Other", "region": "Mars"}, "10004", "/call_control_id"),  # the first error
    ("/calls/{call_control_id}/actions/enqueue", {"queue_name": "other", "max_wait_time_secs": "abc"}, "10015",
     "/max_wait_time_secs"),
    ("/calls/{call_control_id}/actions/enqueue", {"queue_name": "other", "max_size": 0}, "10033", "/max_size"),
    ("/calls/{call_control_id}/actions/enqueue", {"queue_name": 5}, "10015", "/queue_name"),
    ("/calls/{call_control_id}/actions/answer", {"record_max_length": 99999}, "10033", "/record_max_length"),
    ("/calls/{call_control_id}/actions/answer", {"webhook_urls": {"call.hangup": 1}}, "10015",
     "/webhook_urls/call.hangup"),
    ("/calls/{call_control_id}/actions/hangup", {"client_state": 5}, "10015", "/client_state"),
    ("/calls/{call_control_id}/actions/leave_queue", {"command_id": {"a": 1}}, "10015", "/command_id"),
    ("/calls/{call_control_id}/actions/transcription_start", {"transcription_engine": "Whisper"}, "10032",
     "/transcription_engine"),
    ("/calls/{call_control_id}/actions/transcription_start", {"transcription_engine_config": "Google"}, "10015",
     "/transcription_engine_config"),
    ("/calls/{call_control_id}/actions/transcription_start",
     {"transcription_engine_config": {"transcription_engine": "Google", "interim_results": "yes"}}, "10015",
     "/transcription_engine_config/interim_results"),
    ("/calls/{call_control_id}/actions/transcription_start", {"transcription_tracks": "left"}, "10032",
     "/transcription_tracks"),
    ("/calls/{call_control_id}/actions/transcription_stop", {"client_state": "not base64!"}, "10015",
     "/client_state"),
]  # fmt: skip


def filled(value: Any, world: dict[str, str]) -> Any:
    """The value with {host}/{guest} replaced by live call control ids."""
    if isinstance(value, str) and value in ("{host}", "{guest}"):
        return world[value[1:-1]]
    if isinstance(value, list):
        return [filled(item, world) for item in value]
    if isinstance(value, dict):
        return {key: filled(item, world) for key, item in value.items()}
    return value


def test_fields_of_the_wrong_type_or_out_of_range_get_422_naming_the_field_and_change_nothing(simulator, world):
    before = without_requests(simulator.sim_state())
    with client(simulator) as api:
        for spec_path, body, code, pointer in REFUSED_BODIES:
            method = "patch" if spec_path.endswith("{participant_id}") else "post"
            answer = api.request(method, spec_path.format(**world), json=filled(body, world))
            assert_refused(answer, spec_path, method, code, pointer)
            # The same refusal whatever state the simulator is in: validation comes first.
            assert without_requests(simulator.sim_state()) == before, (spec_path, body)


def test_an_enqueue_with_a_bad_max_wait_time_enqueues_nothing_and_sends_no_webhook(simulator):
    caller = simulator.call()["call_control_id"]
    sent = len(simulator.sim_state()["webhooks"])
    with client(simulator) as api:
        answer = api.post(f"/calls/{caller}/actions/enqueue", json={"queue_name": "q", "max_wait_time_secs": "abc"})
        assert_refused(answer, "/calls/{call_control_id}/actions/enqueue", "post", "10015", "/max_wait_time_secs")
        assert api.get("/queues").json()["data"] == []
    state = simulator.sim_state()
    assert len(state["webhooks"]) == sent and state["calls"][0]["queue"] is None


def test_a_conference_with_a_string_duration_is_not_created_and_the_list_still_answers(simulator):
    caller = simulator.call()["call_control_id"]
    with client(simulator) as api:
        answer = api.post("/conferences", json={"call_control_id": caller, "name": "Five", "duration_minutes": "5"})
        assert_refused(answer, "/conferences", "post", "10015", "/duration_minutes")
        listed = api.get("/conferences")
        assert listed.status_code == 200 and listed.json()["data"] == []
        created = api.post("/conferences", json={"call_control_id": caller, "name": "Five", "duration_minutes": 5})
        assert created.status_code == 200
        assert_matches_spec("/conferences", "get", 200, api.get("/conferences").json())


def test_a_refused_command_leaves_its_command_id_free_for_the_retry(simulator, world):
    path = f"/conferences/{world['id']}/actions/join"
    with client(simulator) as api:
        # The guest is already in: refused, so "retry-1" is not spent...
        refused = api.post(path, json={"call_control_id": world["guest"], "command_id": "retry-1"})
        assert refused.status_code == 422 and refused.json()["errors"][0]["code"] == "90016"
        api.post(f"/conferences/{world['id']}/actions/leave", json={"call_control_id": world["guest"]})
        # ...and the same command, now possible, is carried out rather than ignored as a repeat.
        assert api.post(path, json={"call_control_id": world["guest"], "command_id": "retry-1"}).status_code == 200
    (conference,) = simulator.sim_state()["conferences"]
    statuses = {p["call_control_id"]: p["status"] for p in conference["participants"]}
    assert statuses[world["guest"]] == "joined"


def test_paths_and_methods_the_simulator_does_not_serve_answer_in_telnyxs_json_error_shape(simulator):
    with client(simulator) as api:
        unknown = api.get("/no/such/path")
        assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == "10005"
        assert_matches_spec("/conferences/{id}", "get", 404, unknown.json())
        # An operation of the spec that the simulator leaves out (see the schemathesis module's DEVIATIONS).
        not_served = api.post("/queues", json={"queue_name": "support"})
        assert not_served.status_code == 405 and "GET" in not_served.headers["allow"]
        assert not_served.headers["content-type"].startswith("application/json")
        assert not_served.json()["errors"][0]["detail"] == "The simulator does not simulate POST /v2/queues."


def test_the_phone_side_refuses_bad_bodies_with_400_not_500(simulator):
    with httpx.Client(base_url=simulator.url, timeout=5) as sim:
        for path in ("/sim/calls", "/sim/calls/inbound", "/sim/faults"):
            for content in (NOT_UTF8, b"[1]", b"{not json"):
                answer = sim.post(path, content=content)
                assert answer.status_code == 400 and "error" in answer.json(), (path, content, answer.text)
        for fault in ({"path": "/v2/*", "status": "abc"}, {"path": "/v2/*", "times": [1]}, {"path": 5},
                      {"path": "/v2/*", "mode": "explode"}, {"path": "/v2/*", "delay": -1}):  # fmt: skip
            answer = sim.post("/sim/faults", json=fault)
            assert answer.status_code == 400, (fault, answer.text)
        accepted = sim.post("/sim/faults", json={"path": "/v2/queues", "status": "503", "code": 90001})
        assert accepted.status_code == 201 and accepted.json()["code"] == "90001"
    assert simulator.sim_state()["calls"] == []


def test_keys_are_pressed_on_an_answered_call_only_and_must_be_keys(simulator):
    answered = simulator.call("+15550001", "+15550100")["call_control_id"]
    ringing = simulator.inbound("+15550002", "+15550100")["call_control_id"]
    with httpx.Client(base_url=simulator.url, timeout=5) as sim:
        for digits in ("", "*1x", 5, "1" * 33):
            answer = sim.post(f"/sim/calls/{answered}/dtmf", json={"digits": digits})
            assert answer.status_code == 400 and "digits" in answer.json()["error"], digits
        for content in (NOT_UTF8, b"[1]"):
            assert sim.post(f"/sim/calls/{answered}/dtmf", content=content).status_code == 400
        refused = sim.post(f"/sim/calls/{ringing}/dtmf", json={"digits": "*1"})
        assert refused.status_code == 422 and refused.json()["errors"][0]["detail"] == "The call is not answered."
        assert sim.post("/sim/calls/v3:nobody/dtmf", json={"digits": "1"}).status_code == 404
        assert sim.post(f"/sim/calls/{answered}/dtmf", json={"digits": "*1#"}).json() == {"result": "ok"}
