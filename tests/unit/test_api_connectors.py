"""Connectors through the API (C1-C3): the grid, unique usernames, the .qwc file, lockout and unlock."""

from __future__ import annotations

import json
import re

import pytest
from lxml import etree

from qbsync.api.services import Services
from qbsync.store.memory import MemoryStore
from tests.conftest import ADMIN_KEY, Api
from tests.support import REFERENCE

GUID = re.compile(r"^\{[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\}$")


def body(response) -> dict:
    return json.loads(response.body)


def create_connector(api: Api, key: str, name: str = "Main office", username: str = "acme-main", **extra) -> dict:
    payload = {"name": name, "username": username, "password": "correct horse battery", **extra}
    response = api.request("POST", "/v1/connectors", key=key, json_body=payload)
    assert response.status_code == 201, response.body
    return body(response)


def test_first_connector_is_default_and_the_grid_lists_all(api: Api, memory_store: MemoryStore) -> None:
    key = api.create_tenant()["api_key"]
    first = create_connector(api, key, run_every_minutes=30, enabled_transfers=["customers", "invoices"])
    second = create_connector(api, key, name="Warehouse", username="acme-warehouse")
    assert first["is_default"] is True and second["is_default"] is False
    assert first["enabled_transfers"] == ["customers", "invoices"] and first["run_every_minutes"] == 30
    assert "password" not in first and "password_hash" not in first
    stored = memory_store.connectors.get(api_tenant_id(api, key), first["connector_id"])
    assert stored is not None and stored.password_hash.startswith("scrypt$")
    assert "correct horse" not in repr(memory_store.__dict__)

    grid = body(api.request("GET", "/v1/connectors", key=key))["items"]
    assert [c["name"] for c in grid] == ["Main office", "Warehouse"]
    assert {"last_sync_at", "last_status", "conversations", "locked", "last_login_failure"} <= set(grid[0])


def api_tenant_id(api: Api, key: str) -> str:
    return body(api.request("GET", "/v1/tenant", key=key))["tenant_id"]


def test_usernames_are_unique_across_tenants(api: Api) -> None:
    create_connector(api, api.create_tenant("A")["api_key"], username="shared-name")
    other = api.create_tenant("B")["api_key"]
    response = api.request(
        "POST",
        "/v1/connectors",
        key=other,
        json_body={"name": "x", "username": "Shared-Name", "password": "another password"},
    )
    assert response.status_code == 409 and body(response)["code"] == "already_exists"


def test_connector_input_is_validated_with_the_field_named(api: Api) -> None:
    key = api.create_tenant()["api_key"]
    cases = {
        "password": {"name": "x", "username": "okname", "password": "short"},
        "username": {"name": "x", "username": "has space", "password": "long enough pw"},
        "enabled_transfers.0": {
            "name": "x",
            "username": "okname",
            "password": "long enough pw",
            "enabled_transfers": ["spaceships"],
        },
        "run_every_minutes": {"name": "x", "username": "okname", "password": "long enough pw", "run_every_minutes": 0},
    }
    for field, payload in cases.items():
        response = api.request("POST", "/v1/connectors", key=key, json_body=payload)
        assert response.status_code == 422, field
        assert body(response)["errors"][0]["field"] == field


def test_connectors_are_private_to_their_tenant(api: Api) -> None:
    mine = create_connector(api, api.create_tenant("A")["api_key"])
    other = api.create_tenant("B")["api_key"]
    for method, path in (("GET", ""), ("GET", "/qwc"), ("POST", "/unlock")):
        response = api.request(method, f"/v1/connectors/{mine['connector_id']}{path}", key=other)
        assert response.status_code == 404 and body(response)["code"] == "not_found"
    assert body(api.request("GET", "/v1/connectors", key=other))["items"] == []


def test_patch_changes_fields_and_the_default_cannot_be_disabled(api: Api, services: Services) -> None:
    key = api.create_tenant()["api_key"]
    connector = create_connector(api, key)
    path = f"/v1/connectors/{connector['connector_id']}"
    response = api.request("PATCH", path, key=key, json_body={"name": "Head office", "password": "a new password"})
    assert response.status_code == 200 and body(response)["name"] == "Head office"
    assert services.connectors.login("acme-main", "a new password").ok
    assert not services.connectors.login("acme-main", "correct horse battery").ok
    refused = api.request("PATCH", path, key=key, json_body={"enabled": False})
    assert refused.status_code == 409


def parse_qwc(raw: bytes) -> dict[str, str]:
    root = etree.fromstring(raw)
    assert root.tag == "QBWCXML"
    return {child.tag: (child.text or "") for child in root if len(child) == 0} | {
        "RunEveryNMinutes": root.findtext("Scheduler/RunEveryNMinutes") or ""
    }


