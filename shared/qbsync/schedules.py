"""Scheduled jobs: every run is recorded (count, start, finish, outcome) so health checks and the CLI can see
when each schedule last ran and what it did."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qbsync import aws
from qbsync.clock import Clock, SystemClock, iso
from qbsync.settings import Settings
from qbsync.store.ports import Store

Job = Callable[[], dict[str, Any]]


class ScheduleRunner:
    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self.store = store
        self.clock = clock or SystemClock()

    def run(self, name: str, job: Job) -> dict[str, Any]:
        run = self.store.schedule_runs.record_start(name, iso(self.clock.now()))
        try:
            outcome = job()
        except Exception as exc:
            self.store.schedule_runs.record_finish(
                name, iso(self.clock.now()), {"ok": False, "error": type(exc).__name__}
            )
            raise
        outcome = {"ok": True, **outcome}
        self.store.schedule_runs.record_finish(name, iso(self.clock.now()), outcome)
        return {"schedule": name, "run": run.runs, **outcome}


def count_active_tenants(store: Store, page_size: int = 100, max_pages: int = 10_000) -> int:
    """Walk every tenant page (bounded) and count the active ones: what each scheduled job iterates over."""
    count, cursor = 0, None
    for _ in range(max_pages):
        page = store.tenants.list(limit=page_size, cursor=cursor)
        count += sum(1 for t in page.items if t.is_active)
        cursor = page.cursor
        if cursor is None:
            break
    return count


def dead_letter_depth(settings: Settings) -> int | None:
    """Messages waiting in the transfer dead-letter queue (None when no DLQ is configured)."""
    if not settings.transfer_dlq_url:
        return None
    attributes = aws.client("sqs", settings).get_queue_attributes(
        QueueUrl=settings.transfer_dlq_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
        attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
    )


# --- the jobs behind the scheduled functions ---------------------------------------------------------------
# Each takes (store, settings) and returns a zero-argument job. The per-tenant work (paid-status reconciliation,
# token refresh, stuck-job recovery) plugs in here as the QBO/QBD and reconciliation issues land.


def reconcile_job(store: Store, settings: Settings) -> Job:
    return lambda: {"active_tenants": count_active_tenants(store)}


def token_refresh_job(store: Store, settings: Settings) -> Job:
    return lambda: {"active_tenants": count_active_tenants(store)}


def sweep_job(store: Store, settings: Settings) -> Job:
    def job() -> dict[str, Any]:
        depth = dead_letter_depth(settings)
        return {"dead_letter_messages": depth} if depth is not None else {"dead_letter_queue": "not configured"}

    return job


JobFactory = Callable[[Store, Settings], Job]

# Schedule name (= the function folder under functions/) → its job. template.yaml declares the rates.
SCHEDULES: dict[str, JobFactory] = {
    "reconciler": reconcile_job,
    "token_refresher": token_refresh_job,
    "job_sweeper": sweep_job,
}
