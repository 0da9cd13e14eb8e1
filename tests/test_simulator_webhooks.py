"""The simulator's webhooks, as a receiver sees them: signed so that the dashboard's own verification
accepts them, shaped as the spec says, retried like Telnyx (500, stall, then the failover URL), never
after a 2xx — and, end to end, a conference life run with only the public SDK shows on the dashboard."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import telnyx

from moderator.simulator.testing import running_simulator
from moderator.telnyx.event import parse_event, verify_signature
from tests.openapi_contract import assert_webhook_matches_spec

STALL = "stall"


class Receiver:
    """A webhook receiver on loopback: `plan` says how to answer the next deliveries of an event type
    (a status, or STALL to answer only after `stall_seconds`); anything else gets 200."""

    def __init__(self, plan: dict[str, list[int | str]] | None = None, stall_seconds: float = 0.0):
        self.plan = {event_type: list(answers) for event_type, answers in (plan or {}).items()}
        self.stall_seconds = stall_seconds
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["content-length"]))
                event_type = json.loads(body)["data"]["event_type"]
                with receiver.lock:
                    planned = receiver.plan.get(event_type)
                    answer = planned.pop(0) if planned else 200
                    receiver.requests.append({"headers": dict(self.headers.items()), "body": body})
                if answer == STALL:
                    time.sleep(receiver.stall_seconds)
                    answer = 200
                self.send_response(answer)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/telnyx"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def documents(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]

    def attempts_of(self, event_type: str) -> list[dict]:
        return [d for d in self.documents() if d["data"]["event_type"] == event_type]


@contextmanager
def receiving(plan=None, stall_seconds: float = 0.0) -> Iterator[Receiver]:
    receiver = Receiver(plan, stall_seconds)
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def sdk(sim) -> telnyx.Telnyx:
    return telnyx.Telnyx(api_key=sim.api_key, base_url=sim.base_url, max_retries=0, timeout=5)


def test_every_event_is_signed_for_the_dashboard_and_shaped_as_the_spec_says(settings):
    with receiving() as receiver, running_simulator(receiver.url, media_seconds=0.1) as sim:
        client = sdk(sim)
        host, guest, caller = (sim.call(f"+1555000{n}", "+15550100")["call_control_id"] for n in (1, 2, 3))
        conference = client.conferences.create(call_control_id=host, name="Webhook shapes").data
        client.conferences.actions.join(conference.id, call_control_id=guest)
        sim.talk(guest)
        client.conferences.actions.play(conference.id, audio_url="https://example.com/hold.mp3")
        client.conferences.actions.play(conference.id, media_name="chime", call_control_ids=[guest])
        client.conferences.actions.speak(conference.id, payload="Welcome", voice="female")
        client.conferences.actions.speak(conference.id, payload="Hi", voice="female", call_control_ids=[guest])
        client.conferences.actions.record_start(conference.id, format="mp3")
        client.calls.actions.enqueue(caller, queue_name="support")
        client.calls.actions.leave_queue(caller)
        sim.press(guest, "*1")  # the caller raises a hand: one call.dtmf.received per key
        client.calls.actions.gather_using_speak(caller, payload="Your PIN, then pound", voice="female")
        sim.press(caller, "12#")  # taken by the gather: one call.gather.ended, no call.dtmf.received
        client.calls.actions.speak(caller, payload="Goodbye", voice="female")  # call.speak.started, then .ended
        sim.wait_for_webhooks()
        time.sleep(0.5)  # media of 0.1 s ends by itself and reports it; the second key comes a keypad's pace later
        sim.wait_for_webhooks()

        # Mute, hold and role changes are reported by no webhook, as with Telnyx.
        before = len(receiver.requests)
        client.conferences.actions.mute(conference.id, call_control_ids=[guest])
        client.conferences.actions.hold(conference.id, call_control_ids=[guest])
        client.conferences.actions.unhold(conference.id, call_control_ids=[guest])
        client.conferences.actions.update(conference.id, call_control_id=host, supervisor_role="barge")
        sim.wait_for_webhooks()
        assert len(receiver.requests) == before

        client.conferences.actions.record_stop(conference.id)
        sim.hangup(guest)
        client.conferences.actions.end_conference(conference.id)
        sim.wait_for_webhooks()

    settings.TELNYX_PUBLIC_KEY = sim.public_key
    seen = set()
    for request in receiver.requests:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        verify_signature(request["body"], headers["telnyx-signature-ed25519"], headers["telnyx-timestamp"])
        document = json.loads(request["body"])
        assert document["meta"] == {"attempt": 1, "delivered_to": receiver.url}
        assert document["data"]["record_type"] == "event"
        assert_webhook_matches_spec(document)
        event = parse_event(request["body"])
        assert event.occurred_at is not None
        seen.add(event.event_type)
    assert seen >= {
        "call.initiated", "call.answered", "call.hangup", "call.enqueued", "call.dequeued",
        "conference.created", "conference.ended", "conference.floor.changed",
        "conference.participant.joined", "conference.participant.left",
        "conference.playback.started", "conference.playback.ended",
        "conference.participant.playback.started", "conference.participant.playback.ended",
        "conference.speak.started", "conference.speak.ended",
        "conference.participant.speak.started", "conference.participant.speak.ended",
        "conference.recording.saved", "call.dtmf.received", "call.gather.ended", "call.speak.started",
        "call.speak.ended",
    }, seen
    (gathered,) = [r["data"]["payload"] for r in receiver.attempts_of("call.gather.ended")]
    assert (gathered["call_control_id"], gathered["digits"], gathered["status"]) == (caller, "12", "valid")
    keys = [r["data"]["payload"] for r in receiver.attempts_of("call.dtmf.received")]
    assert [(k["call_control_id"], k["digit"], k["from"]) for k in keys] == [(guest, "*", "+15550002"),
                                                                           (guest, "1", "+15550002")]
    saved = receiver.attempts_of("conference.recording.saved")[0]["data"]["payload"]
    assert saved["recording_urls"]["mp3"].startswith("http") and saved["conference_id"] == conference.id


def one_call(sim) -> None:
    sim.call("+15550001", "+15550100")  # call.initiated, then call.answered
    sim.wait_for_webhooks(timeout=15)


def test_a_500_is_delivered_again_with_the_next_attempt_number():
    with receiving(plan={"call.initiated": [500]}) as receiver, running_simulator(receiver.url, backoff=0.05) as sim:
        one_call(sim)
        delivery = next(d for d in sim_deliveries(sim) if d["event_type"] == "call.initiated")
    initiated = receiver.attempts_of("call.initiated")
    assert [d["meta"]["attempt"] for d in initiated] == [1, 2]
    assert len({d["data"]["id"] for d in initiated}) == 1  # the same event, not a new one
    assert len(receiver.attempts_of("call.answered")) == 1
    assert delivery["outcome"] == "delivered" and [a.get("status") for a in delivery["attempts"]] == [500, 200]


def test_a_receiver_that_stalls_past_the_timeout_gets_the_event_again():
    with (
        receiving(plan={"call.initiated": [STALL]}, stall_seconds=0.6) as receiver,
        running_simulator(receiver.url, timeout=0.2, backoff=0.05) as sim,
    ):
        one_call(sim)
        delivery = next(d for d in sim_deliveries(sim) if d["event_type"] == "call.initiated")
    attempts = receiver.attempts_of("call.initiated")
    assert [d["meta"]["attempt"] for d in attempts] == [1, 2]
    assert delivery["attempts"][0]["error"] == "timeout"


def test_a_2xx_is_never_retried():
    with receiving(plan={"call.initiated": [204], "call.answered": [202]}) as receiver, running_simulator(receiver.url, backoff=0.05) as sim:
        one_call(sim)
        time.sleep(0.3)  # longer than any backoff: a retry would have arrived
    # Deliveries run concurrently, so the two may arrive in either order: each must arrive once.
    assert sorted(d["data"]["event_type"] for d in receiver.documents()) == ["call.answered", "call.initiated"]
    assert all(d["meta"]["attempt"] == 1 for d in receiver.documents())


def test_after_the_last_attempt_the_failover_url_gets_the_event():
    with (
        receiving(plan={"call.initiated": [500, 503, 500]}) as primary,
        receiving() as failover,
        running_simulator(primary.url, failover_url=failover.url, attempts=3, backoff=0.02) as sim,
    ):
        sim.call("+15550001", "+15550100")
        sim.wait_for_webhooks(timeout=15)
    assert [d["meta"]["attempt"] for d in primary.attempts_of("call.initiated")] == [1, 2, 3]
    rescued = failover.attempts_of("call.initiated")
    assert len(rescued) == 1
    assert rescued[0]["meta"] == {"attempt": 4, "delivered_to": failover.url}


def sim_deliveries(sim) -> list[dict]:
    return sim.sim_state()["webhooks"]


def test_a_conference_life_run_with_the_public_sdk_shows_on_the_dashboard(sim_stack):
    """The issue's acceptance script: only the public SDK and /sim/, and the dashboard follows."""
    sim, server = sim_stack
    client = sdk(sim)
    host, second, third = (sim.call(f"+1555011{n}", "+15550100")["call_control_id"] for n in (1, 2, 3))
    conference = client.conferences.create(call_control_id=host, name="SDK script").data
    for leg in (second, third):
        client.conferences.actions.join(conference.id, call_control_id=leg)
    client.conferences.actions.mute(conference.id, call_control_ids=[second])
    client.conferences.actions.play(conference.id, audio_url="https://example.com/welcome.mp3")
    client.conferences.actions.record_start(conference.id, format="wav")
    sim.talk(third)

    dashboard = server.client("observer")
    # Webhooks carry no name: the dashboard fetches it from Telnyx in the background.
    live = wait_for(dashboard, conference.id, lambda c: c["floor_call_control_id"] == third
                    and sum(p["status"] == "joined" for p in c["participants"]) == 3 and c["name"])
    assert live["status"] == "in_progress" and live["name"] == "SDK script"

    client.conferences.actions.record_stop(conference.id)
    client.conferences.actions.end_conference(conference.id)
    ended = wait_for(dashboard, conference.id, lambda c: c["status"] == "completed" and c["recordings"])
    assert {p["status"] for p in ended["participants"]} == {"left"}
    assert ended["recordings"][0]["format"] == "wav" and ended["recordings"][0]["recording_urls"]["wav"]
    dashboard.close()


