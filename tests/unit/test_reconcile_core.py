"""The reconciliation core on in-memory records: drift rules, paid date rules, transitions only, and what
GET /v1/invoices/{id} shows."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

from qbsync.clock import SystemClock
from qbsync.events import MemoryPublisher
from qbsync.store.memory import MemoryStore
from qbsync.store.ports import SyncRecord
from qbsync.sync.reconcile import Ledger, QbInvoice, QbPayment, Reconciliation
from tests.conftest import Api

TARGET = "qbo:777"
INVOICE = {
    "id": "inv-1",
    "customer_id": "c-1",
    "date": "2026-11-01",
    "lines": [{"item_id": "i-1", "quantity": "1", "rate": "100.00"}],
    "total": "100.00",
}


def synced_invoice(store: MemoryStore, tenant_id: str = "t1", payload: dict | None = None) -> SyncRecord:
    record = SyncRecord(
        tenant_id=tenant_id,
        kind="invoices",
        source_id="inv-1",
        content_hash="h" * 32,
        payload=payload or INVOICE,
        state="synced",
        created_at="2026-11-01T00:00:00.000Z",
        updated_at="2026-11-01T00:00:00.000Z",
        target=TARGET,
        qb_id="55",
        synced_hash="h" * 32,
    )
    return store.records.create(record)


def core(store: MemoryStore, events: MemoryPublisher, tenant_id: str = "t1") -> Reconciliation:
    return Reconciliation(store, events, Ledger(store, tenant_id, TARGET), SystemClock())


def state(store: MemoryStore, tenant_id: str = "t1") -> dict:
    found = store.records.get(tenant_id, "invoices", "inv-1")
    assert found is not None
    return dict(found.reconciliation or {})


def test_total_changed_in_quickbooks_is_drift_but_quickbooks_own_sales_tax_is_not() -> None:
    store, events = MemoryStore(), MemoryPublisher()
    synced_invoice(store)
    taxed = QbInvoice("55", total=Decimal("108.00"), balance=Decimal("108.00"), tax=Decimal("8.00"))
    assert core(store, events).apply([taxed], []).drift == 0
    assert state(store)["drift"] is None and state(store)["total"] == "108.00"

    edited = QbInvoice("55", total=Decimal("120.00"), balance=Decimal("120.00"), tax=Decimal("0.00"))
    assert core(store, events).apply([edited], []).drift == 1
    [drift] = events.of_type("invoice.drift")
    assert drift["detail"]["code"] == "total_mismatch" and "120.00" in drift["detail"]["message"]
    assert core(store, events).apply([edited], []).drift == 0  # reported once
    assert len(events.of_type("invoice.drift")) == 1

    fixed = QbInvoice("55", total=Decimal("100.00"), balance=Decimal("100.00"))
    core(store, events).apply([fixed], [])
    assert state(store)["drift"] is None

    voided = QbInvoice("55", total=Decimal("0.00"), balance=Decimal("0.00"), voided=True)
    outcome = core(store, events).apply([voided], [])
    assert outcome.drift == 1 and outcome.paid == 0 and state(store)["paid"] is False  # voided is not paid
    assert events.of_type("invoice.drift")[-1]["detail"]["code"] == "voided"


def test_a_pending_source_change_is_not_drift() -> None:
    store, events = MemoryStore(), MemoryPublisher()
    record = synced_invoice(store)
    store.records.save(replace(record, content_hash="n" * 32, state="pending"))  # the source changed the total
    core(store, events).apply([QbInvoice("55", total=Decimal("120.00"), balance=Decimal("120.00"))], [])
    assert events.of_type("invoice.drift") == []


def test_paid_date_is_the_date_of_the_payment_that_closed_the_balance() -> None:
    store, events = MemoryStore(), MemoryPublisher()
    synced_invoice(store)
    payments = [
        QbPayment("p-late", "2026-11-20", Decimal("5.00"), {"55": Decimal("0.00")}),  # applied elsewhere
        QbPayment("p-b", "2026-11-12", Decimal("60.00"), {"55": Decimal("60.00")}),
        QbPayment("p-a", "2026-11-10", Decimal("40.00"), {"55": Decimal("40.00")}),
    ]
    invoice = QbInvoice("55", total=Decimal("100.00"), balance=Decimal("0.00"), payment_ids=("p-a", "p-b", "p-late"))
    outcome = core(store, events).apply([invoice], payments)
    assert outcome.paid == 1 and state(store)["paid_date"] == "2026-11-12"
    [paid] = events.of_type("invoice.paid")
    assert paid["detail"]["paid_date"] == "2026-11-12" and paid["detail"]["id"] == "inv-1"
    assert outcome.payments_reported == 3  # none of them came from qbsync


def test_records_of_another_company_or_tenant_are_left_alone() -> None:
    store, events = MemoryStore(), MemoryPublisher()
    synced_invoice(store, tenant_id="t2")
    outcome = core(store, events, tenant_id="t1").apply([QbInvoice("55", deleted=True)], [])
    assert outcome.invoices_checked == 0 and events.events == [] and state(store, "t2") == {}


def test_the_invoice_view_shows_balance_paid_status_and_date(api: Api, memory_store: MemoryStore) -> None:
    created = api.create_tenant()
    key = created["api_key"]
    record = synced_invoice(memory_store, tenant_id=created["tenant_id"])
    fresh = json.loads(api.request("GET", "/v1/invoices/inv-1", key=key).body)
    assert fresh["state"] == "synced" and fresh["paid"] is None and fresh["payments"] == []  # not reconciled yet
    memory_store.records.save(
        replace(
            record,
            reconciliation={
                "balance": "0.00",
                "total": "100.00",
                "paid": True,
                "paid_date": "2026-11-12",
                "payments": [{"quickbooks_id": "9", "date": "2026-11-12", "amount": "100.00", "origin": "quickbooks"}],
                "drift": None,
                "checked_at": "2026-11-21T08:00:00.000Z",
            },
        )
    )
    shown = json.loads(api.request("GET", "/v1/invoices/inv-1", key=key).body)
    assert shown["paid"] is True and shown["paid_date"] == "2026-11-12" and shown["balance"] == "0.00"
    assert shown["quickbooks_total"] == "100.00" and shown["payments"][0]["origin"] == "quickbooks"
    assert shown["reconciled_at"] == "2026-11-21T08:00:00.000Z" and shown["quickbooks_id"] == "55"
    openapi = json.loads(api.request("GET", "/openapi.json").body)
    assert "paid_date" in openapi["components"]["schemas"]["InvoiceView"]["properties"]
