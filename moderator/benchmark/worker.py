"""What runs inside a server's environment (its DATABASE_URL), as ``python -m moderator.benchmark.worker``.

- ``prepare``: migrate the database, create the benchmark user (a moderator) and a logged-in session;
  prints ``{"session": <key>}``: the websocket clients send it as their session cookie.
- ``render N RUNS``: a conference with N participants (each with its call) and a full timeline; GET its
  live view through Django's test Client (full middleware, logged in); prints the median time and the
  query count.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from datetime import timedelta


def prepare() -> dict:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Permission, User
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    user = User.objects.create_user("bench", password="bench-password-not-secret")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["moderate_conference", "view_captions"]))
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return {"session": session.session_key}


def big_conference(telnyx_id: str, participants: int):
    from django.utils import timezone

    from moderator.models import Call, Conference, Participant, WebhookEvent

    now = timezone.now()
    conference = Conference.objects.create(
        telnyx_id=telnyx_id, name=f"Town hall {participants}", status=Conference.Status.IN_PROGRESS,
        created_at=now - timedelta(hours=1), floor_call_control_id=f"v3:{telnyx_id}-1", floor_at=now,
    )
    ids = [f"v3:{telnyx_id}-{i}" for i in range(participants)]
    Call.objects.bulk_create(
        Call(call_control_id=ccid, from_number=f"+1555{i:07d}", to_number="+15550000000", direction="incoming",
             state=Call.State.ANSWERED, state_at=now, started_at=now, answered_at=now)
        for i, ccid in enumerate(ids)
    )
    Participant.objects.bulk_create(
        Participant(conference=conference, call_control_id=ccid, call_leg_id=f"leg-{i}",
                    status=Participant.Status.LEFT if i % 10 == 9 else Participant.Status.JOINED,
                    status_at=now, joined_at=now - timedelta(seconds=i), muted=i % 3 == 0,
                    left_at=now if i % 10 == 9 else None, talk_seconds=float(i % 7))
        for i, ccid in enumerate(ids)
    )
    WebhookEvent.objects.bulk_create(
        WebhookEvent(event_id=f"{telnyx_id}-e{i}", event_type="conference.participant.joined",
                     occurred_at=now - timedelta(seconds=i), conference_telnyx_id=telnyx_id,
                     call_control_id=ids[i % participants], status=WebhookEvent.Status.APPLIED,
                     raw=json.dumps({"data": {"payload": {"call_control_id": ids[i % participants]}}}))
        for i in range(100)
    )
    return conference


def render(participants: int, runs: int) -> dict:
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    # Production templates (no debug information); the static files stay the development finders'.
    settings.DEBUG = False
    user = User.objects.get(username="bench")
    client = Client()
    client.force_login(user)
    result = {}
    for size in (10, participants):
        conference = big_conference(f"render-{size}", size)
        url = f"/conferences/{conference.telnyx_id}/"
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        count = len(queries)  # now: the next request's start clears the connection's query log
        assert response.status_code == 200, response.status_code
        rows = response.content.count(b'class="leg ')
        assert rows == size, (rows, size)
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
        result[size] = {"ms": statistics.median(timings), "queries": count, "bytes": len(response.content)}
    return {
        "render_ms": result[participants]["ms"],
        "render_queries": result[participants]["queries"],
        "render_queries_small": result[10]["queries"],
        "render_ms_small": result[10]["ms"],
        "render_bytes": result[participants]["bytes"],
    }


def main(argv: list[str]) -> None:
    import django

    django.setup()
    if argv[0] == "prepare":
        out = prepare()
    elif argv[0] == "render":
        out = render(int(argv[1]), int(argv[2]))
    else:
        raise SystemExit(f"unknown command {argv[0]}")
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
