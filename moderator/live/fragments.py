"""The live pages' HTML fragments: one set of templates (Jinja2, templates/live/) renders them for the first
page load, for snapshots and for broadcasts, so the page never has two renderers that could disagree."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.template import engines
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from moderator.live import timeline
from moderator.models import Ban, Call, Conference, Participant, Recording, Room
from moderator.state.serializers import (
    calls_by_control_id,
    conference_dict,
    conference_summary,
    iso,
    link_urls,
    participant_dict,
    queues_dict,
    recording_dict,
)

RECENTLY_ENDED = 10
# Rows per websocket message. A 1,000-leg view in one message is 1.3 MB: past Daphne's 1 MiB message limit, and a
# long stall for the socket's other messages under any server. A snapshot comes in parts of this many rows; an
# update that changed more asks the page to take a snapshot instead.
ROWS_PER_MESSAGE = 250


def display_rows(participants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in participants:
        row["number"] = row["from"] if row["name"] else ""  # said beside the name
        row["name"] = row["name"] or row["from"] or timeline.leg_name(row["call_control_id"], {})
    return participants


def render(template: str, context: dict[str, Any]) -> SafeString:
    """A fragment from templates/live/ (autoescaped), ready to insert as HTML."""
    return mark_safe(engines["live"].get_template(template).render(context))


def with_links(recording: dict[str, Any]) -> dict[str, Any]:
    """A recording with `links`: (format, URL) for each file that may be a link (`link_url`), the download URLs
    before the public ones."""
    links: dict[str, str] = {}
    for urls in (recording["recording_urls"], recording["public_recording_urls"]):
        for fmt, url in link_urls(urls).items():
            if url not in links.values():
                links.setdefault(fmt, url)
    recording["links"] = list(links.items())
    return recording


def saved_recordings(conferences: list[Conference]) -> dict[int, list[dict[str, Any]]]:
    """The recordings Telnyx reported saved, per conference, in one query (a live summary offers them at once)."""
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    # A conference that never recorded has no recording_at (recording.saved sets it too): no query for it, so a
    # broadcast about conferences that never recorded costs nothing more.
    recorded = [c.pk for c in conferences if c.recording_at is not None]
    if not recorded:
        return found
    for recording in Recording.objects.filter(conference__in=recorded).order_by("started_at", "id"):
        found[recording.conference_id].append(with_links(recording_dict(recording)))
    return found


def conference_context(conference: Conference) -> dict[str, Any]:
    data = conference_dict(conference)
    data["recordings"] = [with_links(r) for r in data["recordings"]]
    participants = display_rows(data["participants"])
    names = {p["call_control_id"]: p["name"] for p in participants}
    data["floor_name"] = names.get(data["floor_call_control_id"], "")
    attendance = sorted(participants, key=lambda p: p["joined_at"] or "")
    return {"conference": data, "participants": participants, "attendance": attendance}


def active_counts(conferences: list[Conference]) -> dict[int, int]:
    """How many legs have not left, per conference, in one query (for many summaries and cards at once)."""
    counts = (
        Participant.objects.filter(conference__in=[c.pk for c in conferences])
        .exclude(status=Participant.Status.LEFT)
        .values_list("conference_id")
        .annotate(n=Count("id"))
    )
    return {c.pk: 0 for c in conferences} | dict(counts)


def floor_callers(conferences: list[Conference]) -> dict[str, str]:
    return timeline.callers_of({c.floor_call_control_id for c in conferences if c.floor_call_control_id})


def summary(
    conference: Conference,
    active: int | None = None,
    callers: dict[str, str] | None = None,
    recordings: dict[int, list[dict[str, Any]]] | None = None,
) -> str:
    """The conference header: its state and saved recordings, and after the end the attendance. Pass `active`,
    `callers` and `recordings` (from `active_counts`, `floor_callers`, `saved_recordings`) when rendering many."""
    if conference.status == Conference.Status.COMPLETED:
        return render("summary.html", conference_context(conference))
    if active is None:
        active = conference.participants.exclude(status=Participant.Status.LEFT).count()
    if recordings is None:
        recordings = saved_recordings([conference])
    data = conference_summary(conference, active)
    data["recordings"] = recordings.get(conference.pk, [])
    floor = data["floor_call_control_id"]
    data["floor_name"] = timeline.leg_name(floor, callers if callers is not None else timeline.callers_of([floor])) if floor else ""
    return render("summary.html", {"conference": data})


def hands(conference: Conference, can_moderate: bool, raised: list[dict[str, Any]] | None = None) -> SafeString:
    """The raised hands, first raised first, each with how long it has waited: the moderator's queue of who
    wants to speak. `raised` (rows from `conference_context`) saves the query when they are at hand."""
    if raised is None:
        legs = list(conference.participants.filter(hand_raised_at__isnull=False).exclude(status=Participant.Status.LEFT))
        calls = calls_by_control_id(leg.call_control_id for leg in legs)
        raised = display_rows([participant_dict(leg, conference, calls.get(leg.call_control_id)) for leg in legs])
    raised = sorted((r for r in raised if r["hand_raised_at"] and r["status"] != "left"),
                    key=lambda r: (r["hand_raised_at"], r["call_control_id"]))
    return render("hands.html", {"hands": raised, "can_moderate": can_moderate and conference.is_live})


def bans(conference: Conference, can_moderate: bool) -> SafeString:
    """The numbers banned from the conference's room (in force), newest first; Lift for moderators of a live one."""
    if conference.room_id is None:
        return mark_safe("")
    listed = [
        {"id": ban.pk, "number": ban.number, "for_good": ban.conference_id is None,
         "by": ban.banned_by.get_username() if ban.banned_by else ""}
        for ban in Ban.active().filter(room_id=conference.room_id).select_related("banned_by")
    ]
    return render("bans.html", {"bans": listed, "can_moderate": can_moderate and conference.is_live})


