"""ASGI entry point: the webhook endpoint, Django's HTTP views, the websocket consumers, and the worker's
background tasks (the applier and the outbox sender)."""

import gc
import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderator.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from moderator.ingest import background  # noqa: E402
from moderator.ingest.endpoint import TelnyxWebhookApp, WebhookRouter, WithBackgroundTasks  # noqa: E402
from moderator.live.consumers import BoardConsumer, ConferenceConsumer  # noqa: E402
from moderator.live.origin import SameOriginValidator  # noqa: E402

websocket_urlpatterns = [
    path("ws/board/", BoardConsumer.as_asgi()),
    path("ws/conferences/<path:conference_id>/", ConferenceConsumer.as_asgi()),
]

webhook_app = TelnyxWebhookApp()

application = WithBackgroundTasks(
    ProtocolTypeRouter(
        {
            # The webhook endpoint bypasses Django's middleware stack: it is the hot path and needs no
            # session, CSRF or auth, only the signature.
            "http": WebhookRouter(django_asgi_app, webhook_app),
            # Only pages of this site (same scheme, host and port) may open the live sockets.
            "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        }
    )
)


def _start_with_daphne() -> None:
    """Daphne speaks no ASGI lifespan: start the background tasks once its reactor runs, so that a
    restarted worker applies and sends what it left behind without waiting for a first request."""
    if "daphne.server" not in sys.modules:
        return
    from twisted.internet import reactor

    def on_the_loop() -> None:
        import asyncio

        asyncio.get_event_loop().call_soon(background.start)

    reactor.callWhenRunning(on_the_loop)


_start_with_daphne()

# Everything imported so far lives as long as the process: keep it out of the garbage collector's full
# collections, which otherwise walk Django's ~200k objects and pause the event loop 100–200 ms every few
# seconds — the acknowledgements' p99 (measured: `manage.py benchmark`).
gc.freeze()
# And collect young objects every 10,000 allocations rather than 700: a batch of the applier allocates tens of
# thousands of short-lived objects (rows, their values), and the default thresholds spent 15 % of applying
# them in the collector (measured: 3.1–3.2k → 3.4–3.5k events/s applied under saturation, on 2 cores).
gc.set_threshold(10_000, 20, 20)
