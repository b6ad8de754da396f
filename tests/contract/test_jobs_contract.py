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


def test_enqueue_is_idempotent_by_source_ref_until_the_job_fails(store: Store) -> None:
    first = store.jobs.enqueue(make_job(source_ref="customers:c-1:" + "a" * 32))
    again = store.jobs.enqueue(make_job(source_ref="customers:c-1:" + "a" * 32, payload={"name": "ignored"}))
    assert again.seq == first.seq and again.payload == {"name": "Zoë & Co"}
    other = store.jobs.enqueue(make_job(source_ref="customers:c-1:" + "b" * 32))  # new content: new job
    elsewhere = store.jobs.enqueue(make_job("c2", source_ref="customers:c-1:" + "a" * 32))  # another file
    assert len({first.seq, other.seq}) == 2 and elsewhere.seq == 1
    assert store.jobs.enqueue(make_job()).seq != store.jobs.enqueue(make_job()).seq  # no reference: always new

    done = store.jobs.save(replace(first, status="done"))
    assert store.jobs.enqueue(make_job(source_ref="customers:c-1:" + "a" * 32)).seq == done.seq  # it ran: no rerun
    store.jobs.save(replace(done, status="error"))
    resent = store.jobs.enqueue(make_job(source_ref="customers:c-1:" + "a" * 32))  # failed: sent again on purpose
    assert resent.seq > other.seq
    assert store.jobs.enqueue(make_job(source_ref="customers:c-1:" + "a" * 32)).seq == resent.seq


def test_concurrent_enqueues_of_the_same_work_make_one_job(store: Store) -> None:
    ref = "invoices:inv-1:" + "c" * 32
    results = run_concurrently(lambda _: store.jobs.enqueue(make_job(source_ref=ref)).seq, 6)
    # A loser that looks while the winner's job is not written yet is told to retry (SQS does), never given a twin.
    seqs = {r for r in results if not isinstance(r, ConcurrentModification)}
    assert len(seqs) == 1 and all(isinstance(s, int) for s in seqs), results
    unfinished = store.jobs.unfinished("c1", 100)
    assert [job.source_ref for job in unfinished] == [ref]
