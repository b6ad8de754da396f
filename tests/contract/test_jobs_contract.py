"""The job queue and ticket contract on both adapters: ordered per connector, consistent unfinished reads,
optimistic saves, the low-water mark."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qbsync.errors import AlreadyExists, ConcurrentModification, NotFound
from qbsync.store.ports import Job, Store, Ticket
from tests.contract.test_store_contract import at, run_concurrently


def make_job(connector_id: str = "c1", kind: str = "customer_add", **changes) -> Job:
    job = Job(
        connector_id=connector_id,
        seq=0,
        tenant_id="t1",
        kind=kind,
        transfer_type="customers",
        payload={"name": "Zoë & Co"},
        created_at=at(0),
        updated_at=at(0),
    )
    return replace(job, **changes)


def test_enqueue_assigns_increasing_seqs_per_connector(store: Store) -> None:
    seqs = [store.jobs.enqueue(make_job()).seq for _ in range(3)]
    other = store.jobs.enqueue(make_job("c2")).seq
    assert seqs == [1, 2, 3] and other == 1
    job = store.jobs.get("c1", 2)
    assert job is not None and job.payload == {"name": "Zoë & Co"} and job.request_id == "2"
    assert store.jobs.get("c1", 99) is None


def test_unfinished_skips_finished_jobs_in_order(store: Store) -> None:
    jobs = [store.jobs.enqueue(make_job(payload={"n": i})) for i in range(6)]
    store.jobs.save(replace(jobs[0], status="done"))
    store.jobs.save(replace(jobs[2], status="error"))
    store.jobs.save(replace(jobs[3], status="sent", message_set_id="m1"))
    store.jobs.save(replace(jobs[4], status="blocked"))
    unfinished = store.jobs.unfinished("c1", limit=10)
    assert [(j.seq, j.status) for j in unfinished] == [(2, "queued"), (4, "sent"), (6, "queued")]
    assert [j.seq for j in store.jobs.unfinished("c1", limit=2)] == [2, 4]
    assert [j.seq for j in store.jobs.history("c1", after_seq=4, limit=10)] == [5, 6]


def test_low_water_mark_only_moves_forward(store: Store) -> None:
    jobs = [store.jobs.enqueue(make_job()) for _ in range(4)]
    store.jobs.save(replace(jobs[0], status="done"))
    store.jobs.advance_low_water("c1", 2)
    store.jobs.advance_low_water("c1", 1)  # ignored
    assert [j.seq for j in store.jobs.unfinished("c1", limit=10)] == [2, 3, 4]
    store.jobs.advance_low_water("c1", 4)
    assert [j.seq for j in store.jobs.unfinished("c1", limit=10)] == [4]


def test_job_saves_are_optimistic(store: Store) -> None:
    job = store.jobs.enqueue(make_job())
    saved = store.jobs.save(replace(job, status="sent"))
    assert saved.version == job.version + 1
    with pytest.raises(ConcurrentModification):
        store.jobs.save(replace(job, status="done"))
    with pytest.raises(NotFound):
        store.jobs.save(replace(job, seq=42))


def test_concurrent_enqueues_never_share_a_seq(store: Store) -> None:
    results = run_concurrently(lambda i: store.jobs.enqueue(make_job(payload={"i": i})))
    seqs = sorted(r.seq for r in results if isinstance(r, Job))
    assert seqs == list(range(1, len(results) + 1))


def test_tickets_round_trip_and_save_optimistically(store: Store) -> None:
    ticket = Ticket("h1", "t1", "c1", at(0), expires_at=2_000_000_000)
    store.tickets.create(ticket)
    with pytest.raises(AlreadyExists):
        store.tickets.create(ticket)
    found = store.tickets.get("h1")
    assert found == ticket
    saved = store.tickets.save(replace(found, in_flight={"message_set_id": "m", "seqs": [1, 2]}, sent={"customers": 2}))
    assert store.tickets.get("h1") == saved and saved.version == 2
    with pytest.raises(ConcurrentModification):
        store.tickets.save(found)
    assert store.tickets.get("nope") is None
