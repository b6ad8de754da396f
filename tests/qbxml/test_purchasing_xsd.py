"""Time tracking, bills, credit-card charges, purchase orders and the inventory query (T6-T8): every request
validates against Intuit's 13.0 and 16.0 XSDs, and the builders refuse what QuickBooks would refuse."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
from lxml import etree  # type: ignore[import-untyped]

from qbsync.qbxml import QbxmlFieldError, Ref, build_message_set
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
    format_duration,
)
from qbsync.qbxml.safexml import parse_xml

FULL_TIME = TimeTracking(
    entity="Zoë Łódź",
    minutes=7 * 60 + 30,
    txn_date=date(2026, 11, 2),
    customer=Ref(list_id="80000001-1700000000"),
    service_item="Consulting:Hourly",
    rate=Decimal("95.5"),
    class_ref="Field Services",
    payroll_item="Regular Pay",
    notes="Fixed the\nboiler",
    billable_status="Billable",
)
LINES = (
    ExpenseLine(account="Travel", amount=Decimal("120.00"), memo="Taxi", customer="Acme", billable_status="Billable"),
    ExpenseLine(account="Meals", amount=Decimal("35.10"), class_ref="Field Services"),
)
CASES: dict[str, Callable[[], etree._Element]] = {
    "time_full": lambda: build_time_tracking_add("1", FULL_TIME),
    "time_minimal": lambda: build_time_tracking_add("2", TimeTracking(entity="Bob", minutes=15)),
    "bill": lambda: build_bill_add(
        "3",
        Bill(
            vendor="Bob Vendor",
            lines=LINES,
            ap_account="Accounts Payable",
            txn_date=date(2026, 11, 3),
            due_date=date(2026, 12, 3),
            ref_number="ER-12345678901234567",
            memo="Expense report ER-1",
        ),
    ),
    "credit_card": lambda: build_credit_card_charge_add(
        "4",
        CreditCardCharge(
            account="Company Visa", payee="Bob", lines=LINES, txn_date=date(2026, 11, 3), ref_number="ER-1", memo="m"
        ),
    ),
    "purchase_order": lambda: build_purchase_order_add(
        "5",
        PurchaseOrder(
            vendor="Parts Inc",
            class_ref="Field Services",
            txn_date=date(2026, 11, 4),
            ref_number="PO-1001",
            expected_date=date(2026, 11, 20),
            memo="Restock",
            vendor_message="Deliver to the back door",
            lines=(
                PurchaseOrderLine(item="Widget", quantity=Decimal("10"), rate=Decimal("2.5"), description="Widgets"),
                PurchaseOrderLine(item=Ref(list_id="80000009-1700000000"), quantity=Decimal("1.25")),
            ),
        ),
    ),
    "inventory_query_all": lambda: build_item_inventory_query("6", max_returned=100, iterator="Start"),
    "inventory_query_ids": lambda: build_item_inventory_query("7", list_ids=["80000009-1700000000"]),
}


def _errors(schema: etree.XMLSchema, document: str) -> list[str]:
    ok = schema.validate(parse_xml(document))
    return [] if ok else [f"{e.line}: {e.message}" for e in schema.error_log]


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_request_validates(case: str, schema130: etree.XMLSchema, schema160: etree.XMLSchema) -> None:
    assert _errors(schema130, build_message_set([CASES[case]()])) == []
    assert _errors(schema160, build_message_set([CASES[case]()])) == []


def test_all_in_one_message_set(schema130: etree.XMLSchema) -> None:
    document = build_message_set([build() for build in CASES.values()])
    assert _errors(schema130, document) == []


def test_time_tracking_fields_in_order_and_latin1_safe() -> None:
    rq = build_time_tracking_add("1", FULL_TIME)
    node = rq.find("TimeTrackingAdd")
    assert [child.tag for child in node] == [
        "TxnDate",
        "EntityRef",
        "CustomerRef",
        "ItemServiceRef",
        "Rate",
        "Duration",
        "ClassRef",
        "PayrollItemWageRef",
        "Notes",
        "BillableStatus",
    ]
    assert node.findtext("Duration") == "PT7H30M0S"
    assert node.findtext("EntityRef/FullName") == "Zoë Lódz"  # Latin-1: ë kept, Ł and ź folded
    assert node.findtext("CustomerRef/ListID") == "80000001-1700000000"


def test_durations() -> None:
    assert format_duration("Duration", 1) == "PT0H1M0S"
    assert format_duration("Duration", 600) == "PT10H0M0S"
    for bad in (0, -5, 7 * 24 * 60 + 1):
        with pytest.raises(QbxmlFieldError, match="Duration"):
            format_duration("Duration", bad)


def test_refusals_name_the_element() -> None:
    with pytest.raises(QbxmlFieldError, match="BillableStatus"):
        build_time_tracking_add("1", TimeTracking(entity="Bob", minutes=60, billable_status="Billable"))
    with pytest.raises(QbxmlFieldError, match="ExpenseLineAdd"):
        build_bill_add("1", Bill(vendor="V", lines=()))
    with pytest.raises(QbxmlFieldError, match=r"ExpenseLineAdd\[1\]/Amount"):
        build_bill_add("1", Bill(vendor="V", lines=(ExpenseLine(account="A", amount=Decimal("1.005")),)))
    with pytest.raises(QbxmlFieldError, match="RefNumber"):
        build_credit_card_charge_add(
            "1", CreditCardCharge(account="Visa", ref_number="X" * 12, lines=(ExpenseLine(account="A", amount=1),))
        )
    with pytest.raises(QbxmlFieldError, match=r"PurchaseOrderLineAdd\[1\]/ItemRef/FullName"):
        build_purchase_order_add("1", PurchaseOrder(vendor="V", lines=(PurchaseOrderLine(item="I" * 160),)))
    with pytest.raises(QbxmlFieldError, match="PurchaseOrderLineAdd"):
        build_purchase_order_add("1", PurchaseOrder(vendor="V", lines=()))
