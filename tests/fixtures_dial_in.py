"""A simulator and a dashboard with dial-in rooms, and the helpers to dial them (a pytest plugin: see conftest)."""

from __future__ import annotations

import pytest

from tests.fixtures_live_server import LiveServer, simulator_stack

TOWN_HALL = "+15550100"
OPEN_ROOM = "+15550200"
RACE_ROOM = "+15550300"
STRICT_ROOM = "+15550400"
LECTURE = "+15550500"
LECTURER = "+15550501"
VAULT = "+15550600"
AUDIO_VAULT = "+15550650"
CLOSED_ROOM = "+15550660"
CAPTIONED = "+15550700"
PRIVATE_ROOM = "+15550710"
PANEL = "+15550720"  # a waiting room and three places
PANEL_HOST = "+15550729"
HOST = "+15550199"
PROFILE_PHONE = "+15550188"


def make_rooms(server: LiveServer) -> None:
    """The rooms, made with `manage.py rooms add`, in one process (each manage.py start costs seconds)."""
    rooms = [
        ["Town hall", "--number", TOWN_HALL, "--number", "+15550101", "--waiting-room", "--moderator", HOST],
        ["Open room", "--number", OPEN_ROOM, "--beep", "on_enter", "--max-participants", "10"],
        ["Race room", "--number", RACE_ROOM, "--moderator", "+15550301", "--moderator", "+15550302"],
        ["Strict room", "--number", STRICT_ROOM, "--moderator", "+15550401", "--start-on-moderator",
         "--end-on-moderator-exit", "--record", "--hold-audio-url", "https://example.com/hold.mp3"],
        ["Lecture", "--number", LECTURE, "--moderator", LECTURER, "--mute-on-entry"],
        ["Vault", "--number", VAULT, "--waiting-room", "--participant-pin", "4321", "--moderator-pin", "9876"],
        ["Closed room", "--number", CLOSED_ROOM, "--refuse-when-locked"],
        ["Audio vault", "--number", AUDIO_VAULT, "--participant-pin", "5555",
         "--pin-prompt-audio-url", "https://example.com/enter-your-pin.mp3"],
        ["Captioned", "--number", CAPTIONED, "--captions", "--keyword", "refund", "--keyword", "Legal action"],
        ["Private room", "--number", PRIVATE_ROOM, "--forbid-transcription"],
        ["Panel", "--number", PANEL, "--waiting-room", "--moderator", PANEL_HOST, "--max-participants", "3"],
    ]  # fmt: skip
    listed = server.manage(
        "shell",
        "-c",
        "from django.core.management import call_command;"
        "from django.contrib.auth.models import User; from moderator.models import UserProfile;"
        f"[call_command('rooms', 'add', *room) for room in {rooms!r}];"
        f"UserProfile.objects.create(user=User.objects.get(username='moderator'), phone_number='{PROFILE_PHONE}');"
        "UserProfile.objects.create(user=User.objects.get(username='observer'), phone_number='+15550177');"
        "call_command('rooms', 'list')",
    )
    assert "Town hall: numbers +15550100, +15550101; moderators +15550199; waiting room on" in listed
    assert "Lecture: numbers +15550500; moderators +15550501; waiting room off; callers join muted" in listed
    assert "Vault: numbers +15550600; moderators none; waiting room on; participant and moderator PINs" in listed
    assert "4321" not in listed and "9876" not in listed
    assert "Captioned: numbers +15550700; moderators none; waiting room off; live captions; keyword alerts: refund, legal action" in listed
    assert "Private room: numbers +15550710; moderators none; waiting room off; never transcribed" in listed


@pytest.fixture(scope="module")
def dial_in(tmp_path_factory):
    """A simulator and a dashboard wired to each other, with rooms made by `manage.py rooms add`."""
    with simulator_stack(tmp_path_factory.mktemp("dial-in"), ring_timeout=30, setup=make_rooms) as (sim, server):
        api = server.client()
        api.headers.update({"X-CSRFToken": api.cookies["csrftoken"], "Referer": server.url})
        try:
            yield sim, server, api
        finally:
            api.close()


def refuse_answers(sim) -> None:
    """The next answer command is refused by Telnyx (the simulator) with a 422."""
    sim.fault(
        "/v2/calls/*/actions/answer",
        status=422,
        code="90099",
        title="Unable to answer",
        detail="Simulated refusal to answer.",
    )


def sim_call(sim, call_control_id):
    return next(c for c in sim.sim_state()["calls"] if c["call_control_id"] == call_control_id)


def sim_conference(sim, name):
    live = [c for c in sim.sim_state()["conferences"] if c["name"] == name and c["status"] != "completed"]
    return live[0] if live else None


def sim_members(sim, name):
    conference = sim_conference(sim, name)
    return {p["call_control_id"] for p in conference["participants"] if p["status"] != "left"} if conference else set()


def answers_for(sim, call_control_id):
    return [r for r in sim.requests_to("/actions/answer") if f"/calls/{call_control_id}/" in r["path"]]


def dial(sim, from_number, to_number):
    return sim.inbound(from_number, to_number)["call_control_id"]


def dashboard_waiting(api, queue=None):
    queues = api.get("/api/queues").json()["queues"]
    return {c["call_control_id"] for q in queues if queue in (None, q["name"]) for c in q["calls"]}


def dashboard_conference(api, name):
    listed = api.get("/api/conferences", params={"status": "in_progress", "name": name}).json()["conferences"]
    return api.get(f"/api/conferences/{listed[0]['id']}").json() if listed else None
