"""The reconciler's state (webhook event dedupe with TTL, per-company watermarks) on both adapters."""

from __future__ import annotations

from dataclasses import replace

from qbsync.store.ports import Store
from tests.contract.test_records_contract import make_record
from tests.contract.test_store_contract import run_concurrently


def test_an_event_is_claimed_once_until_it_expires(store: Store) -> None:
    assert store.reconcile.claim_event("e1", now=1000, expires_at=2000) is True
    assert store.reconcile.claim_event("e1", now=1500, expires_at=2500) is False  # replayed
    assert store.reconcile.claim_event("e2", now=1500, expires_at=2500) is True
    # TTL deletes lazily: an expired claim still stored no longer blocks.
    assert store.reconcile.claim_event("e1", now=2001, expires_at=3000) is True
    assert store.reconcile.claim_event("e1", now=2002, expires_at=3000) is False
    store.reconcile.release_event("e1")
    assert store.reconcile.claim_event("e1", now=2003, expires_at=3000) is True
    store.reconcile.release_event("never-claimed")  # no error


def test_concurrent_claims_of_one_event_have_one_winner(store: Store) -> None:
    results = run_concurrently(lambda _: store.reconcile.claim_event("same", now=10, expires_at=100))
    assert results.count(True) == 1 and results.count(False) == len(results) - 1


def test_watermarks_per_tenant_and_company(store: Store) -> None:
    assert store.reconcile.get("t1", "qbo:123") is None
    store.reconcile.put("t1", "qbo:123", {"since": "2026-11-01T00:00:00Z", "runs": 1})
    store.reconcile.put("t1", "qbd:c1", {"since": "2026-10-01T00:00:00Z"})
    store.reconcile.put("t2", "qbo:123", {"since": "x"})
    assert store.reconcile.get("t1", "qbo:123") == {"since": "2026-11-01T00:00:00Z", "runs": 1}
    store.reconcile.put("t1", "qbo:123", {"since": "2026-11-02T00:00:00Z"})
    assert store.reconcile.get("t1", "qbo:123") == {"since": "2026-11-02T00:00:00Z"}
    assert store.reconcile.get("t1", "qbd:c1") == {"since": "2026-10-01T00:00:00Z"}


def test_record_reconciliation_round_trips_and_old_records_load_without_it(store: Store) -> None:
    created = store.records.create(make_record("inv-1", state="synced"))
    assert created.reconciliation is None
    state = {"balance": "0.00", "paid": True, "paid_date": "2026-11-05", "payments": [], "drift": None}
    saved = store.records.save(replace(created, reconciliation=state))
    got = store.records.get("t1", "invoices", "inv-1")
    assert got == saved and got is not None and got.reconciliation == state
