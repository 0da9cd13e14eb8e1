"""Fixtures for the moderator actions: the product's SDK pointed at a simulator, and a live conference."""

from __future__ import annotations

import json

import pytest

from moderator.models import Participant


@pytest.fixture
def telnyx(simulator, settings):
    """Point the product's SDK client at the simulator."""
    settings.TELNYX_BASE_URL = simulator.base_url
    settings.TELNYX_API_KEY = simulator.api_key
    settings.TELNYX_TIMEOUT_SECONDS = 2
    return simulator


def post(client, path: str, body: dict | None = None):
    return client.post(path, json.dumps(body or {}), content_type="application/json")


@pytest.fixture
def live_conference(telnyx, moderator_client):
    """A conference created from the page's API, with two more legs, loaded through Resync."""
    host = telnyx.call("+15550001", "+15550100")["call_control_id"]
    response = post(moderator_client, "/api/conferences", {"call_control_id": host, "name": "Ops bridge"})
    assert response.status_code == 200, response.content
    conference_id = response.json()["data"]["id"]
    legs = [host]
    for number in ("+15550002", "+15550003"):
        ccid = telnyx.call(number, "+15550100")["call_control_id"]
        assert (
            post(
                moderator_client, f"/api/conferences/{conference_id}/actions/join", {"call_control_id": ccid}
            ).status_code
            == 200
        )
        legs.append(ccid)
    assert post(moderator_client, f"/api/conferences/{conference_id}/resync").status_code == 200
    return {"id": conference_id, "legs": legs}


def sim_legs(sim, conference_id):
    conference = next(c for c in sim.sim_state()["conferences"] if c["id"] == conference_id)
    return {p["call_control_id"]: p for p in conference["participants"]}


def db_leg(call_control_id):
    return Participant.objects.get(call_control_id=call_control_id)


def act(client, conference, action, body=None):
    return post(client, f"/api/conferences/{conference['id']}/actions/{action}", body)
