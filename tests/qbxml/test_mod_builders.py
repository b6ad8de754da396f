"""ItemServiceMod, ItemNonInventoryMod and ReceivePaymentMod: XSD-valid (13.0 and 16.0), in the XSD's element order,
with the Latin-1 and length rules of the Add builders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
from lxml import etree  # type: ignore[import-untyped]

from qbsync.qbxml import (
    AppliedTo,
    Item,
    QbxmlFieldError,
    ReceivePayment,
    Ref,
    build_item_mod,
    build_message_set,
    build_receive_payment_mod,
)
from qbsync.qbxml.safexml import parse_xml

SERVICE = Item(
    name="Zoë's Consulting",
    income_account="Services:Consulting",
    description="Hourly consulting\nbilled monthly",
    price=Decimal("125"),
    tax_code="Non",
    is_active=True,
    parent="Consulting",
)
NON_INVENTORY_PURCHASED = Item(
    name="W" * 31,
    kind="non_inventory",
    income_account=Ref(list_id="80000004-1"),
    description="D" * 4095,
    price=Decimal("9.99"),
    expense_account="Cost of Goods Sold",
    purchase_description="Bought from the usual vendor",
    purchase_cost=Decimal("4.5"),
    preferred_vendor="Acme Supply",
    tax_code="Tax",
    manufacturer_part_number="WX-1",
)
PAYMENT = ReceivePayment(
    customer=Ref(list_id="80000001-1"),
    ar_account="Accounts Receivable",
    txn_date=date(2026, 11, 2),
    ref_number="CHK-12345678901234",
    total_amount=Decimal("150"),
    payment_method="Check",
    memo="Łódź office",  # Latin-1 rule: Ł is not Latin-1
    deposit_to_account="Undeposited Funds",
    applied_to=(
        AppliedTo(txn_id="1A2B-1", payment_amount=Decimal("100"), discount_amount=Decimal("1.5"), discount_account="D"),
        AppliedTo(txn_id="1A2C-1", payment_amount=Decimal("50.00")),
    ),
)

CASES: dict[str, Callable[[], etree._Element]] = {
    "service_sales_or_purchase": lambda: build_item_mod("im-1", "80000010-1", "1700000000", SERVICE),
    "service_percent_price": lambda: build_item_mod(
        "im-2", "80000010-1", "1", Item(name="Markup", income_account="Sales", price_percent=Decimal("12.5"))
    ),
    "non_inventory_sales_and_purchase": lambda: build_item_mod(
        "im-3", "80000011-1", "1700000001", NON_INVENTORY_PURCHASED, include_ret_elements=["EditSequence"]
    ),
    "non_inventory_sales_or_purchase": lambda: build_item_mod(
        "im-4", "80000011-1", "2", Item(name="Thing", kind="non_inventory", income_account="Sales", price=Decimal(3))
    ),
    "service_kept_sales_and_purchase": lambda: build_item_mod(
        "im-5",
        "80000010-1",
        "3",
        Item(name="Sub", income_account="Services", price=Decimal(80)),
        sales_and_purchase=True,
    ),
    "payment_full": lambda: build_receive_payment_mod("pm-1", "1F-1700000000", "1700000002", PAYMENT),
    "payment_header_only": lambda: build_receive_payment_mod(
        "pm-2", "1F-1", "3", ReceivePayment(customer="Bob", memo="changed")
    ),
}


def _errors(schema: etree.XMLSchema, document: str) -> list[str]:
    ok = schema.validate(parse_xml(document))
    return [] if ok else [f"{e.line}: {e.message}" for e in schema.error_log]


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_mod_validates_against_13_0_and_16_0(
    case: str, schema130: etree.XMLSchema, schema160: etree.XMLSchema
) -> None:
    document = build_message_set([CASES[case]()])
    assert _errors(schema130, document) == []
    assert _errors(schema160, document) == []
    document.encode("iso-8859-1")  # every character is Latin-1


def test_all_mods_in_one_message_set(schema130: etree.XMLSchema) -> None:
    assert _errors(schema130, build_message_set([factory() for factory in CASES.values()])) == []


def test_item_mod_request_follows_the_item_kind_and_form() -> None:
    service = build_item_mod("r", "8-1", "5", SERVICE)
    assert service.tag == "ItemServiceModRq"
    mod = service.find("ItemServiceMod")
    assert [el.tag for el in mod] == [
        "ListID",
        "EditSequence",
        "Name",
        "IsActive",
        "ParentRef",
        "SalesTaxCodeRef",
        "SalesOrPurchaseMod",
    ]
    sales = mod.find("SalesOrPurchaseMod")
    assert (sales.findtext("Desc"), sales.findtext("Price"), sales.findtext("AccountRef/FullName")) == (
        "Hourly consulting\nbilled monthly",
        "125",
        "Services:Consulting",
    )
    assert mod.findtext("Name") == "Zoë's Consulting"
    non_inventory = build_item_mod("r", "8-2", "6", NON_INVENTORY_PURCHASED).find("ItemNonInventoryMod")
    assert non_inventory.findtext("ManufacturerPartNumber") == "WX-1"
    both = non_inventory.find("SalesAndPurchaseMod")
    assert [el.tag for el in both] == [
        "SalesDesc",
        "SalesPrice",
        "IncomeAccountRef",
        "PurchaseDesc",
        "PurchaseCost",
        "ExpenseAccountRef",
        "PrefVendorRef",
    ]
    assert both.findtext("IncomeAccountRef/ListID") == "80000004-1"


def test_a_sales_and_purchase_item_keeps_its_form_without_purchase_fields() -> None:
    item = Item(name="Sub", income_account="Services", description="Subcontracted work", price=Decimal(80))
    assert build_item_mod("r", "8-1", "1", item).find("ItemServiceMod/SalesOrPurchaseMod") is not None
    mod = build_item_mod("r", "8-1", "1", item, sales_and_purchase=True).find("ItemServiceMod")
    assert mod.find("SalesOrPurchaseMod") is None
    assert [el.tag for el in mod.find("SalesAndPurchaseMod")] == ["SalesDesc", "SalesPrice", "IncomeAccountRef"]
    with pytest.raises(QbxmlFieldError) as info:
        build_item_mod(
            "r", "8-1", "1", Item(name="P", income_account="S", price_percent=Decimal(5)), sales_and_purchase=True
        )
    assert info.value.field == "PricePercent"


def test_payment_mod_carries_the_applications() -> None:
    rq = build_receive_payment_mod("r", "1F-1", "9", PAYMENT)
    mod = rq.find("ReceivePaymentMod")
    assert (mod.findtext("TxnID"), mod.findtext("EditSequence"), mod.findtext("TotalAmount")) == ("1F-1", "9", "150.00")
    assert mod.findtext("Memo") == "Lódz office"
    applied = [(a.findtext("TxnID"), a.findtext("PaymentAmount")) for a in mod.findall("AppliedToTxnMod")]
    assert applied == [("1A2B-1", "100.00"), ("1A2C-1", "50.00")]
    assert mod.find("AppliedToTxnAdd") is None and mod.find("IsAutoApply") is None


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: build_item_mod("r", "8-1", "1", Item(name="N" * 32, income_account="Sales")), "Name"),
        (lambda: build_item_mod("r", "8-1", "1" * 17, Item(name="N", income_account="Sales")), "EditSequence"),
        (lambda: build_item_mod("r", "", "1", Item(name="N", income_account="Sales")), "ListID"),
        (
            lambda: build_item_mod("r", "8-1", "1", Item(name="N", income_account="Sales", price=Decimal("1.000001"))),
            "SalesOrPurchaseMod/Price",
        ),
        (
            lambda: build_item_mod(
                "r", "8-1", "1", Item(name="N", income_account="Sales", manufacturer_part_number="X")
            ),
            "ManufacturerPartNumber",
        ),
        (
            lambda: build_item_mod(
                "r", "8-1", "1", Item(name="N", income_account="S", expense_account="E", price_percent=Decimal(5))
            ),
            "PricePercent",
        ),
        (
            lambda: build_item_mod(
                "r",
                "8-1",
                "1",
                Item(name="N", income_account="S", external_guid="{6B29FC40-CA47-1067-B31D-00DD010662DA}"),
            ),
            "ExternalGUID",
        ),
        (
            lambda: build_receive_payment_mod("r", "1F-1", "1", ReceivePayment(customer="A", auto_apply=True)),
            "IsAutoApply",
        ),
        (
            lambda: build_receive_payment_mod(
                "r",
                "1F-1",
                "1",
                ReceivePayment(customer="A", applied_to=(AppliedTo(txn_id="1", payment_amount=Decimal("1.234")),)),
            ),
            "AppliedToTxnMod[1]/PaymentAmount",
        ),
        (
            lambda: build_receive_payment_mod("r", "1F-1", "1", ReceivePayment(customer="A", ref_number="R" * 21)),
            "RefNumber",
        ),
    ],
)
def test_invalid_mods_are_refused(factory: Callable[[], etree._Element], field: str) -> None:
    with pytest.raises(QbxmlFieldError) as info:
        factory()
    assert info.value.field == field
