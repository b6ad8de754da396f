"""Lenient response parsing on real captures (read from ../shared/reference, never copied)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qbsync.qbxml import QbxmlParseError, StatusClass, classify_status, parse_response, results_by_request_id
from tests.qbxml.conftest import reference_file


def _read(*parts: str) -> str:
    return reference_file("qbwc", "captures", *parts).read_text(encoding="utf-8")


def test_hotglue_mixed_continue_on_error_batch() -> None:
    results = parse_response(_read("hotglue", "customer-batch-mixed.response.xml"))
    assert [r.request_id for r in results] == [f"ext-mix-{i}" for i in range(1, 6)]
    assert [r.status_code for r in results] == [0, 3100, 3250, 3130, 0]
    assert [r.rs_name for r in results] == ["CustomerAddRs"] * 5
    assert [r.status_class for r in results] == [
        StatusClass.OK,
        StatusClass.DUPLICATE_NAME,
        StatusClass.ERROR,
        StatusClass.ERROR,
        StatusClass.OK,
    ]
    first, duplicate = results[0], results[1]
    assert first.ok and not duplicate.ok
    assert first.status_severity == "Info"
    assert duplicate.status_severity == "Error"
    assert '"HG-BATCH-MIX-1785964184-1"' in duplicate.status_message
    assert duplicate.rets == ()
    ret = first.rets[0]
    assert ret.ret_type == "CustomerRet"
    assert ret.list_id == "8000274C-1785964190"
    assert ret.edit_sequence == "1785964190"
    assert ret.name == ret.full_name == "HG-BATCH-MIX-1785964184-1"
    assert ret.time_created == "2026-08-05T16:43:30-04:00"
    assert ret.raw["CompanyName"] == "Valid first"
    assert ret.raw["Balance"] == "0.00"
    assert results[4].rets[0].list_id == "8000274D-1785964190"
    indexed = results_by_request_id(results)
    assert indexed["ext-mix-3"].status_code == 3250


def test_hotglue_valid_batch_and_empty_request_id() -> None:
    results = parse_response(_read("hotglue", "customer-batch-valid.response.xml"))
    assert [r.rets[0].list_id for r in results] == [
        "80002747-1785964187",
        "80002748-1785964187",
        "80002749-1785964187",
        "8000274A-1785964187",
        "8000274B-1785964187",
    ]
    assert results[1].rets[0].edit_sequence is None  # trimmed Ret: missing fields are None, not errors
    account = parse_response(_read("hotglue", "account-add.response.xml"))[0]
    assert account.request_id == ""
    assert account.rs_name == "AccountAddRs"
    assert account.rets[0].raw["CurrencyRef"] == {"ListID": "80000096-1709842673", "FullName": "US Dollar"}
    assert results_by_request_id([account]) == {}


def test_qb2014_responses() -> None:
    ok = parse_response(_read("qb2014", "CustomerAddRs_ok.xml"))[0]
    assert ok.request_id is None
    assert ok.status_code == 0
    ret = ok.rets[0]
    assert (ret.list_id, ret.edit_sequence, ret.name, ret.full_name) == (
        "8000001B-1405768916",
        "1405768916",
        "mrjoecustomer",
        "Joseph Customer",
    )
    assert ret.raw["BillAddress"]["City"] == "Mountain View"

    warn = parse_response(_read("qb2014", "CustomerQueryRs_500_warn.xml"))[0]
    assert (warn.status_code, warn.status_severity) == (500, "Warn")
    assert warn.status_class is StatusClass.NO_MATCH
    assert warn.ok

    error = parse_response(_read("qb2014", "CustomerQueryRs_3120_error.xml"))[0]
    assert (error.status_code, error.status_severity) == (3120, "Error")
    assert error.status_class is StatusClass.MISSING_REFERENCE
    assert "8000001B-1405768916" in error.status_message
    assert not error.ok


def test_hcp_response_parses_as_a_message_set_too() -> None:
    results = parse_response(_read("qb2014", "strHCPResponse_QuickBooksPro2014.xml"))
    assert [r.rs_name for r in results] == ["HostQueryRs", "CompanyQueryRs", "PreferencesQueryRs"]
    assert [r.request_id for r in results] == ["0", "1", "2"]


INVOICE_QUERY_RS = """<?xml version="1.0" ?>
<QBXML><QBXMLMsgsRs>
<InvoiceQueryRs requestID="inv-q" statusCode="0" statusSeverity="Info" statusMessage="Status OK"
  retCount="1" iteratorRemainingCount="12" iteratorID="{eb05f701-e727-472f-8ade-6753c4f67a46}">
 <InvoiceRet>
  <TxnID>1A2B-1234567890</TxnID><TimeCreated>2024-03-01T10:00:00-05:00</TimeCreated>
  <TimeModified>2024-03-05T10:00:00-05:00</TimeModified><EditSequence>1709305200</EditSequence>
  <TxnNumber>42</TxnNumber>
  <CustomerRef><ListID>80000001-1</ListID><FullName>Zoë</FullName></CustomerRef>
  <RefNumber>INV-1</RefNumber><Subtotal>100.00</Subtotal><SalesTaxTotal>8.25</SalesTaxTotal>
  <AppliedAmount>-50.00</AppliedAmount><BalanceRemaining>58.25</BalanceRemaining>
  <IsPaid>false</IsPaid><FutureElement attr="x">v</FutureElement>
  <PreferredDeliveryMethod>Mail</PreferredDeliveryMethod>
  <LinkedTxn><TxnID>99-1</TxnID><TxnType>ReceivePayment</TxnType><TxnDate>2024-03-05</TxnDate>
   <RefNumber>CHK1</RefNumber><LinkType>AMTTYPE</LinkType><Amount>-50.00</Amount></LinkedTxn>
  <LinkedTxn><TxnID>98-1</TxnID><TxnType>PaymentReceipt</TxnType><Amount>bogus</Amount></LinkedTxn>
 </InvoiceRet>
