"""Issue 6, part B, done-when: timesheets, expense reports and purchase orders go through `qbsync wc-sim` (every
request XSD-valid) into the fake company with the mapped references; a missing mapping shows as a configuration
issue on the conversation and on the record, and fixing the mapping then re-syncing lands it; a purchase order
received in QuickBooks comes back as a quantity on hand after one `qbsync run-schedule reconcile`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.fake_qbd import FakeCompany, admin
from infra.local_stack import LocalStack
from qbsync import cli
from tests.e2e.helpers import run_wc_sim

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
USER = "xfer-desk"


def wait_for(predicate: Callable[[], bool], what: Callable[[], Any], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.3)
    assert predicate(), what()


def the_company(state_file: Path) -> None:
    company = FakeCompany()
    body = "".join(
        f"<AccountAddRq><AccountAdd><Name>{name}</Name><AccountType>{kind}</AccountType></AccountAdd></AccountAddRq>"
        for name, kind in (("Travel", "Expense"), ("Payroll Expenses", "Expense"), ("Company Visa", "CreditCard"))
    )
    body += "<VendorAddRq><VendorAdd><Name>Bob Contractor</Name></VendorAdd></VendorAddRq>"
    body += "<VendorAddRq><VendorAdd><Name>Parts Inc</Name></VendorAdd></VendorAddRq>"
    body += "<ClassAddRq><ClassAdd><Name>Field Services</Name></ClassAdd></ClassAddRq>"
    answer = company.process(
        f'<?xml version="1.0"?><?qbxml version="13.0"?><QBXML><QBXMLMsgsRq onError="stopOnError">{body}'
        "</QBXMLMsgsRq></QBXML>"
    )
    assert 'statusCode="3' not in answer, answer
    state_file.write_text(company.to_json())
    for argv in (  # what the QuickBooks user set up, through the admin hooks
        ["add-employee", "Alice Field"],
        ["add-payroll-item", "Regular Pay", "--expense-account", "Payroll Expenses"],
        ["add-inventory-item", "Widget", "--quantity", "5"],
    ):
        assert admin.main(["--company-state", str(state_file), *argv]) == 0


def test_desktop_time_expenses_purchase_orders_and_inventory(stack: LocalStack, tmp_path: Path) -> None:
    base = stack.base_url
    admin_auth = {"Authorization": f"Bearer {stack.admin_key}"}
    key = requests.post(f"{base}/v1/tenants", json={"name": "Xfer Desk"}, headers=admin_auth, timeout=10).json()[
        "api_key"
    ]
    auth = {"Authorization": f"Bearer {key}"}

    def call(method: str, path: str, body: Any = None, status: int = 200) -> Any:
        answer = requests.request(method, f"{base}{path}", json=body, headers=auth, timeout=30)
        assert answer.status_code == status, answer.text
        return answer.json()

    call("PATCH", "/v1/tenant/settings", {"income_account": "Services", "auto_create_customers": True,
         "auto_create_items": True, "use_classes": True, "expense_credit_card_account": "Company Visa"})  # fmt: skip
    connector = call("POST", "/v1/connectors", {"name": "Desk", "username": USER, "password": PASSWORD}, 201)
    state_file = tmp_path / "desk.json"
    the_company(state_file)
    resources = {
        "r-alice": {"name": "Alice Field", "type": "employee"},
        "r-bob": {"name": "Bob Contractor", "type": "vendor"},
    }
    call("PUT", "/v1/mappings/resources", {"entries": resources})
    call("PUT", "/v1/mappings/payroll_categories", {"entries": {"regular": {"name": "Regular Pay"}}})
    call("PUT", "/v1/mappings/lines_of_business", {"entries": {"field": {"name": "Field Services"}}})
    call("PUT", "/v1/mappings/expense_categories", {"entries": {"travel": {"name": "Travel"}}})

    call("POST", "/v1/customers", {"id": "c-1", "name": "Acme Ltd", "email": "ap@acme.example"}, 202)
    call("POST", "/v1/items", [{"id": "svc", "name": "Repair", "sku": "REP", "price": "90"},
         {"id": "i-widget", "name": "Widget", "sku": "Widget", "type": "product"}], 202)  # fmt: skip
    timesheet = {"id": "t-1", "date": "2026-11-02", "resource_id": "r-alice", "customer_id": "c-1",
                 "service_item_id": "svc", "payroll_category": "regular", "line_of_business": "field",
                 "duration": "PT7H30M", "billable": True}  # fmt: skip
    call("POST", "/v1/timesheets", [timesheet, {**timesheet, "id": "t-carol", "resource_id": "r-carol"}], 202)
    call("POST", "/v1/expense-reports", [
        {"id": "e-bill", "date": "2026-11-03", "resource_id": "r-bob", "ref_number": "ER-1",
         "lines": [{"category": "travel", "amount": "120.00", "customer_id": "c-1", "billable": True}]},
        {"id": "e-card", "date": "2026-11-03", "resource_id": "r-alice", "paid_with": "credit_card",
         "lines": [{"category": "travel", "amount": "45.00", "line_of_business": "field"}]}], 202)  # fmt: skip
    call("POST", "/v1/purchase-orders", {"id": "po-1", "date": "2026-11-04", "vendor_resource_id": "r-bob",
         "ref_number": "PO-1", "lines": [{"item_id": "i-widget", "quantity": "10", "rate": "2.50"}]}, 202)  # fmt: skip

    records = [("timesheets", "t-1"), ("expense-reports", "e-bill"), ("expense-reports", "e-card"),
               ("purchase-orders", "po-1")]  # fmt: skip

    def state(path: str, record_id: str) -> dict[str, Any]:
        return dict(call("GET", f"/v1/{path}/{record_id}"))

    def settled() -> bool:
        return (
            all(state(p, i)["state"] == "synced" for p, i in records)
            and state("timesheets", "t-carol")["state"] == "blocked"
        )

    for _ in range(4):  # the first run reads the company's lists; the transfers go in the next ones
        output = run_wc_sim(base, USER, PASSWORD, state_file)
        assert "xsd: all requests valid" in output, output
        if settled():
            break
        time.sleep(1.5)  # the local worker applies each run's outcomes
    wait_for(settled, lambda: [state(p, i) for p, i in [*records, ("timesheets", "t-carol")]])

    company = FakeCompany.from_json(state_file.read_text())
    p = company.purchasing
    [entry] = map(p.describe, p.of_type("TimeTracking"))
    assert (entry["EntityRef"], entry["CustomerRef"], entry["ItemServiceRef"]) == ("Alice Field", "Acme Ltd", "Repair")
    assert (entry["PayrollItemWageRef"], entry["ClassRef"], entry["Duration"]) == (
        "Regular Pay",
        "Field Services",
        "PT7H30M0S",
    )
    [bill] = map(p.describe, p.of_type("Bill"))
    assert (bill["VendorRef"], bill["lines"][0]["AccountRef"], bill["lines"][0]["CustomerRef"]) == (
        "Bob Contractor",
        "Travel",
        "Acme Ltd",
    )
    [charge] = map(p.describe, p.of_type("CreditCardCharge"))
    assert (charge["AccountRef"], charge["PayeeEntityRef"], charge["lines"][0]["ClassRef"]) == (
        "Company Visa",
        "Alice Field",
        "Field Services",
    )
    [order] = map(p.describe, p.of_type("PurchaseOrder"))
    assert (order["VendorRef"], order["lines"][0]["ItemRef"], order["lines"][0]["Quantity"]) == (
        "Bob Contractor",
        "Widget",
        "10",
    )

    # The missing mapping: on the record, and on the connector grid's conversations.
    carol = state("timesheets", "t-carol")
    assert carol["reason"]["code"] == "mapping_missing" and "r-carol" in carol["reason"]["message"]
    grid = call("GET", f"/v1/connectors/{connector['connector_id']}")
    flagged = [c for c in grid["conversations"] if c["status"] == "success_with_configuration_issues"]
    assert flagged and ("timesheets", "t-carol") in {
        (d["kind"], d["id"]) for c in flagged for d in c["config_issue_details"]
    }

    # Fix the mapping, re-sync: it lands.
    resources["r-carol"] = {"name": "Bob Contractor", "type": "vendor"}
    call("PUT", "/v1/mappings/resources", {"entries": resources})
    call("POST", "/v1/records/timesheets/t-carol/resync", status=202)
    wait_for(lambda: state("timesheets", "t-carol")["state"] == "pending", lambda: state("timesheets", "t-carol"))
    for _ in range(3):
        run_wc_sim(base, USER, PASSWORD, state_file)
        if state("timesheets", "t-carol")["state"] == "synced":
            break
        time.sleep(1.5)
    wait_for(lambda: state("timesheets", "t-carol")["state"] == "synced", lambda: state("timesheets", "t-carol"))
    landed = FakeCompany.from_json(state_file.read_text()).purchasing
    entities = sorted(e["EntityRef"] for e in map(landed.describe, landed.of_type("TimeTracking")))
    assert entities == ["Alice Field", "Bob Contractor"]

    # Inventory: the PO is received in QuickBooks; one reconcile pass + one Web Connector run read it back.
    assert admin.main(["--company-state", str(state_file), "receive-po", "PO-1"]) == 0
    assert cli.main(["run-schedule", "reconcile"]) == 0
    run_wc_sim(base, USER, PASSWORD, state_file)
    wait_for(
        lambda: call("GET", "/v1/inventory")["items"] != [],
        lambda: call("GET", "/v1/inventory"),
    )
    level = call("GET", "/v1/inventory/i-widget")
    assert (level["quantity_on_hand"], level["name"]) == ("15", "Widget")
