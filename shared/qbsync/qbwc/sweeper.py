"""The stuck-job sweeper (R4): connector jobs still "sent" after their conversation expired.

Such a job went to QuickBooks in a message set whose response never came back, and the conversation that could
have recovered it (``oldMessageSetID``) is over. It is never put back as a plain write: jobs that can be checked
by a query become verifications (:mod:`qbsync.qbwc.recovery`) that run at the connector's next conversation;
the others stay "sent", so the next conversation still tries message-set recovery first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from qbsync.clock import Clock, SystemClock, iso
from qbsync.errors import ConcurrentModification
from qbsync.observability import get_logger
from qbsync.qbwc import recovery
from qbsync.qbwc.service import Limits
from qbsync.store.ports import Connector, Store

MAX_JOBS_PER_CONNECTOR = 1000


class StuckJobSweeper:
    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        epoch: Callable[[], float] = time.time,
        conversation_ttl_seconds: int = Limits().ticket_ttl_seconds,
    ) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.epoch = epoch
        self.ttl = conversation_ttl_seconds
        self.log = get_logger()

    def sweep(self) -> dict[str, int]:
        outcome = {"connectors": 0, "stuck_jobs": 0, "verifying": 0, "awaiting_recovery": 0}
        cursor: str | None = None
        for _ in range(10_000):
            page = self.store.tenants.list(limit=100, cursor=cursor)
            for tenant in page.items:
                for connector in self.store.connectors.list(tenant.tenant_id):
                    outcome["connectors"] += 1
                    for key, value in self.sweep_connector(connector).items():
                        outcome[key] += value
            cursor = page.cursor
            if cursor is None:
                break
        return outcome

    def sweep_connector(self, connector: Connector) -> dict[str, int]:
        now = self.epoch()
        counts = {"stuck_jobs": 0, "verifying": 0, "awaiting_recovery": 0}
        live_set = self._live_message_set(connector, now)
        for job in self.store.jobs.unfinished(connector.connector_id, limit=MAX_JOBS_PER_CONNECTOR):
            if job.status != "sent" or job.message_set_id == live_set:
                continue  # queued, or in flight in a conversation that is still going on
            if _epoch(job.updated_at) > now - self.ttl:
                continue  # its conversation may still be alive
            counts["stuck_jobs"] += 1
            if not recovery.can_verify(job):
                counts["awaiting_recovery"] += 1  # left "sent": message-set recovery at the next conversation
                continue
            verify: dict[str, Any] = {
                "lost_message_set": job.message_set_id,
                "sent_at": job.updated_at,
                "swept_at": iso(self.clock.now()),
            }
            try:
                self.store.jobs.save(
                    replace(
                        job,
                        status="queued",
                        message_set_id=None,
                        result={**job.result, recovery.VERIFY: verify},
                        updated_at=iso(self.clock.now()),
                    )
                )
            except ConcurrentModification:
                continue  # a conversation touched it meanwhile: it decides
            counts["verifying"] += 1
            self.log.warning(
                "stuck job will be verified in QuickBooks before any resend",
                extra={"connector_id": job.connector_id, "seq": job.seq, "kind": job.kind},
            )
        return counts

    def _live_message_set(self, connector: Connector, now: float) -> str | None:
        if not connector.live_ticket:
            return None
        ticket = self.store.tickets.get(connector.live_ticket)
        if ticket is None or ticket.state != "open" or ticket.expires_at <= now:
            return None
        return (ticket.in_flight or {}).get("message_set_id")


def _epoch(moment: str) -> float:
    parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
