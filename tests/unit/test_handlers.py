"""The Lambda handlers in functions/ with real-shaped events: partial batch failures, FIFO group order,
poison messages, and recorded schedule runs."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest

from infra.functions import lambda_context
from qbsync.store.factory import set_store
from qbsync.store.memory import MemoryStore
from qbsync.store.ports import Tenant
from qbsync.transfers import MessageMeta, TransferDispatcher, TransferMessage, use_dispatcher
from tests.support import load_function_module


def sqs_record(body: str, group: str, receive_count: int = 1) -> dict[str, Any]:
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "rh-" + uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1700000000000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1700000000001",
            "SequenceNumber": "18849496460467696128",
            "MessageGroupId": group,
            "MessageDeduplicationId": uuid.uuid4().hex,
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:qbsync-transfers.fifo",
        "awsRegion": "us-east-1",
    }


def message(transfer_id: str, kind: str = "probe", **payload: Any) -> str:
    return json.dumps(
        {"tenant_id": "t_1", "transfer_id": transfer_id, "kind": kind, "target": "qbo", "payload": payload}
    )


@pytest.fixture
def handled() -> list[tuple[str, str | None]]:
    """A dispatcher with one 'probe' handler that records what it saw and fails when asked to."""
    seen: list[tuple[str, str | None]] = []

    def probe(msg: TransferMessage, meta: MessageMeta) -> dict[str, Any]:
        if msg.payload.get("fail"):
            raise RuntimeError("QuickBooks said no")
        seen.append((msg.transfer_id, meta.group_id))
        return {"ok": True}

    dispatcher = TransferDispatcher()
    dispatcher.register("probe", probe)
    use_dispatcher(dispatcher)
    return seen


def test_transfer_worker_reports_failures_and_holds_the_failed_group(handled) -> None:
    handler = load_function_module("transfer_worker").handler
    records = [
        sqs_record(message("a1"), "realm-A"),
        sqs_record(message("a2", fail=True), "realm-A"),
        sqs_record(message("b1"), "realm-B"),
        sqs_record(message("a3"), "realm-A"),  # must not run before a2 succeeds: order within a company
        sqs_record(message("b2"), "realm-B"),
    ]
    result = handler({"Records": records}, lambda_context("TransferWorkerFunction", 60))
    failed = {item["itemIdentifier"] for item in result["batchItemFailures"]}
    assert failed == {records[1]["messageId"], records[3]["messageId"]}
    assert handled == [("a1", "realm-A"), ("b1", "realm-B"), ("b2", "realm-B")]


def test_poison_and_unknown_messages_are_returned_for_redelivery_not_dropped(handled) -> None:
    handler = load_function_module("transfer_worker").handler
    records = [
        sqs_record("{not json", "g1"),
        sqs_record(json.dumps({"tenant_id": "t_1"}), "g2"),
        sqs_record(message("x1", kind="spaceship"), "g3"),
        sqs_record(message("ok"), "g4"),
    ]
    result = handler({"Records": records}, lambda_context("TransferWorkerFunction", 60))
    failed = {item["itemIdentifier"] for item in result["batchItemFailures"]}
    assert failed == {r["messageId"] for r in records[:3]}
    assert handled == [("ok", "g4")]


def scheduled_event() -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-21T06:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/qbsync-reconciler"],
        "detail": {},
    }


def add_tenant(store: MemoryStore, tenant_id: str, status: str) -> None:
    from qbsync.store.ports import ApiKey

    tenant = Tenant(tenant_id, tenant_id, status, {}, "2026-11-21T00:00:00.000Z", "2026-11-21T00:00:00.000Z")  # type: ignore[arg-type]
    store.tenants.create(tenant, ApiKey("k" + tenant_id[-15:].rjust(15, "0"), tenant_id, "scrypt$x", tenant.created_at))


@pytest.mark.parametrize("folder", ["reconciler"])
def test_scheduled_handlers_visit_active_tenants_and_record_each_run(folder: str) -> None:
    store = MemoryStore()
    set_store(store)
    for tenant_id, status in (("t_a", "active"), ("t_b", "active"), ("t_c", "inactive")):
        add_tenant(store, tenant_id, status)
    handler = load_function_module(folder).handler
    first = handler(scheduled_event(), lambda_context(folder, 120))
    second = handler(scheduled_event(), lambda_context(folder, 120))
    assert first["schedule"] == folder and first["run"] == 1 and first["ok"] is True
    assert first["active_tenants"] == 2 and first["qbo_companies"] == 0  # nobody connected QuickBooks Online
    assert second["run"] == 2
    run = store.schedule_runs.get(folder)
    assert run is not None and run.runs == 2 and run.last_finished_at and run.last_outcome["ok"] is True


def test_summarizer_counts_summarized_tenants_and_queues_runs_only_where_quickbooks_is_connected() -> None:
    store = MemoryStore()
    set_store(store)
    for tenant_id, status in (("t_a", "active"), ("t_b", "active"), ("t_c", "inactive")):
        add_tenant(store, tenant_id, status)
    for tenant_id in ("t_a", "t_c"):
        tenant = store.tenants.get(tenant_id)
        assert tenant is not None
        tenant.settings["mode"] = "summarized"
        store.tenants.update(tenant)
    result = load_function_module("summarizer").handler(scheduled_event(), lambda_context("summarizer", 120))
    assert result["schedule"] == "summarizer" and result["ok"] is True
    assert result["summarized_tenants"] == 1 and result["runs_queued"] == 0  # t_a has no QuickBooks yet


def test_sweeper_without_a_dead_letter_queue_says_so() -> None:
    set_store(MemoryStore())
    result = load_function_module("job_sweeper").handler(scheduled_event(), lambda_context("job_sweeper", 120))
    assert result["dead_letter_queue"] == "not configured"


def test_failed_schedule_run_is_recorded_and_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    from qbsync.schedules import ScheduleRunner

    store = MemoryStore()

    def broken() -> dict[str, Any]:
        raise TimeoutError("QuickBooks too slow")

    with pytest.raises(TimeoutError):
        ScheduleRunner(store).run("reconciler", broken)
    run = store.schedule_runs.get("reconciler")
    assert run is not None and run.last_outcome == {"ok": False, "error": "TimeoutError"}
