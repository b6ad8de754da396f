"""Storage cost: DynamoDB read and write requests per transferred record, for both targets, end to end (REST ingest,
the transfer worker, and for QuickBooks Desktop the Web Connector conversation). Counted by the botocore hook on
qbsync's own clients during the Web Connector and QBO runs of this same ``make bench`` (so it runs after them)."""

from __future__ import annotations

from typing import Any

from tests.benchmarks.report import Figure

SECTION = "Storage cost (DynamoDB requests per record)"
PHASES = {"web_connector": ("ingest", "worker", "web_connector"), "qbo": ("ingest", "worker")}


def _totals(phases: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    reads = sum(phases[name]["aws"]["dynamodb_reads"] for name in names)
    writes = sum(phases[name]["aws"]["dynamodb_writes"] for name in names)
    items_read = sum(phases[name]["aws"].get("dynamodb_items_read", 0) for name in names)
    split = ", ".join(
        f"{name} {phases[name]['aws']['dynamodb_reads']}r/{phases[name]['aws']['dynamodb_writes']}w" for name in names
    )
    other: dict[str, int] = {}
    for name in names:
        for op, count in phases[name]["aws"]["by_operation"].items():
            if not op.startswith("dynamodb.") and op != "dynamodb.items_read":
                other[op] = other.get(op, 0) + count
    return {"reads": reads, "writes": writes, "items_read": items_read, "split": split, "other_aws": other}


def run(ctx: Any) -> list[Figure]:
    figures: list[Figure] = []
    summary: dict[str, Any] = {}
    targets = (
        ("web_connector", "QuickBooks Desktop", ctx.details.get("web_connector", {}).get("batched")),
        ("qbo", "QuickBooks Online", ctx.details.get("qbo", {}).get("qbsync")),
    )
    for key, label, measured in targets:
        if not measured:
            figures += [
                Figure(f"storage.{key}.{rw}_per_record", SECTION, f"{label}: {rw} per record", None, "", "", note=why)
                for rw, why in (
                    ("reads", "needs its run"),
                    ("writes", "needs its run"),
                    ("items_read", "needs its run"),
                )
            ]
            continue
        records = measured["phases"][key]["transferred"] if key == "web_connector" else measured["entities"]
        totals = _totals(measured["phases"], PHASES[key])
        summary[key] = {**totals, "records": records}
        for rw in ("reads", "writes"):
            figures.append(
                Figure(
                    f"storage.{key}.{rw}_per_record",
                    SECTION,
                    f"{label}: {rw} per record",
                    totals[rw] / records if records else None,
                    "",
                    f"DynamoDB {rw[:-1]} requests (any size) per record transferred; by phase: {totals['split']}",
                )
            )
        figures.append(
            Figure(
                f"storage.{key}.items_read_per_record",
                SECTION,
                f"{label}: items read per record",
                totals["items_read"] / records if records else None,
                "",
                "items those reads read (Query/Scan ScannedCount, GetItem hits): what read capacity pays for",
            )
        )
    ctx.details["storage"] = summary
    return figures
