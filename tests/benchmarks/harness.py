"""The product, in-process, driven through its public entry points: the Chalice app (``chalice.test.Client``), the
transfer worker's Lambda handler fed by the local SQS event-source loop, and the SOAP endpoint reached by the Web
Connector simulator through a requests transport adapter. AWS is moto (``mock_aws``) built from ``template.yaml``.

Meters: :class:`AwsMeter` counts the product's AWS requests (a botocore ``before-call``/``after-call`` hook on the
clients from :mod:`qbsync.aws`) and the thread CPU spent inside them, so server CPU can be reported without AWS.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from tests.benchmarks.report import log

READ_OPS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
WRITE_OPS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
METERED_SERVICES = ("dynamodb", "sqs", "events", "kms", "secretsmanager")
ADMIN_KEY = "bench-admin-key-0123456789"
PASSWORD = "correct horse battery staple"


# ---- meters ----------------------------------------------------------------------------------------------------


@dataclass
class AwsCounts:
    calls: Counter[str] = field(default_factory=Counter)  # "dynamodb.PutItem" → n

    def service(self, name: str) -> int:
        """Requests to one service (the ``dynamodb.items_read`` tally is not a request)."""
        return sum(n for key, n in self.calls.items() if key.startswith(f"{name}.") and key != "dynamodb.items_read")

    @property
    def dynamo_items_read(self) -> int:
        return self.calls.get("dynamodb.items_read", 0)

    @property
    def dynamo_reads(self) -> int:
        return sum(n for key, n in self.calls.items() if key.startswith("dynamodb.") and key[9:] in READ_OPS)

    @property
    def dynamo_writes(self) -> int:
        return sum(n for key, n in self.calls.items() if key.startswith("dynamodb.") and key[9:] in WRITE_OPS)

    @property
    def dynamo(self) -> int:
        return self.service("dynamodb")

    def minus(self, earlier: AwsCounts) -> AwsCounts:
        return AwsCounts(Counter({k: v - earlier.calls.get(k, 0) for k, v in self.calls.items()}) + Counter())

    def plus(self, other: AwsCounts) -> AwsCounts:
        return AwsCounts(self.calls + other.calls)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dynamodb_reads": self.dynamo_reads,
            "dynamodb_writes": self.dynamo_writes,
            "dynamodb": self.dynamo,
            "dynamodb_items_read": self.dynamo_items_read,
            "by_operation": dict(sorted(self.calls.items())),
        }


@dataclass
class Flow:
    """What REST ingest and the transfer worker did for one batch of records."""

    ingest: AwsCounts = field(default_factory=AwsCounts)
    worker: AwsCounts = field(default_factory=AwsCounts)
    ingest_seconds: float = 0.0
    worker_seconds: float = 0.0
    worker_cpu_seconds: float = 0.0  # the worker thread's CPU (its AWS calls into moto included)
    messages: int = 0

    def phases(self) -> dict[str, Any]:
        return {
            "ingest": {"aws": self.ingest.as_dict(), "wall_seconds": round(self.ingest_seconds, 3)},
            "worker": {
                "aws": self.worker.as_dict(),
                "wall_seconds": round(self.worker_seconds, 3),
                "cpu_seconds": round(self.worker_cpu_seconds, 3),
                "messages": self.messages,
            },
        }


class AwsMeter:
    """Counts the product's AWS requests and the thread CPU spent between ``before-call`` and ``after-call``."""

    def __init__(self) -> None:
        self.counts = AwsCounts()
        self._local = threading.local()
        self._lock = threading.Lock()

    def attach(self) -> None:
        """Hook every client :mod:`qbsync.aws` hands out (it caches one per service and settings)."""
        from qbsync import aws

        for service in METERED_SERVICES:
            client = aws.client(service)
            if getattr(client, "_bench_meter", None) is self:
                continue
            client._bench_meter = self
            client.meta.events.register("before-call", self._before)
            client.meta.events.register("after-call", self._after)

    def _before(self, model: Any, **_: Any) -> None:
        service = model.service_model.endpoint_prefix
        with self._lock:
            self.counts.calls[f"{service}.{model.name}"] += 1
        self._local.started = time.thread_time()

    def _after(self, model: Any, parsed: Any = None, **_: Any) -> None:
        if model.service_model.endpoint_prefix == "dynamodb" and isinstance(parsed, dict):
            items = _items_read(model.name, parsed)
            if items:
                with self._lock:
                    self.counts.calls["dynamodb.items_read"] += items
        started = getattr(self._local, "started", None)
        if started is not None:
            self._local.inside = self.inside() + time.thread_time() - started
            self._local.started = None

    def inside(self) -> float:
        """Thread CPU seconds this thread has spent inside AWS calls so far."""
        return float(getattr(self._local, "inside", 0.0))

    def snapshot(self) -> AwsCounts:
        with self._lock:
            return AwsCounts(Counter(self.counts.calls))


