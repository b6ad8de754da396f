"""The connector storage contract, on both adapters: unique usernames, the first connector is the default,
optimistic updates, lookups by username across tenants."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qbsync.errors import AlreadyExists, ConcurrentModification, NotFound
from qbsync.store.ports import Connector, Store
from tests.contract.test_store_contract import at, run_concurrently


def make_connector(
    connector_id: str, tenant_id: str = "t1", username: str | None = None, created: int = 0
) -> Connector:
    return Connector(
        connector_id=connector_id,
        tenant_id=tenant_id,
        name=f"Connector {connector_id}",
        username=username or f"user-{connector_id}",
        password_hash="scrypt$hash",
        owner_id="{11111111-2222-3333-4444-555555555555}",
        file_id="{66666666-7777-8888-9999-000000000000}",
        run_every_minutes=15,
        enabled_transfers=["customers", "invoices"],
        created_at=at(created),
        updated_at=at(created),
    )


def test_first_connector_is_the_default_and_others_are_not(store: Store) -> None:
    first = store.connectors.create(make_connector("c1", created=1))
    second = store.connectors.create(make_connector("c2", created=2))
    other_tenant = store.connectors.create(make_connector("c3", tenant_id="t2", created=3))
    assert (first.is_default, second.is_default, other_tenant.is_default) == (True, False, True)
    assert [c.connector_id for c in store.connectors.list("t1")] == ["c1", "c2"]
    assert [c.connector_id for c in store.connectors.list("t2")] == ["c3"]
    assert store.connectors.get("t1", "c1") == first
    assert store.connectors.get("t2", "c1") is None  # another tenant's id finds nothing


def test_usernames_are_unique_across_tenants_case_insensitively(store: Store) -> None:
    store.connectors.create(make_connector("c1", username="Acme-QB"))
    with pytest.raises(AlreadyExists):
        store.connectors.create(make_connector("c2", tenant_id="t2", username="acme-qb"))
    assert store.connectors.list("t2") == []  # nothing half-written
    found = store.connectors.find_by_username("ACME-QB")
    assert found is not None and found.connector_id == "c1" and found.tenant_id == "t1"
    assert store.connectors.find_by_username("nobody") is None


def test_update_is_optimistic_and_keeps_username_and_default(store: Store) -> None:
    created = store.connectors.create(make_connector("c1"))
    changed = replace(created, name="Renamed", username="sneaky", is_default=False, failed_logins=3)
    saved = store.connectors.update(changed)
    assert saved.version == created.version + 1
    assert (saved.name, saved.username, saved.is_default, saved.failed_logins) == ("Renamed", "user-c1", True, 3)
    assert store.connectors.get("t1", "c1") == saved
    with pytest.raises(ConcurrentModification):
        store.connectors.update(replace(created, name="stale"))
    with pytest.raises(NotFound):
        store.connectors.update(make_connector("missing"))


def test_conversations_and_nested_fields_round_trip(store: Store) -> None:
    created = store.connectors.create(make_connector("c1"))
    conversation = {"status": "success", "started_at": at(5), "sent": {"customers": 3}, "errors": []}
    saved = store.connectors.update(replace(created, conversations=[conversation], company_file=r"C:\Co\a.qbw"))
    again = store.connectors.get("t1", "c1")
    assert again is not None and again.conversations == [conversation] and again.company_file == r"C:\Co\a.qbw"
    assert again == saved


def test_concurrent_creates_elect_exactly_one_default(store: Store) -> None:
    results = run_concurrently(lambda i: store.connectors.create(make_connector(f"c{i}", created=i)))
    created = [r for r in results if isinstance(r, Connector)]
    assert len(created) == len(results)
    assert sum(1 for c in created if c.is_default) == 1
    assert sum(1 for c in store.connectors.list("t1") if c.is_default) == 1


def test_concurrent_updates_from_one_read_let_exactly_one_win(store: Store) -> None:
    created = store.connectors.create(make_connector("c1"))
    results = run_concurrently(lambda i: store.connectors.update(replace(created, failed_logins=i + 1)))
    assert sum(1 for r in results if isinstance(r, Connector)) == 1
    assert all(isinstance(r, ConcurrentModification) for r in results if not isinstance(r, Connector))


def test_organizations_route_to_a_connector_until_unmapped(store: Store) -> None:
    store.connectors.create(make_connector("c1"))
    store.connectors.create(make_connector("c2", created=1))
    assert store.connectors.organization_connector("t1", "org-7") is None
    store.connectors.map_organization("t1", "org-7", "c2")
    assert store.connectors.organization_connector("t1", "org-7") == "c2"
    assert store.connectors.organization_connector("t2", "org-7") is None  # per tenant
    assert [c.connector_id for c in store.connectors.list("t1")] == ["c1", "c2"]  # routes are not connectors
    store.connectors.map_organization("t1", "org-7", None)
    assert store.connectors.organization_connector("t1", "org-7") is None
