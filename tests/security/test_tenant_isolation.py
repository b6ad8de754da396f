"""Tenant isolation over every route: tenant B, with its own valid key, aims every operation of the OpenAPI
document at tenant A's real ids (connector, records, match issue, sync, organization, tenant). It gets 404 (401
on admin routes), or its own empty data on routes scoped to the caller; no answer carries any of A's data, and
A's state (records, connectors, jobs, QuickBooks connection, the QuickBooks company itself, queue and events) is
exactly what it was. ``ROUTES`` must name every operation: a route added later without a case fails the suite.
Web Connector: B's ticket never receives, nor completes, A's queued jobs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pytest

from infra.fake_qbd import FakeCompany
from qbsync.api.services import use_services
from qbsync.qbxml import Customer
from tests.world import Tenant, World, build_world

Expect = Literal["not_found", "admin_only", "own", "public"]


@dataclass(frozen=True)
class Case:
    """How tenant B calls one operation: the path (``{a.<field>}`` filled with A's ids), a JSON body, and what
    it must get: ``not_found`` (A's id is invisible), ``admin_only`` (401 for a tenant key), ``own`` (B's own
    data or a refusal about B's own state, never A's), ``public`` (no key needed; no tenant data either)."""

    path: str
    expect: Expect
    body: Any = None
    status: int | tuple[int, ...] | None = None


CONNECTOR = "{a.connector_id}"
ROUTES: dict[tuple[str, str], Case] = {
    ("GET", "/health"): Case("/health", "public", status=200),
    ("GET", "/openapi.json"): Case("/openapi.json", "public", status=200),
    ("POST", "/v1/tenants"): Case("/v1/tenants", "admin_only", {"name": "Mallory"}),
    ("GET", "/v1/tenants"): Case("/v1/tenants", "admin_only"),
    ("PATCH", "/v1/tenants/{tenant_id}"): Case("/v1/tenants/{a.tenant_id}", "admin_only", {"active": False}),
    ("GET", "/v1/tenant"): Case("/v1/tenant", "own", status=200),
    ("GET", "/v1/tenant/settings"): Case("/v1/tenant/settings", "own", status=200),
    ("PATCH", "/v1/tenant/settings"): Case("/v1/tenant/settings", "own", {"auto_create_items": True}, 200),
    ("POST", "/v1/connectors"): Case(
        "/v1/connectors", "own", {"name": "B two", "username": "beta-two", "password": "beta two password"}, 201
    ),
    ("GET", "/v1/connectors"): Case("/v1/connectors", "own", status=200),
    ("GET", "/v1/connectors/{connector_id}"): Case(f"/v1/connectors/{CONNECTOR}", "not_found"),
    ("PATCH", "/v1/connectors/{connector_id}"): Case(
        f"/v1/connectors/{CONNECTOR}", "not_found", {"name": "pwned", "enabled": False}
    ),
    ("POST", "/v1/connectors/{connector_id}/unlock"): Case(f"/v1/connectors/{CONNECTOR}/unlock", "not_found"),
    ("GET", "/v1/connectors/{connector_id}/jobs"): Case(f"/v1/connectors/{CONNECTOR}/jobs", "not_found"),
    ("GET", "/v1/connectors/{connector_id}/qwc"): Case(f"/v1/connectors/{CONNECTOR}/qwc", "not_found"),
    ("PUT", "/v1/organizations/{organization_id}/connector"): Case(
        "/v1/organizations/{a.organization_id}/connector", "not_found", {"connector_id": "{a.connector_id}"}
    ),
    ("GET", "/v1/organizations/{organization_id}/connector"): Case(
        "/v1/organizations/{a.organization_id}/connector", "own", status=200
    ),
    ("GET", "/v1/qbo/connect"): Case("/v1/qbo/connect", "own", status=200),
    ("GET", "/qbo/callback"): Case("/qbo/callback?code=x&realmId={a.realm_id}", "public", status=400),
    ("POST", "/qbo/webhooks"): Case("/qbo/webhooks", "public", {"eventNotifications": []}, 401),
    ("GET", "/v1/qbo/connection"): Case("/v1/qbo/connection", "own", status=200),
    ("POST", "/v1/qbo/connection/test"): Case("/v1/qbo/connection/test", "own", status=409),
    ("DELETE", "/v1/qbo/connection"): Case("/v1/qbo/connection", "own", status=200),
    ("POST", "/qbwc"): Case("/qbwc", "public"),  # SOAP: see test_a_web_connector_ticket_reaches_only_its_own_jobs
    ("GET", "/qbwc"): Case("/qbwc?wsdl", "public", status=200),
    ("GET", "/qbwc/support"): Case("/qbwc/support", "public", status=200),
    ("POST", "/v1/customers"): Case(
        "/v1/customers", "own", {"id": "{a.customer2}", "name": "Beta's own", "email": "b@beta.example"}, 202
    ),
    ("POST", "/v1/items"): Case("/v1/items", "own", {"id": "{a.item2}", "name": "Beta item"}, 202),
    ("POST", "/v1/invoices"): Case(
        "/v1/invoices",
        "own",
        {
            "id": "{a.invoice2}",
            "customer_id": "{a.customer}",
            "date": "2026-11-02",
            "lines": [{"item_id": "{a.item}", "rate": "1.00"}],
        },
        202,
    ),
    ("POST", "/v1/payments"): Case(
        "/v1/payments",
        "own",
        {
            "id": "{a.payment2}",
            "customer_id": "{a.customer}",
            "date": "2026-11-03",
            "amount": "1.00",
            "applied_to": [{"invoice_id": "{a.invoice}", "amount": "1.00"}],
        },
        202,
    ),
    ("POST", "/v1/timesheets"): Case(
        "/v1/timesheets",
        "own",
        {"id": "{a.timesheet}", "date": "2026-11-02", "resource_id": "R-B", "service_item_id": "b-item", "duration": 1},
        202,
    ),
    ("POST", "/v1/expense-reports"): Case(
        "/v1/expense-reports",
        "own",
        {
            "id": "{a.expense_report}",
            "date": "2026-11-02",
            "resource_id": "R-B",
            "lines": [{"category": "travel", "amount": "1.00"}],
        },
        202,
    ),
    ("POST", "/v1/purchase-orders"): Case(
        "/v1/purchase-orders",
        "own",
        {
            "id": "{a.purchase_order}",
            "date": "2026-11-02",
            "vendor": "Beta Parts",
            "lines": [{"item_id": "b-item", "quantity": "1", "rate": "1.00"}],
        },
        202,
    ),
    ("GET", "/v1/timesheets/{record_id}"): Case("/v1/timesheets/{a.timesheet}", "not_found"),
    ("GET", "/v1/expense-reports/{record_id}"): Case("/v1/expense-reports/{a.expense_report}", "not_found"),
    ("GET", "/v1/purchase-orders/{record_id}"): Case("/v1/purchase-orders/{a.purchase_order}", "not_found"),
    ("GET", "/v1/inventory"): Case("/v1/inventory", "own", status=200),
    ("GET", "/v1/inventory/{item_id}"): Case("/v1/inventory/{a.item}", "not_found"),
    ("GET", "/v1/invoices"): Case("/v1/invoices", "own", status=200),
    ("GET", "/v1/customers/{record_id}"): Case("/v1/customers/{a.customer}", "not_found"),
    ("GET", "/v1/items/{record_id}"): Case("/v1/items/{a.item}", "not_found"),
    ("GET", "/v1/invoices/{record_id}"): Case("/v1/invoices/{a.invoice}", "not_found"),
    ("GET", "/v1/payments/{record_id}"): Case("/v1/payments/{a.payment}", "not_found"),
    ("GET", "/v1/transfers"): Case("/v1/transfers?id={a.invoice}", "own", status=200),
    ("POST", "/v1/charges"): Case(
        "/v1/charges",
        "own",  # B is in full mode: refused about B's own settings
        {"id": "{a.charge}", "date": "2026-10-05", "amount": "1.00", "billing_code": "ALPHA-POSTED"},
        409,
    ),
    ("GET", "/v1/charges/{record_id}"): Case("/v1/charges/{a.charge}", "not_found"),
    ("GET", "/v1/journal-entries"): Case("/v1/journal-entries", "own", status=200),
    ("GET", "/v1/journal-entries/{period}"): Case("/v1/journal-entries/{a.period}", "not_found"),
    ("POST", "/v1/journal-entries/post"): Case("/v1/journal-entries/post", "own", {"period": "{a.period}"}, 409),
    ("GET", "/v1/mappings"): Case("/v1/mappings", "own", status=200),
    ("GET", "/v1/mappings/{kind}"): Case("/v1/mappings/billing_codes", "own", status=200),
    ("PUT", "/v1/mappings/{kind}"): Case(
        "/v1/mappings/billing_codes", "own", {"entries": {"ALPHA-CODE": {"name": "Beta Income"}}}, 200
    ),
    ("GET", "/v1/match-issues"): Case("/v1/match-issues", "own", status=200),
    ("POST", "/v1/match-issues/{issue_id}/resolve"): Case(
        "/v1/match-issues/{a.issue_id}/resolve", "not_found", {"quickbooks_id": "{a.issue_candidate}"}
    ),
    ("POST", "/v1/sync"): Case("/v1/sync", "own", {}, 202),
    ("GET", "/v1/sync/{sync_id}"): Case("/v1/sync/{a.sync_id}", "not_found"),
    ("POST", "/v1/records/{kind}/{record_id}/resync"): Case("/v1/records/invoices/{a.invoice}/resync", "not_found"),
}


@dataclass
class Alpha:
    """Tenant A's real ids and the values only A's data contains."""

    tenant: Tenant
    tenant_id: str
    connector_id: str
    organization_id: str
    realm_id: str
    customer: str
    item: str
    invoice: str
    payment: str
    customer2: str
    item2: str
    invoice2: str
    payment2: str
    timesheet: str
    expense_report: str
    purchase_order: str
    charge: str
    period: str
    issue_id: str
    issue_candidate: str
    sync_id: str
    markers: set[str]


@dataclass
class Scene:
    world: World
    a: Alpha
    b: Tenant
    b_connector: dict[str, Any]


PASSWORD_A = "alpha connector password 1"
PASSWORD_B = "beta connector password 22"


def build_alpha(world: World) -> Alpha:
    """A: QuickBooks Online connected and synced, a blocked customer (match issue), a Desktop connector with an
    organization mapped to it and a conversation behind it, a queued job, a Sync Data run."""
    a = world.tenant("Alpha Ledger Inc", auto_create_customers=True, auto_create_items=True, income_account="Services")
    realm = world.connect_qbo(a, "Alpha Books Company")
    company = world.emulator.company(realm)
    for name in ("Alpha Twin One", "Alpha Twin Two"):  # two QuickBooks customers share an email: a match issue
        company._add("Customer", {"DisplayName": name, "PrimaryEmailAddr": {"Address": "twins@alpha.example"}})
    world.ok(
        "POST",
        "/v1/customers",
        key=a.api_key,
        json_body=[
            {"id": "alpha-cust-1", "name": "Zebulon Alphason", "email": "zebulon@alpha.example"},
            {"id": "alpha-cust-2", "name": "Alpha Twin", "email": "twins@alpha.example"},
        ],
    )
    world.ok(
        "POST",
        "/v1/items",
        key=a.api_key,
        json_body=[{"id": "alpha-item-1", "name": "Alpha Retainer"}, {"id": "alpha-item-2", "name": "Alpha Hours"}],
    )
    world.ok(
        "POST",
        "/v1/invoices",
        key=a.api_key,
        json_body=[
            {
                "id": f"alpha-inv-{n}",
                "customer_id": "alpha-cust-1",
                "date": "2026-11-01",
                "doc_number": f"ALPHA-000{n}",
                "memo": "alpha confidential memo",
                "lines": [{"item_id": f"alpha-item-{n}", "quantity": "3", "rate": "123.45"}],
            }
            for n in (1, 2)
        ],
    )
    world.ok(
        "POST",
        "/v1/payments",
        key=a.api_key,
        json_body=[
            {
                "id": f"alpha-pay-{n}",
                "customer_id": "alpha-cust-1",
                "date": "2026-11-02",
                "amount": amount,
                "reference": "ALPHA-CHK-9",
                "applied_to": [{"invoice_id": f"alpha-inv-{n}", "amount": amount}],
            }
            for n, amount in ((1, "370.35"), (2, "100.00"))
        ],
    )
    world.ok(
        "POST",
        "/v1/timesheets",
        key=a.api_key,
        json_body={
            "id": "alpha-ts-1",
            "date": "2026-11-02",
            "resource_id": "alpha-res-1",
            "service_item_id": "alpha-item-1",
            "duration": "2.5",
            "notes": "alpha confidential memo",
        },
    )
    world.ok(
        "POST",
        "/v1/expense-reports",
        key=a.api_key,
        json_body={
            "id": "alpha-exp-1",
            "date": "2026-11-02",
            "resource_id": "alpha-res-1",
            "lines": [{"category": "alpha-travel", "amount": "370.35"}],
        },
    )
    world.ok(
        "POST",
        "/v1/purchase-orders",
        key=a.api_key,
        json_body={
            "id": "alpha-po-1",
            "date": "2026-11-02",
            "vendor": "Alpha Twin",
            "memo": "alpha confidential memo",
            "lines": [{"item_id": "alpha-item-1", "quantity": "3", "rate": "123.45"}],
        },
    )
    world.drain()
    issues = world.ok("GET", "/v1/match-issues", key=a.api_key)["items"]
    assert [i["id"] for i in issues] == ["customers:alpha-cust-2"], issues
    invoice = world.ok("GET", "/v1/invoices/alpha-inv-1", key=a.api_key)
    assert invoice["state"] == "synced", invoice
    connector = world.ok(
        "POST",
        "/v1/connectors",
        key=a.api_key,
        json_body={"name": "Alpha back office", "username": "alpha-backoffice", "password": PASSWORD_A},
    )
    world.ok(
        "PUT",
        "/v1/organizations/alpha-org-7/connector",
        key=a.api_key,
        json_body={"connector_id": connector["connector_id"]},
    )
    assert world.web_connector("alpha-backoffice", PASSWORD_A, FakeCompany()).ok
    world.services.jobs.enqueue(
        a.tenant_id, connector["connector_id"], "customer_add", Customer(name="Alpha Queued Desktop Customer")
    )
    world.ok(
        "PUT",
        "/v1/mappings/billing_codes",
        key=a.api_key,
        json_body={"entries": {"ALPHA-CODE": {"name": "Alpha Secret Income"}}},
    )
    # Summarized mode: a charge posted into a journal entry of October (then A goes back to full mode).
    world.ok(
        "PUT",
        "/v1/mappings/billing_codes",
        key=a.api_key,
        json_body={"entries": {"ALPHA-CODE": {"name": "Alpha Secret Income"}, "ALPHA-POSTED": {"name": "Services"}}},
    )
    summarized = {"mode": "summarized", "journal_debit_account": "Undeposited Funds"}
    world.ok("PATCH", "/v1/tenant/settings", key=a.api_key, json_body=summarized)
    world.ok(
        "POST",
        "/v1/charges",
        key=a.api_key,
        json_body={"id": "alpha-charge-1", "date": "2026-10-05", "amount": "370.35", "billing_code": "ALPHA-POSTED"},
    )
    world.ok("POST", "/v1/journal-entries/post", key=a.api_key, json_body={"period": "2026-10"})
    world.drain()
    assert world.ok("GET", "/v1/charges/alpha-charge-1", key=a.api_key)["state"] == "synced"
    world.ok("PATCH", "/v1/tenant/settings", key=a.api_key, json_body={"mode": "full"})
    sync = world.ok("POST", "/v1/sync", key=a.api_key, json_body={"kinds": ["customers"]})
    world.drain()
    transfers = world.ok("GET", "/v1/transfers", key=a.api_key)["items"]
    markers = {
        a.tenant_id,
        a.api_key,
        realm,
        "Alpha Ledger",
        "Alpha Books Company",
        "Zebulon",
        "zebulon@alpha.example",
        "twins@alpha.example",
        "Alpha Twin",
        "Alpha Retainer",
        "Alpha Hours",
        "ALPHA-0001",
        "alpha confidential memo",
        "ALPHA-CHK-9",
        "370.35",
        "Alpha back office",
        "alpha-backoffice",
        "Alpha Queued Desktop Customer",
        "Alpha Secret Income",
        "ALPHA-POSTED",
        "alpha-charge-1",
        connector["connector_id"],
        sync["sync_id"],
        *(t["transfer_id"] for t in transfers),
    }
    return Alpha(
        tenant=a,
        tenant_id=a.tenant_id,
        connector_id=connector["connector_id"],
        organization_id="alpha-org-7",
        realm_id=realm,
        customer="alpha-cust-1",
        item="alpha-item-1",
        invoice="alpha-inv-1",
        payment="alpha-pay-1",
        customer2="alpha-cust-2",
        item2="alpha-item-2",
        invoice2="alpha-inv-2",
        payment2="alpha-pay-2",
        timesheet="alpha-ts-1",
        expense_report="alpha-exp-1",
        purchase_order="alpha-po-1",
        charge="alpha-charge-1",
        period="2026-10",
        issue_id="customers:alpha-cust-2",
        issue_candidate=str(issues[0]["candidates"][0]["quickbooks_id"]),
        sync_id=sync["sync_id"],
        markers=markers,
    )


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    with pytest.MonkeyPatch.context() as monkeypatch, build_world(monkeypatch) as world:
        a = build_alpha(world)
        b = world.tenant("Beta Works")
        b_connector = world.ok(
            "POST",
            "/v1/connectors",
            key=b.api_key,
            json_body={"name": "Beta office", "username": "beta-office", "password": PASSWORD_B},
        )
        yield Scene(world, a, b, b_connector)


@pytest.fixture(autouse=True)
def _scene_services(scene: Scene) -> None:
    """The suite-wide autouse fixture forgets the process's services after each test: put the scene's back."""
    use_services(scene.world.services)


def alpha_state(scene: Scene) -> dict[str, Any]:
    """Everything A can see of itself, plus A's QuickBooks company, the queue and A's events."""
    world, a = scene.world, scene.a
    key = a.tenant.api_key
    state: dict[str, Any] = {
        path: world.ok("GET", path, key=key)
        for path in (
            "/v1/tenant",
            "/v1/tenant/settings",
            "/v1/connectors",
            f"/v1/connectors/{a.connector_id}/jobs",
            f"/v1/organizations/{a.organization_id}/connector",
            "/v1/qbo/connection",
            "/v1/match-issues",
            "/v1/mappings",
            "/v1/transfers",
            f"/v1/sync/{a.sync_id}",
            f"/v1/charges/{a.charge}",
            f"/v1/journal-entries/{a.period}",
            *(f"/v1/{kind}/{getattr(a, kind[:-1])}" for kind in ("customers", "items", "invoices", "payments")),
        )
    }
    company = world.emulator.company(a.realm_id)
    state["quickbooks"] = {entity: len(rows) for entity, rows in company.entities.items()}
    state["queued_for_a"] = [m.model_dump() for m, _, _ in world.queue.sent if m.tenant_id == a.tenant_id]
    state["events_for_a"] = [e for e in world.events.events if e["detail"]["tenant_id"] == a.tenant_id]
    return state


def fill(value: Any, a: Alpha) -> Any:
    if isinstance(value, str):
        return value.format(a=a)
    if isinstance(value, list):
        return [fill(v, a) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, a) for k, v in value.items()}
    return value


def leaked(text: str, a: Alpha, sent: str) -> set[str]:
    """A's markers found in ``text``, except those B itself sent (an id echoed in '404: no record X')."""
    return {m for m in a.markers if m in text and m not in sent}


def test_every_operation_in_the_openapi_document_has_an_isolation_case(scene: Scene) -> None:
    document = json.loads(scene.world.ok("GET", "/openapi.json") and scene.world.responses[-1].body)
    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert operations - set(ROUTES) == set(), "a route without a tenant-isolation case: add it to ROUTES"
    assert set(ROUTES) - operations == set(), "ROUTES names an operation the API no longer has"
    assert len(operations) >= 40


@pytest.mark.parametrize(("method", "route"), sorted(ROUTES), ids=[f"{m} {p}" for m, p in sorted(ROUTES)])
def test_tenant_b_aimed_at_tenant_a_gets_nothing_and_changes_nothing(scene: Scene, method: str, route: str) -> None:
    case = ROUTES[(method, route)]
    world, a = scene.world, scene.a
    before = alpha_state(scene)
    path, body = fill(case.path, a), fill(case.body, a)
    key = None if case.expect == "public" else scene.b.api_key
    if method == "POST" and route == "/qbwc":  # B's Web Connector login and an empty poll, the SOAP way
        ticket = world.soap_result("authenticate", {"strUserName": "beta-office", "strPassword": PASSWORD_B})[0]
        answer = world.soap("sendRequestXML", {"ticket": ticket, "strHCPResponse": None})
    else:
        answer = world.call(method, path, key=key, json_body=body)
    text = answer.body.decode("utf-8", "replace") if isinstance(answer.body, bytes) else str(answer.body)
    sent = path + json.dumps(body)
    if case.expect == "not_found":
        assert answer.status_code == 404, (answer.status_code, text)
        assert json.loads(text)["code"] == "not_found"
    elif case.expect == "admin_only":
        assert answer.status_code == 401 and json.loads(text)["code"] == "unauthorized", text
    elif case.status is not None:
        assert answer.status_code == case.status, (answer.status_code, text)
    assert answer.status_code < 500, text
    assert leaked(text, a, sent) == set(), f"{method} {route} showed tenant B some of tenant A's data"
    assert alpha_state(scene) == before, f"{method} {route} by tenant B changed tenant A"


def test_every_tenant_route_refuses_a_missing_or_forged_key(scene: Scene) -> None:
    world, a = scene.world, scene.a
    forged = a.tenant.api_key[:-4] + ("AAAA" if not a.tenant.api_key.endswith("AAAA") else "BBBB")
    document = json.loads(world.ok("GET", "/openapi.json") and world.responses[-1].body)
    checked = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if "security" not in operation:
                continue
            case = ROUTES[(method.upper(), path)]
            for key in (
                None,
                forged,
                "qbs_" + "0" * 40,
                world.settings.admin_key if case.expect != "admin_only" else None,
            ):
                answer = world.call(method.upper(), fill(case.path, a), key=key, json_body=fill(case.body, a))
                assert answer.status_code == 401, (method, path, key, answer.body)
                assert json.loads(answer.body)["code"] == "unauthorized"
                checked += 1
    assert checked >= 3 * 35


def test_a_web_connector_ticket_reaches_only_its_own_jobs(scene: Scene) -> None:
    """A and B each have one CustomerAdd queued, with the same requestID (seqs are per connector). B's ticket
    receives only B's; B's answer completes only B's; A's job stays queued until A's own Web Connector runs it."""
    world, a = scene.world, scene.a
    [a_job] = [j for j in world.store.jobs.history(a.connector_id, limit=100) if j.status == "queued"]
    b_id = scene.b_connector["connector_id"]
    b_job = world.services.jobs.enqueue(scene.b.tenant_id, b_id, "customer_add", Customer(name="Beta Desk Customer"))
    assert b_job.request_id == a_job.request_id  # the same requestID: only the ticket tells them apart
    ticket, _company_file = world.soap_result(
        "authenticate", {"strUserName": "beta-office", "strPassword": PASSWORD_B}
    )[:2]
    request = world.send_request_xml(ticket)
    assert "Beta Desk Customer" in request and "Alpha" not in request
    response = FakeCompany().process(request)
    world.soap_result("receiveResponseXML", {"ticket": ticket, "response": response, "hresult": None, "message": None})
    world.soap_result("closeConnection", {"ticket": ticket})
    assert world.store.jobs.history(b_id, limit=100)[-1].status == "done"
    after = {j.seq: j for j in world.store.jobs.history(a.connector_id, limit=100)}
    assert after[a_job.seq].status == "queued" and not after[a_job.seq].result
    assert world.send_request_xml(ticket) == ""  # a closed ticket reaches nothing, A's work least of all
    company = FakeCompany()
    assert world.web_connector("alpha-backoffice", PASSWORD_A, company).ok
    assert [c.name for c in company.customers()] == ["Alpha Queued Desktop Customer"]
    assert world.store.jobs.get(a.connector_id, a_job.seq).status == "done"  # type: ignore[union-attr]
