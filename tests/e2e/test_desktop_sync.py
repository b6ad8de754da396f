"""Issue 5, QuickBooks Desktop: matching against what the company file already holds (T1, T2), through the local
stack and `qbsync wc-sim`. The file's customers and items are read at the first Web Connector run (iterators); each
match-issue type is raised by a crafted record, and resolving it sends the waiting invoice with no other action."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.fake_qbd import FakeCompany
from infra.local_stack import LocalStack
from tests.e2e.helpers import run_wc_sim

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"


def seed(company: FakeCompany, body: str) -> None:
    answer = company.process(
        '<?xml version="1.0"?><?qbxml version="13.0"?><QBXML>'
        f'<QBXMLMsgsRq onError="stopOnError">{body}</QBXMLMsgsRq></QBXML>'
    )
    assert 'statusCode="0"' in answer and 'statusCode="3' not in answer, answer


def customer_add(name: str, email: str | None = None) -> str:
    email_el = f"<Email>{email}</Email>" if email else ""
    return f"<CustomerAddRq><CustomerAdd><Name>{name}</Name>{email_el}</CustomerAdd></CustomerAddRq>"


def item_add(name: str, part_number: str | None = None) -> str:
    part = f"<ManufacturerPartNumber>{part_number}</ManufacturerPartNumber>" if part_number else ""
    return (
        f"<ItemNonInventoryAddRq><ItemNonInventoryAdd><Name>{name}</Name>{part}<SalesOrPurchase><Price>20.00</Price>"
        "<AccountRef><FullName>Services</FullName></AccountRef></SalesOrPurchase></ItemNonInventoryAdd>"
        "</ItemNonInventoryAddRq>"
    )


def run_web_connector(base: str, username: str, state_file: Path) -> str:
    output = run_wc_sim(base, username, PASSWORD, state_file)
    assert "xsd: all requests valid" in output
    return output


def wait_for(predicate: Callable[[], bool], what: Callable[[], Any], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.3)
    assert predicate(), what()


def test_desktop_matches_by_email_part_number_and_name_and_resolving_issues_releases_invoices(
    stack: LocalStack, tmp_path: Path
) -> None:
    base = stack.base_url
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    key = requests.post(f"{base}/v1/tenants", json={"name": "Match Desk"}, headers=admin, timeout=10).json()["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    settings = {"income_account": "Services", "auto_create_customers": False, "auto_create_items": False}
    assert requests.patch(f"{base}/v1/tenant/settings", json=settings, headers=auth, timeout=10).status_code == 200
    assert (
        requests.post(
            f"{base}/v1/connectors",
            json={"name": "Match", "username": "match-desk", "password": PASSWORD},
            headers=auth,
            timeout=30,
        ).status_code
        == 201
    )

    # The company file as the user has it: two customers share an e-mail, one name is taken.
    company = FakeCompany()
    seed(
        company,
        customer_add("Known Customer", "known@example.com")
        + customer_add("Shared One", "shared@example.com")
        + customer_add("Shared Two", "shared@example.com")
        + customer_add("Taken Name", "someone.else@example.com")
        + item_add("Gadget Pro", "GP-1")
        + item_add("SVC-9"),
    )
    ids = {c.name: c.list_id for c in company.customers()} | {i.name: i.list_id for i in company.items()}
    state_file = tmp_path / "match.json"
    state_file.write_text(company.to_json())

    records = {
        "customers": [
            {"id": "c-known", "name": "Known (source name)", "email": "KNOWN@example.com"},
            {"id": "c-shared", "name": "Shared", "email": "shared@example.com"},
            {"id": "c-noemail", "name": "No Email"},
            {"id": "c-new", "name": "Taken Name", "email": "new@example.com"},
        ],
        "items": [
            {"id": "i-gadget", "name": "Gadget", "sku": "gp-1", "price": "20.00"},  # by part number
            {"id": "i-svc", "name": "Service nine", "sku": "SVC-9", "price": "20.00"},  # by name
            {"id": "i-nosku", "name": "No SKU", "price": "20.00"},
            {"id": "i-unknown", "name": "Unknown", "sku": "NOPE", "price": "20.00"},
        ],
        "invoices": [
            {
                "id": f"inv-{customer}",
                "customer_id": customer,
                "date": "2026-11-10",
                "doc_number": f"M-{n}",
                "lines": [{"item_id": item, "quantity": "2", "rate": "20.00"}],
                "total": "40.00",
            }
            for n, (customer, item) in enumerate(
                [("c-known", "i-gadget"), ("c-shared", "i-svc"), ("c-new", "i-gadget")]
            )
        ],
    }
    for kind, body in records.items():
        assert requests.post(f"{base}/v1/{kind}", json=body, headers=auth, timeout=30).status_code == 202

    def state(kind: str, record_id: str) -> dict[str, Any]:
        return dict(requests.get(f"{base}/v1/{kind}/{record_id}", headers=auth, timeout=10).json())

    def issues() -> dict[str, dict[str, Any]]:
        found = requests.get(f"{base}/v1/match-issues", headers=auth, timeout=10).json()["items"]
        return {issue["record_id"]: issue for issue in found}

    everything = [(kind, r["id"]) for kind in ("customers", "items") for r in records[kind]]
    wait_for(
        lambda: all(state(k, i)["state"] == "waiting" for k, i in everything),
        lambda: [state(k, i) for k, i in everything],
    )
    run_web_connector(base, "match-desk", state_file)  # reads the file's lists; matching happens then

    expected = {
        "c-shared": "customer_email_shared",
        "c-noemail": "customer_missing_email",
        "c-new": "customer_not_found",
        "i-nosku": "item_missing_sku",
        "i-unknown": "item_not_found",
    }
    wait_for(lambda: {k: v["code"] for k, v in issues().items()} == expected, issues)
    shared = issues()["c-shared"]
    assert sorted(c["quickbooks_id"] for c in shared["candidates"]) == sorted([ids["Shared One"], ids["Shared Two"]])
    assert state("customers", "c-known")["quickbooks_id"] == ids["Known Customer"]
    assert state("items", "i-gadget")["quickbooks_id"] == ids["Gadget Pro"]
    assert state("items", "i-svc")["quickbooks_id"] == ids["SVC-9"]

    # Resolving the shared e-mail picks one; auto-create then makes "c-new" meet the name already in the file.
    picked = requests.post(
        f"{base}/v1/match-issues/customers:c-shared/resolve",
        json={"quickbooks_id": ids["Shared Two"]},
        headers=auth,
        timeout=10,
    )
    assert picked.status_code == 200 and picked.json()["quickbooks_id"] == ids["Shared Two"]
    settings["auto_create_customers"] = True
    assert requests.patch(f"{base}/v1/tenant/settings", json=settings, headers=auth, timeout=10).status_code == 200
    assert requests.post(f"{base}/v1/records/customers/c-new/resync", headers=auth, timeout=10).status_code == 202
    wait_for(lambda: issues().get("c-new", {}).get("code") == "customer_duplicate_name", issues)
    assert [c["quickbooks_id"] for c in issues()["c-new"]["candidates"]] == [ids["Taken Name"]]
    linked = requests.post(
        f"{base}/v1/match-issues/customers:c-new/resolve",
        json={"quickbooks_id": ids["Taken Name"]},
        headers=auth,
        timeout=10,
    )
    assert linked.status_code == 200

    invoices = [r["id"] for r in records["invoices"]]
    for _ in range(3):
        if all(state("invoices", i)["state"] == "synced" for i in invoices):
            break
        wait_for(
            lambda: all(state("invoices", i)["state"] in ("pending", "synced") for i in invoices),
            lambda: [state("invoices", i) for i in invoices],
        )
        run_web_connector(base, "match-desk", state_file)
    wait_for(
        lambda: all(state("invoices", i)["state"] == "synced" for i in invoices),
        lambda: [state("invoices", i) for i in invoices],
    )

    company = FakeCompany.from_json(state_file.read_text())
    assert company.count("Customer") == 4 and company.count("Invoice") == 3  # nothing created, nothing twice
    by_number = {n: company.find_invoice(f"M-{n}") for n in range(3)}
    assert {n: inv.customer_id for n, inv in by_number.items() if inv} == {
        0: ids["Known Customer"],
        1: ids["Shared Two"],
        2: ids["Taken Name"],
    }
    assert set(issues()) == {"c-noemail", "i-nosku", "i-unknown"}


@pytest.mark.slow
def test_volume_to_quickbooks_desktop(stack: LocalStack, tmp_path: Path) -> None:
    """Issue 5's Desktop acceptance run at full volume, the same data as the QBO run (discounts, sales tax, classes,
    terms): every record exactly once in the company file, every balance right, every record synced."""
    from decimal import Decimal

    from tests.e2e.test_local_stack import all_states, post_all, volume_data

    base = stack.base_url
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    key = requests.post(f"{base}/v1/tenants", json={"name": "Volume Desk"}, headers=admin, timeout=10).json()
    auth = {"Authorization": f"Bearer {key['api_key']}"}
    settings = {
        "auto_create_customers": True,
        "auto_create_items": True,
        "income_account": "Services",
        "default_terms": "Net 30",
        "use_classes": True,
        "sales_tax": {"enabled": True, "default_tax_item": "State Tax"},
        "discount_item": "Discount",
    }
    assert requests.patch(f"{base}/v1/tenant/settings", json=settings, headers=auth, timeout=10).status_code == 200
    created = requests.post(
        f"{base}/v1/connectors",
        json={"name": "Volume", "username": "volume-desk", "password": PASSWORD},
        headers=auth,
        timeout=30,
    )
    assert created.status_code == 201

    company = FakeCompany()  # as the user set it up: classes, a discount item, a 7.5 % sales tax item
    seed(
        company,
        "".join(f"<ClassAddRq><ClassAdd><Name>{n}</Name></ClassAdd></ClassAddRq>" for n in ("Consulting", "Hardware")),
    )
    company.add_discount_item("Discount", tax_code="Non", account="Services")
    company.add_sales_tax_item("State Tax", "7.5")
    state_file = tmp_path / "volume.json"
    state_file.write_text(company.to_json())

    data = volume_data()
    post_all(base, auth, data)
    post_all(base, auth, data)  # everything twice: the second time is a no-op
    last_payment = data["payments"][-1]["id"]

    def done() -> bool:
        """Everything synced. The last payment is a cheap first check, not the answer: a payment released when its
        invoice reached QuickBooks is queued behind later ones, so it can still be on its way."""
        last = requests.get(f"{base}/v1/payments/{last_payment}", headers=auth, timeout=10).json()
        return last["state"] == "synced" and all(s["state"] == "synced" for s in all_states(base, auth, data).values())

    # Scheduled runs until everything is in (bounded by count and time): the first reads the file's lists, each
    # later one sends what the worker has queued since; dependents follow their customers, items and invoices.
    deadline = time.monotonic() + 3600  # the embedded AWS answers in milliseconds per call, not microseconds
    for _ in range(600):
        if done() or time.monotonic() > deadline:
            break
        run_web_connector(base, "volume-desk", state_file)
        time.sleep(3)
    states = all_states(base, auth, data)
    unsynced = [s for s in states.values() if s["state"] != "synced"]
    assert unsynced == [], (len(unsynced), unsynced[:5])

    company = FakeCompany.from_json(state_file.read_text())
    assert company.count("Customer") == 200 and company.count("Invoice") == 1000
    assert company.count("ReceivePayment") == 400
    assert len([i for i in company.items() if i.name.startswith("Volume Item")]) == 50
    for index, invoice in enumerate(data["invoices"]):
        qb = company.find_invoice(invoice["doc_number"])
        assert qb is not None and qb.txn_id == states[invoice["id"]]["quickbooks_id"]
        total = qb.subtotal + qb.sales_tax_total
        assert total == Decimal(invoice["total"]), (invoice, total)
        assert qb.balance_remaining == (Decimal(0) if index < 400 else Decimal(invoice["total"]))
