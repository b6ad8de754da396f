"""Connection health checks (R3), run by the token refresher's schedule after the tokens are cared for.

* QuickBooks Online: every connected company is read (CompanyInfo) at most every ``qbo_every`` seconds — a
  metered read, so not on every run. A refusal that retrying cannot fix (403 / subscription lapsed / company
  status) turns the connection unhealthy: ``connection.unhealthy`` once, ``connection.healthy`` when it reads
  again. Throttling and outages are not a verdict (the next run checks again); an expired grant is the token
  care's ``connection.needs_reauth``.
* QuickBooks Desktop: a connector that has talked to a company file but has had no conversation for
  ``max(stale_after, 3 run intervals)`` is stale: ``connector.stale`` once, ``connector.healthy`` when the
  Web Connector is back. (Its own login failures are on the connector grid.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from qbsync.clock import iso
from qbsync.events import EventPublisher
from qbsync.observability import get_logger
from qbsync.qbo import errors as qbo_errors
from qbsync.qbo.tokens import NeedsReauth, NotConnected
from qbsync.store.ports import Connector, QboConnection, Store

CompanyReader = Callable[[str, str], dict[str, Any]]  # (realm, tenant id) → CompanyInfo
QBO_EVERY_SECONDS = 6 * 3600
STALE_AFTER_SECONDS = 24 * 3600


class ConnectionHealth:
    def __init__(
        self,
        store: Store,
        events: EventPublisher,
        company_reader: CompanyReader,
        *,
        epoch: Callable[[], float] = time.time,
        qbo_every: int = QBO_EVERY_SECONDS,
        stale_after: int = STALE_AFTER_SECONDS,
    ) -> None:
        self.store = store
        self.events = events
        self.company_reader = company_reader
        self.epoch = epoch
        self.qbo_every = qbo_every
        self.stale_after = stale_after
        self.log = get_logger()

    def check_all(self) -> dict[str, int]:
        outcome = {"health_checked": 0, "qbo_unhealthy": 0, "connectors_stale": 0}
        cursor: str | None = None
        for _ in range(10_000):
            page = self.store.qbo.list_all(limit=100, cursor=cursor)
            for connection in page.items:
                if connection.status != "connected":
                    continue
                verdict = self.check_qbo(connection)
                outcome["health_checked"] += verdict != "skipped"
                outcome["qbo_unhealthy"] += verdict == "unhealthy"
            cursor = page.cursor
            if cursor is None:
                break
        cursor = None
        for _ in range(10_000):
            tenants = self.store.tenants.list(limit=100, cursor=cursor)
            for tenant in tenants.items:
                if not tenant.is_active:
                    continue
                for connector in self.store.connectors.list(tenant.tenant_id):
                    outcome["connectors_stale"] += self.check_connector(connector)
            cursor = tenants.cursor
            if cursor is None:
                break
        return outcome

    def check_qbo(self, connection: QboConnection) -> str:
        """``ok``, ``unhealthy``, or ``skipped`` (checked recently, or a transient failure)."""
        target = f"health:qbo:{connection.realm_id}"
        state = self.store.reconcile.get(connection.tenant_id, target) or {}
        now = self.epoch()
        if state.get("checked_at", 0) + self.qbo_every > now and state.get("ok", True):
            return "skipped"
        try:
            self.company_reader(connection.realm_id, connection.tenant_id)
        except (NeedsReauth, NotConnected):
            return "skipped"  # the token care reported it (connection.needs_reauth)
        except qbo_errors.QboError as exc:
            if exc.retryable:
                return "skipped"
            self._transition(connection.tenant_id, target, state, ok=False, now=now, error=exc)
            return "unhealthy"
        self._transition(connection.tenant_id, target, state, ok=True, now=now)
        return "ok"

    def _transition(
        self,
        tenant_id: str,
        target: str,
        state: dict[str, Any],
        *,
        ok: bool,
        now: float,
        error: qbo_errors.QboError | None = None,
    ) -> None:
        realm = target.removeprefix("health:qbo:")
        was_ok = state.get("ok", True)
        detail = {"code": error.intuit_code or error.code, "message": error.detail} if error else {}
        self.store.reconcile.put(tenant_id, target, {"checked_at": now, "ok": ok, **detail})
        if was_ok and not ok:
            self.log.warning(
                "qbo connection unhealthy",
                extra={"tenant_id": tenant_id, "realm_id": realm, "error_code": detail.get("code")},
            )
            self.events.publish("connection.unhealthy", tenant_id, {"realm_id": realm, **detail})
        elif ok and not was_ok:
            self.events.publish("connection.healthy", tenant_id, {"realm_id": realm})

    def check_connector(self, connector: Connector) -> int:
        """1 if the connector is stale (has worked before, silent for too long), else 0."""
        if not connector.enabled or not connector.company_file or not connector.last_sync_at:
            return 0
        target = f"health:qbd:{connector.connector_id}"
        state = self.store.reconcile.get(connector.tenant_id, target) or {}
        now = self.epoch()
        limit = max(self.stale_after, 3 * 60 * connector.run_every_minutes)
        silent_for = now - _epoch(connector.last_sync_at)
        stale = silent_for > limit
        if stale != bool(state.get("stale")):
            self.store.reconcile.put(connector.tenant_id, target, {"stale": stale, "since": iso(_utc(now))})
            detail = {
                "connector_id": connector.connector_id,
                "name": connector.name,
                "last_sync_at": connector.last_sync_at,
            }
            self.events.publish("connector.stale" if stale else "connector.healthy", connector.tenant_id, detail)
        return int(stale)


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _epoch(moment: str) -> float:
    parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
