"""The qbXML message-set envelope and size estimates used to bound a batch.

``build_message_set`` returns ``str``: the SOAP layer puts it as element text of ``sendRequestXMLResult`` (which
XML-escapes it). All text inside is already Latin-1-safe (builders enforce it), so the string is encodable in
ISO-8859-1 even though the declaration says utf-8 (what QBWC and Intuit's samples use).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from xml.sax.saxutils import escape

from lxml import etree

from qbsync.qbxml.errors import QbxmlFieldError
from qbsync.qbxml.text import text_field
from qbsync.qbxml.versions import PREFERRED_VERSION, QbxmlVersion

OnError = Literal["stopOnError", "continueOnError", "rollbackOnError"]
ResponseData = Literal["includeAll", "includeNone"]


def build_message_set(
    requests: Sequence[etree._Element],
    *,
    version: QbxmlVersion = PREFERRED_VERSION,
    on_error: OnError = "continueOnError",
    new_message_set_id: str | None = None,
    old_message_set_id: str | None = None,
    response_data: ResponseData | None = None,
) -> str:
    """Wrap ``*Rq`` elements into ``<?xml?><?qbxml version?><QBXML><QBXMLMsgsRq ...>...</QBXMLMsgsRq></QBXML>``.

    ``continueOnError`` lets one bad request fail alone (match results by requestID). requestIDs must be unique
    within the set. ``newMessageSetID``/``oldMessageSetID`` enable QuickBooks' error recovery for a set that may
    have been processed without us seeing the response.
    """
    if on_error not in ("stopOnError", "continueOnError", "rollbackOnError"):
        raise QbxmlFieldError("onError", f"{on_error!r} is not a valid onError value")
    if not requests:
        raise QbxmlFieldError("QBXMLMsgsRq", "a message set needs at least one request")
    seen: set[str] = set()
    root = etree.Element("QBXML")
    msgs = etree.SubElement(root, "QBXMLMsgsRq")
    if new_message_set_id is not None:
        msgs.set("newMessageSetID", text_field("newMessageSetID", new_message_set_id, 64))
    if old_message_set_id is not None:
        msgs.set("oldMessageSetID", text_field("oldMessageSetID", old_message_set_id, 64))
    if response_data is not None:
        msgs.set("responseData", response_data)
    msgs.set("onError", on_error)
    for rq in requests:
        if not isinstance(rq.tag, str) or not rq.tag.endswith("Rq"):
            raise QbxmlFieldError("QBXMLMsgsRq", f"{rq.tag!r} is not a request element")
        request_id = rq.get("requestID")
        if request_id is not None:
            if request_id in seen:
                raise QbxmlFieldError("requestID", f"{request_id!r} is used twice in one message set")
            seen.add(request_id)
        msgs.append(_copy(rq))
    body = etree.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="utf-8"?>\n<?qbxml version="{version}"?>\n{body}'


def _copy(el: etree._Element) -> etree._Element:
    """Appending moves an lxml element; copy so callers can reuse their request elements."""
    return copy.deepcopy(el)


# --------------------------------------------------------------------------------------------------- sizes

#: Rough size (bytes, unescaped) of one ``*Ret`` per request kind, measured against typical QuickBooks output and
#: rounded up. Used only to bound batches; not a guarantee.
RET_BYTES: dict[str, int] = {
    "Customer": 2000,
    "Item": 1500,
    "ItemService": 1200,
    "ItemNonInventory": 1200,
    "Invoice": 2500,
    "ReceivePayment": 1200,
    "JournalEntry": 800,
}
INVOICE_LINE_BYTES = 700
LINKED_TXN_BYTES = 400
JOURNAL_LINE_BYTES = 500
APPLIED_TXN_BYTES = 400
RS_OVERHEAD_BYTES = 250
#: Assumed returned records for a query without MaxReturned or explicit IDs (use MaxReturned!).
UNBOUNDED_QUERY_RETS = 1000
#: Assumed lines per invoice when a query includes line items.
QUERY_LINES_PER_INVOICE = 10
#: XML-escaping of the document inside SOAP (``<`` → ``&lt;``...) grows it by roughly this factor.
SOAP_ESCAPE_FACTOR = 1.35


def estimate_request_bytes(document: str) -> int:
    """Bytes the message set takes inside the SOAP envelope (XML-escaped, UTF-8)."""
    return len(escape(document, {'"': "&quot;"}).encode("utf-8"))


def _kind(tag: str) -> tuple[str, str]:
    """``InvoiceQueryRq`` → (``Invoice``, ``Query``)."""
    base = tag[:-2] if tag.endswith("Rq") else tag
    for op in ("Add", "Mod", "Query"):
        if base.endswith(op):
            return base[: -len(op)], op
    return base, ""


def estimate_response_bytes(request: etree._Element) -> int:
    """Upper-ish estimate of the SOAP-escaped size of the response QuickBooks will send for ``request``."""
    entity, op = _kind(str(request.tag))
    per_ret = RET_BYTES.get(entity, 1500)
    if entity == "Invoice":
        body = request.find("InvoiceAdd") if op == "Add" else None
        if body is not None:
            per_ret += INVOICE_LINE_BYTES * len(body.findall("InvoiceLineAdd"))
        elif op == "Query":
            if request.findtext("IncludeLineItems") == "true":
                per_ret += INVOICE_LINE_BYTES * QUERY_LINES_PER_INVOICE
            if request.findtext("IncludeLinkedTxns") == "true":
                per_ret += LINKED_TXN_BYTES * 3
    elif entity == "JournalEntry":
        body = request.find("JournalEntryAdd")
        if body is not None:
            per_ret += JOURNAL_LINE_BYTES * (
                len(body.findall("JournalDebitLine")) + len(body.findall("JournalCreditLine"))
            )
    elif entity == "ReceivePayment":
        body = request.find("ReceivePaymentAdd")
        if body is not None:
            per_ret += APPLIED_TXN_BYTES * max(1, len(body.findall("AppliedToTxnAdd")))
    include = request.findall("IncludeRetElement")
    if include:
        per_ret = min(per_ret, 150 + 120 * len(include))
    if op == "Query":
        max_returned = request.findtext("MaxReturned")
        explicit = len(request.findall("ListID")) + len(request.findall("TxnID"))
        explicit += len(request.findall("FullName")) + len(request.findall("RefNumber"))
        if max_returned is not None and max_returned.isdigit():
            count = int(max_returned)
        elif explicit:
            count = explicit
        else:
            count = UNBOUNDED_QUERY_RETS
    else:
        count = 1
    return int((RS_OVERHEAD_BYTES + per_ret * count) * SOAP_ESCAPE_FACTOR)


@dataclass(frozen=True)
class SizeEstimate:
    request_bytes: int
    response_bytes: int


def estimate_batch(requests: Sequence[etree._Element], *, version: QbxmlVersion = PREFERRED_VERSION) -> SizeEstimate:
    """Sizes of the message set built from ``requests`` and of its expected response (both SOAP-escaped)."""
    document = build_message_set(requests, version=version)
    return SizeEstimate(
        request_bytes=estimate_request_bytes(document),
        response_bytes=200 + sum(estimate_response_bytes(rq) for rq in requests),
    )
