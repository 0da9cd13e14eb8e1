"""ASGI entry point: the webhook endpoint, Django's HTTP views and the websocket consumers."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderator.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from moderator.ingest.endpoint import WebhookRouter  # noqa: E402
from moderator.live.consumers import BoardConsumer, ConferenceConsumer  # noqa: E402

websocket_urlpatterns = [
    path("ws/board/", BoardConsumer.as_asgi()),
    path("ws/conferences/<str:conference_id>/", ConferenceConsumer.as_asgi()),
]

application = ProtocolTypeRouter(
    {
        # The webhook endpoint bypasses Django's middleware stack: it is the hot path and needs no
        # session, CSRF or auth, only the signature.
        "http": WebhookRouter(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
