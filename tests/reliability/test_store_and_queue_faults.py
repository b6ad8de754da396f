"""Faults in qbsync's own AWS services, end to end: DynamoDB throttling past botocore's retries (the DynamoDB
adapter over moto, the error injected on the client), a record changing while the worker writes its previous
content to QuickBooks (the conditional write race), and the transfer queue refusing a send. Each case ends with
the audit: every accepted record is in QuickBooks exactly once, with the content last accepted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from qbsync import aws
from qbsync.queue import SendFailed
from tests.world import Tenant, World, build_world

INVOICE = {
    "id": "inv-1",
    "customer_id": "c-1",
    "date": "2026-11-05",
    "doc_number": "R-1",
    "lines": [{"item_id": "svc", "quantity": "2", "rate": "30.00"}],
}


def seed(world: World) -> tuple[Tenant, str]:
    tenant = world.tenant("Racy Co", auto_create_customers=True, auto_create_items=True, income_account="Services")
    realm = world.connect_qbo(tenant, "Racy Books")
    world.ok("POST", "/v1/customers", key=tenant.api_key, json_body={"id": "c-1", "name": "Racy", "email": "r@x.io"})
    world.ok("POST", "/v1/items", key=tenant.api_key, json_body={"id": "svc", "name": "Racy Work", "price": "30.00"})
    world.drain()
    return tenant, realm


def qb_invoices(world: World, realm: str) -> list[dict[str, Any]]:
    return list(world.emulator.company(realm).entities["Invoice"].values())


@pytest.fixture
def dynamo_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with build_world(monkeypatch, dynamo=True) as world:
        yield world


def throttle(world: World, operation: str, times: int, *, when: Callable[[dict[str, Any]], bool]) -> list[str]:
    """The next ``times`` DynamoDB ``operation`` calls matching ``when(params)`` fail with
    ProvisionedThroughputExceededException, as they do once botocore's own retries are spent."""
    failed: list[str] = []

    def before_call(params: dict[str, Any], **_: Any) -> Any:
        if len(failed) < times and when(params.get("body", {}) if isinstance(params, dict) else {}):
            failed.append(operation)
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "Rate exceeded"}}, operation
            )
        return None

    client = aws.client("dynamodb", world.settings)
    client.meta.events.register(f"before-call.dynamodb.{operation}", before_call)
    return failed


def test_dynamodb_throttling_after_the_quickbooks_write_is_redelivered_and_writes_once(dynamo_world: World) -> None:
    """The worker wrote the invoice to QuickBooks, then DynamoDB refused to record it (throttled): the message
    comes back, the retry finds the invoice by its requestid, and QuickBooks holds one invoice."""
    world = dynamo_world
    tenant, realm = seed(world)
    world.ok("POST", "/v1/invoices", key=tenant.api_key, json_body=INVOICE)
    failed = throttle(world, "UpdateItem", 2, when=lambda body: "synced" in str(body) and "inv-1" in str(body))
    world.drain(redeliver=True)
    assert failed == ["UpdateItem", "UpdateItem"] and world.redelivered == 2
    view = world.ok("GET", "/v1/invoices/inv-1", key=tenant.api_key)
    assert view["state"] == "synced"
    [invoice] = qb_invoices(world, realm)
    assert invoice["Id"] == view["quickbooks_id"]
    assert world.emulator.company(realm).counts["replays"] >= 2


def test_dynamodb_throttling_while_accepting_a_post_is_a_503_to_retry_and_loses_nothing(dynamo_world: World) -> None:
    world = dynamo_world
    tenant, realm = seed(world)
    throttle(world, "BatchWriteItem", 1, when=lambda body: True)  # the transfer-history write
    refused = world.call("POST", "/v1/invoices", key=tenant.api_key, json_body=INVOICE)
    assert refused.status_code == 503 and refused.headers["Content-Type"] == "application/problem+json"
    assert b'"code":"service_busy"' in refused.body and refused.headers["Retry-After"] == "2"
    again = world.ok("POST", "/v1/invoices", key=tenant.api_key, json_body=INVOICE)  # the client retries
    assert again["transfers"][0]["status"] in ("queued", "unchanged")
    world.drain(redeliver=True)
    assert world.ok("GET", "/v1/invoices/inv-1", key=tenant.api_key)["state"] == "synced"
    assert len(qb_invoices(world, realm)) == 1


def test_a_queue_refusing_the_send_is_a_503_and_the_retried_post_sends_it(world: World) -> None:
    """The record was stored but its message never reached the queue: the client is told to retry (503), and the
    retried POST — the same content — must still send it (not answer 'unchanged' and leave it stranded)."""
    tenant, realm = seed(world)
    original = world.queue.send_many
    calls: list[int] = []

    def refuse_once(messages: Any) -> None:
        calls.append(len(messages))
        if len(calls) == 1:
            raise SendFailed("SQS refused 1 message(s)")
        original(messages)

    world.queue.send_many = refuse_once  # type: ignore[method-assign]
    refused = world.call("POST", "/v1/invoices", key=tenant.api_key, json_body=INVOICE)
    assert refused.status_code == 503 and b"queue_send_failed" in refused.body
    world.ok("POST", "/v1/invoices", key=tenant.api_key, json_body=INVOICE)
    world.drain(redeliver=True)
    assert world.ok("GET", "/v1/invoices/inv-1", key=tenant.api_key)["state"] == "synced"
    assert len(qb_invoices(world, realm)) == 1


def test_a_record_changed_while_its_old_content_is_written_is_updated_not_duplicated(world: World) -> None:
    """The conditional-write race: while the worker creates invoice v1 in QuickBooks, v2 is posted. The worker's
    version-checked save loses; v2's transfer must update the invoice v1 created, not create a second one."""
    tenant, realm = seed(world)
    world.ok("POST", "/v1/invoices", key=tenant.api_key, json_body=INVOICE)
    worker = world.services.sync
    original = worker._finish
    changed = {**INVOICE, "lines": [{"item_id": "svc", "quantity": "3", "rate": "30.00"}], "memo": "three"}

    def race(record: Any, state: Any, **kwargs: Any) -> Any:
        if record.source_id == "inv-1" and state == "synced" and not race.done:  # type: ignore[attr-defined]
            race.done = True  # type: ignore[attr-defined]
            world.ok("POST", "/v1/invoices", key=tenant.api_key, json_body=changed)
        return original(record, state, **kwargs)

    race.done = False  # type: ignore[attr-defined]
    worker._finish = race  # type: ignore[method-assign]
    world.drain(redeliver=True)
    assert race.done  # type: ignore[attr-defined]
    view = world.ok("GET", "/v1/invoices/inv-1", key=tenant.api_key)
    assert view["state"] == "synced"
    invoices = qb_invoices(world, realm)
    assert len(invoices) == 1, [(i["Id"], i["TotalAmt"]) for i in invoices]
    assert invoices[0]["Id"] == view["quickbooks_id"] and float(invoices[0]["TotalAmt"]) == 90.0
