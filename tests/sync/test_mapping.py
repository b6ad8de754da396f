"""Mapping layer: source records → QBO JSON bodies and QBD qbXML records, with the tenant's settings applied.

QBO shapes are compared with the reference examples (and, for keys the examples happen not to show, Intuit's v3
XSD); QBD records are built into message sets and validated against the qbXML 13.0 XSD. Reference material is
read from ../shared/reference, never copied.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from lxml import etree  # type: ignore[import-untyped]

from qbsync.models import TenantSettings
from qbsync.qbxml import (
    build_customer_add,
    build_customer_mod,
    build_invoice_add,
    build_item_add,
    build_message_set,
    build_receive_payment_add,
)
from qbsync.qbxml.xsd import find_xsd, validation_errors
from qbsync.sync.mapping import (
    MappingConfigurationError,
    MappingError,
    QbRef,
    Refs,
    check_qbo_invoice_total,
    qbd_customer,
    qbd_invoice,
    qbd_item,
    qbd_item_name,
    qbd_payment,
    qbo_customer,
    qbo_invoice,
    qbo_item,
    qbo_item_name,
    qbo_json,
    qbo_payment,
)
from qbsync.sync.records import SourceCustomer, SourceInvoice, SourceItem, SourcePayment

REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference"
QBO_EXAMPLES = REFERENCE / "qbo" / "examples"
QBO_XSD = REFERENCE / "qbo" / "schema" / "java-sdk-xsd"
XS = "{http://www.w3.org/2001/XMLSchema}"

# ------------------------------------------------------------------------------------------------ builders


def settings(**kw: Any) -> TenantSettings:
    return TenantSettings.model_validate(kw)


def tax_settings(**kw: Any) -> TenantSettings:
    sales_tax = {"enabled": True, **kw.pop("sales_tax", {})}
    return settings(sales_tax=sales_tax, **kw)


def customer(**kw: Any) -> SourceCustomer:
    data: dict[str, Any] = {"id": "c1", "name": "Acme Corp", "email": "billing@acme.test"}
    return SourceCustomer.model_validate({**data, **kw})


FULL_CUSTOMER = {
    "company_name": "Acme Corporation",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "phone": "+1 555 0100",
    "billing_address": {
        "line1": "1 Main St",
        "line2": "Suite 2",
        "city": "Springfield",
        "state": "CA",
        "postal_code": "94000",
        "country": "US",
    },
    "shipping_address": {"line1": "9 Dock Rd", "city": "Oakland", "state": "CA", "postal_code": "94601"},
    "terms": "Net 30",
    "notes": "Key account",
}


def item(**kw: Any) -> SourceItem:
    data: dict[str, Any] = {"id": "i1", "name": "Consulting", "sku": "CONS-1", "price": "100.00"}
    return SourceItem.model_validate({**data, **kw})


SERVICE = item(id="svc", name="Consulting", sku="CONS-1", taxable=True, income_account="Services")
EXEMPT = item(id="ex", name="Exempt fee", sku="EXF-1", taxable=False, income_account="Services")
PRODUCT = item(id="prd", name="Widget", sku="WID-1", type="product", taxable=True, income_account="Sales")
ITEMS = {i.id: i for i in (SERVICE, EXEMPT, PRODUCT)}
REFS = Refs(
    customer=QbRef("58", "Acme Corp"),
    items={"svc": QbRef("5", "Consulting"), "ex": QbRef("6", "Exempt fee"), "prd": QbRef("7", "Widget")},
    invoices={"inv1": QbRef("130", "1001"), "inv2": QbRef("131", "1002")},
)
QBD_REFS = Refs(
    customer=QbRef("80000001-1700000000", "Acme Corp"),
    items={"svc": QbRef(name="Consulting"), "ex": QbRef(name="Exempt fee"), "prd": QbRef("80000007-1700000000")},
    invoices={"inv1": QbRef("1A2-1700000000", "1001"), "inv2": QbRef("1A3-1700000000", "1002")},
)
IDS = {
    "terms": {"Net 30": "3", "Net 15": "2", "Due on receipt": "1"},
    "classes": {"Consulting": "100", "Hardware": "200", "Retail:East": "300"},
    "tax_codes": {"CA Sales": "2", "NY Sales": "4", "Exempt": "9", "NON": "10", "GST": "11", "Zero": "12"},
    "accounts": {"Services": "1", "Sales": "79", "Cost of Goods Sold": "80", "Other Income": "81"},
}


def invoice(**kw: Any) -> SourceInvoice:
    data: dict[str, Any] = {
        "id": "inv1",
        "customer_id": "c1",
        "doc_number": "1001",
        "date": "2024-05-01",
        "lines": [
            {"item_id": "svc", "quantity": "2", "rate": "100.00", "description": "Consulting hours"},
            {"item_id": "ex", "rate": "15.00"},
            {"item_id": "prd", "quantity": "3", "rate": "9.99", "service_date": "2024-04-30"},
        ],
    }
    return SourceInvoice.model_validate({**data, **kw})


def payment(**kw: Any) -> SourcePayment:
    data: dict[str, Any] = {
        "id": "p1",
        "customer_id": "c1",
        "date": "2024-05-10",
        "amount": "150.00",
        "reference": "CHK-1001",
        "memo": "Thanks",
        "applied_to": [{"invoice_id": "inv1", "amount": "100.00"}, {"invoice_id": "inv2", "amount": "50.00"}],
    }
    return SourcePayment.model_validate({**data, **kw})


def build_invoice(
    inv: SourceInvoice | None = None,
    s: TenantSettings | None = None,
    cust: SourceCustomer | None = None,
    **kw: Any,
) -> dict[str, Any]:
    return qbo_invoice(
        inv or invoice(),
        s or settings(),
        kw.pop("refs", REFS),
        customer=cust or customer(),
        items=ITEMS,
        class_ids=IDS["classes"],
        term_ids=IDS["terms"],
        tax_code_ids=IDS["tax_codes"],
        **kw,
    )


def sales_lines(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [line for line in body["Line"] if line["DetailType"] == "SalesItemLineDetail"]


def line_codes(body: dict[str, Any]) -> list[str | None]:
    return [line["SalesItemLineDetail"].get("TaxCodeRef", {}).get("value") for line in sales_lines(body)]


def walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from walk(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from walk(v)


# ------------------------------------------------------------------------------------------------ reference shapes


@cache
def _examples(entity: str) -> tuple[dict[str, Any], ...]:
    """Entity objects of the reference examples: request bodies and the ``{"Entity": {...}}`` responses."""
    path = QBO_EXAMPLES / f"{entity.lower()}.examples.json"
    if not path.is_file():
        pytest.skip(f"reference file {path} not available")
    out = []
    for example in json.loads(path.read_text(encoding="utf-8"))["examples"]:
        body = example.get("json")
        if not isinstance(body, dict):
            continue
        if isinstance(body.get(entity), dict):
            out.append(body[entity])
        elif "QueryResponse" not in body and "BatchItemResponse" not in body:
            out.append(body)
    return tuple(out)


def example_keys(entity: str) -> set[str]:
    return {key for body in _examples(entity) for key in body}


def example_line_values(entity: str, key: str) -> set[str]:
    return {line[key] for body in _examples(entity) for line in body.get("Line", []) if key in line}


@cache
def _xsd_types() -> dict[str, etree._Element]:
    types: dict[str, etree._Element] = {}
    for name in ("IntuitBaseTypes.xsd", "IntuitNamesTypes.xsd", "Finance.xsd"):
        path = QBO_XSD / name
        if not path.is_file():
            pytest.skip(f"reference file {path} not available")
        root = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True)).getroot()
        for node in root.iter(f"{XS}complexType"):
            if node.get("name"):
                types[node.get("name")] = node
    return types


def xsd_elements(type_name: str) -> set[str]:
    """Element names a QBO v3 XSD complex type declares, including those of its base types."""
    node = _xsd_types()[type_name]
    names = {el.get("name") for el in node.iter(f"{XS}element") if el.get("name")}
    for ext in node.iter(f"{XS}extension"):
        base = ext.get("base", "").split(":")[-1]
        if base in _xsd_types():
            names |= xsd_elements(base)
    return names


def assert_known_keys(body: dict[str, Any], entity: str) -> None:
    """Every key we emit is shown by the reference examples or, failing that, declared by Intuit's XSD."""
    unknown = set(body) - example_keys(entity) - xsd_elements(entity)
    assert not unknown, f"{entity} keys unknown to the reference: {sorted(unknown)}"


