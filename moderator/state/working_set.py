"""The rows a batch of events touches: loaded at once, changed in memory by the rules, written back in bulk.

Loading costs a constant number of queries whatever the batch holds (about eight), and writing one bulk
upsert per table: applying events one by one through the ORM cost about six queries each, and most of a
webhook's time went into building them. The statements are plain SQL over the models' columns
(`moderator.state.tables`).

Locking, so that several workers can apply at once (PostgreSQL; SQLite serialises whole transactions):
every writer of a leg holds its conference's row lock, and every applier also holds a transaction-scoped
advisory lock on each call of its batch, taken in one global order before any conference lock. So
`call.hangup` (which bounds the call's legs in every conference) and a `participant.joined` of that call
are never applied at once by two workers, and two appliers never wait on each other in a cycle.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import Model

from moderator.models import Call, Caption, Conference, FloorChange, Participant, Recording, Room, WaitingCall
from moderator.state.changes import Changes, TimelineNote
from moderator.state.tables import as_is, fetch, placeholders, table

if TYPE_CHECKING:
    from moderator.telnyx.event import TelnyxEvent

# What the rules may write, per table. The routing columns of a call belong to dial-in routing and the
# outbox sender (`moderator.control`), which write them on their own: an applier must not put back a
# value it read before they changed it.
_SKIPPED = {"id", "updated_at"}
_CALL_SKIPPED = _SKIPPED | {"routing_note", "routing_error", "pin_role", "pin_tries"}


def _fields(model: type[Model], skipped: set[str]) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields if f.attname not in skipped]


_WRITTEN: dict[type[Model], list[str]] = {
    Conference: _fields(Conference, _SKIPPED),
    Participant: _fields(Participant, _SKIPPED),
    Call: _fields(Call, _CALL_SKIPPED),
    WaitingCall: _fields(WaitingCall, _SKIPPED),
    Recording: _fields(Recording, _SKIPPED),
    FloorChange: _fields(FloorChange, _SKIPPED),
    Caption: _fields(Caption, _SKIPPED),
}
_UNIQUE: dict[type[Model], list[str]] = {
    Conference: ["telnyx_id"],
    Participant: ["conference", "call_control_id"],
    Call: ["call_control_id"],
    WaitingCall: ["call_control_id", "queue_name"],
    Recording: ["recording_id"],
    FloorChange: ["conference", "occurred_at", "call_control_id"],
    Caption: ["event_id"],
}


class WorkingSet:
    """The state one batch reads and writes. Rules get rows with `conference()`, `leg()`, `call()`,
    `waiting()`; whatever they change (or create) is saved by `save()`, and nothing else."""

    def __init__(self) -> None:
        self.conferences: dict[str, Conference] = {}
        self.legs: dict[tuple[str, str], Participant] = {}
        self.legs_by_call: dict[str, list[Participant]] = defaultdict(list)
        self.calls: dict[str, Call] = {}
        self.waiting_entries: dict[tuple[str, str], WaitingCall] = {}
        self.waiting_by_call: dict[str, list[WaitingCall]] = defaultdict(list)
        # Every floor change of the conferences whose talk time this batch recomputes: (when, leg).
        self.floor: dict[str, list[tuple[datetime, str]]] = {}
        self.new_floor: list[FloorChange] = []
        # Per conference of `floor`, the legs it may move the talk time of that are not loaded: (talk seconds, when
        # they left or None).
        self.talkers: dict[str, dict[str, tuple[float, datetime | None]]] = {}
        self.recordings: dict[str, Recording] = {}
        self.captions: dict[str, Caption] = {}  # the batch's final lines, by Telnyx event id
        self.waiting_captions: list[Caption] = []  # earlier ones of the batch's calls, still waiting for their leg
        self._keywords: dict[int | None, list[str]] = {}  # per room
        # Legs whose row reads differently though the leg did not change: the speaker badge follows the floor.
        self.reshown: set[tuple[str, str]] = set()
        self.queues = False
        self.unnamed: set[str] = set()  # conferences first seen without a name: their name is looked up
        self.timeline: list[TimelineNote] = []
        self._loaded: dict[int, dict[str, Any]] = {}  # id(row) → its attributes when loaded
        self._created: list[Model] = []

    # --- loading --------------------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        events: Iterable[TelnyxEvent],
        *,
        ends_conference: set[str],
        ends_call: set[str],
        moves_talk_time: set[str],
        reaches_call_legs: set[str] = frozenset(),
        places_captions: set[str] = frozenset(),
    ) -> WorkingSet:
        """Everything `events` can touch, in a constant number of queries. The event-type sets say which
        events end a conference (all its legs are read), end a call (its legs everywhere are read, and their
        conferences' talk time moves), change talk time (the conference's floor history is read), and reach
        the call's legs without naming a conference (a pressed key: its legs everywhere are read), and make a
        call's leg known (its final caption lines still waiting for it are read)."""
        ws = cls()
        events = list(events)
        conference_ids = {e.conference_id for e in events if e.conference_id}
        call_ids = {e.call_control_id for e in events if e.call_control_id}
        hangups = {e.call_control_id for e in events if e.event_type in ends_call and e.call_control_id}
        reached = hangups | {e.call_control_id for e in events if e.event_type in reaches_call_legs and e.call_control_id}
        ended = {e.conference_id for e in events if e.event_type in ends_conference and e.conference_id}
        talk = {e.conference_id for e in events if e.event_type in moves_talk_time and e.conference_id}

        _lock_calls(call_ids)
        # Any event of an unknown conference creates it: a floor.changed may arrive before created.
        new_conference = table(Conference).new
        _upsert(Conference, [new_conference(telnyx_id=telnyx_id) for telnyx_id in sorted(conference_ids)], update=False)
        conferences_, legs_, calls_, waiting_ = (table(m) for m in (Conference, Participant, Call, WaitingCall))
        if reached:
            # A hang-up bounds the call's legs in every conference it is in (a pressed key reaches them too):
            # those conferences are touched. Stable once the calls are locked: whoever adds a leg to a
            # conference holds its call's lock.
            ids = sorted(reached)
            reached_in = fetch(
                f"SELECT DISTINCT p.{legs_.column('call_control_id')}, c.{conferences_.column('telnyx_id')} "
                f"FROM {legs_.quoted} p "
                f"JOIN {conferences_.quoted} c ON c.{conferences_.column('id')} = p.{legs_.column('conference')} "
                f"WHERE p.{legs_.column('call_control_id')} IN ({placeholders(ids)})",
                ids,
            )
            conference_ids |= {telnyx_id for _, telnyx_id in reached_in}
            talk |= {telnyx_id for call_control_id, telnyx_id in reached_in if call_control_id in hangups}
        ids = sorted(conference_ids)
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        by_pk: dict[int, Conference] = {}
        for conference in conferences_.select(
            f"{conferences_.column('telnyx_id')} IN ({placeholders(ids)})", ids,
            suffix=f"ORDER BY {conferences_.column('telnyx_id')}{lock}",
        ):
            ws._keep(conference)
            ws.conferences[conference.telnyx_id] = by_pk[conference.pk] = conference

        talk_pks = sorted(c.pk for t, c in ws.conferences.items() if t in talk)
        holders: set[str] = set()
        if talk_pks:
            # Their whole floor history, as (when, leg) pairs: two columns of each change, no model instances.
            floor = table(FloorChange)
            when = floor.reader("occurred_at") or as_is
            for conference_pk, occurred_at, holder in fetch(
                f"SELECT {floor.column('conference')}, {floor.selected('occurred_at')}, {floor.column('call_control_id')} "
                f"FROM {floor.quoted} WHERE {floor.column('conference')} IN ({placeholders(talk_pks)})", talk_pks,
            ):
                ws.floor.setdefault(by_pk[conference_pk].telnyx_id, []).append((when(occurred_at), holder))
                holders.add(holder)
        for telnyx_id in talk:
            ws.floor.setdefault(telnyx_id, [])

        if by_pk:
            # The legs of the batch's calls, and every leg of an ended conference.
            leg_ids, ended_pks = sorted(call_ids), sorted(c.pk for t, c in ws.conferences.items() if t in ended)
            conference_col, ccid_col = legs_.column("conference"), legs_.column("call_control_id")
            pks = sorted(by_pk)
            for leg in legs_.select(
                f"{conference_col} IN ({placeholders(pks)}) AND ({ccid_col} IN ({placeholders(leg_ids)}) OR "
                f"{conference_col} IN ({placeholders(ended_pks)}))",
                [*pks, *leg_ids, *ended_pks],
            ):
                ws._add_leg(leg, by_pk[leg.conference_id])
        if talk_pks:
            # The legs whose talk time a floor change may move (those that held the floor, or have talk time): in
            # a long conference most of its legs, and most of them do not move. Their talk time and when they left,
            # without loading them; `load_legs` loads those that do move.
            left = legs_.reader("left_at") or as_is
            for conference_pk, ccid, seconds, status, left_at in fetch(
                f"SELECT {legs_.column('conference')}, {legs_.column('call_control_id')}, "
                f"{legs_.column('talk_seconds')}, {legs_.column('status')}, {legs_.selected('left_at')} "
                f"FROM {legs_.quoted} WHERE {legs_.column('conference')} IN ({placeholders(talk_pks)}) AND "
                f"({legs_.column('call_control_id')} IN ({placeholders(sorted(holders))}) OR "
                f"{legs_.column('talk_seconds')} > 0)",
                [*talk_pks, *sorted(holders)],
            ):
                telnyx_id = by_pk[conference_pk].telnyx_id
                if (telnyx_id, ccid) not in ws.legs:
                    gone = left(left_at) if status == Participant.Status.LEFT else None
                    ws.talkers.setdefault(telnyx_id, {})[ccid] = (seconds, gone)

        if call_ids:
            ids = sorted(call_ids)
            for call in calls_.select(f"{calls_.column('call_control_id')} IN ({placeholders(ids)})", ids):
                ws._keep(call)
                ws.calls[call.call_control_id] = call
            for entry in waiting_.select(f"{waiting_.column('call_control_id')} IN ({placeholders(ids)})", ids):
                ws._keep(entry)
                ws.waiting_entries[(entry.call_control_id, entry.queue_name)] = entry
                ws.waiting_by_call[entry.call_control_id].append(entry)
            placing = sorted({e.call_control_id for e in events if e.event_type in places_captions and e.call_control_id})
            if placing:
                captions_ = table(Caption)
                ws.waiting_captions = captions_.select(
                    f"{captions_.column('conference')} IS NULL AND {captions_.column('call_control_id')} "
                    f"IN ({placeholders(placing)})", placing)
        return ws

    def load_legs(self, wanted: Iterable[tuple[str, str]]) -> None:
        """Load these legs (conference's Telnyx id, call control id) that the batch did not, to change them."""
        missing = set(wanted) - self.legs.keys()
        if not missing:
            return
        legs_ = table(Participant)
        by_pk = {c.pk: c for c in self.conferences.values()}
        pks = sorted({self.conferences[telnyx_id].pk for telnyx_id, _ in missing})
        ccids = sorted({ccid for _, ccid in missing})
        for leg in legs_.select(f"{legs_.column('conference')} IN ({placeholders(pks)}) AND "
                                f"{legs_.column('call_control_id')} IN ({placeholders(ccids)})", [*pks, *ccids]):
            if (by_pk[leg.conference_id].telnyx_id, leg.call_control_id) in missing:
                self._add_leg(leg, by_pk[leg.conference_id])

    def _add_leg(self, leg: Participant, conference: Conference) -> None:
        """A loaded leg, kept as loaded (to tell later what changed) and found by conference and by call."""
        leg.conference = conference
        self._keep(leg)
        self.legs[(conference.telnyx_id, leg.call_control_id)] = leg
        self.legs_by_call[leg.call_control_id].append(leg)

    def _keep(self, row: Model) -> None:
        # A shallow copy of the instance's attributes (its column values, and its `_state`): the rules replace
        # values, they never change one in place, so comparing the copies tells what changed.
        self._loaded[id(row)] = row.__dict__.copy()

    # --- rows, for the rules --------------------------------------------------------------------------

    def conference(self, telnyx_id: str) -> Conference:
        return self.conferences[telnyx_id]  # every conference of the batch exists once loaded

    def leg(self, conference: Conference, call_control_id: str) -> Participant:
        key = (conference.telnyx_id, call_control_id)
        leg = self.legs.get(key)
        if leg is None:
            leg = table(Participant).new(call_control_id=call_control_id, hangup_at=self.hangup_time(call_control_id))
            leg.conference = conference  # (its id too)
            self._created.append(leg)
            self.legs[key] = leg
            self.legs_by_call[call_control_id].append(leg)
        return leg

    def hangup_time(self, call_control_id: str):
        """When the call hung up, if it has: a leg or queue entry first seen afterwards starts bounded by it."""
        call = self.calls.get(call_control_id)
        return call.ended_at if call is not None and call.state == Call.State.HANGUP else None

    def call(self, call_control_id: str) -> Call:
        call = self.calls.get(call_control_id)
        if call is None:
            call = self.calls[call_control_id] = table(Call).new(call_control_id=call_control_id)
            self._created.append(call)
        return call

    def waiting(self, call_control_id: str, queue_name: str) -> WaitingCall:
        key = (call_control_id, queue_name)
        entry = self.waiting_entries.get(key)
        if entry is None:
            entry = table(WaitingCall).new(
                call_control_id=call_control_id, queue_name=queue_name, hangup_at=self.hangup_time(call_control_id)
            )
            self._created.append(entry)
            self.waiting_entries[key] = entry
            self.waiting_by_call[call_control_id].append(entry)
        return entry

    def floor_changed(self, conference: Conference, when: datetime, call_control_id: str) -> None:
        history = self.floor.setdefault(conference.telnyx_id, [])
        if (when, call_control_id) not in history:
            history.append((when, call_control_id))
            change = table(FloorChange).new(occurred_at=when, call_control_id=call_control_id)
            change.conference = conference
            self.new_floor.append(change)

    def recording(self, recording: Recording) -> None:
        self.recordings[recording.recording_id] = recording

    def caption(self, caption: Caption) -> None:
        self.captions[caption.event_id] = caption

    def unplaced_captions(self) -> list[Caption]:
        return [c for c in [*self.waiting_captions, *self.captions.values()] if c.conference_id is None]

    def keywords(self, conference: Conference) -> list[str]:
        """The keyword alerts of the conference's room (a query per room per batch, only for final captions)."""
        if conference.room_id not in self._keywords:
            room = Room.objects.filter(pk=conference.room_id).only("caption_keywords").first() if conference.room_id else None
            self._keywords[conference.room_id] = room.keywords if room else []
        return self._keywords[conference.room_id]

    # --- writing back ---------------------------------------------------------------------------------

    def _changed(self, rows: Iterable[Model]) -> list[Model]:
        created = {id(row) for row in self._created}
        return [row for row in rows if id(row) in created or self._loaded.get(id(row)) != row.__dict__]

    def save(self) -> Changes:
        """Write every changed or new row (one upsert per table), give every touched conference its next
        version (the live pages' serial: a change whose update never reached a page leaves it a gap), and say
        what changed for the live pages."""
        changes = Changes()
        legs = self._changed(self.legs.values())
        places = False  # a room's conference filled or freed a place: its waiting room's heading says if it is full
        for leg in legs:
            changes.participant(leg.conference.telnyx_id, leg.call_control_id)
            loaded = self._loaded.get(id(leg), {})
            places = places or bool(leg.conference.room_id and leg.status != loaded.get("status"))
            if leg.hand_raised_at != loaded.get("hand_raised_at"):
                changes.hand(leg.conference.telnyx_id, leg.call_control_id, raised=leg.hand_raised_at is not None)
            if leg.caption_line != loaded.get("caption_line", ""):
                changes.caption_lines.add((leg.conference.telnyx_id, leg.call_control_id))
        placed = [c for c in self.waiting_captions if c.conference_id is not None]
        for caption in [*placed, *self.captions.values()]:
            if caption.conference_id is not None:
                changes.conference(caption.conference.telnyx_id)
                changes.captions.append((caption.conference.telnyx_id, caption.event_id))
        for telnyx_id, call_control_id in self.reshown:
            changes.participant(telnyx_id, call_control_id)
        for note in self.timeline:
            changes.conference(note.conference_id)
        changes.timeline = list(self.timeline)
        changes.conferences |= {c.telnyx_id for c in self._changed(self.conferences.values())}
        conferences = [self.conferences[t] for t in sorted(changes.conferences) if t in self.conferences]
        for conference in conferences:  # locked rows: no other writer bumps them meanwhile
            conference.version += 1
            changes.versions[conference.telnyx_id] = changes.since[conference.telnyx_id] = conference.version
        waiting = self._changed(self.waiting_entries.values())
        changes.queues = self.queues or bool(waiting) or places

        _upsert(Conference, conferences)
        _upsert(Participant, legs)
        _upsert(Call, self._changed(self.calls.values()))
        _upsert(WaitingCall, waiting)
        if self.new_floor:
            _upsert(FloorChange, self.new_floor, update=False)
        if self.recordings:
            _upsert(Recording, list(self.recordings.values()))
        if self.captions:
            _upsert(Caption, list(self.captions.values()), update=False)  # a redelivered line is the same line
        if placed:
            _upsert(Caption, placed)
        return changes


def _upsert(model: type[Model], rows: list[Model], *, update: bool = True) -> None:
    """New and changed rows in one statement: the rules' columns of an existing row, every column of a new one."""
    table(model).upsert(rows, _UNIQUE[model], _WRITTEN[model] if update else None)


def _lock_calls(call_ids: set[str]) -> None:
    """PostgreSQL: a transaction-scoped advisory lock per call, in one global order (see the module's doc)."""
    if not call_ids or connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        # Volatile functions in the select list run after ORDER BY: the locks are taken in key order.
        cursor.execute(
            "SELECT pg_advisory_xact_lock(key) FROM (SELECT DISTINCT hashtextextended(id, 0) AS key "
            "FROM unnest(%s::text[]) AS id) AS keys ORDER BY key",
            [sorted(call_ids)],
        )
