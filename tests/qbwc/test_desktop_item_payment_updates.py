"""Issue 5 on QuickBooks Desktop for items and payments: changed content becomes ItemServiceMod /
ItemNonInventoryMod / ReceivePaymentMod on the SAME ListID/TxnID (Web Connector simulator over HTTP against the real
app, the fake company file processing the qbXML). Redelivered messages do not apply a change twice, a stale
EditSequence is read again, and an item linked to an inventory part is a clear blocked reason."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from qbsync.events import MemoryPublisher
from qbsync.store.ports import Job
from qbsync.sync.ingest import record_view
from qbsync.sync.worker import _item_type
from tests.qbwc.test_desktop_sync_reliability import Desk
from tests.qbwc.test_desktop_sync_reliability import desk as desk  # the fixture, used by name
from tests.support import serve_api


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with serve_api() as base:
        yield f"{base}/qbwc"


Records = dict[str, list[dict[str, Any]]]


def settle(desk: Desk, records: Records, *, deliveries: int = 2, runs: int = 8) -> None:
    """Web Connector runs until every record is decided; every transfer message is delivered ``deliveries`` times."""
    for _ in range(runs):
        desk.drain(deliveries=deliveries)
        if all(
            s in ("synced", "failed", "blocked")
            for kind, body in records.items()
            for s in desk.states(kind, [r["id"] for r in body]).values()
        ):
            return
        desk.run_web_connector()
    desk.drain(deliveries=deliveries)


def post(desk: Desk, records: Records) -> None:
    for kind, body in records.items():
        desk.services.ingest.accept(desk.tenant, kind, body)


def record(desk: Desk, kind: str, source_id: str) -> Any:
    found = desk.store.records.get(desk.tenant.tenant_id, kind, source_id)
    assert found is not None
    return found


def jobs(desk: Desk) -> list[Any]:
    return desk.store.jobs.history(desk.connector.connector_id, limit=500)


FIRST: Records = {
    "customers": [{"id": "c1", "name": "Updating Customer", "email": "upd@example.com"}],
    "items": [
        {"id": "svc", "name": "Support", "sku": "SUP", "price": "40.00", "description": "Support hours"},
        {"id": "part", "name": "Cable", "sku": "CAB", "price": "5.00", "type": "product"},
    ],
    "invoices": [
        {
            "id": "inv-1",
            "customer_id": "c1",
            "doc_number": "UP-1",
            "date": "2026-11-04",
            "lines": [{"item_id": "svc", "quantity": "2", "rate": "40.00"}],
        },
        {
            "id": "inv-2",
            "customer_id": "c1",
            "doc_number": "UP-2",
            "date": "2026-11-04",
            "lines": [{"item_id": "part", "quantity": "4", "rate": "5.00"}],
        },
    ],
    "payments": [
        {
            "id": "p1",
            "customer_id": "c1",
            "date": "2026-11-05",
            "amount": "50.00",
            "applied_to": [{"invoice_id": "inv-1", "amount": "50.00"}],
        }
    ],
}
CHANGED: Records = {
    "items": [
        {"id": "svc", "name": "Support", "sku": "SUP", "price": "45.00", "description": "Senior support hours"},
        {"id": "part", "name": "Cable", "sku": "CAB", "price": "6.50", "type": "product", "description": "2 m"},
    ],
    "payments": [
        {
            "id": "p1",
            "customer_id": "c1",
            "date": "2026-11-05",
            "amount": "80.00",
            "memo": "corrected amount",
            "applied_to": [{"invoice_id": "inv-1", "amount": "60.00"}, {"invoice_id": "inv-2", "amount": "20.00"}],
        }
    ],
}


def test_changed_items_and_payments_are_modified_in_place_once_even_when_quickbooks_moved_on(desk: Desk) -> None:
    post(desk, FIRST)
    settle(desk, FIRST)
    for kind, body in FIRST.items():
        assert set(desk.states(kind, [r["id"] for r in body]).values()) == {"synced"}, kind
    company = desk.company
    svc, part = record(desk, "items", "svc"), record(desk, "items", "part")
    assert (svc.qb_type, part.qb_type) == ("ItemService", "ItemNonInventory")  # remembered from the Add
    payment_id = record(desk, "payments", "p1").qb_id
    assert company.find_invoice("UP-1").balance_remaining == Decimal("30.00")

    # A QuickBooks user edits the service item and the payment meanwhile: qbsync's EditSequences are stale.
    company.edit_item("Support", desc="Edited in QuickBooks")
    company.payments()[0].edit_sequence = "1"
    post(desk, CHANGED)
    post(desk, CHANGED)  # posting the same change twice is a no-op the second time
    settle(desk, CHANGED)

    for kind, body in CHANGED.items():
        assert set(desk.states(kind, [r["id"] for r in body]).values()) == {"synced"}, kind
    # The same ListIDs and TxnID with the new content; nothing added.
    items = {i.list_id: i for i in company.items()}
    assert set(items) == {svc.qb_id, part.qb_id}
    support, cable = items[svc.qb_id], items[part.qb_id]
    assert (support.kind, support.name, cable.kind) == ("ItemService", "Support", "ItemNonInventory")
    sales = next(f for f in support.fields if f.tag == "SalesOrPurchase")
    assert (sales.findtext("Desc"), sales.findtext("Price")) == ("Senior support hours", "45")
    sales = next(f for f in cable.fields if f.tag == "SalesOrPurchase")
    assert (sales.findtext("Desc"), sales.findtext("Price")) == ("2 m", "6.5")
    assert company.count("ReceivePayment") == 1
    paid = company.payments()[0]
    assert paid.txn_id == payment_id and paid.total_amount == Decimal("80.00") and paid.memo == "corrected amount"
    inv1, inv2 = company.find_invoice("UP-1"), company.find_invoice("UP-2")
    assert dict(paid.applied) == {inv1.txn_id: Decimal("60.00"), inv2.txn_id: Decimal("20.00")}
    assert (inv1.balance_remaining, inv2.balance_remaining, inv2.is_paid) == (Decimal("20.00"), Decimal(0), True)

    # The records carry QuickBooks' new versions; the API says synced.
    svc, part, pay = record(desk, "items", "svc"), record(desk, "items", "part"), record(desk, "payments", "p1")
    assert (svc.qb_version, part.qb_version, pay.qb_version) == (
        support.edit_sequence,
        cable.edit_sequence,
        paid.edit_sequence,
    )
    assert svc.qb_type == "ItemService" and part.qb_type == "ItemNonInventory"
    view = record_view(pay)
    assert (view.state, view.quickbooks_id, view.reason) == ("synced", payment_id, None)

    # Each change went to QuickBooks once: one successful mod per record, the stale ones read again first.
    done = [(j.kind, j.status, str(j.result.get("status_code", ""))) for j in jobs(desk)]
    assert done.count(("item_mod", "done", "0")) == 2 and done.count(("receive_payment_mod", "done", "0")) == 1
    assert ("item_mod", "error", "3200") in done and ("receive_payment_mod", "error", "3200") in done
    assert ("item_lookup", "done", "0") in done and ("receive_payment_lookup", "done", "0") in done
    history = desk.store.records.history(desk.tenant.tenant_id, limit=200).items
    updates = {(t.kind, t.source_id) for t in history if t.action == "update" and t.status == "succeeded"}
    assert {("items", "svc"), ("items", "part"), ("payments", "p1")} <= updates
    publisher = desk.services.events
    assert isinstance(publisher, MemoryPublisher)
    assert [e["detail"]["id"] for e in publisher.of_type("payment.synced")] == ["p1", "p1"]  # created, then updated

    # Redelivering every message again, and another Web Connector run, changes nothing.
    before = [(j.seq, j.status) for j in jobs(desk)]
    post(desk, CHANGED)
    settle(desk, CHANGED, deliveries=3, runs=2)
    desk.run_web_connector()
    assert [(j.seq, j.status) for j in jobs(desk)] == before
    assert company.payments()[0].edit_sequence == paid.edit_sequence


def _seed(desk: Desk, body: str) -> None:
    answer = desk.company.process(
        '<?xml version="1.0"?><?qbxml version="13.0"?><QBXML>'
        f'<QBXMLMsgsRq onError="stopOnError">{body}</QBXMLMsgsRq></QBXML>'
    )
    assert 'statusCode="0"' in answer and 'statusCode="3' not in answer, answer


def test_linked_items_read_their_type_first_and_an_inventory_part_is_a_clear_blocked_reason(desk: Desk) -> None:
    _seed(
        desk,
        "<ItemServiceAddRq><ItemServiceAdd><Name>Linked Service</Name><SalesOrPurchase><Price>70.00</Price>"
        "<AccountRef><FullName>Services</FullName></AccountRef></SalesOrPurchase></ItemServiceAdd></ItemServiceAddRq>"
        "<ItemNonInventoryAddRq><ItemNonInventoryAdd><Name>Linked Part</Name>"
        "<ManufacturerPartNumber>NI-1</ManufacturerPartNumber><SalesOrPurchase><Price>3.00</Price>"
        "<AccountRef><FullName>Sales</FullName></AccountRef></SalesOrPurchase></ItemNonInventoryAdd>"
        "</ItemNonInventoryAddRq>"
        "<ItemServiceAddRq><ItemServiceAdd><Name>Subcontracted</Name><SalesAndPurchase><SalesDesc>Sub work</SalesDesc>"
        "<SalesPrice>80.00</SalesPrice><IncomeAccountRef><FullName>Services</FullName></IncomeAccountRef>"
        "<PurchaseDesc>From the subcontractor</PurchaseDesc><PurchaseCost>55.00</PurchaseCost>"
        "<ExpenseAccountRef><FullName>Cost of Goods Sold</FullName></ExpenseAccountRef></SalesAndPurchase>"
        "</ItemServiceAdd></ItemServiceAddRq>",
    )
    stocked = desk.company.add_inventory_item("Stocked Part", part_number="INV-1", price="12.00")
    first: Records = {
        "items": [
            {"id": "l-svc", "name": "Linked Service", "sku": "linked service", "price": "70.00"},  # SKU = its name
            {"id": "l-part", "name": "Part", "sku": "NI-1", "price": "3.00", "type": "product"},  # by part number
            {"id": "l-inv", "name": "Stocked", "sku": "INV-1", "price": "12.00", "type": "product"},
            {"id": "l-sub", "name": "Subcontracted", "sku": "subcontracted", "price": "80.00"},
        ]
    }
    post(desk, first)
    settle(desk, first)
    linked = {r["id"]: record(desk, "items", r["id"]) for r in first["items"]}
    assert {k: (r.state, r.qb_version, r.qb_type) for k, r in linked.items()} == {
        k: ("synced", None, None) for k in linked
    }
    assert linked["l-inv"].qb_id == stocked.list_id

    changed: Records = {"items": [{**r, "price": "99.00"} for r in first["items"]]}
    post(desk, changed)
    settle(desk, changed)

    svc, part, inv = (record(desk, "items", k) for k in ("l-svc", "l-part", "l-inv"))
    assert (svc.state, svc.qb_type, part.state, part.qb_type) == ("synced", "ItemService", "synced", "ItemNonInventory")
    sales = {i.list_id: next((f for f in i.fields if f.tag == "SalesOrPurchase"), None) for i in desk.company.items()}
    assert sales[svc.qb_id].findtext("Price") == "99" and sales[part.qb_id].findtext("Price") == "99"
    assert (inv.state, inv.qb_type, inv.qb_id) == ("blocked", "ItemInventory", stocked.list_id)
    # The tenant has no expense account: the sales-and-purchase item stays one, its purchase fields untouched.
    sub = record(desk, "items", "l-sub")
    assert (sub.state, sub.qb_type) == ("synced", "ItemService/SalesAndPurchase")
    kept = next(i for i in desk.company.items() if i.list_id == sub.qb_id)
    both = next(f for f in kept.fields if f.tag == "SalesAndPurchase")
    assert sales[sub.qb_id] is None and both.findtext("SalesPrice") == "99"
    assert (both.findtext("PurchaseCost"), both.findtext("ExpenseAccountRef/FullName")) == (
        "55.00",
        "Cost of Goods Sold",
    )
    reason = record_view(inv).reason or {}
    assert reason["code"] == "desktop_item_type_unsupported" and reason["quickbooks_type"] == "ItemInventory"
    assert "inventory part" in reason["message"] and reason["action"]
    assert stocked.field_text("SalesPrice") == "12.00"  # nothing sent to the inventory part
    assert len(desk.company.items()) == 4
    kinds = [(j.kind, j.status) for j in jobs(desk)]
    assert kinds.count(("item_lookup", "done")) == 4 and kinds.count(("item_mod", "done")) == 3


def _job(kind: str, payload: dict[str, Any], result: dict[str, Any]) -> Job:
    return Job("conn", 1, "t", kind, "items", payload, "2026-11-01T00:00:00Z", "2026-11-01T00:00:00Z", result=result)


def test_the_item_type_comes_from_the_answer_else_from_the_request_a_recovered_job_sent() -> None:
    answered = _job("item_add", {"name": "A", "income_account": "S"}, {"qb_type": "ItemNonInventory/SalesAndPurchase"})
    assert _item_type(answered) == "ItemNonInventory/SalesAndPurchase"
    recovered = {"status_code": 0, "list_id": "8-1", "recovered": True}  # a verification query found it: no Ret type
    assert _item_type(_job("item_add", {"name": "A", "income_account": "S"}, recovered)) == "ItemService"
    purchased = {"name": "A", "kind": "non_inventory", "income_account": "S", "expense_account": "E"}
    assert _item_type(_job("item_add", purchased, recovered)) == "ItemNonInventory/SalesAndPurchase"
    change = {"list_id": "8-1", "edit_sequence": "2", "item": {"name": "A", "income_account": "S"}}
    assert (
        _item_type(_job("item_mod", {**change, "sales_and_purchase": True}, recovered))
        == "ItemService/SalesAndPurchase"
    )
    assert _item_type(_job("item_lookup", {"id": "8-1"}, {})) is None


def test_renaming_an_item_to_a_taken_name_is_a_duplicate_name_issue_and_changes_nothing(desk: Desk) -> None:
    items: Records = {
        "items": [
            {"id": "a", "name": "Support", "sku": "A-1", "price": "10.00"},
            {"id": "b", "name": "Design", "sku": "B-1", "price": "20.00"},
        ]
    }
    post(desk, items)
    settle(desk, items)
    b = record(desk, "items", "b")
    renamed: Records = {"items": [{"id": "b", "name": "support", "sku": "B-1", "price": "25.00"}]}
    post(desk, renamed)
    settle(desk, renamed)

    after = record(desk, "items", "b")
    assert (after.state, after.qb_id) == ("blocked", b.qb_id)
    reason = record_view(after).reason or {}
    assert (reason["code"], reason["qb_code"]) == ("item_duplicate_name", "3100")
    assert 'The name "support" of the list element is already in use.' in reason["message"]
    design = next(i for i in desk.company.items() if i.list_id == b.qb_id)
    assert design.name == "Design" and design.edit_sequence == b.qb_version  # QuickBooks refused it: unchanged
    assert len(desk.company.items()) == 2
