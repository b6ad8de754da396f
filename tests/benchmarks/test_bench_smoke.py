"""``make bench`` stays runnable: the runner in ``--quick`` mode (tiny counts, seconds) produces every figure.

Only the plumbing is checked here — the numbers are goals reported by ``make bench``, never asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

FIGURES = [
    "wc.records_transferred",
    "wc.round_trips",
    "wc.records_per_round_trip",
    "wc.largest_soap_body",
    "wc.cpu_ms_per_round_trip_median",
    "wc.cpu_ms_per_round_trip_p95",
    "wc.cpu_ms_per_record",
    "wc.dynamodb_per_record",
    "qbo.entities_per_minute",
    "qbo.percent_of_ceiling",
    "qbo.speedup_vs_python_quickbooks",
    "qbo.requests_per_entity",
    "qbo.requests_per_minute",
    "qbo.throttled",
    "cold_start.boto3_import_ms",
    "qbxml.parse_seconds",
    "qbxml.parse_peak_mb",
    "qbxml.build_seconds",
    "qbxml.build_peak_mb",
    "storage.web_connector.reads_per_record",
    "storage.web_connector.writes_per_record",
    "storage.qbo.reads_per_record",
    "storage.qbo.writes_per_record",
    "storage.web_connector.items_read_per_record",
    "storage.qbo.items_read_per_record",
    "load.errors",
    "load.records_lost",
    "load.soap_latency_p50",
    "load.soap_latency_p99",
]
HANDLERS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))


def test_quick_run_writes_every_figure_with_its_target_or_baseline(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QBSYNC_", "QBO_", "AWS_"))}
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks", "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    figures = {f["id"]: f for f in report["figures"]}
    expected = FIGURES + [f"cold_start.{name}.{what}" for name in HANDLERS for what in ("ratio_to_boto3", "memory_mb")]
    assert sorted(set(expected) - set(figures)) == []
    try:
        import quickbooks  # noqa: F401

        baseline_present = True
    except ImportError:
        baseline_present = False
    for fid in expected:
        figure = figures[fid]
        assert figure["explain"], fid  # every figure says what it means
        skipped = fid == "qbo.speedup_vs_python_quickbooks" and not baseline_present
        assert (figure["value"] is None) == skipped, figure
    # the comparisons the issue asks for are there: targets, and baselines measured in the same run
    assert figures["wc.records_per_round_trip"]["target"] == 50
    # one request per round trip (the two list reads of the first update count as round trips too)
    assert 0.5 < figures["wc.records_per_round_trip"]["baseline"] <= 1
    assert figures["wc.records_transferred"]["value"] == report["details"]["web_connector"]["batched"]["records"]
    assert figures["qbo.throttled"]["target"] == 0
    assert figures["load.records_lost"]["value"] == 0 and figures["load.errors"]["value"] == 0
    assert figures[f"cold_start.{HANDLERS[0]}.ratio_to_boto3"]["target"] == 1.3
    if not baseline_present:
        assert "python-quickbooks is not installed" in done.stdout
    # the table a reader sees: one row per figure, with its limit next to it
    assert "| Figure | Value | Target / baseline |" in done.stdout
    assert done.stdout.count("\n| ") >= len(expected)
