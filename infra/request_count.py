"""Count what a synced record costs in AWS requests: the figures behind the README's cost estimate.

    python -m infra.request_count [--invoices 200]

Runs the local stack (embedded AWS, real HTTP API, the transfer worker handler fed from SQS the way Lambda feeds
it) with a tenant connected to the QuickBooks Online emulator, posts the acceptance run's record mix scaled to
``--invoices`` (per 1,000 invoices: 200 customers, 50 items, 400 payments; 100 records per POST) and waits until the
last record reached QuickBooks. Every AWS call qbsync makes is counted at botocore's ``before-parameter-build``
and ``after-call`` events on qbsync's own clients (the local SQS poller, which stands in for Lambda's event source
mapping, is counted separately as invocations). DynamoDB capacity is worked out from the items' JSON sizes:
1 write unit per started KB written (twice in a transaction), 1 read unit per started 4 KB read (strongly
consistent reads, the worst case).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import requests

from qbsync import aws

KINDS = ("customers", "items", "invoices", "payments")


class AwsCallCounter:
    """Counts operations and DynamoDB capacity of every client :func:`qbsync.aws.client` hands out."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.units: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._hooked: set[int] = set()
        self._original: Callable[..., Any] | None = None

    def install(self) -> None:
        self._original = aws.client
        aws.reset_clients()

        def counting_client(service: str, settings: Any = None) -> Any:
            assert self._original is not None
            client = self._original(service, settings)
            if id(client) not in self._hooked:
                self._hooked.add(id(client))
                client.meta.events.register("before-parameter-build", self._before)
                client.meta.events.register("after-call", self._after)
            return client

        aws.client = counting_client  # type: ignore[assignment]

    def uninstall(self) -> None:
        if self._original is not None:
            aws.client = self._original  # type: ignore[assignment]
            aws.reset_clients()

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.units.clear()

    @staticmethod
    def _size(value: Any) -> int:
        return len(json.dumps(value, default=str))

    def _before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        service, name = model.service_model.service_id, model.name
        units: Counter[str] = Counter()
        if service == "DynamoDB":
            if name in ("PutItem", "UpdateItem", "DeleteItem"):
                size = self._size(params.get("Item") or params.get("Key") or {}) + self._size(
                    params.get("ExpressionAttributeValues") or {}
                )
                units["dynamodb_write_units"] += max(1, math.ceil(size / 1024))
            elif name == "BatchWriteItem":
                for requests_ in params.get("RequestItems", {}).values():
                    for request in requests_:
                        item = (request.get("PutRequest") or {}).get("Item") or {}
                        units["dynamodb_write_units"] += max(1, math.ceil(self._size(item) / 1024))
            elif name == "TransactWriteItems":
                for action in params.get("TransactItems", []):
                    body = next(iter(action.values()))
                    size = self._size(body.get("Item") or body.get("Key") or {})
                    units["dynamodb_write_units"] += 2 * max(1, math.ceil(size / 1024))
        elif service == "SQS" and name in ("SendMessage", "SendMessageBatch"):
            units["sqs_messages"] += len(params.get("Entries", [None]))
        elif service == "EventBridge" and name == "PutEvents":
            units["eventbridge_events"] += len(params.get("Entries", []))
        with self._lock:
            self.calls[f"{service}.{name}"] += 1
            self.units.update(units)

    def _after(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        if model.service_model.service_id != "DynamoDB":
            return
        units = 0
        if model.name == "GetItem":
            units = max(1, math.ceil(self._size(parsed.get("Item") or {}) / 4096))
        elif model.name == "Query":
            units = max(1, math.ceil(self._size(parsed.get("Items") or []) / 4096))
        elif model.name == "BatchGetItem":
            for items in (parsed.get("Responses") or {}).values():
                units += sum(max(1, math.ceil(self._size(item) / 4096)) for item in items)
        if units:
            with self._lock:
                self.units["dynamodb_read_units"] += units


def record_mix(invoices: int) -> dict[str, list[dict[str, Any]]]:
    """The acceptance run's mix (per 1,000 invoices: 200 customers, 50 items, 400 payments), scaled."""
    n_customers, n_items, n_payments = max(1, invoices // 5), max(1, invoices // 20), invoices * 2 // 5
    customers = [
        {"id": f"rc-{i}", "name": f"Count Customer {i}", "email": f"rc{i}@example.com"} for i in range(n_customers)
    ]
    items = [{"id": f"ri-{i}", "name": f"Count Item {i}", "sku": f"RI-{i}", "price": "25.00"} for i in range(n_items)]
    invoice_list = [
        {
            "id": f"rinv-{i}",
            "customer_id": f"rc-{i % n_customers}",
            "date": "2026-11-01",
            "doc_number": f"R{i:05d}",
            "lines": [{"item_id": f"ri-{i % n_items}", "quantity": "4", "rate": "25.00"}],
            "total": "100.00",
        }
        for i in range(invoices)
    ]
    payments = [
        {
            "id": f"rpay-{i}",
            "customer_id": f"rc-{i % n_customers}",
            "date": "2026-11-05",
            "amount": "100.00",
            "applied_to": [{"invoice_id": f"rinv-{i}", "amount": "100.00"}],
        }
        for i in range(n_payments)
    ]
    return {"customers": customers, "items": items, "invoices": invoice_list, "payments": payments}


def measure(invoices: int = 200, timeout: float = 600.0) -> dict[str, Any]:
    from infra.functions import load_handler
    from infra.local_stack import LocalStack
    from infra.worker import SqsWorker

    counter = AwsCallCounter()
    counter.install()
    invocations = {"count": 0, "messages": 0, "seconds": 0.0}
    try:
        # Always the emulator and a fresh embedded AWS, whatever QuickBooks or AWS settings this shell carries.
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("QBSYNC_", "QBO_", "AWS_ENDPOINT"))}
        with LocalStack(port=0, worker=False, scheduler=False, prefix="qbsync-count", environ=environ) as stack:
            assert stack.resources is not None
            transfer = load_handler("TransferWorkerFunction", stack.resources)

            def counted(event: dict[str, Any], context: Any) -> Any:
                started = time.perf_counter()
                try:
                    return transfer(event, context)
                finally:
                    invocations["count"] += 1
                    invocations["messages"] += len(event.get("Records", []))
                    invocations["seconds"] += time.perf_counter() - started

            worker = SqsWorker(stack.resources, handlers={"TransferWorkerFunction": counted}, wait_seconds=1)
            worker.start()
            try:
                return _run(stack, counter, invocations, invoices, timeout)
            finally:
                worker.stop()
    finally:
        counter.uninstall()


