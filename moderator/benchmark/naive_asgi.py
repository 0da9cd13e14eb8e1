"""``daphne moderator.benchmark.naive_asgi:application``: plain Django, every request through the middleware."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderator.benchmark.naive_settings")
application = get_asgi_application()
