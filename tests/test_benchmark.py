"""`manage.py benchmark` keeps working: every figure is produced (the figures themselves are not judged
here: timing assertions would make the suite flaky), and a short soak loses nothing and converges."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
KEYS = (
    "ingest_per_s", "limit_per_s", "naive_per_s", "ingest_vs_limit", "ingest_vs_naive", "ack_p99_ms",
    "ack_per_s", "applied_per_s", "apply_lag_p99_ms", "applied_board_open_per_s",
    "ws_p99_ms", "fanout_per_s", "fanout_p99_ms", "render_ms", "render_queries", "rss_mb",
    "captions_applied_per_s", "captions_p99_ms",
    "town_hall_ack_p99_ms", "town_hall_ack_max_ms", "town_hall_page_ms", "town_hall_applied_per_s",
    "limit_cpu_us_per_event", "product_cpu_us_per_event", "ack_only_per_s", "ack_only_vs_limit",
)


def benchmark(tmp_path: Path, *args: str) -> tuple[dict, str]:
    out = tmp_path / "out.json"
    result = subprocess.run(
        [sys.executable, "manage.py", "benchmark", *args, "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=280,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(out.read_text()), result.stdout


@pytest.mark.timeout(300)
def test_quick_benchmark_produces_every_figure(tmp_path):
    figures, printed = benchmark(tmp_path, "--quick")
    for key in KEYS:
        assert isinstance(figures[key], int | float) and not isinstance(figures[key], bool), key
        assert math.isfinite(figures[key]) and figures[key] > 0, (key, figures[key])
    # The ratios are the ratios of the measured rates (ingest counts an event once applied, not acknowledged),
    # and the table shows each figure with its goal.
    assert figures["ingest_per_s"] == figures["applied_per_s"]
    assert figures["ingest_vs_limit"] == pytest.approx(figures["applied_per_s"] / figures["limit_per_s"])
    assert figures["ingest_vs_naive"] == pytest.approx(figures["applied_per_s"] / figures["naive_per_s"])
    assert figures["ack_only_vs_limit"] == pytest.approx(figures["ack_only_per_s"] / figures["limit_per_s"])
    assert figures["render_queries"] == figures["render_queries_small"]  # a count, not a time
    assert figures["captions_missing"] == 0  # every socket got every caption line
    # The town hall: every webhook stored, the moderator's page as a fresh load, each tenth caller's hand up.
    assert figures["town_hall_lost"] == figures["town_hall_refused"] == 0
    assert figures["town_hall_page_matches"] is True
    assert figures["town_hall_hands"] == figures["town_hall_callers"] // 10
    for label in ("applied ÷ limit", "applied ÷ naive", "the board open", "ack latency", "acknowledged → applied",
                  "webhook → browser", "deliveries/s", "render", "resident memory", "webhook → caption", "town hall",
                  "moderator's page whole", "server CPU per event", "one core's bound", "acknowledged only ÷ limit", "SQLite", "in-memory channel layer"):
        assert label in printed, label


@pytest.mark.timeout(300)
def test_short_soak_loses_nothing_and_every_socket_converges(tmp_path):
    figures, printed = benchmark(tmp_path, "--soak", "3", "--soak-rate", "100", "--soak-sockets", "20")
    assert figures["soak_events"] == 300
    assert figures["soak_stored"] == 300
    assert figures["soak_lost"] == 0
    assert figures["soak_failed"] == 0
    assert figures["soak_converged"] is True
    assert "lost 0" in printed
