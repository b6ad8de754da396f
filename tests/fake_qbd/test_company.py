"""The fake QuickBooks Desktop company processes qbXML like QuickBooks does (status codes, balances, iterators)."""

from __future__ import annotations

import re
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from infra.fake_qbd import HRESULT_PARSE_ERROR, FakeCompany, QBXMLProcessingError
from infra.fake_qbd.xmlio import HRESULT_VERSION_NOT_SUPPORTED

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "qbwc" / "captures"
OWNER = "{512349B1-1111-2222-3333-000DE1813D20}"
FILE_ID = "{00000EE0-1111-FFFF-CCCC-5FF123456047}"


def qbxml(*requests: str, on_error: str = "stopOnError", attrs: str = "", version: str = "13.0") -> str:
    body = "".join(requests)
    return (
        f'<?xml version="1.0" encoding="utf-8"?><?qbxml version="{version}"?>'
        f'<QBXML><QBXMLMsgsRq onError="{on_error}"{attrs}>{body}</QBXMLMsgsRq></QBXML>'
    )


def customer_add(name: str, rid: str | None = None, extra: str = "") -> str:
    rid_attr = f' requestID="{rid}"' if rid is not None else ""
    return f"<CustomerAddRq{rid_attr}><CustomerAdd><Name>{name}</Name>{extra}</CustomerAdd></CustomerAddRq>"


def item_add(name: str, price: str = "100.00", kind: str = "ItemService") -> str:
    return (
        f"<{kind}AddRq><{kind}Add><Name>{name}</Name><SalesOrPurchase><Desc>{name} work</Desc><Price>{price}</Price>"
        f"<AccountRef><FullName>Services</FullName></AccountRef></SalesOrPurchase></{kind}Add></{kind}AddRq>"
    )


def run(company: FakeCompany, *requests: str, **kw: str) -> list[etree._Element]:
    """Process and return the *Rs elements."""
    out = company.process(qbxml(*requests, **kw))
    assert out.startswith('<?xml version="1.0" ?>')
    root = etree.fromstring(out.split("?>", 1)[1].encode())
    return list(root.find("QBXMLMsgsRs"))


def status(rs: etree._Element) -> tuple[int, str]:
    return int(rs.get("statusCode", "-1")), rs.get("statusSeverity", "")


@pytest.fixture
def company() -> FakeCompany:
    return FakeCompany()


def test_customer_add_echoes_request_ids_and_looks_like_real_ret(company: FakeCompany) -> None:
    rs = run(company, customer_add("Acme", "a1", "<CompanyName>Acme Inc</CompanyName>"), customer_add("Beta"))
    assert [r.tag for r in rs] == ["CustomerAddRs", "CustomerAddRs"]
    assert rs[0].get("requestID") == "a1" and rs[1].get("requestID") == ""  # like the hotglue capture
    assert status(rs[0]) == (0, "Info") and rs[0].get("statusMessage") == "Status OK"
    ret = rs[0].find("CustomerRet")
    assert ret is not None
    list_id = ret.findtext("ListID") or ""
    assert list_id.split("-")[0].startswith("8000") and list_id.split("-")[1].isdigit()
    assert (ret.findtext("EditSequence") or "").isdigit()
    assert (ret.findtext("TimeCreated") or "").endswith("-05:00")
    assert ret.findtext("CompanyName") == "Acme Inc"
    assert ret.findtext("Balance") == "0.00"
    assert company.count("Customer") == 2
    assert company.find_customer("acme") is not None


def test_names_are_unique_across_name_lists_and_items_among_items(company: FakeCompany) -> None:
    run(company, "<VendorAddRq><VendorAdd><Name>Shared Name</Name></VendorAdd></VendorAddRq>")
    rs = run(company, customer_add("shared name"), on_error="continueOnError")
    assert status(rs[0]) == (3100, "Error")
    assert rs[0].get("statusMessage") == 'The name "shared name" of the list element is already in use.'
    rs = run(
        company, item_add("Consulting"), item_add("consulting", kind="ItemNonInventory"), on_error="continueOnError"
    )
    assert [status(r)[0] for r in rs] == [0, 3100]
    # Items and customers are different namespaces.
    assert status(run(company, customer_add("Consulting"))[0])[0] == 0