def conference_parts(conference: Conference, can_moderate: bool, rows_per_part: int = 0) -> dict[str, Any]:
    """Everything the live view shows, as fragments: for a page's first load and a (re)connecting page's
    snapshot. Observers get no controls: they may watch, not act; nor does anyone once the conference ended.
    With `rows_per_part`, "rows" holds the first that many rows and "more_rows" the rest, in parts as long."""
    context = conference_context(conference)
    participants = context["participants"]
    moderate = can_moderate and conference.is_live
    size = rows_per_part or max(len(participants), 1)
    parts = [participants[i:i + size] for i in range(0, len(participants), size)] or [[]]
    rows = [render("rows.html", {"participants": part, "can_moderate": moderate}) for part in parts]
    return {
        "summary": render("summary.html", context),
        "hands": hands(conference, can_moderate, participants),
        "bans": bans(conference, can_moderate),
        "rows": rows[0],
        **({"more_rows": rows[1:]} if rows_per_part else {}),
        "timeline": render("timeline.html", {"entries": timeline.history(conference)}),
    }


def board_conferences() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Live conferences and the recently ended ones, as card data, in a constant number of queries."""
    counted = Conference.objects.annotate(
        active=Count("participants", filter=~Q(participants__status=Participant.Status.LEFT))
    )
    live = list(counted.exclude(status=Conference.Status.COMPLETED).order_by("-first_seen_at", "-id"))
    ended = list(
        counted.filter(status=Conference.Status.COMPLETED).order_by("-ended_at", "-id")[:RECENTLY_ENDED]
    )
    floor_ids = {c.floor_call_control_id for c in live if c.floor_call_control_id}
    callers = timeline.callers_of(floor_ids)

    def card(conference: Conference) -> dict[str, Any]:
        data = conference_summary(conference, conference.active)
        data["floor_name"] = (
            timeline.leg_name(data["floor_call_control_id"], callers) if data["floor_call_control_id"] else ""
        )
        data["version"] = conference.version
        return data

    return [card(c) for c in live], [card(c) for c in ended]


def board_card(conference: Conference, active: int | None = None, callers: dict[str, str] | None = None) -> str:
    if active is None:
        active = conference.participants.exclude(status=Participant.Status.LEFT).count()
    data = conference_summary(conference, active)
    floor = data["floor_call_control_id"]
    data["floor_name"] = timeline.leg_name(floor, callers if callers is not None else timeline.callers_of([floor])) if floor else ""
    data["version"] = conference.version
    return render("card.html", {"c": data})


DIAL_IN_PROBLEMS = 8
DIAL_IN_PROBLEMS_FOR = timedelta(hours=1)


def recent_dial_in_problems(calls: QuerySet[Call]) -> QuerySet[Call]:
    """The calls dial-in routing could not place lately: the board's list, and the admin's filter it links to."""
    return calls.exclude(routing_error="").filter(updated_at__gte=timezone.now() - DIAL_IN_PROBLEMS_FOR)


def _waiting_for(room: Room | None, conference: Conference | None, calls: list[dict], for_a_place: set[str]) -> str:
    """What the callers wait for, when not for a moderator's admission: "unlock" (the conference of a room without a
    waiting room of its own is locked), "place" (it was full: each place that frees takes the next in), or "full"
    (a room with a waiting room: every place of its conference is taken, an admission would be refused)."""
    if room is None or conference is None:
        return ""
    if room.waiting_room:
        return "full" if conference.inside >= room.places else ""
    if conference.locked:
        return "unlock"
    return "place" if calls and all(call["call_control_id"] in for_a_place for call in calls) else ""


def queues_context() -> dict[str, Any]:
    """The waiting room: every queue, a room's queue under the room's name with its live conference
    (which "Admit" preselects), and the dial-in calls that routing could not place."""
    rooms = {room.queue_name: room for room in Room.objects.all()}
    live = {
        c.room_id: c
        for c in Conference.objects.filter(room__isnull=False)
        .exclude(status=Conference.Status.COMPLETED)
        .order_by("first_seen_at", "id")
        .only("room_id", "telnyx_id", "locked")
        .annotate(inside=Count("participants", filter=~Q(participants__status=Participant.Status.LEFT)))
    }
    waiting = queues_dict()
    for_a_place = set(
        Call.objects.filter(call_control_id__in=[c["call_control_id"] for calls in waiting.values() for c in calls],
                            routing_note__startswith=Call.WAITING_FOR_A_PLACE).values_list("call_control_id", flat=True)
    )
    queues = []
    for name, calls in waiting.items():
        room = rooms.get(name)
        conference = live.get(room.pk) if room else None
        queues.append({
            "name": name,
            "calls": calls,
            "room": room.name if room else "",
            "conference_id": conference.telnyx_id if conference else "",
            "waiting_for": _waiting_for(room, conference, calls, for_a_place),
            "places": room.places if room else 0,
        })
    recent_problems = recent_dial_in_problems(Call.objects.all())
    problems = list(recent_problems.order_by("-updated_at", "-id")[:DIAL_IN_PROBLEMS])
    # The latest few are listed; the rest are counted and a click away (the admin's list of them), never dropped silently.
    problems_total = recent_problems.count() if len(problems) == DIAL_IN_PROBLEMS else len(problems)
    return {
        "queues": queues,
        "problems": problems,
        "problems_total": problems_total,
        "problems_url": reverse("admin:moderator_call_changelist") + "?routing_problem=recent",
        "now": iso(timezone.now()),
    }


def board_parts(can_moderate: bool) -> dict[str, Any]:
    live, ended = board_conferences()
    return {
        "live": render(
            "cards.html", {"cards": live, "empty": "No live conferences right now."}
        ),
        "ended": render(
            "cards.html", {"cards": ended, "empty": "Nothing ended recently."}
        ),
        "queues": render("queues.html", {**queues_context(), "can_moderate": can_moderate}),
        "versions": {c["id"]: c["version"] for c in live + ended},
    }


def participant_row(participant: Participant, conference: Conference, calls: dict, can_moderate: bool) -> str:
    """One leg's row; with controls only for a moderator of a live conference (an ended one is read-only)."""
    row = participant_dict(participant, conference, calls.get(participant.call_control_id))
    return render("row.html", {"p": display_rows([row])[0], "can_moderate": can_moderate and conference.is_live})
