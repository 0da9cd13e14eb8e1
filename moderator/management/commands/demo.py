"""`python manage.py demo`: the whole product on embedded defaults, with a live Telnyx simulator.

Migrates the SQLite database, creates a demo moderator, starts the simulator (demo scenario) and the
dashboard (Daphne, in-memory channel layer) wired to each other, and stops both on Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from moderator.management.commands.telnyx_simulator import port_is_free
from moderator.models import Room, RoomNumber, UserProfile
from moderator.simulator.keys import DEFAULT_API_KEY, development_public_key

DEMO_USER = "moderator"
DEMO_ROOM = "Demo room"
DEMO_ROOM_NUMBER = "+15550100"
DEMO_MODERATOR_NUMBER = "+15550199"
TOWN_HALL = "Town hall"
TOWN_HALL_NUMBER = "+15550800"
TOWN_HALL_PIN = "2468"
TOWN_HALL_PLACES = 800  # Telnyx's most: callers past it wait for a place


class Command(BaseCommand):
    help = "Run the dashboard and a Telnyx simulator with a live demo scenario (SQLite, no Telnyx account)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000, help="the dashboard's port")
        parser.add_argument("--sim-port", type=int, default=8765, help="the Telnyx simulator's port")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--password", default=None, help="the demo moderator's password (default: random)"
        )
        parser.add_argument(
            "--town-hall", type=int, default=0, metavar="CALLERS",
            help=f"also a town hall: this many callers dial {TOWN_HALL_NUMBER} with its PIN (e.g. 1000)",
        )

    def handle(self, *args, **options) -> None:
        # Ctrl-C is how a demo ends: stop what was started, quietly, and exit 0 (no traceback, no error).
        self.processes: list[subprocess.Popen] = []
        try:
            self.run_demo(**options)
        except KeyboardInterrupt:
            self.stdout.write("\nstopping…")
        finally:
            self.stop()
        self.stdout.write("stopped.")

    def run_demo(
        self, *, host: str, port: int, sim_port: int, seed: int, password: str | None, town_hall: int, **options
    ) -> None:
        for name, number in (("dashboard", port), ("simulator", sim_port)):
            if not port_is_free(host, number):
                raise CommandError(
                    f"port {number} for the {name} is already in use: choose another with "
                    f"--{'port' if name == 'dashboard' else 'sim-port'}"
                )
        if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3" or os.environ.get(
            "REDIS_URL"
        ):
            self.stdout.write(
                self.style.WARNING("note: the demo is meant for the embedded defaults (SQLite, no Redis)")
            )
        call_command("migrate", interactive=False, verbosity=0)
        password = password or secrets.token_urlsafe(9)
        self.create_demo_user(password)
        self.create_demo_room()
        if town_hall > 0:
            self.create_town_hall()

        dashboard_url = f"http://{host}:{port}"
        env = {
            **os.environ,
            "TELNYX_BASE_URL": f"http://{host}:{sim_port}/v2",
            "TELNYX_API_KEY": DEFAULT_API_KEY,
            "TELNYX_PUBLIC_KEY": development_public_key(),
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("TELNYX_SIMULATOR_PRIVATE_KEY", None)  # the dashboard is configured with the development key
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        # Each child in its own process group: the terminal's Ctrl-C reaches this command alone, which then
        # stops them in order (they would otherwise die of it at once, and look like a crash).
        processes = self.processes
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), "moderator.asgi:application"],
                cwd=settings.BASE_DIR,
                env=env,
                process_group=0,
            ),
        )
        self.wait_for(host, port)
        processes.append(
            subprocess.Popen(
                [
                    *manage,
                    "telnyx_simulator",
                    "--host",
                    host,
                    "--port",
                    str(sim_port),
                    "--scenario",
                    "demo",
                    "--seed",
                    str(seed),
                    "--webhook-url",
                    f"{dashboard_url}/webhooks/telnyx",
                    "--dial-in-number",
                    DEMO_ROOM_NUMBER,
                    *(["--town-hall-number", TOWN_HALL_NUMBER, "--town-hall-pin", TOWN_HALL_PIN,
                       "--town-hall-callers", str(town_hall)] if town_hall > 0 else []),
                ],
                cwd=settings.BASE_DIR,
                env=env,
                process_group=0,
            )
        )
        self.stdout.write(self.style.SUCCESS(f"\nConference Moderator demo is running: {dashboard_url}/"))
        self.stdout.write(f"  log in as  {DEMO_USER} / {password}")
        self.stdout.write(
            f"  admin:     {dashboard_url}/admin/   simulator: http://{host}:{sim_port}/sim/state"
        )
        self.stdout.write(
            f"  callers dial the demo room {DEMO_ROOM_NUMBER}; the moderator dials from {DEMO_MODERATOR_NUMBER}"
        )
        if town_hall > 0:
            self.stdout.write(
                f"  {town_hall} callers dial the town hall {TOWN_HALL_NUMBER} (PIN {TOWN_HALL_PIN}, "
                f"{TOWN_HALL_PLACES} places: the rest wait), {min(town_hall, 40)} more every second or so"
            )
        self.stdout.write("  Ctrl-C stops everything.\n")
        self.supervise(processes)

    def create_demo_user(self, password: str) -> None:
        user, _ = get_user_model().objects.get_or_create(username=DEMO_USER, defaults={"is_staff": True})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        user.user_permissions.add(Permission.objects.get(codename="moderate_conference"))
        UserProfile.objects.update_or_create(user=user, defaults={"phone_number": DEMO_MODERATOR_NUMBER})

    def create_demo_room(self) -> None:
        room, _ = Room.objects.get_or_create(
            name=DEMO_ROOM,
            defaults={
                "waiting_room": True,
                "moderator_numbers": [DEMO_MODERATOR_NUMBER],
                "beep_enabled": "on_enter",
                "captions_on_join": True,
                "caption_keywords": "refund\ncancel",
            },
        )
        RoomNumber.objects.get_or_create(number=DEMO_ROOM_NUMBER, defaults={"room": room})

    def create_town_hall(self) -> None:
        """A listen-only, captioned room behind a PIN, as big as Telnyx makes a conference."""
        room, _ = Room.objects.update_or_create(
            name=TOWN_HALL,
            defaults={
                "participant_pin": TOWN_HALL_PIN,
                "moderator_numbers": [DEMO_MODERATOR_NUMBER],
                "mute_on_entry": True,
                "captions_on_join": True,
                "caption_keywords": "refund\ncancel",
                "max_participants": TOWN_HALL_PLACES,
            },
        )
        RoomNumber.objects.get_or_create(number=TOWN_HALL_NUMBER, defaults={"room": room})

    def wait_for(self, host: str, port: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while port_is_free(host, port):
            if time.monotonic() > deadline:
                raise CommandError(f"the dashboard did not start on port {port}")
            time.sleep(0.1)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def supervise(self, processes: list[subprocess.Popen]) -> None:
        signal.signal(signal.SIGTERM, lambda *_: (self.stop(), sys.exit(0)))
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        raise CommandError("a demo process exited unexpectedly; see its output above")