def _run(stack: Any, counter: AwsCallCounter, invocations: dict[str, Any], invoices: int, timeout: float) -> dict:
    base, admin = stack.base_url, {"Authorization": f"Bearer {stack.admin_key}"}
    created = requests.post(f"{base}/v1/tenants", json={"name": "Count Co"}, headers=admin, timeout=30).json()
    auth = {"Authorization": f"Bearer {created['api_key']}"}
    settings = {"auto_create_customers": True, "auto_create_items": True, "income_account": "Services"}
    assert requests.patch(f"{base}/v1/tenant/settings", json=settings, headers=auth, timeout=30).status_code == 200
    emulator = stack.qbo_emulator
    realm = emulator.add_company(name="Count Co Books")
    emulator.authorize_realm = realm
    url = requests.get(f"{base}/v1/qbo/connect", headers=auth, timeout=30).json()["authorization_url"]
    requests.get(requests.get(url, allow_redirects=False, timeout=30).headers["Location"], timeout=60)
    deadline = time.monotonic() + timeout
    while requests.get(f"{base}/v1/qbo/connection", headers=auth, timeout=30).json()["status"] != "connected":
        if time.monotonic() > deadline:
            raise TimeoutError("the QuickBooks Online connection did not finish its initial import")
        time.sleep(0.5)

    data = record_mix(invoices)
    counter.reset()
    invocations.update(count=0, messages=0, seconds=0.0)
    api_requests = 0
    started = time.monotonic()
    for kind in KINDS:
        for start in range(0, len(data[kind]), 100):
            answer = requests.post(f"{base}/v1/{kind}", json=data[kind][start : start + 100], headers=auth, timeout=300)
            api_requests += 1
            if answer.status_code != 202:
                raise RuntimeError(f"POST /v1/{kind}: {answer.status_code} {answer.text[:300]}")
    company = emulator.company(realm)
    expected = {"Customer": len(data["customers"]), "Invoice": invoices, "Payment": len(data["payments"])}
    while any(len(company.entities[entity]) < count for entity, count in expected.items()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"records did not all reach QuickBooks within {timeout:.0f} s")
        time.sleep(0.5)
    time.sleep(2)  # the last batch's bookkeeping after its QuickBooks write
    elapsed = time.monotonic() - started
    stored = _stored_bytes(stack)
    calls, units = dict(counter.calls), dict(counter.units)
    records = sum(len(v) for v in data.values())
    totals = {
        "api_requests": api_requests,
        "worker_invocations": invocations["count"],
        "worker_messages": invocations["messages"],
        "sqs_requests": calls.get("SQS.SendMessageBatch", 0) + calls.get("SQS.SendMessage", 0)
        + 2 * invocations["count"],  # the event source mapping's ReceiveMessage + DeleteMessageBatch per batch
        "dynamodb_write_units": units.get("dynamodb_write_units", 0),
        "dynamodb_read_units": units.get("dynamodb_read_units", 0),
        "eventbridge_events": units.get("eventbridge_events", 0),
        "kms_requests": sum(v for k, v in calls.items() if k.startswith("KMS.")),
        "secrets_manager_requests": sum(v for k, v in calls.items() if k.startswith("Secrets Manager.")),
        "sqs_messages": units.get("sqs_messages", 0),
        "stored_bytes": stored,
    }  # fmt: skip
    return {
        "records": {kind: len(v) for kind, v in data.items()} | {"total": records},
        "seconds": round(elapsed, 1),
        "worker_local_ms_per_invocation": round(1000 * invocations["seconds"] / max(1, invocations["count"]), 1),
        "aws_calls": dict(sorted(calls.items())),
        "totals": totals,
        "per_invoice": {k: round(v / invoices, 3) for k, v in totals.items() if isinstance(v, int | float)},
        "per_record": {k: round(v / records, 3) for k, v in totals.items() if isinstance(v, int | float)},
    }


