"""Scheduled jobs: every run is recorded (count, start, finish, outcome) so health checks and the CLI can see
when each schedule last ran and what it did."""

from __future__ import annotations

import time
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


RECONCILE_BUDGET_SECONDS = 240  # of the reconciler's 300 s timeout; companies not reached wait for the next run


def reconcile_job(store: Store, settings: Settings) -> Job:
    """Paid status, payments and drift back from QuickBooks (R1, R2): every connected QuickBooks Online company
    from its watermark, and a reconcile queued on every Web Connector connector (read at its next conversation)."""

    def job() -> dict[str, Any]:
        from qbsync.api.services import Services

        services = Services.build(settings, store)
        outcome = services.reconciler.run_all(deadline=time.monotonic() + RECONCILE_BUDGET_SECONDS)
        desktop = services.desktop_reconciler.enqueue_all()
        inventory = services.inventory.enqueue_all()  # quantities on hand after purchase orders are received
        return {"active_tenants": count_active_tenants(store), **outcome, **desktop, **inventory}

    return job


DAY = 86_400
KEEP_ALIVE_DAYS = 30  # refresh an idle connection whose rolling 100-day refresh token has less than this left
HARD_EXPIRY_WARNINGS = ((30, "hard_expiry_30d"), (7, "hard_expiry_7d"))


def token_refresh_job(store: Store, settings: Settings) -> Job:
    """Keep idle QuickBooks Online connections alive and warn before Intuit's 5-year hard expiry (C5, R3), then
    check every connection's health (:mod:`qbsync.health`)."""

    def job() -> dict[str, Any]:
        from qbsync.api.services import Services
        from qbsync.qbo.tokens import NeedsReauth, NotConnected

        services = Services.build(settings, store)
        now = time.time()
        outcome = {"connections": 0, "refreshed": 0, "needs_reauth": 0, "warnings": 0}
        cursor: str | None = None
        for _ in range(10_000):
            page = store.qbo.list_all(limit=100, cursor=cursor)
            for connection in page.items:
                if connection.status not in ("connecting", "connected"):
                    continue
                outcome["connections"] += 1
                try:
                    refresh_before = now + KEEP_ALIVE_DAYS * DAY
                    if services.tokens.refresh_if_due(connection.tenant_id, refresh_before=refresh_before):
                        outcome["refreshed"] += 1
                except (NeedsReauth, NotConnected):
                    outcome["needs_reauth"] += 1
                    continue
                outcome["warnings"] += warn_before_hard_expiry(services, connection.tenant_id, now)
            cursor = page.cursor
            if cursor is None:
                break
        from qbsync.health import ConnectionHealth

        health = ConnectionHealth(
            store,
            services.events,
            lambda realm, tenant_id: services.qbo.company_reader(realm, services.tokens.token_source(tenant_id)),
        )
        return {**outcome, **health.check_all()}

    return job


def warn_before_hard_expiry(services: Any, tenant_id: str, now: float) -> int:
    """Emit ``connection.expiring`` once 30 and once 7 days before the refresh token's hard expiry."""
    from dataclasses import replace

    from qbsync.errors import ConcurrentModification

    connection = services.store.qbo.get(tenant_id)
    if connection is None or connection.hard_expires_at is None:
        return 0
    days_left = (connection.hard_expires_at - now) / DAY
    due = [label for days, label in HARD_EXPIRY_WARNINGS if days_left <= days and label not in connection.warnings_sent]
    if not due:
        return 0
    try:
        services.store.qbo.save(replace(connection, warnings_sent=[*connection.warnings_sent, *due]))
    except ConcurrentModification:
        return 0  # changed meanwhile (e.g. refreshed): the warning goes out on the next run
    services.events.publish(
        "connection.expiring",
        tenant_id,
        {"realm_id": connection.realm_id, "days_left": max(0, int(days_left)), "reconnect": "GET /v1/qbo/connect"},
    )
    return 1


def sweep_job(store: Store, settings: Settings) -> Job:
    """Stuck connector jobs (verified in QuickBooks before any resend) and the dead-letter queue's depth (R4)."""

    def job() -> dict[str, Any]:
        from qbsync.qbwc.sweeper import StuckJobSweeper

        stuck = StuckJobSweeper(store).sweep()
        depth = dead_letter_depth(settings)
        dead = {"dead_letter_messages": depth} if depth is not None else {"dead_letter_queue": "not configured"}
        return {**stuck, **dead}

    return job


def summarize_job(store: Store, settings: Settings) -> Job:
    """Summarized journal entries (S1, T5): queue a run for every active tenant in summarized mode; the transfer
    worker posts their closed periods, one QuickBooks company at a time (:mod:`qbsync.sync.journal`)."""

    def job() -> dict[str, Any]:
        from qbsync.api.services import Services

        return Services.build(settings, store).journal.enqueue_all()

    return job


JobFactory = Callable[[Store, Settings], Job]

# Schedule name (= the function folder under functions/) → its job. template.yaml declares the rates.
SCHEDULES: dict[str, JobFactory] = {
    "reconciler": reconcile_job,
    "token_refresher": token_refresh_job,
    "job_sweeper": sweep_job,
    "summarizer": summarize_job,
}
