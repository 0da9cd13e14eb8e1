"""The Python row renderer and the row templates give byte-identical HTML, whatever the row's state."""

from __future__ import annotations

import itertools

import pytest

from moderator.live import fragments, rows

NAMES = ["+15550001", 'O\'Brien <b>"&"</b>', "Leg …abc123"]


def variants():
    flags = itertools.product([False, True], repeat=6)
    for i, (muted, on_hold, talking, playing, speaking, has_to) in enumerate(flags):
        for status in ("joining", "joined", "left"):
            yield {
                "call_control_id": f"v3:leg-{i}<&>",
                "call_leg_id": "",
                "call_session_id": "",
                "from": NAMES[i % 3] if i % 2 else "",
                "to": "+15550000000" if has_to else "",
                "status": status,
                "muted": muted,
                "on_hold": on_hold,
                "supervisor_role": ("none", "barge", "whisper", "monitor")[i % 4],
                "whisper_call_control_ids": [],
                "joined_at": "2026-11-24T09:00:00Z" if i % 3 else None,
                "left_at": "2026-11-24T09:05:00.123456Z" if status == "left" else None,
                "talking": talking,
                "talk_seconds": (0.0, 12.5, 3601.125, 1e-07, 123456789.0)[i % 5],
                "talk_since": "2026-11-24T09:01:00Z" if talking else None,
                "playing": playing,
                "playback_media": "",
                "speaking": speaking,
                "name": NAMES[i % 3],
            }


@pytest.mark.parametrize("p", list(variants()), ids=lambda p: f"{p['status']}-{p['call_control_id']}")
def test_a_row_is_what_the_template_renders(p):
    assert rows.row(p) == fragments.render("moderator/_participant_row.html", {"p": p})


def test_all_rows_and_no_rows_are_what_the_template_renders():
    participants = list(variants())
    assert rows.rows(participants) == fragments.render("moderator/_participant_rows.html",
                                                       {"participants": participants})
    assert rows.rows([]) == fragments.render("moderator/_participant_rows.html", {"participants": []})
