"""Records and request builders for the Desktop transfers of time and purchasing (T6-T8): TimeTrackingAdd,
BillAdd, CreditCardChargeAdd, PurchaseOrderAdd and ItemInventoryQuery.

Same rules as :mod:`qbsync.qbxml.builders`: exact qbXML 13.0 element order, every text Latin-1 safe and within its
limit, amounts with two decimals (never rounded); problems raise :class:`QbxmlFieldError` naming the element.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from lxml import etree

from qbsync.qbxml.builders import (
    ActiveStatus,
    IteratorMode,
    _amount,
    _date,
    _el,
    _iterator_attrs,
    _list_query,
    _price,
    _ref,
    _rq,
    _tail,
    _text,
)
from qbsync.qbxml.errors import QbxmlFieldError
from qbsync.qbxml.records import BillableStatus, RefLike

MAX_DURATION_MINUTES = 24 * 60 * 7  # one entry of more than a week is a typo, not a timesheet


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeTracking:
    """One time entry. ``entity`` is the employee, vendor or other name who did the work."""

    entity: RefLike
    minutes: int
    txn_date: date | None = None
    customer: RefLike | None = None
    service_item: RefLike | None = None
    rate: Decimal | None = None
    class_ref: RefLike | None = None
    payroll_item: RefLike | None = None
    notes: str | None = None
    billable_status: BillableStatus | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpenseLine:
    account: RefLike
    amount: Decimal
    memo: str | None = None
    customer: RefLike | None = None
    class_ref: RefLike | None = None
    billable_status: BillableStatus | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Bill:
    vendor: RefLike
    lines: tuple[ExpenseLine, ...]
    ap_account: RefLike | None = None
    txn_date: date | None = None
    due_date: date | None = None
    ref_number: str | None = None
    memo: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditCardCharge:
    account: RefLike  # the credit card account
    lines: tuple[ExpenseLine, ...]
    payee: RefLike | None = None
    txn_date: date | None = None
    ref_number: str | None = None
    memo: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PurchaseOrderLine:
    item: RefLike
    quantity: Decimal | None = None
    rate: Decimal | None = None
    description: str | None = None
    class_ref: RefLike | None = None
    amount: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PurchaseOrder:
    vendor: RefLike
    lines: tuple[PurchaseOrderLine, ...]
    class_ref: RefLike | None = None
    txn_date: date | None = None
    ref_number: str | None = None
    expected_date: date | None = None
    memo: str | None = None
    vendor_message: str | None = None


def format_duration(field: str, minutes: int) -> str:
    """TIMEINTERVALTYPE as QuickBooks writes it: ``PT7H30M0S``."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
        raise QbxmlFieldError(field, "must be a positive number of minutes")
    if minutes > MAX_DURATION_MINUTES:
        raise QbxmlFieldError(field, f"must be at most {MAX_DURATION_MINUTES // 60} hours")
    return f"PT{minutes // 60}H{minutes % 60}M0S"


def _billable(parent: etree._Element, status: BillableStatus | None, path: str = "") -> None:
    if status is None:
        return
    if status not in ("Billable", "NotBillable", "HasBeenBilled"):
        raise QbxmlFieldError(path + "BillableStatus", f"{status!r} is not Billable, NotBillable or HasBeenBilled")
    _el(parent, "BillableStatus", status)


def build_time_tracking_add(
    request_id: str, entry: TimeTracking, *, include_ret_elements: Sequence[str] = ()
) -> etree._Element:
    rq = _rq("TimeTrackingAddRq", request_id)
    node = _el(rq, "TimeTrackingAdd")
    _date(node, "TxnDate", entry.txn_date)
    _ref(node, "EntityRef", entry.entity)
    _ref(node, "CustomerRef", entry.customer)
    _ref(node, "ItemServiceRef", entry.service_item)
    _price(node, "Rate", entry.rate)
    _el(node, "Duration", format_duration("Duration", entry.minutes))
    _ref(node, "ClassRef", entry.class_ref)
    _ref(node, "PayrollItemWageRef", entry.payroll_item)
    _text(node, "Notes", entry.notes, 4095)
    if entry.billable_status == "Billable" and entry.customer is None:
        raise QbxmlFieldError("BillableStatus", "a billable time entry needs a CustomerRef")
    _billable(node, entry.billable_status)
    _tail(rq, include_ret_elements)
    return rq


