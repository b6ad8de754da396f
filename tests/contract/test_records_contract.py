"""Sync records and the transfer history, on both adapters."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qbsync.errors import AlreadyExists, ConcurrentModification
from qbsync.store.ports import MatchEntry, Store, SyncRecord, TransferRecord
from tests.contract.test_store_contract import at


def make_record(source_id: str, kind: str = "invoices", state: str = "pending") -> SyncRecord:
    return SyncRecord(
        tenant_id="t1",
        kind=kind,
        source_id=source_id,
        content_hash="h1",
        payload={"id": source_id, "total": "1.50"},
        state=state,
        created_at=at(0),
        updated_at=at(0),  # type: ignore[arg-type]
    )


def test_records_create_save_and_list_by_state(store: Store) -> None:
    for i in range(7):
        store.records.create(make_record(f"inv-{i}", state="waiting" if i % 2 else "pending"))
    store.records.create(make_record("c-1", kind="customers"))
    with pytest.raises(AlreadyExists):
        store.records.create(make_record("inv-0"))
    record = store.records.get("t1", "invoices", "inv-3")
    assert record is not None and record.payload == {"id": "inv-3", "total": "1.50"}
    saved = store.records.save(replace(record, state="synced", qb_id="145", reason=None))
    assert store.records.get("t1", "invoices", "inv-3") == saved
    with pytest.raises(ConcurrentModification):
        store.records.save(record)

    seen, cursor = [], None
    for _ in range(10):
        page = store.records.list("t1", "invoices", state="waiting", limit=1, cursor=cursor)
        seen += [r.source_id for r in page.items]
        cursor = page.cursor
        if cursor is None:
            break
    assert seen == ["inv-1", "inv-5"]  # inv-3 is synced now; customers are another kind
    assert [r.source_id for r in store.records.list("t1", "invoices", limit=100).items] == [
        f"inv-{i}" for i in range(7)
    ]
    assert store.records.list("t2", "invoices").items == []


def test_transfer_history_is_newest_first_and_pages(store: Store) -> None:
    for i in range(5):
        store.records.log(
            TransferRecord("t1", f"x{i}", "invoices", f"inv-{i}", "succeeded", at(i), action="create", qb_id=str(i))
        )
    store.records.log(TransferRecord("t2", "other", "invoices", "inv-9", "failed", at(9)))
    seen, cursor = [], None
    for _ in range(10):
        page = store.records.history("t1", limit=2, cursor=cursor)
        seen += [t.transfer_id for t in page.items]
        cursor = page.cursor
        if cursor is None:
            break
    assert seen == ["x4", "x3", "x2", "x1", "x0"]


def test_batched_reads_and_history_writes(store: Store) -> None:
    for i in range(130):  # more than one BatchGetItem (100 keys)
        store.records.create(make_record(f"b-{i:03d}"))
    wanted = [f"b-{i:03d}" for i in range(0, 130, 3)] + ["unknown", "b-000"]
    found = store.records.get_many("t1", "invoices", wanted)
    assert set(found) == {f"b-{i:03d}" for i in range(0, 130, 3)}
    assert found["b-003"].payload == {"id": "b-003", "total": "1.50"}
    store.records.log_many(  # more than one BatchWriteItem (25 writes)
        [TransferRecord("t1", f"m{i:02d}", "invoices", f"b-{i:03d}", "queued", at(i)) for i in range(30)]
    )
    assert len(store.records.history("t1", limit=100).items) == 30


def test_wait_edges_name_who_waits_for_a_record_and_nothing_else(store: Store) -> None:
    store.records.add_waits("t1", ("invoices", "inv-1"), [("customers", "c#1"), ("items", "i-1")])
    store.records.add_waits("t1", ("invoices", "inv-2"), [("customers", "c#1"), ("customers", "c#1")])
    store.records.add_waits("t1", ("payments", "p-1"), [("customers", "c")])  # "c" is a prefix of "c#1"
    store.records.add_waits("t2", ("invoices", "inv-9"), [("customers", "c#1")])  # another tenant
    many = [("invoices", f"bulk-{i}") for i in range(60)]  # more than one batch write and one query page
    for waiter in many:
        store.records.add_waits("t1", waiter, [("items", "i-2")])

    assert sorted(store.records.waiters("t1", ("customers", "c#1"))) == [("invoices", "inv-1"), ("invoices", "inv-2")]
    assert store.records.waiters("t1", ("customers", "c")) == [("payments", "p-1")]
    assert store.records.waiters("t1", ("customers", "c#")) == []
    assert sorted(store.records.waiters("t1", ("items", "i-2"))) == sorted(many)

    store.records.remove_waits("t1", ("customers", "c#1"), [("invoices", "inv-1")])
    assert store.records.waiters("t1", ("customers", "c#1")) == [("invoices", "inv-2")]
    assert store.records.waiters("t1", ("items", "i-1")) == [("invoices", "inv-1")]  # its other wait stays
    assert store.records.waiters("t2", ("customers", "c#1")) == [("invoices", "inv-9")]


def test_match_index_finds_exact_keys_per_scope_and_keeps_one_import_status(store: Store) -> None:
    entries = [
        MatchEntry("customer", "email", "ann@example.com", "80000001-1", "Ann"),
        MatchEntry("customer", "email", "ann@example.com", "80000002-1", "Ann Two"),
        MatchEntry("customer", "email", "ann@example.com#x", "80000003-1", "Not Ann"),
        MatchEntry("item", "name", "widget", "80000004-1", "Widget"),
        *[MatchEntry("customer", "email", f"bulk{i}@example.com", f"9{i:07d}-1", f"Bulk {i}") for i in range(60)],
    ]
    store.matches.put_many("conn-1", entries)
    store.matches.put_many("conn-1", entries[:1])  # idempotent
    store.matches.put_many("conn-2", [MatchEntry("item", "name", "widget", "X-1", "Other file's widget")])

    found = store.matches.find("conn-1", "customer", "email", "ann@example.com")
    assert sorted(e.qb_id for e in found) == ["80000001-1", "80000002-1"]
    assert store.matches.find("conn-1", "item", "name", "widget") == [entries[3]]
    assert store.matches.find("conn-1", "item", "mpn", "widget") == []
    assert store.matches.find("conn-1", "customer", "email", "bulk59@example.com")[0].name == "Bulk 59"
    assert [e.name for e in store.matches.find("conn-2", "item", "name", "widget")] == ["Other file's widget"]

    assert store.matches.status("conn-1") is None
    assert store.matches.save_status("conn-1", {"state": "importing"}, create_only=True) is True
    assert store.matches.save_status("conn-1", {"state": "importing"}, create_only=True) is False
    store.matches.save_status("conn-1", {"state": "ready", "customers": 62})
    assert store.matches.status("conn-1") == {"state": "ready", "customers": 62}
