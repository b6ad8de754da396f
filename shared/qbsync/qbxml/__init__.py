"""qbXML layer for QuickBooks Desktop (via the Web Connector): records → requests → message set; responses → results.

Typical use by the SOAP / job-queue layer::

    version = negotiate_version(parse_hcp_response(str_hcp_response).supported_versions,
                                major=qbxml_major_vers, minor=qbxml_minor_vers)
    rqs = [build_customer_add("job-1", customer, version=version), ...]
    document = build_message_set(rqs, version=version)       # str, Latin-1-safe
    ...
    for result in parse_response(response):                  # receiveResponseXML
        result.request_id, result.status_class, result.rets[0].list_id
"""

from qbsync.qbxml.builders import (
    NameFilter,
    build_customer_add,
    build_customer_mod,
    build_customer_query,
    build_invoice_add,
    build_invoice_mod,
    build_invoice_query,
    build_item_add,
    build_item_mod,
    build_item_query,
    build_journal_entry_add,
    build_receive_payment_add,
    build_receive_payment_mod,
    build_receive_payment_query,
    build_txn_deleted_query,
)
from qbsync.qbxml.errors import QbxmlError, QbxmlFieldError, QbxmlParseError, UnsupportedQbxmlVersion
from qbsync.qbxml.messages import (
    SizeEstimate,
    build_message_set,
    estimate_batch,
    estimate_request_bytes,
    estimate_response_bytes,
)
from qbsync.qbxml.parsers import (
    LinkedTxn,
    QbxmlResult,
    RetRecord,
    StatusClass,
    classify_status,
    parse_response,
    results_by_request_id,
)
from qbsync.qbxml.records import (
    Address,
    AppliedTo,
    Customer,
    Invoice,
    InvoiceLine,
    Item,
    JournalEntry,
    JournalLine,
    ReceivePayment,
    Ref,
)
from qbsync.qbxml.safexml import parse_xml, safe_parser
from qbsync.qbxml.text import SafeText, format_amount, latin1_safe, text_field
from qbsync.qbxml.versions import (
    MINIMUM_VERSION,
    PREFERRED_VERSION,
    HostInfo,
    QbxmlVersion,
    negotiate_version,
    parse_hcp_response,
)

__all__ = [
    "MINIMUM_VERSION",
    "PREFERRED_VERSION",
    "Address",
    "AppliedTo",
    "Customer",
    "HostInfo",
    "Invoice",
    "InvoiceLine",
    "Item",
    "JournalEntry",
    "JournalLine",
    "LinkedTxn",
    "NameFilter",
    "QbxmlError",
    "QbxmlFieldError",
    "QbxmlParseError",
    "QbxmlResult",
    "QbxmlVersion",
    "ReceivePayment",
    "Ref",
    "RetRecord",
    "SafeText",
    "SizeEstimate",
    "StatusClass",
    "UnsupportedQbxmlVersion",
    "build_customer_add",
    "build_customer_mod",
    "build_customer_query",
    "build_invoice_add",
    "build_invoice_mod",
    "build_invoice_query",
    "build_item_add",
    "build_item_mod",
    "build_item_query",
    "build_journal_entry_add",
    "build_message_set",
    "build_receive_payment_add",
    "build_receive_payment_mod",
    "build_receive_payment_query",
    "build_txn_deleted_query",
    "classify_status",
    "estimate_batch",
    "estimate_request_bytes",
    "estimate_response_bytes",
    "format_amount",
    "latin1_safe",
    "negotiate_version",
    "parse_hcp_response",
    "parse_response",
    "parse_xml",
    "results_by_request_id",
    "safe_parser",
    "text_field",
]
