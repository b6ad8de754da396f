"""QuickBooks Online throughput: the same invoices (and their customers and items) go through qbsync — REST ingest,
the transfer worker's Lambda handler, the QBO client with its per-realm limiter — into the emulator running with
Intuit's limits (500 requests/min, 10/s, 40 batch calls/min of up to 30 operations) and a fixed per-call latency.
Baseline in the same run: a plain python-quickbooks loop (one call per entity) into another company of the same
emulator.

Time is scaled by S so the run takes minutes: the emulator and qbsync's limiter run on a clock S times faster than
the wall clock (Intuit's real limits, so every window is S times shorter) and the latency is divided by S. Each run's
real-time duration is then worked out from what it measured: wall time, plus every emulator call's latency back at
full length, plus every limiter pause back at full length (:func:`real_seconds`). CPU is not scaled: at S > 1 the
emulator sees the caller S times slower than it would be, so a caller that is limit-bound in reality can look
latency-bound; the rate is therefore also capped by what the documented limits allow for the calls it made, and
``--time-scale 1`` gives the definitive figure (slowly).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from tests.benchmarks.harness import Stack, dataset
from tests.benchmarks.report import Figure

SECTION = "QuickBooks Online (per realm)"
PER_MINUTE, PER_SECOND, BATCH_PER_MINUTE, BATCH_SIZE = 500, 10, 40, 30
#: the most entities one realm can take per minute under Intuit's documented limits: 40 batch calls x 30 operations
CEILING_PER_MINUTE = BATCH_PER_MINUTE * BATCH_SIZE
ENTITIES = ("Customer", "Item", "Invoice")
SETTINGS = {"auto_create_customers": True, "auto_create_items": True, "income_account": "Services"}


def _counts(company: Any) -> dict[str, int]:
    return {kind: len(company.entities[kind]) for kind in ENTITIES}


class ScaledTime:
    """A clock S times faster than the wall clock, and the sleep that goes with it (pauses are recorded)."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.origin, self.origin_monotonic = time.time(), time.monotonic()
        self.paused = 0.0  # seconds of scaled time the limiters asked to sleep
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.origin + (time.time() - self.origin) * self.scale

    def monotonic(self) -> float:
        return self.origin_monotonic + (time.monotonic() - self.origin_monotonic) * self.scale

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.paused += max(seconds, 0.0)
        time.sleep(max(seconds, 0.0) / self.scale)


@contextmanager
def scaled_limiters(scaled: ScaledTime) -> Iterator[None]:
    """qbsync's per-realm limiters (built by the product per client) take the scaled clock and sleep by default."""
    from qbsync.qbo import limiter

    saved = []
    for cls, clock in ((limiter.DynamoRealmLimiter, scaled.clock), (limiter.MemoryRealmLimiter, scaled.monotonic)):
        defaults = cls.__init__.__kwdefaults__
        if not defaults or "clock" not in defaults or "sleep" not in defaults:
            raise RuntimeError(f"{cls.__name__} no longer takes clock=/sleep=: update tests/benchmarks/bench_qbo.py")
        saved.append((defaults, dict(defaults)))
        defaults.update(clock=clock, sleep=scaled.sleep)
    try:
        yield
    finally:
        for defaults, original in saved:
            defaults.clear()
            defaults.update(original)


class EmulatorCalls:
    """Counts the calls this process makes to the emulator's v3 API and the wall time spent waiting for them."""

    def __init__(self, base_url: str) -> None:
        self.prefix = f"{base_url}/v3/"
        self.calls = 0
        self.seconds = 0.0

    @contextmanager
    def counting(self) -> Iterator[EmulatorCalls]:
        import requests

        original = requests.Session.send
        meter = self

        def send(session: Any, request: Any, **kwargs: Any) -> Any:
            if not str(request.url).startswith(meter.prefix):
                return original(session, request, **kwargs)
            started = time.perf_counter()
            try:
                return original(session, request, **kwargs)
            finally:
                meter.calls += 1
                meter.seconds += time.perf_counter() - started

        requests.Session.send = send  # type: ignore[method-assign]
        try:
            yield self
        finally:
            requests.Session.send = original  # type: ignore[method-assign]


