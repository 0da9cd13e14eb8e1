"""A listen-only room (`rooms add --mute-on-entry`): everyone but its moderators joins muted, the first caller
too (creating a conference takes no `mute`), and the dashboard shows them muted without a resync."""

from __future__ import annotations

import json

from tests.fixtures_dial_in import LECTURE, LECTURER, dashboard_conference, dial, sim_conference
from tests.fixtures_live_server import eventually


def muted_in_telnyx(sim) -> dict[str, bool]:
    conference = sim_conference(sim, "Lecture")
    return {p["call_control_id"]: p["muted"] for p in conference["participants"] if p["status"] != "left"}


def muted_on_the_dashboard(api) -> dict[str, bool]:
    conference = dashboard_conference(api, "Lecture")
    return {p["call_control_id"]: p["muted"] for p in conference["participants"] if p["status"] != "left"} \
        if conference else {}


def test_callers_join_a_listen_only_room_muted_and_its_moderator_does_not(dial_in):
    sim, server, api = dial_in
    first = dial(sim, "+15550511", LECTURE)  # before the lecturer: the conference is created from this call
    eventually(lambda: sim_conference(sim, "Lecture") and muted_in_telnyx(sim).get(first), "the first caller is muted")
    lecturer = dial(sim, LECTURER, LECTURE)
    second = dial(sim, "+15550512", LECTURE)
    expected = {first: True, lecturer: False, second: True}
    eventually(lambda: muted_in_telnyx(sim) == expected, "Telnyx holds the lecturer unmuted, the callers muted")
    eventually(lambda: muted_on_the_dashboard(api) == expected, "the dashboard shows the same, without a resync")
    joins = {json.loads(r["body"])["call_control_id"]: json.loads(r["body"]) for r in sim.requests_to("/actions/join")}
    assert joins[second]["mute"] is True and "mute" not in joins[lecturer]
    # The lecturer lets the second caller speak.
    conference = dashboard_conference(api, "Lecture")
    response = api.post(f"/api/conferences/{conference['id']}/actions/unmute", json={"call_control_ids": [second]})
    assert response.status_code == 200, response.text
    assert muted_on_the_dashboard(api)[second] is False and muted_in_telnyx(sim)[second] is False
    for call in (first, lecturer, second):
        sim.hangup(call)
