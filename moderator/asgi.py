"""ASGI entry point: the webhook endpoint, Django's HTTP views and the websocket consumers."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderator.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from moderator.webhooks import WebhookRouter  # noqa: E402

application = ProtocolTypeRouter(
    {
        # The webhook endpoint bypasses Django's middleware stack: it is the hot path and needs no
        # session, CSRF or auth, only the signature.
        "http": WebhookRouter(django_asgi_app),
    }
)
