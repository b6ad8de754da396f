"""Reconciliation from QuickBooks Desktop (R1, R2): records synced through the Web Connector; then invoices paid,
part-paid and deleted in the fake company file (its admin hooks) come back with the right paid dates, payments
entered in QuickBooks are reported once, the deleted invoice is drift — after one queued reconcile and one Web
Connector run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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
    events: MemoryPublisher
    tenant: Tenant
    connector: Connector
    company: FakeCompany

    def web_connector(self) -> None:
        sim = WebConnectorSimulator(
            self.url,
            self.connector.username,
            PASSWORD,
            self.company,
            owner_id=self.connector.owner_id,
            file_id=self.connector.file_id,
            timeout=30,
        )
        result = sim.run_update()
        assert result.ok or result.auth_result[1] == "none", result.summary()

    def drain(self) -> None:
        for _ in range(1000):
            if not self.queue.sent:
                return
            message, _, _ = self.queue.sent.pop(0)
            get_dispatcher().handlers[message.kind](message, MessageMeta("m", "g", 1))

    def record(self, kind: str, source_id: str) -> Any:
        found = self.store.records.get(self.tenant.tenant_id, kind, source_id)
        assert found is not None
        return found

    def seen(self, source_id: str) -> dict[str, Any]:
        return dict(self.record("invoices", source_id).reconciliation or {})


@pytest.fixture
def desk(server_url: str) -> Desk:
    store, queue, events = MemoryStore(), MemoryTransferQueue(), MemoryPublisher()
    services = Services.build(Settings(stage="test", admin_key="x"), store, queue=queue, events=events)
    use_services(services)
    tenant = TenantService(store.tenants).create("Desk Recon").tenant
    tenant.settings.update({"income_account": "Services", "auto_create_customers": True, "auto_create_items": True})
    tenant = store.tenants.update(tenant)
    connector = services.connectors.create(
        tenant, ConnectorCreate(name="Main", username="desk-recon", password=PASSWORD)
    )
    return Desk(server_url, services, store, queue, events, tenant, connector, FakeCompany())


def synced(desk: Desk) -> None:
    ingest, tenant = desk.services.ingest, desk.tenant
    ingest.accept(tenant, "customers", [{"id": "dc", "name": "Desk Customer", "email": "d@example.com"}])
    ingest.accept(tenant, "items", [{"id": "di", "name": "Desk Service", "sku": "DS", "price": "50.00"}])
    invoices = [
        {
            "id": f"dinv-{i}",
            "customer_id": "dc",
            "doc_number": f"D-{i}",
            "date": "2026-11-03",
            "lines": [{"item_id": "di", "quantity": "2", "rate": "50.00"}],
            "total": "100.00",
        }
        for i in range(4)
    ]
    ingest.accept(tenant, "invoices", invoices)
    payment = {
        "id": "dpay-0",
        "customer_id": "dc",
        "date": "2026-11-05",
        "amount": "100.00",
        "applied_to": [{"invoice_id": "dinv-0", "amount": "100.00"}],
    }
    ingest.accept(tenant, "payments", [payment])
    for _ in range(6):  # jobs, a conversation, released records (payments, …), another conversation
        desk.drain()
        desk.web_connector()
        desk.drain()
        if all(desk.record(k, i).state == "synced" for k, i in (("payments", "dpay-0"), ("invoices", "dinv-3"))):
            break
    assert all(desk.record("invoices", f"dinv-{i}").state == "synced" for i in range(4))
    assert desk.record("payments", "dpay-0").state == "synced"


def test_paid_part_paid_and_deleted_in_the_company_file_come_back(desk: Desk) -> None:
    synced(desk)
    company = desk.company
    company.pay_invoice("D-1", txn_date="2026-11-15", ref_number="CHK-1")
    company.pay_invoice("D-2", amount="20.00", txn_date="2026-11-16")
    company.delete_transaction(company.find_invoice("D-3").txn_id)  # type: ignore[union-attr]
    desk.events.events.clear()

    reconciler = desk.services.desktop_reconciler
    assert reconciler.enqueue_all()["qbd_reconcile_queued"] == 1
    assert reconciler.enqueue_all() == {"qbd_connectors": 1, "qbd_reconcile_queued": 0, "qbd_reconcile_waiting": 1}
    assert desk.seen("dinv-1") == {}  # nothing until the Web Connector runs
    desk.web_connector()

    paid = {e["detail"]["id"]: e["detail"]["paid_date"] for e in desk.events.of_type("invoice.paid")}
    assert paid == {"dinv-0": "2026-11-05", "dinv-1": "2026-11-15"}
    assert desk.seen("dinv-0")["payments"][0]["origin"] == "qbsync"
    reported = sorted(
        (e["detail"]["date"], e["detail"]["amount"], e["detail"]["reference"])
        for e in desk.events.of_type("payment.recorded_in_qb")
    )
    assert reported == [("2026-11-15", "100.00", "CHK-1"), ("2026-11-16", "20.00", None)]
    part = desk.seen("dinv-2")
    assert part["paid"] is False and part["balance"] == "80.00" and part["payments"][0]["origin"] == "quickbooks"
    assert [e["detail"]["id"] for e in desk.events.of_type("invoice.drift")] == ["dinv-3"]
    assert desk.seen("dinv-3")["drift"]["code"] == "deleted"
    state = desk.store.reconcile.get(desk.tenant.tenant_id, f"qbd:{desk.connector.connector_id}")
    assert state is not None and state["since"] and state["run"]["finished"] is True

    # Nothing new in QuickBooks: the next run reports nothing again.
    desk.events.events.clear()
    assert reconciler.enqueue_all()["qbd_reconcile_queued"] == 1
    desk.web_connector()
    assert desk.events.events == []

    # A payment qbsync sent is deleted in QuickBooks: the invoice is open again and the payment drifts.
    company.delete_transaction(desk.record("payments", "dpay-0").qb_id)
    assert reconciler.enqueue_all()["qbd_reconcile_queued"] == 1
    desk.web_connector()
    assert [e["detail"]["id"] for e in desk.events.of_type("invoice.unpaid")] == ["dinv-0"]
    assert [e["detail"]["id"] for e in desk.events.of_type("payment.drift")] == ["dpay-0"]


def test_a_connector_with_nothing_of_ours_gets_no_reconcile(desk: Desk) -> None:
    assert desk.services.desktop_reconciler.enqueue_all()["qbd_reconcile_queued"] == 0
    assert desk.store.jobs.history(desk.connector.connector_id) == []