def _expense_lines(node: etree._Element, lines: Sequence[ExpenseLine]) -> None:
    if not lines:
        raise QbxmlFieldError("ExpenseLineAdd", "at least one expense line is required")
    for index, line in enumerate(lines, start=1):
        path = f"ExpenseLineAdd[{index}]/"
        el = _el(node, "ExpenseLineAdd")
        _ref(el, "AccountRef", line.account, path=path)
        _amount(el, "Amount", line.amount, path=path)
        _text(el, "Memo", line.memo, 4095, path=path)
        _ref(el, "CustomerRef", line.customer, path=path)
        _ref(el, "ClassRef", line.class_ref, path=path)
        if line.billable_status == "Billable" and line.customer is None:
            raise QbxmlFieldError(path + "BillableStatus", "a billable expense needs a CustomerRef")
        _billable(el, line.billable_status, path)


def build_bill_add(request_id: str, bill: Bill, *, include_ret_elements: Sequence[str] = ()) -> etree._Element:
    rq = _rq("BillAddRq", request_id)
    node = _el(rq, "BillAdd")
    _ref(node, "VendorRef", bill.vendor)
    _ref(node, "APAccountRef", bill.ap_account)
    _date(node, "TxnDate", bill.txn_date)
    _date(node, "DueDate", bill.due_date)
    _text(node, "RefNumber", bill.ref_number, 20)
    _text(node, "Memo", bill.memo, 4095)
    _expense_lines(node, bill.lines)
    _tail(rq, include_ret_elements)
    return rq


def build_credit_card_charge_add(
    request_id: str, charge: CreditCardCharge, *, include_ret_elements: Sequence[str] = ()
) -> etree._Element:
    rq = _rq("CreditCardChargeAddRq", request_id)
    node = _el(rq, "CreditCardChargeAdd")
    _ref(node, "AccountRef", charge.account)
    _ref(node, "PayeeEntityRef", charge.payee)
    _date(node, "TxnDate", charge.txn_date)
    _text(node, "RefNumber", charge.ref_number, 11)
    _text(node, "Memo", charge.memo, 4095)
    _expense_lines(node, charge.lines)
    _tail(rq, include_ret_elements)
    return rq


def build_purchase_order_add(
    request_id: str, order: PurchaseOrder, *, include_ret_elements: Sequence[str] = ()
) -> etree._Element:
    if not order.lines:
        raise QbxmlFieldError("PurchaseOrderLineAdd", "at least one line is required")
    rq = _rq("PurchaseOrderAddRq", request_id)
    node = _el(rq, "PurchaseOrderAdd")
    _ref(node, "VendorRef", order.vendor)
    _ref(node, "ClassRef", order.class_ref)
    _date(node, "TxnDate", order.txn_date)
    _text(node, "RefNumber", order.ref_number, 11)
    _date(node, "ExpectedDate", order.expected_date)
    _text(node, "Memo", order.memo, 4095)
    _text(node, "VendorMsg", order.vendor_message, 99)
    for index, line in enumerate(order.lines, start=1):
        path = f"PurchaseOrderLineAdd[{index}]/"
        el = _el(node, "PurchaseOrderLineAdd")
        _ref(el, "ItemRef", line.item, path=path)
        _text(el, "Desc", line.description, 4095, path=path)
        _price(el, "Quantity", line.quantity, path=path)
        _price(el, "Rate", line.rate, path=path)
        _ref(el, "ClassRef", line.class_ref, path=path)
        _amount(el, "Amount", line.amount, path=path)
    _tail(rq, include_ret_elements)
    return rq


def build_item_inventory_query(
    request_id: str,
    *,
    list_ids: Sequence[str] = (),
    full_names: Sequence[str] = (),
    max_returned: int | None = None,
    active_status: ActiveStatus | None = None,
    from_modified: datetime | None = None,
    iterator: IteratorMode | None = None,
    iterator_id: str | None = None,
    include_ret_elements: Sequence[str] = (),
) -> etree._Element:
    """ItemInventoryQuery: inventory parts with their QuantityOnHand (all, by id/name, or changed since)."""
    rq = _rq("ItemInventoryQueryRq", request_id, **_iterator_attrs(iterator, iterator_id))
    _list_query(
        rq,
        list_ids=list_ids,
        full_names=full_names,
        full_name_limit=159,
        max_returned=max_returned,
        active_status=active_status,
        from_modified=from_modified,
        to_modified=None,
        name_filter=None,
    )
    _tail(rq, include_ret_elements)
    return rq


__all__ = [
    "Bill",
    "CreditCardCharge",
    "ExpenseLine",
    "PurchaseOrder",
    "PurchaseOrderLine",
    "TimeTracking",
    "build_bill_add",
    "build_credit_card_charge_add",
    "build_item_inventory_query",
    "build_purchase_order_add",
    "build_time_tracking_add",
    "format_duration",
]
