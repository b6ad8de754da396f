"""Summarized mode into a QuickBooks Desktop company file: the period's entry is one JournalEntryAdd job run by the
Web Connector (simulator over HTTP against the real app, the fake company processing the qbXML); late charges
become an adjusting entry; a name the company file does not have is a configuration issue on the period and the
conversation, and the corrected entry goes at the next run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from infra.fake_qbd import FakeCompany
from infra.wc_sim import WebConnectorSimulator
from qbsync.api.services import Services, use_services
from qbsync.connectors import ConnectorCreate
from qbsync.events import MemoryPublisher
from qbsync.mappings import MappingPut
from qbsync.queue import MemoryTransferQueue
from qbsync.settings import Settings
from qbsync.store.memory import MemoryStore
from qbsync.store.ports import Connector, Tenant
from qbsync.sync.journal import CHARGES
from qbsync.tenancy import TenantService
from qbsync.transfers import MessageMeta, get_dispatcher
from tests.support import serve_api

PASSWORD = "correct horse battery"
D = Decimal


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

    def drain(self) -> None:
        for _ in range(10_000):
            if not self.queue.sent:
                return
            message, group, _ = self.queue.sent.pop(0)
            get_dispatcher().handlers[message.kind](message, MessageMeta("m", group, 1))
        raise AssertionError("the queue never drained")

    def web_connector(self) -> str:
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
        self.drain()
        return str(self.store.connectors.get(self.tenant.tenant_id, self.connector.connector_id).last_status)  # type: ignore[union-attr]

    def map(self, kind: str, entries: dict[str, str]) -> None:
        request = MappingPut.model_validate({"entries": {k: {"name": v} for k, v in entries.items()}})
        self.services.mappings.put(self.tenant, kind, request)

    def post(self) -> None:
        self.services.journal.request_post(self.tenant, None)
        self.drain()

    def lines(self, ref_number: str) -> list[tuple[str, str, Decimal, str | None]]:
        [entry] = [je for je in self.company.journal_entries() if je.ref_number == ref_number]
        names = {r.list_id: r.full_name for r in self.company.accounts() + self.company.classes()}
        return [(ln.side, names[ln.account_id], ln.amount, names.get(ln.class_id or "")) for ln in entry.lines]


@pytest.fixture
def desk(server_url: str) -> Desk:
    store, queue, events = MemoryStore(), MemoryTransferQueue(), MemoryPublisher()
    services = Services.build(Settings(stage="test", admin_key="x"), store, queue=queue, events=events)
    use_services(services)
    tenant = TenantService(store.tenants).create("Desk Summary").tenant
    tenant.settings.update({"mode": "summarized", "journal_debit_account": "Undeposited Funds", "use_classes": True})
    tenant = store.tenants.update(tenant)
    connector = services.connectors.create(
        tenant, ConnectorCreate(name="Main", username="desk-summary", password=PASSWORD)
    )
    company = FakeCompany()
    company.process(
        '<?xml version="1.0"?><?qbxml version="13.0"?><QBXML><QBXMLMsgsRq onError="stopOnError">'
        "<ClassAddRq><ClassAdd><Name>East</Name></ClassAdd></ClassAddRq></QBXMLMsgsRq></QBXML>"
    )
    desk = Desk(server_url, services, store, queue, events, tenant, connector, company)
    desk.map("billing_codes", {"SUP": "Services", "LIC": "Consulting Income"})
    desk.map("lines_of_business", {"east": "East"})
    return desk


def charges(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "id": f"ch-{i}",
            "date": f"2026-10-{1 + i % 31:02d}",
            "amount": f"{(i % 89) + 0.41:.2f}",
            "billing_code": "SUP" if i % 4 else "LIC",
            **({"line_of_business": "east"} if i % 3 == 0 else {}),
        }
        for i in range(start, start + n)
    ]


def test_a_month_becomes_one_journal_entry_in_the_company_file_and_late_charges_an_adjusting_one(desk: Desk) -> None:
    october = charges(250)
    desk.services.journal.accept(desk.tenant, october)
    desk.post()
    assert len(desk.store.jobs.unfinished(desk.connector.connector_id, 100)) >= 1
    assert desk.services.journal.period(desk.tenant, "2026-10").reason["code"] == "queued_for_web_connector"  # type: ignore[index]
    assert desk.services.journal.charge(desk.tenant, "ch-1").reason["code"] == "queued_for_web_connector"  # type: ignore[index]
    desk.post()  # a second run while the entry waits for the Web Connector queues nothing more
    journal_jobs = [j for j in desk.store.jobs.history(desk.connector.connector_id) if j.kind == "journal_entry_add"]
    assert len(journal_jobs) == 1

    assert desk.web_connector() == "success"
    [entry] = desk.company.journal_entries()
    assert entry.ref_number == "QS2610" and entry.txn_date.isoformat() == "2026-10-31"
    lines = desk.lines("QS2610")
    total = sum((D(c["amount"]) for c in october), D(0))
    debits = sum((amount for side, _, amount, _ in lines if side == "Debit"), D(0))
    credits = sum((amount for side, _, amount, _ in lines if side == "Credit"), D(0))
    assert debits == credits == total
    assert ("Debit", "Undeposited Funds", total, None) in lines
    east = sum((D(c["amount"]) for c in october if c.get("line_of_business")), D(0))
    assert sum((amount for _, _, amount, klass in lines if klass == "East"), D(0)) == east
    period = desk.services.journal.period(desk.tenant, "2026-10")
    assert period.state == "synced" and period.entries[0].quickbooks_id == entry.txn_id
    states = {r.state for r in desk.store.records.list(desk.tenant.tenant_id, CHARGES, limit=1000).items}
    assert states == {"synced"}

    late = [{"id": "late", "date": "2026-10-20", "amount": "-15.00", "billing_code": "LIC"}, *charges(3, start=900)]
    desk.services.journal.accept(desk.tenant, late)
    desk.post()
    assert desk.web_connector() == "success"
    assert [je.ref_number for je in desk.company.journal_entries()] == ["QS2610", "QS2610A1"]
    adjusting = desk.lines("QS2610A1")
    late_total = sum((D(c["amount"]) for c in late), D(0))
    assert ("Debit", "Undeposited Funds", late_total, None) in adjusting
    assert sum((a for s, _, a, _ in adjusting if s == "Debit"), D(0)) == sum(
        (a for s, _, a, _ in adjusting if s == "Credit"), D(0)
    )
    assert D(desk.services.journal.period(desk.tenant, "2026-10").posted_total) == total + late_total
    assert len(desk.events.of_type("journal_entry.synced")) == 2


def test_a_name_the_company_file_lacks_is_a_configuration_issue_and_the_fix_goes_next_run(desk: Desk) -> None:
    desk.map("billing_codes", {"SUP": "Services", "LIC": "Licence Income"})  # not in the company file
    desk.services.journal.accept(desk.tenant, charges(12))
    desk.post()
    assert desk.web_connector() == "success_with_configuration_issues"
    assert desk.company.journal_entries() == []
    period = desk.services.journal.period(desk.tenant, "2026-10")
    assert period.state == "blocked" and period.reason is not None and period.reason["code"] == "mapping_stale"
    assert period.reason["qb_code"] == "3140" and period.entries[0].status == "failed"
    assert desk.events.of_type("configuration.issue")[0]["detail"]["id"] == "2026-10"
    desk.post()  # the same entry is not sent again unchanged
    assert desk.store.jobs.unfinished(desk.connector.connector_id, 100) == []

    desk.map("billing_codes", {"SUP": "Services", "LIC": "Consulting Income"})
    desk.post()
    assert desk.web_connector() == "success"
    [entry] = desk.company.journal_entries()
    assert entry.ref_number == "QS2610"  # the failed attempt never reached QuickBooks: the number is kept
    assert desk.services.journal.period(desk.tenant, "2026-10").state == "synced"


def test_an_unmapped_billing_code_blocks_the_period_and_the_next_conversation_says_so(desk: Desk) -> None:
    desk.services.journal.accept(
        desk.tenant, [*charges(6), {"id": "new", "date": "2026-10-09", "amount": "3.00", "billing_code": "NEW"}]
    )
    desk.post()
    period = desk.services.journal.period(desk.tenant, "2026-10")
    assert period.state == "blocked" and period.reason is not None and period.reason["code"] == "mapping_missing"
    assert desk.store.jobs.unfinished(desk.connector.connector_id, 100) == []  # nothing sent
    assert desk.web_connector() == "success_with_configuration_issues"
    connector = desk.store.connectors.get(desk.tenant.tenant_id, desk.connector.connector_id)
    assert connector is not None
    assert connector.conversations[0]["config_issue_details"][0]["id"] == "2026-10"

    desk.map("billing_codes", {"SUP": "Services", "LIC": "Consulting Income", "NEW": "Sales"})
    desk.post()
    assert desk.web_connector() == "success"
    [entry] = desk.company.journal_entries()
    assert entry.ref_number == "QS2610"
    assert desk.services.journal.charge(desk.tenant, "new").state == "synced"
