from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from moderator.models import Room

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("rooms", *args, stdout=out)
    return out.getvalue()


def test_add_creates_a_room_with_numbers_moderators_and_waiting_room():
    output = run(
        "add",
        "Sales standup",
        "--number",
        "+15550100",
        "--number",
        "+1 555 0101 00",
        "--waiting-room",
        "--moderator",
        "+15550199",
    )
    assert "created room 'Sales standup'" in output
    room = Room.objects.get(name="Sales standup")
    assert sorted(room.numbers.values_list("number", flat=True)) == ["+15550100", "+1555010100"]
    assert room.waiting_room and room.moderator_numbers == ["+15550199"]


def test_add_again_updates_the_room():
    run("add", "Ops", "--number", "+15550100")
    output = run(
        "add", "Ops", "--number", "+15550102", "--moderator", "+15550199", "--max-participants", "20"
    )
    assert "updated room 'Ops'" in output
    room = Room.objects.get()
    assert room.numbers.count() == 2 and room.max_participants == 20


def test_a_number_belongs_to_one_room_only():
    run("add", "A", "--number", "+15550100")
    with pytest.raises(CommandError, match="already belongs to room 'A'"):
        run("add", "B", "--number", "+15550100")
    assert not Room.objects.filter(name="B").exists()


def test_bad_numbers_are_refused():
    with pytest.raises(CommandError, match="not an E.164"):
        run("add", "A", "--number", "5550100")


def test_list_shows_rooms_and_remove_deletes_them():
    assert run("list").strip() == "no rooms"
    run("add", "A", "--number", "+15550100", "--default")
    assert "A: numbers +15550100; moderators none; waiting room off; default room" in run("list")
    run("remove", "A")
    assert not Room.objects.exists()
    with pytest.raises(CommandError):
        run("remove", "A")
