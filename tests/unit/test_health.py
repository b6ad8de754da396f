"""Connection health (R3): an unhealthy QuickBooks Online company and a silent Web Connector are reported once,
and their recovery too; transient failures and recent checks cost no verdict and no metered read."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from qbsync.connectors import ConnectorCreate, ConnectorService
from qbsync.events import MemoryPublisher
from qbsync.health import ConnectionHealth
from qbsync.qbo.errors import Forbidden, ServiceUnavailable
from qbsync.store.memory import MemoryStore
from qbsync.tenancy import TenantService
from tests.unit.test_api_records import connect_qbo

NOW = 1_800_000_000.0


class Reader:
    def __init__(self) -> None:
        self.calls = 0
        self.error: Exception | None = None

    def __call__(self, realm: str, tenant_id: str) -> dict[str, Any]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return {"CompanyName": "Co"}


def test_an_unhealthy_company_is_reported_once_and_its_recovery_too() -> None:
    store, events, reader = MemoryStore(), MemoryPublisher(), Reader()
    tenant = TenantService(store.tenants).create("Health").tenant
    connect_qbo(store, tenant.tenant_id, "4242")
    clock = [NOW]
    health = ConnectionHealth(store, events, reader, epoch=lambda: clock[0], qbo_every=3600)

    assert health.check_all()["health_checked"] == 1 and events.events == []
    assert health.check_all()["health_checked"] == 0 and reader.calls == 1  # checked recently: no read

    clock[0] += 7200
    reader.error = ServiceUnavailable("down")  # an outage is no verdict
    assert health.check_all()["qbo_unhealthy"] == 0 and events.events == []

    reader.error = Forbidden("The subscription has lapsed")
    assert health.check_all()["qbo_unhealthy"] == 1
    assert health.check_all()["qbo_unhealthy"] == 1  # still failing: checked every run, reported once
    [unhealthy] = events.of_type("connection.unhealthy")
    assert unhealthy["detail"]["realm_id"] == "4242" and "lapsed" in unhealthy["detail"]["message"]

    reader.error = None
    assert health.check_all()["qbo_unhealthy"] == 0
    assert [e["detail"]["realm_id"] for e in events.of_type("connection.healthy")] == ["4242"]


def test_a_silent_web_connector_is_stale_once_and_healthy_when_it_is_back() -> None:
    store, events = MemoryStore(), MemoryPublisher()
    tenant = TenantService(store.tenants).create("Desk").tenant
    connectors = ConnectorService(store)
    connector = connectors.create(tenant, ConnectorCreate(name="Main", username="desk-h", password="long password 1"))
    clock = [NOW]
    health = ConnectionHealth(store, events, Reader(), epoch=lambda: clock[0], stale_after=86_400)
    assert health.check_all()["connectors_stale"] == 0  # never connected: not stale, just new

    def synced_at(epoch: float) -> None:
        from datetime import UTC, datetime

        from qbsync.clock import iso

        current = store.connectors.get(tenant.tenant_id, connector.connector_id)
        assert current is not None
        moment = iso(datetime.fromtimestamp(epoch, UTC))
        store.connectors.update(replace(current, company_file="C:\\co.qbw", last_sync_at=moment))

    synced_at(NOW - 3600)
    assert health.check_all()["connectors_stale"] == 0
    clock[0] += 2 * 86_400
    assert health.check_all()["connectors_stale"] == 1
    assert health.check_all()["connectors_stale"] == 1
    assert [e["detail"]["name"] for e in events.of_type("connector.stale")] == ["Main"]
    synced_at(clock[0] - 60)
    assert health.check_all()["connectors_stale"] == 0
    assert len(events.of_type("connector.healthy")) == 1
