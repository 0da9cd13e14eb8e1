"""`python manage.py benchmark`: the product against the limit and a naive peer, on this machine."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from moderator.benchmark import run
from moderator.benchmark.servers import ASGI_SERVERS


class Command(BaseCommand):
    help = (
        "Start the limit app, a naive Django peer, the product and a plain websockets server on loopback (each "
        "its own process and SQLite file) and measure ingest, ack and websocket latency, fan-out, render time "
        "and memory; in full mode also the product under each supported ASGI server."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH as JSON")
        parser.add_argument("--quick", action="store_true", help="smaller counts: under a minute (CI)")
        parser.add_argument("--soak", type=float, metavar="SECONDS",
                            help="instead: offer --soak-rate events/s for SECONDS, then check nothing was lost")
        parser.add_argument("--soak-rate", type=float, default=500.0, help="events/s offered by --soak")
        parser.add_argument("--soak-sockets", type=int, default=100, help="websocket clients during --soak")
        parser.add_argument("--server", choices=sorted(ASGI_SERVERS), default="uvicorn",
                            help="the ASGI server the limit, the naive peer and the product run under")

    def handle(self, *args, **options) -> None:
        def say(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        results = run.main(options["quick"], options["soak"], options["soak_rate"], options["soak_sockets"],
                           options["json"], say, options["server"])
        if options["soak"] and (results["soak_lost"] or not results["soak_converged"]):
            raise SystemExit(1)
