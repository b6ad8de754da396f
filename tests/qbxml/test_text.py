"""Latin-1 safety, field limits, amounts, quantities and dates."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from qbsync.qbxml import (
    Customer,
    Invoice,
    InvoiceLine,
    Item,
    QbxmlFieldError,
    ReceivePayment,
    Ref,
    build_customer_add,
    build_invoice_add,
    build_item_add,
    build_message_set,
    build_receive_payment_add,
    latin1_safe,
)
from qbsync.qbxml.text import format_amount, format_date, format_price, text_field


def test_customer_name_over_41_names_field_and_limit() -> None:
    with pytest.raises(QbxmlFieldError) as info:
        build_customer_add("r", Customer(name="x" * 42))
    assert info.value.field == "Name"
    assert info.value.limit == 41
    assert "41" in str(info.value)
    build_customer_add("r", Customer(name="x" * 41))


def test_item_name_over_31() -> None:
    with pytest.raises(QbxmlFieldError) as info:
        build_item_add("r", Item(name="x" * 32, income_account="Income"))
    assert (info.value.field, info.value.limit) == ("Name", 31)


@pytest.mark.parametrize(
    ("factory", "field", "limit"),
    [
        (lambda: build_invoice_add("r", Invoice(customer="A", ref_number="x" * 12)), "RefNumber", 11),
        (
            lambda: build_receive_payment_add("r", ReceivePayment(customer="A", ref_number="x" * 21, auto_apply=True)),
            "RefNumber",
            20,
        ),
        (lambda: build_invoice_add("r", Invoice(customer="A" * 210)), "CustomerRef/FullName", 209),
        (lambda: build_invoice_add("r", Invoice(customer="A", class_ref="c" * 160)), "ClassRef/FullName", 159),
        (lambda: build_customer_add("r", Customer(name="A", phone="1" * 22)), "Phone", 21),
        (lambda: build_customer_add("r", Customer(name="A", email="e" * 1024)), "Email", 1023),
        (lambda: build_invoice_add("r", Invoice(customer="A", memo="m" * 4096)), "Memo", 4095),
        (lambda: build_customer_add("r", Customer(name="A", sales_tax_code="TAXX")), "SalesTaxCodeRef/FullName", 3),
    ],
)
def test_other_limits(factory: object, field: str, limit: int) -> None:
    with pytest.raises(QbxmlFieldError) as info:
        factory()  # type: ignore[operator]
    assert (info.value.field, info.value.limit) == (field, limit)


def test_address_limits_name_the_path() -> None:
    from qbsync.qbxml import Address

    with pytest.raises(QbxmlFieldError) as info:
        build_customer_add("r", Customer(name="A", bill_address=Address(postal_code="1" * 14)))
    assert (info.value.field, info.value.limit) == ("BillAddress/PostalCode", 13)
    with pytest.raises(QbxmlFieldError) as info:
        build_customer_add("r", Customer(name="A", ship_address=Address(addr3="a" * 42)))
    assert (info.value.field, info.value.limit) == ("ShipAddress/Addr3", 41)


def test_amounts() -> None:
    assert format_amount("Amount", Decimal("10.5")) == "10.50"
    assert format_amount("Amount", Decimal("10")) == "10.00"
    assert format_amount("Amount", 7) == "7.00"
    assert format_amount("Amount", Decimal("-0.00")) == "0.00"
    assert format_amount("Amount", Decimal("1.500")) == "1.50"  # exact, no rounding involved
    assert format_amount("Amount", Decimal("1E+2")) == "100.00"
    assert format_amount("Amount", Decimal("9999999999999.99")) == "9999999999999.99"
    with pytest.raises(QbxmlFieldError, match="more than 2 decimal places"):
        format_amount("Amount", Decimal("1.005"))
    with pytest.raises(QbxmlFieldError, match="13 integer digits"):
        format_amount("Amount", Decimal("10000000000000"))
    with pytest.raises(QbxmlFieldError, match="float"):
        format_amount("Amount", 1.5)  # type: ignore[arg-type]
    with pytest.raises(QbxmlFieldError, match="finite"):
        format_amount("Amount", Decimal("NaN"))


def test_amount_refused_in_builder_names_the_line() -> None:
    with pytest.raises(QbxmlFieldError) as info:
        build_invoice_add("r", Invoice(customer="A", lines=(InvoiceLine(item="X", amount=Decimal("1.005")),)))
    assert info.value.field == "InvoiceLineAdd[1]/Amount"


def test_prices_and_quantities_follow_pricetype() -> None:
    assert format_price("Rate", Decimal("150.12345")) == "150.12345"
    assert format_price("Rate", Decimal("2.50")) == "2.5"
    assert format_price("Rate", Decimal("3")) == "3"
    with pytest.raises(QbxmlFieldError, match="5 decimal places"):
        format_price("Rate", Decimal("0.123456"))
    with pytest.raises(QbxmlFieldError, match="10 integer digits"):
        format_price("Quantity", Decimal("12345678901"))


def test_dates() -> None:
    assert format_date("TxnDate", date(2024, 2, 9)) == "2024-02-09"
    with pytest.raises(QbxmlFieldError):
        format_date("TxnDate", datetime(2024, 2, 9, 12, 0))


def test_non_latin1_name_becomes_safe_and_keeps_latin1_letters() -> None:
    original = "Zoë Łódź — “Café” 東京"
    safe = latin1_safe(original)
    assert safe.changed is True
    safe.text.encode("iso-8859-1")
    assert "ë" in safe.text
    assert safe.text == 'Zoë Lódz - "Café" ??'
    document = build_message_set([build_customer_add("r", Customer(name=original, company_name="€5 … ok"))])
    encoded = document.encode("iso-8859-1")
    assert 'Zoë Lódz - "Café" ??'.encode("iso-8859-1") in encoded
    assert b"EUR5 ... ok" in encoded


def test_latin1_text_unchanged() -> None:
    assert latin1_safe("Café Ørsted ß ñ").changed is False
    assert latin1_safe("e\u0301").text == "é"  # NFC
    assert latin1_safe("ﬁle").text == "file"  # NFKD compatibility


def test_control_characters_are_stripped() -> None:
    safe = latin1_safe("a\x00b\x07c\x1bd\x7fe\x85f\tg\nh")
    assert safe.text == "abcdef\tg\nh"
    assert safe.changed
    assert text_field("Name", "ok\x00", 41) == "ok"
    with pytest.raises(QbxmlFieldError, match="empty"):
        text_field("Name", "\x00\x01", 41)


def test_limit_applies_after_expansion() -> None:
    with pytest.raises(QbxmlFieldError) as info:
        text_field("Name", "€" * 14, 41)  # 14 x "EUR" = 42 characters
    assert info.value.limit == 41


def test_ref_requires_something() -> None:
    with pytest.raises(ValueError):
        Ref()


def test_line_breaks_only_kept_in_free_text_fields() -> None:
    assert text_field("Name", "Acme\r\n\tCorp", 41) == "Acme Corp"
    assert text_field("BillAddress/Addr1", "a\nb", 41) == "a b"
    assert text_field("Memo", "line 1\nline 2", 4095) == "line 1\nline 2"
    assert text_field("InvoiceLineAdd[1]/Desc", "a\nb", 4095) == "a\nb"
