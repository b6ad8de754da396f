"""The admin console over Chalice's test client (issue 10): sign-in, sessions, CSRF, escaping, tenant isolation and
the forms that change things. The browser tests (tests/e2e/test_console_browser.py) drive the same pages for real."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import pytest

from qbsync.api.services import Services
from qbsync.store.memory import MemoryStore
from qbsync.store.ports import QboConnection, SyncRecord
from tests.conftest import ADMIN_KEY, Api

ORIGIN = "http://127.0.0.1"
HTML_CHECKS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options")


class Browser:
    """A cookie jar and a CSRF token over the test client: what a browser on the console does."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.cookie = ""

    def get(self, path: str) -> Any:
        headers = {"Host": "127.0.0.1"}
        if self.cookie:
            headers["Cookie"] = self.cookie
        return self.api.client.http.request("GET", path, headers=headers, body=b"")

    def post(self, path: str, form: dict[str, Any], *, origin: str | None = ORIGIN) -> Any:
        headers = {"Host": "127.0.0.1", "Content-Type": "application/x-www-form-urlencoded"}
        if origin:
            headers["Origin"] = origin
        if self.cookie:
            headers["Cookie"] = self.cookie
        response = self.api.client.http.request("POST", path, headers=headers, body=urlencode(form, doseq=True))
        set_cookie = response.headers.get("Set-Cookie") or response.headers.get("set-cookie")
        if set_cookie:
            self.cookie = set_cookie.split(";")[0]
        return response

    def sign_in(self, key: str) -> Any:
        response = self.post("/console/login", {"api_key": key})
        assert response.status_code == 303, response.body
        return response

    def csrf(self, page: str = "/console/settings") -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', self.get(page).body.decode())
        assert found is not None
        return found.group(1)

    def act(self, action: str, form: dict[str, Any], *, page: str = "settings") -> Any:
        return self.post(f"/console/actions/{action}", {"csrf_token": self.csrf(), "page": page, **form})


def text(response: Any) -> str:
    body = response.body
    return body.decode() if isinstance(body, bytes) else str(body)


@pytest.fixture
def browser(api: Api) -> Browser:
    return Browser(api)


def test_pages_need_a_session_and_sign_in_sets_a_strict_httponly_cookie(api: Api, browser: Browser) -> None:
    assert browser.get("/console/settings").headers["Location"] == "/console/login"
    login = browser.get("/console/login")
    assert login.status_code == 200 and 'type="password"' in text(login)
    key = api.create_tenant("Acme <b>Billing</b>")["api_key"]
    response = browser.sign_in(key)
    cookie = response.headers["Set-Cookie"]
    assert response.headers["Location"] == "/console/settings"
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=3600" in cookie and "Path=/" in cookie
    assert key not in cookie and key not in response.headers["Location"]
    page = browser.get("/console/settings")
    assert page.status_code == 200
    for header in HTML_CHECKS:
        assert header in page.headers
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    assert "Acme &lt;b&gt;Billing&lt;/b&gt;" in text(page) and "<b>Billing" not in text(page)
    assert key not in text(page)
    assert "<script>" not in text(page) and " style=" not in text(page)  # nothing inline: the CSP allows none


def test_a_wrong_key_is_refused_with_the_reason_and_no_cookie(api: Api, browser: Browser) -> None:
    response = browser.post("/console/login", {"api_key": "qbs_0123456789abcdef_not-the-right-secret-at-all"})
    assert response.status_code == 401 and "not valid" in text(response)
    assert "Set-Cookie" not in response.headers
    assert browser.post("/console/login", {"api_key": ""}).status_code == 422


def test_login_from_another_origin_is_refused(api: Api, browser: Browser) -> None:
    key = api.create_tenant()["api_key"]
    response = browser.post("/console/login", {"api_key": key}, origin="https://evil.example")
    assert response.status_code == 403 and "Set-Cookie" not in response.headers
    assert browser.post("/console/login", {"api_key": key}, origin=None).status_code == 403