def _batches(company: Any, since: int) -> int:
    return sum(1 for entry in company.request_log[since:] if "/batch" in entry["path"] and entry.get("status") != 429)


def _qbsync_run(emulator: Any, scaled: ScaledTime, invoices: int, latency: float) -> dict[str, Any]:
    stack = Stack(emulator=emulator)
    with stack.running(), scaled_limiters(scaled):
        key, _tenant = stack.create_tenant("Bench Online", SETTINGS)
        realm = emulator.add_company(name="Bench Online Books")
        stack.connect_qbo(key, realm)
        company = emulator.company(realm)
        data = dataset(invoices, prefix="qa", desktop=False)
        before, log_before = _counts(company), len(company.request_log)
        requests_before, throttled_before = company.counts["requests"], company.counts["throttled"]
        paused_before = scaled.paused
        with EmulatorCalls(emulator.base_url).counting() as calls:
            flow = stack.post_records(key, data)
        after = _counts(company)
    return {
        "records": sum(len(v) for v in data.values()),
        "entities": sum(after[k] - before[k] for k in ENTITIES),
        "by_entity": {k: after[k] - before[k] for k in ENTITIES},
        "requests": company.counts["requests"] - requests_before,
        "batch_requests": _batches(company, log_before),
        "throttled": company.counts["throttled"] - throttled_before,
        "wall_seconds": round(flow.worker_seconds, 3),
        "cpu_seconds": round(flow.worker_cpu_seconds, 3),
        "http_calls": calls.calls,
        "http_seconds": round(calls.seconds, 3),
        "limiter_pause_seconds": round(scaled.paused - paused_before, 3),
        "real_seconds": round(
            real_seconds(flow.worker_seconds, calls.calls, scaled.paused - paused_before, latency, scaled.scale), 3
        ),
        "messages": flow.messages,
        "phases": flow.phases(),
    }


def _baseline_run(emulator: Any, scale: float, invoices: int, latency: float, max_seconds: float) -> dict[str, Any]:
    """python-quickbooks, the way its README shows: one ``save()`` per customer, item and invoice."""
    from quickbooks import QuickBooks
    from quickbooks.exceptions import QuickbooksException
    from quickbooks.objects.account import Account

    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"  # the emulator speaks plain HTTP on loopback
    realm = emulator.add_company(name="Baseline Books")
    company = emulator.company(realm)
    tokens = emulator.issue_tokens(realm)

    class EmulatedQuickBooks(QuickBooks):  # type: ignore[misc]
        api_url_v3 = f"{emulator.api_base_url}/v3"

    auth = SimpleNamespace(
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        client_id=emulator.client_id,
        environment="production",
    )
    qb = EmulatedQuickBooks(auth_client=auth, refresh_token=tokens["refresh_token"], company_id=realm, minorversion=75)
    data = dataset(invoices, prefix="qb", desktop=False)
    income = Account.filter(Name="Services", qb=qb)[0]
    before, log_before = _counts(company), len(company.request_log)
    requests_before, throttled_before = company.counts["requests"], company.counts["throttled"]
    deadline = time.monotonic() + max_seconds
    retries = 0

    def save(obj: Any) -> Any:
        nonlocal retries
        for _ in range(10):
            try:
                return obj.save(qb=qb)
            except QuickbooksException as exc:
                if "3001" not in str(getattr(exc, "error_code", "")) and "429" not in str(exc):
                    raise
                retries += 1
                time.sleep(1 / scale)  # a naive loop backs off a second (scaled) and tries again
        raise RuntimeError("throttled ten times in a row")

    started, cpu = time.perf_counter(), time.thread_time()
    counting = EmulatorCalls(emulator.base_url)
    with counting.counting():
        _baseline_loop(data, {}, save, income, deadline)
    wall, cpu = time.perf_counter() - started, time.thread_time() - cpu
    after = _counts(company)
    return {
        "entities": sum(after[k] - before[k] for k in ENTITIES),
        "requests": company.counts["requests"] - requests_before,
        "batch_requests": _batches(company, log_before),
        "throttled": company.counts["throttled"] - throttled_before,
        "retries": retries,
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "http_calls": counting.calls,
        "http_seconds": round(counting.seconds, 3),
        "real_seconds": round(real_seconds(wall, counting.calls, float(retries), latency, scale), 3),
    }


