"""ItemServiceMod, ItemNonInventoryMod and ReceivePaymentMod in the fake company: EditSequence (3200), unknown ids
(3120), item names (3100), and a payment mod re-applying amounts with the invoice balances following."""

from __future__ import annotations

from decimal import Decimal

import pytest
from lxml import etree

from infra.fake_qbd import FakeCompany
from qbsync.qbxml import (
    AppliedTo,
    Item,
    ReceivePayment,
    Ref,
    build_item_mod,
    build_message_set,
    build_receive_payment_mod,
)
from tests.fake_qbd.test_company import customer_add, invoice_add, item_add, payment_add, run, status


@pytest.fixture
def company() -> FakeCompany:
    return FakeCompany()


def _send(company: FakeCompany, rq: etree._Element) -> etree._Element:
    out = company.process(build_message_set([rq]))
    root = etree.fromstring(out.split("?>", 1)[1].encode())
    return root.find("QBXMLMsgsRs")[0]


def _item(company: FakeCompany, name: str) -> tuple[str, str]:
    rec = company.find_item(name)
    assert rec is not None
    return rec.list_id, rec.edit_sequence


def test_item_service_mod_changes_price_and_description_in_place(company: FakeCompany) -> None:
    run(company, item_add("Consulting", "100.00"))
    list_id, seq = _item(company, "Consulting")
    change = Item(name="Consulting", income_account="Services", description="Senior consulting", price=Decimal("120"))
    rs = _send(company, build_item_mod("m1", list_id, seq, change))
    assert status(rs) == (0, "Info") and rs.tag == "ItemServiceModRs"
    ret = rs.find("ItemServiceRet")
    assert ret.findtext("ListID") == list_id and ret.findtext("EditSequence") != seq
    assert ret.findtext("SalesOrPurchase/Desc") == "Senior consulting"
    assert ret.findtext("SalesOrPurchase/Price") == "120"
    assert ret.findtext("SalesOrPurchase/AccountRef/FullName") == "Services"
    assert company.count("ItemService") == 1
    # An invoice now prices the item at the new price by default.
    run(company, customer_add("Acme"))
    inv = run(
        company,
        "<InvoiceAddRq><InvoiceAdd><CustomerRef><FullName>Acme</FullName></CustomerRef>"
        "<InvoiceLineAdd><ItemRef><FullName>Consulting</FullName></ItemRef><Quantity>2</Quantity></InvoiceLineAdd>"
        "</InvoiceAdd></InvoiceAddRq>",
    )[0]
    assert inv.findtext("InvoiceRet/Subtotal") == "240.00"
    # The EditSequence it read before is stale now.
    assert status(_send(company, build_item_mod("m2", list_id, seq, change)))[0] == 3200


def test_item_mod_unknown_or_other_type_list_id_is_3120(company: FakeCompany) -> None:
    run(company, item_add("Widget", "2.50", "ItemNonInventory"))
    list_id, seq = _item(company, "Widget")
    service = Item(name="Widget", income_account="Sales")
    rs = _send(company, build_item_mod("m1", list_id, seq, service))  # it is a non-inventory item
    assert status(rs)[0] == 3120 and list_id in rs.get("statusMessage", "")
    rs = _send(company, build_item_mod("m2", "80009999-1", seq, service))
    assert status(rs)[0] == 3120
    inventory = company.add_inventory_item("Stocked", part_number="ST-1")
    rs = _send(company, build_item_mod("m3", inventory.list_id, inventory.edit_sequence, service))
    assert status(rs)[0] == 3120
    part = Item(name="Widget", kind="non_inventory", income_account="Sales", manufacturer_part_number="WX-2")
    rs = _send(company, build_item_mod("m4", list_id, seq, part))
    assert status(rs)[0] == 0 and rs.findtext("ItemNonInventoryRet/ManufacturerPartNumber") == "WX-2"