def test_settings_change_through_the_form_and_show_as_the_api_reports(api: Api, browser: Browser) -> None:
    key = api.create_tenant()["api_key"]
    browser.sign_in(key)
    form = {
        "mode": "summarized",
        "summarized_period": "weekly",
        "customer_address": "always",
        "connector_lockout_attempts": "7",
        "default_terms": "Net 30",
        "item_name_template": "{sku} {name}",
        "auto_create_customers": "on",
        "sales_tax.enabled": "on",
        "sales_tax.default_tax_code": "TAX",
        "sales_tax.exempt_tax_code": "NON",
    }
    response = browser.act("settings", form)
    assert response.status_code == 303 and response.headers["Location"] == "/console/settings?done=settings"
    settings = api.request("GET", "/v1/tenant/settings", key=key).json_body
    assert settings["mode"] == "summarized" and settings["summarized_period"] == "weekly"
    assert settings["customer_address"] == "always" and settings["connector_lockout_attempts"] == 7
    assert settings["default_terms"] == "Net 30" and settings["auto_create_customers"] is True
    assert settings["create_invoices"] is False  # an unticked box is off
    assert settings["sales_tax"]["enabled"] is True and settings["sales_tax"]["default_tax_code"] == "TAX"
    page = text(browser.get("/console/settings?done=settings"))
    assert "Settings saved." in page and 'value="summarized" checked' in page


def test_invalid_settings_are_refused_with_the_field_and_change_nothing(api: Api, browser: Browser) -> None:
    key = api.create_tenant()["api_key"]
    browser.sign_in(key)
    before = api.request("GET", "/v1/tenant/settings", key=key).json_body
    response = browser.act(
        "settings",
        {
            "mode": "full",
            "customer_address": "on_create",
            "summarized_period": "monthly",
            "connector_lockout_attempts": "0",
            "sales_tax.exempt_tax_code": "NON",
        },
    )
    assert response.status_code == 422
    assert "connector_lockout_attempts" in text(response) and 'class="field invalid"' in text(response)
    assert api.request("GET", "/v1/tenant/settings", key=key).json_body == before


def test_every_state_change_needs_the_session_csrf_token_and_this_origin(api: Api, browser: Browser) -> None:
    key = api.create_tenant()["api_key"]
    browser.sign_in(key)
    form = {"page": "connectors", "name": "Main", "username": "acme-main", "password": "correct horse battery"}
    for csrf, origin in (("", ORIGIN), ("forged", ORIGIN), (browser.csrf(), "https://evil.example")):
        response = browser.post("/console/actions/connector-create", {**form, "csrf_token": csrf}, origin=origin)
        assert response.status_code == 403 and "nothing was changed" in text(response)
    assert api.request("GET", "/v1/connectors", key=key).json_body["items"] == []
    # another session's token does not work either
    other = Browser(api)
    other.sign_in(key)
    response = browser.post("/console/actions/connector-create", {**form, "csrf_token": other.csrf()})
    assert response.status_code == 403
    assert browser.post("/console/actions/connector-create", {**form, "csrf_token": browser.csrf()}).status_code == 303
    assert len(api.request("GET", "/v1/connectors", key=key).json_body["items"]) == 1


def test_connectors_page_creates_lists_and_downloads_the_qwc(api: Api, browser: Browser) -> None:
    key = api.create_tenant()["api_key"]
    browser.sign_in(key)
    response = browser.act(
        "connector-create",
        {
            "name": "Main <office>",
            "username": "acme-main",
            "password": "correct horse battery",
            "run_every_minutes": "30",
            "enabled_transfers": ["customers", "invoices"],
        },
        page="connectors",
    )
    assert response.status_code == 303, text(response)
    grid = api.request("GET", "/v1/connectors", key=key).json_body["items"]
    assert grid[0]["run_every_minutes"] == 30 and grid[0]["enabled_transfers"] == ["customers", "invoices"]
    page = text(browser.get("/console/connectors"))
    assert "Main &lt;office&gt;" in page and "Download QWC file" in page
    qwc = browser.get(f"/console/connectors/{grid[0]['connector_id']}/qwc")
    assert qwc.status_code == 200 and b"<UserName>acme-main</UserName>" in qwc.body
    assert "attachment" in qwc.headers["Content-Disposition"]
    bad = browser.act(
        "connector-create", {"name": "x", "username": "has space", "password": "short"}, page="connectors"
    )
    assert bad.status_code == 422 and "username" in text(bad)


