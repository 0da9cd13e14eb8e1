"""`manage.py demo` (what `make demo` runs) stops everything quietly on Ctrl-C: exit 0, no traceback, no error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from moderator.benchmark.servers import free_port
from tests.fixtures_live_server import ROOT


def test_ctrl_c_stops_the_demo_and_its_processes_quietly(tmp_path):
    port, sim_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "DJANGO_"))}
    env.update({"DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}", "DJANGO_SETTINGS_MODULE": "moderator.settings",
                "PYTHONUNBUFFERED": "1"})
    # Its own session: a terminal's Ctrl-C goes to the foreground process group, as killpg does here.
    demo = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--port", str(port), "--sim-port", str(sim_port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    output = []
    deadline = time.monotonic() + 60
    try:
        for line in demo.stdout:
            output.append(line)
            if "Ctrl-C stops everything" in line or time.monotonic() > deadline:
                break
        assert "Ctrl-C stops everything" in "".join(output), "".join(output)
        time.sleep(1.5)  # the scenario is running: calls, webhooks
        os.killpg(demo.pid, signal.SIGINT)
        rest, _ = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    text = "".join(output) + rest
    assert demo.returncode == 0, text
    assert "Traceback" not in text and "CommandError" not in text and "exited unexpectedly" not in text, text
    assert "stopped." in text