def test_item_rename_checks_item_names_and_bad_accounts_change_nothing(company: FakeCompany) -> None:
    run(company, item_add("Consulting"), item_add("Design"))
    list_id, seq = _item(company, "Design")
    rs = _send(company, build_item_mod("m1", list_id, seq, Item(name="consulting", income_account="Services")))
    assert status(rs) == (3100, "Error")
    assert rs.get("statusMessage") == 'The name "consulting" of the list element is already in use.'
    rs = _send(company, build_item_mod("m2", list_id, seq, Item(name="Design", income_account="No Such Account")))
    assert status(rs)[0] == 3140
    assert company.find_item("Design").edit_sequence == seq  # nothing changed
    run(company, customer_add("Design Co"))  # customer names are another pool
    rs = _send(company, build_item_mod("m3", list_id, seq, Item(name="Design Co", income_account="Services")))
    assert status(rs)[0] == 0 and company.find_item("Design Co") is not None and company.find_item("Design") is None


def test_sales_and_purchase_mod_and_form_switch_keep_the_ret_in_xsd_order(company: FakeCompany) -> None:
    run(company, item_add("Widget", "2.50", "ItemNonInventory"))
    list_id, seq = _item(company, "Widget")
    both = Item(
        name="Widget",
        kind="non_inventory",
        income_account="Sales",
        price=Decimal("3.00"),
        expense_account="Cost of Goods Sold",
        purchase_cost=Decimal("1.25"),
        tax_code="Tax",
    )
    ret = _send(company, build_item_mod("m1", list_id, seq, both)).find("ItemNonInventoryRet")
    assert ret.find("SalesOrPurchase") is None
    sales = ret.find("SalesAndPurchase")
    assert [el.tag for el in sales] == [
        "SalesDesc",
        "SalesPrice",
        "IncomeAccountRef",
        "PurchaseCost",
        "ExpenseAccountRef",
    ]
    assert sales.findtext("SalesDesc") == "Widget work"  # the old Desc carried over
    tags = [el.tag for el in ret]
    assert tags.index("SalesTaxCodeRef") < tags.index("SalesAndPurchase")


def _invoice(company: FakeCompany, ref: str, amount: str) -> str:
    rs = run(company, invoice_add("Acme", ("Consulting", "1", amount), ref=ref))
    return rs[0].findtext("InvoiceRet/TxnID") or ""


def test_payment_mod_reapplies_amounts_and_balances_follow(company: FakeCompany) -> None:
    run(company, customer_add("Acme"), customer_add("Other"), item_add("Consulting"))
    first, second = _invoice(company, "A-1", "100.00"), _invoice(company, "A-2", "80.00")
    pay = run(company, payment_add("Acme", "60.00", [(first, "60.00")]))[0].find("ReceivePaymentRet")
    txn_id, seq = pay.findtext("TxnID"), pay.findtext("EditSequence")
    assert company.find_invoice("A-1").balance_remaining == Decimal("40.00")

    # The whole invoice plus part of the second one: 100 may go on A-1 (its balance without this payment).
    change = ReceivePayment(
        customer="Acme",
        total_amount=Decimal("130.00"),
        memo="corrected",
        applied_to=(
            AppliedTo(txn_id=first, payment_amount=Decimal("100.00")),
            AppliedTo(txn_id=second, payment_amount=Decimal("30.00")),
        ),
    )
    rs = _send(company, build_receive_payment_mod("p1", txn_id, seq, change))
    assert status(rs) == (0, "Info")
    ret = rs.find("ReceivePaymentRet")
    assert ret.findtext("TxnID") == txn_id and ret.findtext("TotalAmount") == "130.00"
    assert ret.findtext("Memo") == "corrected" and ret.findtext("RefNumber") == "CHK1"  # not sent: unchanged
    assert [(a.findtext("TxnID"), a.findtext("Amount")) for a in ret.findall("AppliedToTxnRet")] == [
        (first, "100.00"),
        (second, "30.00"),
    ]
    a1, a2 = company.find_invoice("A-1"), company.find_invoice("A-2")
    assert (a1.balance_remaining, a1.is_paid, a2.balance_remaining) == (Decimal("0.00"), True, Decimal("50.00"))
    assert company.count("ReceivePayment") == 1

    # Only A-2 now, in full (its balance 50 plus the 30 this payment had on it): A-1 gets its 100 back.
    seq = ret.findtext("EditSequence")
    only_second = ReceivePayment(
        customer=Ref(full_name="Acme"),
        total_amount=Decimal("80.00"),
        applied_to=(AppliedTo(txn_id=second, payment_amount=Decimal("80.00")),),
    )
    rs = _send(company, build_receive_payment_mod("p2", txn_id, seq, only_second))
    assert status(rs)[0] == 0
    assert (a1.balance_remaining, a1.is_paid, a2.balance_remaining, a2.is_paid) == (
        Decimal("100.00"),
        False,
        Decimal("0.00"),
        True,
    )


