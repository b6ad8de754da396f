"""``python -m tests.benchmarks [--quick] [--out bench-results.json] [--only NAME ...]``: run every measurement in
one process, print the markdown table and write the JSON."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.benchmarks.report import Figure, Report, machine

#: run order matters: storage reads what the Web Connector and QBO runs counted.
MODULES = ("web_connector", "qbo", "cold_start", "qbxml", "storage", "load")


@dataclass
class Context:
    """What every measurement module gets: the sizes of this run and a place for its raw numbers."""

    quick: bool
    invoices: int
    time_scale: float
    latency_seconds: float
    max_seconds: float
    repeats: int
    qbxml_megabytes: float
    qbxml_builds: int
    wc_baseline_invoices: int
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def context(args: argparse.Namespace) -> Context:
    if args.quick:
        return Context(
            quick=True,
            invoices=args.invoices or 10,
            time_scale=args.time_scale or 20.0,
            latency_seconds=args.latency,
            max_seconds=60,
            repeats=1,
            qbxml_megabytes=0.5,
            qbxml_builds=100,
            wc_baseline_invoices=args.invoices or 10,
        )
    return Context(
        quick=False,
        invoices=args.invoices or 1000,
        time_scale=args.time_scale or 10.0,
        latency_seconds=args.latency,
        max_seconds=1200,
        repeats=5,
        qbxml_megabytes=5.0,
        qbxml_builds=1000,
        wc_baseline_invoices=200,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts (seconds): the smoke test's mode")
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"), help="where to write the JSON")
    parser.add_argument("--only", nargs="*", choices=MODULES, help="run only these measurements")
    parser.add_argument(
        "--invoices", type=int, default=None, help="invoices per run (default 1000, the issue asks 2000; quick 10)"
    )
    parser.add_argument(
        "--time-scale", type=float, default=None, help="QBO: clock S times faster, latency / S (default 10; quick 20)"
    )
    parser.add_argument("--latency", type=float, default=0.2, help="QBO: real per-call latency in seconds")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    ctx = context(args)
    report = Report()
    report.meta = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if ctx.quick else "full",
        "invoices": ctx.invoices,
        "time_scale": ctx.time_scale,
        "latency_seconds": ctx.latency_seconds,
        "machine": machine(),
    }
    failed: list[str] = []
    handler_output = io.StringIO()  # the handlers' logs and metrics (EMF lines) are not the report: kept aside
    for name in args.only or MODULES:
        started = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"tests.benchmarks.bench_{name}")
            with contextlib.redirect_stdout(handler_output):
                figures: list[Figure] = module.run(ctx)
        except Exception as exc:
            traceback.print_exc()
            failed.append(name)
            figures = [Figure(f"{name}.error", name, "measurement failed", None, "", f"{type(exc).__name__}: {exc}")]
        report.figures.extend(figures)
        print(f"[bench] {name} done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        ctx.details.setdefault("seconds", {})[name] = round(time.perf_counter() - started, 1)
    report.details = ctx.details
    report.meta["notes"] = ctx.notes
    report.meta["failed"] = failed
    report.write(args.out)
    args.out.with_suffix(".log").write_text(handler_output.getvalue(), "utf-8")
    print(report.markdown())
    for note in ctx.notes:
        print(f"\n> {note}")
    print(f"\nJSON: {args.out} (handler logs: {args.out.with_suffix('.log')})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
