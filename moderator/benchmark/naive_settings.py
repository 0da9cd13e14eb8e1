"""The product's settings with the naive peer's URLconf: same database, channel layer and middleware."""

from moderator.settings import *  # noqa: F403

ROOT_URLCONF = "moderator.benchmark.naive"
