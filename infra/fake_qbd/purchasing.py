"""The fake company's time tracking, bills, credit-card charges, purchase orders and inventory (T6-T8).

Modelled like the rest of the fake (see ``company.py``): every reference must resolve (3140 "invalid reference to
QuickBooks <list> …", the list being ``Entity`` for time and payees, ``Vendor``, ``Customer``, ``Item``,
``Account``, ``Class``, ``Payroll Item``); a time entry's ItemServiceRef must be a service item and a credit-card
charge's AccountRef a CreditCard account; amounts are computed (PO line Amount = Quantity x Rate, bill AmountDue =
its lines). Receiving a purchase order (an admin hook, what a user does in QuickBooks with "Receive Items") raises
the QuantityOnHand of its inventory items, which ``ItemInventoryQuery`` reads back.
Employees and payroll wage items are added with admin hooks (EmployeeAdd derives the name from its parts in
QuickBooks; qbsync never adds either).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from lxml import etree

from infra.fake_qbd.xmlio import money, sub, text, to_decimal

if TYPE_CHECKING:
    from infra.fake_qbd.company import FakeCompany, ListRecord

CENT = Decimal("0.01")
DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$")
NAME_KINDS = ("Customer", "Vendor", "Employee", "OtherName")
TIME_ENTITY_KINDS = ("Employee", "Vendor", "OtherName")
ITEM_REF_KINDS = ("ItemService", "ItemNonInventory", "ItemInventory", "ItemDiscount", "ItemSalesTax")
# Header elements of each transaction's Ret, in qbXML 13.0 order (references resolved to ListID + FullName).
HEADER_ORDER: dict[str, list[str]] = {
    "TimeTracking": [
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
    ],
    "Bill": ["VendorRef", "APAccountRef", "TxnDate", "DueDate", "AmountDue", "RefNumber", "Memo", "IsPaid"],
    "CreditCardCharge": ["AccountRef", "PayeeEntityRef", "TxnDate", "Amount", "RefNumber", "Memo"],
    "PurchaseOrder": [
        "VendorRef",
        "ClassRef",
        "TxnDate",
        "RefNumber",
        "ExpectedDate",
        "TotalAmount",
        "IsManuallyClosed",
        "IsFullyReceived",
        "Memo",
        "VendorMsg",
    ],
}
LINE_ORDER: dict[str, tuple[str, list[str]]] = {
    "Bill": (
        "ExpenseLineRet",
        ["TxnLineID", "AccountRef", "Amount", "Memo", "CustomerRef", "ClassRef", "BillableStatus"],
    ),
    "CreditCardCharge": (
        "ExpenseLineRet",
        ["TxnLineID", "AccountRef", "Amount", "Memo", "CustomerRef", "ClassRef", "BillableStatus"],
    ),
    "PurchaseOrder": (
        "PurchaseOrderLineRet",
        [
            "TxnLineID",
            "ItemRef",
            "Desc",
            "Quantity",
            "Rate",
            "ClassRef",
            "Amount",
            "ReceivedQuantity",
            "IsManuallyClosed",
        ],
    ),
}


@dataclass
class OtherTxn:
    """A stored TimeTracking / Bill / CreditCardCharge / PurchaseOrder: references by ListID, values as text."""

    type: str
    txn_id: str
    txn_number: int
    time_created: datetime
    time_modified: datetime
    edit_sequence: str
    txn_date: date
    header: dict[str, str] = field(default_factory=dict)  # tag -> ListID (…Ref) or text
    lines: list[dict[str, str]] = field(default_factory=list)


class Purchasing:
    """The part of :class:`FakeCompany` that handles T6-T8 requests; shares the company's lists and lock."""

    def __init__(self, company: FakeCompany) -> None:
        self.company = company
        self.txns: dict[str, OtherTxn] = {}

    # ------------------------------------------------------------------ wiring

    def handlers(self) -> dict[str, Any]:
        c = self.company
        return {
            "TimeTrackingAddRq": lambda rq, rs: self._add(rq, rs, "TimeTracking"),
            "BillAddRq": lambda rq, rs: self._add(rq, rs, "Bill"),
            "CreditCardChargeAddRq": lambda rq, rs: self._add(rq, rs, "CreditCardCharge"),
            "PurchaseOrderAddRq": lambda rq, rs: self._add(rq, rs, "PurchaseOrder"),
            "TimeTrackingQueryRq": lambda rq, rs: self._query(rq, rs, "TimeTracking"),
            "BillQueryRq": lambda rq, rs: self._query(rq, rs, "Bill"),
            "CreditCardChargeQueryRq": lambda rq, rs: self._query(rq, rs, "CreditCardCharge"),
            "PurchaseOrderQueryRq": lambda rq, rs: self._query(rq, rs, "PurchaseOrder"),
            "EmployeeQueryRq": lambda rq, rs: c._list_query(rq, rs, ("Employee",)),
            "PayrollItemWageQueryRq": lambda rq, rs: c._list_query(rq, rs, ("PayrollItemWage",)),
        }

    def dump(self) -> list[dict[str, Any]]:
        from infra.fake_qbd.company import _jsonable

        return [{k: _jsonable(v) for k, v in vars(t).items()} for t in self.txns.values()]

    def load(self, rows: list[dict[str, Any]] | None) -> None:
        from infra.fake_qbd.company import _unjson

        self.txns = {}
        for raw in rows or []:
            txn = OtherTxn(**_unjson(raw, OtherTxn))
            self.txns[txn.txn_id] = txn

    # ------------------------------------------------------------------ inspection (tests, the admin CLI)

    def of_type(self, txn_type: str) -> list[OtherTxn]:
        with self.company._lock:
            return [t for t in self.txns.values() if t.type == txn_type]

    def name_of(self, list_id: str | None) -> str | None:
        rec = self.company._lists.get(list_id or "")
        return rec.full_name if rec is not None else None

    def describe(self, txn: OtherTxn) -> dict[str, Any]:
        """The transaction with every reference shown by its current full name (``EntityRef: "Bob"``)."""

        def named(values: dict[str, str]) -> dict[str, str | None]:
            return {k: (self.name_of(v) if k.endswith("Ref") else v) for k, v in values.items()}

        return {"type": txn.type, "txn_id": txn.txn_id, **named(txn.header), "lines": [named(ln) for ln in txn.lines]}

    # ------------------------------------------------------------------ admin hooks (what a user does in QuickBooks)

    def add_employee(self, name: str) -> ListRecord:
        from infra.fake_qbd.company import StatusError, too_long

        with self.company._lock:
            if len(name) > 41:
                raise too_long(name, "name")
            if self.company._find_list(NAME_KINDS, name) is not None:
                raise StatusError(3100, f'The name "{name}" of the list element is already in use.')
            return self.company._new_list("Employee", name, None, [])

    def add_payroll_wage_item(self, name: str, expense_account: str) -> ListRecord:
        from infra.fake_qbd.company import StatusError, _el

        with self.company._lock:
            account = self.company._find_list(("Account",), expense_account)
            if account is None:
                raise StatusError(3140, f'There is an invalid reference to QuickBooks Account "{expense_account}".')
            if self.company._find_list(("PayrollItemWage",), name) is not None:
                raise StatusError(3100, f'The name "{name}" of the list element is already in use.')
            ref = etree.Element("ExpenseAccountRef")
            sub(ref, "ListID", account.list_id)
            sub(ref, "FullName", account.full_name)
            return self.company._new_list("PayrollItemWage", name, None, [_el("WageType", "Hourly"), ref])

    def add_inventory_item(self, name: str, quantity_on_hand: Decimal | int | str = 0) -> ListRecord:
        """An inventory part (income Sales, COGS Cost of Goods Sold, asset Inventory Asset: QuickBooks creates that
        account with the first inventory part, so this hook does too)."""
        from infra.fake_qbd.company import _el

        c = self.company
        with c._lock:
            if c._find_list(("Account",), "Inventory Asset") is None:
                c._admin_add(_element("AccountAdd", ("Name", "Inventory Asset"), ("AccountType", "OtherCurrentAsset")))
            add = etree.Element("ItemInventoryAdd")
            add.append(_el("Name", name))
            for tag, account in (
                ("IncomeAccountRef", "Sales"),
                ("COGSAccountRef", "Cost of Goods Sold"),
                ("AssetAccountRef", "Inventory Asset"),
            ):
                sub(sub(add, tag), "FullName", account)
            add.append(_el("QuantityOnHand", _num(Decimal(str(quantity_on_hand)))))
            return c._admin_add(add)

    def inventory(self) -> dict[str, str]:
        """Inventory part full name → QuantityOnHand."""
        return {r.full_name: r.field_text("QuantityOnHand") or "0" for r in self.company._list_of("ItemInventory")}

    def receive_purchase_order(self, txn: str) -> dict[str, str]:
        """Receive every open line of a purchase order (by TxnID or RefNumber): inventory items gain the quantity.
        Returns item full name → its new QuantityOnHand."""
        from infra.fake_qbd.company import _el

        c = self.company
        with c._lock:
            order = self.txns.get(txn) or next(
                (t for t in self.txns.values() if t.type == "PurchaseOrder" and t.header.get("RefNumber") == txn), None
            )
            if order is None or order.type != "PurchaseOrder":
                raise KeyError(f"no purchase order {txn!r}")
            raised: dict[str, str] = {}
            for line in order.lines:
                quantity = to_decimal(line.get("Quantity")) or Decimal(0)
                received = to_decimal(line.get("ReceivedQuantity")) or Decimal(0)
                item = c._lists.get(line.get("ItemRef", ""))
                if quantity <= received or item is None:
                    continue
                line["ReceivedQuantity"] = _num(quantity)
                if item.kind != "ItemInventory":
                    continue
                on_hand_el = next((el for el in item.fields if el.tag == "QuantityOnHand"), None)
                if on_hand_el is None:
                    on_hand_el = _el("QuantityOnHand", "0")
                    item.fields.append(on_hand_el)
                on_hand = (to_decimal(on_hand_el.text) or Decimal(0)) + quantity - received
                on_hand_el.text = _num(on_hand)
                item.time_modified = c._now()
                item.edit_sequence = c._edit_sequence()
                raised[item.full_name] = on_hand_el.text
            order.header["IsFullyReceived"] = "true"
            order.time_modified = c._now()
            order.edit_sequence = c._edit_sequence()
            return raised

    # ------------------------------------------------------------------ requests

    def _ref(self, el: etree._Element, tag: str, kinds: tuple[str, ...], label: str, where: str) -> str | None:
        rec = self.company._require(el.find(tag), kinds, label, where)
        return rec.list_id if rec is not None else None

    def _add(self, rq: etree._Element, rs: etree._Element, txn_type: str) -> None:
        from infra.fake_qbd.company import StatusError, too_long

        c = self.company
        add = rq.find(txn_type + "Add")
        if add is None:
            raise StatusError(3000, f"The request has no {txn_type}Add.")
        where = {"TimeTracking": "Time Tracking", "CreditCardCharge": "Credit Card Charge"}.get(txn_type, txn_type)
        header: dict[str, str] = {}
        lines: list[dict[str, str]] = []

        def ref(tag: str, kinds: tuple[str, ...], label: str, *, required: bool = False) -> None:
            if required and add.find(tag) is None:
                raise StatusError(3140, f"There is a missing element: {tag} in the {where}.")
            found = self._ref(add, tag, kinds, label, where)
            if found:
                header[tag] = found

        for tag, limit in (("RefNumber", 20 if txn_type == "Bill" else 11), ("Memo", 4095), ("Notes", 4095)):
            value = text(add, tag)
            if value is not None:
                if len(value) > limit:
                    raise too_long(value, tag)
                header[tag] = value
        if txn_type == "TimeTracking":
            ref("EntityRef", TIME_ENTITY_KINDS, "Entity", required=True)
            ref("CustomerRef", ("Customer",), "Customer")
            ref("ItemServiceRef", ("ItemService",), "Item")
            ref("ClassRef", ("Class",), "Class")
            ref("PayrollItemWageRef", ("PayrollItemWage",), "Payroll Item")
            duration = DURATION.match((text(add, "Duration") or "").strip())
            if duration is None or not any(duration.groups()):
                raise StatusError(3020, f'The Duration "{text(add, "Duration")}" is not valid.')
            hours, minutes, seconds = (int(g or 0) for g in duration.groups())
            spent = hours * 60 + minutes + seconds // 60
            header["Duration"] = f"PT{spent // 60}H{spent % 60}M0S"
            billable = text(add, "BillableStatus")
            if billable == "Billable" and "CustomerRef" not in header:
                raise StatusError(3180, "A billable time entry needs a customer.")
            if billable:
                header["BillableStatus"] = billable
        elif txn_type in ("Bill", "CreditCardCharge"):
            if txn_type == "Bill":
                ref("VendorRef", ("Vendor",), "Vendor", required=True)
                ref("APAccountRef", ("Account",), "Account")
            else:
                ref("AccountRef", ("Account",), "Account", required=True)
                card = c._lists[header["AccountRef"]]
                if card.field_text("AccountType") != "CreditCard":
                    raise StatusError(3140, f'The account "{card.full_name}" is not a credit card account.')
                ref("PayeeEntityRef", NAME_KINDS, "Entity")
            total = Decimal(0)
            for el in add.findall("ExpenseLineAdd"):
                line = {"TxnLineID": c._new_line_id()}
                account = self._ref(el, "AccountRef", ("Account",), "Account", where)
                if account is None:
                    raise StatusError(3140, f"There is a missing element: AccountRef in the {where} line.")
                line["AccountRef"] = account
                amount = (to_decimal(text(el, "Amount")) or Decimal(0)).quantize(CENT, ROUND_HALF_UP)
                line["Amount"] = money(amount)
                total += amount
                for tag, kinds, label in (
                    ("CustomerRef", ("Customer",), "Customer"),
                    ("ClassRef", ("Class",), "Class"),
                ):
                    found = self._ref(el, tag, kinds, label, where)
                    if found:
                        line[tag] = found
                for tag in ("Memo", "BillableStatus"):
                    if text(el, tag) is not None:
                        line[tag] = text(el, tag) or ""
                lines.append(line)
            if not lines:
                raise StatusError(3070, f"The {where} has no lines; at least one is required.")
            header["AmountDue" if txn_type == "Bill" else "Amount"] = money(total)
            if txn_type == "Bill":
                header["IsPaid"] = "false"
        else:  # PurchaseOrder
            ref("VendorRef", ("Vendor",), "Vendor", required=True)
            ref("ClassRef", ("Class",), "Class")
            if text(add, "ExpectedDate"):
                header["ExpectedDate"] = date.fromisoformat((text(add, "ExpectedDate") or "").strip()).isoformat()
            if text(add, "VendorMsg") is not None:
                header["VendorMsg"] = text(add, "VendorMsg") or ""
            total = Decimal(0)
            for el in add.findall("PurchaseOrderLineAdd"):
                line = {"TxnLineID": c._new_line_id()}
                item = self._ref(el, "ItemRef", ITEM_REF_KINDS, "Item", where)
                if item is None:
                    raise StatusError(3140, "There is a missing element: ItemRef in the Purchase Order line.")
                line["ItemRef"] = item
                quantity = to_decimal(text(el, "Quantity"))
                rate = to_decimal(text(el, "Rate"))
                given = to_decimal(text(el, "Amount"))
                amount = (given if given is not None else (quantity or Decimal(1)) * (rate or Decimal(0))).quantize(
                    CENT, ROUND_HALF_UP
                )
                for tag, number in (("Quantity", quantity), ("Rate", rate)):
                    if number is not None:
                        line[tag] = _num(number)
                line["Amount"] = money(amount)
                line["ReceivedQuantity"] = "0"
                total += amount
                cls = self._ref(el, "ClassRef", ("Class",), "Class", where)
                if cls:
                    line["ClassRef"] = cls
                if text(el, "Desc") is not None:
                    line["Desc"] = text(el, "Desc") or ""
                lines.append(line)
            if not lines:
                raise StatusError(3070, "The Purchase Order has no lines; at least one is required.")
            header["TotalAmount"] = money(total)
            header["IsManuallyClosed"] = "false"
            header["IsFullyReceived"] = "false"
        now = c._now()
        txn = OtherTxn(
            type=txn_type,
            txn_id=c._new_txn_id(),
            txn_number=c._next_txn_number(),
            time_created=now,
            time_modified=now,
            edit_sequence=c._edit_sequence(),
            txn_date=c._txn_date(add, "TxnDate", now.date()),
            header=header,
            lines=lines,
        )
        self.txns[txn.txn_id] = txn
        rs.append(self.ret(txn))

    def _query(self, rq: etree._Element, rs: etree._Element, txn_type: str) -> None:
        from infra.fake_qbd.company import NO_MATCH, _status

        wanted = [t.text for t in rq.findall("TxnID")]
        found = [t for t in self.txns.values() if t.type == txn_type and (not wanted or t.txn_id in wanted)]
        for txn in found:
            rs.append(self.ret(txn))
        if not found:
            _status(rs, None, NO_MATCH)

    def ret(self, txn: OtherTxn) -> etree._Element:
        from infra.fake_qbd.company import _ref, _txn_head

        ret = etree.Element(txn.type + "Ret")
        _txn_head(ret, txn.txn_id, txn.time_created, txn.time_modified, txn.edit_sequence, txn.txn_number)
        values = {**txn.header, "TxnDate": txn.txn_date.isoformat()}
        for tag in HEADER_ORDER[txn.type]:
            self._emit(ret, tag, values.get(tag), _ref)
        if txn.type in LINE_ORDER:
            line_tag, order = LINE_ORDER[txn.type]
            for line in txn.lines:
                el = sub(ret, line_tag)
                for tag in order:
                    self._emit(el, tag, line.get(tag), _ref)
        return ret

    def _emit(self, parent: etree._Element, tag: str, value: str | None, ref: Any) -> None:
        if value is None:
            return
        if tag.endswith("Ref"):
            rec = self.company._lists.get(value)
            if rec is not None:
                ref(parent, tag, rec)
            return
        sub(parent, tag, value)


def _num(value: Decimal) -> str:
    text_value = format(value.normalize(), "f")
    return text_value if text_value not in ("-0",) else "0"


def _element(tag: str, *children: tuple[str, str]) -> etree._Element:
    el = etree.Element(tag)
    for child, value in children:
        sub(el, child, value)
    return el
