"""Nothing duplicated on the Desktop path either: every record posted twice, every transfer message delivered twice,
and a worker killed between queueing a record's connector job and saving the record, then Web Connector runs
(the simulator over HTTP against the real app, the fake company file processing the qbXML) — the company file
holds exactly one customer, item, invoice and payment per source record, and every record says synced."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from infra.fake_qbd import FakeCompany
from infra.wc_sim import WebConnectorSimulator
from qbsync.api.services import Services, use_services
from qbsync.connectors import ConnectorCreate
from qbsync.events import MemoryPublisher
from qbsync.queue import MemoryTransferQueue
from qbsync.settings import Settings
from qbsync.store.memory import MemoryStore
from qbsync.store.ports import Connector, Tenant
from qbsync.tenancy import TenantService
from qbsync.transfers import MessageMeta, get_dispatcher
from tests.support import serve_api

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with serve_api() as base:
        yield f"{base}/qbwc"


@dataclass
class Desk:
    url: str
    services: Services
    store: MemoryStore
    queue: MemoryTransferQueue
    tenant: Tenant
    connector: Connector
    company: FakeCompany
    crash: set[str] = field(default_factory=set)
    crashed: set[str] = field(default_factory=set)

    def drain(self, *, deliveries: int = 2) -> None:
        """Hand every queued message to the worker ``deliveries`` times. A record named in ``crash`` has the
        first handling that queues its connector job killed right after the job was queued, before the record
        was saved (``crashed`` records that it happened)."""
        worker = self.services.sync
        for _ in range(10_000):
            if not self.queue.sent:
                return
            message, _group, _dedup = self.queue.sent.pop(0)
            if not message.kind.startswith("sync."):  # e.g. the Desktop import being ready
                get_dispatcher().handlers[message.kind](message, MessageMeta("m", "g", 1))
                continue
            source_id = str(message.payload.get("source_id"))
            for delivery in range(deliveries):
                if source_id in self.crash and source_id not in self.crashed:
                    original = worker._save_state

                    def die(*args: Any, **kwargs: Any) -> Any:
                        raise SystemExit("worker killed")

                    worker._save_state = die  # type: ignore[method-assign]
                    try:
                        worker.handle(message, MessageMeta("m", "g", 1))
                    except SystemExit:
                        self.crashed.add(source_id)
                    finally:
                        worker._save_state = original  # type: ignore[method-assign]
                worker.handle(message, MessageMeta("m", "g", delivery + 1))
        raise AssertionError("the queue never drained")

    def run_web_connector(self) -> None:
        result = WebConnectorSimulator(
            self.url,
            self.connector.username,
            PASSWORD,
            self.company,
            owner_id=self.connector.owner_id,
            file_id=self.connector.file_id,
            timeout=30,
            max_seconds=120,
        ).run_update()
        assert result.ok, result

    def states(self, kind: str, ids: list[str]) -> dict[str, str]:
        found = self.store.records.get_many(self.tenant.tenant_id, kind, ids)
        return {i: found[i].state if i in found else "missing" for i in ids}


@pytest.fixture
def desk(server_url: str) -> Desk:
    store = MemoryStore()
    queue = MemoryTransferQueue()
    services = Services.build(Settings(stage="test", admin_key="x"), store, queue=queue, events=MemoryPublisher())
    use_services(services)
    tenant = TenantService(store.tenants).create("Desk Reliable").tenant
    tenant.settings.update({"auto_create_customers": True, "auto_create_items": True, "income_account": "Services"})
    tenant = store.tenants.update(tenant)
    connector = services.connectors.create(
        tenant, ConnectorCreate(name="Main", username="desk-reliable", password=PASSWORD)
    )
    return Desk(server_url, services, store, queue, tenant, connector, FakeCompany())


RECORDS: dict[str, list[dict[str, Any]]] = {
    "customers": [{"id": f"c{i}", "name": f"Reliable {i}", "email": f"r{i}@example.com"} for i in range(6)],
    "items": [{"id": "svc", "name": "Support", "sku": "SUP", "price": "40.00"}],
    "invoices": [
        {
            "id": f"i{i}",
            "customer_id": f"c{i % 6}",
            "doc_number": f"R{i:03d}",
            "date": "2026-11-04",
            "total": "80.00",
            "lines": [{"item_id": "svc", "quantity": "2", "rate": "40.00"}],
        }
        for i in range(12)
    ],
    "payments": [
        {
            "id": f"p{i}",
            "customer_id": f"c{i % 6}",
            "date": "2026-11-05",
            "amount": "80.00",
            "applied_to": [{"invoice_id": f"i{i}", "amount": "80.00"}],
        }
        for i in range(5)
    ],
}


def test_redelivery_double_posting_and_a_killed_worker_leave_one_record_each_in_the_company_file(desk: Desk) -> None:
    for _ in range(2):  # posting every record twice is a no-op the second time
        for kind, body in RECORDS.items():
            desk.services.ingest.accept(desk.tenant, kind, body)
    desk.crash = {"c1", "svc", "i3", "i7", "p2"}
    for _ in range(8):  # the first run reads the file's lists; later runs send what the worker queued
        desk.drain()
        desk.run_web_connector()
        desk.drain()
        if all(
            state == "synced"
            for kind, body in RECORDS.items()
            for state in desk.states(kind, [r["id"] for r in body]).values()
        ):
            break
    for kind, body in RECORDS.items():
        assert set(desk.states(kind, [r["id"] for r in body]).values()) == {"synced"}, kind
    assert desk.crashed == desk.crash

    company = desk.company
    assert company.count("Customer") == 6 and company.count("Invoice") == 12 and company.count("ReceivePayment") == 5
    assert len(company.items()) == 1
    balances = sorted(inv.balance_remaining for inv in company.invoices())
    assert balances == [Decimal(0)] * 5 + [Decimal("80.00")] * 7


def sync_until_settled(desk: Desk, records: dict[str, list[dict[str, Any]]], runs: int = 8) -> None:
    for _ in range(runs):
        desk.drain(deliveries=1)
        if all(
            s in ("synced", "failed", "blocked")
            for kind, body in records.items()
            for s in desk.states(kind, [r["id"] for r in body]).values()
        ):
            return
        desk.run_web_connector()
    desk.drain(deliveries=1)


def test_changed_customers_and_invoices_become_mods_even_when_quickbooks_moved_on(desk: Desk) -> None:
    desk.company.process(
        '<?xml version="1.0"?><?qbxml version="13.0"?><QBXML><QBXMLMsgsRq onError="stopOnError">'
        "<CustomerAddRq><CustomerAdd><Name>Known Customer</Name><Email>known@example.com</Email></CustomerAdd>"
        "</CustomerAddRq></QBXMLMsgsRq></QBXML>"
    )
    records: dict[str, list[dict[str, Any]]] = {
        "customers": [
            {"id": "c-new", "name": "New Customer", "email": "new@example.com", "phone": "555-0100"},
            {"id": "c-known", "name": "Known Customer", "email": "known@example.com"},  # linked: no EditSequence
        ],
        "items": [{"id": "svc", "name": "Support", "sku": "SUP", "price": "40.00"}],
        "invoices": [
            {
                "id": f"inv-{c}",
                "customer_id": c,
                "doc_number": f"U-{c[2:]}",
                "date": "2026-11-04",
                "lines": [{"item_id": "svc", "quantity": "2", "rate": "40.00"}],
            }
            for c in ("c-new", "c-known")
        ],
    }
    for kind, body in records.items():
        desk.services.ingest.accept(desk.tenant, kind, body)
    sync_until_settled(desk, records)
    assert set(desk.states("invoices", ["inv-c-new", "inv-c-known"]).values()) == {"synced"}

    # Someone edits the first invoice in QuickBooks: qbsync's EditSequence for it is now stale.
    first = desk.company.find_invoice("U-new")
    assert first is not None
    first.edit_sequence = "1"
    changed = {
        "customers": [
            {"id": "c-new", "name": "Renamed Customer", "email": "new@example.com", "phone": "555-0199"},
            {"id": "c-known", "name": "Known Customer", "email": "known@example.com", "phone": "555-0142"},
        ],
        "invoices": [
            {**invoice, "lines": [{"item_id": "svc", "quantity": "3", "rate": "40.00"}], "memo": "three now"}
            for invoice in records["invoices"]
        ],
    }
    for kind, body in changed.items():
        desk.services.ingest.accept(desk.tenant, kind, body)
    sync_until_settled(desk, changed)

    for kind, body in changed.items():
        assert set(desk.states(kind, [r["id"] for r in body]).values()) == {"synced"}, kind
    company = desk.company
    assert company.count("Customer") == 2 and company.count("Invoice") == 2  # changed in place, nothing added
    names = {c.name: c for c in company.customers()}
    assert "Renamed Customer" in names and "New Customer" not in names
    assert names["Known Customer"].field_text("Phone") == "555-0142"
    for number in ("U-new", "U-known"):
        invoice = company.find_invoice(number)
        assert invoice is not None and invoice.balance_remaining == Decimal("120.00") and invoice.memo == "three now"
    history = desk.store.records.history(desk.tenant.tenant_id, limit=100).items
    updates = {(t.kind, t.source_id) for t in history if t.action == "update" and t.status == "succeeded"}
    assert {("invoices", "inv-c-new"), ("invoices", "inv-c-known"), ("customers", "c-known")} <= updates
    jobs = desk.store.jobs.history(desk.connector.connector_id, limit=500)
    by_kind = {(j.kind, j.status, str(j.result.get("status_code", ""))) for j in jobs}
    assert ("invoice_mod", "error", "3200") in by_kind  # the stale EditSequence was refused…
    assert ("invoice_lookup", "done", "0") in by_kind and ("customer_lookup", "done", "0") in by_kind  # …read again
