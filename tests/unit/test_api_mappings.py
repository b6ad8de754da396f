"""`GET|PUT /v1/mappings/{kind}`: validation per kind, replacement, tenant isolation, and the lookup use cases use."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qbsync.mappings import Mappings, MissingMapping
from qbsync.store.memory import MemoryStore
from tests.conftest import Api


def put(api: Api, key: str, kind: str, entries: Any) -> Any:
    return api.request("PUT", f"/v1/mappings/{kind}", key=key, json_body={"entries": entries})


def test_every_kind_is_listed_empty_then_set_and_replaced(api: Api) -> None:
    key = api.create_tenant()["api_key"]
    listed = json.loads(api.request("GET", "/v1/mappings", key=key).body)
    assert [(m["kind"], m["entries"], m["updated_at"]) for m in listed["items"]] == [
        ("billing_codes", {}, None),
        ("expense_categories", {}, None),
        ("lines_of_business", {}, None),
        ("resources", {}, None),
        ("payroll_categories", {}, None),
    ]
    response = put(api, key, "billing_codes", {"CONS": {"name": "Consulting Income"}, "HW": {"name": "Sales:Hardware"}})
    assert response.status_code == 200, response.body
    body = json.loads(response.body)
    assert body["target"] == "income account" and body["updated_at"]
    assert body["entries"] == {
        "CONS": {"name": "Consulting Income", "type": None},
        "HW": {"name": "Sales:Hardware", "type": None},
    }
    put(api, key, "billing_codes", {"HW": {"name": "Hardware"}})
    got = json.loads(api.request("GET", "/v1/mappings/billing_codes", key=key).body)
    assert got["entries"] == {"HW": {"name": "Hardware", "type": None}}


def test_resources_name_an_employee_or_a_vendor(api: Api, memory_store: MemoryStore) -> None:
    tenant = api.create_tenant()
    key = tenant["api_key"]
    ok = put(
        api,
        key,
        "resources",
        {"R-1": {"name": "Ann Lee", "type": "employee"}, "R-2": {"name": "Bo Ltd", "type": "vendor"}},
    )
    assert ok.status_code == 200, ok.body
    mappings = Mappings.load(memory_store, tenant["tenant_id"])
    assert mappings.target("resources", "R-1", field="resource_id").type == "employee"
    assert mappings.get("resources", "R-3") is None
    with pytest.raises(MissingMapping) as missing:
        mappings.target("resources", "R-3", field="resource_id")
    assert missing.value.code == "mapping_missing" and missing.value.configuration is True
    assert "PUT /v1/mappings/resources" in missing.value.message


@pytest.mark.parametrize(
    ("kind", "entries", "field"),
    [
        ("resources", {"R-1": {"name": "Ann Lee"}}, "entries.R-1.type"),
        ("billing_codes", {"CONS": {"name": "Income", "type": "vendor"}}, "entries.CONS.type"),
        ("resources", {"R-1": {"name": "x" * 42, "type": "employee"}}, "entries.R-1.name"),
        ("payroll_categories", {"REG": {"name": "y" * 32}}, "entries.REG.name"),
    ],
)
def test_kind_rules_are_refused_with_the_entry_named(api: Api, kind: str, entries: Any, field: str) -> None:
    key = api.create_tenant()["api_key"]
    response = put(api, key, kind, entries)
    assert response.status_code == 422, response.body
    problem = json.loads(response.body)
    assert problem["code"] == "validation_error"
    assert [e["field"] for e in problem["errors"]] == [field]
    assert json.loads(api.request("GET", f"/v1/mappings/{kind}", key=key).body)["entries"] == {}  # nothing stored


@pytest.mark.parametrize(
    "body",
    [
        {"entries": {"A": "Income"}},  # a bare string, not a target object
        {"entries": {"A": {"name": ""}}},
        {"entries": {"A": {"name": "x" * 160}}},
        {"entries": {"A": {"name": "Income\x07"}}},
        {"entries": {"": {"name": "Income"}}},
        {"entries": {"a": {"name": "One"}, "A": {"name": "Two"}}},  # keys differing only in case
        {"entries": {f"K{i}": {"name": "Income"} for i in range(501)}},
        {"entries": {}, "extra": 1},
        {},
    ],
)
def test_malformed_bodies_are_refused_and_change_nothing(api: Api, body: Any) -> None:
    key = api.create_tenant()["api_key"]
    put(api, key, "billing_codes", {"KEEP": {"name": "Income"}})
    response = api.request("PUT", "/v1/mappings/billing_codes", key=key, json_body=body)
    assert response.status_code in (400, 422), response.body
    assert json.loads(api.request("GET", "/v1/mappings/billing_codes", key=key).body)["entries"] == {
        "KEEP": {"name": "Income", "type": None}
    }


def test_unknown_kind_is_404_and_tenants_are_isolated(api: Api) -> None:
    a = api.create_tenant("A")["api_key"]
    b = api.create_tenant("B")["api_key"]
    assert api.request("GET", "/v1/mappings/colours", key=a).status_code == 404
    assert put(api, a, "colours", {"X": {"name": "Y"}}).status_code == 404
    put(api, a, "lines_of_business", {"MSP": {"name": "Managed Services"}})
    assert json.loads(api.request("GET", "/v1/mappings/lines_of_business", key=b).body)["entries"] == {}
    assert api.request("GET", "/v1/mappings", key="not-a-key").status_code == 401
