"""Run the Telnyx simulator: the conferencing API under /v2/, signed webhooks, a phone side under /sim/."""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web
from django.core.management.base import BaseCommand, CommandError

from moderator.simulator.keys import DEFAULT_API_KEY, public_key_b64, signing_key
from moderator.simulator.server import STATE, build


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class Command(BaseCommand):
    help = "Run a local Telnyx simulator that sends signed webhooks to the dashboard."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--webhook-url", default="http://127.0.0.1:8000/webhooks/telnyx")
        parser.add_argument("--failover-url", default=None)
        parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the bearer key requests must carry")
        parser.add_argument("--scenario", choices=["none", "demo"], default="none")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument(
            "--shuffle-window", type=float, default=0.0, help="deliver out of order within N s"
        )
        parser.add_argument(
            "--duplicate-rate", type=float, default=0.0, help="fraction of webhooks sent twice"
        )
        parser.add_argument("--media-seconds", type=float, default=3.0, help="how long a playback lasts")
        parser.add_argument(
            "--dial-in-number",
            action="append",
            default=[],
            help="demo scenario: dial into these room numbers instead of creating calls",
        )
        parser.add_argument("--town-hall-number", default="", help="demo scenario: a crowd dials this room number")
        parser.add_argument("--town-hall-pin", default="", help="the PIN the crowd enters when asked")
        parser.add_argument("--town-hall-callers", type=int, default=0, help="how many callers the crowd is")

    def handle(self, *args, **options):
        if not port_is_free(options["host"], options["port"]):
            raise CommandError(f"port {options['port']} is already in use: pick another with --port")
        key = signing_key()
        app = build(
            options["webhook_url"],
            key=key,
            api_key=options["api_key"],
            failover_url=options["failover_url"],
            shuffle_window=options["shuffle_window"],
            duplicate_rate=options["duplicate_rate"],
            seed=options["seed"],
            media_seconds=options["media_seconds"],
        )
        if options["scenario"] == "demo":
            from moderator.simulator.scenario import DemoScenario, TownHall

            town_hall = (
                TownHall(options["town_hall_number"], options["town_hall_pin"], options["town_hall_callers"])
                if options["town_hall_number"] and options["town_hall_callers"] > 0
                else None
            )
            scenario = DemoScenario(
                app[STATE], seed=options["seed"], dial_in_numbers=options["dial_in_number"], town_hall=town_hall
            )

            async def start_scenario(app: web.Application) -> None:
                scenario.start()

            async def stop_scenario(app: web.Application) -> None:
                await scenario.stop()

            app.on_startup.append(start_scenario)
            app.on_cleanup.append(stop_scenario)
        base = f"http://{options['host']}:{options['port']}"
        self.stdout.write(f"Telnyx simulator on {base}/v2 (phone side {base}/sim/)")
        self.stdout.write(
            f"  webhooks to {options['webhook_url']}, signed with public key {public_key_b64(key)}"
        )
        self.stdout.write(f"  API key: {options['api_key']}", ending="\n")
        self.stdout.flush()
        try:
            web.run_app(
                app,
                host=options["host"],
                port=options["port"],
                print=None,
                access_log=None,
                handle_signals=True,
            )
        except (KeyboardInterrupt, asyncio.CancelledError):
            pass
