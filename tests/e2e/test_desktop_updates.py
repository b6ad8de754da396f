"""Issue 5, QuickBooks Desktop: "changed content becomes an update" for items and payments, through the local stack
and `qbsync wc-sim` (every request checked against Intuit's XSD). The company file keeps the SAME ListID/TxnID with
the new content, the invoice balances follow the changed payment, an item a QuickBooks user edited meanwhile (stale
EditSequence) is read again and updated, and an item linked to an inventory part is a clear blocked reason."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.fake_qbd import FakeCompany
from infra.local_stack import LocalStack
from tests.e2e.helpers import run_wc_sim

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
USER = "updating-desk"
DECIDED = ("synced", "blocked", "failed")


def test_changed_items_and_payments_update_the_same_desktop_records(stack: LocalStack, tmp_path: Path) -> None:
    base = stack.base_url
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    key = requests.post(f"{base}/v1/tenants", json={"name": "Updating Desk"}, headers=admin, timeout=10).json()
    auth = {"Authorization": f"Bearer {key['api_key']}"}
    settings = {"income_account": "Services", "auto_create_customers": True, "auto_create_items": True}
    assert requests.patch(f"{base}/v1/tenant/settings", json=settings, headers=auth, timeout=10).status_code == 200
    created = requests.post(
        f"{base}/v1/connectors", json={"name": "Main", "username": USER, "password": PASSWORD}, headers=auth, timeout=30
    )
    assert created.status_code == 201
    connector_id = created.json()["connector_id"]

    company = FakeCompany()
    stocked = company.add_inventory_item("Stocked Part", part_number="INV-1", price="12.00")
    state_file = tmp_path / "desk.json"
    state_file.write_text(company.to_json())

    def post(kind: str, body: list[dict[str, Any]]) -> list[str]:
        answer = requests.post(f"{base}/v1/{kind}", json=body, headers=auth, timeout=30)
        assert answer.status_code == 202, answer.text
        return [t["status"] for t in answer.json()["transfers"]]

    def state(kind: str, record_id: str) -> dict[str, Any]:
        return dict(requests.get(f"{base}/v1/{kind}/{record_id}", headers=auth, timeout=10).json())

    def sync(records: dict[str, list[dict[str, Any]]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Web Connector runs (at most eight) until every record is decided; the records as the API shows them."""
        watched = [(kind, r["id"]) for kind, body in records.items() for r in body]
        for _ in range(8):
            run_wc_sim(base, USER, PASSWORD, state_file)
            deadline = time.monotonic() + 8  # job outcomes are applied by the transfer worker just after the run
            while time.monotonic() < deadline:
                states = {ref: state(*ref) for ref in watched}
                if all(s["state"] in DECIDED for s in states.values()):
                    return states
                time.sleep(0.5)
        raise AssertionError({ref: state(*ref) for ref in watched})

    first: dict[str, list[dict[str, Any]]] = {
        "customers": [{"id": "c1", "name": "Updating Customer", "email": "upd@example.com"}],
        "items": [
            {"id": "svc", "name": "Support", "sku": "SUP", "price": "40.00", "description": "Support hours"},
            {"id": "part", "name": "Cable", "sku": "CAB", "price": "5.00", "type": "product"},
            {"id": "stock", "name": "Stocked", "sku": "INV-1", "price": "12.00", "type": "product"},
        ],
        "invoices": [
            {
                "id": "inv-1",
                "customer_id": "c1",
                "doc_number": "UP-1",
                "date": "2026-11-04",
                "lines": [{"item_id": "svc", "quantity": "2", "rate": "40.00"}],
                "total": "80.00",
            },
            {
                "id": "inv-2",
                "customer_id": "c1",
                "doc_number": "UP-2",
                "date": "2026-11-04",
                "lines": [{"item_id": "part", "quantity": "4", "rate": "5.00"}],
                "total": "20.00",
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
    for kind, body in first.items():
        post(kind, body)
    before = sync(first)
    assert {ref: s["state"] for ref, s in before.items()} == dict.fromkeys(before, "synced")
    assert before[("items", "stock")]["quickbooks_id"] == stocked.list_id  # linked by its part number

    # A QuickBooks user edits the service item meanwhile: qbsync's EditSequence for it is stale.
    company = FakeCompany.from_json(state_file.read_text())
    company.edit_item("Support", desc="Edited in QuickBooks")
    state_file.write_text(company.to_json())

    changed: dict[str, list[dict[str, Any]]] = {
        "items": [
            {"id": "svc", "name": "Support", "sku": "SUP", "price": "45.00", "description": "Senior support hours"},
            {"id": "part", "name": "Cable", "sku": "CAB", "price": "6.50", "type": "product"},
            {"id": "stock", "name": "Stocked", "sku": "INV-1", "price": "13.00", "type": "product"},
        ],
        "payments": [
            {
                "id": "p1",
                "customer_id": "c1",
                "date": "2026-11-05",
                "amount": "80.00",
                "applied_to": [{"invoice_id": "inv-1", "amount": "60.00"}, {"invoice_id": "inv-2", "amount": "20.00"}],
            }
        ],
    }
    for kind, body in changed.items():
        assert "unchanged" not in post(kind, body)
        assert set(post(kind, body)) == {"unchanged"}  # the same content again is a no-op
    after = sync(changed)

    for ref in (("items", "svc"), ("items", "part"), ("payments", "p1")):
        assert after[ref]["state"] == "synced", after[ref]
        assert after[ref]["quickbooks_id"] == before[ref]["quickbooks_id"]  # the same QuickBooks record
    blocked = after[("items", "stock")]
    assert blocked["state"] == "blocked" and blocked["quickbooks_id"] == stocked.list_id
    assert blocked["reason"]["code"] == "desktop_item_type_unsupported"
    assert blocked["reason"]["quickbooks_type"] == "ItemInventory" and "inventory part" in blocked["reason"]["message"]

    company = FakeCompany.from_json(state_file.read_text())
    items = {i.list_id: i for i in company.items()}
    assert len(items) == 3  # nothing added
    support = items[before[("items", "svc")]["quickbooks_id"]]
    cable = items[before[("items", "part")]["quickbooks_id"]]
    support_sales = next(f for f in support.fields if f.tag == "SalesOrPurchase")
    assert (support_sales.findtext("Desc"), support_sales.findtext("Price")) == ("Senior support hours", "45")
    assert next(f for f in cable.fields if f.tag == "SalesOrPurchase").findtext("Price") == "6.5"
    assert items[stocked.list_id].field_text("SalesPrice") == "12.00"  # the inventory part was not touched
    assert company.count("ReceivePayment") == 1
    payment = company.payments()[0]
    assert payment.txn_id == before[("payments", "p1")]["quickbooks_id"] and payment.total_amount == Decimal("80.00")
    inv1, inv2 = company.find_invoice("UP-1"), company.find_invoice("UP-2")
    assert inv1 is not None and inv2 is not None
    assert (inv1.balance_remaining, inv2.balance_remaining, inv2.is_paid) == (Decimal("20.00"), Decimal("0.00"), True)

    jobs = requests.get(f"{base}/v1/connectors/{connector_id}/jobs", headers=auth, timeout=10).json()["items"]
    outcomes = [(j["kind"], j["status"], str(j["result"].get("status_code", ""))) for j in jobs]
    assert ("item_mod", "error", "3200") in outcomes and ("item_lookup", "done", "0") in outcomes
    assert outcomes.count(("item_mod", "done", "0")) == 2 and outcomes.count(("receive_payment_mod", "done", "0")) == 1
