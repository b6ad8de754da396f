"""qbXML: parse a large InvoiceQueryRs (what an invoice reconciliation page brings back) and build InvoiceAdd requests
(what a sync sends), with time (``perf_counter``) and peak Python memory (``tracemalloc``).

The InvoiceQueryRs is real fake-company output: a few invoices are added to the fake QuickBooks Desktop company and
queried with their lines; their ``InvoiceRet`` elements are then repeated (unique TxnIDs and RefNumbers) up to the
wanted size.
"""

from __future__ import annotations

import copy
import gc
import time
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from lxml import etree

from tests.benchmarks.report import Figure

SECTION = "qbXML"


def invoice_query_response(megabytes: float) -> str:
    """A qbXML InvoiceQueryRs document of about ``megabytes`` MB."""
    from infra.fake_qbd import FakeCompany
    from qbsync.qbxml import (
        Customer,
        Invoice,
        InvoiceLine,
        Item,
        build_customer_add,
        build_invoice_add,
        build_invoice_query,
        build_item_add,
        build_message_set,
    )

    company = FakeCompany()
    requests = [build_item_add("i", Item(name="Consulting", income_account="Services", price=Decimal("75.00")))]
    for i in range(10):
        requests.append(build_customer_add(f"c{i}", Customer(name=f"Customer {i:03d}", email=f"c{i}@example.com")))
        lines = tuple(
            InvoiceLine(item="Consulting", description=f"Work package {n}", quantity=Decimal(n + 1), rate=Decimal(75))
            for n in range(1 + i % 4)
        )
        requests.append(
            build_invoice_add(f"v{i}", Invoice(customer=f"Customer {i:03d}", ref_number=f"B-{i:05d}", lines=lines))
        )
    company.process(build_message_set(requests))
    sample = company.process(build_message_set([build_invoice_query("q", include_line_items=True)]))
    root = etree.fromstring(sample.split("?>", 2)[-1].strip().encode())
    rs = root.find("QBXMLMsgsRs/InvoiceQueryRs")
    assert rs is not None
    templates = list(rs)
    if not templates:
        raise RuntimeError("the fake company returned no InvoiceRet to repeat")
    for ret in templates:
        rs.remove(ret)
    head = sample.split("<QBXML>", 1)[0]
    size_of_one = sum(len(etree.tostring(t)) for t in templates) / len(templates)
    wanted = int(megabytes * 1_000_000 / size_of_one)
    for n in range(wanted):
        ret = copy.deepcopy(templates[n % len(templates)])
        ret.find("TxnID").text = f"{n + 1:X}-1700000000"  # type: ignore[union-attr]
        ref = ret.find("RefNumber")
        if ref is not None:
            ref.text = f"Q{n:09d}"
        rs.append(ret)
    rs.set("retCount", str(wanted))
    return head + etree.tostring(root, encoding="unicode")


def measure(action: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, seconds, peak MB of Python allocations) for one call."""
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = action()
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, seconds, peak / 1e6


def build_invoice_adds(count: int) -> list[str]:
    """``count`` InvoiceAdd requests (3 lines each), serialized in message sets of 100 (one round trip each)."""
    from qbsync.qbxml import Invoice, InvoiceLine, build_invoice_add, build_message_set

    documents: list[str] = []
    batch = []
    for i in range(count):
        lines = tuple(
            InvoiceLine(item=f"Service {n}", description="Hours", quantity=Decimal(n + 1), rate=Decimal("75.00"))
            for n in range(3)
        )
        invoice = Invoice(customer=f"Customer {i % 200:04d}", ref_number=f"A-{i:06d}", memo="bench", lines=lines)
        batch.append(build_invoice_add(str(i), invoice))
        if len(batch) == 100:
            documents.append(build_message_set(batch))
            batch = []
    if batch:
        documents.append(build_message_set(batch))
    return documents


def run(ctx: Any) -> list[Figure]:
    from qbsync.qbxml import parse_response

    document = invoice_query_response(ctx.qbxml_megabytes)
    size = len(document.encode("utf-8"))
    results, parse_seconds, parse_peak = measure(lambda: parse_response(document))
    rets = sum(len(r.rets) for r in results)
    count = ctx.qbxml_builds
    documents, build_seconds, build_peak = measure(lambda: build_invoice_adds(count))
    ctx.details["qbxml"] = {
        "response_bytes": size,
        "invoices_parsed": rets,
        "parse_seconds": parse_seconds,
        "parse_peak_mb": parse_peak,
        "invoice_adds": count,
        "build_seconds": build_seconds,
        "build_peak_mb": build_peak,
        "built_bytes": sum(len(d) for d in documents),
    }
    return [
        Figure(
            "qbxml.parse_seconds",
            SECTION,
            f"Parse a {size / 1e6:.1f} MB InvoiceQueryRs",
            parse_seconds * 1000,
            "ms",
            f"{rets:,} InvoiceRet with lines into typed results ({rets / parse_seconds:,.0f}/s); a Lambda has 30 s",
        ),
        Figure(
            "qbxml.parse_peak_mb",
            SECTION,
            "Peak memory while parsing it",
            parse_peak,
            "MB",
            "Python allocations at the peak (tracemalloc; lxml's C tree not included); Lambda default is 512 MB",
        ),
        Figure(
            "qbxml.build_seconds",
            SECTION,
            f"Build {count:,} InvoiceAdd requests",
            build_seconds * 1000,
            "ms",
            f"3-line invoices, validated and serialized in message sets of 100 ({count / build_seconds:,.0f}/s)",
        ),
        Figure(
            "qbxml.build_peak_mb",
            SECTION,
            "Peak memory while building them",
            build_peak,
            "MB",
            "Python allocations at the peak (tracemalloc)",
        ),
    ]