def test_field_limits_give_3070(company: FakeCompany) -> None:
    rs = run(company, customer_add("C" * 42), item_add("I" * 32), on_error="continueOnError")
    assert [status(r)[0] for r in rs] == [3070, 3070]
    assert "is too long" in (rs[0].get("statusMessage") or "")
    assert status(run(company, customer_add("C" * 41))[0])[0] == 0
    assert company.count("Item") == 0


def test_stop_on_error_stops_and_continue_goes_on(company: FakeCompany) -> None:
    rs = run(company, customer_add("A"), customer_add("A"), customer_add("B"))
    assert [status(r)[0] for r in rs] == [0, 3100]
    assert company.find_customer("B") is None
    rs = run(company, customer_add("A"), customer_add("C"), on_error="continueOnError")
    assert [status(r)[0] for r in rs] == [3100, 0]
    # rollbackOnError is modelled as stopOnError (documented simplification).
    rs = run(company, customer_add("A"), customer_add("D"), on_error="rollbackOnError")
    assert [status(r)[0] for r in rs] == [3100]


def test_customer_query_no_match_warn_and_filters(company: FakeCompany) -> None:
    run(company, customer_add("Alpha"), customer_add("Beta"), customer_add("Alphonse"))
    rs = run(
        company,
        "<CustomerQueryRq><NameFilter><MatchCriterion>StartsWith</MatchCriterion><Name>zz</Name></NameFilter></CustomerQueryRq>",
    )
    assert status(rs[0]) == (1, "Info")
    assert rs[0].get("statusMessage") == "A query request did not find a matching object in QuickBooks"
    rs = run(
        company,
        "<CustomerQueryRq><NameFilter><MatchCriterion>StartsWith</MatchCriterion><Name>alph</Name></NameFilter></CustomerQueryRq>",
    )
    assert [r.findtext("Name") for r in rs[0]] == ["Alpha", "Alphonse"]
    rs = run(company, "<CustomerQueryRq><FullName>Beta</FullName><FullName>bleech</FullName></CustomerQueryRq>")
    assert status(rs[0]) == (500, "Warn")
    assert '("bleech")' in (rs[0].get("statusMessage") or "")
    assert [r.findtext("Name") for r in rs[0]] == ["Beta"]
    rs = run(
        company,
        "<CustomerQueryRq><MaxReturned>2</MaxReturned><IncludeRetElement>ListID</IncludeRetElement><IncludeRetElement>Name</IncludeRetElement></CustomerQueryRq>",
    )
    assert len(rs[0]) == 2 and [c.tag for c in rs[0][0]] == ["ListID", "Name"]


def test_customer_mod_needs_current_edit_sequence(company: FakeCompany) -> None:
    ret = run(company, customer_add("Old Name"))[0][0]
    list_id, seq = ret.findtext("ListID"), ret.findtext("EditSequence")
    mod = (
        "<CustomerModRq><CustomerMod><ListID>{}</ListID><EditSequence>{}</EditSequence>"
        "<Name>New Name</Name><Phone>555</Phone></CustomerMod></CustomerModRq>"
    )
    rs = run(company, mod.format(list_id, "123"))
    assert status(rs[0]) == (3200, "Error")
    assert rs[0].get("statusMessage", "").startswith('The provided edit sequence "123" is out-of-date.')
    rs = run(company, mod.format("80009999-1", seq))
    assert status(rs[0])[0] == 3120
    rs = run(company, mod.format(list_id, seq))
    assert status(rs[0])[0] == 0
    new = rs[0][0]
    assert new.findtext("Name") == "New Name" and new.findtext("Phone") == "555"
    assert new.findtext("EditSequence") != seq and new.findtext("ListID") == list_id
    rs = run(company, mod.format(list_id, seq))  # the old sequence is now stale
    assert status(rs[0])[0] == 3200