def assert_no_floats(body: Any) -> None:
    assert not [v for v in walk(body) if isinstance(v, float)]


# ------------------------------------------------------------------------------------------------ QBO: customer


def test_qbo_customer_shape_matches_reference() -> None:
    body = qbo_customer(
        customer(**FULL_CUSTOMER), tax_settings(), creating=True, terms_ids=IDS["terms"], tax_code_ids=IDS["tax_codes"]
    )
    assert_known_keys(body, "Customer")
    # The core keys are exactly those of the reference request examples.
    assert {
        "DisplayName",
        "CompanyName",
        "GivenName",
        "FamilyName",
        "PrimaryEmailAddr",
        "PrimaryPhone",
        "BillAddr",
    } <= (example_keys("Customer") & set(body))
    example_bill = next(b["BillAddr"] for b in _examples("Customer") if "BillAddr" in b)
    assert set(example_bill) <= set(body["BillAddr"])  # Line1, City, CountrySubDivisionCode, PostalCode
    assert body["PrimaryEmailAddr"] == {"Address": "billing@acme.test"}
    assert body["PrimaryPhone"] == {"FreeFormNumber": "+1 555 0100"}
    assert body["BillAddr"]["CountrySubDivisionCode"] == "CA"
    assert body["ShipAddr"]["Line1"] == "9 Dock Rd"
    assert body["SalesTermRef"] == {"value": "3", "name": "Net 30"}
    assert body["Taxable"] is True


def test_qbo_customer_address_only_on_create_unless_always() -> None:
    c = customer(**FULL_CUSTOMER)
    on_update = qbo_customer(c, settings(), creating=False, terms_ids=IDS["terms"])
    assert "BillAddr" not in on_update and "ShipAddr" not in on_update
    assert on_update["DisplayName"] == "Acme Corp"  # the rest is still updated
    always = qbo_customer(c, settings(customer_address="always"), creating=False, terms_ids=IDS["terms"])
    assert always["BillAddr"]["Line1"] == "1 Main St"
    assert always["ShipAddr"]["City"] == "Oakland"


