"""End to end through the local stack: real HTTP to the Chalice dev server, embedded AWS over loopback, the CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.local_stack import LocalStack
from qbsync import cli
from tests.e2e.helpers import run_wc_sim
from tests.support import ROOT

pytestmark = pytest.mark.e2e


def test_the_foundation_promises_over_real_http(stack: LocalStack) -> None:
    base = stack.base_url
    assert requests.get(f"{base}/health", timeout=10).json()["status"] == "ok"

    created = requests.post(
        f"{base}/v1/tenants", json={"name": "Acme"}, headers={"Authorization": f"Bearer {stack.admin_key}"}, timeout=10
    )
    assert created.status_code == 201, created.text
    key = created.json()["api_key"]
    me = requests.get(f"{base}/v1/tenant", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert me.status_code == 200 and me.json()["name"] == "Acme"

    wrong = requests.get(f"{base}/v1/tenant", headers={"Authorization": f"Bearer {key}x"}, timeout=10)
    assert wrong.status_code == 401
    assert wrong.headers["Content-Type"] == "application/problem+json"
    assert wrong.json()["code"] == "unauthorized"

    big = requests.post(
        f"{base}/v1/tenants",
        data=b'{"name": "' + b"x" * (10 * 1024 * 1024) + b'"}',
        headers={"Authorization": f"Bearer {stack.admin_key}", "Content-Type": "application/json"},
        timeout=60,
    )
    assert big.status_code == 413 and big.json()["code"] == "payload_too_large"

    malformed = requests.post(
        f"{base}/v1/tenants",
        data=b'{"name": ',
        headers={"Authorization": f"Bearer {stack.admin_key}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert malformed.status_code == 400
    assert malformed.json()["code"] == "malformed_json" and "line 1" in malformed.json()["detail"]


def test_cli_manages_tenants_and_settings(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--url", stack.base_url, "--admin-key", stack.admin_key]
    assert cli.main([*base, "tenants", "create", "Globex"]) == 0
    created = json.loads(capsys.readouterr().out)
    tenant = ["--url", stack.base_url, "--key", created["api_key"]]
    assert (
        cli.main([*tenant, "settings", "set", "mode=summarized", "sales_tax.enabled=true", "default_terms=Net 30"]) == 0
    )
    capsys.readouterr()
    assert cli.main([*tenant, "settings", "show"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["mode"] == "summarized" and shown["sales_tax"]["enabled"] is True
    assert shown["default_terms"] == "Net 30"

    assert cli.main([*tenant, "settings", "set", "mode=sideways"]) == 1
    assert "mode" in capsys.readouterr().err

    assert cli.main([*base, "tenants", "list"]) == 0
    names = [t["name"] for t in json.loads(capsys.readouterr().out)["items"]]
    assert "Globex" in names


def test_cli_runs_a_schedule_against_the_embedded_aws(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run-schedule", "job_sweeper"]) == 0
    result = json.loads(_last_json(capsys))
    assert result["schedule"] == "job_sweeper" and result["ok"] is True
    assert result["dead_letter_messages"] == 0
    assert cli.main(["run-schedule", "nonsense"]) == 1


def _last_json(capsys: pytest.CaptureFixture[str]) -> str:
    out = capsys.readouterr().out
    return out[out.rindex("\n{") + 1 :] if "\n{" in out else out[out.index("{") :]


def test_cli_help_lists_every_subcommand() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qbsync.cli", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    for command in ("tenants", "tenant", "settings", "run-schedule", "health"):
        assert command in result.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_make_run_entry_point_answers_health_and_stops_on_ctrl_c() -> None:
    """``make run`` runs ``python -m infra.local_stack``: it must answer /health within 60 s and exit 0 on SIGINT."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QBSYNC_", "AWS_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local_stack", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline, healthy = time.monotonic() + 60, False
        while time.monotonic() < deadline and process.poll() is None:
            try:
                healthy = requests.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
            except requests.ConnectionError:
                healthy = False
            if healthy:
                break
            time.sleep(0.25)
        assert healthy, "the local stack did not answer /health within 60 s"
        env_file = ROOT / ".qbsync" / "local-env.json"  # written just after the stack is up
        while time.monotonic() < deadline and not env_file.exists():
            time.sleep(0.1)
        assert env_file.exists()
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    assert "local-admin-key" in output and f"http://127.0.0.1:{port}" in output
    assert not (ROOT / ".qbsync" / "local-env.json").exists()


