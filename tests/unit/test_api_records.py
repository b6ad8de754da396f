"""Records in: validation with the field named, idempotent re-posting, routing, and the state reported."""

from __future__ import annotations

import json

import pytest

from qbsync.api.services import Services, use_services
from qbsync.queue import MemoryTransferQueue
from qbsync.store.memory import MemoryStore
from qbsync.store.ports import QboConnection
from tests.conftest import Api


def body(response) -> dict:
    return json.loads(response.body)


@pytest.fixture
def queue(settings, memory_store: MemoryStore) -> MemoryTransferQueue:  # type: ignore[no-untyped-def]
    sent = MemoryTransferQueue()
    use_services(Services.build(settings, memory_store, queue=sent))
    return sent


def connect_qbo(store: MemoryStore, tenant_id: str, realm_id: str) -> None:
    store.qbo.create(
        QboConnection(
            tenant_id=tenant_id,
            realm_id=realm_id,
            status="connected",
            company_name="Co",
            tokens="x",
            access_expires_at=0,
            refresh_expires_at=0,
            connected_at="",
            updated_at="",
        )
    )


def customer(i: int = 1, **extra: object) -> dict:
    return {"id": f"c-{i}", "name": f"Customer {i}", "email": f"c{i}@example.com", **extra}


def test_without_a_connection_records_wait_and_say_why(api: Api, queue: MemoryTransferQueue) -> None:
    key = api.create_tenant()["api_key"]
    answer = api.request("POST", "/v1/customers", key=key, json_body=customer())
    assert answer.status_code == 202
    [accepted] = body(answer)["transfers"]
    assert accepted["status"] == "waiting" and queue.sent == []
    state = body(api.request("GET", "/v1/customers/c-1", key=key))
    assert state["state"] == "waiting" and state["reason"]["code"] == "not_connected"
    missing = api.request("GET", "/v1/customers/c-404", key=key)
    assert missing.status_code == 404 and body(missing)["code"] == "not_found"


def test_records_are_routed_to_the_connected_company_in_one_message_group(
    api: Api, queue: MemoryTransferQueue, memory_store: MemoryStore
) -> None:
    created = api.create_tenant()
    connect_qbo(memory_store, created["tenant_id"], "4620816365")
    answer = api.request("POST", "/v1/customers", key=created["api_key"], json_body=[customer(1), customer(2)])
    assert [t["status"] for t in body(answer)["transfers"]] == ["queued", "queued"]
    groups = {group for _, group, _ in queue.sent}
    assert groups == {f"{created['tenant_id']}:qbo:4620816365"}
    assert [m.kind for m, _, _ in queue.sent] == ["sync.customers", "sync.customers"]


def test_reposting_the_same_content_is_a_no_op_and_a_change_is_a_new_transfer(
    api: Api, queue: MemoryTransferQueue
) -> None:
    key = api.create_tenant()["api_key"]
    first = body(api.request("POST", "/v1/customers", key=key, json_body=customer()))["transfers"][0]
    same = body(api.request("POST", "/v1/customers", key=key, json_body=customer()))["transfers"][0]
    changed = body(api.request("POST", "/v1/customers", key=key, json_body=customer(phone="555-0100")))["transfers"][0]
    assert same == {**first, "status": "unchanged"}
    assert changed["transfer_id"] != first["transfer_id"]


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/v1/customers", customer(tax_exempt="yes"), "tax_exempt"),
        ("/v1/customers", customer(email="not-an-email"), "email"),
        ("/v1/customers", customer(colour="red"), "colour"),
        ("/v1/customers", [customer(1), customer(1)], "1.id"),
        (
            "/v1/payments",
            [
                {
                    "id": "p",
                    "customer_id": "c",
                    "date": "2026-11-01",
                    "amount": "10.005",
                    "applied_to": [{"invoice_id": "i", "amount": "10.005"}],
                }
            ],
            "0.amount",
        ),
        (
            "/v1/invoices",
            {
                "id": "i",
                "customer_id": "c",
                "date": "2026-11-01",
                "lines": [{"item_id": "x", "quantity": "2", "rate": "10"}],
                "total": "25.00",
            },
            "body",
        ),
        (
            "/v1/invoices",
            {"id": "i", "customer_id": "c", "date": "not a date", "lines": [{"item_id": "x", "rate": 1}]},
            "date",
        ),
        ("/v1/items", [], "body"),
    ],
)
def test_bad_records_are_refused_with_the_field_named_and_nothing_stored(
    api: Api, queue: MemoryTransferQueue, memory_store: MemoryStore, path: str, payload: object, field: str
) -> None:
    key = api.create_tenant()["api_key"]
    answer = api.request("POST", path, key=key, json_body=payload)
    assert answer.status_code == 422, answer.body
    assert field in [e["field"] for e in body(answer)["errors"]]
    assert (
        memory_store.records.list(body(api.request("GET", "/v1/tenant", key=key))["tenant_id"], "customers").items == []
    )


def test_too_many_records_in_one_post_are_refused(api: Api, queue: MemoryTransferQueue) -> None:
    key = api.create_tenant()["api_key"]
    answer = api.request("POST", "/v1/items", key=key, json_body=[{"id": f"i{i}", "name": "x"} for i in range(501)])
    assert answer.status_code == 422 and "500" in body(answer)["errors"][0]["message"]


def test_sync_data_sends_everything_waiting_and_reports_progress(
    api: Api, queue: MemoryTransferQueue, memory_store: MemoryStore
) -> None:
    created = api.create_tenant()
    key, tenant_id = created["api_key"], created["tenant_id"]
    api.request("POST", "/v1/customers", key=key, json_body=[customer(i) for i in range(3)])
    assert queue.sent == []  # nothing connected yet: they wait
    connect_qbo(memory_store, tenant_id, "555")
    started = api.request("POST", "/v1/sync", key=key, json_body={"kinds": ["customers"]})
    assert started.status_code == 202, started.body
    progress = body(started)
    assert progress["queued"] == 3 and progress["remaining"] == 3 and progress["done"] == 0
    assert len(queue.sent) == 3
    record = memory_store.records.get(tenant_id, "customers", "c-0")
    assert record is not None
    from dataclasses import replace

    memory_store.records.save(replace(record, state="synced", qb_id="1"))
    again = body(api.request("GET", f"/v1/sync/{progress['sync_id']}", key=key))
    assert (again["done"], again["remaining"], again["by_kind"]["customers"]["done"]) == (1, 2, 1)
    assert api.request("GET", "/v1/sync/s_nope", key=key).status_code == 404


def test_resync_sends_a_failed_record_again(api: Api, queue: MemoryTransferQueue, memory_store: MemoryStore) -> None:
    from dataclasses import replace

    created = api.create_tenant()
    connect_qbo(memory_store, created["tenant_id"], "555")
    api.request("POST", "/v1/customers", key=created["api_key"], json_body=customer())
    record = memory_store.records.get(created["tenant_id"], "customers", "c-1")
    assert record is not None
    memory_store.records.save(replace(record, state="failed", reason={"code": "qbo_validation"}))
    answer = api.request("POST", "/v1/records/customers/c-1/resync", key=created["api_key"])
    assert answer.status_code == 202
    view = body(answer)
    assert view["state"] == "pending" and view["transfer_id"] != record.transfer_id and len(queue.sent) == 2
    assert api.request("POST", "/v1/records/planets/x/resync", key=created["api_key"]).status_code == 404
