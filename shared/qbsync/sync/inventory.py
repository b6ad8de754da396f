"""Inventory sync (T8): quantities on hand read back from QuickBooks Desktop after purchase orders are received.

QuickBooks Desktop can only be asked during a Web Connector conversation, and receiving a purchase order happens in
QuickBooks whenever the goods arrive (days after qbsync wrote the PO). So the scheduled reconciler pass queues one
``ItemInventoryQuery`` (iterator; inventory parts modified since the watermark, all of them the first time) on each
connector that has the purchase-orders transfer on and has been sent a purchase order; queueing it right after a PO
transfer would read the quantities before anything was received. Each answer page is compared with the quantities
last seen: a change is stored (records of kind ``inventory``, keyed by the QuickBooks ListID) and emitted as
``inventory.updated``; ``GET /v1/inventory`` and ``GET /v1/inventory/{item_id}`` read them.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from qbsync.clock import Clock, SystemClock, iso
from qbsync.errors import AlreadyExists, ConcurrentModification, NotFound
from qbsync.events import EventPublisher
from qbsync.models import StrictModel
from qbsync.qbwc.jobs import ItemInventoryQuery, JobService
from qbsync.qbxml import QbxmlResult, RetRecord
from qbsync.store.ports import Connector, Job, Store, SyncRecord, Tenant
from qbsync.sync.ingest import all_records

KIND = "inventory"  # records of this kind hold the quantities last read (source id = QuickBooks ListID)
REF_PREFIX = "inventory:"
EVENT = "inventory.updated"
OVERLAP = timedelta(hours=2)  # the QuickBooks PC's clock is not ours


class InventoryLevel(StrictModel):
    item_id: str | None  # the source item (sent to /v1/items) linked to this QuickBooks item, if any
    quickbooks_id: str
    name: str
    quantity_on_hand: str
    connector_id: str
    updated_at: str


class InventoryList(StrictModel):
    items: list[InventoryLevel]
    cursor: str | None = None


def _view(record: SyncRecord) -> InventoryLevel:
    p = record.payload
    return InventoryLevel(
        item_id=p.get("item_id"),
        quickbooks_id=record.source_id,
        name=str(p.get("name", "")),
        quantity_on_hand=str(p.get("quantity_on_hand", "0")),
        connector_id=str(p.get("connector_id", "")),
        updated_at=record.updated_at,
    )


def _quantity(ret: RetRecord) -> Decimal | None:
    raw = ret.raw.get("QuantityOnHand")
    try:
        return Decimal(str(raw)) if raw is not None else None
    except InvalidOperation:
        return None


class InventorySync:
    def __init__(self, store: Store, events: EventPublisher, jobs: JobService, clock: Clock | None = None) -> None:
        self.store = store
        self.events = events
        self.jobs = jobs
        self.clock = clock or SystemClock()

    # --- the scheduled side ---------------------------------------------------------------------------------

    def enqueue_all(self) -> dict[str, int]:
        outcome = {"inventory_queued": 0}
        cursor: str | None = None
        for _ in range(10_000):
            page = self.store.tenants.list(limit=100, cursor=cursor)
            for tenant in page.items:
                if tenant.is_active:
                    for connector in self.store.connectors.list(tenant.tenant_id):
                        outcome["inventory_queued"] += int(self.enqueue(connector))
            cursor = page.cursor
            if cursor is None:
                break
        return outcome

    def enqueue(self, connector: Connector) -> bool:
        """Queue a read of the quantities on hand; False when there is nothing to read or a read still waits."""
        if not connector.enabled or "purchase_orders" not in connector.enabled_transfers:
            return False
        tenant_id, target = connector.tenant_id, f"qbd:{connector.connector_id}"
        key = f"{KIND}:{target}"
        state = self.store.reconcile.get(tenant_id, key) or {}
        waiting = state.get("seq")
        if waiting is not None:
            job = self.store.jobs.get(connector.connector_id, int(waiting))
            if job is not None and job.status in ("queued", "sent"):
                return False
        if not state.get("since") and not self._has_purchase_orders(tenant_id, target):
            return False
        since = datetime.fromisoformat(state["since"]) if state.get("since") else None
        token = secrets.token_hex(8)
        job = self.jobs.enqueue(
            tenant_id,
            connector.connector_id,
            "item_inventory_query",
            ItemInventoryQuery(from_modified=since),
            source_ref=f"{REF_PREFIX}{token}",
        )
        self.store.reconcile.put(tenant_id, key, {**state, "seq": job.seq, "token": token, "queued_at": iso(self.now)})
        return True

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def _has_purchase_orders(self, tenant_id: str, target: str) -> bool:
        return any(r.target == target and r.qb_id for r in all_records(self.store, tenant_id, "purchase_orders"))

    # --- the conversation side ------------------------------------------------------------------------------

    def on_query_result(self, job: Job, result: QbxmlResult) -> None:
        ref = job.source_ref or ""
        if job.kind != "item_inventory_query" or not ref.startswith(REF_PREFIX):
            return
        target = f"qbd:{job.connector_id}"
        rets = [r for r in result.rets if r.list_id]
        if rets:
            linked = self._linked_items(job.tenant_id, target, {str(r.list_id) for r in rets})
            for ret in rets:
                self._apply(job, ret, linked.get(str(ret.list_id)))
        if not result.has_more:  # the last page: the next read starts here
            key = f"{KIND}:{target}"
            state = self.store.reconcile.get(job.tenant_id, key) or {}
            if state.get("token") == ref.removeprefix(REF_PREFIX):
                state["since"] = (self.now - OVERLAP).astimezone(UTC).replace(microsecond=0).isoformat()
                self.store.reconcile.put(job.tenant_id, key, state)

    def _apply(self, job: Job, ret: RetRecord, item_id: str | None) -> None:
        quantity = _quantity(ret)
        if quantity is None:
            return
        list_id, name = str(ret.list_id), str(ret.full_name or ret.name or "")
        now = iso(self.now)
        on_hand = format(quantity.normalize(), "f") if quantity else "0"
        payload = {"item_id": item_id, "name": name, "quantity_on_hand": on_hand, "connector_id": job.connector_id}
        for _ in range(8):
            current = self.store.records.get(job.tenant_id, KIND, list_id)
            previous = current.payload.get("quantity_on_hand") if current else None
            unchanged = previous is not None and Decimal(str(previous)) == quantity
            if unchanged and current is not None and current.payload.get("item_id") == item_id:
                return  # nothing changed
            try:
                if current is None:
                    self.store.records.create(
                        SyncRecord(
                            tenant_id=job.tenant_id,
                            kind=KIND,
                            source_id=list_id,
                            content_hash=on_hand,
                            payload=payload,
                            state="synced",
                            created_at=now,
                            updated_at=now,
                            target=f"qbd:{job.connector_id}",
                            qb_id=list_id,
                            synced_at=now,
                        )
                    )
                else:
                    self.store.records.save(replace(current, payload=payload, content_hash=on_hand, updated_at=now))
            except (AlreadyExists, ConcurrentModification):
                continue
            if previous is None or Decimal(str(previous)) != quantity:
                self.events.publish(
                    EVENT,
                    job.tenant_id,
                    {
                        "item_id": item_id,
                        "quickbooks_id": list_id,
                        "name": name,
                        "quantity_on_hand": on_hand,
                        "previous": previous,
                        "connector_id": job.connector_id,
                    },
                )
            return

    def _linked_items(self, tenant_id: str, target: str, list_ids: set[str]) -> dict[str, str]:
        """QuickBooks ListID → the source item linked to it on this connector."""
        return {
            str(r.qb_id): r.source_id
            for r in all_records(self.store, tenant_id, "items")
            if r.target == target and r.qb_id in list_ids
        }

    # --- the API --------------------------------------------------------------------------------------------

    def levels(self, tenant: Tenant, *, limit: int, cursor: str | None) -> InventoryList:
        page = self.store.records.list(tenant.tenant_id, KIND, limit=limit, cursor=cursor)
        return InventoryList(items=[_view(r) for r in page.items], cursor=page.cursor)

    def level(self, tenant: Tenant, item_id: str) -> InventoryLevel:
        """By the source item's id (``/v1/items``), or by the QuickBooks ListID."""
        item = self.store.records.get(tenant.tenant_id, "items", item_id)
        for key in ([item.qb_id] if item is not None and item.qb_id else []) + [item_id]:
            found = self.store.records.get(tenant.tenant_id, KIND, key)
            if found is not None:
                return _view(found)
        raise NotFound(f"No quantity on hand has been read for item {item_id!r} (an inventory part in QuickBooks).")
