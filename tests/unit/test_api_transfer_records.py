"""Timesheets, expense reports and purchase orders in (T6-T8): one object or a list, 202, idempotent, every bad field
named, and the state readable at GET /v1/<kind>/{id}."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from qbsync.api.services import Services, use_services
from qbsync.queue import MemoryTransferQueue
from qbsync.store.memory import MemoryStore
from qbsync.sync.records import SourceTimesheet
from tests.conftest import Api


def body(response: Any) -> dict[str, Any]:
    return dict(json.loads(response.body))


@pytest.fixture
def queue(settings, memory_store: MemoryStore) -> MemoryTransferQueue:  # type: ignore[no-untyped-def]
    sent = MemoryTransferQueue()
    use_services(Services.build(settings, memory_store, queue=sent))
    return sent


TIMESHEET = {
    "id": "t-1",
    "date": "2026-11-02",
    "resource_id": "r-1",
    "customer_id": "c-1",
    "service_item_id": "svc",
    "duration": "PT7H30M",
    "billable": True,
}
EXPENSE_REPORT = {
    "id": "e-1",
    "date": "2026-11-02",
    "resource_id": "r-1",
    "lines": [{"category": "travel", "amount": "12.50"}],
}
PURCHASE_ORDER = {
    "id": "p-1",
    "date": "2026-11-02",
    "vendor": "Parts Inc",
    "lines": [{"item_id": "i-1", "quantity": "3", "rate": "2.5"}],
}


@pytest.mark.parametrize(
    ("path", "record"),
    [("timesheets", TIMESHEET), ("expense-reports", EXPENSE_REPORT), ("purchase-orders", PURCHASE_ORDER)],
)
def test_accepted_idempotent_and_readable(api: Api, queue: MemoryTransferQueue, path: str, record: dict) -> None:
    key = api.create_tenant()["api_key"]
    first = api.request("POST", f"/v1/{path}", key=key, json_body=[record])
    assert first.status_code == 202 and body(first)["transfers"][0]["status"] == "waiting"
    again = api.request("POST", f"/v1/{path}", key=key, json_body=record)
    assert body(again)["transfers"][0]["status"] == "unchanged"
    state = body(api.request("GET", f"/v1/{path}/{record['id']}", key=key))
    assert state["state"] == "waiting" and state["kind"] == path.replace("-", "_")
    assert api.request("GET", f"/v1/{path}/nope", key=key).status_code == 404
    assert api.request("POST", f"/v1/records/{path}/{record['id']}/resync", key=key).status_code == 202


@pytest.mark.parametrize(
    ("path", "record", "field"),
    [
        ("timesheets", {**TIMESHEET, "duration": "7 hours"}, "duration"),
        ("timesheets", {**TIMESHEET, "duration": 0}, "body"),
        ("timesheets", {**TIMESHEET, "customer_id": None}, "body"),  # billable without a customer
        ("timesheets", {**TIMESHEET, "service_item_id": None}, "service_item_id"),
        ("expense-reports", {**EXPENSE_REPORT, "paid_with": "cash"}, "paid_with"),
        ("expense-reports", {**EXPENSE_REPORT, "lines": [{"category": "t", "amount": "1.005"}]}, "lines.0.amount"),
        ("expense-reports", {**EXPENSE_REPORT, "lines": []}, "lines"),
        ("purchase-orders", {**PURCHASE_ORDER, "vendor_resource_id": "r-1"}, "body"),  # two vendors
        (
            "purchase-orders",
            {**PURCHASE_ORDER, "lines": [{"item_id": "i", "quantity": 0, "rate": 1}]},
            "lines.0.quantity",
        ),
        ("purchase-orders", {**PURCHASE_ORDER, "colour": "red"}, "colour"),
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(
    api: Api, queue: MemoryTransferQueue, memory_store: MemoryStore, path: str, record: dict, field: str
) -> None:
    created = api.create_tenant()
    answer = api.request("POST", f"/v1/{path}", key=created["api_key"], json_body=record)
    assert answer.status_code == 422, answer.body
    problem = body(answer)
    assert problem["code"] == "validation_error"
    assert field in {e["field"] for e in problem["errors"]}, problem["errors"]
    kind = path.replace("-", "_")
    assert memory_store.records.get(created["tenant_id"], kind, record["id"]) is None


def test_durations_in_hours_or_iso_8601() -> None:
    def minutes(duration: object) -> int:
        return SourceTimesheet.model_validate({**TIMESHEET, "duration": duration}).minutes

    assert minutes("PT7H30M") == minutes(7.5) == minutes("7.5") == minutes(Decimal("7.5")) == 450
    assert minutes("PT45M") == 45 and minutes("PT1H0M30S") == 61  # half a minute rounds up
    assert SourceTimesheet.model_validate({**TIMESHEET, "duration": "PT7H30M"}).duration == Decimal("7.5")