def wait_for(dashboard, conference_id: str, condition, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = dashboard.get(f"/api/conferences/{conference_id}")
        if response.status_code == 200 and condition(response.json()):
            return response.json()
        if time.monotonic() > deadline:
            raise AssertionError(f"the dashboard never showed it: {response.status_code} {response.text[:800]}")
        time.sleep(0.1)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_client_state_given_to_a_command_rides_on_every_later_webhook_about_that_leg():
    with receiving() as receiver, running_simulator(receiver.url, media_seconds=0.05) as sim:
        client = sdk(sim)
        host = sim.call("+15550001", "+15550100")["call_control_id"]
        caller = sim.inbound("+15550002", "+15550100")["call_control_id"]
        waiting = sim.call("+15550003", "+15550100")["call_control_id"]
        plain = sim.call("+15550004", "+15550100")["call_control_id"]
        client.calls.actions.answer(caller, client_state=b64("answered"))
        conference = client.conferences.create(call_control_id=host, name="States", client_state=b64("host")).data
        client.conferences.actions.join(conference.id, call_control_id=caller, client_state=b64("caller"))
        client.conferences.actions.join(conference.id, call_control_id=plain)
        sim.talk(caller)
        client.conferences.actions.play(conference.id, audio_url="https://example.com/a.mp3", call_control_ids=[caller])
        time.sleep(0.2)  # the 0.05 s playback ends by itself, and reports it
        client.conferences.actions.record_start(conference.id, format="mp3")
        client.conferences.actions.record_stop(conference.id, client_state=b64("recorded"))
        client.calls.actions.enqueue(waiting, queue_name="support", client_state=b64("queued"))
        client.calls.actions.leave_queue(waiting, client_state=b64("left queue"))
        client.calls.actions.hangup(caller, client_state=b64("bye"))
        client.conferences.actions.end_conference(conference.id)
        sim.wait_for_webhooks()

    def states(event_type: str, leg: str) -> list[str | None]:
        return [
            d["data"]["payload"].get("client_state")
            for d in receiver.attempts_of(event_type)
            if d["data"]["payload"].get("call_control_id") == leg
        ]

    for document in receiver.documents():
        assert_webhook_matches_spec(document)
    assert states("call.initiated", caller) == [None]
    assert states("call.answered", caller) == [b64("answered")]
    assert states("conference.created", host) == [b64("host")]
    assert states("conference.participant.joined", host) == [b64("host")]
    assert states("conference.participant.joined", caller) == [b64("caller")]
    assert states("conference.floor.changed", caller) == [b64("caller")]
    assert states("conference.participant.playback.started", caller) == [b64("caller")]
    assert states("conference.participant.playback.ended", caller) == [b64("caller")]
    # The conference's own webhooks carry its creator's client_state, the latest given.
    assert states("conference.recording.saved", host) == [b64("recorded")]
    assert states("conference.ended", host) == [b64("recorded")]
    assert states("call.enqueued", waiting) == [b64("queued")]
    assert states("call.dequeued", waiting) == [b64("left queue")]
    assert states("conference.participant.left", caller) == [b64("bye")]
    assert states("call.hangup", caller) == [b64("bye")]
    # A leg no command gave a client_state to has none in its webhooks (the field is a string, never null).
    assert states("conference.participant.joined", plain) == [None]
    assert all("client_state" not in d["data"]["payload"] for d in receiver.documents()
               if d["data"]["payload"].get("call_control_id") == plain)  # fmt: skip