def test_qbo_customer_terms_need_an_id() -> None:
    with pytest.raises(MappingConfigurationError) as err:
        qbo_customer(customer(terms="Net 90"), settings(), creating=True, terms_ids=IDS["terms"])
    assert err.value.field == "terms" and err.value.configuration
    assert err.value.code == "mapping_configuration_error"
    # Names are compared the way QuickBooks does: case-insensitively.
    body = qbo_customer(customer(terms="net 30"), settings(), creating=True, terms_ids=IDS["terms"])
    assert body["SalesTermRef"]["value"] == "3"


def test_qbo_customer_tax_exempt_and_override() -> None:
    exempt = qbo_customer(
        customer(tax_exempt=True, tax_code="CA Sales"),
        tax_settings(),
        creating=True,
        tax_code_ids=IDS["tax_codes"],
        exemption_reason_id="9",
    )
    assert exempt["Taxable"] is False
    assert exempt["TaxExemptionReasonId"] == "9"
    assert "DefaultTaxCodeRef" not in exempt
    assert_known_keys(exempt, "Customer")

    own_code = qbo_customer(customer(tax_code="NY Sales"), tax_settings(), creating=True, tax_code_ids=IDS["tax_codes"])
    assert own_code["DefaultTaxCodeRef"] == {"value": "4", "name": "NY Sales"}
    assert own_code["Taxable"] is True

    no_override = qbo_customer(
        customer(tax_code="NY Sales"), tax_settings(sales_tax={"customer_override": False}), creating=True
    )
    assert "DefaultTaxCodeRef" not in no_override

    tax_off = qbo_customer(customer(tax_exempt=True, tax_code="NY Sales"), settings(), creating=True)
    assert not {"Taxable", "DefaultTaxCodeRef", "TaxExemptionReasonId"} & set(tax_off)


@pytest.mark.parametrize(
    ("kw", "field", "limit"),
    [
        ({"name": "Acme: West"}, "name", None),
        ({"email": "a" * 95 + "@acme.test"}, "email", 100),
        ({"phone": "1" * 30}, None, None),  # 30 is allowed
    ],
)
def test_qbo_customer_limits(kw: dict[str, Any], field: str | None, limit: int | None) -> None:
    c = customer(**kw)
    if field is None:
        assert qbo_customer(c, settings(), creating=True)
        return
    with pytest.raises(MappingError) as err:
        qbo_customer(c, settings(), creating=True)
    assert err.value.field == field and err.value.limit == limit
    assert err.value.code == "mapping_error" and err.value.status == 422
    assert err.value.errors[0].field == field


# ------------------------------------------------------------------------------------------------ QBO: item


def test_qbo_item_shape_and_accounts() -> None:
    body = qbo_item(
        item(description="Hourly consulting", expense_account="Cost of Goods Sold"),
        tax_settings(income_account="Services"),
        account_ids=IDS["accounts"],
    )
    assert_known_keys(body, "Item")
    assert {"Name", "Type", "IncomeAccountRef"} <= example_keys("Item") & set(body)
    assert body["Type"] == "Service"
    assert body["IncomeAccountRef"] == {"value": "1", "name": "Services"}
    assert body["ExpenseAccountRef"] == {"value": "80", "name": "Cost of Goods Sold"}
    assert body["Sku"] == "CONS-1"
    assert body["UnitPrice"] == Decimal("100.00") and isinstance(body["UnitPrice"], Decimal)
    assert body["Taxable"] is True
    assert_no_floats(body)


def test_qbo_item_product_is_non_inventory_and_uses_item_account() -> None:
    body = qbo_item(PRODUCT, tax_settings(income_account="Services"), account_ids=IDS["accounts"])
    assert body["Type"] == "NonInventory"
    assert body["IncomeAccountRef"]["value"] == "79"  # the item's own account wins over the default
    assert "TrackQtyOnHand" not in body
    assert qbo_item(EXEMPT, tax_settings(), account_ids=IDS["accounts"])["Taxable"] is False


def test_qbo_item_without_income_account_is_a_configuration_issue() -> None:
    with pytest.raises(MappingConfigurationError) as err:
        qbo_item(item(), settings(), account_ids=IDS["accounts"])
    assert err.value.field == "income_account" and err.value.configuration
    with pytest.raises(MappingConfigurationError) as err:
        qbo_item(item(income_account="Nope"), settings(), account_ids=IDS["accounts"])
    assert "Nope" in err.value.message


def test_qbo_item_name_template_and_100_char_rule() -> None:
    s = settings(item_name_template="{sku} - {name}")
    assert qbo_item_name(item(), s) == "CONS-1 - Consulting"
    long = item(name="Consulting " * 9, sku="SKU-777", description="Senior consultant, on site, per hour")
    name = qbo_item_name(long, settings(item_name_template="{name} - {description} ({sku})"))
    assert len(name) <= 100 and name.endswith("(SKU-777)")
    # The description is cut first (with its " - "), then the name; the SKU is kept whole.
    assert name == ("Consulting " * 8 + "Co (SKU-777)") and len(name) == 100
    assert qbo_item_name(item(name="A: B"), settings()) == "A- B"  # ':' is QBO's sub-item separator
    with pytest.raises(MappingError) as err:
        qbo_item_name(item(sku=None), s)
    assert err.value.field == "sku"


