"""The admin console in a real browser (issue 10): headless Chromium driven by Playwright against the local stack.

What a newcomer does from the README: sign in with the tenant's key, change the settings, connect QuickBooks Online
(the emulator's consent screen), create a Web Connector connector and download its QWC file, send the demo data
(``qbsync demo``), resolve the duplicate-email match issue by picking the QuickBooks customer, and watch the
waiting invoice become synced. Every page is screenshotted at desktop and phone width into
``test-artifacts/console/`` (git-ignored).

The browser is the system Chromium (``/usr/bin/chromium``; ``make browser`` installs it, ``.ci/run`` does so in CI);
Playwright's own browser download is never used. Without Chromium or Playwright these tests skip, unless
``QBSYNC_REQUIRE_BROWSER=1`` (CI) turns the skip into a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.local_stack import LocalStack
from qbsync import demo
from qbsync.aws import reset_clients
from qbsync.settings import reset_settings
from tests.e2e.helpers import run_wc_sim
from tests.support import ROOT

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("QBSYNC_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "console"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def _unavailable(reason: str) -> None:
    if os.environ.get("QBSYNC_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests required (QBSYNC_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(f"{reason}; `make browser` installs Chromium (Debian: apt-get install chromium)")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A Playwright browser context on a fresh profile of the system Chromium."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM}")
    with tempfile.TemporaryDirectory(prefix="qbsync-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            accept_downloads=True,
            viewport=DESKTOP,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """The local stack with the demo QuickBooks company (what `make run` starts)."""
    saved = dict(os.environ)
    with LocalStack(port=0, scheduler=False, demo=True) as running:
        yield running
    os.environ.clear()
    os.environ.update(saved)
    reset_settings()
    reset_clients()


def new_tenant(stack: LocalStack, name: str) -> str:
    created = requests.post(
        f"{stack.base_url}/v1/tenants",
        headers={"Authorization": f"Bearer {stack.admin_key}"},
        json={"name": name},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["api_key"])


class Console:
    """One browser tab on the console, with the checks every page gets."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.problems: list[str] = []
        page.set_default_timeout(20_000)
        page.on("console", lambda m: self.problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.problems.append(str(e)))

    def open(self, path: str) -> None:
        response = self.page.goto(self.base + path)
        assert response is not None and response.status < 400, path

    def text(self, selector: str) -> str:
        return str(self.page.locator(selector).first.inner_text())

    def shoot(self, name: str) -> None:
        """Screenshots at desktop and phone width; at phone width nothing may overflow sideways."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}-desktop.png"), full_page=True)
        self.page.set_viewport_size(PHONE)
        try:
            self.page.screenshot(path=str(ARTIFACTS / f"{name}-phone.png"), full_page=True)
            overflow = self.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{name}: {overflow}px wider than a phone screen"
        finally:
            self.page.set_viewport_size(DESKTOP)

    def sign_in(self, key: str) -> None:
        self.page.fill("#api_key", key)
        self.page.click("button[type=submit]")
        self.page.wait_for_url("**/console/settings")

    def wait_until(self, what: str, check: Callable[[], bool], *, seconds: float = 60) -> None:
        """Reload until ``check()`` holds (the worker moves records in the background); bounded in time."""
        deadline = time.monotonic() + seconds
        for _ in range(200):
            if check():
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
            self.page.reload()
        raise AssertionError(f"timed out waiting for {what}")


def test_a_newcomer_connects_fixes_a_match_issue_and_sees_invoices_synced(chromium: Any, stack: LocalStack) -> None:
    base = stack.base_url
    key = new_tenant(stack, "Acme <Billing> & Co")
    console = Console(chromium.new_page(), base)
    page = console.page

    # Sign in: the key goes in a password field and becomes an HttpOnly session cookie.
    console.open("/console")
    assert page.url.endswith("/console/login")
    console.shoot("login")
    console.sign_in(key)
    cookies = chromium.cookies(base)
    session = next(c for c in cookies if c["name"] == "qbsync_console")
    assert session["httpOnly"] is True and session["sameSite"] == "Strict" and key not in session["value"]
    assert key not in page.content() and key not in page.url
    assert page.evaluate("document.cookie") == ""  # script cannot read the session
    assert "Acme <Billing> & Co" in console.text(".tenant")  # escaped, shown as text

    # Settings: the mode choice and defaults, saved through PATCH /v1/tenant/settings.
    page.check("#mode-summarized")
    page.fill("#default_terms", "Net 30")
    page.click("#settings-form button[type=submit]")
    assert "Settings saved." in console.text(".flash.ok")
    settings = requests.get(f"{base}/v1/tenant/settings", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert settings.json()["mode"] == "summarized" and settings.json()["default_terms"] == "Net 30"
    page.check("#mode-full")
    page.click("#settings-form button[type=submit]")
    assert page.locator("#mode-full").is_checked()
    console.shoot("settings")

    # QuickBooks Online: Connect → Intuit's (the emulator's) consent → callback → back to the console.
    console.open("/console/quickbooks")
    assert console.text("#qbo-state") == "not connected"
    console.shoot("quickbooks-not-connected")
    page.click("text=Connect to QuickBooks")
    page.wait_for_url("**/qbo/callback**")
    assert "QuickBooks is connected" in page.content()
    page.click("text=admin console")
    page.wait_for_url("**/console/quickbooks")
    console.wait_until("the connection", lambda: console.text("#qbo-state") == "connected")
    assert console.text("#qbo-company") == "Local Test Co"
    page.click("text=Test connection")
    assert "the connection works" in console.text(".flash.ok")
    console.shoot("quickbooks-connected")

    # Web Connector: create a connector, see it in the grid, download its QWC file.
    console.open("/console/connectors")
    page.fill("#c-name", "Main office")
    page.fill("#c-username", "acme-main")
    page.fill("#c-password", "correct horse battery")
    page.click("#connector-form button[type=submit]")
    assert "Connector created" in console.text(".flash.ok")
    row = page.locator("#connector-grid tbody tr").first
    assert "Main office" in row.inner_text() and "not run yet" in row.inner_text()
    with page.expect_download() as download_info:
        page.click("text=Download QWC file")
    download = download_info.value
    assert download.suggested_filename.endswith(".qwc")
    qwc = Path(download.path()).read_text(encoding="utf-8")
    assert "<UserName>acme-main</UserName>" in qwc and "/qbwc</AppURL>" in qwc
    console.shoot("connectors")

    # The SaaS app sends its data (the README's `qbsync demo`).
    sent = subprocess.run(
        [sys.executable, "-m", "qbsync.cli", "--url", base, "--key", key, "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr

    # Invoices: Acme's goes through; Northwind's waits for its customer, whose email two QuickBooks customers share.
    console.open("/console/invoices")

    def state(invoice_id: str) -> str:
        return console.text(f"tr[data-invoice='{invoice_id}'] .badge")

    console.wait_until("the first invoice", lambda: state("demo-inv-1") == "synced")
    console.wait_until("the second invoice to wait", lambda: state("demo-inv-2") == "waiting")
    assert "demo-northwind" in console.text("tr[data-invoice='demo-inv-2']")
    console.shoot("invoices-waiting")

    # Match issues: pick the QuickBooks customer for the duplicate email.
    console.open("/console/issues?kind=customers")
    console.wait_until("the match issue", lambda: page.locator("[data-issue='customers:demo-northwind']").count() == 1)
    issue = page.locator("[data-issue='customers:demo-northwind']")
    assert "customer email shared" in issue.inner_text()
    console.shoot("issues")
    issue.locator("label", has_text="Northwind Traders (East)").click()
    issue.locator("button", has_text="Link to this record").click()
    assert "Match issue resolved" in console.text(".flash.ok")
    assert page.locator("[data-issue='customers:demo-northwind']").count() == 0
    console.open("/console/issues?kind=items")
    console.shoot("issues-items")

    # The waiting invoice goes by itself now.
    console.open("/console/invoices")
    console.wait_until("the second invoice to sync", lambda: state("demo-inv-2") == "synced")
    console.shoot("invoices-synced")
    customer = requests.get(f"{base}/v1/customers/demo-northwind", headers={"Authorization": f"Bearer {key}"})
    realm = stack.qbo_emulator.realms[0]
    east = next(
        c
        for c in stack.qbo_emulator.company(realm).entities["Customer"].values()
        if c["DisplayName"] == "Northwind Traders (East)"
    )
    assert customer.json()["quickbooks_id"] == east["Id"]
    invoice = requests.get(f"{base}/v1/invoices/demo-inv-2", headers={"Authorization": f"Bearer {key}"}).json()
    in_qbo = stack.qbo_emulator.company(realm).entities["Invoice"][invoice["quickbooks_id"]]
    assert in_qbo["CustomerRef"]["value"] == east["Id"]

    # Transfer history with QuickBooks' answers, filterable.
    console.open("/console/transfers?kind=invoices&id=demo-inv-2")
    assert page.locator("#transfer-table tbody tr").count() >= 2
    assert "succeeded" in console.text("#transfer-table tbody tr")
    console.shoot("transfers")

    # Sync Data: everything is in QuickBooks, the run's progress says so.
    console.open("/console/sync")
    page.click("#sync-form button[type=submit]")
    page.wait_for_url("**/console/sync?id=*")
    console.wait_until("the sync run", lambda: "0 on the way" in console.text("#sync-progress"))
    done = sum(len(v) for v in demo.RECORDS.values())
    assert console.text("#sync-done") == str(done)
    console.shoot("sync")

    # Mappings: a billing code to an income account, saved with PUT /v1/mappings/billing_codes.
    console.open("/console/mappings")
    page.fill("[aria-label='New key 1']", "LABOR")
    page.fill("[aria-label='New QuickBooks income account 1']", "Services")
    page.click("#mappings-form button[type=submit]")
    assert "Mappings saved." in console.text(".flash.ok")
    assert "Billing codes (1)" in console.text(".subtabs")
    mapped = requests.get(f"{base}/v1/mappings/billing_codes", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert mapped.json()["entries"] == {"LABOR": {"name": "Services", "type": None}}
    console.shoot("mappings")

    # Sign out: the cookie is gone and the pages ask for a key again.
    page.click("text=Sign out")
    page.wait_for_url("**/console/login")
    console.open("/console/invoices")
    assert page.url.endswith("/console/login")
    assert not [c for c in chromium.cookies(base) if c["name"] == "qbsync_console"]
    assert not [p for p in console.problems if "Content Security Policy" in p or "Refused" in p], console.problems


def test_the_connector_grid_shows_conversations_login_failures_and_unlock(
    chromium: Any, stack: LocalStack, tmp_path: Path
) -> None:
    """A QuickBooks Desktop tenant: a Web Connector run becomes a dot with its reason on hover; wrong passwords lock
    the connector, the grid says why, and Unlock (a CSRF-protected form) frees it."""
    base = stack.base_url
    key = new_tenant(stack, "Desk Co")
    requests.patch(
        f"{base}/v1/tenant/settings",
        headers={"Authorization": f"Bearer {key}"},
        json={"connector_lockout_attempts": 2, "auto_create_customers": True},
        timeout=30,
    ).raise_for_status()
    console = Console(chromium.new_page(), base)
    page = console.page
    console.open("/console/login")
    console.sign_in(key)
    console.open("/console/connectors")
    page.fill("#c-name", "Front <desk>")
    page.fill("#c-username", "desk-front")
    page.fill("#c-password", "correct horse battery")
    page.click("#connector-form button[type=submit]")
    assert "Front <desk>" in console.text("#connector-grid tbody th")

    customer = {"id": "d-1", "name": "Desk Customer", "email": "desk@example.com"}
    posted = requests.post(f"{base}/v1/customers", headers={"Authorization": f"Bearer {key}"}, json=customer)
    assert posted.status_code == 202, posted.text
    state = tmp_path / "company.json"
    deadline = time.monotonic() + 60
    for _ in range(20):  # the worker queues the customer for the connector; each run is one conversation
        run_wc_sim(base, "desk-front", "correct horse battery", state)
        synced = requests.get(f"{base}/v1/customers/d-1", headers={"Authorization": f"Bearer {key}"}).json()
        if synced["state"] == "synced" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    console.open("/console/connectors")
    dot = page.locator("#connector-grid .dots li.dot").first
    assert (dot.get_attribute("title") or "").startswith("success"), dot.get_attribute("title")
    dot.hover()
    assert "never" not in console.text("#connector-grid td[data-label='Last sync']")
    console.shoot("connectors-grid")

    for _ in range(2):  # two wrong passwords lock it (connector_lockout_attempts = 2)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "qbsync.cli",
                "wc-sim",
                "--url",
                f"{base}/qbwc",
                "--user",
                "desk-front",
                "--password",
                "wrong password",
                "--company-state",
                str(state),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    console.open("/console/connectors")
    row = console.text("#connector-grid tbody tr")
    assert "locked" in row and "last login refused: wrong password" in row
    refused = page.locator("#connector-grid .dots li.dot-login_failed").first
    assert (refused.get_attribute("title") or "").startswith("login refused")
    console.shoot("connectors-locked")
    page.click("#connector-grid button:has-text('Unlock')")
    assert "Connector unlocked." in console.text(".flash.ok")
    assert "locked" not in console.text("#connector-grid td[data-label='Status'] .badge")
    assert not [p for p in console.problems if "Content Security Policy" in p or "Refused" in p], console.problems
