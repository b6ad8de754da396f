"""Web Connector efficiency: invoices and their customers go in through the REST API, the transfer worker turns them
into connector jobs, and the Web Connector simulator carries them into the fake QuickBooks Desktop company through
the real SOAP endpoint. The same records then go again for a second tenant with ``QBSYNC_WC_MAX_REQUESTS=1`` (one
request per round trip, as the common Web Connector frameworks do): the baseline, in the same run."""

from __future__ import annotations

import time
from typing import Any

import requests

from tests.benchmarks.harness import PASSWORD, ChaliceAdapter, Exchange, Stack, dataset, record_count
from tests.benchmarks.report import Figure, log, median, percentile

SECTION = "Web Connector (QuickBooks Desktop)"
LAMBDA_PAYLOAD_LIMIT = 6_000_000  # bytes, synchronous invocation request/response
KINDS = ("Customer", "Item", "Invoice")


def _conversation(stack: Stack, key: str, username: str, *, max_updates: int, max_seconds: float) -> dict[str, Any]:
    """Run scheduled Web Connector updates until nothing is left (bounded); return what they did."""
    from infra.fake_qbd import FakeCompany
    from infra.wc_sim import WebConnectorSimulator

    company = FakeCompany()
    before = {kind: company.count(kind) for kind in KINDS}
    adapter = ChaliceAdapter(stack.client, stack.meter)
    session = requests.Session()
    session.mount("http://bench.local/", adapter)
    sim = WebConnectorSimulator(
        "http://bench.local/qbwc",
        username,
        PASSWORD,
        company,
        session=session,
        noop_wait_seconds=0,
        max_calls=100_000,
        max_seconds=max_seconds,
    )
    stack.meter.attach()
    counts_before = stack.meter.snapshot()
    started = time.perf_counter()
    round_trips, largest_rq, largest_rs, updates, stops = 0, 0, 0, 0, []
    for _ in range(max_updates):
        result = sim.run_update()
        updates += 1
        stops.append(result.stop_reason)
        round_trips += result.round_trips
        largest_rq = max(largest_rq, result.max_request_bytes)
        largest_rs = max(largest_rs, result.max_response_bytes)
        log(f"Web Connector update {updates}: {result.round_trips} round trips, {result.stop_reason}")
        stack.drain(max_seconds=60)  # outcomes may release waiting records (queued for the next update)
        if not result.ok or result.round_trips == 0:
            break
    wall = time.perf_counter() - started
    aws = stack.meter.snapshot().minus(counts_before)
    transferred = sum(company.count(kind) - before[kind] for kind in KINDS)
    trips = _round_trip_cpu(adapter.exchanges)
    return {
        "updates": updates,
        "stop_reasons": stops,
        "round_trips": round_trips,
        "transferred": transferred,
        "largest_request_bytes": largest_rq,
        "largest_response_bytes": largest_rs,
        "cpu_ms_per_round_trip": [round(c * 1000, 3) for c in trips],
        "cpu_ms_total": round(sum(e.cpu_seconds for e in adapter.exchanges) * 1000, 1),
        "wall_seconds": round(wall, 2),
        "aws": aws.as_dict(),  # the conversation and the worker runs between updates
        "soap_dynamodb": sum(e.dynamo_calls for e in adapter.exchanges),  # while a SOAP call was being handled
        "soap_calls": len(adapter.exchanges),
    }


def _round_trip_cpu(exchanges: list[Exchange]) -> list[float]:
    """Server CPU of each round trip that carried work: its sendRequestXML plus the receiveResponseXML after it."""
    trips: list[float] = []
    pending: Exchange | None = None
    for exchange in exchanges:
        if exchange.operation == "sendRequestXML":
            pending = exchange
        elif exchange.operation == "receiveResponseXML" and pending is not None:
            trips.append(pending.cpu_seconds + exchange.cpu_seconds)
            pending = None
    return trips


def _tenant_run(stack: Stack, prefix: str, invoices: int, max_seconds: float) -> dict[str, Any]:
    settings = {"income_account": "Services", "auto_create_customers": True, "auto_create_items": True}
    key, _tenant = stack.create_tenant(f"Bench Desktop {prefix}", settings)
    username = f"bench-{prefix}"
    stack.create_connector(key, username)
    data = dataset(invoices, prefix=prefix, desktop=True)
    phases: dict[str, Any] = stack.post_records(key, data).phases()
    # The first update reads the company file's lists (matching); the next ones carry the records.
    phases["web_connector"] = _conversation(stack, key, username, max_updates=8, max_seconds=max_seconds)
    return {"records": record_count(data), "phases": phases}


