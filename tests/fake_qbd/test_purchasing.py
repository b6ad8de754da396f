"""The fake company's time tracking, bills, credit-card charges, purchase orders and inventory (T6-T8), driven by
qbsync's own request builders: references resolve or fail with 3140, totals are computed, receiving a purchase
order raises QuantityOnHand and ItemInventoryQuery reads it back; everything survives the JSON state file."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from infra.fake_qbd import FakeCompany, admin
from infra.fake_qbd.company import StatusError
from qbsync.qbxml import build_message_set, parse_response
from qbsync.qbxml.purchasing import (
    Bill,
    CreditCardCharge,
    ExpenseLine,
    PurchaseOrder,
    PurchaseOrderLine,
    TimeTracking,
    build_bill_add,
    build_credit_card_charge_add,
    build_item_inventory_query,
    build_purchase_order_add,
    build_time_tracking_add,
)


def seed(company: FakeCompany, body: str) -> None:
    answer = company.process(
        '<?xml version="1.0"?><?qbxml version="13.0"?><QBXML>'
        f'<QBXMLMsgsRq onError="stopOnError">{body}</QBXMLMsgsRq></QBXML>'
    )
    assert 'statusCode="3' not in answer, answer


def account(name: str, kind: str) -> str:
    return f"<AccountAddRq><AccountAdd><Name>{name}</Name><AccountType>{kind}</AccountType></AccountAdd></AccountAddRq>"


@pytest.fixture
def company() -> FakeCompany:
    company = FakeCompany()
    seed(
        company,
        account("Travel", "Expense")
        + account("Payroll Expenses", "Expense")
        + account("Company Visa", "CreditCard")
        + account("Inventory Asset", "OtherCurrentAsset")
        + "<CustomerAddRq><CustomerAdd><Name>Acme</Name></CustomerAdd></CustomerAddRq>"
        + "<VendorAddRq><VendorAdd><Name>Parts Inc</Name></VendorAdd></VendorAddRq>"
        + "<ClassAddRq><ClassAdd><Name>Field</Name></ClassAdd></ClassAddRq>"
        + "<ItemServiceAddRq><ItemServiceAdd><Name>Repair</Name><SalesOrPurchase><Price>90</Price>"
        "<AccountRef><FullName>Services</FullName></AccountRef></SalesOrPurchase></ItemServiceAdd></ItemServiceAddRq>"
        + "<ItemInventoryAddRq><ItemInventoryAdd><Name>Widget</Name>"
        "<IncomeAccountRef><FullName>Sales</FullName></IncomeAccountRef>"
        "<COGSAccountRef><FullName>Cost of Goods Sold</FullName></COGSAccountRef>"
        "<AssetAccountRef><FullName>Inventory Asset</FullName></AssetAccountRef>"
        "<QuantityOnHand>5</QuantityOnHand></ItemInventoryAdd></ItemInventoryAddRq>",
    )
    company.purchasing.add_employee("Bob Smith")
    company.purchasing.add_payroll_wage_item("Regular Pay", "Payroll Expenses")
    return company


def send(company: FakeCompany, *requests: etree._Element) -> list:  # type: ignore[type-arg]
    return list(parse_response(company.process(build_message_set(list(requests), on_error="continueOnError"))))


def test_time_tracking_resolves_every_reference(company: FakeCompany) -> None:
    entry = TimeTracking(
        entity="Bob Smith",
        minutes=450,
        txn_date=date(2026, 11, 2),
        customer="Acme",
        service_item="Repair",
        class_ref="Field",
        payroll_item="Regular Pay",
        billable_status="Billable",
    )
    [result] = send(company, build_time_tracking_add("1", entry))
    assert result.ok and result.rets[0].txn_id
    [stored] = company.purchasing.of_type("TimeTracking")
    seen = company.purchasing.describe(stored)
    assert seen["EntityRef"] == "Bob Smith" and seen["CustomerRef"] == "Acme" and seen["ItemServiceRef"] == "Repair"
    assert seen["ClassRef"] == "Field" and seen["PayrollItemWageRef"] == "Regular Pay"
    assert seen["Duration"] == "PT7H30M0S" and seen["BillableStatus"] == "Billable"


@pytest.mark.parametrize(
    ("change", "label"),
    [
        ({"entity": "Nobody"}, 'QuickBooks Entity "Nobody"'),
        ({"payroll_item": "Overtime"}, 'QuickBooks Payroll Item "Overtime"'),
        ({"class_ref": "Retail"}, 'QuickBooks Class "Retail"'),
        ({"service_item": "Widget"}, 'QuickBooks Item "Widget"'),  # an inventory part is not a service
    ],
)
def test_unknown_references_are_3140(company: FakeCompany, change: dict[str, str], label: str) -> None:
    fields = {"entity": "Bob Smith", "service_item": "Repair", "payroll_item": "Regular Pay", "class_ref": "Field"}
    [result] = send(company, build_time_tracking_add("1", TimeTracking(minutes=60, **{**fields, **change})))
    assert result.status_code == 3140 and label in result.status_message
    assert company.purchasing.of_type("TimeTracking") == []


def test_bill_and_credit_card_charge(company: FakeCompany) -> None:
    lines = (
        ExpenseLine(account="Travel", amount=Decimal("120.00"), customer="Acme", billable_status="Billable"),
        ExpenseLine(account="Office Supplies", amount=Decimal("30.50"), class_ref="Field"),
    )
    bill, charge, bad_card = send(
        company,
        build_bill_add("1", Bill(vendor="Parts Inc", lines=lines, ref_number="ER-1")),
        build_credit_card_charge_add("2", CreditCardCharge(account="Company Visa", payee="Bob Smith", lines=lines)),
        build_credit_card_charge_add("3", CreditCardCharge(account="Travel", lines=lines)),
    )
    assert bill.ok and charge.ok and bad_card.status_code == 3140
    [stored] = company.purchasing.of_type("Bill")
    seen = company.purchasing.describe(stored)
    assert seen["VendorRef"] == "Parts Inc" and seen["AmountDue"] == "150.50"
    assert [ln["AccountRef"] for ln in seen["lines"]] == ["Travel", "Office Supplies"]
    assert seen["lines"][0]["CustomerRef"] == "Acme" and seen["lines"][1]["ClassRef"] == "Field"
    [card] = company.purchasing.of_type("CreditCardCharge")
    assert company.purchasing.describe(card)["PayeeEntityRef"] == "Bob Smith"
    [employee_bill] = send(company, build_bill_add("4", Bill(vendor="Bob Smith", lines=lines)))
    assert employee_bill.status_code == 3140 and 'Vendor "Bob Smith"' in employee_bill.status_message


def test_receiving_a_purchase_order_raises_quantity_on_hand(company: FakeCompany, tmp_path: object) -> None:
    order = PurchaseOrder(
        vendor="Parts Inc",
        ref_number="PO-1",
        lines=(PurchaseOrderLine(item="Widget", quantity=Decimal("10"), rate=Decimal("2.50")),),
    )
    [result] = send(company, build_purchase_order_add("1", order))
    assert result.ok
    assert company.purchasing.describe(company.purchasing.of_type("PurchaseOrder")[0])["TotalAmount"] == "25.00"

    [before] = send(company, build_item_inventory_query("2"))
    assert before.rets[0].raw["QuantityOnHand"] == "5"
    restored = FakeCompany.from_json(company.to_json())  # what wc-sim --company-state keeps between runs
    assert restored.purchasing.receive_purchase_order("PO-1") == {"Widget": "15"}
    assert restored.purchasing.receive_purchase_order("PO-1") == {}  # received once
    [after] = send(restored, build_item_inventory_query("3", max_returned=10, iterator="Start"))
    assert after.rets[0].raw["QuantityOnHand"] == "15" and after.rets[0].name == "Widget"
    with pytest.raises(KeyError):
        restored.purchasing.receive_purchase_order("PO-404")


def test_admin_hooks_refuse_duplicates(company: FakeCompany) -> None:
    with pytest.raises(StatusError):
        company.purchasing.add_employee("Acme")  # names are unique across customers, vendors and employees
    with pytest.raises(StatusError):
        company.purchasing.add_payroll_wage_item("Overtime", "No Such Account")


def test_admin_cli_acts_as_the_quickbooks_user(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "desk.json"
    state.write_text(FakeCompany().to_json())
    for argv in (
        ["add-employee", "Alice Field"],
        ["add-payroll-item", "Regular Pay", "--expense-account", "Office Supplies"],
        ["add-inventory-item", "Widget", "--quantity", "5"],
    ):
        assert admin.main(["--company-state", str(state), *argv]) == 0
    assert admin.main(["--company-state", str(state), "add-employee", "Alice Field"]) == 1  # 3100: name in use
    assert admin.main(["--company-state", str(state), "add-inventory-item", "Bolt", "--quantity", "x"]) == 1
    company = FakeCompany.from_json(state.read_text())
    seed(company, "<VendorAddRq><VendorAdd><Name>Parts Inc</Name></VendorAdd></VendorAddRq>")
    order = PurchaseOrder(
        vendor="Parts Inc", ref_number="PO-9", lines=(PurchaseOrderLine(item="Widget", quantity=Decimal("2.5")),)
    )
    [result] = send(company, build_purchase_order_add("1", order))
    assert result.ok
    state.write_text(company.to_json())
    assert admin.main(["--company-state", str(state), "receive-po", "PO-9"]) == 0
    assert admin.main(["--company-state", str(state), "receive-po", "PO-404"]) == 1
    capsys.readouterr()
    assert admin.main(["--company-state", str(state), "inventory"]) == 0
    assert json.loads(capsys.readouterr().out) == {"Widget": "7.5"}
