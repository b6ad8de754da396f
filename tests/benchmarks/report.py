"""Figures, their comparison with a target or a baseline, and the two outputs: a markdown table and a JSON file."""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Op = Literal[">=", "<="]


@dataclass
class Figure:
    """One measured number, next to its limit (a target) or its baseline, explained in one line."""

    id: str
    section: str
    label: str
    value: float | None
    unit: str
    explain: str
    target: float | None = None  # the goal; ``op`` says which side of it is good
    op: Op | None = None
    baseline: float | None = None  # the same thing measured the common way, in the same run
    baseline_label: str | None = None
    note: str | None = None  # why a value is missing, or a caveat

    @property
    def met(self) -> bool | None:
        if self.value is None or self.target is None or self.op is None:
            return None
        return self.value >= self.target if self.op == ">=" else self.value <= self.target

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["met"] = self.met
        return data


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # raw numbers per module, for whoever digs deeper

    def to_json(self) -> dict[str, Any]:
        return {"meta": self.meta, "figures": [f.to_json() for f in self.figures], "details": self.details}

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n", "utf-8")

    def markdown(self) -> str:
        lines = [
            "| Figure | Value | Target / baseline | | What it says |",
            "|---|---:|---|:-:|---|",
        ]
        section = None
        for fig in self.figures:
            if fig.section != section:
                section = fig.section
                lines.append(f"| **{section}** | | | | |")
            explain = fig.explain + (f" ({fig.note})" if fig.note else "")
            lines.append(
                f"| {fig.label} | {fmt(fig.value, fig.unit)} | {_reference(fig)} | {_mark(fig.met)} | {explain} |"
            )
        return "\n".join(lines)


def _reference(fig: Figure) -> str:
    parts = []
    if fig.target is not None and fig.op is not None:
        parts.append(f"target {fig.op} {fmt(fig.target, fig.unit)}")
    if fig.baseline is not None:
        parts.append(f"{fig.baseline_label or 'baseline'}: {fmt(fig.baseline, fig.unit)}")
    return "; ".join(parts) or "-"


def _mark(met: bool | None) -> str:
    return {True: "ok", False: "**miss**", None: ""}[met]


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "%":
        return f"{value:.0f} %"
    if unit == "x":
        return f"{value:.2f}x"
    if unit in ("bytes", "B"):
        return f"{value / 1e6:.2f} MB" if value >= 1e6 else f"{value / 1e3:.1f} kB"
    if unit == "MB":
        return f"{value:.1f} MB"
    if abs(value) >= 100 or float(value).is_integer():
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


_STARTED = time.monotonic()


def log(message: str) -> None:
    """Progress on stderr (a full run takes minutes); the report itself goes to stdout."""
    print(f"[bench {time.monotonic() - _STARTED:6.0f}s]   {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (``pct`` in 0-100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def machine() -> dict[str, Any]:
    import os

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