def invoice_add(customer: str, *lines: tuple[str, str, str], ref: str = "", rid: str = "inv") -> str:
    body = "".join(
        f"<InvoiceLineAdd><ItemRef><FullName>{item}</FullName></ItemRef><Quantity>{qty}</Quantity><Rate>{rate}</Rate></InvoiceLineAdd>"
        for item, qty, rate in lines
    )
    ref_el = f"<RefNumber>{ref}</RefNumber>" if ref else ""
    return (
        f'<InvoiceAddRq requestID="{rid}"><InvoiceAdd><CustomerRef><FullName>{customer}</FullName></CustomerRef>'
        f"<TxnDate>2024-03-01</TxnDate>{ref_el}{body}</InvoiceAdd></InvoiceAddRq>"
    )


def payment_add(customer: str, total: str, applied: list[tuple[str, str]] | None = None, auto: bool = False) -> str:
    apps = "".join(
        f"<AppliedToTxnAdd><TxnID>{t}</TxnID><PaymentAmount>{a}</PaymentAmount></AppliedToTxnAdd>"
        for t, a in applied or []
    )
    auto_el = "<IsAutoApply>true</IsAutoApply>" if auto else ""
    return (
        f"<ReceivePaymentAddRq><ReceivePaymentAdd><CustomerRef><FullName>{customer}</FullName></CustomerRef>"
        f"<TxnDate>2024-03-05</TxnDate><RefNumber>CHK1</RefNumber><TotalAmount>{total}</TotalAmount>{auto_el}{apps}"
        "</ReceivePaymentAdd></ReceivePaymentAddRq>"
    )


def test_invoice_references_must_exist(company: FakeCompany) -> None:
    run(company, customer_add("Acme"), item_add("Consulting"))
    rs = run(
        company,
        invoice_add("Nobody", ("Consulting", "1", "10.00")),
        invoice_add("Acme", ("Ghost", "1", "1.00")),
        on_error="continueOnError",
    )
    assert status(rs[0])[0] == 3140
    assert (
        rs[0]
        .get("statusMessage", "")
        .startswith('There is an invalid reference to QuickBooks Customer "Nobody" in the Invoice.')
    )
    assert status(rs[1])[0] == 3140 and 'Item "Ghost"' in rs[1].get("statusMessage", "")
    assert company.count("Invoice") == 0
    assert status(run(company, invoice_add("Acme", ("Consulting", "1", "1.00"), ref="123456789012"))[0])[0] == 3070


