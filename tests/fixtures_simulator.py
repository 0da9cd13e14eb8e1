"""Pytest fixtures for the Telnyx simulator (registered from tests/conftest.py)."""

from __future__ import annotations

import pytest
import telnyx

from moderator.simulator.testing import running_simulator


@pytest.fixture
def simulator():
    """A simulator that sends no webhooks (API and phone side only)."""
    with running_simulator(None, media_seconds=0.2) as sim:
        yield sim


@pytest.fixture
def telnyx_sdk(simulator):
    """The real telnyx SDK pointed at the simulator, retries off so tests count requests exactly."""
    return telnyx.Telnyx(api_key=simulator.api_key, base_url=simulator.base_url, max_retries=0, timeout=5)
