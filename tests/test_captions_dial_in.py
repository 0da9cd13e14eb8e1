"""Live captions end to end: the simulator's callers dial a room that captions them, the product starts each
leg's transcription through the outbox (the real SDK against the simulator), the callers speak, and the words
reach the conference's page, its transcript and the search; moderators switch captions off and on."""

from __future__ import annotations

from tests.fixtures_dial_in import (
    CAPTIONED,
    OPEN_ROOM,
    PRIVATE_ROOM,
    dashboard_conference,
    dial,
    sim_call,
    sim_members,
)
from tests.fixtures_live_server import eventually


def final_line(api, page_url: str, number: str, text: str) -> str:
    """Wait for the caller's final line on the page (the last interim result has every word too, without a time);
    return the page."""
    line = f'</time> <span class="who">{number}</span> <span class="said">{text}</span>'
    return eventually(lambda: (page := api.get(page_url).text) and line in page and page,
                      f"the final line {text!r} is on the conference's page")


def legs(api, room: str) -> dict[str, dict]:
    conference = dashboard_conference(api, room)
    return {p["call_control_id"]: p for p in conference["participants"]} if conference else {}


def test_a_captioned_room_transcribes_every_caller_and_keeps_what_they_said(dial_in):
    sim, server, api = dial_in
    ada, bob = dial(sim, "+15550711", CAPTIONED), None
    eventually(lambda: ada in sim_members(sim, "Captioned"), "the first caller starts the room's conference")
    eventually(lambda: sim_call(sim, ada)["transcribing"], "the product starts transcribing the caller")
    bob = dial(sim, "+15550712", CAPTIONED)
    eventually(lambda: sim_call(sim, bob)["transcribing"], "and every caller who joins")
    assert sim_call(sim, ada)["transcription"]["interim_results"] is True
    conference = eventually(lambda: (c := dashboard_conference(api, "Captioned")) and c["captions"] and c,
                            "the dashboard says captions are on")
    eventually(lambda: all(leg["transcribing"] for leg in legs(api, "Captioned").values()), "both rows show CC")
    page_url = f"/conferences/{conference['id']}/"
    assert 'class="badge cc"' in api.get(page_url).text
    assert "started the live captions" not in api.get(page_url).text  # each leg's is audited, not told

    assert sim.say(ada, "I would like a refund for last month").get("result") == "ok"
    final_line(api, page_url, "+15550711", "I would like a refund for last month")
    page = eventually(lambda: (text := api.get(page_url).text) and 'class="caption live"' not in text and text,
                      "the line being said is gone")
    assert page.count("I would like a refund for last month") == 1
    assert '<span class="badge keyword" title="A keyword alert of this room">refund</span>' in page
    assert '<li class="alert-item"' in api.get("/").text  # announced on the board

    # Off: every leg's transcription is stopped (audited, through the outbox), and nothing more is said.
    response = api.post(f"/api/conferences/{conference['id']}/captions", json={"on": False})
    assert response.status_code == 200 and sorted(response.json()["data"]["legs"]) == sorted([ada, bob])
    eventually(lambda: not sim_call(sim, ada)["transcribing"] and not sim_call(sim, bob)["transcribing"],
               "the simulator stops transcribing both")
    eventually(lambda: not any(leg["transcribing"] for leg in legs(api, "Captioned").values()), "the rows lose CC")
    late = dial(sim, "+15550713", CAPTIONED)
    eventually(lambda: late in sim_members(sim, "Captioned"), "a caller joins while captions are off")
    assert not sim_call(sim, late)["transcribing"]
    assert api.post(f"/api/conferences/{conference['id']}/captions", json={"on": True}).status_code == 200
    eventually(lambda: all(sim_call(sim, call)["transcribing"] for call in (ada, bob, late)), "on again: everyone")

    sim.say(bob, "Thanks, that is all from me")
    final_line(api, page_url, "+15550712", "Thanks, that is all from me")
    for call in (ada, bob, late):
        sim.hangup(call)
    eventually(lambda: dashboard_conference(api, "Captioned") is None, "the conference ends")
    transcript = api.get(f"/conferences/{conference['id']}/transcript.txt").text
    assert transcript.index("+15550711: I would like a refund for last month") < transcript.index(
        "+15550712: Thanks, that is all from me")
    found = api.get("/transcripts/", params={"q": "refund"}).text
    assert "I would like a <mark>refund</mark> for last month" in found
    ended = api.get(page_url).text
    assert '<h2 id="captions-title">Transcript</h2>' in ended and "Captions on" not in ended


def test_a_room_that_forbids_transcription_never_captions(dial_in):
    sim, server, api = dial_in
    caller = dial(sim, "+15550721", PRIVATE_ROOM)
    eventually(lambda: caller in sim_members(sim, "Private room"), "the caller joins")
    conference = eventually(lambda: dashboard_conference(api, "Private room"), "the dashboard shows it")
    response = api.post(f"/api/conferences/{conference['id']}/captions", json={"on": True})
    assert response.status_code == 409 and "forbids transcription" in response.json()["error"]["detail"]
    assert not sim_call(sim, caller)["transcribing"]
    assert all(f"/calls/{caller}/" not in r["path"] for r in sim.requests_to("/actions/transcription_start"))
    sim.hangup(caller)


def test_a_refused_transcription_is_told_on_the_timeline(dial_in):
    sim, server, api = dial_in
    caller = dial(sim, "+15550731", OPEN_ROOM)
    eventually(lambda: caller in sim_members(sim, "Open room"), "the caller joins a room without captions")
    conference = eventually(lambda: dashboard_conference(api, "Open room"), "the dashboard shows it")
    assert not sim_call(sim, caller)["transcribing"]
    sim.fault(f"/v2/calls/{caller}/actions/transcription_start", status=422, code="90099",
              title="Transcription unavailable",
              detail="Simulated refusal.")
    assert api.post(f"/api/conferences/{conference['id']}/captions", json={"on": True}).status_code == 200
    page_url = f"/conferences/{conference['id']}/"
    eventually(lambda: "system could not start the live captions of +15550731" in api.get(page_url).text
               and "Transcription unavailable" in api.get(page_url).text, "the refusal shows on the timeline")
    assert not legs(api, "Open room")[caller]["transcribing"]
    assert api.post(f"/api/conferences/{conference['id']}/captions", json={"on": False}).status_code == 200
    sim.hangup(caller)