def test_invoices_and_payments_move_balance_and_is_paid(company: FakeCompany) -> None:
    run(company, customer_add("Acme"), item_add("Consulting", "150.00"), item_add("Widget", "2.50", "ItemNonInventory"))
    rs = run(company, invoice_add("Acme", ("Consulting", "2", "150.00"), ("Widget", "4", "2.50"), ref="INV-1"))
    inv = rs[0].find("InvoiceRet")
    assert inv is not None and rs[0].get("requestID") == "inv"
    assert inv.findtext("Subtotal") == "310.00" and inv.findtext("BalanceRemaining") == "310.00"
    assert inv.findtext("IsPaid") == "false"
    assert [ln.findtext("Amount") for ln in inv.findall("InvoiceLineRet")] == ["300.00", "10.00"]
    txn_id = inv.findtext("TxnID") or ""
    assert "-" in txn_id

    rs = run(company, payment_add("Acme", "400.00", [(txn_id, "400.00")]))
    assert status(rs[0]) == (3210, "Error") and "cannot pay more than the amount due" in rs[0].get("statusMessage", "")
    assert company.count("ReceivePayment") == 0

    rs = run(company, payment_add("Acme", "100.00", [(txn_id, "100.00")]))
    pay = rs[0].find("ReceivePaymentRet")
    assert pay is not None and pay.findtext("AppliedToTxnRet/BalanceRemaining") == "210.00"
    invoice = company.find_invoice("INV-1")
    assert invoice is not None and invoice.balance_remaining == Decimal("210.00") and not invoice.is_paid

    rs = run(company, payment_add("Acme", "210.00", auto=True))
    assert rs[0].findtext("ReceivePaymentRet/UnusedPayment") == "0.00"
    assert invoice.is_paid and invoice.balance_remaining == Decimal("0.00")

    rs = run(
        company, f"<InvoiceQueryRq><TxnID>{txn_id}</TxnID><IncludeLinkedTxns>true</IncludeLinkedTxns></InvoiceQueryRq>"
    )
    ret = rs[0][0]
    assert ret.findtext("IsPaid") == "true" and ret.findtext("BalanceRemaining") == "0.00"
    assert ret.findtext("AppliedAmount") == "-310.00"
    assert [lt.findtext("TxnType") for lt in ret.findall("LinkedTxn")] == ["ReceivePayment", "ReceivePayment"]
    assert ret.find("InvoiceLineRet") is None  # IncludeLineItems not asked
    rs = run(company, "<InvoiceQueryRq><PaidStatus>NotPaidOnly</PaidStatus></InvoiceQueryRq>")
    assert status(rs[0])[0] == 1
    cust = run(company, "<CustomerQueryRq><FullName>Acme</FullName></CustomerQueryRq>")[0][0]
    assert cust.findtext("Balance") == "0.00"


def test_payment_auto_apply_spreads_oldest_first_and_keeps_unused(company: FakeCompany) -> None:
    run(company, customer_add("Acme"), item_add("Consulting", "100.00"))
    run(
        company,
        invoice_add("Acme", ("Consulting", "1", "100.00"), ref="A"),
        invoice_add("Acme", ("Consulting", "1", "100.00"), ref="B"),
    )
    rs = run(company, payment_add("Acme", "250.00", auto=True))
    assert rs[0].findtext("ReceivePaymentRet/UnusedPayment") == "50.00"
    assert all(inv.is_paid for inv in company.invoices())


def journal(debit: str, credit: str) -> str:
    return (
        "<JournalEntryAddRq><JournalEntryAdd><TxnDate>2024-03-31</TxnDate><RefNumber>JE1</RefNumber>"
        f"<JournalDebitLine><AccountRef><FullName>Checking</FullName></AccountRef><Amount>{debit}</Amount><Memo>in</Memo></JournalDebitLine>"
        f"<JournalCreditLine><AccountRef><FullName>Sales</FullName></AccountRef><Amount>{credit}</Amount></JournalCreditLine>"
        "</JournalEntryAdd></JournalEntryAddRq>"
    )


def test_journal_entry_must_balance(company: FakeCompany) -> None:
    rs = run(company, journal("100.00", "99.99"))
    assert status(rs[0])[1] == "Error" and "not in balance" in rs[0].get("statusMessage", "")
    assert company.count("JournalEntry") == 0
    rs = run(company, journal("100.00", "100.00"))
    assert status(rs[0])[0] == 0
    ret = rs[0][0]
    assert ret.findtext("JournalDebitLine/AccountRef/FullName") == "Checking"
    assert ret.findtext("JournalCreditLine/Amount") == "100.00"
    bad = journal("1.00", "1.00").replace("<FullName>Sales</FullName>", "<FullName>Nope</FullName>")
    assert status(run(company, bad)[0])[0] == 3140


