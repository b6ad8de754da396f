"""Sync records and the transfer history, on both adapters."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qbsync.errors import AlreadyExists, ConcurrentModification
from qbsync.store.ports import Store, SyncRecord, TransferRecord
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
