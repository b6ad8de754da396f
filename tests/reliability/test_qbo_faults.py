"""QuickBooks Online faults, through the whole pipeline (REST in, transfer queue, worker, the emulator). Each case
ends with the same audit: every accepted record is in QuickBooks exactly once and says ``synced`` with that
QuickBooks id — or, where nothing can succeed without a person, is visibly not synced and says why.

Redelivery, double posting and a worker killed after the QuickBooks write are in
tests/integration/test_sync_reliability.py; this suite adds the faults Intuit itself produces."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.world import Tenant, World

CUSTOMERS = [{"id": f"c{i}", "name": f"Faulty Customer {i}", "email": f"f{i}@example.com"} for i in range(6)]
ITEMS = [{"id": "svc", "name": "Faulty Support", "price": "25.00"}]
INVOICES = [
    {
        "id": f"inv{i}",
        "customer_id": f"c{i % 6}",
        "date": "2026-11-03",
        "doc_number": f"F-{i:03d}",
        "lines": [{"item_id": "svc", "quantity": "2", "rate": "25.00"}],
        "total": "50.00",
    }
    for i in range(8)
]
PAYMENTS = [
    {
        "id": f"pay{i}",
        "customer_id": f"c{i % 6}",
        "date": "2026-11-04",
        "amount": "50.00",
        "applied_to": [{"invoice_id": f"inv{i}", "amount": "50.00"}],
    }
    for i in range(3)
]
RECORDS = {"customers": CUSTOMERS, "items": ITEMS, "invoices": INVOICES, "payments": PAYMENTS}
ENTITY = {"customers": "Customer", "items": "Item", "invoices": "Invoice", "payments": "Payment"}


@pytest.fixture
def tenant(world: World) -> Tenant:
    return world.tenant("Faulty Co", auto_create_customers=True, auto_create_items=True, income_account="Services")


@pytest.fixture
def realm(world: World, tenant: Tenant) -> str:
    return world.connect_qbo(tenant, "Faulty Books")


def post_all(world: World, tenant: Tenant) -> None:
    for kind, body in RECORDS.items():
        world.ok("POST", f"/v1/{kind}", key=tenant.api_key, json_body=body)


def audit(world: World, tenant: Tenant, realm: str) -> dict[str, str]:
    """Every record synced with its own QuickBooks object, and QuickBooks holding exactly one per record."""
    company = world.emulator.company(realm)
    states: dict[str, str] = {}
    for kind, body in RECORDS.items():
        ids = Counter()
        for record in body:
            view = world.ok("GET", f"/v1/{kind}/{record['id']}", key=tenant.api_key)
            states[f"{kind}/{record['id']}"] = view["state"]
            if view["state"] == "synced":
                assert company.get(ENTITY[kind], view["quickbooks_id"]) is not None, view
                ids[view["quickbooks_id"]] += 1
        assert all(n == 1 for n in ids.values()), f"two {kind} share one QuickBooks object: {ids}"
    ours = {
        "Customer": sum(1 for c in company.entities["Customer"].values() if c["DisplayName"].startswith("Faulty")),
        "Item": sum(1 for i in company.entities["Item"].values() if i.get("Name") == "Faulty Support"),
        "Invoice": len(company.entities["Invoice"]),
        "Payment": len(company.entities["Payment"]),
    }
    synced = Counter(key.split("/")[0] for key, state in states.items() if state == "synced")
    assert ours == {ENTITY[kind]: synced[kind] for kind in RECORDS}, (ours, synced)
    return states


def all_synced(states: dict[str, str]) -> bool:
    return set(states.values()) == {"synced"}


def test_500_after_commit_is_retried_with_the_same_requestid_and_creates_nothing_twice(
    world: World, tenant: Tenant, realm: str
) -> None:
    world.emulator.faults.fail_after_commit_5xx = 9  # nine writes commit, then answer 500 / 503
    post_all(world, tenant)
    world.drain(redeliver=True)
    assert all_synced(audit(world, tenant, realm))
    company = world.emulator.company(realm)
    assert company.counts["injected_5xx"] == 9 and company.counts["replays"] >= 9
    assert world.sleeps and all(0 < s <= 20 for s in world.sleeps)  # backed off, within the cap


@pytest.mark.parametrize("status", [429, 503, 500])
def test_throttling_and_unavailability_are_retried_then_redelivered(
    world: World, tenant: Tenant, realm: str, status: int
) -> None:
    """A few faults are absorbed by the client's retries; a long run of them outlasts its budget, the message goes
    back to the queue (nothing recorded as failed) and is handled again later."""
    world.emulator.faults.fail_next = [status] * 3
    world.ok("POST", "/v1/customers", key=tenant.api_key, json_body=CUSTOMERS[:2])
    world.drain(redeliver=True)
    assert world.redelivered == 0 and len(world.sleeps) >= 3
    world.emulator.faults.fail_next = [status] * 12  # more than the client retries in one delivery
    post_all(world, tenant)
    world.drain(redeliver=True, max_receives=10)
    assert world.redelivered >= 1
    assert not world.emulator.faults.fail_next
    assert all_synced(audit(world, tenant, realm))
    failed = world.ok("GET", "/v1/transfers?status=failed", key=tenant.api_key)["items"]
    assert failed == []


def test_an_access_token_expiring_mid_batch_is_refreshed_once_and_the_batch_continues(
    world: World, tenant: Tenant, realm: str
) -> None:
    post_all(world, tenant)
    world.drain(stop_after=5)
    assert world.emulator.expire_access_tokens_now() >= 1  # the hour is up in the middle of the batch
    refreshes_before = sum(1 for r in world.emulator.token_requests if r["grant_type"] == "refresh_token")
    world.drain(redeliver=True)
    refreshes = [r for r in world.emulator.token_requests if r["grant_type"] == "refresh_token"]
    assert len(refreshes) - refreshes_before == 1 and refreshes[-1]["outcome"] == "ok"
    assert all_synced(audit(world, tenant, realm))
    assert world.ok("GET", "/v1/qbo/connection", key=tenant.api_key)["status"] == "connected"


def test_invalid_grant_pauses_the_work_visibly_and_a_reconnect_resumes_it_exactly_once(
    world: World, tenant: Tenant, realm: str
) -> None:
    post_all(world, tenant)
    world.drain(stop_after=4)
    world.emulator.expire_access_tokens_now()
    world.emulator.faults.invalid_grant_next_refresh = True  # the user disconnected the app at Intuit
    world.drain(redeliver=True)
    connection = world.ok("GET", "/v1/qbo/connection", key=tenant.api_key)
    assert connection["status"] == "needs_reauth" and connection["reconnect_url"] == "/v1/qbo/connect"
    [event] = world.events.of_type("connection.needs_reauth")
    assert event["detail"]["tenant_id"] == tenant.tenant_id
    paused = {key: state for key, state in audit(world, tenant, realm).items() if state != "synced"}
    assert paused, "nothing was paused"
    for key in paused:
        view = world.ok("GET", f"/v1/{key}", key=tenant.api_key)
        assert view["state"] == "waiting" and view["reason"]["code"] in ("qbo_needs_reauth", "waiting"), view
    # More records arrive while disconnected: accepted, waiting, not lost.
    world.ok("POST", "/v1/customers", key=tenant.api_key, json_body={"id": "late", "name": "Latecomer"})
    world.drain(redeliver=True)
    assert world.ok("GET", "/v1/customers/late", key=tenant.api_key)["state"] == "waiting"

    assert world.callback(world.authorize(tenant, realm)).status_code == 200  # the user reconnects
    world.drain(redeliver=True)
    states = audit(world, tenant, realm)
    assert all_synced(states), {k: v for k, v in states.items() if v != "synced"}
    assert world.ok("GET", "/v1/customers/late", key=tenant.api_key)["state"] == "synced"


def test_every_message_delivered_twice_under_faults_still_writes_once(world: World, tenant: Tenant, realm: str) -> None:
    world.emulator.faults.fail_after_commit_5xx = 4
    world.emulator.faults.fail_next = [429, 503]
    for kind, body in RECORDS.items():  # posted twice: the second is a no-op
        world.ok("POST", f"/v1/{kind}", key=tenant.api_key, json_body=body)
        world.ok("POST", f"/v1/{kind}", key=tenant.api_key, json_body=body)
    world.drain(deliveries=2, redeliver=True)
    assert all_synced(audit(world, tenant, realm))
