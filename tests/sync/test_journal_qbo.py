"""Summarized mode into the QuickBooks Online emulator: one balanced entry per closed period, adjusting entries for
late or changed charges, configuration issues that block without losing anything, and no double post on retry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from infra.qbo_emulator import QboEmulator
from qbsync.errors import ValidationFailed
from qbsync.events import MemoryPublisher
from qbsync.mappings import MappingPut, MappingService
from qbsync.qbo.client import QboClient
from qbsync.qbo.limiter import NoLimiter
from qbsync.queue import MemoryTransferQueue
from qbsync.store.memory import MemoryStore
from qbsync.store.ports import QboConnection, Tenant
from qbsync.sync.journal import CHARGES, RUN_KIND, JournalService, SummarizedModeOff
from qbsync.tenancy import TenantService
from qbsync.transfers import MessageMeta

D = Decimal


class StaticTokens:
    def __init__(self, token: str) -> None:
        self.token = token

    def access_token(self) -> str:
        return self.token

    def refreshed_after_401(self) -> str:
        return self.token


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.moment = now

    def now(self) -> dt.datetime:
        return self.moment


@dataclass
class World:
    emulator: QboEmulator
    realm: str
    store: MemoryStore
    queue: MemoryTransferQueue
    events: MemoryPublisher
    journal: JournalService
    tenant: Tenant
    clock: Clock

    @property
    def company(self) -> Any:
        return self.emulator.company(self.realm)

    def entries(self) -> list[dict[str, Any]]:
        return sorted(self.company.entities["JournalEntry"].values(), key=lambda e: e["DocNumber"])

    def map(self, kind: str, entries: dict[str, str]) -> None:
        request = MappingPut.model_validate({"entries": {k: {"name": v} for k, v in entries.items()}})
        MappingService(self.store).put(self.tenant, kind, request)

    def charge_states(self) -> dict[str, str]:
        page = self.store.records.list(self.tenant.tenant_id, CHARGES, limit=1000)
        return {r.source_id: r.state for r in page.items}


@pytest.fixture
def world() -> Iterator[World]:
    with QboEmulator() as emulator:
        realm = emulator.add_company(name="Summary Co")
        token = emulator.issue_tokens(realm)["access_token"]
        emulator.company(realm).entities["Class"]["k1"] = {
            "Id": "k1",
            "Name": "East",
            "FullyQualifiedName": "East",
            "SyncToken": "0",
            "Active": True,
        }
        store = MemoryStore()
        tenant = TenantService(store.tenants).create("Summary").tenant
        tenant.settings.update(
            {"mode": "summarized", "journal_debit_account": "Undeposited Funds", "use_classes": True}
        )
        tenant = store.tenants.update(tenant)
        store.qbo.create(
            QboConnection(
                tenant_id=tenant.tenant_id,
                realm_id=realm,
                status="connected",
                company_name="Summary Co",
                tokens="x",
                access_expires_at=0,
                refresh_expires_at=0,
                connected_at="",
                updated_at="",
            )
        )
        queue, events = MemoryTransferQueue(), MemoryPublisher()
        clock = Clock(dt.datetime(2026, 11, 21, 9, tzinfo=dt.UTC))
        journal = JournalService(
            store,
            queue,
            events,
            client_factory=lambda r, t: QboClient(
                r, StaticTokens(token), base_url=emulator.api_base_url, limiter=NoLimiter()
            ),
            clock=clock,
        )
        w = World(emulator, realm, store, queue, events, journal, tenant, clock)
        w.map("billing_codes", {"SUP": "Services", "LIC": "Sales of Product Income"})
        w.map("lines_of_business", {"east": "East"})
        yield w


def charges(n: int, day: str = "2026-10-{d:02d}", start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "id": f"ch-{i}",
            "date": day.format(d=1 + i % 28),
            "amount": f"{(i % 97) + 0.37:.2f}",
            "billing_code": "SUP" if i % 3 else "LIC",
            **({"line_of_business": "east"} if i % 2 else {}),
        }
        for i in range(start, start + n)
    ]


def balanced_total(entry: dict[str, Any]) -> tuple[Decimal, Decimal]:
    sides: dict[str, Decimal] = {"Debit": D(0), "Credit": D(0)}
    for line in entry["Line"]:
        sides[line["JournalEntryLineDetail"]["PostingType"]] += D(str(line["Amount"]))
    return sides["Debit"], sides["Credit"]


def income(entries: list[dict[str, Any]], debit_account_id: str) -> Decimal:
    """Net credit to the income accounts over the entries (what the charges must add up to)."""
    total = D(0)
    for entry in entries:
        for line in entry["Line"]:
            detail = line["JournalEntryLineDetail"]
            if detail["AccountRef"]["value"] == debit_account_id:
                continue
            amount = D(str(line["Amount"]))
            total += amount if detail["PostingType"] == "Credit" else -amount
    return total


def account_id(world: World, name: str) -> str:
    return next(a["Id"] for a in world.company.entities["Account"].values() if a["Name"] == name)


def test_charges_are_refused_outside_summarized_mode(world: World) -> None:
    world.tenant.settings["mode"] = "full"
    tenant = world.store.tenants.update(world.tenant)
    with pytest.raises(SummarizedModeOff) as refused:
        world.journal.accept(tenant, charges(1))
    assert refused.value.code == "summarized_mode_off" and refused.value.status == 409
    assert world.store.records.list(tenant.tenant_id, CHARGES).items == []


def test_bad_charges_are_refused_with_the_field_named_and_nothing_stored(world: World) -> None:
    bad = [*charges(2), {"id": "ch-9", "date": "2026-10-01", "amount": "1.005", "billing_code": "SUP"}]
    with pytest.raises(ValidationFailed) as invalid:
        world.journal.accept(world.tenant, bad)
    assert [e.field for e in invalid.value.errors] == ["2.amount"]
    with pytest.raises(ValidationFailed) as twice:
        world.journal.accept(world.tenant, [charges(1)[0], charges(1)[0]])
    assert [e.field for e in twice.value.errors] == ["1.id"]
    assert world.store.records.list(world.tenant.tenant_id, CHARGES).items == []


def test_a_closed_month_becomes_one_balanced_entry_and_late_charges_an_adjusting_one(world: World) -> None:
    october = charges(300)
    november = charges(20, day="2026-11-{d:02d}", start=1000)
    accepted = world.journal.accept(world.tenant, october + november[:0])
    assert {a.status for a in accepted.transfers} == {"stored"}
    world.journal.accept(world.tenant, november)
    again = world.journal.accept(world.tenant, october[:10])
    assert {a.status for a in again.transfers} == {"unchanged"}

    outcome = world.journal.run(world.tenant.tenant_id)
    assert outcome["posted"] == 1 and outcome["charges_marked"] == 300
    [entry] = world.entries()
    assert entry["DocNumber"] == "QS2610" and entry["TxnDate"] == "2026-10-31" and entry["Adjustment"] is False
    debit, credit = balanced_total(entry)
    expected = sum((D(c["amount"]) for c in october), D(0))
    assert debit == credit == expected
    debit_id = account_id(world, "Undeposited Funds")
    assert income([entry], debit_id) == expected
    east = [line for line in entry["Line"] if line["JournalEntryLineDetail"].get("ClassRef")]
    assert {line["JournalEntryLineDetail"]["ClassRef"]["value"] for line in east} == {"k1"}
    assert sum(D(str(line["Amount"])) for line in east) == sum(
        (D(c["amount"]) for c in october if c.get("line_of_business")), D(0)
    )
    states = world.charge_states()
    assert {states[c["id"]] for c in october} == {"synced"} and {states[c["id"]] for c in november} == {"pending"}
    view = world.journal.charge(world.tenant, "ch-5")
    assert view.state == "synced" and view.journal_entry == "QS2610" and view.quickbooks_id == entry["Id"]
    open_view = world.journal.charge(world.tenant, "ch-1000")
    assert open_view.period == "2026-11" and open_view.reason and open_view.reason["code"] == "period_open"
    [synced_event] = world.events.of_type("journal_entry.synced")
    assert synced_event["detail"]["doc_number"] == "QS2610" and synced_event["detail"]["total"] == str(expected)

    # Nothing new: nothing posted.
    assert world.journal.run(world.tenant.tenant_id)["posted"] == 0 and len(world.entries()) == 1

    # A late charge, a changed amount and a charge moved to November.
    late = {"id": "late-1", "date": "2026-10-15", "amount": "12.34", "billing_code": "SUP"}
    changed = {**october[3], "amount": str(D(october[3]["amount"]) - D("1.00"))}
    moved = {**october[4], "date": "2026-11-02"}
    world.journal.accept(world.tenant, [late, changed, moved])
    assert world.journal.charge(world.tenant, "late-1").reason["code"] == "adjustment_pending"  # type: ignore[index]
    assert world.journal.run(world.tenant.tenant_id)["posted"] == 1
    first, adjusting = world.entries()
    assert adjusting["DocNumber"] == "QS2610A1" and adjusting["Adjustment"] is True
    delta = D("12.34") - D("1.00") - D(october[4]["amount"])
    assert balanced_total(adjusting)[0] == balanced_total(adjusting)[1]
    assert income([adjusting], debit_id) == delta
    assert first == entry  # the posted entry is never changed
    now_october = expected + delta
    assert income(world.entries(), debit_id) == now_october
    period = world.journal.period(world.tenant, "2026-10")
    assert period.state == "synced" and [e.doc_number for e in period.entries] == ["QS2610", "QS2610A1"]
    assert D(period.posted_total) == D(period.charges_total) == now_october
    assert world.charge_states()["late-1"] == "synced"
    assert world.journal.charge(world.tenant, "late-1").journal_entry == "QS2610A1"

    # November is posted on request, before it closes; its charges are then in QuickBooks too.
    assert world.journal.run(world.tenant.tenant_id, force="2026-11")["posted"] == 1
    november_entry = world.entries()[-1]
    assert november_entry["DocNumber"] == "QS2611"
    assert income([november_entry], debit_id) == sum((D(c["amount"]) for c in november), D(0)) + D(october[4]["amount"])


def test_a_missing_mapping_blocks_the_period_until_it_is_mapped(world: World) -> None:
    world.journal.accept(
        world.tenant, [*charges(5), {"id": "x", "date": "2026-10-09", "amount": "9.99", "billing_code": "NEW"}]
    )
    outcome = world.journal.run(world.tenant.tenant_id)
    assert outcome["blocked"] == 1 and world.entries() == []
    period = world.journal.period(world.tenant, "2026-10")
    assert period.state == "blocked" and period.reason is not None
    assert period.reason["code"] == "mapping_missing" and "'NEW'" in period.reason["message"]
    assert "billing_codes" in period.reason["action"]
    assert world.journal.charge(world.tenant, "x").reason["code"] == "mapping_missing"  # type: ignore[index]
    assert set(world.charge_states().values()) == {"pending"}
    [issue] = world.events.of_type("configuration.issue")
    assert issue["detail"]["code"] == "mapping_missing" and issue["detail"]["id"] == "2026-10"
    world.journal.run(world.tenant.tenant_id)
    assert len(world.events.of_type("configuration.issue")) == 1  # reported once, not at every run
    assert world.events.of_type("transfer.failed") == []

    world.map("billing_codes", {"SUP": "Services", "LIC": "Sales of Product Income", "NEW": "Services"})
    assert world.journal.run(world.tenant.tenant_id)["posted"] == 1
    assert set(world.charge_states().values()) == {"synced"}
    assert world.journal.period(world.tenant, "2026-10").state == "synced"


def test_a_name_quickbooks_does_not_have_is_a_stale_mapping(world: World) -> None:
    world.map("billing_codes", {"SUP": "Services", "LIC": "Licence Income"})
    world.journal.accept(world.tenant, charges(6))
    assert world.journal.run(world.tenant.tenant_id)["blocked"] == 1
    reason = world.journal.period(world.tenant, "2026-10").reason
    assert reason is not None and reason["code"] == "mapping_stale" and "Licence Income" in reason["message"]
    assert world.entries() == []
    world.map("billing_codes", {"SUP": "Services", "LIC": "Sales of Product Income"})
    assert world.journal.run(world.tenant.tenant_id)["posted"] == 1
    assert world.journal.period(world.tenant, "2026-10").state == "synced"


def test_an_unset_balancing_account_is_a_configuration_issue(world: World) -> None:
    world.tenant.settings.pop("journal_debit_account")
    world.store.tenants.update(world.tenant)
    world.journal.accept(world.tenant, charges(3))
    assert world.journal.run(world.tenant.tenant_id)["blocked"] == 1
    reason = world.journal.period(world.tenant, "2026-10").reason
    assert reason is not None and "journal_debit_account" in reason["message"]


def test_a_worker_killed_after_quickbooks_took_the_entry_never_posts_it_twice(world: World) -> None:
    world.journal.accept(world.tenant, charges(40))
    original = world.journal._confirmed

    def die(*args: Any, **kwargs: Any) -> Any:
        raise SystemExit("worker killed")

    world.journal._confirmed = die  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        world.journal.run(world.tenant.tenant_id)
    world.journal._confirmed = original  # type: ignore[method-assign]
    assert len(world.entries()) == 1  # QuickBooks has it; qbsync did not record it
    world.journal.accept(world.tenant, charges(1, start=500))  # a new charge meanwhile changes nothing sent
    assert world.journal.run(world.tenant.tenant_id)["posted"] == 2  # the same entry (replayed), then an adjustment
    first, adjusting = world.entries()
    assert first["DocNumber"] == "QS2610" and adjusting["DocNumber"] == "QS2610A1"
    assert income(world.entries(), account_id(world, "Undeposited Funds")) == sum(
        (D(c["amount"]) for c in charges(40) + charges(1, start=500)), D(0)
    )


def test_runs_are_queued_per_company_and_handled_by_the_worker(world: World) -> None:
    world.journal.accept(world.tenant, charges(4))
    queued = world.journal.request_post(world.tenant, None)
    assert queued.target == f"qbo:{world.realm}"
    [(message, group, _)] = world.queue.sent
    assert message.kind == RUN_KIND and group == f"{world.tenant.tenant_id}:qbo:{world.realm}"
    assert world.journal.handle(message, MessageMeta("m", group, 1))["posted"] == 1
    with pytest.raises(ValidationFailed):
        world.journal.request_post(world.tenant, "2026-13")
    assert world.journal.enqueue_all() == {"summarized_tenants": 1, "runs_queued": 1}


def test_the_entry_body_has_the_shape_of_intuits_journal_entry_examples(world: World) -> None:
    from qbsync.sync.journal import _qbo_body
    from tests.sync.test_mapping import _examples, example_keys, xsd_elements

    world.journal.accept(world.tenant, charges(9))
    world.journal.run(world.tenant.tenant_id)
    [posting] = world.store.records.get(world.tenant.tenant_id, "journal_entries", "2026-10").payload["postings"]  # type: ignore[union-attr]
    body = _qbo_body(posting)
    assert set(body) <= example_keys("JournalEntry") | xsd_elements("JournalEntry")
    lines = [line for example in _examples("JournalEntry") for line in example.get("Line", [])]
    line_keys = {key for line in lines for key in line}
    detail_keys = {key for line in lines for key in line.get("JournalEntryLineDetail", {})}
    detail_keys |= xsd_elements("JournalEntryLineDetail")  # ClassRef: in Intuit's schema, not in the examples
    for line in body["Line"]:
        assert set(line) <= line_keys and set(line["JournalEntryLineDetail"]) <= detail_keys
        assert isinstance(line["Amount"], Decimal)


def test_a_run_out_of_time_continues_in_new_messages_until_everything_is_done(world: World) -> None:
    world.journal.budget_seconds = 0  # every run is out of time after its first step
    world.journal.accept(world.tenant, charges(12) + charges(3, day="2026-09-{d:02d}", start=100))
    outcome = world.journal.run(world.tenant.tenant_id)
    assert outcome["continued"] is True
    runs = 1
    for _ in range(100):
        if not world.queue.sent:
            break
        message, group, _ = world.queue.sent.pop(0)
        assert message.kind == RUN_KIND
        world.journal.handle(message, MessageMeta("m", group, 1))
        runs += 1
    assert world.queue.sent == [] and runs > 2  # it ended, after several continuations
    assert [e["DocNumber"] for e in world.entries()] == ["QS2609", "QS2610"]
    assert set(world.charge_states().values()) == {"synced"}


def test_a_refused_entry_is_not_resent_unchanged_and_a_forced_resend_is_a_new_request(world: World) -> None:
    world.tenant.settings["journal_debit_account"] = "Accounts Receivable (A/R)"  # QBO wants a customer on A/R
    world.store.tenants.update(world.tenant)
    world.journal.accept(world.tenant, charges(5))
    assert world.journal.run(world.tenant.tenant_id)["failed"] == 1
    period = world.journal.period(world.tenant, "2026-10")
    assert period.state == "failed" and period.reason is not None and period.reason["code"] == "quickbooks_error"
    assert period.entries[0].status == "failed" and period.entries[0].error is not None
    assert world.events.of_type("transfer.failed")[0]["detail"]["doc_number"] == "QS2610"
    assert world.entries() == [] and set(world.charge_states().values()) == {"pending"}
    sent: list[str] = []
    factory = world.journal.client_factory

    def recording(realm: str, tenant_id: str) -> Any:
        client = factory(realm, tenant_id)
        create = client.create

        def spy(entity: str, body: Any, *, request_id: str) -> Any:
            sent.append(request_id)
            return create(entity, body, request_id=request_id)

        client.create = spy
        return client

    world.journal.client_factory = recording
    assert world.journal.run(world.tenant.tenant_id)["failed"] == 0  # the same entry is not sent again by itself
    assert sent == []
    assert world.journal.run(world.tenant.tenant_id, force="2026-10")["failed"] == 1  # on request it is
    assert world.journal.run(world.tenant.tenant_id, force="2026-10")["failed"] == 1
    assert len(sent) == 2 and len(set(sent)) == 2  # each attempt a new requestid (Intuit would replay a fault)
    [entry] = world.store.records.get(world.tenant.tenant_id, "journal_entries", "2026-10").payload["postings"]  # type: ignore[union-attr]
    assert entry["attempt"] == 2

    world.tenant = world.store.tenants.get(world.tenant.tenant_id)  # type: ignore[assignment]
    world.tenant.settings["journal_debit_account"] = "Undeposited Funds"
    world.store.tenants.update(world.tenant)
    assert world.journal.run(world.tenant.tenant_id)["posted"] == 1
    assert [e["DocNumber"] for e in world.entries()] == ["QS2610"]  # the refused attempts left no gap
    assert world.journal.period(world.tenant, "2026-10").state == "synced"


def test_an_open_period_of_another_granularity_gives_its_days_to_the_new_setting(world: World) -> None:
    world.journal.accept(world.tenant, charges(4, day="2026-11-{d:02d}"))
    world.journal.run(world.tenant.tenant_id)
    assert world.journal.period(world.tenant, "2026-11").state == "pending"  # open, nothing sent
    world.tenant.settings["summarized_period"] = "daily"
    world.tenant = world.store.tenants.update(world.tenant)
    assert world.journal.charge(world.tenant, "ch-2").period == "2026-11-03"
    assert world.journal.run(world.tenant.tenant_id)["posted"] == 4  # those days have closed
    assert [e["DocNumber"] for e in world.entries()] == ["QS261101", "QS261102", "QS261103", "QS261104"]
    assert world.journal.period(world.tenant, "2026-11").charges == 0