def test_class_and_account_queries(company: FakeCompany) -> None:
    rs = run(
        company,
        "<ClassAddRq><ClassAdd><Name>East</Name></ClassAdd></ClassAddRq>",
        "<ClassAddRq><ClassAdd><Name>east</Name></ClassAdd></ClassAddRq>",
        on_error="continueOnError",
    )
    assert [status(r)[0] for r in rs] == [0, 3100]
    rs = run(company, "<AccountQueryRq><AccountType>Income</AccountType></AccountQueryRq>")
    assert {r.findtext("Name") for r in rs[0]} >= {"Sales", "Services"}


def continue_rq(iterator_id: str, max_returned: int) -> str:
    return (
        f'<CustomerQueryRq iterator="Continue" iteratorID="{iterator_id}">'
        f"<MaxReturned>{max_returned}</MaxReturned></CustomerQueryRq>"
    )


def test_iterator_pages_250_customers_in_three_pages(company: FakeCompany) -> None:
    for start in range(0, 250, 50):
        run(company, *(customer_add(f"Cust {i:03d}") for i in range(start, start + 50)))
    assert company.count("Customer") == 250
    rs = run(
        company, '<CustomerQueryRq requestID="it" iterator="Start"><MaxReturned>100</MaxReturned></CustomerQueryRq>'
    )[0]
    iterator_id = rs.get("iteratorID") or ""
    assert iterator_id.startswith("{") and rs.get("iteratorRemainingCount") == "150" and len(rs) == 100
    pages = [rs]
    names = [r.findtext("Name") for r in rs]
    for _ in range(5):
        if pages[-1].get("iteratorRemainingCount") == "0":
            break
        cont = continue_rq(iterator_id, 100)
        page = run(company, cont)[0]
        assert page.get("iteratorID") == iterator_id
        pages.append(page)
        names += [r.findtext("Name") for r in page]
    assert [len(p) for p in pages] == [100, 100, 50]
    assert [p.get("iteratorRemainingCount") for p in pages] == ["150", "50", "0"]
    assert names == sorted(names) and len(set(names)) == 250
    # Exhausted, unknown and session-expired iterators are all 3391.
    cont = continue_rq(iterator_id, 100)
    assert status(run(company, cont)[0])[0] == 3391
    rs = run(company, '<CustomerQueryRq iterator="Start"><MaxReturned>10</MaxReturned></CustomerQueryRq>')[0]
    company.end_session()
    cont = continue_rq(rs.get("iteratorID") or "", 10)
    assert status(run(company, cont)[0]) == (3391, "Error")


def test_message_set_recovery_replays_last_response_without_reprocessing(company: FakeCompany) -> None:
    first = company.process(qbxml(customer_add("Once", "r1"), attrs=' newMessageSetID="set-1"'))
    assert 'newMessageSetID="set-1"' in first
    again = company.process(qbxml(customer_add("Once", "r1"), attrs=' oldMessageSetID="set-1" newMessageSetID="set-2"'))
    assert again == first
    assert company.count("Customer") == 1
    assert company.request_log[-1].outcome == "replayed"
    # An old id QuickBooks never saw: the old set was lost before reaching QuickBooks, so process the new one.
    out = company.process(qbxml(customer_add("Twice"), attrs=' oldMessageSetID="never" newMessageSetID="set-3"'))
    assert "Status OK" in out and company.count("Customer") == 2
    # Only the last message set is kept (SDK behaviour).
    assert company.process(qbxml(customer_add("Once"), attrs=' oldMessageSetID="set-1"')) != first