def test_qwc_file_is_what_the_web_connector_expects(api: Api) -> None:
    key = api.create_tenant()["api_key"]
    connector = create_connector(api, key, run_every_minutes=20)
    response = api.request("GET", f"/v1/connectors/{connector['connector_id']}/qwc", key=key)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/xml")
    assert response.headers["Content-Disposition"] == 'attachment; filename="qbsync-Main-office.qwc"'
    qwc = parse_qwc(response.body)
    assert qwc["AppURL"] == "http://localhost/qbwc"  # loopback becomes localhost: the Web Connector refuses IPs
    assert qwc["AppSupport"] == "http://localhost/qbwc/support"
    assert qwc["UserName"] == "acme-main" and qwc["QBType"] == "QBFS" and qwc["RunEveryNMinutes"] == "20"
    assert GUID.match(qwc["OwnerID"]) and GUID.match(qwc["FileID"])
    again = parse_qwc(api.request("GET", f"/v1/connectors/{connector['connector_id']}/qwc", key=key).body)
    assert (again["OwnerID"], again["FileID"]) == (qwc["OwnerID"], qwc["FileID"])  # stable across downloads


def test_qwc_has_every_element_the_reference_qwc_files_have() -> None:
    from qbsync.qbwc.qwc import qwc_document
    from qbsync.store.ports import Connector

    samples = sorted((REFERENCE / "qbwc" / "qwc").glob("*.qwc"))
    if not samples:
        pytest.skip("reference .qwc files not found beside the repository")
    connector = Connector("c1", "t1", "Main", "user", "h", "{A}", "{B}", 15, [], "", "")
    ours = set(parse_qwc(qwc_document(connector, "https://qb.example.com/prod")))
    required = {"AppName", "AppID", "AppURL", "AppDescription", "AppSupport", "UserName", "OwnerID", "FileID", "QBType"}
    for sample in samples:
        theirs = {el.tag for el in etree.parse(str(sample)).getroot().iter() if isinstance(el.tag, str)}
        assert required & theirs <= ours, sample.name


def test_public_url_rules_for_the_app_url() -> None:
    from qbsync.errors import NotConfigured
    from qbsync.qbwc.qwc import web_connector_urls

    assert web_connector_urls("https://qb.example.com/prod/") == (
        "https://qb.example.com/prod/qbwc",
        "https://qb.example.com/prod/qbwc/support",
    )
    assert web_connector_urls("http://127.0.0.1:8000")[0] == "http://localhost:8000/qbwc"
    for bad in ("http://qb.example.com", "https://10.0.0.5"):
        with pytest.raises(NotConfigured):
            web_connector_urls(bad)


def test_wrong_passwords_lock_the_connector_until_unlocked(api: Api, services: Services) -> None:
    key = api.create_tenant()["api_key"]
    connector = create_connector(api, key)
    api.request("PATCH", "/v1/tenant/settings", key=key, json_body={"connector_lockout_attempts": 3})
    outcomes = [services.connectors.login("acme-main", "wrong password").refused for _ in range(3)]
    assert outcomes == ["wrong_password", "wrong_password", "locked"]
    assert services.connectors.login("acme-main", "correct horse battery").refused == "locked"
    grid = body(api.request("GET", f"/v1/connectors/{connector['connector_id']}", key=key))
    assert grid["locked"] is True and grid["last_login_failure"]["reason"] == "locked"

    unlocked = api.request("POST", f"/v1/connectors/{connector['connector_id']}/unlock", key=key)
    assert unlocked.status_code == 200 and body(unlocked)["locked"] is False and body(unlocked)["failed_logins"] == 0
    assert services.connectors.login("acme-main", "correct horse battery").ok


def test_inactive_tenant_and_unknown_user_cannot_log_in(api: Api, services: Services) -> None:
    created = api.create_tenant()
    create_connector(api, created["api_key"])
    assert services.connectors.login("nobody-here", "whatever password").refused == "unknown_user"
    api.request("PATCH", f"/v1/tenants/{created['tenant_id']}", key=ADMIN_KEY, json_body={"status": "inactive"})
    login = services.connectors.login("acme-main", "correct horse battery")
    assert login.refused == "tenant_inactive"
    assert login.connector is not None and login.connector.last_login_failure["reason"] == "tenant_inactive"


def test_organizations_can_be_mapped_to_a_non_default_connector(api: Api) -> None:
    key = api.create_tenant()["api_key"]
    main = create_connector(api, key)
    warehouse = create_connector(api, key, name="Warehouse", username="acme-warehouse")
    path = "/v1/organizations/org-42/connector"
    assert body(api.request("GET", path, key=key)) == {
        "organization_id": "org-42",
        "connector_id": main["connector_id"],
        "is_default": True,
    }
    mapped = api.request("PUT", path, key=key, json_body={"connector_id": warehouse["connector_id"]})
    assert mapped.status_code == 200 and body(mapped)["connector_id"] == warehouse["connector_id"]
    assert body(api.request("GET", path, key=key))["is_default"] is False
    unknown = api.request("PUT", path, key=key, json_body={"connector_id": "c_nope"})
    assert unknown.status_code == 404
    back = api.request("PUT", path, key=key, json_body={"connector_id": None})
    assert body(back)["connector_id"] == main["connector_id"] and body(back)["is_default"] is True
    bad = api.request("GET", "/v1/organizations/" + "x" * 200 + "/connector", key=key)
    assert bad.status_code == 422 and body(bad)["errors"][0]["field"] == "organization_id"
