"""The tenant API through the real Chalice app (in-memory store): what callers see, status codes and bodies."""

from __future__ import annotations

import json

from qbsync.store.memory import MemoryStore
from tests.conftest import ADMIN_KEY, Api


def body(response) -> dict:
    return json.loads(response.body)


def test_health_answers_without_a_key(api: Api) -> None:
    response = api.request("GET", "/health")
    assert response.status_code == 200
    assert body(response) == {"status": "ok", "version": "0.1.0", "stage": "test"}
    assert response.headers["X-Request-Id"]


def test_created_tenant_key_is_accepted_and_shown_once(api: Api, memory_store: MemoryStore) -> None:
    created = api.create_tenant("Acme Billing")
    assert created["api_key"].startswith("qbs_")
    assert created["status"] == "active"
    assert created["settings"]["mode"] == "full"

    response = api.request("GET", "/v1/tenant", key=created["api_key"])
    assert response.status_code == 200
    tenant = body(response)
    assert tenant["tenant_id"] == created["tenant_id"]
    assert tenant["name"] == "Acme Billing"
    assert "api_key" not in tenant

    # Only a salted hash of the key is stored: the secret part appears nowhere in storage.
    secret = created["api_key"].split("_", 2)[2]
    assert secret not in repr(memory_store.__dict__)
    key_id = created["api_key"].split("_", 2)[1]
    assert memory_store.tenants.get_api_key(key_id).secret_hash.startswith("scrypt$")


def test_wrong_or_missing_keys_get_401_problem_json(api: Api) -> None:
    created = api.create_tenant()
    wrong = created["api_key"][:-4] + "abcd"
    for headers in (
        {"Authorization": f"Bearer {wrong}"},
        {"Authorization": "Bearer nonsense"},
        {},
        {"Authorization": f"Basic {created['api_key']}"},
    ):
        response = api.request("GET", "/v1/tenant", headers=headers)
        assert response.status_code == 401
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        problem = body(response)
        assert problem["code"] == "unauthorized" and problem["status"] == 401 and problem["detail"]


def test_tenant_key_cannot_use_admin_routes_and_admin_key_is_checked(api: Api) -> None:
    created = api.create_tenant()
    assert api.request("POST", "/v1/tenants", key=created["api_key"], json_body={"name": "x"}).status_code == 401
    assert api.request("POST", "/v1/tenants", key=ADMIN_KEY + "x", json_body={"name": "x"}).status_code == 401
    assert api.request("GET", "/v1/tenants", key=ADMIN_KEY).status_code == 200


def test_admin_key_is_never_defaulted_outside_local(api: Api, services) -> None:
    from qbsync.settings import Settings

    assert Settings.from_env({"QBSYNC_STAGE": "prod"}).admin_key is None
    assert Settings.from_env({}).admin_key == "local-admin-key"
    services.admin.settings = Settings(stage="prod")  # deployed, no secret configured
    response = api.request("POST", "/v1/tenants", key="local-admin-key", json_body={"name": "x"})
    assert response.status_code == 503
    assert body(response)["code"] == "not_configured"