@pytest.mark.parametrize(
    "document",
    [
        qbxml(customer_add("Zoë Ωmega")),  # Greek omega is outside ISO-8859-1
        qbxml(customer_add("Snow ☃")),
        '<?xml version="1.0"?><?qbxml version="13.0"?><QBXML><QBXMLMsgsRq onError="stopOnError"><CustomerAddRq>',
        '<?xml version="1.0"?><QBXML><QBXMLMsgsRq onError="stopOnError"></QBXMLMsgsRq></QBXML>',  # no qbxml PI
        qbxml(customer_add("x"), on_error="bogus"),
        qbxml("<FooAddRq><FooAdd><Name>x</Name></FooAdd></FooAddRq>"),
        qbxml("<CustomerAddRq><CustomerAdd><CompanyName>no name</CompanyName></CustomerAdd></CustomerAddRq>"),
        qbxml(payment_add("Acme", "12.3.4")),
    ],
)
def test_parse_errors_raise_hresult_and_change_nothing(company: FakeCompany, document: str) -> None:
    with pytest.raises(QBXMLProcessingError) as err:
        company.process(document)
    assert err.value.hresult == HRESULT_PARSE_ERROR == "0x80040400"
    assert err.value.message == "QuickBooks found an error when parsing the provided XML text stream."
    assert company.count("Customer") == 0
    assert company.request_log[-1].outcome == "parse_error"


def test_latin1_is_fine(company: FakeCompany) -> None:
    rs = run(company, customer_add("Zoë Müller & Söhne".replace("&", "&amp;")))
    assert status(rs[0])[0] == 0 and company.find_customer("Zoë Müller & Söhne") is not None


