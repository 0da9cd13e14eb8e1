"""Live transcription in the simulator, as the real telnyx SDK and a webhook receiver see it: transcription_start
and transcription_stop answer as the spec says, and what a transcribed caller says (the phone side's /say)
arrives as signed call.transcription webhooks of the spec's shape: interim results of ever more of the words
when the engine's config asks for them, then the final result with the whole text."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import httpx
import pytest
import telnyx
from telnyx.types.transcription_webhook_event import TranscriptionWebhookEvent

from moderator.simulator.state import NotTranscribed, TelnyxState
from moderator.simulator.testing import running_simulator
from tests.openapi_contract import assert_matches_spec, assert_webhook_matches_spec
from tests.test_simulator_webhooks import Receiver, receiving, sdk

START = "/calls/{call_control_id}/actions/transcription_start"
STOP = "/calls/{call_control_id}/actions/transcription_stop"
GOOGLE_WITH_INTERIMS = {
    "transcription_engine": "Google",
    "transcription_engine_config": {"transcription_engine": "Google", "language": "en", "interim_results": True},
}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def start(client: telnyx.Telnyx, call_control_id: str, **options: Any) -> None:
    raw = client.calls.actions.with_raw_response.start_transcription(call_control_id, **options)
    assert_matches_spec(START, "post", raw.http_response.status_code, raw.http_response.json())
    assert raw.parse().data.result == "ok"


def stop(client: telnyx.Telnyx, call_control_id: str, **options: Any) -> None:
    raw = client.calls.actions.with_raw_response.stop_transcription(call_control_id, **options)
    assert_matches_spec(STOP, "post", raw.http_response.status_code, raw.http_response.json())
    assert raw.parse().data.result == "ok"


def refused(call: Callable[[], Any], spec_path: str, code: str) -> None:
    """The SDK raises its 422 error; the body is the spec's error shape with Telnyx's code."""
    with pytest.raises(telnyx.UnprocessableEntityError) as caught:
        call()
    body = caught.value.response.json()
    assert_matches_spec(spec_path, "post", 422, body)
    assert body["errors"][0]["code"] == code, body


def transcriptions(receiver: Receiver, sim, client: telnyx.Telnyx, count: int) -> list[dict[str, Any]]:
    """The first `count` call.transcription webhooks received (waiting for them), in their order of arrival:
    each checked against the spec's schema and unwrapped by the SDK with the simulator's public key."""
    deadline = time.monotonic() + 10
    while len(received := [r for r in receiver.requests if b'"call.transcription"' in r["body"]]) < count:
        assert time.monotonic() < deadline, f"{len(received)} of {count} call.transcription webhooks arrived"
        time.sleep(0.02)
    documents = []
    for request in received:
        event = client.webhooks.unwrap(request["body"].decode(), headers=request["headers"], key=sim.public_key)
        assert isinstance(event, TranscriptionWebhookEvent)
        document = json.loads(request["body"])
        assert_webhook_matches_spec(document)
        documents.append(document)
    return documents


def call_of(sim, call_control_id: str) -> dict[str, Any]:
    return next(c for c in sim.sim_state()["calls"] if c["call_control_id"] == call_control_id)


def say(sim, call_control_id: str, body: Any) -> httpx.Response:
    return httpx.post(f"{sim.url}/sim/calls/{call_control_id}/say", json=body, timeout=5)


def test_a_transcribed_caller_is_heard_as_interim_results_then_the_final_one():
    text = "Could you go back to the budget slide please"
    with receiving() as receiver, running_simulator(receiver.url) as sim:
        client = sdk(sim)
        caller = sim.call("+15550001", "+15550100")
        start(client, caller["call_control_id"], client_state=b64("captions"), **GOOGLE_WITH_INTERIMS)
        assert call_of(sim, caller["call_control_id"])["transcription"] == {
            "engine": "Google", "tracks": "inbound", "interim_results": True,
        }  # fmt: skip
        assert call_of(sim, caller["call_control_id"])["transcribing"] is True
        assert sim.say(caller["call_control_id"], text, confidence=0.87) == {"result": "ok"}
        documents = transcriptions(receiver, sim, client, 5)
        time.sleep(0.2)  # longer than the pace of results: nothing more comes
        assert len(transcriptions(receiver, sim, client, 5)) == 5

    events = [d["data"] for d in documents]
    results = [e["payload"]["transcription_data"] for e in events]
    *interims, final = results
    assert final == {"transcript": text, "confidence": 0.87, "is_final": True}
    # Interims: ever more of the words, no confidence (engines give it on final results only).
    assert [r["is_final"] for r in interims] == [False] * 4
    assert all("confidence" not in r for r in interims)
    assert all("transcription_track" not in r for r in results)  # Google's results do not name their track
    transcripts = [r["transcript"] for r in interims]
    assert all(text.startswith(t) for t in transcripts)
    assert [len(t) for t in transcripts] == sorted({len(t) for t in transcripts})
    # Each its own event, in the order they occurred, the final one last.
    assert len({e["id"] for e in events}) == 5
    assert [e["occurred_at"] for e in events] == sorted({e["occurred_at"] for e in events})
    for event in events:
        payload = event["payload"]
        assert (payload["call_control_id"], payload["call_leg_id"], payload["call_session_id"]) == (
            caller["call_control_id"], caller["call_leg_id"], caller["call_session_id"],
        )  # fmt: skip
        assert payload["client_state"] == b64("captions") and payload["connection_id"]


def test_without_interim_results_only_the_final_result_is_sent():
    with receiving() as receiver, running_simulator(receiver.url) as sim:
        client = sdk(sim)
        caller = sim.call()["call_control_id"]
        start(client, caller, transcription_engine_config={"transcription_engine": "Google", "language": "en"})
        assert call_of(sim, caller)["transcription"] == {
            "engine": "Google", "tracks": "inbound", "interim_results": False,
        }  # fmt: skip
        sim.say(caller, "I have a question")
        (document,) = transcriptions(receiver, sim, client, 1)
        time.sleep(0.2)
        assert len(transcriptions(receiver, sim, client, 1)) == 1
    assert document["data"]["payload"]["transcription_data"] == {
        "transcript": "I have a question", "confidence": 0.92, "is_final": True,
    }  # fmt: skip


def test_the_telnyx_engine_names_the_track_of_each_result_and_hears_only_the_tracks_asked_for():
    with receiving() as receiver, running_simulator(receiver.url) as sim:
        client = sdk(sim)
        both, inbound = sim.call("+15550001")["call_control_id"], sim.call("+15550002")["call_control_id"]
        # B (Telnyx) has no interim results: its config has no such field.
        start(client, both, transcription_engine="B", transcription_tracks="both",
              transcription_engine_config={"transcription_engine": "B", "interim_results": True})  # fmt: skip
        start(client, inbound, transcription_engine="Telnyx")
        sim.say(both, "Hello everyone")
        sim.say(both, "Welcome to the call", track="outbound")
        sim.say(inbound, "Thanks")
        refusal = say(sim, inbound, {"text": "Not heard", "track": "outbound"})
        assert refusal.status_code == 409
        assert refusal.json() == {"error": "the call's outbound track is not being transcribed"}
        documents = transcriptions(receiver, sim, client, 3)
    heard = {
        (d["data"]["payload"]["call_control_id"], d["data"]["payload"]["transcription_data"]["transcription_track"],
         d["data"]["payload"]["transcription_data"]["transcript"])
        for d in documents
    }  # fmt: skip
    assert heard == {(both, "inbound", "Hello everyone"), (both, "outbound", "Welcome to the call"),
                     (inbound, "inbound", "Thanks")}  # fmt: skip
    assert all(d["data"]["payload"]["transcription_data"]["is_final"] for d in documents)


def test_transcription_start_on_a_call_not_answered_gets_422_like_other_call_commands(simulator, telnyx_sdk):
    ringing = simulator.inbound("+15550003", "+15550100")["call_control_id"]
    refused(lambda: telnyx_sdk.calls.actions.start_transcription(ringing, **GOOGLE_WITH_INTERIMS), START, "90034")
    assert call_of(simulator, ringing)["transcribing"] is False
    # Once answered, it can be transcribed.
    telnyx_sdk.calls.actions.answer(ringing)
    start(telnyx_sdk, ringing, **GOOGLE_WITH_INTERIMS)
    assert call_of(simulator, ringing)["transcribing"] is True


def test_a_hung_up_or_unknown_call_gets_the_errors_other_call_commands_give(simulator, telnyx_sdk):
    gone = simulator.call()["call_control_id"]
    simulator.hangup(gone)
    for action, spec_path in ((telnyx_sdk.calls.actions.start_transcription, START),
                              (telnyx_sdk.calls.actions.stop_transcription, STOP)):  # fmt: skip
        refused(partial(action, gone), spec_path, "90018")
        refused(partial(action, "v3:no-such-call"), spec_path, "90015")


def test_say_on_a_call_not_transcribed_is_refused_with_the_reason_and_sends_nothing(simulator):
    caller = simulator.call()["call_control_id"]
    ringing = simulator.inbound("+15550002", "+15550100")["call_control_id"]
    sent = len(simulator.sim_state()["webhooks"])
    for leg in (caller, ringing):
        answer = say(simulator, leg, {"text": "Hello?"})
        assert answer.status_code == 409 and answer.json() == {"error": "call is not being transcribed"}
    assert say(simulator, "v3:no-such-call", {"text": "Hello?"}).status_code == 404
    assert len(simulator.sim_state()["webhooks"]) == sent


def test_after_transcription_stop_say_is_refused_and_a_second_stop_is_harmless(simulator, telnyx_sdk):
    caller = simulator.call()["call_control_id"]
    stop(telnyx_sdk, caller)  # never started: ok, nothing changes
    start(telnyx_sdk, caller, **GOOGLE_WITH_INTERIMS)
    simulator.say(caller, "First words")
    stop(telnyx_sdk, caller, client_state=b64("stopped"))
    stop(telnyx_sdk, caller)
    state = call_of(simulator, caller)
    assert state["transcribing"] is False and state["transcription"] is None
    assert state["client_state"] == b64("stopped")
    assert say(simulator, caller, {"text": "Anyone there?"}).json() == {"error": "call is not being transcribed"}


def test_hanging_up_ends_the_transcription(simulator, telnyx_sdk):
    caller = simulator.call()["call_control_id"]
    start(telnyx_sdk, caller, **GOOGLE_WITH_INTERIMS)
    simulator.hangup(caller)
    assert call_of(simulator, caller)["transcribing"] is False
    assert say(simulator, caller, {"text": "Goodbye"}).status_code == 409
    refused(lambda: telnyx_sdk.calls.actions.start_transcription(caller), START, "90018")


def test_a_command_id_repeated_within_a_minute_is_ignored(simulator, telnyx_sdk):
    caller = simulator.call()["call_control_id"]
    start(telnyx_sdk, caller, command_id="start-1")
    stop(telnyx_sdk, caller, command_id="stop-1")
    start(telnyx_sdk, caller, command_id="start-1", **GOOGLE_WITH_INTERIMS)  # a retry of the first: ignored
    assert call_of(simulator, caller)["transcribing"] is False
    start(telnyx_sdk, caller, command_id="start-2", **GOOGLE_WITH_INTERIMS)
    stop(telnyx_sdk, caller, command_id="stop-1")  # a retry of the first stop: ignored
    assert call_of(simulator, caller)["transcription"] == {
        "engine": "Google", "tracks": "inbound", "interim_results": True,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "text"),
        ({"text": 5}, "text"),
        ({"text": ""}, "text"),
        ({"text": "  \n "}, "text"),
        ({"text": "x" * 5001}, "text"),
        ({"text": "Hi", "confidence": 1.5}, "confidence"),
        ({"text": "Hi", "confidence": -0.1}, "confidence"),
        ({"text": "Hi", "confidence": "0.9"}, "confidence"),
        ({"text": "Hi", "confidence": True}, "confidence"),
        ({"text": "Hi", "track": "sideways"}, "track"),
    ],
)
def test_say_refuses_a_bad_body_with_400_naming_the_field(simulator, telnyx_sdk, body, field):
    caller = simulator.call()["call_control_id"]
    start(telnyx_sdk, caller)
    sent = len(simulator.sim_state()["webhooks"])
    answer = say(simulator, caller, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"].startswith(f"{field}: "), answer.json()
    assert len(simulator.sim_state()["webhooks"]) == sent


def test_say_refuses_a_body_that_is_not_a_json_object(simulator):
    caller = simulator.call()["call_control_id"]
    for content in (b'{"text": "caf\xe9"}', b"[1]", b"{not json"):
        answer = httpx.post(f"{simulator.url}/sim/calls/{caller}/say", content=content, timeout=5)
        assert answer.status_code == 400 and "error" in answer.json()


# --- the state machine alone: the pace of results, without a network -----------------------------------


class Scheduled:
    """TelnyxState's clock, held: callbacks run only when the test says."""

    def __init__(self):
        self.pending: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> None:
        self.pending.append((delay, callback))

    def run(self) -> list[float]:
        delays = [delay for delay, _ in self.pending]
        for _, callback in sorted(self.pending, key=lambda pending: pending[0]):
            callback()
        self.pending.clear()
        return delays


