"""Every builder's output, wrapped in a message set, validates against Intuit's 13.0 (and 16.0) XSD."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from lxml import etree  # type: ignore[import-untyped]

from qbsync.qbxml import (
    Address,
    AppliedTo,
    Customer,
    Invoice,
    InvoiceLine,
    Item,
    JournalEntry,
    JournalLine,
    NameFilter,
    QbxmlFieldError,
    QbxmlVersion,
    ReceivePayment,
    Ref,
    build_customer_add,
    build_customer_mod,
    build_customer_query,
    build_invoice_add,
    build_invoice_mod,
    build_invoice_query,
    build_item_add,
    build_item_query,
    build_journal_entry_add,
    build_message_set,
    build_receive_payment_add,
    build_receive_payment_query,
    build_txn_deleted_query,
    estimate_batch,
    estimate_response_bytes,
)
from qbsync.qbxml.safexml import parse_xml

GUID = "{6B29FC40-CA47-1067-B31D-00DD010662DA}"
FULL_ADDRESS = Address(
    addr1="A" * 41,
    addr2="Suite 2",
    addr3="Building 3",
    addr4="Floor 4",
    addr5="Desk 5",
    city="C" * 31,
    state="S" * 21,
    postal_code="P" * 13,
    country="K" * 31,
    note="Leave at the door",
)

MAX_CUSTOMER = Customer(
    name="N" * 41,
    is_active=True,
    parent=Ref(list_id="80000001-1234567890"),
    company_name="Zoë & Sons <Ltd>",
    salutation="Dr.",
    first_name="Zoë",
    middle_name="Q",
    last_name="Łódź",
    bill_address=FULL_ADDRESS,
    ship_address=Address(addr1="1 Ship St", city="Port"),
    phone="+1 555 0100",
    alt_phone="+1 555 0101",
    fax="+1 555 0102",
    email="billing@example.com",
    contact="Jane Roe",
    terms="Net 30",
    sales_tax_code="Tax",
    item_sales_tax=Ref(list_id="10000-1", full_name="State Tax"),
    resale_number="R-1",
    account_number="ACC-42",
    credit_limit=Decimal("2000"),
    notes="Imported by qbsync\nsecond line",
    external_guid=GUID,
)

MAX_INVOICE = Invoice(
    customer=Ref(list_id="80000001-1234567890", full_name="Parent:Child"),
    class_ref="Consulting",
    ar_account="Accounts Receivable",
    template="Intuit Service Invoice",
    txn_date=date(2024, 3, 1),
    ref_number="INV-0000001",
    bill_address=FULL_ADDRESS,
    ship_address=FULL_ADDRESS,
    is_pending=False,
    po_number="PO-123",
    terms="Net 30",
    due_date=date(2024, 3, 31),
    ship_date=date(2024, 3, 2),
    item_sales_tax="State Tax",
    memo="Thanks for your business — “really”",
    customer_msg="Thank you",
    is_to_be_printed=False,
    is_to_be_emailed=True,
    customer_sales_tax_code="Tax",
    other="other",
    external_guid=GUID,
    lines=(
        InvoiceLine(
            item=Ref(full_name="Consulting:Hourly"),
            description="March consulting",
            quantity=Decimal("12.75"),
            rate=Decimal("150.12345"),
            class_ref="Consulting",
            amount=Decimal("1914.07"),
            service_date=date(2024, 3, 1),
            sales_tax_code="Non",
            override_item_account="Consulting Income",
        ),
        InvoiceLine(item="Discount 10%", rate_percent=Decimal("-10"), description="Loyalty discount"),
        InvoiceLine(item="Discount", amount=Decimal("-5.00")),
        InvoiceLine(description="A description-only line"),
    ),
)

MAX_PAYMENT = ReceivePayment(
    customer="Zoë Łódź",
    ar_account="Accounts Receivable",
    txn_date=date(2024, 4, 1),
    ref_number="CHK-12345678901234",
    total_amount=Decimal("1909.07"),
    payment_method="Check",
    memo="Payment, thanks",
    deposit_to_account="Undeposited Funds",
    external_guid=GUID,
    applied_to=(
        AppliedTo(
            txn_id="1A2B-1234567890",
            payment_amount=Decimal("1900"),
            discount_amount=Decimal("9.07"),
            discount_account="Discounts Given",
        ),
        AppliedTo(txn_id="1A2C-1234567890", payment_amount=Decimal("0.00")),
    ),
)

MAX_JOURNAL = JournalEntry(
    txn_date=date(2024, 5, 1),
    ref_number="JE-00000001",
    memo="Month-end accrual",
    is_adjustment=True,
    external_guid=GUID,
    lines=(
        JournalLine(
            side="debit",
            account=Ref(full_name="Expenses:Rent"),
            amount=Decimal("1000.00"),
            memo="Rent",
            entity="Landlord Inc",
            class_ref="Admin",
            billable_status="NotBillable",
        ),
        JournalLine(side="credit", account="Accrued Liabilities", amount=Decimal("600"), memo="part 1"),
        JournalLine(side="credit", account="Accrued Liabilities", amount=Decimal("400"), memo="part 2"),
    ),
)

AWARE = datetime(2024, 1, 31, 23, 59, 58, 123456, tzinfo=timezone(timedelta(hours=-5)))

CASES: dict[str, Callable[[], etree._Element]] = {
    "customer_add_max": lambda: build_customer_add("cust-add-max", MAX_CUSTOMER, include_ret_elements=["ListID"]),
    "customer_add_min": lambda: build_customer_add("cust-add-min", Customer(name="Minimal")),
    "customer_mod_max": lambda: build_customer_mod(
        "cust-mod-max", "80000001-1234567890", "1405768916", MAX_CUSTOMER, include_ret_elements=["EditSequence"]
    ),
    "customer_mod_min": lambda: build_customer_mod("cust-mod-min", "80000001-1", "1", Customer(email="x@y.z")),
    "customer_query_list_ids": lambda: build_customer_query("cq-ids", list_ids=["80000001-1", "80000002-1"]),
    "customer_query_full_names": lambda: build_customer_query("cq-names", full_names=["Parent:Child"]),
    "customer_query_filters": lambda: build_customer_query(
        "cq-filters",
        max_returned=100,
        active_status="All",
        from_modified=AWARE,
        to_modified=datetime(2024, 2, 1, tzinfo=UTC),
        name_filter=NameFilter("StartsWith", "Zoë"),
        iterator="Start",
        include_ret_elements=["ListID", "EditSequence", "Name"],
        owner_ids=["0"],
    ),
    "customer_query_continue": lambda: build_customer_query(
        "cq-cont", max_returned=100, iterator="Continue", iterator_id="{eb05f701-e727-472f-8ade-6753c4f67a46}"
    ),
    "customer_query_min": lambda: build_customer_query("cq-min"),
    "item_service_sales_or_purchase": lambda: build_item_add(
        "isvc-1",
        Item(
            name="S" * 31,
            income_account="Consulting Income",
            description="Hourly consulting",
            price=Decimal("150.12345"),
            tax_code="Non",
            is_active=True,
            parent="Consulting",
            external_guid=GUID,
        ),
        include_ret_elements=["ListID"],
    ),
    "item_service_percent": lambda: build_item_add(
        "isvc-2", Item(name="Markup", income_account="Income", price_percent=Decimal("12.5"))
    ),
    "item_service_sales_and_purchase": lambda: build_item_add(
        "isvc-3",
        Item(
            name="Subcontract",
            income_account="Income",
            description="Sold",
            price=Decimal("100"),
            expense_account="Cost of Goods Sold",
            purchase_description="Bought",
            purchase_cost=Decimal("60.5"),
            preferred_vendor="Contractor LLC",
            tax_code="Tax",
        ),
    ),
    "item_service_min": lambda: build_item_add("isvc-min", Item(name="Min", income_account=Ref(list_id="8-1"))),
    "item_non_inventory_max": lambda: build_item_add(
        "inon-1",
        Item(
            name="Widget",
            kind="non_inventory",
            income_account="Sales",
            description="A widget",
            price=Decimal("9.99"),
            expense_account="COGS",
            purchase_cost=Decimal("4.5"),
            tax_code="Tax",
            is_active=False,
            parent="Hardware",
            manufacturer_part_number="WX-1",
            external_guid=GUID,
        ),
    ),
    "item_non_inventory_min": lambda: build_item_add(
        "inon-min", Item(name="Thing", kind="non_inventory", income_account="Sales")
    ),
    "item_query_all": lambda: build_item_query(
        "iq-1",
        max_returned=50,
        active_status="All",
        from_modified=AWARE,
        name_filter=NameFilter("Contains", "gadget"),
        iterator="Start",
        include_ret_elements=["ListID", "Name"],
        owner_ids=[GUID],
    ),
    "item_query_service": lambda: build_item_query("iq-2", kind="service", full_names=["Consulting:Hourly"]),
    "item_query_non_inventory": lambda: build_item_query("iq-3", kind="non_inventory", list_ids=["8-1"]),
    "item_query_min": lambda: build_item_query("iq-min"),
    "invoice_add_max": lambda: build_invoice_add("inv-add-max", MAX_INVOICE, include_ret_elements=["TxnID"]),
    "invoice_add_min": lambda: build_invoice_add("inv-add-min", Invoice(customer="Bob")),
    "invoice_mod_max": lambda: build_invoice_mod(
        "inv-mod-max", "1A2B-1234567890", "1405768916", MAX_INVOICE, include_ret_elements=["TxnID"]
    ),
    "invoice_mod_header_only": lambda: build_invoice_mod(
        "inv-mod-min", "1A2B-1", "7", Invoice(customer="Bob", memo="changed")
    ),
    "invoice_query_txn_ids": lambda: build_invoice_query(
        "iq-txn", txn_ids=["1A2B-1234567890"], include_line_items=True, include_linked_txns=True
    ),
    "invoice_query_ref_numbers": lambda: build_invoice_query("iq-ref", ref_numbers=["INV-1", "INV-2"]),
    "invoice_query_modified": lambda: build_invoice_query(
        "iq-mod",
        max_returned=25,
        modified_from=AWARE,
        modified_to=datetime(2024, 2, 1, 0, 0),
        customer=Ref(list_id="80000001-1"),
        paid_status="NotPaidOnly",
        include_line_items=False,
        include_linked_txns=True,
        iterator="Start",
        include_ret_elements=["TxnID", "IsPaid", "BalanceRemaining"],
        owner_ids=["0"],
    ),
    "invoice_query_txn_dates": lambda: build_invoice_query(
        "iq-dates", txn_date_from=date(2024, 1, 1), txn_date_to=date(2024, 1, 31), customer="Bob", paid_status="All"
    ),
    "invoice_query_min": lambda: build_invoice_query("invq-min"),
    "receive_payment_max": lambda: build_receive_payment_add("rp-max", MAX_PAYMENT, include_ret_elements=["TxnID"]),
    "receive_payment_auto_apply": lambda: build_receive_payment_add(
        "rp-auto", ReceivePayment(customer=Ref(list_id="8-1"), total_amount=Decimal("10"), auto_apply=True)
    ),
    "receive_payment_query_modified": lambda: build_receive_payment_query(
        "rpq-mod",
        max_returned=100,
        modified_from=AWARE,
        customer=Ref(list_id="80000001-1"),
        iterator="Start",
        include_ret_elements=["TxnID", "TxnDate", "TotalAmount", "AppliedToTxnRet"],
    ),
    "receive_payment_query_txn_dates": lambda: build_receive_payment_query(
        "rpq-dates", txn_date_from=date(2024, 1, 5), txn_date_to=date(2024, 1, 5), customer="Bob"
    ),
    "receive_payment_query_txn_ids": lambda: build_receive_payment_query("rpq-ids", txn_ids=["1A-1234567890"]),
    "txn_deleted_query_range": lambda: build_txn_deleted_query(
        "tdq", ["Invoice", "ReceivePayment"], deleted_from=AWARE, deleted_to=datetime(2024, 2, 1, 0, 0)
    ),
    "txn_deleted_query_min": lambda: build_txn_deleted_query("tdq-min", ["Invoice"]),
    "journal_entry_max": lambda: build_journal_entry_add("je-max", MAX_JOURNAL, include_ret_elements=["TxnID"]),
    "journal_entry_min": lambda: build_journal_entry_add(
        "je-min",
        JournalEntry(
            lines=(
                JournalLine(side="credit", account="B", amount=Decimal("1")),
                JournalLine(side="debit", account="A", amount=Decimal("1")),
            )
        ),
    ),
}


def _errors(schema: etree.XMLSchema, document: str) -> list[str]:
    ok = schema.validate(parse_xml(document))
    return [] if ok else [f"{e.line}: {e.message}" for e in schema.error_log]


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_request_validates_against_13_0(case: str, schema130: etree.XMLSchema) -> None:
    document = build_message_set([CASES[case]()])
    assert _errors(schema130, document) == []
    document.encode("iso-8859-1")  # every character is Latin-1


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_request_validates_against_16_0(case: str, schema160: etree.XMLSchema) -> None:
    assert _errors(schema160, build_message_set([CASES[case]()])) == []


def test_whole_batch_in_one_message_set(schema130: etree.XMLSchema) -> None:
    requests = [factory() for factory in CASES.values()]
    document = build_message_set(requests, new_message_set_id="set-2", old_message_set_id="set-1")
    assert _errors(schema130, document) == []
    root = parse_xml(document)
    msgs = root.find("QBXMLMsgsRq")
    assert msgs is not None
    assert msgs.get("onError") == "continueOnError"
    assert msgs.get("newMessageSetID") == "set-2"
    assert msgs.get("oldMessageSetID") == "set-1"
    assert [el.get("requestID") for el in msgs] == [rq.get("requestID") for rq in requests]


def test_document_header_and_encoding() -> None:
    document = build_message_set([build_customer_add("r1", MAX_CUSTOMER)])
    assert document.startswith('<?xml version="1.0" encoding="utf-8"?>')
    assert '<?qbxml version="13.0"?>' in document
    encoded = document.encode("iso-8859-1")
    assert "Zoë".encode("iso-8859-1") in encoded
    assert "Zoë &amp; Sons &lt;Ltd&gt;" in document


def test_version_processing_instruction_and_gated_elements(schema130: etree.XMLSchema) -> None:
    old = QbxmlVersion(7, 0)
    requests = [
        build_customer_add("c", MAX_CUSTOMER, version=old),
        build_invoice_add("i", MAX_INVOICE, version=old),
        build_receive_payment_add("p", MAX_PAYMENT, version=QbxmlVersion(8, 0)),
    ]
    document = build_message_set(requests, version=old)
    assert '<?qbxml version="7.0"?>' in document
    assert "ExternalGUID" not in document
    assert _errors(schema130, document) == []
    # 8.0 keeps ExternalGUID on CustomerAdd (v8) but not on InvoiceAdd (v9).
    customer = build_customer_add("c", MAX_CUSTOMER, version=QbxmlVersion(8, 0))
    invoice = build_invoice_add("i", MAX_INVOICE, version=QbxmlVersion(8, 0))
    assert customer.find("CustomerAdd/ExternalGUID") is not None
    assert invoice.find("InvoiceAdd/ExternalGUID") is None


def test_maximal_invoice_renders_numbers_exactly() -> None:
    rq = build_invoice_add("inv", MAX_INVOICE)
    line = rq.find("InvoiceAdd/InvoiceLineAdd")
    assert line is not None
    assert line.findtext("Quantity") == "12.75"
    assert line.findtext("Rate") == "150.12345"
    assert line.findtext("Amount") == "1914.07"
    assert rq.findtext("InvoiceAdd/InvoiceLineAdd[2]/RatePercent") == "-10"
    assert rq.findtext("InvoiceAdd/InvoiceLineAdd[3]/Amount") == "-5.00"
    assert rq.findtext("InvoiceAdd/Memo") == 'Thanks for your business - "really"'


def test_query_datetime_rendering() -> None:
    rq = build_customer_query("q", from_modified=AWARE)
    assert rq.findtext("FromModifiedDate") == "2024-01-31T23:59:58-05:00"
    iq = build_invoice_query("q", modified_to=datetime(2024, 2, 1, 0, 0))
    assert iq.findtext("ModifiedDateRangeFilter/ToModifiedDate") == "2024-02-01T00:00:00"


def test_request_elements_can_be_reused() -> None:
    rq = build_customer_add("r1", Customer(name="A"))
    first = build_message_set([rq])
    assert build_message_set([rq]) == first


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: build_customer_add("x" * 51, Customer(name="A")), "requestID"),
        (lambda: build_customer_add("", Customer(name="A")), "requestID"),
        (lambda: build_customer_add("has space", Customer(name="A")), "requestID"),
        (lambda: build_customer_add("r", Customer(company_name="no name")), "Name"),
        (lambda: build_customer_query("r", list_ids=["1"], max_returned=5), "filters"),
        (lambda: build_customer_query("r", iterator="Continue"), "iteratorID"),
        (lambda: build_customer_query("r", iterator="Start", iterator_id="{x}"), "iteratorID"),
        (lambda: build_customer_query("r", max_returned=0), "MaxReturned"),
        (lambda: build_invoice_query("r", txn_ids=["1"], ref_numbers=["2"]), "RefNumber"),
        (
            lambda: build_invoice_query("r", modified_from=AWARE, txn_date_from=date(2024, 1, 1)),
            "TxnDateRangeFilter",
        ),
        (lambda: build_receive_payment_add("r", ReceivePayment(customer="A")), "AppliedToTxnAdd"),
        (
            lambda: build_receive_payment_add(
                "r",
                ReceivePayment(
                    customer="A", auto_apply=True, applied_to=(AppliedTo(txn_id="1", payment_amount=Decimal(1)),)
                ),
            ),
            "AppliedToTxnAdd",
        ),
        (
            lambda: build_journal_entry_add(
                "r",
                JournalEntry(
                    lines=(
                        JournalLine(side="debit", account="A", amount=Decimal("1")),
                        JournalLine(side="credit", account="B", amount=Decimal("2")),
                    )
                ),
            ),
            "JournalCreditLine",
        ),
        (
            lambda: build_invoice_add(
                "r", Invoice(customer="A", lines=(InvoiceLine(rate=Decimal(1), rate_percent=Decimal(1)),))
            ),
            "InvoiceLineAdd[1]/RatePercent",
        ),
        (lambda: build_customer_add("r", Customer(name="A", external_guid="not-a-guid")), "ExternalGUID"),
    ],
)
def test_invalid_requests_are_refused(factory: Callable[[], etree._Element], field: str) -> None:
    with pytest.raises(QbxmlFieldError) as info:
        factory()
    assert info.value.field == field


def test_duplicate_request_ids_refused() -> None:
    rq = build_customer_add("same", Customer(name="A"))
    with pytest.raises(QbxmlFieldError, match="twice"):
        build_message_set([rq, build_customer_add("same", Customer(name="B"))])


def test_size_estimates_bound_a_batch() -> None:
    small = [build_customer_add(f"r{i}", Customer(name=f"C{i}")) for i in range(3)]
    estimate = estimate_batch(small)
    document = build_message_set(small)
    assert estimate.request_bytes >= len(document.encode("utf-8"))
    assert 3 * 2000 < estimate.response_bytes < 50_000
    query_10 = build_customer_query("q", max_returned=10)
    query_100 = build_customer_query("q", max_returned=100)
    assert estimate_response_bytes(query_100) > 5 * estimate_response_bytes(query_10)
    trimmed = build_customer_query("q", max_returned=100, include_ret_elements=["ListID"])
    assert estimate_response_bytes(trimmed) < estimate_response_bytes(query_100) / 4
    unbounded = build_invoice_query("q", include_line_items=True)
    assert estimate_response_bytes(unbounded) > 5_000_000


def test_schema_really_checks_order_and_lengths(schema130: etree.XMLSchema) -> None:
    """Guard against a vacuous validation: a swapped order and an over-long name are rejected by the XSD."""
    swapped = build_customer_add("r", Customer(name="A", company_name="B"))
    body = swapped.find("CustomerAdd")
    assert body is not None
    body.insert(0, body[1])  # CompanyName before Name
    assert _errors(schema130, build_message_set([swapped]))
    too_long = build_item_add("r", Item(name="ok", income_account="Income"))
    name = too_long.find("ItemServiceAdd/Name")
    assert name is not None
    name.text = "x" * 38
    assert any("31" in e for e in _errors(schema130, build_message_set([too_long])))