# ------------------------------------------------------------------------------------------------ QBO: invoice


def test_qbo_invoice_shape_matches_reference() -> None:
    inv = invoice(
        due_date="2024-05-31",
        terms="Net 30",
        class_name="Consulting",
        memo="Thank you",
        discount={"percent": "10"},
        tax_code="CA Sales",
        tax_amount="1.50",
    )
    body = build_invoice(inv, tax_settings(use_classes=True))
    assert_known_keys(body, "Invoice")
    assert {"CustomerRef", "Line", "TxnDate", "DueDate", "DocNumber", "SalesTermRef", "TxnTaxDetail"} <= (
        example_keys("Invoice") & set(body)
    )
    assert set(body["TxnTaxDetail"]) <= {k for b in _examples("Invoice") for k in b.get("TxnTaxDetail", {})}
    known_types = example_line_values("Invoice", "DetailType")
    assert "SalesItemLineDetail" in known_types
    assert {line["DetailType"] for line in body["Line"]} == {"SalesItemLineDetail", "DiscountLineDetail"}
    example_lines = [line for b in _examples("Invoice") for line in b.get("Line", [])]
    line_keys = {k for line in example_lines for k in line}
    detail_keys = {k for line in example_lines for k in line.get("SalesItemLineDetail", {})}
    for line in sales_lines(body):
        assert set(line) <= line_keys
        assert set(line["SalesItemLineDetail"]) <= detail_keys | xsd_elements("SalesItemLineDetail")
        assert set(line["SalesItemLineDetail"]["ItemRef"]) == {"value", "name"}
    discount = next(line for line in body["Line"] if line["DetailType"] == "DiscountLineDetail")
    assert set(discount["DiscountLineDetail"]) <= xsd_elements("DiscountLineDetail")
    assert set(discount) <= xsd_elements("Line")
    assert body["CustomerRef"] == {"value": "58", "name": "Acme Corp"}
    assert body["TxnDate"] == "2024-05-01" and body["DueDate"] == "2024-05-31"
    assert body["PrivateNote"] == "Thank you"
    assert_no_floats(body)
    check_qbo_invoice_total(body, inv)


def test_qbo_invoice_lines_amounts_are_decimals() -> None:
    lines = sales_lines(build_invoice())
    assert [line["Amount"] for line in lines] == [Decimal("200.00"), Decimal("15.00"), Decimal("29.97")]
    assert all(isinstance(line["Amount"], Decimal) for line in lines)
    assert lines[0]["SalesItemLineDetail"]["Qty"] == Decimal(2)
    assert lines[0]["SalesItemLineDetail"]["ItemRef"] == {"value": "5", "name": "Consulting"}
    assert lines[0]["Description"] == "Consulting hours"
    assert lines[2]["SalesItemLineDetail"]["ServiceDate"] == "2024-04-30"
    assert "Description" not in lines[1]  # QuickBooks fills in the item's description


def test_qbo_tax_line_codes_us() -> None:
    # taxable item + non-exempt customer → TAX; exempt item → NON even for a taxable customer.
    assert line_codes(build_invoice(s=tax_settings())) == ["TAX", "NON", "TAX"]
    # exempt customer → NON on every line, including taxable items.
    exempt = build_invoice(s=tax_settings(), cust=customer(tax_exempt=True))
    assert line_codes(exempt) == ["NON", "NON", "NON"]
    # sales tax disabled → no tax fields at all (QuickBooks' own settings apply).
    off = build_invoice(s=settings())
    assert line_codes(off) == [None, None, None]
    assert "TxnTaxDetail" not in off and "GlobalTaxCalculation" not in off


def test_qbo_transaction_tax_code_override_chain() -> None:
    s = tax_settings(sales_tax={"default_tax_code": "CA Sales"})
    own = customer(tax_code="NY Sales")

    def code(body: dict[str, Any]) -> Any:
        return body.get("TxnTaxDetail", {}).get("TxnTaxCodeRef", {}).get("value")

    assert code(build_invoice(invoice(tax_code="Exempt"), s, own)) == "9"  # invoice wins
    assert code(build_invoice(invoice(), s, own)) == "4"  # then the customer's (override on)
    no_override = tax_settings(sales_tax={"default_tax_code": "CA Sales", "customer_override": False})
    assert code(build_invoice(invoice(), no_override, own)) == "2"  # default
    assert code(build_invoice(invoice(), s, customer())) == "2"
    assert code(build_invoice(invoice(), tax_settings(), customer())) is None  # AST picks it
    with pytest.raises(MappingConfigurationError) as err:
        build_invoice(invoice(tax_code="Mars Tax"), s)
    assert err.value.field == "tax_code"


def test_qbo_total_tax_is_the_source_amount() -> None:
    inv = invoice(tax_amount="18.50", total="263.47")
    body = build_invoice(inv, tax_settings(sales_tax={"default_tax_code": "CA Sales"}))
    assert body["TxnTaxDetail"]["TotalTax"] == Decimal("18.50")
    check_qbo_invoice_total(body, inv)


