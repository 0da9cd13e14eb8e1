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