# AWS list prices, us-east-1, USD (Lambda arm64, API Gateway REST, DynamoDB on-demand, SQS FIFO, EventBridge custom
# events, KMS, Secrets Manager, CloudWatch); free tiers ignored. Check https://aws.amazon.com/pricing before relying
# on them.
PRICES = {
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second": 0.0000133334,
    "api_request": 3.50 / 1e6,
    "dynamodb_wru": 0.625 / 1e6,
    "dynamodb_rru": 0.125 / 1e6,
    "sqs_fifo_request": 0.50 / 1e6,
    "eventbridge_event": 1.00 / 1e6,
    "kms_request": 0.03 / 1e4,
    "logs_gb": 0.50,
    "xray_trace": 5.00 / 1e6,
    "dynamodb_gb_month": 0.25 + 0.20,  # storage + point-in-time recovery
    "kms_key_month": 1.00,
    "secret_month": 0.40,
    "alarm_metric_month": 0.10,
}
# What a count on loopback cannot measure, stated as assumptions.
ASSUMPTIONS = {
    "memory_gb": 0.5,  # the template's MemorySize: 512
    "worker_seconds_per_message": 0.4,  # one QuickBooks round trip (~150-300 ms) plus DynamoDB
    "api_seconds_per_request": 1.0,  # a POST of 100 records
    "worker_messages_per_invocation": 1.0,  # worst case: many tenants, one message per FIFO group per batch
    "log_kb_per_record": 2.0,
    "fixed_secrets": 2,  # admin key, Intuit client secret
    "fixed_alarm_metrics": 6,  # three single-metric alarms and one alarm over three metrics
    "scheduled_invocations_month": 2880 + 1440 + 8640,  # every 15, 30 and 5 minutes
    "scheduled_seconds": 0.5,
    "idle_sqs_polls_month": 5 * 3 * 43_800,  # event source mapping: ~5 long-polls of 20 s, around the clock
}


