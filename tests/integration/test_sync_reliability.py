"""Nothing duplicated: every transfer message delivered twice, and a worker killed after the QuickBooks write
but before the record was saved, leave exactly one QuickBooks object per source record (QBO emulator)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from infra.qbo_emulator import QboEmulator
from qbsync.events import MemoryPublisher
from qbsync.qbo.client import QboClient
from qbsync.qbo.limiter import NoLimiter
from qbsync.queue import MemoryTransferQueue
from qbsync.settings import Settings
from qbsync.store.memory import MemoryStore
from qbsync.store.ports import QboConnection
from qbsync.sync.ingest import IngestService, IssueService
from qbsync.sync.worker import SyncWorker
from qbsync.tenancy import TenantService
from qbsync.transfers import MessageMeta


class StaticTokens:
    def __init__(self, token: str) -> None:
        self.token = token

    def access_token(self) -> str:
        return self.token

    def refreshed_after_401(self) -> str:
        return self.token


@dataclass
class World:
    emulator: QboEmulator
    realm: str
    store: MemoryStore
    queue: MemoryTransferQueue
    ingest: IngestService
    worker: SyncWorker
    tenant: Any

    def drain(self, *, deliveries: int = 1, crash: set[str] | None = None) -> int:
        """Run every queued message ``deliveries`` times (SQS redelivery); ``crash`` names records whose first
        handling dies right after the QuickBooks write (before qbsync saved anything)."""
        crashed: set[str] = set()
        handled = 0
        for _ in range(10_000):
            if not self.queue.sent:
                break
            message, _group, _dedup = self.queue.sent.pop(0)
            source_id = str(message.payload["source_id"])
            for delivery in range(deliveries):
                if crash and source_id in crash and source_id not in crashed:
                    crashed.add(source_id)
                    original = self.worker._finish

                    def die(*args: Any, **kwargs: Any) -> Any:
                        raise SystemExit("worker killed")

                    self.worker._finish = die  # type: ignore[method-assign]
                    with pytest.raises(SystemExit):
                        self.worker.handle(message, MessageMeta("m", "g", 1))
                    self.worker._finish = original  # type: ignore[method-assign]
                self.worker.handle(message, MessageMeta("m", "g", delivery + 1))
                handled += 1
        return handled


@pytest.fixture
def world() -> Iterator[World]:
    with QboEmulator() as emulator:
        realm = emulator.add_company(name="Reliable Co")
        token = emulator.issue_tokens(realm)["access_token"]
        store = MemoryStore()
        tenant = TenantService(store.tenants).create("Reliable").tenant
        tenant.settings.update({"auto_create_customers": True, "auto_create_items": True, "income_account": "Services"})
        tenant = store.tenants.update(tenant)
        store.qbo.create(
            QboConnection(
                tenant_id=tenant.tenant_id,
                realm_id=realm,
                status="connected",
                company_name="Reliable Co",
                tokens="x",
                access_expires_at=0,
                refresh_expires_at=0,
                connected_at="",
                updated_at="",
            )
        )
        queue = MemoryTransferQueue()
        ingest = IngestService(store, queue)
        issues = IssueService(store, ingest)
        settings = Settings(stage="test", qbo_api_base_url=emulator.api_base_url)
        worker = SyncWorker(
            store,
            None,
            issues,
            MemoryPublisher(),
            settings,  # type: ignore[arg-type]
            client_factory=lambda r, t: QboClient(
                r, StaticTokens(token), base_url=emulator.api_base_url, limiter=NoLimiter()
            ),
        )
        yield World(emulator, realm, store, queue, ingest, worker, tenant)


def post_everything(world: World, copies: int = 1) -> None:
    customers = [{"id": f"c{i}", "name": f"Reliable {i}", "email": f"r{i}@example.com"} for i in range(6)]
    items = [{"id": "svc", "name": "Support", "sku": "SUP", "price": "40.00"}]
    invoices = [
        {
            "id": f"i{i}",
            "customer_id": f"c{i % 6}",
            "date": "2026-11-04",
            "total": "80.00",
            "lines": [{"item_id": "svc", "quantity": "2", "rate": "40.00"}],
        }
        for i in range(12)
    ]
    payments = [
        {
            "id": f"p{i}",
            "customer_id": f"c{i % 6}",
            "date": "2026-11-05",
            "amount": "80.00",
            "applied_to": [{"invoice_id": f"i{i}", "amount": "80.00"}],
        }
        for i in range(5)
    ]
    for _ in range(copies):  # posting every record twice is a no-op the second time
        for kind, body in (("customers", customers), ("items", items), ("invoices", invoices), ("payments", payments)):
            world.ingest.accept(world.tenant, kind, body)


def quickbooks_counts(world: World) -> dict[str, int]:
    company = world.emulator.company(world.realm)
    return {
        "customers": sum(1 for c in company.entities["Customer"].values() if c["DisplayName"].startswith("Reliable")),
        "items": sum(1 for i in company.entities["Item"].values() if i.get("Name") == "Support"),
        "invoices": len(company.entities["Invoice"]),
        "payments": len(company.entities["Payment"]),
    }


def test_redelivery_and_double_posting_leave_one_object_per_record(world: World) -> None:
    post_everything(world, copies=2)
    world.drain(deliveries=2)
    assert quickbooks_counts(world) == {"customers": 6, "items": 1, "invoices": 12, "payments": 5}
    balances = [
        Decimal(str(inv["Balance"])) for inv in world.emulator.company(world.realm).entities["Invoice"].values()
    ]
    assert sorted(balances) == [Decimal(0)] * 5 + [Decimal("80.00")] * 7


def test_a_worker_killed_after_the_quickbooks_write_creates_no_duplicate(world: World) -> None:
    post_everything(world)
    world.drain(crash={"c1", "svc", "i3", "i7", "p2"})
    assert quickbooks_counts(world) == {"customers": 6, "items": 1, "invoices": 12, "payments": 5}
    # The crashed invoices and payment were de-duplicated by Intuit's requestid (replayed); the crashed customer
    # and item were found again by their email / SKU and linked.
    assert world.emulator.company(world.realm).counts["replays"] == 3
    for kind, ids in (("invoices", [f"i{i}" for i in range(12)]), ("payments", [f"p{i}" for i in range(5)])):
        for source_id in ids:
            record = world.store.records.get(world.tenant.tenant_id, kind, source_id)
            assert record is not None and record.state == "synced" and record.qb_id
