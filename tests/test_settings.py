"""Settings come from the environment; production refuses to start without a secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_settings(
    env: dict[str, str],
    code: str = "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])",
):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    full.update({"DJANGO_SETTINGS_MODULE": "moderator.settings", **env})
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_debug_off_without_secret_key_fails_with_a_clear_message():
    result = run_settings({"DJANGO_DEBUG": "0"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_debug_off_with_secret_key_starts():
    result = run_settings({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "x" * 50})
    assert result.returncode == 0, result.stderr


def test_defaults_are_sqlite_in_wal_mode_and_in_memory_channel_layer():
    code = (
        "from django.conf import settings; from django.db import connection; c = connection.cursor(); "
        "c.execute('PRAGMA journal_mode'); print(c.fetchone()[0], settings.CHANNEL_LAYERS['default']['BACKEND'])"
    )
    result = run_settings({}, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wal", "moderator.live.channel_layer.InMemoryChannelLayer"]


def test_database_and_redis_urls_switch_backends():
    code = (
        "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'], "
        "settings.CHANNEL_LAYERS['default']['BACKEND'])"
    )
    result = run_settings(
        {"DATABASE_URL": "postgres://u:p@127.0.0.1:5432/db", "REDIS_URL": "redis://127.0.0.1:6379/0"}, code
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "channels_redis.core.RedisChannelLayer"]