def _items_read(operation: str, parsed: dict[str, Any]) -> int:
    """Items a read request read (what read capacity is paid for, roughly)."""
    if operation in ("Query", "Scan"):  # capacity is paid on what was scanned, before any filter
        return int(parsed.get("ScannedCount", parsed.get("Count", 0)))
    if operation == "GetItem":
        return 1 if parsed.get("Item") else 0
    if operation == "BatchGetItem":
        return sum(len(items) for items in parsed.get("Responses", {}).values())
    if operation == "TransactGetItems":
        return len(parsed.get("Responses", []))
    return 0


# ---- HTTP into the Chalice app without a socket ----------------------------------------------------------------


@dataclass
class Exchange:
    """One HTTP request handled by the app: its SOAP operation, sizes and CPU (without AWS calls)."""

    operation: str
    request_bytes: int
    response_bytes: int
    cpu_seconds: float
    wall_seconds: float
    dynamo_calls: int


class ChaliceAdapter(BaseAdapter):
    """A requests transport that hands each request to ``chalice.test.Client`` in this thread and meters it."""

    def __init__(self, client: Any, meter: AwsMeter) -> None:
        super().__init__()
        self.client = client
        self.meter = meter
        self.exchanges: list[Exchange] = []

    def send(self, request: requests.PreparedRequest, **_: Any) -> requests.Response:  # type: ignore[override]
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        parts = urlsplit(request.url or "")
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {k: v for k, v in request.headers.items() if isinstance(v, str)}
        headers.setdefault("Host", parts.netloc)
        action = headers.get("SOAPAction", "").strip('"').rsplit("/", 1)[-1]
        dynamo_before = self.meter.snapshot().dynamo
        aws_before, cpu_before, wall_before = self.meter.inside(), time.thread_time(), time.perf_counter()
        answer = self.client.http.request(request.method or "GET", path, headers=headers, body=body)
        cpu = time.thread_time() - cpu_before - (self.meter.inside() - aws_before)
        self.exchanges.append(
            Exchange(
                operation=action or f"{request.method} {parts.path}",
                request_bytes=len(body),
                response_bytes=len(answer.body or b""),
                cpu_seconds=max(cpu, 0.0),
                wall_seconds=time.perf_counter() - wall_before,
                dynamo_calls=self.meter.snapshot().dynamo - dynamo_before,
            )
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(answer.headers or {})
        response._content = answer.body if isinstance(answer.body, bytes) else (answer.body or "").encode("utf-8")
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        return None


# ---- the stack -------------------------------------------------------------------------------------------------


def speed_up_moto() -> None:
    """moto's DynamoDB Query compares the partition key of *every item in the table* (``DynamoType.__eq__`` through a
    chain of type checks), so a benchmark-sized table makes each Query cost tens of milliseconds of pure moto. Give
    string and number keys a direct comparison: same answers, same request counts, minutes instead of an hour. Only
    wall time changes (time inside AWS calls is excluded from the CPU figures anyway)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    if getattr(DynamoType, "_bench_fast", False):
        return
    slow_eq, slow_lt = DynamoType.__eq__, DynamoType.__lt__

    def fast_eq(self: Any, other: Any) -> bool:
        kind = self.type
        if kind == "S" and type(other) is DynamoType and other.type == "S":
            return bool(self.value == other.value)
        return bool(slow_eq(self, other))

    def fast_lt(self: Any, other: Any) -> bool:
        if self.type == "S" and type(other) is DynamoType and other.type == "S":
            return bool(self.value < other.value)
        return bool(slow_lt(self, other))

    # moto's in-memory backends are not thread-safe ("dictionary changed size during iteration" under load); the
    # real services are. One lock around every mocked request stands in for that.
    from moto.core.botocore_stubber import BotocoreStubber

    unlocked = BotocoreStubber.__call__
    lock = threading.RLock()

    def locked(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        with lock:
            return unlocked(self, event_name, request, **kwargs)

    BotocoreStubber.__call__ = locked  # type: ignore[method-assign]
    DynamoType.__eq__ = fast_eq  # type: ignore[method-assign,assignment]
    DynamoType.__lt__ = fast_lt  # type: ignore[method-assign,assignment]
    DynamoType.__hash__ = lambda self: hash((self.type, self.cast_value))  # type: ignore[method-assign]
    DynamoType._bench_fast = True  # type: ignore[attr-defined]


class Stack:
    """moto + the template's resources + the app, the transfer worker and (optionally) a QBO emulator."""

    def __init__(self, *, emulator: Any = None, env: dict[str, str] | None = None) -> None:
        self.emulator = emulator
        self.extra_env = env or {}
        self.meter = AwsMeter()
        self._saved_env: dict[str, str] = {}

    @contextmanager
    def running(self) -> Iterator[Stack]:
        from chalice.test import Client
        from moto import mock_aws

        from infra.aws_bootstrap import apply_env, bootstrap
        from infra.functions import load_handler
        from infra.worker import SqsWorker
        from qbsync.api.services import use_services
        from qbsync.store.factory import reset_store
        from qbsync.transfers import use_dispatcher

        speed_up_moto()
        self._saved_env = dict(os.environ)
        for name in list(os.environ):
            if name.startswith(("QBSYNC_", "QBO_", "AWS_")):
                del os.environ[name]
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": "ERROR",
                "POWERTOOLS_METRICS_NAMESPACE": "qbsync-bench",
                "POWERTOOLS_METRICS_DISABLED": "true",
            }
        )
        try:
            with mock_aws():
                self.resources = bootstrap(None, environ={})
                env = dict(self.resources.env)
                env.update(
                    {"QBSYNC_ADMIN_KEY": ADMIN_KEY, "QBSYNC_STAGE": "local", "QBSYNC_PUBLIC_URL": "http://bench.local"}
                )
                if self.emulator is not None:
                    env.update(
                        {
                            "QBO_ENVIRONMENT": self.emulator.discovery_url,
                            "QBO_API_BASE_URL": self.emulator.api_base_url,
                            "QBO_CLIENT_ID": self.emulator.client_id,
                            "QBO_CLIENT_SECRET": self.emulator.client_secret,
                        }
                    )
                env.update(self.extra_env)
                self.resources.env = env
                apply_env(self.resources)
                reset_store()
                use_services(None)
                use_dispatcher(None)
                self.app = load_handler("api", self.resources)
                self.worker = SqsWorker(self.resources, functions=["TransferWorkerFunction"])
                with Client(self.app) as client:
                    self.client = client
                    self.meter.attach()
                    yield self
        finally:
            os.environ.clear()
            os.environ.update(self._saved_env)
            from qbsync import aws
            from qbsync.settings import reset_settings

            reset_settings()
            aws.reset_clients()
            reset_store()
            use_services(None)
            use_dispatcher(None)

    # ---- REST --------------------------------------------------------------------------------------------------

    def container(self) -> Any:
        """A test client over a fresh instance of the API app: one Lambda container. Chalice keeps the request being
        handled on the app object, so concurrent requests need one app each, as they would in Lambda."""
        from chalice.test import Client

        from infra.functions import load_handler

        return Client(load_handler("api", self.resources, fresh=True))

    def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        body: Any = None,
        expect: int = 200,
        client: Any = None,
    ) -> Any:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode() if body is not None else b""
        answer = (client or self.client).http.request(method, path, headers=headers, body=data)
        if answer.status_code != expect:
            raise RuntimeError(f"{method} {path}: HTTP {answer.status_code} {answer.body[:500]!r}")
        try:
            return json.loads(answer.body) if answer.body else None
        except ValueError:
            return answer.body

    def create_tenant(self, name: str, settings: dict[str, Any]) -> tuple[str, str]:
        created = self.call("POST", "/v1/tenants", key=ADMIN_KEY, body={"name": name}, expect=201)
        key = created["api_key"]
        if settings:
            self.call("PATCH", "/v1/tenant/settings", key=key, body=settings)
        return key, created["tenant_id"]

    def create_connector(self, key: str, username: str) -> dict[str, Any]:
        body = {"name": username, "username": username, "password": PASSWORD}
        return dict(self.call("POST", "/v1/connectors", key=key, body=body, expect=201))

    def connect_qbo(self, key: str, realm: str) -> None:
        """The OAuth flow through the emulator: connect URL → consent → callback into the app."""
        assert self.emulator is not None
        self.emulator.authorize_realm = realm
        url = self.call("GET", "/v1/qbo/connect", key=key)["authorization_url"]
        consent = requests.get(url, allow_redirects=False, timeout=30)
        landing = urlsplit(consent.headers["Location"])
        answer = self.client.http.request("GET", f"{landing.path}?{landing.query}", headers={"Host": "bench.local"})
        if answer.status_code != 200:
            raise RuntimeError(f"QBO callback: HTTP {answer.status_code} {answer.body[:300]!r}")
        self.drain(max_seconds=30)
        status = self.call("GET", "/v1/qbo/connection", key=key)
        if status["status"] != "connected":
            raise RuntimeError(f"QBO connection did not complete: {status}")

    def post_records(self, key: str, data: dict[str, list[dict[str, Any]]], chunk: int = 100) -> Flow:
        """POST every record (lists first, ``chunk`` per request, as a SaaS app would) and let the transfer worker
        drain the queue after each request, as Lambda would meanwhile. Counts ingest and worker apart."""
        self.meter.attach()  # hook any client built since (idempotent)
        flow = Flow()
        for kind in ("customers", "items", "invoices", "payments"):
            records = data.get(kind, [])
            for start in range(0, len(records), chunk):
                mark, wall = self.meter.snapshot(), time.perf_counter()
                self.call("POST", f"/v1/{kind}", key=key, body=records[start : start + chunk], expect=202)
                flow.ingest_seconds += time.perf_counter() - wall
                flow.ingest = flow.ingest.plus(self.meter.snapshot().minus(mark))
                mark, wall, cpu = self.meter.snapshot(), time.perf_counter(), time.thread_time()
                flow.messages += self.drain()
                flow.worker_seconds += time.perf_counter() - wall
                flow.worker_cpu_seconds += time.thread_time() - cpu
                flow.worker = flow.worker.plus(self.meter.snapshot().minus(mark))
            if records:
                log(
                    f"{len(records)} {kind} posted and drained (ingest {flow.ingest_seconds:.0f} s, worker "
                    f"{flow.worker_seconds:.0f} s)"
                )
        return flow

    # ---- the transfer worker -----------------------------------------------------------------------------------

    def drain(self, *, max_seconds: float = 600, max_polls: int = 100_000, idle_polls: int = 2) -> int:
        """Run the transfer worker until its queue stays empty; returns the messages handled (bounded)."""
        handled, idle = 0, 0
        deadline = time.monotonic() + max_seconds
        for _ in range(max_polls):
            results = self.worker.run_once(wait_seconds=0)
            handled += sum(r.deleted for r in results)
            idle = 0 if results else idle + 1
            if idle >= idle_polls or time.monotonic() > deadline:
                break
        return handled


