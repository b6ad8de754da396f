"""QuickBooks Online throughput: the same invoices (and their customers and items) go through qbsync — REST ingest,
the transfer worker's Lambda handler, the QBO client with its per-realm limiter — into the emulator running with
Intuit's limits (500 requests/min, 10/s, 40 batch calls/min of up to 30 operations) and a fixed per-call latency.
Baseline in the same run: a plain python-quickbooks loop (one call per entity) into another company of the same
emulator.

Time is scaled by S so the run takes minutes, not hours: the emulator's limits and qbsync's limiter budget are
multiplied by S and the latency divided by S (equivalently, every window is S times shorter). Rates are reported in
real-time units: a run's real duration is its waiting time x S plus its own CPU time, which no scale shrinks (see
:func:`real_seconds`).
"""

from __future__ import annotations

import functools
import os
import time
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


@functools.cache
def _scaled_budget(scale: float) -> Any:
    """qbsync's limiter budget, every window S times shorter (= every count S times larger)."""
    from qbsync.qbo import limiter

    base = limiter.RealmBudget()
    return functools.partial(
        limiter.RealmBudget,
        per_second=round(base.per_second * scale),
        per_minute=round(base.per_minute * scale),
        batch_per_minute=round(base.batch_per_minute * scale),
    )


def _qbsync_run(emulator: Any, invoices: int, scale: float, max_seconds: float) -> dict[str, Any]:
    from qbsync.qbo import limiter

    original = limiter.RealmBudget
    limiter.RealmBudget = _scaled_budget(scale)  # type: ignore[misc]
    try:
        stack = Stack(emulator=emulator)
        with stack.running():
            key, _tenant = stack.create_tenant("Bench Online", SETTINGS)
            realm = emulator.add_company(name="Bench Online Books")
            stack.connect_qbo(key, realm)
            company = emulator.company(realm)
            data = dataset(invoices, prefix="qa", desktop=False)
            mark = stack.meter.snapshot()
            stack.post_records(key, data)
            ingest = stack.meter.snapshot().minus(mark)
            before, requests_before = _counts(company), company.counts["requests"]
            throttled_before = company.counts["throttled"]
            mark, started, cpu = stack.meter.snapshot(), time.perf_counter(), time.thread_time()
            messages = stack.drain(max_seconds=max_seconds)
            wall, cpu = time.perf_counter() - started, time.thread_time() - cpu
            worker = stack.meter.snapshot().minus(mark)
            after = _counts(company)
    finally:
        limiter.RealmBudget = original  # type: ignore[misc]
    entities = sum(after[k] - before[k] for k in ENTITIES)
    return {
        "records": sum(len(v) for v in data.values()),
        "entities": entities,
        "by_entity": {k: after[k] - before[k] for k in ENTITIES},
        "requests": company.counts["requests"] - requests_before,
        "throttled": company.counts["throttled"] - throttled_before,
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "messages": messages,
        "phases": {"ingest": {"aws": ingest.as_dict()}, "worker": {"aws": worker.as_dict()}},
    }


def _baseline_run(emulator: Any, invoices: int, max_seconds: float) -> dict[str, Any]:
    """python-quickbooks, the way its README shows: one ``save()`` per customer, item and invoice."""
    from quickbooks import QuickBooks
    from quickbooks.exceptions import QuickbooksException
    from quickbooks.objects.account import Account
    from quickbooks.objects.base import EmailAddress, Ref
    from quickbooks.objects.customer import Customer
    from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
    from quickbooks.objects.invoice import Invoice
    from quickbooks.objects.item import Item

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
    before, requests_before, throttled_before = (
        _counts(company),
        company.counts["requests"],
        company.counts["throttled"],
    )
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
                time.sleep(1)  # a naive loop backs off a little and tries again
        raise RuntimeError("throttled ten times in a row")

    started, cpu = time.perf_counter(), time.thread_time()
    ids: dict[str, str] = {}
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
    wall, cpu = time.perf_counter() - started, time.thread_time() - cpu
    after = _counts(company)
    return {
        "entities": sum(after[k] - before[k] for k in ENTITIES),
        "requests": company.counts["requests"] - requests_before,
        "throttled": company.counts["throttled"] - throttled_before,
        "retries": retries,
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
    }


def run(ctx: Any) -> list[Figure]:
    from infra.qbo_emulator import QboEmulator

    scale = ctx.time_scale
    with QboEmulator() as emulator:
        emulator.set_limits(
            per_minute=round(PER_MINUTE * scale),
            per_second=round(PER_SECOND * scale),
            batch_per_minute=round(BATCH_PER_MINUTE * scale),
        )
        emulator.faults.latency_seconds = ctx.latency_seconds / scale
        ours = _qbsync_run(emulator, ctx.invoices, scale, ctx.max_seconds)
        try:
            import quickbooks  # noqa: F401
        except ImportError:
            baseline = None
            ctx.notes.append(
                "QBO baseline skipped: python-quickbooks is not installed (`make bench` installs the bench extra)."
            )
        else:
            baseline = _baseline_run(emulator, ctx.invoices, ctx.max_seconds)
    ctx.details["qbo"] = {
        "time_scale": scale,
        "latency_seconds": ctx.latency_seconds,
        "qbsync": ours,
        "python_quickbooks": baseline,
    }
    return figures(ours, baseline, scale)


def real_seconds(run: dict[str, Any], scale: float) -> float:
    """The run's duration in real time: the waiting (latency, limit windows) was S times shorter than real, the
    caller's own CPU (its thread's CPU time, AWS calls into moto included) was not."""
    cpu = min(run["cpu_seconds"], run["wall_seconds"])
    return (run["wall_seconds"] - cpu) * scale + cpu


def _per_minute(count: int, run: dict[str, Any], scale: float) -> float | None:
    seconds = real_seconds(run, scale)
    return count / seconds * 60 if seconds > 0 else None


def figures(ours: dict[str, Any], baseline: dict[str, Any] | None, scale: float) -> list[Figure]:
    rate = _per_minute(ours["entities"], ours, scale)
    base_rate = _per_minute(baseline["entities"], baseline, scale) if baseline else None
    skipped = None if baseline else "baseline skipped: python-quickbooks not installed"
    missing = ours["records"] - ours["entities"]
    return [
        Figure(
            "qbo.entities_per_minute",
            SECTION,
            "Entities per minute per realm",
            rate,
            "/min",
            f"customers, items and invoices written per real-time minute (waits scaled x{scale:g}, CPU unscaled)",
            baseline=base_rate,
            baseline_label="python-quickbooks loop",
            note=(f"{missing} of {ours['records']} records did not reach QuickBooks" if missing else skipped),
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
            "qbsync's entities/min divided by the one-call-per-entity loop's, same emulator, limits and latency",
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
            "every v3 call (queries for matching included) per entity written; a batch call counts once",
            baseline=baseline["requests"] / baseline["entities"] if baseline and baseline["entities"] else None,
            baseline_label="python-quickbooks loop",
        ),
        Figure(
            "qbo.requests_per_minute",
            SECTION,
            "API requests per minute",
            _per_minute(ours["requests"], ours, scale),
            "/min",
            f"how hard qbsync leans on the realm's {PER_MINUTE}/min request limit",
            target=PER_MINUTE,
            op="<=",
            baseline=_per_minute(baseline["requests"], baseline, scale) if baseline else None,
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