def _baseline_loop(data: dict[str, Any], ids: dict[str, str], save: Any, income: Any, deadline: float) -> None:
    from quickbooks.objects.base import EmailAddress, Ref
    from quickbooks.objects.customer import Customer
    from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
    from quickbooks.objects.invoice import Invoice
    from quickbooks.objects.item import Item

    for c in data["customers"]:
        customer = Customer()
        customer.DisplayName = c["name"]
        customer.PrimaryEmailAddr = EmailAddress()
        customer.PrimaryEmailAddr.Address = c["email"]
        ids[c["id"]] = save(customer).Id
    for i in data["items"]:
        item = Item()
        item.Name, item.Sku, item.Type, item.UnitPrice = i["name"], i["sku"], "Service", float(i["price"])
        item.IncomeAccountRef = income.to_ref()
        ids[i["id"]] = save(item).Id
    for inv in data["invoices"]:
        if time.monotonic() > deadline:
            break
        invoice = Invoice()
        invoice.DocNumber = inv["doc_number"]
        invoice.TxnDate = inv["date"]
        customer_ref = Ref()
        customer_ref.value = ids[inv["customer_id"]]
        invoice.CustomerRef = customer_ref
        for line in inv["lines"]:
            sales_line = SalesItemLine()
            sales_line.Amount = float(line["quantity"]) * float(line["rate"])
            sales_line.SalesItemLineDetail = SalesItemLineDetail()
            item_ref = Ref()
            item_ref.value = ids[line["item_id"]]
            sales_line.SalesItemLineDetail.ItemRef = item_ref
            sales_line.SalesItemLineDetail.Qty = float(line["quantity"])
            sales_line.SalesItemLineDetail.UnitPrice = float(line["rate"])
            invoice.Line.append(sales_line)
        save(invoice)


def run(ctx: Any) -> list[Figure]:
    from infra.qbo_emulator import QboEmulator

    scale, latency = ctx.time_scale, ctx.latency_seconds
    scaled = ScaledTime(scale)
    with QboEmulator(clock=scaled.clock) as emulator:
        emulator.set_limits(per_minute=PER_MINUTE, per_second=PER_SECOND, batch_per_minute=BATCH_PER_MINUTE)
        emulator.faults.latency_seconds = latency / scale
        ours = _qbsync_run(emulator, scaled, ctx.invoices, latency)
        try:
            import quickbooks  # noqa: F401
        except ImportError:
            baseline = None
            ctx.notes.append(
                "QBO baseline skipped: python-quickbooks is not installed (`make bench` installs the bench extra)."
            )
        else:
            baseline = _baseline_run(emulator, scale, ctx.invoices, latency, ctx.max_seconds)
    ctx.details["qbo"] = {
        "time_scale": scale,
        "latency_seconds": latency,
        "qbsync": ours,
        "python_quickbooks": baseline,
    }
    return figures(ours, baseline, scale)


def real_seconds(wall: float, calls: int, paused: float, latency: float, scale: float) -> float:
    """A scaled run's duration in real time: its wall time with every emulator call's latency (``latency / S`` in the
    run) and every limiter pause (``paused / S``, ``paused`` in scaled seconds) put back at full length. CPU and the
    rest count as measured."""
    return wall + calls * (latency - latency / scale) + paused * (1 - 1 / scale)


