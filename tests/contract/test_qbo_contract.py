"""QuickBooks Online connection and OAuth-state storage, on both adapters."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qbsync.errors import AlreadyExists, ConcurrentModification, NotFound
from qbsync.store.ports import QboConnection, Store
from tests.contract.test_store_contract import at, run_concurrently


def make_connection(tenant_id: str = "t1") -> QboConnection:
    return QboConnection(
        tenant_id=tenant_id,
        realm_id="9130350000000001",
        status="connecting",
        company_name="Sandbox Co",
        tokens="Y2lwaGVydGV4dA==",
        access_expires_at=2_000_000_000,
        refresh_expires_at=2_100_000_000,
        connected_at=at(0),
        updated_at=at(0),
    )


def test_connections_create_once_and_save_optimistically(store: Store) -> None:
    created = store.qbo.create(make_connection())
    with pytest.raises(AlreadyExists):
        store.qbo.create(make_connection())
    assert store.qbo.get("t1") == created and store.qbo.get("t2") is None
    saved = store.qbo.save(replace(created, status="connected", warnings_sent=["hard_expiry_30d"]))
    assert store.qbo.get("t1") == saved and saved.version == 2
    with pytest.raises(ConcurrentModification):
        store.qbo.save(replace(created, status="needs_reauth"))
    with pytest.raises(NotFound):
        store.qbo.save(make_connection("t9"))


def test_only_one_of_many_concurrent_lease_takers_wins(store: Store) -> None:
    created = store.qbo.create(make_connection())
    results = run_concurrently(lambda i: store.qbo.save(replace(created, lease_owner=f"w{i}", lease_until=99)))
    winners = [r for r in results if isinstance(r, QboConnection)]
    assert len(winners) == 1 and store.qbo.get("t1").lease_owner == winners[0].lease_owner  # type: ignore[union-attr]


def test_list_all_pages_every_connection(store: Store) -> None:
    for i in range(5):
        store.qbo.create(make_connection(f"t{i}"))
    seen, cursor = [], None
    for _ in range(10):
        page = store.qbo.list_all(limit=2, cursor=cursor)
        seen += [c.tenant_id for c in page.items]
        cursor = page.cursor
        if cursor is None:
            break
    assert seen == [f"t{i}" for i in range(5)]


def test_oauth_states_are_single_use_and_expire(store: Store) -> None:
    store.qbo.create_state("s1", "t1", expires_at=1_000)
    store.qbo.create_state("s2", "t1", expires_at=500)
    with pytest.raises(AlreadyExists):
        store.qbo.create_state("s1", "t2", expires_at=1_000)
    assert store.qbo.consume_state("s1", now=900) == "t1"
    assert store.qbo.consume_state("s1", now=900) is None  # used
    assert store.qbo.consume_state("s2", now=900) is None  # expired
    assert store.qbo.consume_state("nope", now=900) is None
