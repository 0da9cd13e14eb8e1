"""Manage dial-in rooms from a shell (deploy scripts): `rooms add`, `rooms list`, `rooms remove`."""

from __future__ import annotations

import re

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from moderator.models import Room, RoomNumber

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def e164(value: str) -> str:
    number = re.sub(r"[\s\-().]", "", value)
    if not E164.match(number):
        raise CommandError(f"{value!r} is not an E.164 phone number like +15550100")
    return number


class Command(BaseCommand):
    help = "Add, list or remove dial-in rooms."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True)
        add = sub.add_parser("add", help="create a room, or update the room of that name")
        add.add_argument("name")
        add.add_argument("--number", action="append", default=[], help="a dial-in number (repeatable)")
        add.add_argument(
            "--moderator", action="append", default=[], help="a moderator's caller number (repeatable)"
        )
        add.add_argument(
            "--waiting-room", action="store_true", help="callers wait until a moderator admits them"
        )
        add.add_argument("--default", action="store_true", help="route calls to unknown numbers here")
        add.add_argument("--beep", choices=Room.Beep.values, default=None)
        add.add_argument("--hold-audio-url", default=None)
        add.add_argument("--max-participants", type=int, default=None)
        add.add_argument("--region", choices=Room.Region.values, default=None)
        add.add_argument("--record", action="store_true", help="record the conference automatically")
        add.add_argument(
            "--start-on-moderator", action="store_true", help="start only when a moderator joins"
        )
        add.add_argument(
            "--end-on-moderator-exit", action="store_true", help="end when the last moderator leaves"
        )
        add.add_argument(
            "--mute-on-entry", action="store_true", help="everyone but moderators joins muted (listen-only)"
        )
        add.add_argument("--participant-pin", default=None, help="callers must enter it (4 to 12 digits; '' removes it)")
        add.add_argument("--moderator-pin", default=None, help="a caller who enters it joins as a moderator")
        add.add_argument("--pin-prompt-audio-url", default=None, help="played to ask for the PIN instead of speech")
        add.add_argument("--captions", action="store_true", help="live captions for every caller who joins")
        add.add_argument("--forbid-transcription", action="store_true", help="nothing said here is ever transcribed")
        add.add_argument("--keyword", action="append", default=[],
                         help="a keyword alert: a caption that says it is highlighted and announced (repeatable)")
        add.add_argument("--refuse-when-locked", action="store_true",
                         help="while locked, new callers hear it is closed and are hung up (instead of waiting)")
        sub.add_parser("list", help="list rooms with their numbers")
        remove = sub.add_parser("remove", help="delete a room and free its numbers")
        remove.add_argument("name")

    def handle(self, *args, subcommand: str, **options):
        getattr(self, f"handle_{subcommand}")(**options)

    @transaction.atomic
    def handle_add(self, name: str, number: list[str], moderator: list[str], **options):
        numbers = [e164(n) for n in number]
        moderators = [e164(n) for n in moderator]
        taken = RoomNumber.objects.filter(number__in=numbers).exclude(room__name=name).select_related("room")
        if taken:
            raise CommandError(
                ", ".join(f"{n.number} already belongs to room {n.room.name!r}" for n in taken)
            )
        room, created = Room.objects.get_or_create(name=name)
        room.moderator_numbers = sorted(set(room.moderator_numbers) | set(moderators))
        room.waiting_room = room.waiting_room or options["waiting_room"]
        room.record_automatically = room.record_automatically or options["record"]
        room.start_on_moderator = room.start_on_moderator or options["start_on_moderator"]
        room.end_on_last_moderator_exit = room.end_on_last_moderator_exit or options["end_on_moderator_exit"]
        room.mute_on_entry = room.mute_on_entry or options["mute_on_entry"]
        room.refuse_when_locked = room.refuse_when_locked or options["refuse_when_locked"]
        room.transcription_forbidden = room.transcription_forbidden or options["forbid_transcription"]
        room.captions_on_join = (room.captions_on_join or options["captions"]) and not room.transcription_forbidden
        if options["keyword"]:
            room.caption_keywords = "\n".join(dict.fromkeys([*room.keywords, *(k.strip().lower() for k in options["keyword"])]))
        for field, option in (
            ("beep_enabled", "beep"),
            ("hold_audio_url", "hold_audio_url"),
            ("max_participants", "max_participants"),
            ("region", "region"),
            ("participant_pin", "participant_pin"),
            ("moderator_pin", "moderator_pin"),
            ("pin_prompt_audio_url", "pin_prompt_audio_url"),
        ):
            if options[option] is not None:
                setattr(room, field, options[option])
        if options["default"]:
            Room.objects.exclude(pk=room.pk).update(is_default=False)
            room.is_default = True
        room.full_clean()
        room.save()
        for n in numbers:
            RoomNumber.objects.get_or_create(room=room, number=n)
        self.stdout.write(f"{'created' if created else 'updated'} room {room.name!r}: {self.describe(room)}")

    def handle_list(self, **options):
        rooms = Room.objects.prefetch_related("numbers")
        if not rooms:
            self.stdout.write("no rooms")
        for room in rooms:
            self.stdout.write(f"{room.name}: {self.describe(room)}")

    def handle_remove(self, name: str, **options):
        deleted, _ = Room.objects.filter(name=name).delete()
        if not deleted:
            raise CommandError(f"no room named {name!r}")
        self.stdout.write(f"removed room {name!r}")

    @staticmethod
    def describe(room: Room) -> str:
        parts = [
            "numbers " + (", ".join(n.number for n in room.numbers.all()) or "none"),
            "moderators " + (", ".join(room.moderator_numbers) or "none"),
            "waiting room " + ("on" if room.waiting_room else "off"),
        ]
        if room.mute_on_entry:
            parts.append("callers join muted")
        if room.captions_on_join:
            parts.append("live captions")
        if room.transcription_forbidden:
            parts.append("never transcribed")
        if room.keywords:
            parts.append("keyword alerts: " + ", ".join(room.keywords))
        pins = [kind for kind, pin in (("participant", room.participant_pin), ("moderator", room.moderator_pin)) if pin]
        if pins:
            parts.append(" and ".join(pins) + " PIN" + ("s" if len(pins) > 1 else ""))  # whether, never which
        if room.is_default:
            parts.append("default room")
        return "; ".join(parts)