def test_qbo_tax_amount_that_cannot_exist_is_refused() -> None:
    inv = invoice(tax_amount="5.00")
    with pytest.raises(MappingError) as err:
        build_invoice(inv, tax_settings(), customer(tax_exempt=True))
    assert err.value.field == "tax_amount" and not err.value.configuration
    with pytest.raises(MappingConfigurationError):
        build_invoice(inv, settings())
    only_exempt = invoice(lines=[{"item_id": "ex", "rate": "10.00"}], tax_amount="1.00")
    with pytest.raises(MappingError, match="none of its items is taxable"):
        build_invoice(only_exempt, tax_settings())


def test_qbo_tax_non_us_per_line_codes() -> None:
    s = tax_settings(sales_tax={"default_tax_code": "GST", "exempt_tax_code": "Zero"})
    body = build_invoice(s=s, us_tax=False)
    assert line_codes(body) == ["11", "12", "11"]
    assert body["GlobalTaxCalculation"] == "TaxExcluded"
    assert "TxnTaxDetail" not in body
    assert line_codes(build_invoice(invoice(tax_code="CA Sales"), s, us_tax=False)) == ["2", "12", "2"]
    assert line_codes(build_invoice(s=s, cust=customer(tax_exempt=True), us_tax=False)) == ["12", "12", "12"]
    with pytest.raises(MappingConfigurationError) as err:
        build_invoice(s=tax_settings(), us_tax=False)  # no code anywhere
    assert err.value.field == "settings.sales_tax.default_tax_code"
    with pytest.raises(MappingConfigurationError) as err:
        build_invoice(s=tax_settings(sales_tax={"default_tax_code": "GST", "exempt_tax_code": "Nil"}), us_tax=False)
    assert err.value.field == "settings.sales_tax.exempt_tax_code"


def test_qbo_classes() -> None:
    inv = invoice(
        class_name="Consulting",
        lines=[
            {"item_id": "svc", "rate": "10.00", "class_name": "Hardware"},
            {"item_id": "prd", "rate": "5.00"},
        ],
    )

    def line_classes(body: dict[str, Any]) -> list[str | None]:
        return [line["SalesItemLineDetail"].get("ClassRef", {}).get("value") for line in sales_lines(body)]

    off = build_invoice(inv, settings(allow_class_override=True))
    assert "ClassRef" not in off and line_classes(off) == [None, None]
    header_only = build_invoice(inv, settings(use_classes=True))
    assert header_only["ClassRef"] == {"value": "100", "name": "Consulting"}
    assert line_classes(header_only) == [None, None]
    override = build_invoice(inv, settings(use_classes=True, allow_class_override=True))
    assert override["ClassRef"]["value"] == "100"
    assert line_classes(override) == ["200", None]
    with pytest.raises(MappingConfigurationError) as err:
        build_invoice(invoice(class_name="Nope"), settings(use_classes=True))
    assert err.value.field == "class_name"


def test_qbo_terms_chain() -> None:
    s = settings(default_terms="Due on receipt")
    assert build_invoice(invoice(terms="Net 15"), s, customer(terms="Net 30"))["SalesTermRef"]["value"] == "2"
    assert build_invoice(invoice(), s, customer(terms="Net 30"))["SalesTermRef"]["value"] == "3"
    assert build_invoice(invoice(), s, customer())["SalesTermRef"]["value"] == "1"
    assert "SalesTermRef" not in build_invoice(invoice(), settings(), customer())
    with pytest.raises(MappingConfigurationError) as err:
        build_invoice(invoice(), settings(default_terms="Net 90"), customer())
    assert err.value.field == "settings.default_terms"


def test_qbo_discounts_percent_and_amount() -> None:
    pct = invoice(discount={"percent": "10", "description": "Loyalty"})
    body = build_invoice(pct)
    line = body["Line"][-1]
    assert line["DetailType"] == "DiscountLineDetail"
    assert line["DiscountLineDetail"] == {"PercentBased": True, "DiscountPercent": Decimal("10")}
    assert line["Amount"] == Decimal("24.50")  # 10% of 244.97, to the cent
    assert line["Description"] == "Loyalty"
    check_qbo_invoice_total(body, pct)

    amt = invoice(discount={"amount": "20.00"})
    refs = Refs(customer=REFS.customer, items=REFS.items, discount_account=QbRef("86", "Discounts given"))
    body = build_invoice(amt, refs=refs)
    line = body["Line"][-1]
    assert line["DiscountLineDetail"] == {
        "PercentBased": False,
        "DiscountAccountRef": {"value": "86", "name": "Discounts given"},
    }
    assert line["Amount"] == Decimal("20.00")
    check_qbo_invoice_total(body, amt)


def test_qbo_invoice_total_check_catches_a_mismatch() -> None:
    inv = invoice(discount={"amount": "20.00"})
    body = build_invoice(inv)
    body["Line"][-1]["Amount"] = Decimal("2.00")
    with pytest.raises(MappingError) as err:
        check_qbo_invoice_total(body, inv)
    assert err.value.field == "total"

    body = build_invoice(inv)
    body["Line"][0]["Amount"] = Decimal("201.00")
    with pytest.raises(MappingError, match="Qty x UnitPrice"):
        check_qbo_invoice_total(body, inv)

    body = build_invoice(inv)
    body["Line"][0]["Amount"] = 200.0
    with pytest.raises(MappingError, match="Decimal"):
        check_qbo_invoice_total(body, inv)