def run(ctx: Any) -> list[Figure]:
    """Each side in a fresh embedded AWS, so neither pays for the other's table."""
    with Stack().running() as stack:
        batched = _tenant_run(stack, "wa", ctx.invoices, ctx.max_seconds)
    with Stack(env={"QBSYNC_WC_MAX_REQUESTS": "1"}).running() as stack:
        single = _tenant_run(stack, "wb", min(ctx.invoices, ctx.wc_baseline_invoices), ctx.max_seconds)
    ctx.details["web_connector"] = {"batched": batched, "one_request_per_round_trip": single}
    return figures(batched, single)


def _per_record(count: float, records: int) -> float | None:
    return count / records if records else None


def figures(batched: dict[str, Any], single: dict[str, Any]) -> list[Figure]:
    wc, base = batched["phases"]["web_connector"], single["phases"]["web_connector"]
    records, base_records = wc["transferred"], base["transferred"]
    note = None
    if records != batched["records"]:
        note = f"only {records} of {batched['records']} records reached the company file"
    subset = None
    base_round_trips = base["round_trips"]
    if base_records and base_records < records:  # the baseline ran on the first invoices only (time)
        subset = f"baseline measured on {base_records} records, round trips scaled to {records}"
        base_round_trips = round(base["round_trips"] * records / base_records)
    return [
        Figure(
            "wc.records_transferred",
            SECTION,
            "Records in the company file",
            records,
            "records",
            f"{batched['records']} sent through REST ({batched['records'] - records} missing); customers, items, "
            "invoices",
            note=note,
        ),
        Figure(
            "wc.round_trips",
            SECTION,
            "sendRequestXML round trips",
            wc["round_trips"],
            "",
            "Web Connector round trips that carried qbXML; fewer is better (each costs a QuickBooks session turn)",
            baseline=base_round_trips,
            baseline_label="1 request per round trip",
            note=subset,
        ),
        Figure(
            "wc.records_per_round_trip",
            SECTION,
            "Records per round trip",
            _per_record(records, wc["round_trips"] or 0) if wc["round_trips"] else None,
            "",
            "requests packed into one QBXMLMsgsRq, on average; the baseline frameworks send one",
            target=50,
            op=">=",
            baseline=_per_record(base_records, base["round_trips"]) if base["round_trips"] else None,
            baseline_label="1 request per round trip",
        ),
        Figure(
            "wc.largest_soap_body",
            SECTION,
            "Largest SOAP body",
            max(wc["largest_request_bytes"], wc["largest_response_bytes"]),
            "bytes",
            "largest request or response on the wire; the limit is Lambda's 6 MB payload cap",
            target=LAMBDA_PAYLOAD_LIMIT,
            op="<=",
        ),
        Figure(
            "wc.cpu_ms_per_round_trip_median",
            SECTION,
            "Server CPU per round trip, median",
            median(wc["cpu_ms_per_round_trip"]),
            "ms",
            "sendRequestXML + receiveResponseXML handling, thread CPU minus time inside AWS calls",
            target=5,
            op="<=",
            baseline=median(base["cpu_ms_per_round_trip"]),
            baseline_label="1 request per round trip",
        ),
        Figure(
            "wc.cpu_ms_per_round_trip_p95",
            SECTION,
            "Server CPU per round trip, p95",
            percentile(wc["cpu_ms_per_round_trip"], 95),
            "ms",
            "the slow round trips (same measure as the median)",
            target=5,
            op="<=",
            baseline=percentile(base["cpu_ms_per_round_trip"], 95),
            baseline_label="1 request per round trip",
        ),
        Figure(
            "wc.cpu_ms_per_record",
            SECTION,
            "Server CPU per record",
            _per_record(wc["cpu_ms_total"], records),
            "ms",
            "all SOAP handling (login to close) divided by records; the cost per record that batching buys down",
            baseline=_per_record(base["cpu_ms_total"], base_records),
            baseline_label="1 request per round trip",
        ),
        Figure(
            "wc.dynamodb_per_record",
            SECTION,
            "DynamoDB requests per record (SOAP)",
            _per_record(wc["soap_dynamodb"], records),
            "",
            "DynamoDB requests made while the Web Connector talks, per record it carried",
            target=1.5,
            op="<=",
            baseline=_per_record(base["soap_dynamodb"], base_records),
            baseline_label="1 request per round trip",
        ),
    ]
