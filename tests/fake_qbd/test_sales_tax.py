"""Sales tax, discount items, sales tax codes and terms in the fake QuickBooks Desktop company.

Every request and response here is checked against Intuit's qbXML 13.0 XSD (read from ../shared/reference).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from lxml import etree

from infra.fake_qbd import FakeCompany
from infra.fake_qbd.company import StatusError
from qbsync.qbxml import (
    AppliedTo,
    Customer,
    Invoice,
    InvoiceLine,
    Item,
    QbxmlResult,
    ReceivePayment,
    build_customer_add,
    build_invoice_add,
    build_item_add,
    build_message_set,
    build_receive_payment_add,
    parse_response,
)
from qbsync.qbxml.xsd import find_xsd, validation_errors
from tests.fake_qbd.test_company import customer_add, item_add, qbxml, status


@pytest.fixture(scope="module")
def xsd() -> None:
    if find_xsd("130") is None:
        pytest.skip("qbXML 13.0 XSD not found (set QBXML_XSD_DIR or check out ../shared/reference)")


@pytest.fixture
def company(xsd: None) -> FakeCompany:
    """A company set up like a user would: a 7.5 % sales tax item, a discount item, a service and a part."""
    company = FakeCompany()
    company.add_sales_tax_item("State Tax", "7.5", desc="State sales tax")
    company.add_discount_item("Promo", desc="Promotional discount")  # tax code: QuickBooks' default, Tax
    valid(
        company,
        item_add("Consulting", "100.00"),  # a service item without a tax code: Non
        item_add("Widget", "13.00", "ItemNonInventory"),  # a part without a tax code: Tax
    )
    return company


def valid(company: FakeCompany, *requests: str, on_error: str = "stopOnError") -> list[etree._Element]:
    """Process requests that must be XSD-valid and return the *Rs elements of an XSD-valid response."""
    document = qbxml(*requests, on_error=on_error)
    assert validation_errors(document, "130") == []
    out = company.process(document)
    assert validation_errors(out, "130") == []
    root = etree.fromstring(out.split("?>", 1)[1].encode())
    return list(root.find("QBXMLMsgsRs"))


def ref(tag: str, name: str) -> str:
    return f"<{tag}><FullName>{name}</FullName></{tag}>"


def invoice(customer: str, *lines: str, header: str = "", after_due: str = "", tail: str = "") -> str:
    """InvoiceAdd in XSD order: header goes between RefNumber and DueDate, ``after_due`` after it, ``tail`` last."""
    return (
        f"<InvoiceAddRq><InvoiceAdd>{ref('CustomerRef', customer)}<TxnDate>2026-01-05</TxnDate>"
        f"<RefNumber>T-1</RefNumber>{header}{after_due}{tail}{''.join(lines)}</InvoiceAdd></InvoiceAddRq>"
    )


def line(item: str, *, qty: str | None = None, amount: str | None = None, code: str | None = None) -> str:
    body = ref("ItemRef", item)
    body += f"<Quantity>{qty}</Quantity>" if qty is not None else ""
    body += f"<Amount>{amount}</Amount>" if amount is not None else ""
    body += ref("SalesTaxCodeRef", code) if code is not None else ""
    return f"<InvoiceLineAdd>{body}</InvoiceLineAdd>"


def payment(customer: str, txn_id: str, amount: str) -> str:
    return (
        f"<ReceivePaymentAddRq><ReceivePaymentAdd>{ref('CustomerRef', customer)}<TxnDate>2026-01-20</TxnDate>"
        f"<TotalAmount>{amount}</TotalAmount><AppliedToTxnAdd><TxnID>{txn_id}</TxnID>"
        f"<PaymentAmount>{amount}</PaymentAmount></AppliedToTxnAdd></ReceivePaymentAdd></ReceivePaymentAddRq>"
    )


TAXED_LINES = (
    line("Consulting", qty="2", code="Tax"),  # 200.00 taxable (explicit code beats the item's Non)
    line("Widget", qty="4"),  # 52.00 taxable (the part's default code)
    line("Consulting", amount="40.00"),  # 40.00 not taxable (the service's default code)
    line("Promo", amount="-25.00"),  # -25.00 taxable: the discount lowers the taxable base
)


def test_taxed_invoice_with_discount_and_terms(company: FakeCompany) -> None:
    valid(company, customer_add("Acme", extra=ref("TermsRef", "Net 30") + ref("ItemSalesTaxRef", "State Tax")))
    ret = valid(company, invoice("Acme", *TAXED_LINES))[0].find("InvoiceRet")
    assert ret is not None
    # Taxable base 200 + 52 - 25 = 227.00; 7.5 % = 17.025 -> 17.03 (half-up, not banker's 17.02).
    assert ret.findtext("Subtotal") == "267.00"
    assert ret.findtext("ItemSalesTaxRef/FullName") == "State Tax"
    assert ret.findtext("SalesTaxPercentage") == "7.50"
    assert ret.findtext("SalesTaxTotal") == "17.03"
    assert ret.findtext("BalanceRemaining") == "284.03"
    assert ret.findtext("IsPaid") == "false"
    # The customer's terms apply; no DueDate was sent, so it is TxnDate + 30 days.
    assert ret.findtext("TermsRef/FullName") == "Net 30"
    assert ret.findtext("DueDate") == "2026-02-04"
    assert ret.findtext("CustomerSalesTaxCodeRef/FullName") == "Tax"
    codes = [ln.findtext("SalesTaxCodeRef/FullName") for ln in ret.findall("InvoiceLineRet")]
    assert codes == ["Tax", "Tax", "Non", "Tax"]
    assert [ln.findtext("Amount") for ln in ret.findall("InvoiceLineRet")] == ["200.00", "52.00", "40.00", "-25.00"]
    customer = valid(company, "<CustomerQueryRq><FullName>Acme</FullName></CustomerQueryRq>")[0][0]
    assert customer.findtext("Balance") == "284.03"


def test_payment_of_the_full_total_pays_the_invoice(company: FakeCompany) -> None:
    valid(company, customer_add("Acme"))
    ret = valid(company, invoice("Acme", *TAXED_LINES, header=ref("TermsRef", "Net 15"), after_due=tax_item()))[0][0]
    txn_id = ret.findtext("TxnID") or ""
    assert ret.findtext("DueDate") == "2026-01-20"
    # Paying the subtotal alone leaves the tax open; paying more than subtotal + tax is refused as before.
    over = valid(company, payment("Acme", txn_id, "284.04"))[0]
    assert status(over) == (3210, "Error") and "cannot pay more than the amount due" in over.get("statusMessage", "")
    pay = valid(company, payment("Acme", txn_id, "267.00"))[0].find("ReceivePaymentRet")
    assert pay is not None and pay.findtext("AppliedToTxnRet/BalanceRemaining") == "17.03"
    valid(company, payment("Acme", txn_id, "17.03"))
    got = valid(company, f"<InvoiceQueryRq><TxnID>{txn_id}</TxnID></InvoiceQueryRq>")[0][0]
    assert got.findtext("IsPaid") == "true" and got.findtext("BalanceRemaining") == "0.00"
    assert got.findtext("AppliedAmount") == "-284.03"
    paid = company.find_invoice("T-1")
    assert paid is not None and paid.is_paid and paid.sales_tax_total == Decimal("17.03")


def tax_item(name: str = "State Tax") -> str:
    return ref("ItemSalesTaxRef", name)


def test_exempt_customer_pays_no_tax(company: FakeCompany) -> None:
    valid(company, customer_add("Church", extra=ref("SalesTaxCodeRef", "Non") + ref("ItemSalesTaxRef", "State Tax")))
    ret = valid(company, invoice("Church", *TAXED_LINES))[0][0]
    assert ret.findtext("CustomerSalesTaxCodeRef/FullName") == "Non"
    assert ret.findtext("ItemSalesTaxRef/FullName") == "State Tax"
    assert ret.findtext("SalesTaxTotal") == "0.00"
    assert ret.findtext("BalanceRemaining") == ret.findtext("Subtotal") == "267.00"


def test_invoice_customer_code_overrides_the_customers(company: FakeCompany) -> None:
    valid(company, customer_add("Acme", extra=ref("ItemSalesTaxRef", "State Tax")))
    ret = valid(company, invoice("Acme", *TAXED_LINES, tail=ref("CustomerSalesTaxCodeRef", "Non")))[0][0]
    assert ret.findtext("SalesTaxTotal") == "0.00"
    # And an exempt customer made taxable on one invoice pays tax on it.
    valid(company, customer_add("Church", extra=ref("SalesTaxCodeRef", "Non")))
    ret = valid(
        company, invoice("Church", *TAXED_LINES, after_due=tax_item(), tail=ref("CustomerSalesTaxCodeRef", "Tax"))
    )
    assert ret[0][0].findtext("SalesTaxTotal") == "17.03"


def test_no_tax_item_means_no_tax_until_the_company_has_a_most_common_one(company: FakeCompany) -> None:
    valid(company, customer_add("Acme"))
    ret = valid(company, invoice("Acme", *TAXED_LINES))[0][0]
    assert ret.find("ItemSalesTaxRef") is None
    assert ret.findtext("SalesTaxTotal") == "0.00" and ret.findtext("BalanceRemaining") == "267.00"
    assert ret.findtext("DueDate") == "2026-01-05"  # no terms anywhere: due on the invoice date
    company.add_sales_tax_item("County Tax", "1.25", most_common=True)
    ret = valid(company, invoice("Acme", *TAXED_LINES))[0][0]
    assert ret.findtext("ItemSalesTaxRef/FullName") == "County Tax"
    assert ret.findtext("SalesTaxPercentage") == "1.25"
    assert ret.findtext("SalesTaxTotal") == "2.84"  # 227.00 x 1.25 % = 2.8375
    # The invoice's own tax item still wins.
    ret = valid(company, invoice("Acme", *TAXED_LINES, after_due=tax_item()))[0][0]
    assert ret.findtext("SalesTaxTotal") == "17.03"


def test_discount_items_tax_code_decides_whether_it_lowers_the_taxable_base(company: FakeCompany) -> None:
    company.add_discount_item("Rebate", tax_code="Non")
    valid(company, customer_add("Acme", extra=tax_item()))
    lines = (line("Widget", qty="4"), line("Rebate", amount="-12.00"))
    ret = valid(company, invoice("Acme", *lines))[0][0]
    assert ret.findtext("Subtotal") == "40.00"
    assert ret.findtext("SalesTaxTotal") == "3.90"  # 52.00 x 7.5 %: the Non discount does not reduce the base
    assert ret.findtext("BalanceRemaining") == "43.90"
    ret = valid(company, invoice("Acme", line("Widget", qty="4"), line("Promo", amount="-12.00")))[0][0]
    assert ret.findtext("SalesTaxTotal") == "3.00"  # 40.00 x 7.5 %


def test_discount_item_rates_apply_when_the_line_has_no_amount(company: FakeCompany) -> None:
    company.add_discount_item("Ten Off", amount="10.00")
    company.add_discount_item("Tenth", percent="10")
    valid(company, customer_add("Acme", extra=tax_item()))
    lines = (line("Widget", qty="4"), line("Ten Off"), line("Consulting", qty="1"), line("Tenth"))
    ret = valid(company, invoice("Acme", *lines))[0][0]
    rows = ret.findall("InvoiceLineRet")
    assert [r.findtext("Amount") for r in rows] == ["52.00", "-10.00", "100.00", "-10.00"]
    assert rows[1].findtext("Rate") == "-10.00" and rows[3].findtext("RatePercent") == "-10.00"
    # Taxable: 52 - 10 - 10 = 32.00 (Consulting is Non) -> 2.40.
    assert ret.findtext("Subtotal") == "132.00" and ret.findtext("SalesTaxTotal") == "2.40"


def test_unknown_terms_tax_item_or_code_is_an_invalid_reference(company: FakeCompany) -> None:
    valid(company, customer_add("Acme"))
    rs = valid(
        company,
        invoice("Acme", line("Widget"), header=ref("TermsRef", "Net 99")),
        invoice("Acme", line("Widget"), after_due=tax_item("Moon Tax")),
        invoice("Acme", line("Widget", code="Zzz")),
        invoice("Acme", line("Widget"), tail=ref("CustomerSalesTaxCodeRef", "Zzz")),
        invoice("Acme", line("Widget"), after_due=tax_item("Promo")),  # a discount item is not a sales tax item
        on_error="continueOnError",
    )
    assert [status(r) for r in rs] == [(3140, "Error")] * 5
    assert (
        rs[0]
        .get("statusMessage", "")
        .startswith('There is an invalid reference to QuickBooks Terms "Net 99" in the Invoice.')
    )
    assert 'Item "Moon Tax"' in rs[1].get("statusMessage", "")
    assert 'Sales Tax Code "Zzz"' in rs[2].get("statusMessage", "")
    assert company.count("Invoice") == 0
    rs = valid(
        company,
        customer_add("Bad Terms", extra=ref("TermsRef", "Net 99")),
        customer_add("Bad Code", extra=ref("SalesTaxCodeRef", "Zzz")),
        customer_add("Bad Item", extra=tax_item("Moon Tax")),
        on_error="continueOnError",
    )
    assert [status(r)[0] for r in rs] == [3140, 3140, 3140]
    assert company.find_customer("Bad Terms") is None


def test_customer_add_and_mod_keep_tax_settings_and_terms(company: FakeCompany) -> None:
    extra = "<CompanyName>Acme Inc</CompanyName>" + ref("TermsRef", "net 15") + ref("SalesTaxCodeRef", "Tax")
    extra += tax_item() + "<AccountNumber>A-1</AccountNumber>"
    ret = valid(company, customer_add("Acme", extra=extra))[0][0]
    assert ret.findtext("TermsRef/FullName") == "Net 15"  # stored as the list's own spelling, with its ListID
    assert ret.findtext("TermsRef/ListID") == next(t.list_id for t in company.terms() if t.name == "Net 15")
    assert ret.findtext("SalesTaxCodeRef/FullName") == "Tax"
    assert ret.findtext("ItemSalesTaxRef/FullName") == "State Tax"
    mod = (
        f"<CustomerModRq><CustomerMod><ListID>{ret.findtext('ListID')}</ListID>"
        f"<EditSequence>{ret.findtext('EditSequence')}</EditSequence>"
        f"{ref('TermsRef', 'Due on receipt')}{ref('SalesTaxCodeRef', 'Non')}</CustomerMod></CustomerModRq>"
    )
    ret = valid(company, mod)[0][0]
    assert ret.findtext("TermsRef/FullName") == "Due on receipt"
    assert ret.findtext("SalesTaxCodeRef/FullName") == "Non"
    assert ret.findtext("ItemSalesTaxRef/FullName") == "State Tax"
    inv = valid(company, invoice("Acme", *TAXED_LINES))[0][0]
    assert inv.findtext("TermsRef/FullName") == "Due on receipt" and inv.findtext("DueDate") == "2026-01-05"
    assert inv.findtext("SalesTaxTotal") == "0.00"
    # The admin hook does the same as a user editing the customer in QuickBooks.
    company.set_customer_sales_tax("Acme", tax_code="Tax", terms="Net 60")
    inv = valid(company, invoice("Acme", *TAXED_LINES))[0][0]
    assert inv.findtext("DueDate") == "2026-03-06" and inv.findtext("SalesTaxTotal") == "17.03"
    current = company.find_customer("Acme")
    assert current is not None
    bad = (
        f"<CustomerModRq><CustomerMod><ListID>{current.list_id}</ListID>"
        f"<EditSequence>{current.edit_sequence}</EditSequence>{ref('TermsRef', 'Net 99')}</CustomerMod></CustomerModRq>"
    )
    assert status(valid(company, bad)[0])[0] == 3140
    assert company.find_customer("Acme") is current and current.field_text("TermsRef") is not None
    assert (
        valid(company, "<CustomerQueryRq><FullName>Acme</FullName></CustomerQueryRq>")[0][0].findtext(
            "TermsRef/FullName"
        )
        == "Net 60"
    )


def test_item_query_returns_discount_and_sales_tax_items(company: FakeCompany) -> None:
    rs = valid(company, "<ItemQueryRq/>")
    assert sorted((r.tag, r.findtext("Name")) for r in rs[0]) == [
        ("ItemDiscountRet", "Promo"),
        ("ItemNonInventoryRet", "Widget"),
        ("ItemSalesTaxRet", "State Tax"),
        ("ItemServiceRet", "Consulting"),
    ]
    tax = valid(company, "<ItemSalesTaxQueryRq/>")[0][0]
    assert tax.findtext("TaxRate") == "7.5" and tax.findtext("ItemDesc") == "State sales tax"
    discount = valid(company, "<ItemDiscountQueryRq><FullName>promo</FullName></ItemDiscountQueryRq>")[0][0]
    assert discount.findtext("FullName") == "Promo" and discount.find("SalesTaxCodeRef") is None
    # One name pool for all items: a discount item cannot take a service's name and vice versa.
    rs = valid(
        company,
        "<ItemDiscountAddRq><ItemDiscountAdd><Name>consulting</Name><DiscountRate>5.00</DiscountRate>"
        "</ItemDiscountAdd></ItemDiscountAddRq>",
        "<ItemSalesTaxAddRq><ItemSalesTaxAdd><Name>Widget</Name><TaxRate>1.0</TaxRate></ItemSalesTaxAdd>"
        "</ItemSalesTaxAddRq>",
        item_add("Promo"),
        "<ItemSalesTaxAddRq><ItemSalesTaxAdd><Name>City Tax</Name><ItemDesc>City</ItemDesc><TaxRate>0.5</TaxRate>"
        f"{ref('TaxVendorRef', 'Tax Board')}</ItemSalesTaxAdd></ItemSalesTaxAddRq>",
        "<VendorAddRq><VendorAdd><Name>Tax Board</Name></VendorAdd></VendorAddRq>",
        "<ItemSalesTaxAddRq><ItemSalesTaxAdd><Name>City Tax</Name><TaxRate>0.5</TaxRate>"
        f"{ref('TaxVendorRef', 'Tax Board')}</ItemSalesTaxAdd></ItemSalesTaxAddRq>",
        on_error="continueOnError",
    )
    assert [status(r)[0] for r in rs] == [3100, 3100, 3100, 3140, 0, 0]
    assert rs[5][0].findtext("TaxVendorRef/FullName") == "Tax Board"
    with pytest.raises(StatusError) as err:
        company.add_discount_item("Widget", amount="1")
    assert err.value.code == 3100
    assert company.count("Item") == 5


def test_sales_tax_codes_and_terms_lists(company: FakeCompany) -> None:
    codes = valid(company, "<SalesTaxCodeQueryRq/>")[0]
    assert [(c.findtext("Name"), c.findtext("IsTaxable")) for c in codes] == [("Non", "false"), ("Tax", "true")]
    terms = valid(company, "<TermsQueryRq/>")[0]
    assert [t.findtext("Name") for t in terms] == [
        "1% 10 Net 30",
        "2% 10 Net 30",
        "Consignment",
        "Due on receipt",
        "Net 15",
        "Net 30",
        "Net 60",
    ]
    assert all(t.tag == "StandardTermsRet" for t in terms)
    assert (terms[1].findtext("StdDueDays"), terms[1].findtext("StdDiscountDays")) == ("30", "10")
    rs = valid(
        company,
        "<SalesTaxCodeAddRq><SalesTaxCodeAdd><Name>Out</Name><IsTaxable>false</IsTaxable>"
        "<Desc>Out of state</Desc></SalesTaxCodeAdd></SalesTaxCodeAddRq>",
        "<SalesTaxCodeAddRq><SalesTaxCodeAdd><Name>tax</Name><IsTaxable>true</IsTaxable></SalesTaxCodeAdd>"
        "</SalesTaxCodeAddRq>",
        "<StandardTermsAddRq><StandardTermsAdd><Name>Net 45</Name><StdDueDays>45</StdDueDays>"
        "<StdDiscountDays>10</StdDiscountDays><DiscountPct>1.5</DiscountPct></StandardTermsAdd></StandardTermsAddRq>",
        "<StandardTermsAddRq><StandardTermsAdd><Name>net 30</Name></StandardTermsAdd></StandardTermsAddRq>",
        "<StandardTermsQueryRq><FullName>Net 45</FullName></StandardTermsQueryRq>",
        on_error="continueOnError",
    )
    assert [status(r)[0] for r in rs] == [0, 3100, 0, 3100, 0]
    assert rs[4][0].findtext("DiscountPct") == "1.5"
    company.add_terms("Net 10", 10)
    valid(company, customer_add("Acme", extra=tax_item()))
    lines = (line("Widget", qty="4", code="Out"),)
    ret = valid(company, invoice("Acme", *lines, header=ref("TermsRef", "Net 45")))[0][0]
    assert ret.findtext("DueDate") == "2026-02-19" and ret.findtext("SalesTaxTotal") == "0.00"
    ret = valid(
        company, invoice("Acme", *lines, header=ref("TermsRef", "Net 10"), after_due="<DueDate>2026-03-01</DueDate>")
    )
    assert ret[0][0].findtext("DueDate") == "2026-03-01"  # an explicit DueDate wins over the terms


def test_admin_hooks_accept_what_a_new_company_already_has(company: FakeCompany) -> None:
    net30 = company.add_terms("Net 30", 30)
    assert net30.name == "Net 30" and company.count("StandardTerms") == 7
    assert company.add_terms("2% 10 net 30", 30, discount_days=10, discount_pct="2").name == "2% 10 Net 30"
    assert company.add_sales_tax_code("Tax", taxable=True).name == "Tax" and company.count("SalesTaxCode") == 2
    with pytest.raises(StatusError) as err:
        company.add_terms("Net 30", 45)
    assert err.value.code == 3100
    with pytest.raises(StatusError) as err:
        company.add_sales_tax_code("Non", taxable=True)
    assert err.value.code == 3100
    with pytest.raises(StatusError) as err:
        company.set_customer_sales_tax("Nobody", terms="Net 30")
    assert err.value.code == 3120
    valid(company, customer_add("Acme"))
    with pytest.raises(StatusError) as err:
        company.set_customer_sales_tax("Acme", tax_item="Moon Tax")
    assert err.value.code == 3140
    with pytest.raises(StatusError):
        company.set_most_common_sales_tax_item("Promo")  # a discount item, not a sales tax item


def test_sales_tax_state_survives_json(company: FakeCompany) -> None:
    company.set_most_common_sales_tax_item("State Tax")
    valid(company, customer_add("Acme", extra=ref("TermsRef", "Net 30")))
    valid(company, invoice("Acme", *TAXED_LINES))
    clone = FakeCompany.from_json(company.to_json())
    again = clone.find_invoice("T-1")
    assert again is not None and again.sales_tax_total == Decimal("17.03")
    assert again.balance_remaining == Decimal("284.03") and again.due_date.isoformat() == "2026-02-04"
    assert [ln.sales_tax_code_id for ln in again.lines] == [ln.sales_tax_code_id for ln in company.invoices()[0].lines]
    ret = valid(clone, invoice("Acme", *TAXED_LINES))[0][0]
    assert ret.findtext("SalesTaxTotal") == "17.03" and ret.findtext("DueDate") == "2026-02-04"


def test_what_qbsync_builds_is_taxed_like_quickbooks_would(company: FakeCompany) -> None:
    """qbsync's own builders and parser against the fake: the invoice of a taxable customer with a discount."""

    def send(*requests: etree._Element) -> list[QbxmlResult]:
        document = build_message_set(list(requests))
        assert validation_errors(document, "130") == []
        out = company.process(document)
        assert validation_errors(out, "130") == []
        return parse_response(out)

    customer = Customer(name="Acme", terms="Net 15", sales_tax_code="Tax", item_sales_tax="State Tax")
    item = Item(name="Gadget", kind="non_inventory", income_account="Sales", price=Decimal("20.00"), tax_code="Tax")
    results = send(build_customer_add("c1", customer), build_item_add("i1", item))
    assert [r.status_code for r in results] == [0, 0]
    invoice = Invoice(
        customer="Acme",
        txn_date=date(2026, 1, 5),
        ref_number="Q-1",
        terms="Net 15",
        item_sales_tax="State Tax",
        lines=(
            InvoiceLine(item="Gadget", quantity=Decimal(5), rate=Decimal("20.00"), sales_tax_code="Tax"),
            InvoiceLine(item="Promo", rate_percent=Decimal("5")),  # 5 % of the line above it: -5.00
            InvoiceLine(item="Consulting", quantity=Decimal(1), rate=Decimal("100.00"), sales_tax_code="Non"),
            InvoiceLine(item="Promo", description="Discount 10%", amount=Decimal("-20.00")),
        ),
    )
    (result,) = send(build_invoice_add("inv1", invoice))
    ret = result.rets[0]
    # Taxable: 100 - 5 - 20 = 75.00 x 7.5 % = 5.625 -> 5.63. Subtotal 100 - 5 + 100 - 20 = 175.00.
    assert (ret.subtotal, ret.sales_tax_total, ret.balance_remaining) == (
        Decimal("175.00"),
        Decimal("5.63"),
        Decimal("180.63"),
    )
    assert ret.raw["DueDate"] == "2026-01-20" and ret.raw["TermsRef"]["FullName"] == "Net 15"
    assert [ln["Amount"] for ln in ret.raw["InvoiceLineRet"]] == ["100.00", "-5.00", "100.00", "-20.00"]
    pay = ReceivePayment(
        customer="Acme",
        total_amount=Decimal("180.63"),
        applied_to=(AppliedTo(txn_id=ret.txn_id or "", payment_amount=Decimal("180.63")),),
    )
    (paid,) = send(build_receive_payment_add("p1", pay))
    assert paid.status_code == 0
    assert paid.rets[0].raw["AppliedToTxnRet"]["BalanceRemaining"] == "0.00"
    stored = company.find_invoice("Q-1")
    assert stored is not None and stored.is_paid