def test_qbo_invoice_unknown_item_or_customer_id() -> None:
    refs = Refs(customer=REFS.customer, items={"svc": QbRef("5")})
    with pytest.raises(MappingError) as err:
        build_invoice(refs=refs)
    assert err.value.field == "lines[1].item_id" and "'ex'" in err.value.message
    with pytest.raises(MappingError) as err:
        build_invoice(refs=Refs(customer=QbRef("", "Acme Corp"), items=REFS.items))
    assert err.value.field == "customer_id"


# ------------------------------------------------------------------------------------------------ QBO: payment


def test_qbo_payment_shape_matches_reference() -> None:
    body = qbo_payment(payment(method="Check"), REFS, payment_method_ids={"Check": "2"})
    assert_known_keys(body, "Payment")
    assert {"CustomerRef", "TotalAmt", "TxnDate", "Line", "PrivateNote", "PaymentMethodRef"} <= (
        example_keys("Payment") & set(body)
    )
    example_lines = [line for b in _examples("Payment") for line in b.get("Line", [])]
    assert {k for line in body["Line"] for k in line} <= {k for line in example_lines for k in line}
    assert {k for line in body["Line"] for k in line["LinkedTxn"][0]} == {
        k for line in example_lines for txn in line.get("LinkedTxn", []) for k in txn
    }
    assert body["Line"] == [
        {"Amount": Decimal("100.00"), "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]},
        {"Amount": Decimal("50.00"), "LinkedTxn": [{"TxnId": "131", "TxnType": "Invoice"}]},
    ]
    assert body["TotalAmt"] == Decimal("150.00")
    assert body["PaymentRefNum"] == "CHK-1001"
    assert body["PaymentMethodRef"] == {"value": "2", "name": "Check"}
    assert_no_floats(body)
    assert "PaymentMethodRef" not in qbo_payment(payment(method="Check"), REFS)


def test_qbo_payment_unknown_invoice_is_refused() -> None:
    refs = Refs(customer=REFS.customer, invoices={"inv1": QbRef("130")})
    with pytest.raises(MappingError) as err:
        qbo_payment(payment(), refs)
    assert err.value.field == "applied_to[1].invoice_id" and "'inv2'" in err.value.message
    with pytest.raises(MappingConfigurationError):
        qbo_payment(payment(method="Bitcoin"), REFS, payment_method_ids={"Check": "2"})


# ------------------------------------------------------------------------------------------------ QBD


@pytest.fixture(scope="module")
def xsd() -> None:
    if find_xsd("130") is None:
        pytest.skip("qbXML 13.0 XSD not available (set QBXML_XSD_DIR)")


def assert_valid(*requests: etree._Element) -> str:
    document = build_message_set(list(requests))
    assert validation_errors(document, "130") == []
    document.encode("iso-8859-1")
    return document


def test_qbd_customer_validates(xsd: None) -> None:
    s = tax_settings()
    created = qbd_customer(customer(**FULL_CUSTOMER), s, creating=True)
    updated = qbd_customer(customer(**FULL_CUSTOMER, tax_exempt=True), s, creating=False)
    document = assert_valid(
        build_customer_add("c-add", created), build_customer_mod("c-mod", "80000001-1700000000", "1", updated)
    )
    assert "<BillAddress>" in document and "<TermsRef><FullName>Net 30</FullName></TermsRef>" in document
    assert created.bill_address is not None and created.bill_address.addr1 == "1 Main St"
    assert updated.bill_address is None and updated.ship_address is None  # S5
    assert updated.sales_tax_code == "Non"
    always = qbd_customer(customer(**FULL_CUSTOMER), settings(customer_address="always"), creating=False)
    assert always.ship_address is not None


def test_qbd_customer_tax_codes() -> None:
    assert qbd_customer(customer(tax_code="OOS"), tax_settings(), creating=True).sales_tax_code == "OOS"
    no_override = tax_settings(sales_tax={"customer_override": False})
    assert qbd_customer(customer(tax_code="OOS"), no_override, creating=True).sales_tax_code is None
    assert qbd_customer(customer(tax_exempt=True), settings(), creating=True).sales_tax_code is None
    with pytest.raises(MappingError) as err:
        qbd_customer(customer(tax_code="LONG"), tax_settings(), creating=True)
    assert err.value.field == "tax_code" and err.value.limit == 3


def test_qbd_customer_names_are_latin1_safe_and_limited(xsd: None) -> None:
    c = customer(name="Zoë Łódź — Café “Noël”", company_name="Ørsted ApS ☕")
    record = qbd_customer(c, settings(), creating=True)
    assert record.name == 'Zoë Lódz - Café "Noël"'  # ó, ë, é are Latin-1; Ł → L, ź → z
    assert record.company_name == "Ørsted ApS ?"  # free text keeps the rule: what has no Latin-1 form is '?'
    for name in ("Zoë ☕", "東京 Trading", "Ωμέγα"):  # a name is an identity: never rewritten to '?'
        with pytest.raises(MappingError) as lost:
            qbd_customer(customer(name=name), settings(), creating=True)
        assert lost.value.field == "name" and "ISO-8859-1" in lost.value.message
    assert record.name is not None
    record.name.encode("iso-8859-1")
    assert_valid(build_customer_add("c1", record))
    with pytest.raises(MappingError) as err:
        qbd_customer(customer(name="A" * 42), settings(), creating=True)
    assert err.value.field == "name" and err.value.limit == 41
    assert "41" in err.value.message
    with pytest.raises(MappingError):
        qbd_customer(customer(name="Parent:Child"), settings(), creating=True)


def test_qbd_items_validate(xsd: None) -> None:
    s = tax_settings(income_account="Services")
    service = qbd_item(item(description="Hourly consulting"), s)
    non_inventory = qbd_item(PRODUCT, s)
    purchase = qbd_item(item(id="x", sku="X-1", expense_account="Cost of Goods Sold", taxable=False), s)
    document = assert_valid(
        build_item_add("i1", service), build_item_add("i2", non_inventory), build_item_add("i3", purchase)
    )
    assert "<ItemServiceAdd>" in document and "<ItemNonInventoryAdd>" in document
    assert "<SalesAndPurchase>" in document
    assert service.kind == "service" and non_inventory.kind == "non_inventory"
    assert service.income_account == "Services" or getattr(service.income_account, "full_name", None) == "Services"
    assert (service.tax_code, purchase.tax_code) == ("Tax", "Non")
    with pytest.raises(MappingConfigurationError):
        qbd_item(item(), settings())


def test_qbd_item_name_31_char_rule(xsd: None) -> None:
    s = settings(item_name_template="{name} {sku}")
    long = item(name="Premium consulting services for enterprise", sku="PCS-2024")
    name = qbd_item_name(long, s)
    assert len(name) <= 31
    assert name.endswith(" PCS-2024")  # the SKU is never cut
    assert name.startswith("Premium consulting")
    assert_valid(build_item_add("i1", qbd_item(long, settings(item_name_template="{name} {sku}", income_account="X"))))

    described = item(name="Widget", sku="W-1", description="A " + "very " * 20 + "long description")
    name = qbd_item_name(described, settings(item_name_template="{name} {description} [{sku}]"))
    assert name == "Widget A very very very v [W-1]"  # the description is cut first, the name kept
    emptied = item(name="Consulting " * 3, sku="SKU-777", description="Senior consultant")
    template = settings(item_name_template="{name} - {description} ({sku})")
    assert qbd_item_name(emptied, template) == "Consulting Consulting (SKU-777)"  # " - " left with the description

    # Non-Latin-1 text is made safe before counting; ':' would create a sub-item.
    assert qbd_item_name(item(name="Łódź: naprawa"), settings()) == "Lódz- naprawa"

    with pytest.raises(MappingError) as err:
        qbd_item_name(item(sku="S" * 40), settings(item_name_template="{sku}"))
    assert err.value.field == "item_name_template" and err.value.limit == 31


def qbd_build_invoice(
    inv: SourceInvoice | None = None,
    s: TenantSettings | None = None,
    cust: SourceCustomer | None = None,
    **kw: Any,
) -> Any:
    return qbd_invoice(
        inv or invoice(),
        s or settings(),
        kw.pop("refs", QBD_REFS),
        customer=cust or customer(),
        items=ITEMS,
        **kw,
    )


def test_qbd_invoice_validates(xsd: None) -> None:
    inv = invoice(
        due_date="2024-05-31",
        terms="Net 30",
        class_name="Consulting",
        memo="Thank you",
        discount={"percent": "10"},
        lines=[
            {"item_id": "svc", "quantity": "2", "rate": "100.00", "class_name": "Retail:East"},
            {"item_id": "ex", "rate": "15.00", "description": "Fee"},
            {"item_id": "prd", "quantity": "3", "rate": "9.99", "service_date": "2024-04-30"},
        ],
    )
    s = tax_settings(
        use_classes=True,
        allow_class_override=True,
        ar_account="Accounts Receivable",
        sales_tax={"default_tax_item": "CA"},
    )
    record = qbd_build_invoice(inv, s, discount_item="qbsync Discount")
    document = assert_valid(build_invoice_add("inv-1", record))
    assert [line.sales_tax_code for line in record.lines[:3]] == ["Tax", "Non", "Tax"]
    assert [line.class_ref for line in record.lines[:3]] == ["Retail:East", None, None]
    assert record.class_ref == "Consulting" and record.terms == "Net 30"
    assert record.item_sales_tax == "CA" and record.ref_number == "1001"
    discount = record.lines[-1]
    assert discount.item == "qbsync Discount" and discount.amount == Decimal("-24.50")
    assert discount.description == "Discount 10%"
    assert sum(line.amount for line in record.lines) == inv.subtotal - inv.discount_amount
    assert "<Amount>-24.50</Amount>" in document
    assert "<ListID>80000001-1700000000</ListID>" in document  # customer by ListID
    assert "<FullName>Consulting</FullName>" in document  # item by name when no ListID yet


def test_qbd_invoice_tax_and_classes() -> None:
    exempt = qbd_build_invoice(s=tax_settings(), cust=customer(tax_exempt=True))
    assert [line.sales_tax_code for line in exempt.lines] == ["Non", "Non", "Non"]
    assert exempt.customer_sales_tax_code == "Non"
    assert exempt.item_sales_tax is None  # no default item: QuickBooks uses the customer's
    overridden = qbd_build_invoice(invoice(tax_code="NYC"), tax_settings(sales_tax={"default_tax_item": "CA"}))
    assert overridden.item_sales_tax == "NYC"
    off = qbd_build_invoice(invoice(class_name="Consulting"), settings(allow_class_override=True))
    assert off.class_ref is None and off.item_sales_tax is None
    assert {line.sales_tax_code for line in off.lines} == {None}
    terms = qbd_build_invoice(s=settings(default_terms="Due on receipt"), cust=customer(terms="Net 15"))
    assert terms.terms == "Net 15"
    assert qbd_build_invoice(s=settings(default_terms="Due on receipt")).terms == "Due on receipt"


def test_qbd_free_text_keeps_line_breaks(xsd: None) -> None:
    record = qbd_build_invoice(invoice(memo="Line one\nLine two"))
    assert record.memo == "Line one\nLine two"
    assert_valid(build_invoice_add("inv-memo", record))
    with pytest.raises(MappingError) as err:
        qbd_build_invoice(invoice(memo="€" * 2000))  # the Latin-1 rule makes it "EUR" x 2000
    assert err.value.field == "memo" and err.value.limit == 4095
    assert qbd_customer(customer(notes="a\nb"), settings(), creating=True).notes == "a\nb"


def test_qbd_invoice_refusals() -> None:
    with pytest.raises(MappingError) as err:
        qbd_build_invoice(invoice(doc_number="INV-2024-001"))
    assert err.value.field == "doc_number" and err.value.limit == 11
    assert "11" in err.value.message
    with pytest.raises(MappingConfigurationError) as err:
        qbd_build_invoice(invoice(discount={"amount": "5.00"}))
    assert err.value.field == "discount_item"
    with pytest.raises(MappingError) as err:
        qbd_build_invoice(refs=Refs(customer=QBD_REFS.customer, items={}))
    assert err.value.field == "lines[0].item_id"


def test_qbd_payment_validates(xsd: None) -> None:
    record = qbd_payment(payment(method="check"), settings(ar_account="Accounts Receivable"), QBD_REFS)
    document = assert_valid(build_receive_payment_add("p1", record))
    assert [(a.txn_id, a.payment_amount) for a in record.applied_to] == [
        ("1A2-1700000000", Decimal("100.00")),
        ("1A3-1700000000", Decimal("50.00")),
    ]
    assert record.total_amount == Decimal("150.00") and record.payment_method is None
    assert "<TxnID>1A2-1700000000</TxnID>" in document
    mapped = qbd_payment(payment(method="check"), settings(), QBD_REFS, payment_methods={"check": "Check"})
    assert mapped.payment_method == "Check"
    assert_valid(build_receive_payment_add("p2", mapped))


def test_qbd_payment_unknown_invoice_is_refused() -> None:
    refs = Refs(customer=QBD_REFS.customer, invoices={"inv2": QbRef("1A3-1700000000")})
    with pytest.raises(MappingError) as err:
        qbd_payment(payment(), settings(), refs)
    assert err.value.field == "applied_to[0].invoice_id" and "'inv1'" in err.value.message
    no_txn_id = Refs(customer=QBD_REFS.customer, invoices={"inv1": QbRef(name="1001"), "inv2": QbRef("X")})
    with pytest.raises(MappingError):
        qbd_payment(payment(), settings(), no_txn_id)


def test_qbo_json_writes_decimals_as_exact_numbers() -> None:
    inv = invoice(discount={"percent": "12.5"}, tax_amount="0.10")
    body = build_invoice(inv, tax_settings())
    text = qbo_json(body)
    parsed = json.loads(text, parse_float=Decimal)
    assert parsed["Line"][0]["Amount"] == Decimal("200.00") and '"Amount":200.00' in text
    assert parsed["Line"][2]["SalesItemLineDetail"]["UnitPrice"] == Decimal("9.99")
    assert parsed["Line"][-1]["DiscountLineDetail"]["DiscountPercent"] == Decimal("12.5")
    assert parsed["TxnTaxDetail"]["TotalTax"] == Decimal("0.10")
    assert qbo_json({"Note": "Zoë \u2014 ok", "Qty": Decimal("1E+2")}) == '{"Note":"Zoë \u2014 ok","Qty":100}'
    with pytest.raises(MappingError):
        qbo_json({"PrivateNote": "a\x00b"})
    with pytest.raises(MappingError):
        qbo_json({"Amount": Decimal("NaN")})


def test_names_cut_without_a_sku_stay_distinct_and_deterministic(xsd: None) -> None:
    """S6: with no {sku} in the template, shortening adds a hash of the whole name, so two long names that share
    their first 26 characters do not collide in QuickBooks (3100), and the same item always gets the same name."""
    s = settings(item_name_template="{name}", income_account="X")
    first = item(name="Managed backup for servers - standard tier")
    second = item(name="Managed backup for servers - premium tier")
    a, b = qbd_item_name(first, s), qbd_item_name(second, s)
    assert len(a) == len(b) == 31 and a != b
    assert a.startswith("Managed backup for servers") and a[-5] == "~"
    assert qbd_item_name(first, s) == a  # deterministic
    assert qbd_item_name(item(name="Short name"), s) == "Short name"  # nothing cut: no suffix
    assert qbd_item_name(item(name="x" * 31), s) == "x" * 31  # fits exactly: no suffix
    assert_valid(build_item_add("i1", qbd_item(first, s)))
    long_online = qbo_item_name(
        item(name="N" * 60, description="D" * 60), settings(item_name_template="{name} {description}")
    )
    assert len(long_online) == 100 and long_online[-5] == "~" and long_online.startswith("N" * 60 + " D")
