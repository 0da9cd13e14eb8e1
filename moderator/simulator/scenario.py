"""The demo scenario: an endless, seeded flow of conference life, driven through the simulator's own
state machine so that what the simulator reports and the webhooks it sends always agree."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from moderator.simulator import bodies
from moderator.simulator.state import ApiError, SimCall, TelnyxState

logger = logging.getLogger(__name__)

ROOM_NAMES = ["Sales standup", "Support escalations", "Board prep", "Customer onboarding", "Incident bridge"]
QUEUE = "support"
# What dial-in callers say when they take the floor (the dashboard captions the demo room).
LINES = [
    "Good morning everyone, can you all hear me?",
    "I have a question about the new pricing.",
    "We had three outages last week and customers noticed.",
    "Could we get a refund for the downtime?",
    "Let's take that offline and follow up by email.",
    "I think we should cancel the old plan next quarter.",
    "Thanks, that is all from me.",
]


@dataclass(frozen=True)
class TownHall:
    """A crowd that dials one room's number (routed by the dashboard): `callers` of them, `per_tick` more at each
    step until they are all there, each entering the room's `pin` when asked; once in, they raise hands, take the
    floor and speak (the room captions them), and a few hang up and are replaced."""

    number: str
    pin: str
    callers: int
    per_tick: int = 40


class DemoScenario:
    def __init__(
        self,
        state: TelnyxState,
        *,
        seed: int | None = None,
        tick: float = 1.2,
        dial_in_numbers: list[str] | None = None,
        moderator_numbers: list[str] | None = None,
        town_hall: TownHall | None = None,
    ):
        self.state = state
        self.random = random.Random(seed)
        self.tick = tick
        self.dial_in_numbers = dial_in_numbers or []
        self.moderator_numbers = moderator_numbers or ["+15550199"]
        self.town_hall = town_hall
        self._task: asyncio.Task | None = None
        self._names = 0
        self._answered_gathers: dict[str, object] = {}  # per call: the PIN prompt it entered the PIN for

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()

    async def run(self) -> None:
        while True:
            for step in (self.step, self.town_hall_step):
                try:
                    step()
                except ApiError as error:
                    logger.debug("scenario step refused: %s", error.detail)
                except Exception:  # noqa: BLE001 - the demo must keep running
                    logger.exception("scenario step failed")
            await asyncio.sleep(self.random.uniform(0.5, 1.5) * self.tick)

    # --- one step ---------------------------------------------------------------------------

    def phone(self) -> str:
        return f"+1555{self.random.randint(2000000, 9999999)}"

    def direct_call(self, to_number: str = "+15550111"):
        """A call the scenario connects itself, not through a room: placed as an outgoing call, so the
        dashboard's dial-in routing leaves it alone (it answers and routes incoming calls only)."""
        return self.state.new_call(self.phone(), to_number, direction="outgoing")

    def live(self):
        """The scenario's own conferences (those of dial-in rooms belong to the dashboard's routing)."""
        routed = {*self.dial_in_numbers, *([self.town_hall.number] if self.town_hall else [])}
        return [c for c in self.state.conferences.values() if c.active and c.creator.to_number not in routed]

    def step(self) -> None:
        if self.dial_in_numbers and self.random.random() < 0.35:
            self.dial_in_step()
            return
        live = self.live()
        if len(live) < 2 or (len(live) < 4 and self.random.random() < 0.05):
            self.start_conference()
            return
        conference = self.random.choice(live)
        joined = conference.joined()
        roll = self.random.random()
        if roll < 0.30 and joined:
            self.state.talk(self.random.choice(joined).call)
        elif roll < 0.42 and len(joined) < 8:
            call = self.direct_call()
            self.state.join(conference.id, bodies.Join(call_control_id=call.call_control_id))
        elif roll < 0.50 and len(joined) > 2:
            self.state.hangup(self.random.choice(joined[1:]).call)
        elif roll < 0.56:
            self.state.play(conference.id, bodies.Play(audio_url="https://example.com/announcement.mp3"))
        elif roll < 0.61:
            self.state.speak(
                conference.id,
                bodies.Speak(
                    payload="This call is being recorded for quality purposes.", voice="female", language="en-US"
                ),
            )
        elif roll < 0.66:
            if conference.recording:
                self.state.record_stop(conference.id, bodies.RecordStop())
            else:
                self.state.record_start(conference.id, bodies.RecordStart(format="mp3", channels="single"))
        elif roll < 0.76:
            call = self.direct_call()
            self.state.enqueue(call.call_control_id, bodies.Enqueue(queue_name=QUEUE))
        elif roll < 0.84 and self.state.queues.get(QUEUE) and self.state.queues[QUEUE].calls:
            waiting: SimCall = self.state.queues[QUEUE].calls[0][0]
            self.state.join(conference.id, bodies.Join(call_control_id=waiting.call_control_id))
        elif roll < 0.87 and self.state.queues.get(QUEUE) and self.state.queues[QUEUE].calls:
            self.state.hangup(self.random.choice(self.state.queues[QUEUE].calls)[0])
        elif roll < 0.89 and len(live) > 2:
            self.state.end(conference.id, bodies.End())

    def start_conference(self) -> None:
        name = ROOM_NAMES[self._names % len(ROOM_NAMES)]
        self._names += 1
        if any(c.name == name for c in self.live()):
            name = f"{name} {self._names}"
        host = self.direct_call()
        created = self.state.create_conference(bodies.CreateConference(call_control_id=host.call_control_id, name=name))
        for _ in range(self.random.randint(1, 3)):
            call = self.direct_call()
            self.state.join(created["data"]["id"], bodies.Join(call_control_id=call.call_control_id))

    def dial_in_step(self) -> None:
        """Dial-in mode: callers ring the room numbers; the dashboard answers and routes them."""
        dialled = [c for c in self.state.calls.values() if c.alive and c.to_number in self.dial_in_numbers]
        in_conference = [c for c in dialled if c.conference_id]
        ringing_or_parked = [
            c for c in dialled if c.state == "answered" and not c.conference_id and not c.queue_name
        ]
        roll = self.random.random()
        if roll < 0.25 and len(dialled) < 8:
            moderator_present = any(c.from_number in self.moderator_numbers for c in dialled)
            caller = (
                self.random.choice(self.moderator_numbers)
                if not moderator_present and self.random.random() < 0.5
                else self.phone()
            )
            self.state.new_call(caller, self.random.choice(self.dial_in_numbers), answer=False)
        elif roll < 0.65 and in_conference:
            speaker = self.random.choice(in_conference)
            self.state.talk(speaker)
            if speaker.transcription is not None:
                self.state.say(speaker, self.random.choice(LINES), round(self.random.uniform(0.8, 0.98), 2))
        elif roll < 0.72 and len(in_conference) > 2:
            self.state.hangup(
                self.random.choice(
                    [c for c in in_conference if c.from_number not in self.moderator_numbers] or in_conference
                )
            )
        elif roll < 0.76 and ringing_or_parked:
            self.state.hangup(self.random.choice(ringing_or_parked))
        elif roll < 0.80:
            waiting = [c for c in dialled if c.queue_name]
            if len(waiting) > 3:
                self.state.hangup(self.random.choice(waiting))

    def town_hall_step(self) -> None:
        """The town hall's crowd: more callers until they are all there, PINs entered, hands, speech, churn."""
        hall = self.town_hall
        if hall is None:
            return
        calls = [c for c in self.state.calls.values() if c.alive and c.to_number == hall.number]
        for _ in range(min(hall.per_tick, hall.callers - len(calls))):
            self.state.new_call(self.phone(), hall.number, answer=False)
        for call in calls:
            if call.gather is not None and self._answered_gathers.get(call.call_control_id) is not call.gather:
                self._answered_gathers[call.call_control_id] = call.gather
                self.state.press(call, hall.pin + "#")
        inside = [c for c in calls if c.conference_id]
        if not inside:
            return
        self.state.press(self.random.choice(inside), "*1")  # a hand goes up (or down again)
        speaker = self.random.choice(inside)
        self.state.talk(speaker)
        if speaker.transcription is not None:
            self.state.say(speaker, self.random.choice(LINES), round(self.random.uniform(0.8, 0.98), 2))
        if self.random.random() < 0.3:
            self.state.hangup(self.random.choice(inside))  # someone leaves; the crowd dials back in