def test_malformed_json_gets_400_naming_the_problem(api: Api) -> None:
    response = api.request(
        "POST", "/v1/tenants", key=ADMIN_KEY, body='{"name": "Acme",', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    problem = body(response)
    assert problem["code"] == "malformed_json"
    assert "line 1 column" in problem["detail"]


def test_non_json_values_and_encodings_are_refused(api: Api) -> None:
    for raw in (b'{"name": NaN}', b"\xff\xfe{}", b"", b"   "):
        response = api.request(
            "POST", "/v1/tenants", key=ADMIN_KEY, body=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, raw
        assert body(response)["code"] == "malformed_json"


def test_unknown_fields_and_bad_types_name_the_field(api: Api) -> None:
    response = api.request("POST", "/v1/tenants", key=ADMIN_KEY, json_body={"name": "A", "colour": "red"})
    assert response.status_code == 422
    assert body(response)["errors"] == [{"field": "colour", "message": "unknown field"}]

    response = api.request("POST", "/v1/tenants", key=ADMIN_KEY, json_body={"name": 42})
    assert response.status_code == 422
    assert body(response)["errors"][0]["field"] == "name"

    response = api.request("POST", "/v1/tenants", key=ADMIN_KEY, json_body={"name": "x" * 101})
    assert body(response)["errors"][0]["field"] == "name"

    response = api.request("POST", "/v1/tenants", key=ADMIN_KEY, json_body=["not", "an", "object"])
    assert response.status_code == 422


def test_oversize_body_gets_413(api: Api) -> None:
    huge = '{"name": "' + "x" * (10 * 1024 * 1024) + '"}'
    response = api.request(
        "POST", "/v1/tenants", key=ADMIN_KEY, body=huge, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/problem+json"
    assert body(response)["code"] == "payload_too_large"


def test_wrong_media_type_gets_415_problem(api: Api) -> None:
    response = api.request("POST", "/v1/tenants", key=ADMIN_KEY, body="<x/>", headers={"Content-Type": "text/xml"})
    assert response.status_code == 415
    assert body(response)["code"] == "unsupported_media_type"


def test_wrong_method_gets_405_problem(api: Api) -> None:
    response = api.request("DELETE", "/health")
    assert response.status_code == 405
    assert response.headers["Content-Type"] == "application/problem+json"
    assert body(response)["code"] == "method_not_allowed"


def test_settings_patch_validates_merges_and_persists(api: Api) -> None:
    key = api.create_tenant()["api_key"]
    patch = {
        "mode": "summarized",
        "summarized_period": "weekly",
        "default_terms": "Net 30",
        "ar_account": "Accounts Receivable",
        "income_account": "Sales:Services",
        "auto_create_customers": True,
        "use_classes": True,
        "allow_class_override": True,
        "sales_tax": {"enabled": True, "default_tax_code": "TAX"},
        "customer_address": "always",
        "item_name_template": "{sku} {name}",
    }
    response = api.request("PATCH", "/v1/tenant/settings", key=key, json_body=patch)
    assert response.status_code == 200, response.body
    settings = body(api.request("GET", "/v1/tenant/settings", key=key))
    for field, value in patch.items():
        if field == "sales_tax":
            assert settings["sales_tax"]["enabled"] is True
            assert settings["sales_tax"]["default_tax_code"] == "TAX"
            assert settings["sales_tax"]["exempt_tax_code"] == "NON"  # untouched default kept by the merge
        else:
            assert settings[field] == value

    # null restores the default; nested merge leaves siblings alone
    api.request("PATCH", "/v1/tenant/settings", key=key, json_body={"mode": None, "sales_tax": {"enabled": False}})
    settings = body(api.request("GET", "/v1/tenant", key=key))["settings"]
    assert settings["mode"] == "full"
    assert settings["sales_tax"] == {
        "enabled": False,
        "default_tax_code": "TAX",
        "default_tax_item": None,
        "customer_override": True,
        "exempt_tax_code": "NON",
    }


def test_invalid_settings_are_refused_and_change_nothing(api: Api) -> None:
    key = api.create_tenant()["api_key"]
    before = body(api.request("GET", "/v1/tenant/settings", key=key))
    cases = {
        "mode": ({"mode": "everything"}, "mode"),
        "type": ({"create_invoices": "yes"}, "create_invoices"),
        "unknown": ({"sales_tax": {"enabeld": True}}, "sales_tax.enabeld"),
        "template": ({"item_name_template": "{price}"}, "item_name_template"),
        "no placeholder": ({"item_name_template": "Fixed"}, "item_name_template"),
        "too long": ({"ar_account": "A" * 160}, "ar_account"),
        "control": ({"default_terms": "Net\n30"}, "default_terms"),
        "period": ({"summarized_period": "hourly"}, "summarized_period"),
    }
    for name, (patch, field) in cases.items():
        response = api.request("PATCH", "/v1/tenant/settings", key=key, json_body=patch)
        assert response.status_code == 422, name
        assert [e["field"] for e in body(response)["errors"]] == [field], name
    assert body(api.request("GET", "/v1/tenant/settings", key=key)) == before


def test_deactivated_tenant_is_refused_and_can_be_reactivated(api: Api) -> None:
    created = api.create_tenant()
    key, tenant_id = created["api_key"], created["tenant_id"]
    assert api.request("GET", "/v1/tenant", key=key).status_code == 200  # now cached as verified
    response = api.request("PATCH", f"/v1/tenants/{tenant_id}", key=ADMIN_KEY, json_body={"status": "inactive"})
    assert response.status_code == 200 and body(response)["status"] == "inactive"
    refused = api.request("GET", "/v1/tenant", key=key)
    assert refused.status_code == 403 and body(refused)["code"] == "tenant_inactive"
    api.request("PATCH", f"/v1/tenants/{tenant_id}", key=ADMIN_KEY, json_body={"status": "active"})
    assert api.request("GET", "/v1/tenant", key=key).status_code == 200
    missing = api.request("PATCH", "/v1/tenants/t_nope", key=ADMIN_KEY, json_body={"status": "active"})
    assert missing.status_code == 404 and body(missing)["code"] == "not_found"


def test_tenant_list_pages_oldest_first(api: Api) -> None:
    ids = [api.create_tenant(f"Tenant {i}")["tenant_id"] for i in range(5)]
    seen, cursor = [], None
    for _ in range(10):
        path = "/v1/tenants?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = body(api.request("GET", path, key=ADMIN_KEY))
        seen += [t["tenant_id"] for t in page["items"]]
        cursor = page.get("cursor")
        if not cursor:
            break
    assert seen == ids
    bad = api.request("GET", "/v1/tenants?limit=0", key=ADMIN_KEY)
    assert bad.status_code == 422 and body(bad)["errors"][0]["field"] == "limit"


def test_openapi_lists_every_route_with_its_schemas(api: Api) -> None:
    from tests.support import load_function_module

    module = load_function_module("api")
    app = module.app
    document = body(api.request("GET", "/openapi.json"))
    assert document["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    routed = {(path, method) for path, methods in app.routes.items() for method in methods}
    # the admin console's pages are served by the same app but are not part of the REST API
    pages = {(op.path, op.method) for op in module.api.operations if not op.document}
    assert pages and all(path.startswith("/console") for path, _ in pages)
    assert documented == routed - pages
    schemas = document["components"]["schemas"]
    assert {"TenantSettings", "TenantCreateRequest", "Problem", "SalesTaxSettings"} <= set(schemas)
    assert schemas["TenantSettings"]["additionalProperties"] is False
    create = document["paths"]["/v1/tenants"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("TenantCreateRequest")
    assert create["security"] == [{"bearer": []}]