</InvoiceQueryRs>
</QBXMLMsgsRs></QBXML>"""


def test_invoice_ret_fields_and_iterator() -> None:
    result = parse_response(INVOICE_QUERY_RS)[0]
    assert (result.ret_count, result.iterator_remaining_count) == (1, 12)
    assert result.iterator_id == "{eb05f701-e727-472f-8ade-6753c4f67a46}"
    assert result.has_more
    inv = result.rets[0]
    assert inv.txn_id == "1A2B-1234567890"
    assert inv.ref_number == "INV-1"
    assert inv.is_paid is False
    assert inv.balance_remaining == Decimal("58.25")
    assert inv.subtotal == Decimal("100.00")
    assert inv.sales_tax_total == Decimal("8.25")
    assert inv.applied_amount == Decimal("-50.00")
    assert inv.customer_ref is not None
    assert (inv.customer_ref.list_id, inv.customer_ref.full_name) == ("80000001-1", "Zoë")
    assert len(inv.linked_txns) == 2
    first = inv.linked_txns[0]
    assert (first.txn_id, first.txn_type, first.txn_date, first.ref_number, first.amount) == (
        "99-1",
        "ReceivePayment",
        "2024-03-05",
        "CHK1",
        Decimal("-50.00"),
    )
    assert inv.linked_txns[1].txn_type == "PaymentReceipt"  # enum value unknown to the 13.0 XSD: kept
    assert inv.linked_txns[1].amount is None  # unparsable number: None, no crash
    assert inv.raw["FutureElement"] == {"@attr": "x", "#text": "v"}
    assert inv.raw["PreferredDeliveryMethod"] == "Mail"
    assert isinstance(inv.raw["LinkedTxn"], list)


def test_iterator_end() -> None:
    doc = INVOICE_QUERY_RS.replace('iteratorRemainingCount="12"', 'iteratorRemainingCount="0"')
    assert not parse_response(doc)[0].has_more


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (0, StatusClass.OK),
        (1, StatusClass.NO_MATCH),
        (500, StatusClass.NO_MATCH),
        (3100, StatusClass.DUPLICATE_NAME),
        (3120, StatusClass.MISSING_REFERENCE),
        (3140, StatusClass.MISSING_REFERENCE),
        (3170, StatusClass.RETRY_LATER),
        (3175, StatusClass.RETRY_LATER),
        (3176, StatusClass.RETRY_LATER),
        (3180, StatusClass.RETRY_LATER),
        (3200, StatusClass.STALE_EDIT_SEQUENCE),
        (3250, StatusClass.ERROR),
        (1000, StatusClass.ERROR),
        (9999, StatusClass.ERROR),
    ],
)
def test_classify_status(code: int, expected: StatusClass) -> None:
    assert classify_status(code) is expected


@pytest.mark.parametrize(
    "document",
    [
        "",
        "not xml",
        "<Other/>",
        "<QBXML><QBXMLMsgsRq onError='stopOnError'/></QBXML>",
        "<QBXML><QBXMLMsgsRs><CustomerAddRs statusCode='x'/></QBXMLMsgsRs></QBXML>",
    ],
)
def test_broken_documents_raise_parse_error(document: str) -> None:
    with pytest.raises(QbxmlParseError):
        parse_response(document)


def test_bytes_with_latin1_declaration() -> None:
    doc = (
        '<?xml version="1.0" encoding="ISO-8859-1"?><QBXML><QBXMLMsgsRs>'
        '<CustomerAddRs requestID="r" statusCode="0" statusSeverity="Info" statusMessage="OK">'
        "<CustomerRet><ListID>1-1</ListID><Name>Zoë</Name></CustomerRet></CustomerAddRs></QBXMLMsgsRs></QBXML>"
    )
    assert parse_response(doc.encode("iso-8859-1"))[0].rets[0].name == "Zoë"
    assert parse_response(doc)[0].rets[0].name == "Zoë"
