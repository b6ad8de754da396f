"""Cold start: how long each Lambda handler module takes to import, next to ``import boto3`` alone (which every
handler pays anyway), and the memory a fresh interpreter holds after the import. Each import runs in a fresh
subprocess with ``-X importtime``; the figure is the median of the repeats (bytecode caches warmed once first, as
in a deployed package)."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.benchmarks.report import Figure

SECTION = "Cold start (Lambda handler import)"
ROOT = Path(__file__).resolve().parents[2]
TARGET_RATIO = 1.3
#: dummy settings: handlers must import without touching AWS or reading the environment eagerly
ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "dummy",
    "AWS_SECRET_ACCESS_KEY": "dummy",
    "QBSYNC_STAGE": "bench",
    "QBSYNC_TABLE": "qbsync-bench",
    "QBSYNC_TRANSFER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench.fifo",
    "QBSYNC_EVENT_BUS": "bench",
    "POWERTOOLS_SERVICE_NAME": "qbsync",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "PATH": "/usr/bin:/bin",
}
_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")
# Peak RSS from VmHWM: ru_maxrss would also count the parent's memory at fork time (Linux keeps it across exec).
_PROBE = """
import resource, sys, time
sys.path.insert(0, {folder!r})
started = time.perf_counter()
import {module}
elapsed = time.perf_counter() - started
try:
    with open('/proc/self/status') as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith('VmHWM:'))
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print('BENCH', elapsed, peak)
"""


def handlers() -> dict[str, Path]:
    return {path.parent.name: path.parent for path in sorted((ROOT / "functions").glob("*/app.py"))}


def _once(module: str, folder: Path | None) -> dict[str, float]:
    code = _PROBE.format(folder=str(folder or ROOT), module=module)
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"importing {module} from {folder} failed: {done.stderr[-2000:]}")
    cumulative = None
    for line in done.stderr.splitlines():
        found = _LINE.match(line)
        if found and found.group(4) == module and found.group(3) == " ":  # the top-level import of the probe
            cumulative = int(found.group(2)) / 1000
    marker = next(line for line in done.stdout.splitlines() if line.startswith("BENCH "))
    _, elapsed, maxrss = marker.split()
    return {
        "importtime_ms": cumulative if cumulative is not None else float(elapsed) * 1000,
        "wall_ms": float(elapsed) * 1000,
        "maxrss_mb": int(maxrss) / 1024,  # kilobytes
    }


def measure(module: str, folder: Path | None, repeats: int) -> dict[str, Any]:
    if repeats > 1:
        _once(module, folder)  # warm the bytecode caches (quick mode: the test suite has warmed them already)
    runs = [_once(module, folder) for _ in range(repeats)]
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]} | {"runs": runs}


def run(ctx: Any) -> list[Figure]:
    repeats = ctx.repeats
    boto3 = measure("boto3", None, repeats)
    results = {name: measure("app", folder, repeats) for name, folder in handlers().items()}
    ctx.details["cold_start"] = {"boto3": boto3, "handlers": results, "repeats": repeats}
    return figures(boto3, results)


def figures(boto3: dict[str, Any], results: dict[str, dict[str, Any]]) -> list[Figure]:
    out = [
        Figure(
            "cold_start.boto3_import_ms",
            SECTION,
            "`import boto3` alone",
            boto3["importtime_ms"],
            "ms",
            f"the yardstick: what any Python Lambda using AWS pays; {boto3['maxrss_mb']:.0f} MB resident after it",
        )
    ]
    for name, result in results.items():
        ratio = result["importtime_ms"] / boto3["importtime_ms"] if boto3["importtime_ms"] else None
        out.append(
            Figure(
                f"cold_start.{name}.ratio_to_boto3",
                SECTION,
                f"`functions/{name}` import / boto3",
                ratio,
                "x",
                f"{result['importtime_ms']:.0f} ms to import the handler module (-X importtime, median)",
                target=TARGET_RATIO,
                op="<=",
            )
        )
        out.append(
            Figure(
                f"cold_start.{name}.memory_mb",
                SECTION,
                f"`functions/{name}` memory after import",
                result["maxrss_mb"],
                "MB",
                "peak resident set of a fresh interpreter after the import (VmHWM); Lambda bills from 128 MB",
                baseline=boto3["maxrss_mb"],
                baseline_label="import boto3",
            )
        )
    return out


if __name__ == "__main__":  # handy on its own: python -m tests.benchmarks.bench_cold_start
    print(json.dumps({"boto3": measure("boto3", None, 1)}, indent=2))
