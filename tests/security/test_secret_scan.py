"""No secret in any output: one realistic flow (tenants, a connector and its password, a QuickBooks Online connect
through the emulator, records synced, a record QuickBooks refuses, a webhook, an expired token that turns into
needs_reauth, Web Connector conversations with a wrong password first, a disconnect) runs with every log line
(the Powertools logger at DEBUG and every other Python logger), every emitted event, every REST and SOAP
response and problem body captured; none contains an API key, the admin key, a connector password, an access or
refresh token, an authorization code, the client secret or the webhook verifier token. Web Connector tickets
and OAuth states appear only where they are handed out. The store holds none of them in plaintext either."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from infra.fake_qbd import FakeCompany
from tests.conftest import ADMIN_KEY
from tests.support import captured_logs
from tests.world import WEBHOOK_TOKEN, World

PASSWORD = "Desk-Password-4f9a2c7e"
WRONG_PASSWORD = "Guessed-Password-0b1d3e5f"


@pytest.fixture
def all_logs() -> Iterator[Callable[[], str]]:
    """The Powertools logger at DEBUG, and every other Python logger (HTTP clients, botocore, intuit-oauth) at
    INFO, the level a deployed function runs them at. (urllib3's DEBUG lines are the URLs of this test's own
    browser requests, which carry the OAuth state by design.)"""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with captured_logs() as powertools:
            yield lambda: powertools.getvalue() + buffer.getvalue()
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def signed(body: bytes) -> str:
    return base64.b64encode(hmac.new(WEBHOOK_TOKEN.encode(), body, hashlib.sha256).digest()).decode()


def run_flow(world: World) -> dict[str, Any]:
    """The flow; returns what was handed out where (keys, tickets, states) for the scan."""
    handed: dict[str, Any] = {"api_keys": [], "states": [], "wc_bodies": []}
    qbo = world.tenant(
        "Secretive Online", auto_create_customers=True, auto_create_items=True, income_account="Services"
    )
    desk = world.tenant("Secretive Desktop", auto_create_customers=True, auto_create_items=True)
    handed["api_keys"] += [qbo.api_key, desk.api_key]
    world.call("GET", "/v1/tenant", key=qbo.api_key + "x")  # a forged key: refused, never echoed
    world.call("GET", "/v1/tenant", key=ADMIN_KEY)

    # QuickBooks Online: connect (one declined attempt first), records, a refused invoice, a webhook.
    world.emulator.authorize_deny = True
    denied = world.authorize(qbo)
    world.callback(denied)
    world.emulator.authorize_deny = False
    realm = world.connect_qbo(qbo, "Secretive Books")
    for answer in world.responses:
        if b"authorization_url" in (answer.body or b""):
            handed["states"].append(json.loads(answer.body)["authorization_url"].split("state=")[1].split("&")[0])
    key = qbo.api_key
    world.ok("POST", "/v1/customers", key=key, json_body={"id": "c1", "name": "Cust One", "email": "c1@example.com"})
    world.ok("POST", "/v1/items", key=key, json_body={"id": "i1", "name": "Work", "price": "50.00"})
    world.ok(
        "POST",
        "/v1/invoices",
        key=key,
        json_body=[
            {"id": f"inv{n}", "customer_id": "c1", "date": "2026-11-01", "doc_number": "DUP-1",
             "lines": [{"item_id": "i1", "rate": "50.00"}]}
            for n in (1, 2)
        ],
    )  # fmt: skip
    world.drain()
    states = {n: world.ok("GET", f"/v1/invoices/inv{n}", key=key)["state"] for n in (1, 2)}
    assert states == {1: "synced", 2: "failed"}, states  # QuickBooks refuses the duplicate DocNumber
    world.call("GET", "/v1/transfers?status=failed", key=key)
    world.ok("POST", "/v1/qbo/connection/test", key=key)
    notification = json.dumps(
        {"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": [
            {"name": "Invoice", "id": "1", "operation": "Update", "lastUpdated": "2026-11-02T10:00:00.000Z"}]}}]}
    ).encode()  # fmt: skip
    assert world.call("POST", "/qbo/webhooks", body=notification, headers={"intuit-signature": signed(notification),
                      "Content-Type": "application/json"}).status_code == 200  # fmt: skip
    world.call("POST", "/qbo/webhooks", body=notification, headers={"intuit-signature": "forged"})
    world.drain()

    # The access token dies and the refresh token with it: needs_reauth, the work paused, not lost.
    world.emulator.faults.expire_access_tokens = True
    world.emulator.faults.invalid_grant_next_refresh = True
    world.services.tokens.forget(qbo.tenant_id)
    world.ok("POST", "/v1/customers", key=key, json_body={"id": "c2", "name": "Cust Two", "email": "c2@example.com"})
    world.drain()
    world.emulator.faults.expire_access_tokens = False
    assert world.ok("GET", "/v1/qbo/connection", key=key)["status"] == "needs_reauth"
    assert world.ok("GET", "/v1/customers/c2", key=key)["state"] != "synced"
    assert world.events.of_type("connection.needs_reauth")
    world.call("POST", "/v1/qbo/connection/test", key=key)
    world.callback(world.authorize(qbo, realm))  # reconnect: the paused customer flows
    world.drain()
    assert world.ok("GET", "/v1/customers/c2", key=key)["state"] == "synced"
    world.ok("DELETE", "/v1/qbo/connection", key=key)

    # QuickBooks Desktop: a connector and its password, a wrong password, then conversations that sync.
    connector = world.ok(
        "POST",
        "/v1/connectors",
        key=desk.api_key,
        json_body={"name": "Desk", "username": "secretive-desk", "password": PASSWORD},
    )
    world.ok("GET", f"/v1/connectors/{connector['connector_id']}/qwc", key=desk.api_key)
    world.ok("PATCH", f"/v1/connectors/{connector['connector_id']}", key=desk.api_key, json_body={"password": PASSWORD})
    world.ok("POST", "/v1/customers", key=desk.api_key, json_body={"id": "d1", "name": "Desk Cust", "email": "d@x.io"})
    world.drain()
    session = requests.Session()
    session.hooks["response"].append(lambda r, *args, **kwargs: handed["wc_bodies"].append(r.text))
    company = FakeCompany()
    for password in (WRONG_PASSWORD, PASSWORD, PASSWORD, PASSWORD):
        world.web_connector("secretive-desk", password, company, session=session)
        world.drain()
    assert world.ok("GET", "/v1/customers/d1", key=desk.api_key)["state"] == "synced"
    world.ok("GET", f"/v1/connectors/{connector['connector_id']}/jobs", key=desk.api_key)
    world.ok("GET", "/v1/connectors", key=desk.api_key)
    return handed


def test_no_secret_reaches_a_log_an_event_a_response_or_the_store(world: World, all_logs: Callable[[], str]) -> None:
    handed = run_flow(world)
    emulator = world.emulator
    tickets = {t for body in handed["wc_bodies"] for t in _tickets(body)}
    assert tickets, "the Web Connector never got a ticket"
    secrets = {
        "admin key": {ADMIN_KEY},
        "api keys": set(handed["api_keys"]),
        "connector passwords": {PASSWORD, WRONG_PASSWORD},
        "access tokens": set(emulator.tokens.access),
        "refresh tokens": set(emulator.tokens.refresh),
        "authorization codes": set(emulator.tokens.codes),
        "client secret": {emulator.client_secret},
        "webhook verifier token": {WEBHOOK_TOKEN},
    }
    assert all(secrets.values()), {k: len(v) for k, v in secrets.items()}
    handed_out = {"tickets": tickets, "oauth states": set(handed["states"])}

    logs = all_logs()
    assert "request refused" in logs and "qbo" in logs  # the capture saw the flow
    events = json.dumps(world.events.events)
    rest = [_text(r) for r in world.responses]
    outputs = {"logs": logs, "events": events}
    for name, found in _scan(outputs, {**secrets, **handed_out}).items():
        pytest.fail(f"{name}: {found}")
    # Responses: an API key only in the one answer that creates it, a ticket only in authenticate's answer, a
    # state only in the authorization URL.
    for body in rest + handed["wc_bodies"]:
        allowed_keys = {k for k in secrets["api keys"] if f'"api_key":"{k}"' in body.replace(" ", "")}
        allowed_tickets = tickets if "authenticateResult" in body else set()
        allowed_states = handed_out["oauth states"] if "authorization_url" in body else set()
        leaks = _scan(
            {"response": body},
            {
                **secrets,
                "api keys": secrets["api keys"] - allowed_keys,
                "tickets": tickets - allowed_tickets,
                "oauth states": handed_out["oauth states"] - allowed_states,
            },
        )
        assert not leaks, (leaks, body[:500])
    tables = {k: v for k, v in vars(world.store._tables).items() if k != "lock"}
    stored = repr(tables)  # every key and value, dataclasses and JSON documents alike
    assert "Secretive" in stored and "scrypt$" in stored  # the dump holds the tenants and the hashed secrets
    leaks = _scan({"store": stored}, {**secrets, **handed_out})
    assert not leaks, leaks


def _scan(outputs: dict[str, str], secrets: dict[str, set[str]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for where, text in outputs.items():
        for kind, values in secrets.items():
            hits = [v[:6] + "…" for v in values if v and v in text]
            if hits:
                found[f"{kind} in {where}"] = hits
    return found


def _text(response: Any) -> str:
    body = response.body
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)


def _tickets(body: str) -> list[str]:
    if "authenticateResult" not in body:
        return []
    start = body.index("<string>") + len("<string>") if "<string>" in body else -1
    if start < 0:
        return []
    ticket = body[start : body.index("</string>", start)]
    return [ticket] if ticket else []
