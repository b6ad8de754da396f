"""Lenient parsing of ``QBXMLMsgsRs`` documents (what ``receiveResponseXML`` carries in ``response``).

Requests are validated strictly; responses are read leniently: QuickBooks returns enum values and elements newer
than the requested version and than Intuit's XSDs. Unknown content is kept in ``RetRecord.raw`` and never fails
the parse. Only a broken document (not XML, DOCTYPE, no ``QBXMLMsgsRs``, an ``*Rs`` without an integer
``statusCode``) raises :class:`QbxmlParseError`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

from qbsync.qbxml.errors import QbxmlParseError
from qbsync.qbxml.records import Ref
from qbsync.qbxml.safexml import parse_xml


class StatusClass(enum.StrEnum):
    OK = "ok"
    #: 1 (no match) and 500 (some objects not found): a warning, not an error.
    NO_MATCH = "no_match"
    #: 3100: the name is already used (across customers, vendors, employees, other names).
    DUPLICATE_NAME = "duplicate_name"
    #: 3120 / 3140: a referenced object (ListID, customer, item, account...) does not exist (yet).
    MISSING_REFERENCE = "missing_reference"
    #: 3170 / 3175 / 3176 / 3180: record or list locked / modified by another user: resend later.
    RETRY_LATER = "retry_later"
    #: 3200: EditSequence out of date: re-query the record, then retry the Mod.
    STALE_EDIT_SEQUENCE = "stale_edit_sequence"
    ERROR = "error"


_STATUS_CLASSES: dict[int, StatusClass] = {
    0: StatusClass.OK,
    1: StatusClass.NO_MATCH,
    500: StatusClass.NO_MATCH,
    3100: StatusClass.DUPLICATE_NAME,
    3120: StatusClass.MISSING_REFERENCE,
    3140: StatusClass.MISSING_REFERENCE,
    3170: StatusClass.RETRY_LATER,
    3175: StatusClass.RETRY_LATER,
    3176: StatusClass.RETRY_LATER,
    3180: StatusClass.RETRY_LATER,
    3200: StatusClass.STALE_EDIT_SEQUENCE,
}


def classify_status(code: int) -> StatusClass:
    """Map a qbXML ``statusCode`` to what the caller should do. Unknown codes are errors."""
    return _STATUS_CLASSES.get(code, StatusClass.ERROR)


@dataclass(frozen=True)
class LinkedTxn:
    txn_id: str | None
    txn_type: str | None
    txn_date: str | None
    ref_number: str | None
    link_type: str | None
    amount: Decimal | None


@dataclass(frozen=True)
class RetRecord:
    """One ``*Ret`` element. Common identifiers are lifted out; everything is also in ``raw``.

    ``raw`` maps child names to text, nested dicts, or lists when an element repeats. Dates/times are kept as the
    strings QuickBooks sent (offsets included).
    """

    ret_type: str
    list_id: str | None = None
    txn_id: str | None = None
    edit_sequence: str | None = None
    name: str | None = None
    full_name: str | None = None
    ref_number: str | None = None
    time_created: str | None = None
    time_modified: str | None = None
    customer_ref: Ref | None = None
    # InvoiceRet
    is_paid: bool | None = None
    balance_remaining: Decimal | None = None
    subtotal: Decimal | None = None
    sales_tax_total: Decimal | None = None
    applied_amount: Decimal | None = None
    linked_txns: tuple[LinkedTxn, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QbxmlResult:
    """One ``*Rs`` of a message set."""

    rs_name: str
    request_id: str | None  # None when absent; "" when QuickBooks echoed an empty requestID
    status_code: int
    status_severity: str
    status_message: str
    ret_count: int | None = None
    iterator_remaining_count: int | None = None
    iterator_id: str | None = None
    rets: tuple[RetRecord, ...] = ()

    @property
    def status_class(self) -> StatusClass:
        return classify_status(self.status_code)

    @property
    def ok(self) -> bool:
        """True for success and for "no match" warnings (1 / 500): nothing to retry or report as failure."""
        return self.status_class in (StatusClass.OK, StatusClass.NO_MATCH)

    @property
    def has_more(self) -> bool:
        """Iterator still has records: send the same query with ``iterator="Continue"`` and ``iterator_id``."""
        return bool(self.iterator_id) and (self.iterator_remaining_count or 0) > 0


def _text(el: etree._Element, tag: str) -> str | None:
    child = el.find(tag)
    if child is None or child.text is None:
        return None
    return str(child.text).strip()


def _decimal(el: etree._Element, tag: str) -> Decimal | None:
    value = _text(el, tag)
    if value is None or value == "":
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def _bool(el: etree._Element, tag: str) -> bool | None:
    value = _text(el, tag)
    if value is None:
        return None
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    return None


def _int_attr(el: etree._Element, name: str) -> int | None:
    value = el.get(name)
    if value is None:
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def element_to_dict(el: etree._Element) -> dict[str, Any]:
    """Generic conversion: leaf → text, container → dict, repeated names → list.

    Attributes go under ``@name``; the text of a leaf that has attributes goes under ``#text``.
    """
    out: dict[str, Any] = {f"@{k}": v for k, v in el.attrib.items()}
    if el.attrib and len(el) == 0 and el.text and el.text.strip():
        out["#text"] = el.text.strip()
    for child in el:
        if not isinstance(child.tag, str):
            continue  # comments / PIs
        value: Any = element_to_dict(child) if len(child) or child.attrib else (child.text or "").strip()
        if child.tag in out:
            existing = out[child.tag]
            if isinstance(existing, list):
                existing.append(value)
            else:
                out[child.tag] = [existing, value]
        else:
            out[child.tag] = value
    return out


def _ref(el: etree._Element, tag: str) -> Ref | None:
    node = el.find(tag)
    if node is None:
        return None
    list_id, full_name = _text(node, "ListID"), _text(node, "FullName")
    if not list_id and not full_name:
        return None
    return Ref(list_id=list_id or None, full_name=full_name or None)


def parse_ret(el: etree._Element) -> RetRecord:
    linked = tuple(
        LinkedTxn(
            txn_id=_text(lt, "TxnID"),
            txn_type=_text(lt, "TxnType"),
            txn_date=_text(lt, "TxnDate"),
            ref_number=_text(lt, "RefNumber"),
            link_type=_text(lt, "LinkType"),
            amount=_decimal(lt, "Amount"),
        )
        for lt in el.findall("LinkedTxn")
    )
    return RetRecord(
        ret_type=str(el.tag),
        list_id=_text(el, "ListID"),
        txn_id=_text(el, "TxnID"),
        edit_sequence=_text(el, "EditSequence"),
        name=_text(el, "Name"),
        full_name=_text(el, "FullName"),
        ref_number=_text(el, "RefNumber"),
        time_created=_text(el, "TimeCreated"),
        time_modified=_text(el, "TimeModified"),
        customer_ref=_ref(el, "CustomerRef"),
        is_paid=_bool(el, "IsPaid"),
        balance_remaining=_decimal(el, "BalanceRemaining"),
        subtotal=_decimal(el, "Subtotal"),
        sales_tax_total=_decimal(el, "SalesTaxTotal"),
        applied_amount=_decimal(el, "AppliedAmount"),
        linked_txns=linked,
        raw=element_to_dict(el),
    )


def parse_rs(el: etree._Element) -> QbxmlResult:
    code = _int_attr(el, "statusCode")
    if code is None:
        raise QbxmlParseError(f"{el.tag} has no integer statusCode")
    rets = tuple(parse_ret(child) for child in el if isinstance(child.tag, str) and child.tag.endswith("Ret"))
    return QbxmlResult(
        rs_name=str(el.tag),
        request_id=el.get("requestID"),
        status_code=code,
        status_severity=el.get("statusSeverity", ""),
        status_message=el.get("statusMessage", ""),
        ret_count=_int_attr(el, "retCount"),
        iterator_remaining_count=_int_attr(el, "iteratorRemainingCount"),
        iterator_id=el.get("iteratorID"),
        rets=rets,
    )


def parse_response(document: str | bytes) -> list[QbxmlResult]:
    """Parse a qbXML response document into one :class:`QbxmlResult` per ``*Rs``, in document order."""
    root = parse_xml(document.strip())
    if root.tag != "QBXML":
        raise QbxmlParseError(f"root element is {root.tag!r}, expected QBXML")
    msgs = root.find("QBXMLMsgsRs")
    if msgs is None:
        raise QbxmlParseError("no QBXMLMsgsRs in the response")
    return [parse_rs(child) for child in msgs if isinstance(child.tag, str) and child.tag.endswith("Rs")]


def results_by_request_id(results: list[QbxmlResult]) -> dict[str, QbxmlResult]:
    """Index results by requestID (results without one are skipped). Later duplicates win."""
    return {r.request_id: r for r in results if r.request_id}
