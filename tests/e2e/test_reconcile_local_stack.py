"""Issue 7 on the local stack: invoices paid, deleted or part-paid in the QuickBooks Online emulator (through its
admin hooks, over HTTP) show as such after one `qbsync run-schedule reconcile`; a signed webhook notification is
reconciled by the worker, a replayed or forged one changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.local_stack import LocalStack
from qbsync import cli
from qbsync.api.services import use_services
from qbsync.aws import reset_clients
from qbsync.observability import get_logger
from qbsync.qbo.webhooks import signature_of
from qbsync.settings import reset_settings
from qbsync.store.factory import reset_store
from tests.e2e.test_local_stack import _last_json, online_tenant
from tests.support import ROOT

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """A stack of its own. Another e2e module's stack may have run in this process and left its environment
    applied (e2e tests keep their stack's environment): start from the environment without it, and put it back."""
    get_logger()  # built now, not under a test's capsys: its handler must not keep a captured, later closed stdout
    before = dict(os.environ)
    clean = {k: v for k, v in before.items() if not k.startswith(("QBO_", "QBSYNC_")) and k != "AWS_ENDPOINT_URL"}
    use_services(None)
    reset_store()
    try:
        with LocalStack(port=0, scheduler=False, environ=clean) as running:
            yield running
    finally:
        use_services(None)
        reset_store()
        os.environ.clear()
        os.environ.update(before)
        reset_settings()
        reset_clients()


def wait_for(predicate: Callable[[], bool], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.3)
    assert predicate()


def test_paid_deleted_and_payments_entered_in_quickbooks_online_come_back(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    base = stack.base_url
    settings = {"auto_create_customers": True, "auto_create_items": True, "income_account": "Services"}
    auth, company = online_tenant(stack, "Recon Co", settings)
    realm = company.realm_id
    invoices = [
        {
            "id": f"r-{i}",
            "customer_id": "rc-1",
            "doc_number": f"R-{i}",
            "date": "2026-11-02",
            "lines": [{"item_id": "ri-1", "quantity": "1", "rate": "120.00"}],
            "total": "120.00",
        }
        for i in range(4)
    ]
    payment = {
        "id": "rp-0",
        "customer_id": "rc-1",
        "date": "2026-11-05",
        "amount": "120.00",
        "applied_to": [{"invoice_id": "r-0", "amount": "120.00"}],
    }
    for kind, body in (
        ("customers", {"id": "rc-1", "name": "Recon Customer", "email": "recon@example.com"}),
        ("items", {"id": "ri-1", "name": "Recon Service", "sku": "REC", "price": "120.00"}),
        ("invoices", invoices),
        ("payments", payment),
    ):
        assert requests.post(f"{base}/v1/{kind}", json=body, headers=auth, timeout=60).status_code == 202

    def invoice(source_id: str) -> dict[str, Any]:
        return dict(requests.get(f"{base}/v1/invoices/{source_id}", headers=auth, timeout=10).json())

    wait_for(lambda: all(invoice(i["id"])["state"] == "synced" for i in invoices))
    wait_for(lambda: requests.get(f"{base}/v1/payments/rp-0", headers=auth, timeout=10).json()["state"] == "synced")
    assert invoice("r-0")["paid"] is None  # not reconciled yet

    admin = stack.qbo_emulator.base_url + f"/admin/{realm}/invoices"
    paid = requests.post(f"{admin}/{invoice('r-1')['quickbooks_id']}/pay", json={"date": "2026-11-15"}, timeout=10)
    assert paid.status_code == 200, paid.text
    part = requests.post(
        f"{admin}/{invoice('r-3')['quickbooks_id']}/pay", json={"amount": "20.00", "date": "2026-11-16"}, timeout=10
    )
    assert part.status_code == 200, part.text
    assert requests.post(f"{admin}/{invoice('r-2')['quickbooks_id']}/delete", timeout=10).status_code == 200

    assert cli.main(["run-schedule", "reconcile"]) == 0
    result = json.loads(_last_json(capsys))
    assert result["schedule"] == "reconciler" and result["ok"] is True and result["qbo_companies"] >= 1

    by_qbsync = invoice("r-0")
    assert (by_qbsync["paid"], by_qbsync["paid_date"], by_qbsync["balance"]) == (True, "2026-11-05", "0.00")
    assert [p["origin"] for p in by_qbsync["payments"]] == ["qbsync"]
    in_quickbooks = invoice("r-1")
    assert (in_quickbooks["paid"], in_quickbooks["paid_date"]) == (True, "2026-11-15")
    assert [(p["origin"], p["date"]) for p in in_quickbooks["payments"]] == [("quickbooks", "2026-11-15")]
    deleted = invoice("r-2")
    assert deleted["drift"]["code"] == "deleted" and deleted["paid"] is False
    partial = invoice("r-3")
    assert partial["paid"] is False and partial["balance"] == "100.00"
    assert [(p["origin"], p["amount"]) for p in partial["payments"]] == [("quickbooks", "20.00")]

    # The rest of r-3 is paid in QuickBooks; Intuit notifies qbsync (CloudEvents), the worker reconciles it.
    rest = requests.post(
        f"{admin}/{partial['quickbooks_id']}/pay", json={"amount": "100.00", "date": "2026-11-19"}, timeout=10
    ).json()["Invoice"]
    notification = json.dumps(
        [
            {
                "specversion": "1.0",
                "id": f"evt-{rest['Id']}",
                "source": "intuit.local",
                "type": "qbo.payment.created.v1",
                "datacontenttype": "application/json",
                "time": "2026-11-19T10:00:00Z",
                "intuitentityid": rest["Id"],
                "intuitaccountid": realm,
                "data": {},
            }
        ]
    ).encode()
    token = os.environ["QBO_WEBHOOK_VERIFIER_TOKEN"]

    def deliver(signature: str) -> requests.Response:
        return requests.post(
            f"{base}/qbo/webhooks",
            data=notification,
            headers={"Content-Type": "application/cloudevents-batch+json", "intuit-signature": signature},
            timeout=10,
        )

    forged = deliver(signature_of(notification, "not-the-token"))
    assert forged.status_code == 401 and forged.json()["code"] == "unauthorized"
    accepted = deliver(signature_of(notification, token))
    assert accepted.status_code == 200 and accepted.json() == {"received": 1, "duplicates": 0, "queued": 1}
    wait_for(lambda: invoice("r-3")["paid"] is True)
    assert invoice("r-3")["paid_date"] == "2026-11-19"
    replayed = deliver(signature_of(notification, token))
    assert replayed.status_code == 200 and replayed.json()["queued"] == 0 and replayed.json()["duplicates"] == 1


def test_paid_and_deleted_in_quickbooks_desktop_come_back_after_reconcile_and_one_web_connector_run(
    stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = stack.base_url
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    key = requests.post(f"{base}/v1/tenants", json={"name": "Desk Recon"}, headers=admin, timeout=10).json()["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    desk_settings = {"income_account": "Services", "auto_create_customers": True, "auto_create_items": True}
    requests.patch(f"{base}/v1/tenant/settings", json=desk_settings, headers=auth, timeout=10)
    password = "correct horse battery"
    created = requests.post(
        f"{base}/v1/connectors",
        json={"name": "Desk", "username": "desk-recon", "password": password},
        headers=auth,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    invoices = [
        {
            "id": f"dr-{i}",
            "customer_id": "drc",
            "doc_number": f"DR-{i}",
            "date": "2026-11-03",
            "lines": [{"item_id": "dri", "quantity": "1", "rate": "70.00"}],
            "total": "70.00",
        }
        for i in range(3)
    ]
    for kind, body in (
        ("customers", {"id": "drc", "name": "Desk Recon Customer", "email": "dr@example.com"}),
        ("items", {"id": "dri", "name": "Desk Recon Service", "sku": "DR", "price": "70.00"}),
        ("invoices", invoices),
    ):
        assert requests.post(f"{base}/v1/{kind}", json=body, headers=auth, timeout=60).status_code == 202

    def invoice(source_id: str) -> dict[str, Any]:
        return dict(requests.get(f"{base}/v1/invoices/{source_id}", headers=auth, timeout=10).json())

    state = tmp_path / "desk.json"

    def run(*args: str) -> str:
        completed = subprocess.run(
            [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
        return completed.stdout

    def web_connector() -> str:
        return run(
            "-m", "qbsync.cli", "wc-sim", "--url", f"{base}/qbwc", "--user", "desk-recon", "--password", password,
            "--company-state", str(state), "--validate-xsd",
        )  # fmt: skip

    def all_synced() -> bool:
        return all(invoice(i["id"])["state"] == "synced" for i in invoices)

    for _ in range(6):  # the first run reads the company's lists (matching); later runs send what was queued
        time.sleep(1)
        web_connector()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all_synced():
            time.sleep(0.3)
        if all_synced():
            break
    assert all_synced(), [invoice(i["id"]) for i in invoices]

    # A user pays DR-0 and part of DR-1 in QuickBooks Desktop, and deletes DR-2 (the fake company's admin hooks).
    admin_cli = ("-m", "infra.fake_qbd.admin", "--company-state", str(state))
    run(*admin_cli, "pay", "DR-0", "--date", "2026-11-14", "--ref", "CHK-14")
    run(*admin_cli, "pay", "DR-1", "--amount", "30.00", "--date", "2026-11-15")
    run(*admin_cli, "delete", "DR-2")

    assert cli.main(["run-schedule", "reconcile"]) == 0
    result = json.loads(_last_json(capsys))
    assert result["qbd_reconcile_queued"] >= 1
    assert "xsd: all requests valid" in web_connector()

    paid = invoice("dr-0")
    assert (paid["paid"], paid["paid_date"], paid["balance"]) == (True, "2026-11-14", "0.00")
    assert [(p["origin"], p["date"]) for p in paid["payments"]] == [("quickbooks", "2026-11-14")]
    part = invoice("dr-1")
    assert part["paid"] is False and part["balance"] == "40.00" and part["payments"][0]["amount"] == "30.00"
    assert invoice("dr-2")["drift"]["code"] == "deleted"
