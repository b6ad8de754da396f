"""The storage contract: both adapters (memory, dynamo) must pass every test here unchanged."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from infra.dynamo_table import create_table_arguments
from qbsync import aws
from qbsync.clock import iso
from qbsync.errors import AlreadyExists, BadRequest, ConcurrentModification, NotFound
from qbsync.settings import Settings
from qbsync.store import keys
from qbsync.store.dynamo import DynamoStore
from qbsync.store.factory import get_store, reset_store, set_store
from qbsync.store.memory import MemoryStore
from qbsync.store.ports import ApiKey, Store, Tenant

R = TypeVar("R")
THREADS = 8
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: int) -> str:
    return iso(T0 + timedelta(seconds=seconds))


def make_tenant(tenant_id: str = "t1", *, created: int = 0, **changes: Any) -> Tenant:
    tenant = Tenant(
        tenant_id=tenant_id,
        name=f"Tenant {tenant_id}",
        status="active",
        settings={"currency": "USD", "rate": 0.25, "nested": {"n": 3, "flags": [True, None]}},
        created_at=at(created),
        updated_at=at(created),
    )
    return replace(tenant, **changes)


def make_key(key_id: str = "k1", tenant_id: str = "t1") -> ApiKey:
    return ApiKey(key_id=key_id, tenant_id=tenant_id, secret_hash=f"scrypt$salt${key_id}", created_at=at(0))


def run_concurrently(fn: Callable[[int], R], n: int = THREADS) -> list[R | Exception]:
    """Run ``fn(0..n-1)`` on ``n`` threads released together; return results or the exceptions raised."""
    barrier = threading.Barrier(n)

    def call(i: int) -> R | Exception:
        barrier.wait()
        try:
            return fn(i)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n)))


# --- tenants and API keys ------------------------------------------------------------------------------------------


def test_create_and_get_tenant_and_key(store: Store) -> None:
    tenant = make_tenant()
    store.tenants.create(tenant, make_key())

    got = store.tenants.get("t1")
    assert got == tenant
    assert got is not None and got.version == 1 and got.is_active
    assert isinstance(got.settings["rate"], float) and isinstance(got.settings["nested"]["n"], int)
    assert store.tenants.get_api_key("k1") == make_key()
    assert store.tenants.get("missing") is None
    assert store.tenants.get_api_key("missing") is None


def test_returned_records_are_copies(store: Store) -> None:
    store.tenants.create(make_tenant(), make_key())
    got = store.tenants.get("t1")
    assert got is not None
    got.settings["currency"] = "EUR"
    got.name = "changed"
    again = store.tenants.get("t1")
    assert again is not None and again.settings["currency"] == "USD" and again.name == "Tenant t1"


def test_duplicate_tenant_id_writes_nothing(store: Store) -> None:
    store.tenants.create(make_tenant(), make_key("k1"))
    with pytest.raises(AlreadyExists):
        store.tenants.create(make_tenant(name="Other"), make_key("k2"))
    assert store.tenants.get_api_key("k2") is None  # the failed create's key was not written
    got = store.tenants.get("t1")
    assert got is not None and got.name == "Tenant t1"


def test_duplicate_api_key_id_writes_nothing(store: Store) -> None:
    store.tenants.create(make_tenant("t1"), make_key("k1", "t1"))
    with pytest.raises(AlreadyExists):
        store.tenants.create(make_tenant("t2"), make_key("k1", "t2"))
    assert store.tenants.get("t2") is None
    key = store.tenants.get_api_key("k1")
    assert key is not None and key.tenant_id == "t1"


def test_create_rejects_key_of_another_tenant(store: Store) -> None:
    with pytest.raises(ValueError):
        store.tenants.create(make_tenant("t1"), make_key("k1", "t2"))
    assert store.tenants.get("t1") is None


def test_update_bumps_version_and_keeps_identity(store: Store) -> None:
    store.tenants.create(make_tenant(), make_key())
    current = store.tenants.get("t1")
    assert current is not None
    changed = replace(
        current, name="Renamed", status="inactive", settings={"x": 1.5}, updated_at=at(60), created_at=at(999)
    )

    saved = store.tenants.update(changed)

    assert saved.version == 2
    assert (saved.name, saved.status, saved.settings, saved.updated_at) == ("Renamed", "inactive", {"x": 1.5}, at(60))
    assert saved.created_at == at(0)  # creation time is not updatable
    assert store.tenants.get("t1") == saved
    assert store.tenants.update(replace(saved, name="Again")).version == 3


def test_update_with_stale_version_conflicts(store: Store) -> None:
    store.tenants.create(make_tenant(), make_key())
    first = store.tenants.get("t1")
    assert first is not None
    store.tenants.update(replace(first, name="A"))
    with pytest.raises(ConcurrentModification):
        store.tenants.update(replace(first, name="B"))
    got = store.tenants.get("t1")
    assert got is not None and got.name == "A" and got.version == 2


def test_update_missing_tenant_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.tenants.update(make_tenant("ghost"))
    assert store.tenants.get("ghost") is None


def test_list_pages_oldest_first(store: Store) -> None:
    # Created out of order, with two tenants in the same millisecond (ties broken by id).
    created = {"t3": 30, "t1": 10, "t6": 60, "t2": 20, "t5": 50, "t4": 40, "t0": 10}
    for i, (tenant_id, seconds) in enumerate(created.items()):
        store.tenants.create(make_tenant(tenant_id, created=seconds), make_key(f"k{i}", tenant_id))

    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = store.tenants.list(limit=3, cursor=cursor)
        pages.append([t.tenant_id for t in page.items])
        cursor = page.cursor
        if cursor is None:
            break

    assert pages == [["t0", "t1", "t2"], ["t3", "t4", "t5"], ["t6"]]


def test_list_cursor_only_when_more_items(store: Store) -> None:
    assert store.tenants.list().items == [] and store.tenants.list().cursor is None
    for i in range(3):
        store.tenants.create(make_tenant(f"t{i}", created=i), make_key(f"k{i}", f"t{i}"))
    page = store.tenants.list(limit=3)
    assert len(page.items) == 3 and page.cursor is None
    first = store.tenants.list(limit=2)
    assert first.cursor is not None
    rest = store.tenants.list(limit=2, cursor=first.cursor)
    assert [t.tenant_id for t in rest.items] == ["t2"] and rest.cursor is None


@pytest.mark.parametrize("cursor", ["not base64 !!", "e30", keys.encode_cursor({"PK": "x"}), "W10"])
def test_list_rejects_bad_cursor(store: Store, cursor: str) -> None:
    with pytest.raises(BadRequest):
        store.tenants.list(cursor=cursor)


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_list_rejects_bad_limit(store: Store, limit: int) -> None:
    with pytest.raises(BadRequest):
        store.tenants.list(limit=limit)


def test_add_api_key(store: Store) -> None:
    store.tenants.create(make_tenant(), make_key("k1"))
    store.tenants.add_api_key(make_key("k2"))
    assert store.tenants.get_api_key("k2") == make_key("k2")
    with pytest.raises(AlreadyExists):
        store.tenants.add_api_key(make_key("k2"))


def test_add_api_key_for_missing_tenant_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.tenants.add_api_key(make_key("k9", "ghost"))
    assert store.tenants.get_api_key("k9") is None


def test_revoke_api_key(store: Store) -> None:
    store.tenants.create(make_tenant(), make_key("k1"))
    store.tenants.revoke_api_key("k1")
    key = store.tenants.get_api_key("k1")
    assert key is not None and key.revoked and key.secret_hash == make_key("k1").secret_hash
    store.tenants.revoke_api_key("k1")  # idempotent
    with pytest.raises(NotFound):
        store.tenants.revoke_api_key("missing")


# --- schedule runs -------------------------------------------------------------------------------------------------


def test_schedule_runs_count_and_outcome(store: Store) -> None:
    assert store.schedule_runs.get("reconciler") is None
    first = store.schedule_runs.record_start("reconciler", at(0))
    assert (first.name, first.runs, first.last_started_at, first.last_finished_at) == ("reconciler", 1, at(0), None)
    assert first.last_outcome == {}

    store.schedule_runs.record_finish("reconciler", at(5), {"ok": True, "took": 4.5})
    second = store.schedule_runs.record_start("reconciler", at(60))
    assert second.runs == 2 and second.last_started_at == at(60)
    assert second.last_finished_at == at(5) and second.last_outcome == {"ok": True, "took": 4.5}
    assert store.schedule_runs.get("reconciler") == second
    assert store.schedule_runs.get("other") is None


def test_schedule_finish_without_start_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.schedule_runs.record_finish("never", at(0), {})


# --- claims --------------------------------------------------------------------------------------------------------


def test_claims(store: Store) -> None:
    claims = store.claims
    assert claims.owner_of("qbwc-user", "alice") is None
    assert claims.claim("qbwc-user", "alice", "conn-1") is True
    assert claims.claim("qbwc-user", "alice", "conn-1") is True  # same owner: still holds it
    assert claims.claim("qbwc-user", "alice", "conn-2") is False
    assert claims.owner_of("qbwc-user", "alice") == "conn-1"
    assert claims.claim("other-scope", "alice", "conn-2") is True  # scopes are independent

    claims.release("qbwc-user", "alice", "conn-2")  # not the owner: no effect
    assert claims.owner_of("qbwc-user", "alice") == "conn-1"
    claims.release("qbwc-user", "alice", "conn-1")
    assert claims.owner_of("qbwc-user", "alice") is None
    claims.release("qbwc-user", "alice", "conn-1")  # idempotent
    assert claims.claim("qbwc-user", "alice", "conn-2") is True


def test_claim_values_may_contain_separators(store: Store) -> None:
    assert store.claims.claim("s", "a#b", "o1") is True
    assert store.claims.owner_of("s", "a") is None
    with pytest.raises(ValueError):
        store.claims.claim("s#a", "b", "o2")


# --- concurrency ---------------------------------------------------------------------------------------------------


def test_concurrent_updates_from_same_version_one_wins(store: Store) -> None:
    store.tenants.create(make_tenant(), make_key())
    read = store.tenants.get("t1")
    assert read is not None

    results = run_concurrently(lambda i: store.tenants.update(replace(read, name=f"writer-{i}")))

    winners = [r for r in results if isinstance(r, Tenant)]
    losers = [r for r in results if isinstance(r, ConcurrentModification)]
    assert len(winners) == 1 and len(losers) == THREADS - 1, results
    final = store.tenants.get("t1")
    assert final is not None and final.version == 2 and final.name == winners[0].name


def test_concurrent_claims_one_winner(store: Store) -> None:
    results = run_concurrently(lambda i: store.claims.claim("qbwc-user", "bob", f"owner-{i}"))

    assert sorted(results, key=str) == [False] * (THREADS - 1) + [True], results
    winner = f"owner-{results.index(True)}"
    assert store.claims.owner_of("qbwc-user", "bob") == winner


def test_concurrent_record_start_counts_every_run(store: Store) -> None:
    results = run_concurrently(lambda i: store.schedule_runs.record_start("sweeper", at(i)))

    assert not [r for r in results if isinstance(r, Exception)], results
    run = store.schedule_runs.get("sweeper")
    assert run is not None and run.runs == THREADS
    assert sorted(r.runs for r in results if not isinstance(r, Exception)) == list(range(1, THREADS + 1))


# --- wiring (not part of the port contract) ------------------------------------------------------------------------


def test_table_is_created_from_template(store: Store, settings: Settings) -> None:
    if not isinstance(store, DynamoStore):
        pytest.skip("DynamoDB only")
    client = aws.client("dynamodb", settings)
    table = client.describe_table(TableName=settings.table_name)["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"PK": "HASH", "SK": "RANGE"}
    assert [g["IndexName"] for g in table["GlobalSecondaryIndexes"]] == [keys.GSI1]
    ttl = client.describe_time_to_live(TableName=settings.table_name)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == keys.TTL_ATTRIBUTE and ttl["TimeToLiveStatus"] == "ENABLED"
    assert create_table_arguments("x")["BillingMode"] == "PAY_PER_REQUEST"


def test_factory_caches_and_resets(settings: Settings) -> None:
    first = get_store(settings)
    assert isinstance(first, DynamoStore) and get_store(settings) is first
    assert get_store(settings.with_overrides(table_name="other")) is not first
    fake = MemoryStore()
    set_store(fake)
    assert get_store(settings) is fake
    reset_store()
    assert get_store(settings) is not first and isinstance(get_store(settings), DynamoStore)
