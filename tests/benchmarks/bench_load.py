"""A bounded load run (issue 9): many Web Connectors and QuickBooks Online tenants syncing at once for a fixed time.

Every Web Connector is a thread running scheduled updates against the SOAP endpoint (each with its own fake company);
the transfer worker drains the queue in its own thread (as Lambda would); a producer posts new records to random
tenants until the time is up. Then everything settles (bounded) and the books are checked: every record posted must
be in its QuickBooks company exactly once. Reported: errors, records lost, SOAP latency p50/p99.

All of it shares one Python process (and moto), so latencies include GIL contention between the 70-odd threads: they
are an upper bound for one Lambda container, not a prediction for API Gateway + Lambda.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.benchmarks.harness import PASSWORD, ChaliceAdapter, Stack
from tests.benchmarks.report import Figure, percentile

SECTION = "Load (many tenants at once)"
QBO_SETTINGS = {"auto_create_customers": True, "auto_create_items": True, "income_account": "Services"}
DESKTOP_SETTINGS = QBO_SETTINGS  # matching against the company file needs auto-create for new customers and items


@dataclass
class Tenant:
    key: str
    kind: str  # desktop | online
    name: str
    posted: dict[str, set[str]] = field(default_factory=lambda: {"customers": set(), "invoices": set()})
    company: Any = None  # FakeCompany (desktop) or emulator CompanyState (online)
    username: str = ""


@dataclass
class Tally:
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, text: str) -> None:
        with self.lock:
            if len(self.errors) < 200:
                self.errors.append(text)


def _records(tenant: Tenant, serial: int) -> dict[str, list[dict[str, Any]]]:
    """One customer and two invoices for it (an item exists from the start)."""
    tag = f"{tenant.name}-{serial}"
    customer = {"id": f"c-{tag}", "name": f"Load {tag}"[:41], "email": f"{tag}@example.com"}
    invoices = [
        {
            "id": f"inv-{tag}-{n}",
            "customer_id": customer["id"],
            "date": "2026-11-03",
            "doc_number": f"L{serial:06d}{n}",
            "lines": [{"item_id": f"i-{tenant.name}", "quantity": "1", "rate": "10.00"}],
            "total": "10.00",
        }
        for n in range(2)
    ]
    return {"customers": [customer], "invoices": invoices}


def _post(
    stack: Stack, tenant: Tenant, data: dict[str, list[dict[str, Any]]], tally: Tally, client: Any = None
) -> None:
    for kind in ("customers", "invoices"):
        try:
            stack.call("POST", f"/v1/{kind}", key=tenant.key, body=data[kind], expect=202, client=client)
        except Exception as exc:
            tally.error(f"POST {kind} for {tenant.name}: {exc}")
            continue
        tenant.posted[kind].update(r["id"] for r in data[kind])


def run(ctx: Any) -> list[Figure]:
    from infra.fake_qbd import FakeCompany
    from infra.qbo_emulator import QboEmulator
    from infra.wc_sim import WebConnectorSimulator

    desktops, onlines, duration = (2, 1, 2.0) if ctx.quick else getattr(ctx, "load_shape", (50, 20, 30.0))
    tally = Tally()
    adapters: list[ChaliceAdapter] = []
    with QboEmulator() as emulator:
        emulator.set_limits(per_minute=500, per_second=10, batch_per_minute=40)
        emulator.faults.latency_seconds = 0.02
        stack = Stack(emulator=emulator)
        with stack.running():
            tenants: list[Tenant] = []
            for i in range(desktops):
                key, _ = stack.create_tenant(f"Load Desktop {i}", DESKTOP_SETTINGS)
                tenant = Tenant(key, "desktop", f"d{i}", company=FakeCompany(), username=f"load-d{i}")
                stack.create_connector(key, tenant.username)
                tenants.append(tenant)
            for i in range(onlines):
                key, _ = stack.create_tenant(f"Load Online {i}", QBO_SETTINGS)
                realm = emulator.add_company(name=f"Load Online {i}")
                stack.connect_qbo(key, realm)
                tenants.append(Tenant(key, "online", f"o{i}", company=emulator.company(realm)))
            for tenant in tenants:  # the item every invoice uses, and a first batch of work
                item = {"id": f"i-{tenant.name}", "name": f"Load item {tenant.name}", "sku": f"L-{tenant.name}"}
                stack.call("POST", "/v1/items", key=tenant.key, body=[{**item, "price": "10.00"}], expect=202)
                _post(stack, tenant, _records(tenant, 0), tally)
            stop = threading.Event()

            containers = {t.name: stack.container() for t in tenants[:desktops]}  # one app per Web Connector
            producer_client = stack.container()

            def web_connector(tenant: Tenant) -> None:
                adapter = ChaliceAdapter(containers[tenant.name], stack.meter)
                adapters.append(adapter)
                session = requests.Session()
                session.mount("http://bench.local/", adapter)
                sim = WebConnectorSimulator(
                    "http://bench.local/qbwc",
                    tenant.username,
                    PASSWORD,
                    tenant.company,
                    session=session,
                    noop_wait_seconds=0,
                    max_seconds=120,
                )
                for _ in range(10_000):
                    result = sim.run_update()
                    if not result.ok and result.stop_reason != "busy":
                        tally.error(f"{tenant.name}: {result.stop_reason} {result.qbwc_error or result.last_error}")
                    if stop.is_set():
                        return
                    stop.wait(0.2 if result.round_trips else 0.5)

            def worker() -> None:
                for _ in range(1_000_000):
                    try:
                        results = stack.worker.run_once(wait_seconds=0)
                    except Exception as exc:
                        tally.error(f"worker: {exc}")
                        results = []
                    for result in results:
                        if result.failed or result.raised:
                            tally.error(f"worker: {result.failed} message(s) returned to the queue")
                    if stop.is_set() and not results:
                        return
                    if not results:
                        time.sleep(0.05)

            def producer() -> None:
                rng = random.Random(8)
                serial = 1
                while not stop.is_set():
                    tenant = rng.choice(tenants)
                    _post(stack, tenant, _records(tenant, serial), tally, producer_client)
                    serial += 1
                    stop.wait(0.05)

            threads = [threading.Thread(target=web_connector, args=(t,), daemon=True) for t in tenants[:desktops]]
            threads += [threading.Thread(target=worker, daemon=True), threading.Thread(target=producer, daemon=True)]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            time.sleep(duration)
            stop.set()
            for thread in threads:
                thread.join(timeout=300)
            elapsed = time.monotonic() - started
            stuck = [t.name for t in threads if t.is_alive()]
            # Settle: whatever is still queued goes through, and each Web Connector runs once more (bounded).
            stack.drain(max_seconds=300)
            for tenant in tenants[:desktops]:
                settle = ChaliceAdapter(stack.client, stack.meter)
                session = requests.Session()
                session.mount("http://bench.local/", settle)
                for _ in range(5):
                    sim = WebConnectorSimulator(
                        "http://bench.local/qbwc",
                        tenant.username,
                        PASSWORD,
                        tenant.company,
                        session=session,
                        noop_wait_seconds=0,
                    )
                    result = sim.run_update()
                    stack.drain(max_seconds=60)
                    if result.round_trips == 0:
                        break
    lost, extra, posted = _audit(tenants)
    latencies = [e.wall_seconds * 1000 for a in adapters for e in a.exchanges]
    ctx.details["load"] = {
        "web_connectors": desktops,
        "qbo_tenants": onlines,
        "duration_seconds": round(elapsed, 1),
        "records_posted": posted,
        "records_lost": lost,
        "duplicates": extra,
        "soap_calls": len(latencies),
        "errors": tally.errors,
        "stuck_threads": stuck,
    }
    return _figures(desktops, onlines, elapsed, posted, lost, extra, latencies, tally.errors + stuck)


def _audit(tenants: list[Tenant]) -> tuple[int, int, int]:
    """(records posted but not in QuickBooks, duplicates, records posted) over every tenant."""
    lost = extra = posted = 0
    for tenant in tenants:
        want_customers, want_invoices = len(tenant.posted["customers"]), len(tenant.posted["invoices"])
        posted += want_customers + want_invoices
        if tenant.kind == "desktop":
            customers, invoices = tenant.company.count("Customer"), tenant.company.count("Invoice")
        else:
            entities = tenant.company.entities
            customers = sum(1 for c in entities["Customer"].values() if c["DisplayName"].startswith("Load "))
            invoices = len(entities["Invoice"])
        lost += max(0, want_customers - customers) + max(0, want_invoices - invoices)
        extra += max(0, customers - want_customers) + max(0, invoices - want_invoices)
    return lost, extra, posted


def _figures(
    desktops: int,
    onlines: int,
    elapsed: float,
    posted: int,
    lost: int,
    extra: int,
    latencies: list[float],
    errors: list[str],
) -> list[Figure]:
    shape = f"{desktops} Web Connectors + {onlines} QBO tenants for {elapsed:.0f} s"
    return [
        Figure(
            "load.errors",
            SECTION,
            "Errors",
            len(errors),
            "",
            f"{shape}: failed updates, refused POSTs, worker failures"
            + (f"; first: {errors[0][:80]}" if errors else ""),
            target=0,
            op="<=",
        ),
        Figure(
            "load.records_lost",
            SECTION,
            "Records lost",
            lost,
            "",
            f"of {posted} posted, not in their QuickBooks company after the run settled ({extra} duplicated)",
            target=0,
            op="<=",
        ),
        Figure(
            "load.soap_latency_p50",
            SECTION,
            "SOAP latency p50",
            percentile(latencies, 50),
            "ms",
            f"{len(latencies)} SOAP calls in one process (GIL shared by all threads: an upper bound)",
        ),
        Figure(
            "load.soap_latency_p99",
            SECTION,
            "SOAP latency p99",
            percentile(latencies, 99),
            "ms",
            "the slowest 1 % of those calls",
        ),
    ]
