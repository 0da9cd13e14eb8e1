"""The rows a batch of events touches: loaded at once, changed in memory by the rules, written back in bulk.

Loading costs a constant number of queries whatever the batch holds (about eight), and writing one bulk
upsert per table: applying events one by one through the ORM cost about six queries each, and most of a
webhook's time went into building them.

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
from django.db.models import Model, Q
from django.utils import timezone

from moderator.models import Call, Conference, FloorChange, Participant, Recording, WaitingCall
from moderator.state.changes import Changes, TimelineNote

if TYPE_CHECKING:
    from moderator.telnyx.event import TelnyxEvent

# What the rules may write, per table. The routing columns of a call belong to dial-in routing and the
# outbox sender (`moderator.control`), which write them on their own: an applier must not put back a
# value it read before they changed it.
_SKIPPED = {"id", "updated_at"}
_CALL_SKIPPED = _SKIPPED | {"routing_note", "routing_error"}


def _fields(model: type[Model], skipped: set[str]) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields if f.attname not in skipped]


_WRITTEN: dict[type[Model], list[str]] = {
    Conference: _fields(Conference, _SKIPPED | {"version"}),  # the live pages' serial: `rules.bump_versions`
    Participant: _fields(Participant, _SKIPPED),
    Call: _fields(Call, _CALL_SKIPPED),
    WaitingCall: _fields(WaitingCall, _SKIPPED),
    Recording: _fields(Recording, _SKIPPED),
    FloorChange: _fields(FloorChange, _SKIPPED),
}
_UNIQUE: dict[type[Model], list[str]] = {
    Conference: ["telnyx_id"],
    Participant: ["conference", "call_control_id"],
    Call: ["call_control_id"],
    WaitingCall: ["call_control_id", "queue_name"],
    Recording: ["recording_id"],
    FloorChange: ["conference", "occurred_at", "call_control_id"],
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
        self.recordings: dict[str, Recording] = {}
        # Legs whose row reads differently though the leg did not change: the speaker badge follows the floor.
        self.reshown: set[tuple[str, str]] = set()
        self.queues = False
        self.unnamed: set[str] = set()  # conferences first seen without a name: their name is looked up
        self.timeline: list[TimelineNote] = []
        self._loaded: dict[int, tuple[Any, ...]] = {}  # id(row) → its values when loaded
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
    ) -> WorkingSet:
        """Everything `events` can touch, in a constant number of queries. The event-type sets say which
        events end a conference (all its legs are read), end a call (its legs everywhere are read), and
        change talk time (the conference's floor history is read)."""
        ws = cls()
        events = list(events)
        conference_ids = {e.conference_id for e in events if e.conference_id}
        call_ids = {e.call_control_id for e in events if e.call_control_id}
        hangups = {e.call_control_id for e in events if e.event_type in ends_call and e.call_control_id}
        ended = {e.conference_id for e in events if e.event_type in ends_conference and e.conference_id}
        talk = {e.conference_id for e in events if e.event_type in moves_talk_time and e.conference_id}

        _lock_calls(call_ids)
        # Any event of an unknown conference creates it: a floor.changed may arrive before created.
        _upsert(Conference, [Conference(telnyx_id=telnyx_id) for telnyx_id in sorted(conference_ids)], update=False)
        if hangups:
            # A hang-up bounds the call's legs in every conference it is in: those conferences are touched too.
            # Stable once the calls are locked: whoever adds a leg to a conference holds its call's lock.
            hung_up_in = set(
                Participant.objects.filter(call_control_id__in=hangups).values_list("conference__telnyx_id", flat=True)
            )
            conference_ids |= hung_up_in
            talk |= hung_up_in
        conferences = Conference.objects.filter(telnyx_id__in=conference_ids).order_by("telnyx_id")
        if connection.features.has_select_for_update:
            conferences = conferences.select_for_update()
        by_pk: dict[int, Conference] = {}
        for conference in conferences:
            ws._keep(conference)
            ws.conferences[conference.telnyx_id] = by_pk[conference.pk] = conference

        talk_pks = [c.pk for t, c in ws.conferences.items() if t in talk]
        holders: set[str] = set()
        if talk_pks:
            for conference_pk, occurred_at, holder in FloorChange.objects.filter(conference__in=talk_pks).values_list(
                "conference_id", "occurred_at", "call_control_id"
            ):
                ws.floor.setdefault(by_pk[conference_pk].telnyx_id, []).append((occurred_at, holder))
                holders.add(holder)
        for telnyx_id in talk:
            ws.floor.setdefault(telnyx_id, [])

        wanted = Q(call_control_id__in=call_ids)
        if ended:
            wanted |= Q(conference__telnyx_id__in=ended)
        if talk_pks:
            wanted |= Q(conference__in=talk_pks) & (Q(call_control_id__in=holders) | Q(talk_seconds__gt=0))
        if by_pk:
            for leg in Participant.objects.filter(Q(conference__in=list(by_pk)) & wanted):
                leg.conference = by_pk[leg.conference_id]
                ws._keep(leg)
                ws.legs[(leg.conference.telnyx_id, leg.call_control_id)] = leg
                ws.legs_by_call[leg.call_control_id].append(leg)

        if call_ids:
            for call in Call.objects.filter(call_control_id__in=call_ids):
                ws._keep(call)
                ws.calls[call.call_control_id] = call
            for entry in WaitingCall.objects.filter(call_control_id__in=call_ids):
                ws._keep(entry)
                ws.waiting_entries[(entry.call_control_id, entry.queue_name)] = entry
                ws.waiting_by_call[entry.call_control_id].append(entry)
        return ws

    def _keep(self, row: Model) -> None:
        self._loaded[id(row)] = _values(row)

    # --- rows, for the rules --------------------------------------------------------------------------

    def conference(self, telnyx_id: str) -> Conference:
        return self.conferences[telnyx_id]  # every conference of the batch exists once loaded

    def leg(self, conference: Conference, call_control_id: str) -> Participant:
        key = (conference.telnyx_id, call_control_id)
        leg = self.legs.get(key)
        if leg is None:
            leg = Participant(
                conference=conference, call_control_id=call_control_id, hangup_at=self.hangup_time(call_control_id)
            )
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
            call = self.calls[call_control_id] = Call(call_control_id=call_control_id)
            self._created.append(call)
        return call

    def waiting(self, call_control_id: str, queue_name: str) -> WaitingCall:
        key = (call_control_id, queue_name)
        entry = self.waiting_entries.get(key)
        if entry is None:
            entry = WaitingCall(
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
            self.new_floor.append(FloorChange(conference=conference, occurred_at=when, call_control_id=call_control_id))

    def recording(self, recording: Recording) -> None:
        self.recordings[recording.recording_id] = recording

    # --- writing back ---------------------------------------------------------------------------------

    def _changed(self, rows: Iterable[Model]) -> list[Model]:
        created = {id(row) for row in self._created}
        return [row for row in rows if id(row) in created or self._loaded.get(id(row)) != _values(row)]

    def save(self) -> Changes:
        """Write every changed or new row (one upsert per table), and say what changed for the live pages
        (the broadcast that shows it takes the conferences' next versions: `rules.bump_versions`)."""
        changes = Changes()
        legs = self._changed(self.legs.values())
        for leg in legs:
            changes.participant(leg.conference.telnyx_id, leg.call_control_id)
        for telnyx_id, call_control_id in self.reshown:
            changes.participant(telnyx_id, call_control_id)
        for note in self.timeline:
            changes.conference(note.conference_id)
        changes.timeline = list(self.timeline)
        conferences = self._changed(self.conferences.values())
        changes.conferences |= {c.telnyx_id for c in conferences}
        waiting = self._changed(self.waiting_entries.values())
        changes.queues = self.queues or bool(waiting)

        _upsert(Conference, conferences)
        _upsert(Participant, legs)
        _upsert(Call, self._changed(self.calls.values()))
        _upsert(WaitingCall, waiting)
        if self.new_floor:
            _upsert(FloorChange, self.new_floor, update=False)
        if self.recordings:
            _upsert(Recording, list(self.recordings.values()))
        return changes


def _values(row: Model) -> tuple[Any, ...]:
    return tuple(getattr(row, name) for name in _WRITTEN[type(row)])


def _upsert(model: type[Model], rows: list[Model], fields: list[str] | None = None, *, update: bool = True) -> None:
    """INSERT … ON CONFLICT (the natural key) DO UPDATE SET the rules' columns (or DO NOTHING): one statement
    for new and changed rows alike. Built here rather than by `bulk_create`, whose per-value SQL compilation
    was half of a batch's time; values still go through each field's own `get_db_prep_save`."""
    if not rows:
        return
    unique = _UNIQUE[model]
    # A new row gets every column; an existing one only the columns the rules own (and its auto_now time).
    columns = [f for f in model._meta.concrete_fields if not f.primary_key]
    updated = set(fields or _WRITTEN[model]) | {f.attname for f in columns if getattr(f, "auto_now", False)}
    now = timezone.now()
    for row in rows:
        for field in columns:
            if getattr(field, "auto_now", False):
                setattr(row, field.attname, now)
    quote = connection.ops.quote_name
    keys = {model._meta.get_field(name).column for name in unique}
    conflict = ", ".join(quote(model._meta.get_field(name).column) for name in unique)
    if update:
        assignments = ", ".join(
            f"{quote(f.column)} = excluded.{quote(f.column)}"
            for f in columns
            if f.attname in updated and f.column not in keys
        )
        action = f"DO UPDATE SET {assignments}"
    else:
        action = "DO NOTHING"
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    head = f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in columns)}) VALUES "
    per_statement = max(1, 30000 // len(columns))  # within SQLite's 32,766 variables
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            params = [f.get_db_prep_save(getattr(row, f.attname), connection) for row in chunk for f in columns]
            cursor.execute(f"{head}{', '.join([one] * len(chunk))} ON CONFLICT ({conflict}) {action}", params)


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
