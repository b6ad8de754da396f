"""Request builders: one function per ``*Rq``, each returning an lxml element in exact XSD (13.0) element order.

Every text value goes through :func:`qbsync.qbxml.text.text_field` (Latin-1 rule + length limit), every amount
through :func:`format_amount` (2 decimals, refuses extra precision). Problems raise :class:`QbxmlFieldError`
naming the qbXML element (``Name``, ``CustomerRef/FullName``, ``InvoiceLineAdd[2]/Amount``...).
Wrap the elements into a document with :func:`qbsync.qbxml.messages.build_message_set`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from lxml import etree

from qbsync.qbxml.errors import QbxmlFieldError
from qbsync.qbxml.records import (
    Address,
    Customer,
    Invoice,
    InvoiceLine,
    Item,
    JournalEntry,
    ReceivePayment,
    Ref,
    RefLike,
)
from qbsync.qbxml.text import (
    check_id,
    check_request_id,
    format_amount,
    format_bool,
    format_date,
    format_datetime,
    format_guid,
    format_percent,
    format_price,
    format_quantity,
    text_field,
)
from qbsync.qbxml.versions import PREFERRED_VERSION, QbxmlVersion, supports

IteratorMode = Literal["Start", "Continue", "Stop"]
ActiveStatus = Literal["ActiveOnly", "InactiveOnly", "All"]
MatchCriterion = Literal["StartsWith", "Contains", "EndsWith"]
PaidStatus = Literal["All", "PaidOnly", "NotPaidOnly"]

# FullName limits of the references we emit (qbXML 13.0, QBD). ItemRef has no documented limit: 159 (= ClassRef,
# a full name of up to 5 levels) is used as a sane bound.
REF_LIMITS: dict[str, int] = {
    "CustomerRef": 209,
    "EntityRef": 209,
    "ParentRef": 209,
    "ClassRef": 159,
    "AccountRef": 159,
    "ARAccountRef": 159,
    "IncomeAccountRef": 159,
    "ExpenseAccountRef": 159,
    "DepositToAccountRef": 159,
    "DiscountAccountRef": 159,
    "OverrideItemAccountRef": 159,
    "ItemRef": 159,
    "TermsRef": 31,
    "TemplateRef": 31,
    "ItemSalesTaxRef": 31,
    "PaymentMethodRef": 31,
    "SalesTaxCodeRef": 3,
    "CustomerSalesTaxCodeRef": 3,
    "CustomerMsgRef": 101,
    "PrefVendorRef": 41,
}
ADDRESS_LIMITS = (
    ("Addr1", "addr1", 41),
    ("Addr2", "addr2", 41),
    ("Addr3", "addr3", 41),
    ("Addr4", "addr4", 41),
    ("Addr5", "addr5", 41),
    ("City", "city", 31),
    ("State", "state", 21),
    ("PostalCode", "postal_code", 13),
    ("Country", "country", 31),
    ("Note", "note", 41),
)


@dataclass(frozen=True, slots=True)
class NameFilter:
    match: MatchCriterion
    name: str


# --------------------------------------------------------------------------------------------------- helpers


def _el(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, tag)
    if text is not None:
        child.text = text
    return child


def _text(parent: etree._Element, tag: str, value: str | None, limit: int | None, *, path: str = "") -> None:
    if value is not None:
        _el(parent, tag, text_field(path + tag, value, limit))


def _amount(parent: etree._Element, tag: str, value: Decimal | None, *, path: str = "") -> None:
    if value is not None:
        _el(parent, tag, format_amount(path + tag, value))


def _price(parent: etree._Element, tag: str, value: Decimal | None, *, path: str = "") -> None:
    if value is not None:
        _el(parent, tag, format_price(path + tag, value))


def _date(parent: etree._Element, tag: str, value: date | None, *, path: str = "") -> None:
    if value is not None:
        _el(parent, tag, format_date(path + tag, value))


def _bool(parent: etree._Element, tag: str, value: bool | None) -> None:
    if value is not None:
        _el(parent, tag, format_bool(value))


def _ref(parent: etree._Element, tag: str, ref: RefLike | None, *, path: str = "") -> None:
    if ref is None:
        return
    if isinstance(ref, str):
        ref = Ref(full_name=ref)
    node = _el(parent, tag)
    if ref.list_id:
        _el(node, "ListID", check_id(f"{path}{tag}/ListID", ref.list_id))
    if ref.full_name:
        _el(node, "FullName", text_field(f"{path}{tag}/FullName", ref.full_name, REF_LIMITS.get(tag, 209)))


def _address(parent: etree._Element, tag: str, address: Address | None, *, path: str = "") -> None:
    if address is None:
        return
    node = _el(parent, tag)
    for child, attr, limit in ADDRESS_LIMITS:
        _text(node, child, getattr(address, attr), limit, path=f"{path}{tag}/")


def _guid(parent: etree._Element, request: str, value: str | None, version: QbxmlVersion) -> None:
    if value is not None and supports(version, request, "ExternalGUID"):
        _el(parent, "ExternalGUID", format_guid("ExternalGUID", value))


def _rq(name: str, request_id: str, **attrs: str | None) -> etree._Element:
    rq = etree.Element(name)
    rq.set("requestID", check_request_id(request_id))
    for key, value in attrs.items():
        if value is not None:
            rq.set(key, value)
    return rq


def _iterator_attrs(iterator: IteratorMode | None, iterator_id: str | None) -> dict[str, str | None]:
    if iterator is None:
        if iterator_id is not None:
            raise QbxmlFieldError("iteratorID", "given without iterator")
        return {}
    if iterator not in ("Start", "Continue", "Stop"):
        raise QbxmlFieldError("iterator", f"{iterator!r} is not Start, Continue or Stop")
    if iterator == "Start" and iterator_id is not None:
        raise QbxmlFieldError("iteratorID", "must not be sent with iterator=Start")
    if iterator != "Start" and not iterator_id:
        raise QbxmlFieldError("iteratorID", f"is required with iterator={iterator}")
    if iterator_id is not None and (len(iterator_id) > 100 or not iterator_id.isprintable()):
        raise QbxmlFieldError("iteratorID", "is not a plausible iterator id")
    return {"iterator": iterator, "iteratorID": iterator_id}


def _max_returned(parent: etree._Element, value: int | None) -> None:
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise QbxmlFieldError("MaxReturned", "must be an integer >= 1")
        _el(parent, "MaxReturned", str(value))


def _tail(parent: etree._Element, include_ret_elements: Sequence[str], owner_ids: Sequence[str] = ()) -> None:
    for name in include_ret_elements:
        _text(parent, "IncludeRetElement", name, 50)
    for owner in owner_ids:
        _el(parent, "OwnerID", format_guid("OwnerID", owner))


def _one_selector(**selectors: object) -> None:
    given = [name for name, value in selectors.items() if value]
    if len(given) > 1:
        raise QbxmlFieldError(given[1], f"cannot be combined with {given[0]} (the XSD allows only one)")


# --------------------------------------------------------------------------------------------------- customers


def _customer_body(node: etree._Element, c: Customer) -> None:
    _text(node, "Name", c.name, 41)
    _bool(node, "IsActive", c.is_active)
    _ref(node, "ParentRef", c.parent)
    _text(node, "CompanyName", c.company_name, 41)
    _text(node, "Salutation", c.salutation, 15)
    _text(node, "FirstName", c.first_name, 25)
    _text(node, "MiddleName", c.middle_name, 5)
    _text(node, "LastName", c.last_name, 25)
    _address(node, "BillAddress", c.bill_address)
    _address(node, "ShipAddress", c.ship_address)
    _text(node, "Phone", c.phone, 21)
    _text(node, "AltPhone", c.alt_phone, 21)
    _text(node, "Fax", c.fax, 21)
    _text(node, "Email", c.email, 1023)
    _text(node, "Contact", c.contact, 41)
    _ref(node, "TermsRef", c.terms)
    _ref(node, "SalesTaxCodeRef", c.sales_tax_code)
    _ref(node, "ItemSalesTaxRef", c.item_sales_tax)
    _text(node, "ResaleNumber", c.resale_number, 15)
    _text(node, "AccountNumber", c.account_number, 99)
    _amount(node, "CreditLimit", c.credit_limit)
    _text(node, "Notes", c.notes, 4095)


def build_customer_add(
    request_id: str,
    customer: Customer,
    *,
    include_ret_elements: Sequence[str] = (),
    version: QbxmlVersion = PREFERRED_VERSION,
) -> etree._Element:
    if not customer.name:
        raise QbxmlFieldError("Name", "is required for CustomerAdd")
    rq = _rq("CustomerAddRq", request_id)
    node = _el(rq, "CustomerAdd")
    _customer_body(node, customer)
    # ExternalGUID sits after PriceLevelRef, i.e. after every field we emit.
    _guid(node, "CustomerAdd", customer.external_guid, version)
    _tail(rq, include_ret_elements)
    return rq


def build_customer_mod(
    request_id: str,
    list_id: str,
    edit_sequence: str,
    customer: Customer,
    *,
    include_ret_elements: Sequence[str] = (),
    version: QbxmlVersion = PREFERRED_VERSION,
) -> etree._Element:
    """CustomerMod: fields left ``None`` stay unchanged in QuickBooks. ``external_guid`` cannot be modified."""
    rq = _rq("CustomerModRq", request_id)
    node = _el(rq, "CustomerMod")
    _el(node, "ListID", check_id("ListID", list_id))
    _text(node, "EditSequence", edit_sequence, 16)
    _customer_body(node, customer)
    _tail(rq, include_ret_elements)
    return rq


def _list_query(
    rq: etree._Element,
    *,
    list_ids: Sequence[str],
    full_names: Sequence[str],
    full_name_limit: int,
    max_returned: int | None,
    active_status: ActiveStatus | None,
    from_modified: datetime | None,
    to_modified: datetime | None,
    name_filter: NameFilter | None,
) -> None:
    filters = any(v is not None for v in (max_returned, active_status, from_modified, to_modified, name_filter))
    _one_selector(ListID=list(list_ids), FullName=list(full_names), filters=filters)
    for list_id in list_ids:
        _el(rq, "ListID", check_id("ListID", list_id))
    for name in full_names:
        _text(rq, "FullName", name, full_name_limit)
    _max_returned(rq, max_returned)
    if active_status is not None:
        if active_status not in ("ActiveOnly", "InactiveOnly", "All"):
            raise QbxmlFieldError("ActiveStatus", f"{active_status!r} is not ActiveOnly, InactiveOnly or All")
        _el(rq, "ActiveStatus", active_status)
    if from_modified is not None:
        _el(rq, "FromModifiedDate", format_datetime("FromModifiedDate", from_modified))
    if to_modified is not None:
        _el(rq, "ToModifiedDate", format_datetime("ToModifiedDate", to_modified))
    if name_filter is not None:
        if name_filter.match not in ("StartsWith", "Contains", "EndsWith"):
            raise QbxmlFieldError("NameFilter/MatchCriterion", f"{name_filter.match!r} is not valid")
        node = _el(rq, "NameFilter")
        _el(node, "MatchCriterion", name_filter.match)
        _text(node, "Name", name_filter.name, full_name_limit, path="NameFilter/")


def build_customer_query(
    request_id: str,
    *,
    list_ids: Sequence[str] = (),
    full_names: Sequence[str] = (),
    max_returned: int | None = None,
    active_status: ActiveStatus | None = None,
    from_modified: datetime | None = None,
    to_modified: datetime | None = None,
    name_filter: NameFilter | None = None,
    iterator: IteratorMode | None = None,
    iterator_id: str | None = None,
    include_ret_elements: Sequence[str] = (),
    owner_ids: Sequence[str] = (),
) -> etree._Element:
    """CustomerQuery by ListID(s) | FullName(s) | filters (MaxReturned, ActiveStatus, modified range, NameFilter).

    ``FromModifiedDate`` is inclusive; QuickBooks may be an hour off around DST — re-query with some overlap.
    """
    rq = _rq("CustomerQueryRq", request_id, **_iterator_attrs(iterator, iterator_id))
    _list_query(
        rq,
        list_ids=list_ids,
        full_names=full_names,
        full_name_limit=209,
        max_returned=max_returned,
        active_status=active_status,
        from_modified=from_modified,
        to_modified=to_modified,
        name_filter=name_filter,
    )
    _tail(rq, include_ret_elements, owner_ids)
    return rq


# --------------------------------------------------------------------------------------------------- items


def build_item_add(
    request_id: str,
    item: Item,
    *,
    include_ret_elements: Sequence[str] = (),
    version: QbxmlVersion = PREFERRED_VERSION,
) -> etree._Element:
    """ItemServiceAdd or ItemNonInventoryAdd depending on ``item.kind``."""
    if item.kind == "service":
        request = "ItemServiceAdd"
    elif item.kind == "non_inventory":
        request = "ItemNonInventoryAdd"
    else:
        raise QbxmlFieldError("kind", f"{item.kind!r} is not service or non_inventory")
    rq = _rq(request + "Rq", request_id)
    node = _el(rq, request)
    _text(node, "Name", item.name, 31)
    _bool(node, "IsActive", item.is_active)
    _ref(node, "ParentRef", item.parent)
    if item.kind == "non_inventory":
        _text(node, "ManufacturerPartNumber", item.manufacturer_part_number, 31)
    elif item.manufacturer_part_number is not None:
        raise QbxmlFieldError("ManufacturerPartNumber", "only exists on non-inventory items")
    _ref(node, "SalesTaxCodeRef", item.tax_code)
    if item.is_sales_and_purchase:
        if item.price_percent is not None:
            raise QbxmlFieldError("PricePercent", "only allowed on items without purchase information")
        sp = _el(node, "SalesAndPurchase")
        _text(sp, "SalesDesc", item.description, 4095, path="SalesAndPurchase/")
        _price(sp, "SalesPrice", item.price, path="SalesAndPurchase/")
        _ref(sp, "IncomeAccountRef", item.income_account, path="SalesAndPurchase/")
        _text(sp, "PurchaseDesc", item.purchase_description, 4095, path="SalesAndPurchase/")
        _price(sp, "PurchaseCost", item.purchase_cost, path="SalesAndPurchase/")
        _ref(sp, "ExpenseAccountRef", item.expense_account, path="SalesAndPurchase/")
        _ref(sp, "PrefVendorRef", item.preferred_vendor, path="SalesAndPurchase/")
    else:
        if item.price is not None and item.price_percent is not None:
            raise QbxmlFieldError("PricePercent", "cannot be combined with Price")
        so = _el(node, "SalesOrPurchase")
        _text(so, "Desc", item.description, 4095, path="SalesOrPurchase/")
        _price(so, "Price", item.price, path="SalesOrPurchase/")
        if item.price_percent is not None:
            _el(so, "PricePercent", format_percent("SalesOrPurchase/PricePercent", item.price_percent))
        _ref(so, "AccountRef", item.income_account, path="SalesOrPurchase/")
    _guid(node, request, item.external_guid, version)
    _tail(rq, include_ret_elements)
    return rq


def build_item_mod(
    request_id: str,
    list_id: str,
    edit_sequence: str,
    item: Item,
    *,
    sales_and_purchase: bool = False,
    include_ret_elements: Sequence[str] = (),
    version: QbxmlVersion = PREFERRED_VERSION,
) -> etree._Element:
    """ItemServiceMod or ItemNonInventoryMod by ``item.kind`` (QuickBooks cannot change an item's type: the kind must
    be the item's type in QuickBooks). The fields given replace QuickBooks'; the sales fields go in
    ``SalesOrPurchaseMod``, or ``SalesAndPurchaseMod`` when the item has purchase information or when
    ``sales_and_purchase`` says QuickBooks' item is a sales-and-purchase one (its purchase fields then stay as they
    are, where a ``SalesOrPurchaseMod`` would turn it back into a sales-only item).
    ``Apply*AccountRefToExistingTxns`` is never sent: existing transactions keep their accounts (QuickBooks' default).
    """
    if item.kind == "service":
        request = "ItemServiceMod"
    elif item.kind == "non_inventory":
        request = "ItemNonInventoryMod"
    else:
        raise QbxmlFieldError("kind", f"{item.kind!r} is not service or non_inventory")
    if item.external_guid is not None:
        raise QbxmlFieldError("ExternalGUID", f"cannot be changed by {request}")
    rq = _rq(request + "Rq", request_id)
    node = _el(rq, request)
    _el(node, "ListID", check_id("ListID", list_id))
    _text(node, "EditSequence", edit_sequence, 16)
    _text(node, "Name", item.name, 31)
    _bool(node, "IsActive", item.is_active)
    _ref(node, "ParentRef", item.parent)
    if item.kind == "non_inventory":
        _text(node, "ManufacturerPartNumber", item.manufacturer_part_number, 31)
    elif item.manufacturer_part_number is not None:
        raise QbxmlFieldError("ManufacturerPartNumber", "only exists on non-inventory items")
    _ref(node, "SalesTaxCodeRef", item.tax_code)
    if item.is_sales_and_purchase or sales_and_purchase:
        if item.price_percent is not None:
            raise QbxmlFieldError("PricePercent", "only allowed on items without purchase information")
        path = "SalesAndPurchaseMod/"
        sp = _el(node, "SalesAndPurchaseMod")
        _text(sp, "SalesDesc", item.description, 4095, path=path)
        _price(sp, "SalesPrice", item.price, path=path)
        _ref(sp, "IncomeAccountRef", item.income_account, path=path)
        _text(sp, "PurchaseDesc", item.purchase_description, 4095, path=path)
        _price(sp, "PurchaseCost", item.purchase_cost, path=path)
        _ref(sp, "ExpenseAccountRef", item.expense_account, path=path)
        _ref(sp, "PrefVendorRef", item.preferred_vendor, path=path)
    else:
        if item.price is not None and item.price_percent is not None:
            raise QbxmlFieldError("PricePercent", "cannot be combined with Price")
        so = _el(node, "SalesOrPurchaseMod")
        _text(so, "Desc", item.description, 4095, path="SalesOrPurchaseMod/")
        _price(so, "Price", item.price, path="SalesOrPurchaseMod/")
        if item.price_percent is not None:
            _el(so, "PricePercent", format_percent("SalesOrPurchaseMod/PricePercent", item.price_percent))
        _ref(so, "AccountRef", item.income_account, path="SalesOrPurchaseMod/")
    _tail(rq, include_ret_elements)
    return rq


ItemQueryKind = Literal["all", "service", "non_inventory"]


def build_item_query(
    request_id: str,
    *,
    kind: ItemQueryKind = "all",
    list_ids: Sequence[str] = (),
    full_names: Sequence[str] = (),
    max_returned: int | None = None,
    active_status: ActiveStatus | None = None,
    from_modified: datetime | None = None,
    to_modified: datetime | None = None,
    name_filter: NameFilter | None = None,
    iterator: IteratorMode | None = None,
    iterator_id: str | None = None,
    include_ret_elements: Sequence[str] = (),
    owner_ids: Sequence[str] = (),
) -> etree._Element:
    """ItemQuery (every item type; ``kind="service"``/``"non_inventory"`` uses the type-specific query).

    The type-specific queries accept more filters in the XSD; only the common list filters are emitted here.
    """
    names = {"all": "ItemQueryRq", "service": "ItemServiceQueryRq", "non_inventory": "ItemNonInventoryQueryRq"}
    if kind not in names:
        raise QbxmlFieldError("kind", f"{kind!r} is not all, service or non_inventory")
    rq = _rq(names[kind], request_id, **_iterator_attrs(iterator, iterator_id))
    _list_query(
        rq,
        list_ids=list_ids,
        full_names=full_names,
        full_name_limit=159,
        max_returned=max_returned,
        active_status=active_status,
        from_modified=from_modified,
        to_modified=to_modified,
        name_filter=name_filter,
    )
    _tail(rq, include_ret_elements, owner_ids)
    return rq


# --------------------------------------------------------------------------------------------------- invoices


def _invoice_line(parent: etree._Element, line: InvoiceLine, index: int, *, mod: bool = False) -> None:
    tag = "InvoiceLineMod" if mod else "InvoiceLineAdd"
    path = f"{tag}[{index}]/"
    node = _el(parent, tag)
    if mod:
        _el(node, "TxnLineID", "-1")  # a new line: InvoiceMod with lines replaces all of them
    _ref(node, "ItemRef", line.item, path=path)
    _text(node, "Desc", line.description, 4095, path=path)
    if line.quantity is not None:
        _el(node, "Quantity", format_quantity(path + "Quantity", line.quantity))
    if line.rate is not None and line.rate_percent is not None:
        raise QbxmlFieldError(path + "RatePercent", "cannot be combined with Rate")
    _price(node, "Rate", line.rate, path=path)
    if line.rate_percent is not None:
        _el(node, "RatePercent", format_percent(path + "RatePercent", line.rate_percent))
    _ref(node, "ClassRef", line.class_ref, path=path)
    _amount(node, "Amount", line.amount, path=path)
    _date(node, "ServiceDate", line.service_date, path=path)
    _ref(node, "SalesTaxCodeRef", line.sales_tax_code, path=path)
    _ref(node, "OverrideItemAccountRef", line.override_item_account, path=path)


def _invoice_header(node: etree._Element, invoice: Invoice) -> None:
    """The header fields InvoiceAdd and InvoiceMod share, in the XSD's order (up to ``Other``)."""
    _ref(node, "CustomerRef", invoice.customer)
    _ref(node, "ClassRef", invoice.class_ref)
    _ref(node, "ARAccountRef", invoice.ar_account)
    _ref(node, "TemplateRef", invoice.template)
    _date(node, "TxnDate", invoice.txn_date)
    _text(node, "RefNumber", invoice.ref_number, 11)
    _address(node, "BillAddress", invoice.bill_address)
    _address(node, "ShipAddress", invoice.ship_address)
    _bool(node, "IsPending", invoice.is_pending)
    _text(node, "PONumber", invoice.po_number, 25)
    _ref(node, "TermsRef", invoice.terms)
    _date(node, "DueDate", invoice.due_date)
    _date(node, "ShipDate", invoice.ship_date)
    _ref(node, "ItemSalesTaxRef", invoice.item_sales_tax)
    _text(node, "Memo", invoice.memo, 4095)
    _ref(node, "CustomerMsgRef", invoice.customer_msg)
    _bool(node, "IsToBePrinted", invoice.is_to_be_printed)
    _bool(node, "IsToBeEmailed", invoice.is_to_be_emailed)
    _ref(node, "CustomerSalesTaxCodeRef", invoice.customer_sales_tax_code)
    _text(node, "Other", invoice.other, 29)


def build_invoice_add(
    request_id: str,
    invoice: Invoice,
    *,
    include_ret_elements: Sequence[str] = (),
    version: QbxmlVersion = PREFERRED_VERSION,
) -> etree._Element:
    rq = _rq("InvoiceAddRq", request_id)
    node = _el(rq, "InvoiceAdd")
    _invoice_header(node, invoice)
    _guid(node, "InvoiceAdd", invoice.external_guid, version)
    for index, line in enumerate(invoice.lines, start=1):
        _invoice_line(node, line, index)
    _tail(rq, include_ret_elements)
    return rq


def build_invoice_mod(
    request_id: str,
    txn_id: str,
    edit_sequence: str,
    invoice: Invoice,
    *,
    include_ret_elements: Sequence[str] = (),
    version: QbxmlVersion = PREFERRED_VERSION,
) -> etree._Element:
    """InvoiceMod: the header fields given replace QuickBooks'; the lines, when given, replace every line (each is
    sent as a new line, ``TxnLineID`` -1, and QuickBooks deletes the lines a mod leaves out)."""
    rq = _rq("InvoiceModRq", request_id)
    node = _el(rq, "InvoiceMod")
    _el(node, "TxnID", check_id("TxnID", txn_id))
    _text(node, "EditSequence", edit_sequence, 16)
    _invoice_header(node, invoice)
    for index, line in enumerate(invoice.lines, start=1):
        _invoice_line(node, line, index, mod=True)
    _tail(rq, include_ret_elements)
    return rq


def _txn_query(
    rq: etree._Element,
    *,
    txn_ids: Sequence[str],
    ref_numbers: Sequence[str],
    ref_number_limit: int,
    other_filters: bool,
    max_returned: int | None,
    modified_from: datetime | None,
    modified_to: datetime | None,
    txn_date_from: date | None,
    txn_date_to: date | None,
    customer: RefLike | None,
) -> None:
    """The selection every transaction query shares (qbXML's ``TxnQuery`` group): TxnID(s) | RefNumber(s) |
    filters (``other_filters``: the query's own, e.g. PaidStatus), where the date filter is the modified range *or*
    the transaction-date range."""
    filters = other_filters or any(
        v is not None for v in (max_returned, modified_from, modified_to, txn_date_from, txn_date_to, customer)
    )
    _one_selector(TxnID=list(txn_ids), RefNumber=list(ref_numbers), filters=filters)
    modified = modified_from is not None or modified_to is not None
    by_date = txn_date_from is not None or txn_date_to is not None
    _one_selector(ModifiedDateRangeFilter=modified, TxnDateRangeFilter=by_date)
    for txn_id in txn_ids:
        _el(rq, "TxnID", check_id("TxnID", txn_id))
    for ref in ref_numbers:
        _text(rq, "RefNumber", ref, ref_number_limit)
    _max_returned(rq, max_returned)
    if modified:
        node = _el(rq, "ModifiedDateRangeFilter")
        if modified_from is not None:
            _el(node, "FromModifiedDate", format_datetime("FromModifiedDate", modified_from))
        if modified_to is not None:
            _el(node, "ToModifiedDate", format_datetime("ToModifiedDate", modified_to))
    elif by_date:
        node = _el(rq, "TxnDateRangeFilter")
        _date(node, "FromTxnDate", txn_date_from, path="TxnDateRangeFilter/")
        _date(node, "ToTxnDate", txn_date_to, path="TxnDateRangeFilter/")
    if customer is not None:
        entity = Ref(full_name=customer) if isinstance(customer, str) else customer
        node = _el(rq, "EntityFilter")
        if entity.list_id:
            _el(node, "ListID", check_id("EntityFilter/ListID", entity.list_id))
        else:
            _text(node, "FullName", entity.full_name, 209, path="EntityFilter/")


def build_invoice_query(
    request_id: str,
    *,
    txn_ids: Sequence[str] = (),
    ref_numbers: Sequence[str] = (),
    max_returned: int | None = None,
    modified_from: datetime | None = None,
    modified_to: datetime | None = None,
    txn_date_from: date | None = None,
    txn_date_to: date | None = None,
    customer: RefLike | None = None,
    paid_status: PaidStatus | None = None,
    include_line_items: bool | None = None,
    include_linked_txns: bool | None = None,
    iterator: IteratorMode | None = None,
    iterator_id: str | None = None,
    include_ret_elements: Sequence[str] = (),
    owner_ids: Sequence[str] = (),
) -> etree._Element:
    """InvoiceQuery by TxnID(s) | RefNumber(s) | filters (modified range *or* txn-date range, customer, PaidStatus)."""
    rq = _rq("InvoiceQueryRq", request_id, **_iterator_attrs(iterator, iterator_id))
    _txn_query(
        rq,
        txn_ids=txn_ids,
        ref_numbers=ref_numbers,
        ref_number_limit=11,
        other_filters=paid_status is not None,
        max_returned=max_returned,
        modified_from=modified_from,
        modified_to=modified_to,
        txn_date_from=txn_date_from,
        txn_date_to=txn_date_to,
        customer=customer,
    )
    if paid_status is not None:
        if paid_status not in ("All", "PaidOnly", "NotPaidOnly"):
            raise QbxmlFieldError("PaidStatus", f"{paid_status!r} is not All, PaidOnly or NotPaidOnly")
        _el(rq, "PaidStatus", paid_status)
    _bool(rq, "IncludeLineItems", include_line_items)
    _bool(rq, "IncludeLinkedTxns", include_linked_txns)
    _tail(rq, include_ret_elements, owner_ids)
    return rq


# --------------------------------------------------------------------------------------------------- payments


TXN_DEL_TYPES = ("Invoice", "ReceivePayment", "JournalEntry", "CreditMemo", "SalesReceipt")


def build_txn_deleted_query(
    request_id: str,
    types: Sequence[str],
    *,
    deleted_from: datetime | None = None,
    deleted_to: datetime | None = None,
) -> etree._Element:
    """TxnDeletedQuery: transactions of ``types`` deleted (in the range) — how Desktop reports deletions. QuickBooks
    keeps these records for a limited time only; run it at least every few days."""
    if not types:
        raise QbxmlFieldError("TxnDelType", "give at least one transaction type")
    rq = _rq("TxnDeletedQueryRq", request_id)
    for kind in types:
        if kind not in TXN_DEL_TYPES:
            raise QbxmlFieldError("TxnDelType", f"{kind!r} is not one of {', '.join(TXN_DEL_TYPES)}")
        _el(rq, "TxnDelType", kind)
    if deleted_from is not None or deleted_to is not None:
        node = _el(rq, "DeletedDateRangeFilter")
        if deleted_from is not None:
            _el(node, "FromDeletedDate", format_datetime("FromDeletedDate", deleted_from))
        if deleted_to is not None:
            _el(node, "ToDeletedDate", format_datetime("ToDeletedDate", deleted_to))
    return rq


def build_receive_payment_query(
    request_id: str,
    *,
    txn_ids: Sequence[str] = (),
    ref_numbers: Sequence[str] = (),
    max_returned: int | None = None,
    modified_from: datetime | None = None,
    modified_to: datetime | None = None,
    txn_date_from: date | None = None,
    txn_date_to: date | None = None,
    customer: RefLike | None = None,
    include_line_items: bool | None = None,
    iterator: IteratorMode | None = None,
    iterator_id: str | None = None,
    include_ret_elements: Sequence[str] = (),
    owner_ids: Sequence[str] = (),
) -> etree._Element:
    """ReceivePaymentQuery (the ``TxnQuery`` group) by TxnID(s) | RefNumber(s) | filters (modified range *or*
    txn-date range, customer). Each ReceivePaymentRet lists the invoices it pays (``AppliedToTxnRet``)."""
    rq = _rq("ReceivePaymentQueryRq", request_id, **_iterator_attrs(iterator, iterator_id))
    _txn_query(
        rq,
        txn_ids=txn_ids,
        ref_numbers=ref_numbers,
        ref_number_limit=20,
        other_filters=False,
        max_returned=max_returned,
        modified_from=modified_from,
        modified_to=modified_to,
        txn_date_from=txn_date_from,
        txn_date_to=txn_date_to,
        customer=customer,
    )
    _bool(rq, "IncludeLineItems", include_line_items)
    _tail(rq, include_ret_elements, owner_ids)
    return rq


def build_receive_payment_add(
    request_id: str,
    payment: ReceivePayment,
    *,
    include_ret_elements: Sequence[str] = (),
    version: QbxmlVersion = PREFERRED_VERSION,
) -> etree._Element:
    if payment.auto_apply == bool(payment.applied_to):
        raise QbxmlFieldError("AppliedToTxnAdd", "give either auto_apply=True or at least one applied_to, not both")
    rq = _rq("ReceivePaymentAddRq", request_id)
    node = _el(rq, "ReceivePaymentAdd")
    _ref(node, "CustomerRef", payment.customer)
    _ref(node, "ARAccountRef", payment.ar_account)
    _date(node, "TxnDate", payment.txn_date)
    _text(node, "RefNumber", payment.ref_number, 20)
    _amount(node, "TotalAmount", payment.total_amount)
    _ref(node, "PaymentMethodRef", payment.payment_method)
    _text(node, "Memo", payment.memo, 4095)
    _ref(node, "DepositToAccountRef", payment.deposit_to_account)
    _guid(node, "ReceivePaymentAdd", payment.external_guid, version)
    if payment.auto_apply:
        _el(node, "IsAutoApply", "true")
    for index, applied in enumerate(payment.applied_to, start=1):
        path = f"AppliedToTxnAdd[{index}]/"
        app = _el(node, "AppliedToTxnAdd")
        _el(app, "TxnID", check_id(path + "TxnID", applied.txn_id))
        _amount(app, "PaymentAmount", applied.payment_amount, path=path)
        _amount(app, "DiscountAmount", applied.discount_amount, path=path)
        _ref(app, "DiscountAccountRef", applied.discount_account, path=path)
    _tail(rq, include_ret_elements)
    return rq


def build_receive_payment_mod(
    request_id: str,
    txn_id: str,
    edit_sequence: str,
    payment: ReceivePayment,
    *,
    include_ret_elements: Sequence[str] = (),
    version: QbxmlVersion = PREFERRED_VERSION,
) -> etree._Element:
    """ReceivePaymentMod: the header fields given replace QuickBooks'; the ``applied_to`` entries, when given, are
    the payment's applications afterwards (``AppliedToTxnMod``; an invoice left out no longer gets this payment, and
    its balance goes back up). ``IsAutoApply`` does not exist in a mod: name the invoices."""
    if payment.auto_apply:
        raise QbxmlFieldError("IsAutoApply", "does not exist in ReceivePaymentMod: give the applied_to entries")
    if payment.external_guid is not None:
        raise QbxmlFieldError("ExternalGUID", "cannot be changed by ReceivePaymentMod")
    rq = _rq("ReceivePaymentModRq", request_id)
    node = _el(rq, "ReceivePaymentMod")
    _el(node, "TxnID", check_id("TxnID", txn_id))
    _text(node, "EditSequence", edit_sequence, 16)
    _ref(node, "CustomerRef", payment.customer)
    _ref(node, "ARAccountRef", payment.ar_account)
    _date(node, "TxnDate", payment.txn_date)
    _text(node, "RefNumber", payment.ref_number, 20)
    _amount(node, "TotalAmount", payment.total_amount)
    _ref(node, "PaymentMethodRef", payment.payment_method)
    _text(node, "Memo", payment.memo, 4095)
    _ref(node, "DepositToAccountRef", payment.deposit_to_account)
    for index, applied in enumerate(payment.applied_to, start=1):
        path = f"AppliedToTxnMod[{index}]/"
        app = _el(node, "AppliedToTxnMod")
        _el(app, "TxnID", check_id(path + "TxnID", applied.txn_id))
        _amount(app, "PaymentAmount", applied.payment_amount, path=path)
        _amount(app, "DiscountAmount", applied.discount_amount, path=path)
        _ref(app, "DiscountAccountRef", applied.discount_account, path=path)
    _tail(rq, include_ret_elements)
    return rq


# --------------------------------------------------------------------------------------------------- journal


def build_journal_entry_add(
    request_id: str,
    entry: JournalEntry,
    *,
    include_ret_elements: Sequence[str] = (),
    version: QbxmlVersion = PREFERRED_VERSION,
) -> etree._Element:
    """JournalEntryAdd. Lines keep their order; debits must equal credits and amounts must be positive."""
    if len(entry.lines) < 2:
        raise QbxmlFieldError("JournalDebitLine", "a journal entry needs at least one debit and one credit line")
    debits = sum((line.amount for line in entry.lines if line.side == "debit"), Decimal(0))
    credits = sum((line.amount for line in entry.lines if line.side == "credit"), Decimal(0))
    if debits != credits:
        raise QbxmlFieldError("JournalCreditLine", f"debits ({debits}) do not equal credits ({credits})")
    rq = _rq("JournalEntryAddRq", request_id)
    node = _el(rq, "JournalEntryAdd")
    _date(node, "TxnDate", entry.txn_date)
    _text(node, "RefNumber", entry.ref_number, 11)
    _text(node, "Memo", entry.memo, 4095)
    _bool(node, "IsAdjustment", entry.is_adjustment)
    _guid(node, "JournalEntryAdd", entry.external_guid, version)
    for index, line in enumerate(entry.lines, start=1):
        if line.side not in ("debit", "credit"):
            raise QbxmlFieldError(f"line[{index}]", f"side {line.side!r} is not debit or credit")
        tag = "JournalDebitLine" if line.side == "debit" else "JournalCreditLine"
        path = f"{tag}[{index}]/"
        if line.amount < 0:
            raise QbxmlFieldError(path + "Amount", "must not be negative (use the other side)")
        jl = _el(node, tag)
        _ref(jl, "AccountRef", line.account, path=path)
        _amount(jl, "Amount", line.amount, path=path)
        _text(jl, "Memo", line.memo, 4095, path=path)
        _ref(jl, "EntityRef", line.entity, path=path)
        _ref(jl, "ClassRef", line.class_ref, path=path)
        if line.billable_status is not None:
            _el(jl, "BillableStatus", line.billable_status)
    _tail(rq, include_ret_elements)
    return rq