def test_a_tenant_never_sees_or_changes_another_tenants_connectors(api: Api, browser: Browser) -> None:
    key_a, key_b = api.create_tenant("A")["api_key"], api.create_tenant("B")["api_key"]
    theirs = api.request(
        "POST",
        "/v1/connectors",
        key=key_b,
        json_body={"name": "B office", "username": "b-office", "password": "correct horse battery"},
    ).json_body
    browser.sign_in(key_a)
    assert "B office" not in text(browser.get("/console/connectors"))
    assert browser.get(f"/console/connectors/{theirs['connector_id']}/qwc").status_code == 404
    response = browser.act(
        "connector-update", {"connector_id": theirs["connector_id"], "enabled": "false"}, page="connectors"
    )
    assert response.status_code == 404
    assert api.request("GET", f"/v1/connectors/{theirs['connector_id']}", key=key_b).json_body["enabled"] is True


def test_duplicate_email_issue_is_resolved_by_picking_the_quickbooks_customer(
    api: Api, browser: Browser, memory_store: MemoryStore
) -> None:
    key = api.create_tenant()["api_key"]
    tenant_id = api.request("GET", "/v1/tenant", key=key).json_body["tenant_id"]
    memory_store.records.create(
        SyncRecord(
            tenant_id=tenant_id,
            kind="customers",
            source_id="c-1",
            content_hash="h",
            payload={"id": "c-1"},
            state="blocked",
            created_at="2026-11-21T10:00:00.000Z",
            updated_at="2026-11-21T10:00:00.000Z",
            target="qbo:1",
            transfer_id="x_1",
            reason={
                "code": "duplicate_email",
                "message": "Several QuickBooks customers share the email.",
                "action": "Pick the QuickBooks customer.",
                "candidates": [
                    {"quickbooks_id": "58", "name": "<script>alert(1)</script>"},
                    {"quickbooks_id": "59", "name": "Acme Two"},
                ],
            },
        )
    )
    browser.sign_in(key)
    page = text(browser.get("/console/issues?kind=customers"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "Customers (1)" in page
    wrong = browser.act("issue-resolve", {"issue_id": "customers:c-1", "quickbooks_id": "60"}, page="issues")
    assert wrong.status_code == 422 and "pick one of 58, 59" in text(wrong)
    done = browser.act("issue-resolve", {"issue_id": "customers:c-1", "quickbooks_id": "59"}, page="issues")
    assert done.status_code == 303 and done.headers["Location"] == "/console/issues?done=resolved&kind=customers"
    record = api.request("GET", "/v1/customers/c-1", key=key).json_body
    assert record["state"] == "synced" and record["quickbooks_id"] == "59"
    assert "No open match issues for customers" in text(browser.get("/console/issues"))


def test_sign_out_ends_the_session_server_side(api: Api, browser: Browser) -> None:
    key = api.create_tenant()["api_key"]
    browser.sign_in(key)
    cookie = browser.cookie
    response = browser.post("/console/logout", {"csrf_token": browser.csrf()})
    assert response.status_code == 303 and "Max-Age=0" in response.headers["Set-Cookie"]
    browser.cookie = cookie  # a copy of the old cookie is worth nothing now
    assert browser.get("/console/settings").headers["Location"] == "/console/login"


def test_a_deactivated_tenant_loses_its_console_session(api: Api, browser: Browser) -> None:
    created = api.create_tenant()
    browser.sign_in(created["api_key"])
    api.request("PATCH", f"/v1/tenants/{created['tenant_id']}", key=ADMIN_KEY, json_body={"status": "inactive"})
    assert browser.get("/console/settings").status_code == 303


def test_static_assets_are_versioned_and_cached_forever(api: Api, browser: Browser) -> None:
    browser.sign_in(api.create_tenant()["api_key"])
    page = text(browser.get("/console/settings"))
    css = re.search(r'href="(/console/static/console\.[0-9a-f]{12}\.css)"', page)
    js = re.search(r'src="(/console/static/console\.[0-9a-f]{12}\.js)"', page)
    assert css and js
    for url, kind in ((css.group(1), "text/css"), (js.group(1), "text/javascript")):
        response = browser.get(url)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(kind)
        assert "immutable" in response.headers["Cache-Control"]
    assert browser.get("/console/static/console.000000000000.css").status_code == 404
    assert browser.get("/console/static/..%2Fweb.py").status_code == 404


def test_console_routes_stay_out_of_the_rest_apis_openapi(api: Api) -> None:
    paths = api.request("GET", "/openapi.json").json_body["paths"]
    assert not [p for p in paths if p.startswith("/console")]
    assert "get" in paths["/v1/invoices"]


def test_mappings_are_edited_as_a_table_and_saved_through_the_api(api: Api, browser: Browser) -> None:
    key = api.create_tenant()["api_key"]
    browser.sign_in(key)
    page = text(browser.get("/console/mappings"))
    assert "Billing codes (0)" in page and "income account" in page
    saved = browser.act(
        "mappings",
        {
            "kind": "billing_codes",
            "key": ["LAB", "HW", ""],
            "name": ["Services", "Sales of Product Income", ""],
            "type": ["", "", ""],
        },
        page="mappings",
    )
    assert (
        saved.status_code == 303 and saved.headers["Location"] == "/console/mappings?done=mappings&kind=billing_codes"
    )
    entries = api.request("GET", "/v1/mappings/billing_codes", key=key).json_body["entries"]
    assert entries == {
        "LAB": {"name": "Services", "type": None},
        "HW": {"name": "Sales of Product Income", "type": None},
    }
    page = text(browser.get("/console/mappings?kind=billing_codes"))
    assert 'value="Sales of Product Income"' in page and "Billing codes (2)" in page
    # rows come back in key order (HW, LAB): removing row 0 drops HW
    browser.act(
        "mappings",
        {
            "kind": "billing_codes",
            "key": ["HW", "LAB"],
            "name": ["Sales of Product Income", "Services"],
            "type": ["", ""],
            "remove": ["0"],
        },
        page="mappings",
    )
    assert set(api.request("GET", "/v1/mappings/billing_codes", key=key).json_body["entries"]) == {"LAB"}
    browser.act(
        "mappings",
        {"kind": "resources", "key": ["r-1"], "name": ["Ann Smith"], "type": ["employee"]},
        page="mappings",
    )
    assert api.request("GET", "/v1/mappings/resources", key=key).json_body["entries"] == {
        "r-1": {"name": "Ann Smith", "type": "employee"}
    }


def test_a_refused_mapping_table_changes_nothing_and_says_which_row(api: Api, browser: Browser) -> None:
    key = api.create_tenant()["api_key"]
    browser.sign_in(key)
    browser.act(
        "mappings", {"kind": "payroll_categories", "key": ["OT"], "name": ["Overtime"], "type": [""]}, page="mappings"
    )
    refused = browser.act(
        "mappings",
        {"kind": "payroll_categories", "key": ["OT", "REG"], "name": ["Overtime", "x" * 40], "type": ["", ""]},
        page="mappings",
    )
    assert refused.status_code == 422 and "entries.REG.name" in text(refused)
    assert "Payroll categories" in text(refused) and 'value="Overtime"' in text(refused)  # the same tab again
    assert api.request("GET", "/v1/mappings/payroll_categories", key=key).json_body["entries"] == {
        "OT": {"name": "Overtime", "type": None}
    }
    unknown = browser.act("mappings", {"kind": "spaceships", "key": ["a"], "name": ["b"]}, page="mappings")
    assert unknown.status_code == 404


def test_needs_reauth_offers_reconnect_and_quickbooks_names_are_escaped(
    api: Api, browser: Browser, memory_store: MemoryStore
) -> None:
    key = api.create_tenant()["api_key"]
    tenant_id = api.request("GET", "/v1/tenant", key=key).json_body["tenant_id"]
    memory_store.qbo.create(
        QboConnection(
            tenant_id=tenant_id,
            realm_id="9341",
            status="needs_reauth",
            company_name='<img src=x onerror="alert(1)">Co',
            tokens="",
            access_expires_at=0,
            refresh_expires_at=0,
            connected_at="2026-11-21T10:00:00.000Z",
            updated_at="2026-11-21T10:00:00.000Z",
            last_error="invalid_grant",
        )
    )
    browser.sign_in(key)
    page = text(browser.get("/console/quickbooks"))
    assert "needs reauth" in page and ">Reconnect</button>" in page and "Disconnect" not in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;Co" in page and "<img" not in page


def test_behind_an_execute_api_stage_links_cookies_and_origin_follow_the_public_url(
    api: Api, browser: Browser, services: Services
) -> None:
    public = "https://abc123.execute-api.us-east-1.amazonaws.com/Prod"
    services.settings = replace(services.settings, public_base_url=public)
    key = api.create_tenant()["api_key"]
    assert browser.post("/console/login", {"api_key": key}).status_code == 403  # http://127.0.0.1 is not this origin
    response = browser.post(
        "/console/login", {"api_key": key}, origin="https://abc123.execute-api.us-east-1.amazonaws.com"
    )
    assert response.status_code == 303 and response.headers["Location"] == "/Prod/console/settings"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-qbsync_console=") and "Secure" in cookie and "Path=/" in cookie
    page = text(browser.get("/console/settings"))
    assert 'href="/Prod/console/invoices"' in page and 'action="/Prod/console/actions/settings"' in page
    assert re.search(r'href="/Prod/console/static/console\.[0-9a-f]{12}\.css"', page)


def test_a_connectors_transfers_and_enabled_state_change_from_the_grid(api: Api, browser: Browser) -> None:
    key = api.create_tenant()["api_key"]
    connector = api.request(
        "POST",
        "/v1/connectors",
        key=key,
        json_body={"name": "Main", "username": "acme-main", "password": "correct horse battery"},
    ).json_body
    browser.sign_in(key)
    cid = connector["connector_id"]
    assert f'id="{cid}-payments" name="enabled_transfers" value="payments" checked' in text(
        browser.get("/console/connectors")
    )
    response = browser.act(
        "connector-update", {"connector_id": cid, "enabled_transfers": ["customers", "invoices"]}, page="connectors"
    )
    assert response.status_code == 303
    assert api.request("GET", f"/v1/connectors/{cid}", key=key).json_body["enabled_transfers"] == [
        "customers",
        "invoices",
    ]
    page = text(browser.get("/console/connectors"))
    assert ">Disable</button>" not in page  # the default connector cannot be disabled
    refused = browser.act("connector-update", {"connector_id": cid, "enabled": "false"}, page="connectors")
    assert refused.status_code == 409 and "cannot be disabled" in text(refused)
    second = api.request(
        "POST",
        "/v1/connectors",
        key=key,
        json_body={"name": "Warehouse", "username": "acme-warehouse", "password": "correct horse battery"},
    ).json_body["connector_id"]
    browser.act("connector-update", {"connector_id": second, "enabled": "false"}, page="connectors")
    assert api.request("GET", f"/v1/connectors/{second}", key=key).json_body["enabled"] is False
    assert api.request("GET", f"/v1/connectors/{cid}", key=key).json_body["enabled_transfers"] == [
        "customers",
        "invoices",
    ]
    page = text(browser.get("/console/connectors"))
    assert ">disabled</span>" in page and ">Enable</button>" in page
    bad = browser.act("connector-update", {"connector_id": cid, "enabled_transfers": ["spaceships"]}, page="connectors")
    assert bad.status_code == 422 and "enabled_transfers.0" in text(bad)