def test_payment_mod_refusals_change_nothing(company: FakeCompany) -> None:
    run(company, customer_add("Acme"), customer_add("Other"), item_add("Consulting"))
    first = _invoice(company, "A-1", "100.00")
    other = run(company, invoice_add("Other", ("Consulting", "1", "10.00"), ref="O-1"))[0].findtext("InvoiceRet/TxnID")
    pay = run(company, payment_add("Acme", "60.00", [(first, "60.00")]))[0].find("ReceivePaymentRet")
    txn_id, seq = pay.findtext("TxnID"), pay.findtext("EditSequence")

    def mod(total: str, *applied: tuple[str, str], edit_sequence: str | None = None) -> etree._Element:
        change = ReceivePayment(
            customer="Acme",
            total_amount=Decimal(total),
            applied_to=tuple(AppliedTo(txn_id=t, payment_amount=Decimal(a)) for t, a in applied),
        )
        return _send(company, build_receive_payment_mod("p", txn_id, edit_sequence or seq, change))

    assert status(mod("150.00", (first, "150.00")))[0] == 3210  # more than the invoice
    assert status(mod("50.00", (first, "60.00")))[0] == 3210  # more than the payment
    assert status(mod("10.00", (other, "10.00")))[0] == 3120  # another customer's invoice
    assert status(mod("60.00", (first, "60.00"), edit_sequence="1"))[0] == 3200
    rs = _send(
        company,
        build_receive_payment_mod("p", "FFFF-1", seq, ReceivePayment(customer="Acme", memo="x")),
    )
    assert status(rs)[0] == 3120
    assert company.find_invoice("A-1").balance_remaining == Decimal("40.00")
    assert company.payments()[0].edit_sequence == seq


def test_mods_survive_the_json_round_trip(company: FakeCompany) -> None:
    run(company, customer_add("Acme"), item_add("Consulting"))
    first = _invoice(company, "A-1", "100.00")
    pay = run(company, payment_add("Acme", "60.00", [(first, "60.00")]))[0].find("ReceivePaymentRet")
    change = ReceivePayment(
        customer="Acme",
        total_amount=Decimal("70.00"),
        applied_to=(AppliedTo(txn_id=first, payment_amount=Decimal(70)),),
    )
    assert (
        status(
            _send(company, build_receive_payment_mod("p", pay.findtext("TxnID"), pay.findtext("EditSequence"), change))
        )[0]
        == 0
    )
    company.edit_item("Consulting", desc="Edited in QuickBooks", price="99.00")
    company.add_inventory_item("Stocked", part_number="ST-1", price="5.00")
    again = FakeCompany.from_json(company.to_json())
    assert again.find_invoice("A-1").balance_remaining == Decimal("30.00")
    rs = run(again, "<ItemQueryRq><FullName>Consulting</FullName><FullName>Stocked</FullName></ItemQueryRq>")[0]
    assert [r.tag for r in rs] == ["ItemServiceRet", "ItemInventoryRet"]
    assert rs[0].findtext("SalesOrPurchase/Desc") == "Edited in QuickBooks"
    assert rs[1].findtext("ManufacturerPartNumber") == "ST-1" and rs[1].findtext("SalesPrice") == "5.00"