def entities_per_minute(run: dict[str, Any]) -> tuple[float | None, bool]:
    """(entities per real minute, whether the documented limits capped it) for one run."""
    if not run["entities"] or run["real_seconds"] <= 0:
        return None, False
    measured = run["entities"] / run["real_seconds"] * 60
    # The most this mix of calls can get through one realm per minute: 500 requests and 40 batch calls.
    caps = [run["entities"] * PER_MINUTE / run["requests"]] if run["requests"] else []
    if run["batch_requests"]:
        caps.append(run["entities"] * BATCH_PER_MINUTE / run["batch_requests"])
    cap = min(caps) if caps else measured
    return min(measured, cap), cap < measured


def figures(ours: dict[str, Any], baseline: dict[str, Any] | None, scale: float) -> list[Figure]:
    rate, capped = entities_per_minute(ours)
    base_rate, _ = entities_per_minute(baseline) if baseline else (None, False)
    skipped = None if baseline else "baseline skipped: python-quickbooks not installed"
    missing = ours["records"] - ours["entities"]
    notes = [f"{missing} of {ours['records']} records did not reach QuickBooks" if missing else None, skipped]
    notes.append("capped by the documented limits" if capped else None)

    def per_minute(run: dict[str, Any] | None, key: str) -> float | None:
        return run[key] / run["real_seconds"] * 60 if run and run["real_seconds"] > 0 else None

    return [
        Figure(
            "qbo.entities_per_minute",
            SECTION,
            "Entities per minute per realm",
            rate,
            "/min",
            f"customers, items and invoices written per real-time minute (run at time scale x{scale:g})",
            baseline=base_rate,
            baseline_label="python-quickbooks loop",
            note="; ".join(n for n in notes if n) or None,
        ),
        Figure(
            "qbo.percent_of_ceiling",
            SECTION,
            "Share of the documented ceiling",
            100 * rate / CEILING_PER_MINUTE if rate is not None else None,
            "%",
            f"ceiling = {BATCH_PER_MINUTE} batch calls/min x {BATCH_SIZE} operations = {CEILING_PER_MINUTE} "
            f"entities/min (single calls: {PER_MINUTE}/min)",
            target=90,
            op=">=",
            baseline=100 * base_rate / CEILING_PER_MINUTE if base_rate is not None else None,
            baseline_label="python-quickbooks loop",
        ),
        Figure(
            "qbo.speedup_vs_python_quickbooks",
            SECTION,
            "Speed-up over python-quickbooks",
            rate / base_rate if rate and base_rate else None,
            "x",
            "qbsync's entities/min divided by the one-call-per-entity loop's (same emulator, limits and latency)",
            target=3,
            op=">=",
            note=skipped,
        ),
        Figure(
            "qbo.requests_per_entity",
            SECTION,
            "API requests per entity",
            ours["requests"] / ours["entities"] if ours["entities"] else None,
            "",
            "every v3 call (matching queries included) per entity written; a batch call counts once",
            baseline=baseline["requests"] / baseline["entities"] if baseline and baseline["entities"] else None,
            baseline_label="python-quickbooks loop",
        ),
        Figure(
            "qbo.requests_per_minute",
            SECTION,
            "API requests per minute",
            per_minute(ours, "requests"),
            "/min",
            f"how hard qbsync leans on the realm's {PER_MINUTE}/min request limit (real-time equivalent)",
            target=PER_MINUTE,
            op="<=",
            baseline=per_minute(baseline, "requests"),
            baseline_label="python-quickbooks loop",
        ),
        Figure(
            "qbo.throttled",
            SECTION,
            "429s drawn",
            ours["throttled"],
            "",
            "requests the emulator refused for exceeding a limit (Intuit then asks for a 60 s pause)",
            target=0,
            op="<=",
            baseline=baseline["throttled"] if baseline else None,
            baseline_label="python-quickbooks loop",
        ),
    ]
