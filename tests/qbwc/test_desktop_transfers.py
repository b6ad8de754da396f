"""Timesheets, expense reports and purchase orders to QuickBooks Desktop (T6-T8) through the mappings (M2-M5):
the Web Connector simulator over HTTP against the real app, the fake company file processing the qbXML (each request
checked against the XSD). Outcomes are read where they land: the company file's transactions and their references,
the records' states, the connector grid's conversations."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import requests

from infra.fake_qbd import FakeCompany
from infra.wc_sim import WebConnectorSimulator
from qbsync.api.services import Services, use_services
from qbsync.connectors import ConnectorCreate
from qbsync.events import MemoryPublisher
from qbsync.mappings import MappingPut
from qbsync.qbxml.xsd import find_xsd, validation_errors
from qbsync.queue import MemoryTransferQueue
from qbsync.settings import Settings
from qbsync.store.memory import MemoryStore
from qbsync.store.ports import Connector, SyncRecord, Tenant
from qbsync.tenancy import TenantService
from qbsync.transfers import MessageMeta, get_dispatcher
from tests.support import serve_api

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with serve_api() as base:
        yield f"{base}/qbwc"


def seed(company: FakeCompany, body: str) -> None:
    answer = company.process(
        '<?xml version="1.0"?><?qbxml version="13.0"?><QBXML>'
        f'<QBXMLMsgsRq onError="stopOnError">{body}</QBXMLMsgsRq></QBXML>'
    )
    assert 'statusCode="3' not in answer, answer


def account(name: str, kind: str) -> str:
    return f"<AccountAddRq><AccountAdd><Name>{name}</Name><AccountType>{kind}</AccountType></AccountAdd></AccountAddRq>"


def vendor(name: str) -> str:
    return f"<VendorAddRq><VendorAdd><Name>{name}</Name></VendorAdd></VendorAddRq>"


def the_company() -> FakeCompany:
    """The company file as the user set it up: accounts, vendors, an employee, a wage item, a class, an
    inventory part with 5 on hand."""
    company = FakeCompany()
    seed(
        company,
        account("Travel", "Expense")
        + account("Payroll Expenses", "Expense")
        + account("Company Visa", "CreditCard")
        + account("Inventory Asset", "OtherCurrentAsset")
        + vendor("Parts Inc")
        + vendor("Bob Contractor")
        + "<ClassAddRq><ClassAdd><Name>Field Services</Name></ClassAdd></ClassAddRq>"
        + "<ItemInventoryAddRq><ItemInventoryAdd><Name>Widget</Name>"
        "<IncomeAccountRef><FullName>Sales</FullName></IncomeAccountRef>"
        "<COGSAccountRef><FullName>Cost of Goods Sold</FullName></COGSAccountRef>"
        "<AssetAccountRef><FullName>Inventory Asset</FullName></AssetAccountRef>"
        "<QuantityOnHand>5</QuantityOnHand></ItemInventoryAdd></ItemInventoryAddRq>",
    )
    company.purchasing.add_employee("Alice Field")
    company.purchasing.add_payroll_wage_item("Regular Pay", "Payroll Expenses")
    return company


@dataclass
class Desk:
    url: str
    services: Services
    store: MemoryStore
    queue: MemoryTransferQueue
    tenant: Tenant
    connector: Connector
    company: FakeCompany
    invalid: list[str]
    api_key: str

    def patch_connector(self, body: dict[str, Any]) -> None:
        answer = requests.patch(
            f"{self.url.removesuffix('/qbwc')}/v1/connectors/{self.connector.connector_id}",
            json=body,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text

    def post(self, kind: str, body: Any) -> None:
        self.services.ingest.accept(self.tenant, kind, body)

    def map(self, kind: str, entries: dict[str, dict[str, str]]) -> None:
        self.services.mappings.put(self.tenant, kind, MappingPut.model_validate({"entries": entries}))

    def drain(self) -> None:
        for _ in range(10_000):
            if not self.queue.sent:
                return
            message, _group, _dedup = self.queue.sent.pop(0)
            get_dispatcher().handlers[message.kind](message, MessageMeta("m", "g", 1))
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

    def sync(self, runs: int = 4) -> None:
        """Work the queue and the Web Connector until nothing is left (bounded)."""
        for _ in range(runs):
            self.drain()
            self.run_web_connector()
        self.drain()

    def record(self, kind: str, source_id: str) -> SyncRecord:
        found = self.store.records.get(self.tenant.tenant_id, kind, source_id)
        assert found is not None
        return found

    def conversations(self) -> list[dict[str, Any]]:
        connector = self.store.connectors.get(self.tenant.tenant_id, self.connector.connector_id)
        assert connector is not None
        return connector.conversations


@pytest.fixture
def desk(server_url: str) -> Desk:
    store = MemoryStore()
    queue = MemoryTransferQueue()
    services = Services.build(Settings(stage="test", admin_key="x"), store, queue=queue, events=MemoryPublisher())
    use_services(services)
    created = TenantService(store.tenants).create("Desk Transfers")
    tenant = created.tenant
    tenant.settings.update(
        {
            "auto_create_customers": True,
            "auto_create_items": True,
            "income_account": "Services",
            "use_classes": True,
            "expense_credit_card_account": "Company Visa",
        }
    )
    tenant = store.tenants.update(tenant)
    connector = services.connectors.create(
        tenant, ConnectorCreate(name="Main", username="desk-xfer", password=PASSWORD)
    )
    company = the_company()
    invalid: list[str] = []
    if find_xsd("130") is not None:  # every request the app generates is checked against Intuit's XSD
        process = company.process

        def validated(request_xml: str | bytes) -> str:
            invalid.extend(validation_errors(request_xml, "130"))
            return process(request_xml)

        company.process = validated  # type: ignore[method-assign]
    desk = Desk(server_url, services, store, queue, tenant, connector, company, invalid, created.api_key)
    desk.map("resources", {"r-alice": {"name": "Alice Field", "type": "employee"}})
    desk.map("resources", {
        "r-alice": {"name": "Alice Field", "type": "employee"},
        "r-bob": {"name": "Bob Contractor", "type": "vendor"},
    })  # fmt: skip
    desk.map("payroll_categories", {"regular": {"name": "Regular Pay"}, "overtime": {"name": "Overtime Pay"}})
    desk.map("lines_of_business", {"field": {"name": "Field Services"}})
    desk.map("expense_categories", {"travel": {"name": "Travel"}, "supplies": {"name": "Office Supplies"}})
    desk.post("customers", {"id": "c-1", "name": "Acme Ltd", "email": "ap@acme.example"})
    desk.post("items", [{"id": "svc", "name": "Repair", "sku": "REP", "price": "90"}, WIDGET])
    return desk


WIDGET = {"id": "i-widget", "name": "Widget", "sku": "Widget", "price": "4.00", "type": "product"}
TIMESHEET = {
    "id": "t-1",
    "date": "2026-11-02",
    "resource_id": "r-alice",
    "customer_id": "c-1",
    "service_item_id": "svc",
    "payroll_category": "regular",
    "line_of_business": "field",
    "duration": "PT7H30M",
    "billable": True,
    "notes": "Boiler",
}


def test_timesheets_expense_reports_and_purchase_orders_land_with_the_mapped_references(desk: Desk) -> None:
    desk.post("timesheets", [TIMESHEET, {**TIMESHEET, "id": "t-2", "duration": 1.25, "billable": False}])
    desk.post(
        "expense_reports",
        [
            {
                "id": "e-bill",
                "date": "2026-11-03",
                "resource_id": "r-bob",
                "ref_number": "ER-1",
                "lines": [
                    {"category": "travel", "amount": "120.00", "customer_id": "c-1", "billable": True},
                    {"category": "supplies", "amount": "30.50", "line_of_business": "field"},
                ],
            },
            {
                "id": "e-card",
                "date": "2026-11-03",
                "resource_id": "r-alice",
                "paid_with": "credit_card",
                "lines": [{"category": "travel", "amount": "45.00", "description": "Taxi"}],
            },
        ],
    )
    desk.post(
        "purchase_orders",
        {
            "id": "po-1",
            "date": "2026-11-04",
            "vendor": "Parts Inc",
            "ref_number": "PO-1",
            "expected_date": "2026-11-20",
            "lines": [{"item_id": "i-widget", "quantity": "10", "rate": "2.50"}],
        },
    )
    desk.sync()

    states = {k: desk.record(kind, k).state for kind, k in TRANSFERS}
    assert states == dict.fromkeys(states, "synced"), {k: desk.record(kind, k).reason for kind, k in TRANSFERS}
    assert desk.invalid == []
    p = desk.company.purchasing
    times = {t["Duration"]: t for t in map(p.describe, p.of_type("TimeTracking"))}
    assert set(times) == {"PT7H30M0S", "PT1H15M0S"}
    full = times["PT7H30M0S"]
    assert (full["EntityRef"], full["CustomerRef"], full["ItemServiceRef"]) == ("Alice Field", "Acme Ltd", "Repair")
    assert (full["PayrollItemWageRef"], full["ClassRef"], full["BillableStatus"]) == (
        "Regular Pay",
        "Field Services",
        "Billable",
    )
    assert times["PT1H15M0S"]["BillableStatus"] == "NotBillable"
    [bill] = map(p.describe, p.of_type("Bill"))
    assert (bill["VendorRef"], bill["RefNumber"], bill["AmountDue"]) == ("Bob Contractor", "ER-1", "150.50")
    assert [(ln["AccountRef"], ln.get("CustomerRef"), ln.get("ClassRef")) for ln in bill["lines"]] == [
        ("Travel", "Acme Ltd", None),
        ("Office Supplies", None, "Field Services"),
    ]
    [charge] = map(p.describe, p.of_type("CreditCardCharge"))
    assert (charge["AccountRef"], charge["PayeeEntityRef"], charge["Amount"]) == (
        "Company Visa",
        "Alice Field",
        "45.00",
    )
    [order] = map(p.describe, p.of_type("PurchaseOrder"))
    assert (order["VendorRef"], order["RefNumber"], order["ExpectedDate"]) == ("Parts Inc", "PO-1", "2026-11-20")
    assert [(ln["ItemRef"], ln["Quantity"], ln["Amount"]) for ln in order["lines"]] == [("Widget", "10", "25.00")]
    assert desk.record("purchase_orders", "po-1").qb_id == p.of_type("PurchaseOrder")[0].txn_id
    assert desk.conversations()[0]["status"] == "success"


TRANSFERS = [
    ("timesheets", "t-1"),
    ("timesheets", "t-2"),
    ("expense_reports", "e-bill"),
    ("expense_reports", "e-card"),
    ("purchase_orders", "po-1"),
]


def test_missing_mapping_is_a_configuration_issue_and_fixing_it_sends_the_record(desk: Desk) -> None:
    desk.post("timesheets", [TIMESHEET, {**TIMESHEET, "id": "t-new", "resource_id": "r-carol"}])
    desk.post(
        "expense_reports",
        {"id": "e-emp", "date": "2026-11-03", "resource_id": "r-alice", "lines": [{"category": "x", "amount": 5}]},
    )
    desk.sync()

    blocked = desk.record("timesheets", "t-new")
    assert blocked.state == "blocked" and blocked.reason is not None
    assert blocked.reason["code"] == "mapping_missing" and "r-carol" in blocked.reason["message"]
    assert "PUT /v1/mappings/resources" in blocked.reason["action"]
    told = desk.services.events.of_type("configuration.issue")  # type: ignore[attr-defined]
    assert {(e["detail"]["id"], e["detail"]["code"]) for e in told} == {
        ("t-new", "mapping_missing"),
        ("e-emp", "mapping_missing"),
    }
    # The expense report's first problem found: the category has no mapping.
    assert desk.record("expense_reports", "e-emp").reason["code"] == "mapping_missing"  # type: ignore[index]
    assert desk.record("timesheets", "t-1").state == "synced"
    reported = [c for c in desk.conversations() if c["status"] == "success_with_configuration_issues"]
    assert sum(c["config_issues"] for c in reported) == 2  # each reported once, by the run after it was found
    assert {(d["kind"], d["id"]) for c in reported for d in c["config_issue_details"]} >= {
        ("timesheets", "t-new"),
        ("expense_reports", "e-emp"),
    }
    assert len(desk.company.purchasing.of_type("TimeTracking")) == 1

    # An employee cannot be a bill's vendor: a configuration issue too, with its own code.
    desk.map("expense_categories", {"x": {"name": "Travel"}})
    desk.services.bulk.resync(desk.tenant, "expense_reports", "e-emp")
    desk.drain()
    assert desk.record("expense_reports", "e-emp").reason["code"] == "mapping_wrong_type"  # type: ignore[index]

    desk.map("resources", {
        "r-alice": {"name": "Alice Field", "type": "employee"},
        "r-carol": {"name": "Bob Contractor", "type": "vendor"},
    })  # fmt: skip
    desk.services.bulk.resync(desk.tenant, "timesheets", "t-new")
    desk.sync(runs=2)
    assert desk.record("timesheets", "t-new").state == "synced"
    entities = sorted(
        p["EntityRef"] for p in map(desk.company.purchasing.describe, desk.company.purchasing.of_type("TimeTracking"))
    )
    assert entities == ["Alice Field", "Bob Contractor"]
    assert desk.invalid == []


def test_stale_mapping_answered_3140_is_reported_the_same_way(desk: Desk) -> None:
    desk.post("timesheets", {**TIMESHEET, "payroll_category": "overtime"})  # mapped to a wage item QB lacks
    desk.sync()
    record = desk.record("timesheets", "t-1")
    assert record.state == "blocked" and record.reason is not None
    assert record.reason["code"] == "mapping_stale" and record.reason["qb_code"] == "3140"
    assert record.reason["mapping_kind"] == "payroll_categories" and record.reason["mapping_key"] == "overtime"
    last = desk.conversations()[0]
    assert last["status"] == "success_with_configuration_issues" and last["config_issues"] == 1
    assert last["errors"] == {}

    desk.company.purchasing.add_payroll_wage_item("Overtime Pay", "Payroll Expenses")  # created in QuickBooks
    desk.services.bulk.resync(desk.tenant, "timesheets", "t-1")
    desk.sync(runs=2)
    assert desk.record("timesheets", "t-1").state == "synced"
    [entry] = map(desk.company.purchasing.describe, desk.company.purchasing.of_type("TimeTracking"))
    assert entry["PayrollItemWageRef"] == "Overtime Pay"


def test_a_disabled_transfer_waits_and_goes_when_turned_on(desk: Desk) -> None:
    transfers = ["customers", "items", "invoices", "payments", "timesheets", "expense_reports"]
    desk.patch_connector({"enabled_transfers": transfers})
    desk.post("purchase_orders", {"id": "po-1", "date": "2026-11-04", "vendor": "Parts Inc", "lines": [
        {"item_id": "i-widget", "quantity": "3", "rate": "2"}]})  # fmt: skip
    desk.sync(runs=2)
    waiting = desk.record("purchase_orders", "po-1")
    assert waiting.state == "waiting" and waiting.reason is not None and waiting.reason["code"] == "transfer_disabled"
    assert "PATCH /v1/connectors/" in waiting.reason["action"]
    assert desk.company.purchasing.of_type("PurchaseOrder") == []

    desk.patch_connector({"enabled_transfers": [*transfers, "purchase_orders"]})  # the route releases it
    desk.sync(runs=2)
    assert desk.record("purchase_orders", "po-1").state == "synced"
    [order] = desk.company.purchasing.of_type("PurchaseOrder")
    assert order.lines[0]["Quantity"] == "3" and Decimal(order.header["TotalAmount"]) == Decimal("6.00")


def test_received_purchase_orders_raise_quantities_read_back_as_inventory_updates(desk: Desk) -> None:
    inventory = desk.services.inventory
    connector = desk.store.connectors.get(desk.tenant.tenant_id, desk.connector.connector_id)
    assert connector is not None
    assert inventory.enqueue(connector) is False  # no purchase order sent yet: nothing to read
    desk.post("purchase_orders", {"id": "po-1", "date": "2026-11-04", "vendor": "Parts Inc", "ref_number": "PO-7",
              "lines": [{"item_id": "i-widget", "quantity": "10", "rate": "2.50"}]})  # fmt: skip
    desk.sync()
    assert desk.record("purchase_orders", "po-1").state == "synced"

    assert inventory.enqueue(connector) is True
    assert inventory.enqueue(connector) is False  # the read still waits for the Web Connector
    desk.sync(runs=1)
    events = desk.services.events.of_type("inventory.updated")  # type: ignore[attr-defined]
    assert [(e["detail"]["item_id"], e["detail"]["quantity_on_hand"]) for e in events] == [("i-widget", "5")]

    assert desk.company.purchasing.receive_purchase_order("PO-7") == {"Widget": "15"}  # received in QuickBooks
    assert inventory.enqueue(connector) is True
    desk.sync(runs=1)
    events = desk.services.events.of_type("inventory.updated")  # type: ignore[attr-defined]
    assert [(e["detail"]["quantity_on_hand"], e["detail"]["previous"]) for e in events[1:]] == [("15", "5")]

    assert inventory.enqueue(connector) is True  # nothing changed since: no event
    desk.sync(runs=1)
    assert len(desk.services.events.of_type("inventory.updated")) == 2  # type: ignore[attr-defined]

    base = desk.url.removesuffix("/qbwc")
    auth = {"Authorization": f"Bearer {desk.api_key}"}
    level = requests.get(f"{base}/v1/inventory/i-widget", headers=auth, timeout=10).json()
    assert (level["quantity_on_hand"], level["name"], level["item_id"]) == ("15", "Widget", "i-widget")
    listed = requests.get(f"{base}/v1/inventory", headers=auth, timeout=10).json()["items"]
    assert [(i["item_id"], i["quantity_on_hand"]) for i in listed] == [("i-widget", "15")]
    missing = requests.get(f"{base}/v1/inventory/svc", headers=auth, timeout=10)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_a_setting_naming_an_account_quickbooks_lacks_is_a_configuration_issue(desk: Desk) -> None:
    tenant = desk.store.tenants.get(desk.tenant.tenant_id)
    assert tenant is not None
    tenant.settings["expense_credit_card_account"] = "Amex"  # not in the company file
    desk.store.tenants.update(tenant)
    report = {"id": "e-1", "date": "2026-11-03", "resource_id": "r-alice", "paid_with": "credit_card",
              "lines": [{"category": "travel", "amount": "45.00"}]}  # fmt: skip
    desk.post("expense_reports", report)
    desk.sync()
    record = desk.record("expense_reports", "e-1")
    assert record.state == "blocked" and record.reason is not None
    assert (
        record.reason["code"] == "quickbooks_reference_missing"
        and "PATCH /v1/tenant/settings" in record.reason["action"]
    )
    assert any(c["status"] == "success_with_configuration_issues" for c in desk.conversations())
    assert desk.company.purchasing.of_type("CreditCardCharge") == []


def test_an_unknown_vendor_named_by_the_record_is_the_records_failure(desk: Desk) -> None:
    desk.post("purchase_orders", {"id": "po-x", "date": "2026-11-04", "vendor": "Nobody Supplies",
              "lines": [{"item_id": "i-widget", "quantity": "1", "rate": "1"}]})  # fmt: skip
    desk.sync()
    record = desk.record("purchase_orders", "po-x")
    assert record.state == "failed" and record.reason is not None
    assert record.reason["code"] == "quickbooks_error" and record.reason["qb_code"] == "3140"
    assert 'Vendor "Nobody Supplies"' in record.reason["message"]
