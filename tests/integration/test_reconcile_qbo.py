"""Reconciliation from QuickBooks Online (R1, R2) against the emulator: invoices paid by qbsync's payments and by
payments entered in QuickBooks get their paid date, payments entered only in QuickBooks are reported once, deleted
and voided invoices are drift; CDC from the watermark, the query fallback, and webhook-targeted reads agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.qbo_emulator import api as emulator_api
from qbsync.clock import iso
from qbsync.events import MemoryPublisher
from qbsync.qbo.client import QboClient
from qbsync.qbo.limiter import NoLimiter
from qbsync.sync import reconcile
from qbsync.sync.reconcile import QboReconciler
from tests.integration.test_sync_reliability import StaticTokens, World, post_everything, world  # noqa: F401


def reconciler(world: World, events: MemoryPublisher) -> QboReconciler:  # noqa: F811
    token = world.emulator.issue_tokens(world.realm)["access_token"]
    return QboReconciler(
        world.store,
        None,  # type: ignore[arg-type]
        events,
        world.worker.settings,
        client_factory=lambda r, t: QboClient(
            r, StaticTokens(token), base_url=world.emulator.api_base_url, limiter=NoLimiter()
        ),
    )


def record(world: World, kind: str, source_id: str) -> Any:  # noqa: F811
    found = world.store.records.get(world.tenant.tenant_id, kind, source_id)
    assert found is not None
    return found


def qb_id(world: World, source_id: str) -> str:  # noqa: F811
    return str(record(world, "invoices", source_id).qb_id)


def seen(world: World, source_id: str) -> dict[str, Any]:  # noqa: F811
    return dict(record(world, "invoices", source_id).reconciliation or {})


def synced_world(world: World) -> World:  # noqa: F811
    post_everything(world)  # 12 invoices of 80.00; qbsync's payments p0-p4 (2026-11-05) pay i0-i4
    world.drain()
    assert all(record(world, "invoices", f"i{i}").state == "synced" for i in range(12))
    return world


def test_paid_dates_payments_entered_in_quickbooks_and_drift(world: World) -> None:  # noqa: F811
    synced_world(world)
    events = MemoryPublisher()
    recon = reconciler(world, events)
    tenant = world.tenant.tenant_id

    first = recon.reconcile_company(tenant, world.realm)  # no watermark yet: a query of the linked ids
    assert world.store.reconcile.get(tenant, f"qbo:{world.realm}")["mode"] == "query"
    assert first.paid == 5 and first.drift == 0 and first.payments_reported == 0
    assert sorted(e["detail"]["id"] for e in events.of_type("invoice.paid")) == [f"i{i}" for i in range(5)]
    paid = seen(world, "i0")
    assert paid["paid"] is True and paid["paid_date"] == "2026-11-05" and paid["balance"] == "0.00"
    assert paid["payments"] == [
        {"quickbooks_id": record(world, "payments", "p0").qb_id, "date": "2026-11-05", "amount": "80.00",
         "origin": "qbsync", "id": "p0"}
    ]  # fmt: skip
    assert seen(world, "i5")["paid"] is False and seen(world, "i5")["balance"] == "80.00"

    # What users do in QuickBooks itself (the emulator's admin hooks):
    emu = world.emulator
    emu.pay_invoice(world.realm, qb_id(world, "i5"), date="2026-11-20", reference="CHK-77")
    emu.pay_invoice(world.realm, qb_id(world, "i6"), amount="30.00", date="2026-11-10")
    emu.pay_invoice(world.realm, qb_id(world, "i6"), amount="50.00", date="2026-11-12")  # closes the balance
    emu.pay_invoice(world.realm, qb_id(world, "i10"), amount="20.00", date="2026-11-13")  # partial: not paid
    emu.delete_entity(world.realm, "Invoice", qb_id(world, "i7"))
    emu.void_entity(world.realm, "Invoice", qb_id(world, "i8"))
    events.events.clear()

    second = recon.reconcile_company(tenant, world.realm)  # from the watermark: CDC
    assert world.store.reconcile.get(tenant, f"qbo:{world.realm}")["mode"] == "cdc"
    assert (second.paid, second.drift, second.payments_reported) == (2, 2, 4)
    paid_events = {e["detail"]["id"]: e["detail"] for e in events.of_type("invoice.paid")}
    assert {k: v["paid_date"] for k, v in paid_events.items()} == {"i5": "2026-11-20", "i6": "2026-11-12"}
    reported = events.of_type("payment.recorded_in_qb")
    assert sorted((e["detail"]["date"], e["detail"]["amount"]) for e in reported) == [
        ("2026-11-10", "30.00"), ("2026-11-12", "50.00"), ("2026-11-13", "20.00"), ("2026-11-20", "80.00")
    ]  # fmt: skip
    assert {a["invoice_id"] for e in reported for a in e["detail"]["applied_to"]} == {"i5", "i6", "i10"}
    assert [e["detail"]["reference"] for e in reported if e["detail"]["date"] == "2026-11-20"] == ["CHK-77"]
    drift = {e["detail"]["id"]: e["detail"]["code"] for e in events.of_type("invoice.drift")}
    assert drift == {"i7": "deleted", "i8": "voided"}
    assert seen(world, "i7")["deleted"] is True and seen(world, "i7")["drift"]["code"] == "deleted"
    partial = seen(world, "i10")
    assert partial["paid"] is False and partial["balance"] == "60.00"
    assert partial["payments"][0]["origin"] == "quickbooks"
    assert {p["origin"] for p in seen(world, "i6")["payments"]} == {"quickbooks"}

    events.events.clear()
    again = recon.reconcile_company(tenant, world.realm)  # nothing new in QuickBooks: nothing emitted
    assert events.events == [] and (again.paid, again.drift, again.payments_reported) == (0, 0, 0)

    # A payment qbsync sent is deleted in QuickBooks: the payment drifts, its invoice is open again.
    emu.delete_entity(world.realm, "Payment", str(record(world, "payments", "p0").qb_id))
    third = recon.reconcile_company(tenant, world.realm)
    assert third.unpaid == 1 and [e["detail"]["id"] for e in events.of_type("invoice.unpaid")] == ["i0"]
    assert [e["detail"]["id"] for e in events.of_type("payment.drift")] == ["p0"]
    assert seen(world, "i0")["paid"] is False and seen(world, "i0")["paid_date"] is None
    assert (record(world, "payments", "p0").reconciliation or {})["drift"]["code"] == "deleted"


def test_a_webhook_targeted_reconcile_reads_only_the_named_entities(world: World) -> None:  # noqa: F811
    synced_world(world)
    events = MemoryPublisher()
    recon = reconciler(world, events)
    payment = world.emulator.pay_invoice(world.realm, qb_id(world, "i9"), date="2026-11-18")
    company = world.emulator.company(world.realm)
    before = dict(company.counts)
    outcome = recon.reconcile_entities(
        world.tenant.tenant_id,
        world.realm,
        [{"name": "Payment", "id": payment["Id"], "operation": "Create"}, {"name": "Customer", "id": "1"}],
    )
    assert outcome.paid == 1 and outcome.payments_reported == 1
    assert seen(world, "i9")["paid_date"] == "2026-11-18"
    assert company.counts["cdc"] == before.get("cdc", 0)  # no CDC: two queries (the payment, then its invoice)
    assert company.counts["queries"] - before.get("queries", 0) == 2

    world.emulator.delete_entity(world.realm, "Invoice", qb_id(world, "i11"))
    gone = recon.reconcile_entities(
        world.tenant.tenant_id, world.realm, [{"name": "Invoice", "id": qb_id(world, "i11"), "operation": "Delete"}]
    )
    assert gone.drift == 1 and seen(world, "i11")["drift"]["code"] == "deleted"
    # The same notification again (replayed past the dedupe window) changes nothing.
    events.events.clear()
    recon.reconcile_entities(
        world.tenant.tenant_id, world.realm, [{"name": "Invoice", "id": qb_id(world, "i11"), "operation": "Delete"}]
    )
    assert events.events == []


def test_a_gap_longer_than_cdc_reaches_falls_back_to_a_query(world: World) -> None:  # noqa: F811
    synced_world(world)
    recon = reconciler(world, MemoryPublisher())
    tenant = world.tenant.tenant_id
    old = datetime.now(UTC) - timedelta(days=40)
    world.store.reconcile.put(tenant, f"qbo:{world.realm}", {"since": iso(old)})
    cdc_before = world.emulator.company(world.realm).counts["cdc"]
    outcome = recon.reconcile_company(tenant, world.realm)
    assert outcome.paid == 5 and world.emulator.company(world.realm).counts["cdc"] == cdc_before
    assert world.store.reconcile.get(tenant, f"qbo:{world.realm}")["mode"] == "query"


def test_cdc_capped_at_its_object_limit_still_sees_every_change(
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    synced_world(world)
    events = MemoryPublisher()
    recon = reconciler(world, events)
    tenant = world.tenant.tenant_id
    recon.reconcile_company(tenant, world.realm)  # the watermark
    company = world.emulator.company(world.realm)
    ticks = iter(range(10, 10_000))
    start = company.clock()
    company.clock = lambda: start + next(ticks)  # QuickBooks' LastUpdatedTime has whole seconds: one change each
    # The watermark after the initial sync (whose 17 objects share one second and would fill the window).
    world.store.reconcile.put(tenant, f"qbo:{world.realm}", {"since": iso(datetime.fromtimestamp(start + 5, UTC))})
    for i in (5, 6, 7, 8, 9):
        world.emulator.pay_invoice(world.realm, qb_id(world, f"i{i}"), date=f"2026-11-1{i}")
    monkeypatch.setattr(emulator_api, "CDC_MAX_OBJECTS", 3)  # QuickBooks answers at most 3 objects per call
    monkeypatch.setattr(reconcile, "CDC_MAX_OBJECTS", 3)
    events.events.clear()
    calls = world.emulator.company(world.realm).counts["cdc"]
    outcome = recon.reconcile_company(tenant, world.realm)
    assert world.store.reconcile.get(tenant, f"qbo:{world.realm}")["mode"] == "cdc"
    assert world.emulator.company(world.realm).counts["cdc"] - calls > 2  # capped: paged entity by entity
    assert outcome.paid == 5 and outcome.payments_reported == 5
    assert {e["detail"]["id"]: e["detail"]["paid_date"] for e in events.of_type("invoice.paid")} == {
        f"i{i}": f"2026-11-1{i}" for i in (5, 6, 7, 8, 9)
    }