def transcribed(interim_results: bool = True) -> tuple[TelnyxState, Any, list[dict[str, Any]], Scheduled]:
    from moderator.simulator import bodies

    sent: list[dict[str, Any]] = []
    clock = Scheduled()
    state = TelnyxState(lambda event_type, payload: sent.append(payload["transcription_data"])
                        if event_type == "call.transcription" else None, clock)  # fmt: skip
    call = state.new_call("+15550001", "+15550100")
    body = bodies.TranscriptionStart.model_validate(
        {"transcription_engine_config": {"transcription_engine": "Google", "interim_results": interim_results}}
    )
    state.transcription_start(call.call_control_id, body)
    return state, call, sent, clock


@pytest.mark.parametrize(
    ("text", "interims"),
    [
        ("Yes", ["Yes"]),
        ("Yes please", ["Yes", "Yes please"]),
        ("one two three four five six seven eight nine ten",
         ["one two three", "one two three four five", "one two three four five six seven eight",
          "one two three four five six seven eight nine ten"]),
    ],
)  # fmt: skip
def test_interim_results_are_ever_more_of_the_words_at_most_four_a_short_pace_apart(text, interims):
    state, call, sent, clock = transcribed()
    state.say(call, text, 0.9)
    assert len(sent) == 1  # the first at once, the rest at speech's pace
    delays = clock.run()
    assert all(0.03 <= b - a <= 0.08 for a, b in zip([0.0, *delays], delays, strict=False))
    assert [r["transcript"] for r in sent if not r["is_final"]] == interims
    assert sent[-1] == {"transcript": text, "confidence": 0.9, "is_final": True}


def test_results_not_yet_sent_when_the_transcription_stops_or_the_call_hangs_up_are_never_sent():
    from moderator.simulator import bodies

    for end in ("stop", "hangup", "restart"):
        state, call, sent, clock = transcribed()
        state.say(call, "one two three four", 0.9)
        if end == "stop":
            state.transcription_stop(call.call_control_id, bodies.TranscriptionStop())
        elif end == "hangup":
            state.hangup(call)
        else:
            state.transcription_start(call.call_control_id, bodies.TranscriptionStart())
        clock.run()
        assert [r["transcript"] for r in sent] == ["one"], end
        if end != "restart":
            with pytest.raises(NotTranscribed):
                state.say(call, "again", 0.9)