def test_xxe_and_entity_bomb_are_refused_without_expansion(company: FakeCompany, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xxe = (
        f'<?xml version="1.0"?><!DOCTYPE QBXML [<!ENTITY x SYSTEM "file://{secret}">]><?qbxml version="13.0"?>'
        '<QBXML><QBXMLMsgsRq onError="stopOnError"><CustomerAddRq><CustomerAdd><Name>&x;</Name></CustomerAdd>'
        "</CustomerAddRq></QBXMLMsgsRq></QBXML>"
    )
    levels = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    bomb = (
        f'<?xml version="1.0"?><!DOCTYPE QBXML [<!ENTITY l0 "lol">{levels}]><?qbxml version="13.0"?>'
        '<QBXML><QBXMLMsgsRq onError="stopOnError"><CustomerAddRq><CustomerAdd><Name>&l9;</Name></CustomerAdd>'
        "</CustomerAddRq></QBXMLMsgsRq></QBXML>"
    )
    for doc in (xxe, bomb):
        started = time.monotonic()
        with pytest.raises(QBXMLProcessingError) as err:
            company.process(doc)
        assert err.value.hresult == HRESULT_PARSE_ERROR
        assert time.monotonic() - started < 1.0
    assert company.count("Customer") == 0


def test_unsupported_version_and_injected_faults(company: FakeCompany) -> None:
    with pytest.raises(QBXMLProcessingError) as err:
        company.process(qbxml(customer_add("A"), version="16.0"))
    assert err.value.hresult == HRESULT_VERSION_NOT_SUPPORTED
    company.parse_error_next = True
    with pytest.raises(QBXMLProcessingError):
        company.process(qbxml(customer_add("A")))
    assert company.count("Customer") == 0 and not company.parse_error_next
    assert status(run(company, customer_add("A"))[0])[0] == 0
    company.fail_open = True
    with pytest.raises(QBXMLProcessingError) as err:
        company.open_connection()
    assert err.value.hresult == "0x80040408"


def test_response_data_include_none_and_request_log(company: FakeCompany) -> None:
    rs = run(company, customer_add("A"), customer_add("B"), attrs=' responseData="includeNone"')
    assert [len(r) for r in rs] == [0, 0] and company.count("Customer") == 2
    assert company.process_calls == 1 and company.requests_per_call() == [2]
    assert company.request_log[0].requests == ["CustomerAddRq", "CustomerAddRq"]


def test_hcp_response_has_versions_and_file_id_once_stamped(company: FakeCompany) -> None:
    plain = etree.fromstring(company.host_company_preferences_response(None, None).split("?>", 1)[1].encode())
    assert plain.find(".//DataExtRet") is None
    hcp = company.host_company_preferences_response(OWNER, FILE_ID)
    root = etree.fromstring(hcp.split("?>", 1)[1].encode())
    host = root.find("QBXMLMsgsRs/HostQueryRs/HostRet")
    assert host is not None and host.findtext("ProductName", "").startswith("QuickBooks")
    assert [v.text for v in host.findall("SupportedQBXMLVersion")][-1] == "13.0"
    assert host.findtext("QBFileMode") == "SingleUser"
    ext = root.find("QBXMLMsgsRs/CompanyQueryRs/CompanyRet/DataExtRet")
    assert ext is not None
    assert (ext.findtext("OwnerID"), ext.findtext("DataExtName"), ext.findtext("DataExtValue")) == (
        OWNER,
        "FileID",
        FILE_ID,
    )
    assert root.findtext("QBXMLMsgsRs/CompanyQueryRs/CompanyRet/CompanyName") == "Fake Co"
    assert [rs.get("requestID") for rs in root.find("QBXMLMsgsRs")] == ["0", "1", "2"]
    assert company.stamp_file_id(OWNER, FILE_ID) is False  # idempotent


def test_hcp_response_has_the_shape_of_the_real_one(company: FakeCompany) -> None:
    real_file = REFERENCE / "qb2014" / "strHCPResponse_QuickBooksPro2014.xml"
    if not real_file.exists():
        pytest.skip(f"reference data not present at {real_file}")
    real = etree.fromstring(real_file.read_bytes().split(b"?>", 1)[1])
    ours = etree.fromstring(company.host_company_preferences_response(OWNER, FILE_ID).split("?>", 1)[1].encode())

    def paths(root: etree._Element) -> set[str]:
        return {re.sub(r"\[\d+\]", "", etree.ElementTree(root).getpath(el)) for el in root.iter()}

    def tags(root: etree._Element, path: str) -> list[str]:
        el = root.find(path)
        return [] if el is None else list(dict.fromkeys(c.tag for c in el))

    for path in ("QBXMLMsgsRs", "QBXMLMsgsRs/HostQueryRs/HostRet"):
        assert tags(ours, path) == tags(real, path)
    # Everything we emit in CompanyRet/DataExtRet exists in the real one.
    assert {p for p in paths(ours) if "DataExtRet" in p} <= {p for p in paths(real) if "DataExtRet" in p}
    assert set(real.find("QBXMLMsgsRs/HostQueryRs").attrib) == set(ours.find("QBXMLMsgsRs/HostQueryRs").attrib)


def test_json_round_trip_keeps_everything(company: FakeCompany) -> None:
    run(
        company,
        customer_add("Acme"),
        item_add("Consulting", "10.00"),
        invoice_add("Acme", ("Consulting", "3", "10.00"), ref="J1"),
    )
    inv = company.find_invoice("J1")
    assert inv is not None
    run(company, payment_add("Acme", "5.00", [(inv.txn_id, "5.00")]), journal("1.00", "1.00"))
    company.stamp_file_id(OWNER, FILE_ID)
    clone = FakeCompany.from_json(company.to_json())
    for kind in ("Customer", "Item", "Invoice", "ReceivePayment", "JournalEntry", "Account"):
        assert clone.count(kind) == company.count(kind)
    again = clone.find_invoice("J1")
    assert again is not None and again.balance_remaining == Decimal("25.00")
    # Counters survive: new IDs do not collide, names stay unique.
    rs = run(clone, customer_add("Acme"), customer_add("New"), on_error="continueOnError")
    assert [status(r)[0] for r in rs] == [3100, 0]
    assert len({c.list_id for c in clone.customers()}) == 2
    assert "FileID" in clone.host_company_preferences_response(OWNER, None)


def test_concurrent_processing_is_safe(company: FakeCompany) -> None:
    def worker(n: int) -> None:
        for i in range(20):
            company.process(qbxml(customer_add(f"T{n}-{i}")))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    ids = [c.list_id for c in company.customers()]
    assert len(ids) == 100 and len(set(ids)) == 100