def cost_lines(per_invoice: dict[str, float], invoices_per_month: int) -> tuple[list[tuple[str, str, float]], float]:
    """(item, arithmetic, USD) for a month with ``invoices_per_month`` invoices and their share of the other records."""
    p, a, n = PRICES, ASSUMPTIONS, invoices_per_month
    messages = per_invoice["worker_messages"] * n
    worker_invocations = messages / a["worker_messages_per_invocation"]
    api = per_invoice["api_requests"] * n
    sqs = per_invoice["sqs_requests"] * n - 2 * per_invoice["worker_invocations"] * n + 2 * worker_invocations
    gb_s = worker_invocations * a["worker_seconds_per_message"] * a["memory_gb"]
    gb_s += api * a["api_seconds_per_request"] * a["memory_gb"]
    scheduled_gb_s = a["scheduled_invocations_month"] * a["scheduled_seconds"] * a["memory_gb"]
    log_gb = per_invoice["worker_messages"] * n * a["log_kb_per_record"] / 1024 / 1024
    stored_gb = per_invoice.get("stored_bytes", 0.0) * n / 1024**3
    lines = [
        ("Lambda requests", f"({api:,.0f} API + {worker_invocations:,.0f} worker) x $0.20/M",
         (api + worker_invocations) * p["lambda_request"]),
        ("Lambda compute", f"{gb_s:,.0f} GB-s x $0.0000133334", gb_s * p["lambda_gb_second"]),
        ("API Gateway", f"{api:,.0f} requests x $3.50/M", api * p["api_request"]),
        ("DynamoDB writes", f"{per_invoice['dynamodb_write_units'] * n:,.0f} WRU x $0.625/M",
         per_invoice["dynamodb_write_units"] * n * p["dynamodb_wru"]),
        ("DynamoDB reads", f"{per_invoice['dynamodb_read_units'] * n:,.0f} RRU x $0.125/M",
         per_invoice["dynamodb_read_units"] * n * p["dynamodb_rru"]),
        ("SQS FIFO", f"{sqs:,.0f} requests x $0.50/M", sqs * p["sqs_fifo_request"]),
        ("EventBridge", f"{per_invoice['eventbridge_events'] * n:,.0f} events x $1.00/M",
         per_invoice["eventbridge_events"] * n * p["eventbridge_event"]),
        ("KMS requests", f"{per_invoice['kms_requests'] * n:,.0f} x $0.03/10k",
         per_invoice["kms_requests"] * n * p["kms_request"]),
        ("CloudWatch Logs", f"{log_gb:.3f} GB x $0.50", log_gb * p["logs_gb"]),
        ("DynamoDB storage + PITR", f"{stored_gb:.3f} GB added x $0.45 a GB-month", stored_gb * p["dynamodb_gb_month"]),
        ("X-Ray", f"<= {worker_invocations + api:,.0f} traces x $5.00/M", (worker_invocations + api) * p["xray_trace"]),
        ("fixed: KMS key", "1 x $1.00", p["kms_key_month"]),
        ("fixed: secrets", f"{a['fixed_secrets']} x $0.40", a["fixed_secrets"] * p["secret_month"]),
        ("fixed: alarms", f"{a['fixed_alarm_metrics']} metrics x $0.10",
         a["fixed_alarm_metrics"] * p["alarm_metric_month"]),
        ("fixed: schedules", f"{a['scheduled_invocations_month']:,} runs, {scheduled_gb_s:,.0f} GB-s",
         a["scheduled_invocations_month"] * p["lambda_request"] + scheduled_gb_s * p["lambda_gb_second"]),
        ("fixed: idle queue polling", f"{a['idle_sqs_polls_month']:,} requests x $0.50/M",
         a["idle_sqs_polls_month"] * p["sqs_fifo_request"]),
    ]  # fmt: skip
    return lines, sum(cost for _, _, cost in lines)


def print_costs(per_invoice: dict[str, float], months: tuple[int, ...] = (1_000, 100_000)) -> None:
    for n in months:
        lines, total = cost_lines(per_invoice, n)
        print(f"\n{n:,} invoices a month:")
        for item, arithmetic, cost in lines:
            print(f"  {item:<26}{arithmetic:<48}${cost:>8.2f}")
        print(f"  {'total':<74}${total:>8.2f}")


def _stored_bytes(stack: Any) -> int:
    """What the table holds after the run (items' JSON sizes; the tenant and its connection included)."""
    import boto3

    dynamodb = boto3.client("dynamodb", endpoint_url=stack.aws_endpoint, region_name=stack.resources.region)
    total = 0
    for page in dynamodb.get_paginator("scan").paginate(TableName=stack.resources.physical_ids["Table"]):
        total += sum(len(json.dumps(item)) for item in page["Items"])
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.request_count", description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=200, help="invoices in the run (the mix scales with it)")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--cost", action="store_true", help="also print the monthly cost at 1k and 100k invoices")
    args = parser.parse_args(argv)
    if args.invoices < 5:
        parser.error("--invoices must be at least 5")
    with contextlib.redirect_stdout(sys.stderr):  # the handlers' logs and metrics: keep stdout for the figures
        result = measure(args.invoices, args.timeout)
    print(json.dumps(result, indent=2))
    if args.cost:
        print_costs(result["per_invoice"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