def test_web_connector_moves_500_customers_and_500_invoices_in_few_round_trips(
    stack: LocalStack, tmp_path: Path
) -> None:
    """Issue 3's acceptance run: queued work for one connector reaches the company file via `qbsync wc-sim`."""
    from decimal import Decimal

    from lxml import etree

    from qbsync.qbwc.jobs import JobService
    from qbsync.qbxml import Customer, Invoice, InvoiceLine, Item
    from qbsync.store.factory import get_store

    base = stack.base_url
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    key = requests.post(f"{base}/v1/tenants", json={"name": "Desktop Co"}, headers=admin, timeout=10).json()["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    password = "correct horse battery"
    connector = requests.post(
        f"{base}/v1/connectors",
        json={"name": "Office", "username": "desktop-office", "password": password},
        headers=auth,
        timeout=30,
    ).json()
    qwc = etree.fromstring(
        requests.get(f"{base}/v1/connectors/{connector['connector_id']}/qwc", headers=auth, timeout=10).content
    )
    assert qwc.findtext("AppURL") == f"http://localhost:{stack.port}/qbwc"

    jobs = JobService(get_store())
    tenant_id = requests.get(f"{base}/v1/tenant", headers=auth, timeout=10).json()["tenant_id"]
    cid = connector["connector_id"]
    item = jobs.enqueue(
        tenant_id, cid, "item_add", Item(name="Support", income_account="Services", price=Decimal("90.00"))
    ).seq
    for i in range(500):
        customer = jobs.enqueue(tenant_id, cid, "customer_add", Customer(name=f"Client {i:03d}")).seq
        invoice = Invoice(
            customer=f"Client {i:03d}",
            ref_number=f"D-{i:05d}",
            lines=(InvoiceLine(item="Support", quantity=Decimal(1), rate=Decimal("90.00")),),
        )
        jobs.enqueue(
            tenant_id, cid, "invoice_add", invoice, depends_on=[customer, item], source_ref=f"invoice:D-{i:05d}"
        )

    state = tmp_path / "company.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "qbsync.cli",
            "wc-sim",
            "--url",
            qwc.findtext("AppURL").replace("localhost", "127.0.0.1"),
            "--user",
            "desktop-office",
            "--password",
            password,
            "--company-state",
            str(state),
            "--owner-id",
            qwc.findtext("OwnerID"),
            "--file-id",
            qwc.findtext("FileID"),
            "--validate-xsd",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    from infra.fake_qbd import FakeCompany

    company = FakeCompany.from_json(state.read_text())
    counts = {"customers": company.count("Customer"), "invoices": company.count("Invoice")}
    summary = completed.stdout
    found = re.search(r"round trips: (\d+)", summary)
    round_trips = int(found.group(1)) if found else None
    assert round_trips is not None and round_trips <= 20, summary
    assert counts["customers"] == 500 and counts["invoices"] == 500, (counts, summary)
    assert "xsd: all requests valid" in summary

    grid = requests.get(f"{base}/v1/connectors/{cid}", headers=auth, timeout=10).json()
    assert grid["last_status"] == "success" and grid["conversations"][0]["status"] == "success"
    assert grid["conversations"][0]["sent"] == {"items": 1, "customers": 500, "invoices": 500}
    history, after = [], 0
    for _ in range(20):
        page = requests.get(
            f"{base}/v1/connectors/{cid}/jobs", params={"after": after, "limit": 500}, headers=auth, timeout=30
        ).json()
        history += page["items"]
        if not page["cursor"]:
            break
        after = int(page["cursor"])
    assert len(history) == 1001 and {j["status"] for j in history} == {"done"}
    assert all(j["result"].get("txn_id") for j in history if j["kind"] == "invoice_add")
    assert all(j["result"].get("list_id") for j in history if j["kind"] != "invoice_add")


def test_quickbooks_online_connect_test_disconnect_over_http(stack: LocalStack) -> None:
    """Issue 4's acceptance run: the OAuth flow through the emulator ends connected, with no plaintext token."""
    emulator = stack.qbo_emulator
    assert emulator is not None
    base = stack.base_url
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    key = requests.post(f"{base}/v1/tenants", json={"name": "Online Co"}, headers=admin, timeout=10).json()["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    assert requests.get(f"{base}/v1/qbo/connection", headers=auth, timeout=10).json()["status"] == "not_connected"

    url = requests.get(f"{base}/v1/qbo/connect", headers=auth, timeout=30).json()["authorization_url"]
    assert url.startswith(emulator.base_url)
    consent = requests.get(url, allow_redirects=False, timeout=10)  # the emulator consents and redirects back
    assert consent.status_code == 302
    callback = requests.get(consent.headers["Location"], timeout=30)
    assert callback.status_code == 200 and "Local Test Co" in callback.text
    replay = requests.get(consent.headers["Location"], timeout=30)  # the state is single-use
    assert replay.status_code == 400 and "expired or was already used" in replay.text

    deadline, status = time.monotonic() + 30, {}
    while time.monotonic() < deadline:
        status = requests.get(f"{base}/v1/qbo/connection", headers=auth, timeout=10).json()
        if status["status"] == "connected":
            break
        time.sleep(0.2)
    assert status["status"] == "connected" and status["company_name"] == "Local Test Co", status
    test = requests.post(f"{base}/v1/qbo/connection/test", headers=auth, timeout=30).json()
    assert test == {"ok": True, "company_name": "Local Test Co", "country": "US"}

    import boto3

    refresh_tokens = {r["issued_refresh_token"] for r in emulator.token_requests if r.get("issued_refresh_token")}
    assert refresh_tokens
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.aws_endpoint, region_name="us-east-1")
    dump = repr(dynamodb.scan(TableName=stack.resources.env["QBSYNC_TABLE"])["Items"])
    assert all(token not in dump for token in refresh_tokens)  # only KMS ciphertext is stored
    assert "QBOLIMIT#" in dump  # the API calls were counted in the shared per-realm rate windows

    gone = requests.delete(f"{base}/v1/qbo/connection", headers=auth, timeout=30).json()
    assert gone["status"] == "disconnected" and gone["reconnect_url"] == "/v1/qbo/connect"
    assert refresh_tokens & emulator.revoked_tokens  # revoked at "Intuit"
    refused = requests.post(f"{base}/v1/qbo/connection/test", headers=auth, timeout=30)
    assert refused.status_code == 409 and refused.json()["code"] == "qbo_not_connected"


def test_quickbooks_online_reconnects_after_invalid_grant(stack: LocalStack) -> None:
    """invalid_grant on refresh → needs_reauth with a reconnect URL; the connect flow again → connected."""
    from qbsync.api.services import get_services
    from qbsync.qbo.tokens import NeedsReauth

    emulator = stack.qbo_emulator
    base = stack.base_url
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    created = requests.post(f"{base}/v1/tenants", json={"name": "Reconnect Co"}, headers=admin, timeout=10).json()
    auth = {"Authorization": f"Bearer {created['api_key']}"}

    def connect() -> dict:
        url = requests.get(f"{base}/v1/qbo/connect", headers=auth, timeout=30).json()["authorization_url"]
        landing = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
        assert requests.get(landing, timeout=30).status_code == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = requests.get(f"{base}/v1/qbo/connection", headers=auth, timeout=10).json()
            if status["status"] == "connected":
                return status
            time.sleep(0.2)
        raise AssertionError(status)

    first = connect()
    emulator.faults.invalid_grant_next_refresh = True
    with pytest.raises(NeedsReauth):
        get_services().tokens.force_refresh(created["tenant_id"], seen_version=10**6)
    status = requests.get(f"{base}/v1/qbo/connection", headers=auth, timeout=10).json()
    assert status["status"] == "needs_reauth" and status["reconnect_url"] == "/v1/qbo/connect"
    # Work sent meanwhile is held, not failed: it waits for the reconnection.
    requests.patch(f"{base}/v1/tenant/settings", json={"auto_create_customers": True}, headers=auth, timeout=10)
    customer = {"id": "held", "name": "Held While Disconnected", "email": "held@example.com"}
    assert requests.post(f"{base}/v1/customers", json=customer, headers=auth, timeout=10).status_code == 202

    def held_state() -> dict:
        return requests.get(f"{base}/v1/customers/held", headers=auth, timeout=10).json()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and held_state()["state"] != "waiting":
        time.sleep(0.2)
    assert held_state()["reason"]["code"] in ("qbo_needs_reauth", "not_connected")
    again = connect()
    assert again["realm_id"] == first["realm_id"] and again["company_name"] == first["company_name"]
    assert requests.post(f"{base}/v1/qbo/connection/test", headers=auth, timeout=30).json()["ok"] is True
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and held_state()["state"] != "synced":
        time.sleep(0.2)
    assert held_state()["state"] == "synced" and held_state()["quickbooks_id"]  # nothing lost


def online_tenant(stack: LocalStack, name: str, settings: dict | None = None) -> tuple[dict[str, str], Any]:
    """A new tenant connected, through the real OAuth flow, to a new emulated QuickBooks Online company."""
    base = stack.base_url
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    key = requests.post(f"{base}/v1/tenants", json={"name": name}, headers=admin, timeout=10).json()["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    if settings:
        assert requests.patch(f"{base}/v1/tenant/settings", json=settings, headers=auth, timeout=10).status_code == 200
    emulator = stack.qbo_emulator
    realm = emulator.add_company(name=f"{name} Books")
    emulator.authorize_realm = realm
    url = requests.get(f"{base}/v1/qbo/connect", headers=auth, timeout=30).json()["authorization_url"]
    requests.get(requests.get(url, allow_redirects=False, timeout=10).headers["Location"], timeout=30)
    return auth, emulator.company(realm)


def add_classes(company: Any, *names: str) -> None:
    for index, name in enumerate(names, 1):
        company.entities["Class"][f"k{index}"] = {
            "Id": f"k{index}",
            "Name": name,
            "FullyQualifiedName": name,
            "SyncToken": "0",
            "Active": True,
        }


def test_records_flow_to_quickbooks_online_with_matching_dependencies_and_payments(stack: LocalStack) -> None:
    """Issue 5 on the local stack: customers (matched by email or created), items, invoices with discounts and
    payments reach the emulator once each, balances are right, the API reports every record synced."""
    from decimal import Decimal

    base = stack.base_url
    settings = {"auto_create_customers": True, "auto_create_items": True, "income_account": "Services"}
    auth, company = online_tenant(stack, "Sync Co", settings)
    # One customer already exists in QuickBooks with the billing email of source customer c-0: it is linked.
    company.entities["Customer"]["900"] = {
        "Id": "900",
        "SyncToken": "0",
        "DisplayName": "Existing Zero",
        "PrimaryEmailAddr": {"Address": "c0@example.com"},
        "Active": True,
    }

    customers = [{"id": f"c-{i}", "name": f"Sync Customer {i}", "email": f"c{i}@example.com"} for i in range(12)]
    items = [{"id": f"i-{i}", "name": f"Service {i}", "sku": f"SKU-{i}", "price": "25.00"} for i in range(4)]
    invoices = [
        {
            "id": f"inv-{i}",
            "customer_id": f"c-{i % 12}",
            "doc_number": f"S-{i:04d}",
            "date": "2026-11-01",
            "lines": [
                {"item_id": f"i-{i % 4}", "quantity": "2", "rate": "25.00"},
                {"item_id": f"i-{(i + 1) % 4}", "quantity": "1", "rate": "10.50"},
            ],
            "discount": {"percent": "10"} if i % 3 == 0 else None,
            "total": "54.45" if i % 3 == 0 else "60.50",
        }
        for i in range(30)
    ]
    for invoice in invoices:
        if invoice["discount"] is None:
            del invoice["discount"]
    payments = [
        {
            "id": f"pay-{i}",
            "customer_id": f"c-{i % 12}",
            "date": "2026-11-05",
            "amount": invoices[i]["total"],
            "applied_to": [{"invoice_id": f"inv-{i}", "amount": invoices[i]["total"]}],
        }
        for i in range(10)
    ]
    # Out of order on purpose: invoices and payments first — they wait for their customers and items.
    for kind, body in (("invoices", invoices), ("payments", payments), ("customers", customers), ("items", items)):
        answer = requests.post(f"{base}/v1/{kind}", json=body, headers=auth, timeout=60)
        assert answer.status_code == 202, answer.text
    again = requests.post(f"{base}/v1/customers", json=customers, headers=auth, timeout=60).json()
    assert {t["status"] for t in again["transfers"]} == {"unchanged"}  # re-posting the same content is a no-op

    def state(kind: str, record_id: str) -> dict:
        return requests.get(f"{base}/v1/{kind}/{record_id}", headers=auth, timeout=10).json()

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if all(state("payments", p["id"])["state"] == "synced" for p in payments) and all(
            state("invoices", i["id"])["state"] == "synced" for i in invoices
        ):
            break
        time.sleep(1)
    states = {
        r["id"]: state(k, r["id"])
        for k, rs in (("customers", customers), ("items", items), ("invoices", invoices), ("payments", payments))
        for r in rs
    }
    assert {s["state"] for s in states.values()} == {"synced"}, [s for s in states.values() if s["state"] != "synced"]
    assert states["c-0"]["quickbooks_id"] == "900"  # matched by billing email, not created
    created = [c for c in company.entities["Customer"].values() if c["DisplayName"].startswith("Sync Customer")]
    assert len(created) == 11 and len(company.entities["Invoice"]) == 30 and len(company.entities["Payment"]) == 10
    for invoice in invoices:
        qb = company.entities["Invoice"][states[invoice["id"]]["quickbooks_id"]]
        paid = int(invoice["id"].split("-")[1]) < 10
        assert Decimal(str(qb["TotalAmt"])) == Decimal(invoice["total"])
        assert Decimal(str(qb["Balance"])) == (Decimal(0) if paid else Decimal(invoice["total"]))
    history = requests.get(
        f"{base}/v1/transfers",
        params={"kind": "invoices", "status": "succeeded", "limit": 500},
        headers=auth,
        timeout=10,
    ).json()["items"]
    assert {t["id"] for t in history} >= {i["id"] for i in invoices}


def test_match_issues_block_records_and_resolving_releases_the_waiting_invoice(stack: LocalStack) -> None:
    """Issue 5's crafted cases: each match-issue type is raised; resolving one syncs its waiting invoice."""
    base = stack.base_url
    auth, company = online_tenant(stack, "Match Co")
    for qb_id, name in (("701", "Twin A"), ("702", "Twin B")):  # two QuickBooks customers share one email
        company.entities["Customer"][qb_id] = {
            "Id": qb_id,
            "SyncToken": "0",
            "DisplayName": name,
            "Active": True,
            "PrimaryEmailAddr": {"Address": "twins@example.com"},
        }
    company.entities["Item"]["801"] = {
        "Id": "801",
        "SyncToken": "0",
        "Name": "Known",
        "Sku": "KNOWN",
        "Active": True,
        "Type": "Service",
    }

    posts = {
        "customers": [
            {"id": "no-email", "name": "No Email"},
            {"id": "unknown", "name": "Unknown", "email": "nobody@example.com"},
            {"id": "twins", "name": "Twins", "email": "twins@example.com"},
        ],
        "items": [
            {"id": "no-sku", "name": "No SKU"},
            {"id": "lost", "name": "Lost", "sku": "NOPE"},
            {"id": "known", "name": "Known", "sku": "KNOWN"},
        ],
        "invoices": [
            {
                "id": "waits",
                "customer_id": "twins",
                "date": "2026-11-02",
                "lines": [{"item_id": "known", "quantity": "1", "rate": "40.00"}],
            }
        ],
    }
    for kind, body in posts.items():
        assert requests.post(f"{base}/v1/{kind}", json=body, headers=auth, timeout=30).status_code == 202

    def issues() -> dict[str, dict]:
        return {i["id"]: i for i in requests.get(f"{base}/v1/match-issues", headers=auth, timeout=10).json()["items"]}

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(issues()) < 5:
        time.sleep(0.5)
    found = issues()
    assert {k: v["code"] for k, v in found.items()} == {
        "customers:no-email": "customer_missing_email",
        "customers:unknown": "customer_not_found",
        "customers:twins": "customer_email_shared",
        "items:no-sku": "item_missing_sku",
        "items:lost": "item_not_found",
    }
    assert {c["quickbooks_id"] for c in found["customers:twins"]["candidates"]} == {"701", "702"}
    waiting = requests.get(f"{base}/v1/invoices/waits", headers=auth, timeout=10).json()
    assert waiting["state"] == "waiting" and "customers:twins" in waiting["reason"]["waiting_for"]

    wrong = requests.post(
        f"{base}/v1/match-issues/customers:twins/resolve", json={"quickbooks_id": "999"}, headers=auth, timeout=10
    )
    assert wrong.status_code == 422
    resolved = requests.post(
        f"{base}/v1/match-issues/customers:twins/resolve", json={"quickbooks_id": "702"}, headers=auth, timeout=10
    ).json()
    assert resolved["state"] == "synced" and resolved["quickbooks_id"] == "702"
    deadline = time.monotonic() + 60
    invoice = {}
    while time.monotonic() < deadline:
        invoice = requests.get(f"{base}/v1/invoices/waits", headers=auth, timeout=10).json()
        if invoice["state"] == "synced":
            break
        time.sleep(0.5)
    assert invoice["state"] == "synced", invoice
    qb_invoice = company.entities["Invoice"][invoice["quickbooks_id"]]
    assert qb_invoice["CustomerRef"]["value"] == "702"
    assert "customers:twins" not in issues()


def test_records_flow_to_quickbooks_desktop_through_the_web_connector(stack: LocalStack, tmp_path: Path) -> None:
    """Issue 5, Desktop: the same kind of data reaches the fake company through `qbsync wc-sim`; payments follow
    once their invoices exist (they need the invoices' TxnIDs), in the next scheduled run."""
    from decimal import Decimal

    from infra.fake_qbd import FakeCompany

    base = stack.base_url
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    key = requests.post(f"{base}/v1/tenants", json={"name": "Desk Co"}, headers=admin, timeout=10).json()["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    desk_settings = {"income_account": "Services", "auto_create_customers": True, "auto_create_items": True}
    requests.patch(f"{base}/v1/tenant/settings", json=desk_settings, headers=auth, timeout=10)
    password = "correct horse battery"
    connector = requests.post(
        f"{base}/v1/connectors",
        json={"name": "Desk", "username": "desk-sync", "password": password},
        headers=auth,
        timeout=30,
    ).json()
    customers = [{"id": f"dc-{i}", "name": f"Desk Customer {i}", "email": f"d{i}@example.com"} for i in range(8)]
    items = [{"id": f"di-{i}", "name": f"Desk Service {i}", "sku": f"D-{i}", "price": "30.00"} for i in range(3)]
    invoices = [
        {
            "id": f"dinv-{i}",
            "customer_id": f"dc-{i % 8}",
            "doc_number": f"D{i:04d}",
            "date": "2026-11-03",
            "lines": [{"item_id": f"di-{i % 3}", "quantity": "3", "rate": "30.00"}],
            "total": "90.00",
        }
        for i in range(16)
    ]
    discounted = {
        "id": "dinv-disc",
        "customer_id": "dc-0",
        "date": "2026-11-03",
        "discount": {"amount": "5.00"},
        "lines": [{"item_id": "di-0", "quantity": "1", "rate": "30.00"}],
    }
    payments = [
        {
            "id": f"dpay-{i}",
            "customer_id": f"dc-{i % 8}",
            "date": "2026-11-06",
            "amount": "90.00",
            "applied_to": [{"invoice_id": f"dinv-{i}", "amount": "90.00"}],
        }
        for i in range(6)
    ]
    for kind, body in (
        ("customers", customers),
        ("items", items),
        ("invoices", [*invoices, discounted]),
        ("payments", payments),
    ):
        assert requests.post(f"{base}/v1/{kind}", json=body, headers=auth, timeout=60).status_code == 202

    def state(kind: str, record_id: str) -> dict:
        return requests.get(f"{base}/v1/{kind}/{record_id}", headers=auth, timeout=10).json()

    def wait_for(predicate, seconds: float = 60) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not predicate():
            time.sleep(0.3)
        assert predicate(), [state("invoices", i["id"]) for i in invoices[:3]] + [state("payments", "dpay-0")]

    # Before the first run, the company file's customers and items must be read to match against.
    wait_for(
        lambda: all((state("customers", c["id"])["reason"] or {}).get("code") == "desktop_import" for c in customers)
    )
    wait_for(lambda: all(state("invoices", i["id"])["state"] == "waiting" for i in invoices))

    company_state = tmp_path / "desk.json"

    def run_web_connector() -> str:
        return run_wc_sim(base, "desk-sync", password, company_state)

    # The first run reads the file's lists; matching then queues the customers and items, and the invoices behind
    # them. Each run sends what is queued; payments follow their invoices (they need the invoices' TxnIDs), in the
    # same conversation when the worker is quick enough, else in the next scheduled run.
    deadline = time.monotonic() + 240
    for _ in range(12):
        if all(state("payments", p["id"])["state"] == "synced" for p in payments) or time.monotonic() > deadline:
            break
        assert "xsd: all requests valid" in run_web_connector()
        time.sleep(2)
    assert state("invoices", "dinv-disc")["state"] == "blocked"  # no Desktop discount item configured
    wait_for(lambda: all(state("invoices", i["id"])["state"] == "synced" for i in invoices))
    wait_for(lambda: all(state("payments", p["id"])["state"] == "synced" for p in payments))

    company = FakeCompany.from_json(company_state.read_text())
    assert company.count("Customer") == 8 and company.count("Invoice") == 16 and company.count("ReceivePayment") == 6
    for invoice in invoices:
        qb = company.find_invoice(invoice["doc_number"])
        paid = int(invoice["id"].split("-")[1]) < 6
        assert qb is not None and qb.balance_remaining == (Decimal(0) if paid else Decimal("90.00"))
    assert all(state("customers", c["id"])["quickbooks_id"] for c in customers)
    jobs = requests.get(
        f"{base}/v1/connectors/{connector['connector_id']}/jobs", params={"limit": 500}, headers=auth, timeout=10
    ).json()["items"]
    assert len(jobs) == 2 + 8 + 3 + 16 + 6 and {j["status"] for j in jobs} == {"done"}  # 2: the list import


def test_invoices_carry_discounts_tax_classes_and_terms_into_quickbooks_online(stack: LocalStack) -> None:
    """S2-S4 through the real lists of the company: terms (default and per invoice), classes (header and per-line
    override), US sales tax (TAX/NON lines, exempt customers, tax-exempt items) and discounts."""
    from decimal import Decimal

    base = stack.base_url
    settings = {
        "auto_create_customers": True,
        "auto_create_items": True,
        "income_account": "Services",
        "default_terms": "Net 30",
        "use_classes": True,
        "allow_class_override": True,
        "sales_tax": {"enabled": True, "default_tax_code": "TAX"},
    }
    auth, company = online_tenant(stack, "Tax Co", settings)
    add_classes(company, "Consulting", "Hardware")
    customers = [
        {"id": "taxable", "name": "Taxable Customer", "email": "t@example.com"},
        {"id": "exempt", "name": "Exempt Customer", "email": "e@example.com", "tax_exempt": True},
    ]
    items = [
        {"id": "work", "name": "Work", "sku": "WORK", "price": "100.00"},
        {"id": "fee", "name": "Filing fee", "sku": "FEE", "price": "20.00", "taxable": False},
    ]
    invoices = [
        {
            "id": "t1",
            "customer_id": "taxable",
            "date": "2026-11-01",
            "class_name": "Consulting",
            "discount": {"percent": "10"},
            "tax_amount": "8.00",
            "lines": [
                {"item_id": "work", "quantity": "1", "rate": "100.00"},
                {"item_id": "fee", "quantity": "1", "rate": "20.00", "class_name": "Hardware"},
            ],
        },
        {
            "id": "t2",
            "customer_id": "exempt",
            "date": "2026-11-01",
            "terms": "Net 15",
            "lines": [{"item_id": "work", "quantity": "2", "rate": "100.00"}],
        },
    ]
    for kind, body in (("customers", customers), ("items", items), ("invoices", invoices)):
        assert requests.post(f"{base}/v1/{kind}", json=body, headers=auth, timeout=30).status_code == 202
    deadline, states = time.monotonic() + 60, {}
    while time.monotonic() < deadline:
        states = {
            i["id"]: requests.get(f"{base}/v1/invoices/{i['id']}", headers=auth, timeout=10).json() for i in invoices
        }
        if all(s["state"] in ("synced", "failed", "blocked") for s in states.values()):
            break
        time.sleep(0.3)
    assert {s["state"] for s in states.values()} == {"synced"}, states
    taxed = company.entities["Invoice"][states["t1"]["quickbooks_id"]]
    exempt = company.entities["Invoice"][states["t2"]["quickbooks_id"]]
    sales = [line for line in taxed["Line"] if line["DetailType"] == "SalesItemLineDetail"]
    assert [line["SalesItemLineDetail"]["TaxCodeRef"]["value"] for line in sales] == ["TAX", "NON"]
    assert sales[1]["SalesItemLineDetail"]["ClassRef"]["value"] == "k2"  # per-line override
    assert taxed["ClassRef"]["value"] == "k1"
    assert any(line["DetailType"] == "DiscountLineDetail" for line in taxed["Line"])
    assert Decimal(str(taxed["TxnTaxDetail"]["TotalTax"])) == Decimal("8.00")
    terms = {t["Id"]: t["Name"] for t in company.entities["Term"].values()}
    assert terms[taxed["SalesTermRef"]["value"]] == "Net 30"  # the tenant default
    assert terms[exempt["SalesTermRef"]["value"]] == "Net 15"  # the invoice's own
    exempt_lines = [line for line in exempt["Line"] if line["DetailType"] == "SalesItemLineDetail"]
    assert {line["SalesItemLineDetail"]["TaxCodeRef"]["value"] for line in exempt_lines} == {"NON"}


def volume_data(*, desktop: bool = False) -> dict[str, list[dict]]:
    """200 customers, 50 items, 1,000 invoices, 400 payments. QBO invoices carry discounts, sales tax, classes and
    terms; the Desktop set leaves out discounts and tax (they need a discount item / sales tax item configured)."""
    customers = [
        {"id": f"vc-{i}", "name": f"Volume Customer {i:03d}", "email": f"vc{i}@example.com", "tax_exempt": i % 10 == 0}
        for i in range(200)
    ]
    items = [
        {"id": f"vi-{i}", "name": f"Volume Item {i:02d}", "sku": f"VI-{i:02d}", "price": "25.00", "taxable": i % 5 != 0}
        for i in range(50)
    ]
    invoices, payments = [], []
    for i in range(1000):
        customer, item = customers[i % 200], items[i % 50]
        invoice: dict = {
            "id": f"vinv-{i}",
            "customer_id": customer["id"],
            "date": "2026-11-01",
            "doc_number": f"V{i:05d}" if not desktop else f"V{i:05d}"[:11],
            "lines": [{"item_id": item["id"], "quantity": "4", "rate": "25.00"}],
        }
        total = Decimal("100.00")
        if not desktop:
            invoice["class_name"] = "Consulting" if i % 2 else "Hardware"
            if i % 7 == 0:
                invoice["terms"] = "Net 15"
            if i % 4 == 0:
                invoice["discount"] = {"amount": "10.00"}
                total -= Decimal("10.00")
            if item["taxable"] and not customer["tax_exempt"]:
                invoice["tax_amount"] = "7.50"
                total += Decimal("7.50")
        invoice["total"] = str(total)
        invoices.append(invoice)
        if i < 400:
            payments.append(
                {
                    "id": f"vpay-{i}",
                    "customer_id": customer["id"],
                    "date": "2026-11-05",
                    "amount": str(total),
                    "applied_to": [{"invoice_id": invoice["id"], "amount": str(total)}],
                }
            )
    return {"customers": customers, "items": items, "invoices": invoices, "payments": payments}


def post_all(base: str, auth: dict[str, str], data: dict[str, list[dict]]) -> None:
    for kind in ("customers", "items", "invoices", "payments"):
        records = data[kind]
        for start in range(0, len(records), 100):
            answer = requests.post(f"{base}/v1/{kind}", json=records[start : start + 100], headers=auth, timeout=120)
            assert answer.status_code == 202, answer.text


def all_states(base: str, auth: dict[str, str], data: dict[str, list[dict]]) -> dict[str, dict]:
    return {
        r["id"]: requests.get(f"{base}/v1/{kind}/{r['id']}", headers=auth, timeout=10).json()
        for kind, records in data.items()
        for r in records
    }


@pytest.mark.slow
def test_volume_to_quickbooks_online(stack: LocalStack) -> None:
    """Issue 5's QBO acceptance run at full volume: every record exactly once, every balance right."""
    base = stack.base_url
    settings = {
        "auto_create_customers": True,
        "auto_create_items": True,
        "income_account": "Services",
        "default_terms": "Net 30",
        "use_classes": True,
        "sales_tax": {"enabled": True, "default_tax_code": "TAX"},
    }
    auth, company = online_tenant(stack, "Volume Co", settings)
    add_classes(company, "Consulting", "Hardware")
    data = volume_data()
    post_all(base, auth, data)
    post_all(base, auth, data)  # everything twice: the second time is a no-op
    last = data["payments"][-1]["id"]
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if requests.get(f"{base}/v1/payments/{last}", headers=auth, timeout=10).json()["state"] == "synced":
            break
        time.sleep(2)
    states = all_states(base, auth, data)
    assert [s for s in states.values() if s["state"] != "synced"] == []
    assert len(company.entities["Customer"]) == 200 and len(company.entities["Item"]) == 50
    assert len(company.entities["Invoice"]) == 1000 and len(company.entities["Payment"]) == 400
    for index, invoice in enumerate(data["invoices"]):
        qb = company.entities["Invoice"][states[invoice["id"]]["quickbooks_id"]]
        assert Decimal(str(qb["TotalAmt"])) == Decimal(invoice["total"])
        assert Decimal(str(qb["Balance"])) == (Decimal(0) if index < 400 else Decimal(invoice["total"]))
    assert company.throttled == 0