# ---- the data set ----------------------------------------------------------------------------------------------


def dataset(invoices: int, *, prefix: str, desktop: bool) -> dict[str, list[dict[str, Any]]]:
    """``invoices`` invoices for ``invoices // 10`` customers (at least one) and 5 items, 1-3 lines each."""
    customer_count = max(1, invoices // 10)
    customers = [
        {"id": f"{prefix}c-{i}", "name": f"{prefix.upper()} Customer {i:04d}", "email": f"{prefix}{i}@example.com"}
        for i in range(customer_count)
    ]
    items = [
        {
            "id": f"{prefix}i-{i}",
            "name": f"{prefix.upper()} Service {i}",
            "sku": f"{prefix.upper()}-{i}",
            "price": "25.00",
        }
        for i in range(5)
    ]
    invoice_list = []
    for i in range(invoices):
        lines = [
            {"item_id": items[(i + n) % 5]["id"], "quantity": str(n + 1), "rate": "25.00"} for n in range(1 + i % 3)
        ]
        total = sum(25 * (n + 1) for n in range(1 + i % 3))
        invoice_list.append(
            {
                "id": f"{prefix}inv-{i}",
                "customer_id": customers[i % customer_count]["id"],
                "date": "2026-11-02",
                "doc_number": f"{prefix.upper()}{i:06d}"[:11] if desktop else f"{prefix.upper()}-{i:06d}",
                "lines": lines,
                "total": f"{total}.00",
            }
        )
    return {"customers": customers, "items": items, "invoices": invoice_list}


def record_count(data: dict[str, list[dict[str, Any]]]) -> int:
    return sum(len(v) for v in data.values())
