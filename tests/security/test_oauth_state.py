"""The QuickBooks Online OAuth callback refuses what it cannot trust: a missing, forged, replayed or expired state,
a realmId that is not the one Intuit authorized, a code from another sign-in, Intuit's error callbacks. Each
refusal is a clear HTML page with a 4xx status, and the tenant's connection (and every other tenant's) is what it
was: no tokens stored, nothing queued, no event. The state decides the tenant: whoever's code comes with it, it
can only ever connect the tenant that asked for it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.world import Tenant, World


def snapshot(world: World, *tenants: Tenant) -> dict[str, Any]:
    return {
        "connections": {t.tenant_id: world.store.qbo.get(t.tenant_id) for t in tenants},
        "queued": len(world.queue.sent),
        "events": len(world.events.events),
        "codes_exchanged": sum(1 for r in world.emulator.token_requests if r["grant_type"] == "authorization_code"),
    }


def refused(answer: Any, status: int, says: str) -> str:
    page = answer.body.decode("utf-8") if isinstance(answer.body, bytes) else str(answer.body)
    assert answer.status_code == status, page
    assert answer.headers["Content-Type"].startswith("text/html") and answer.headers["Cache-Control"] == "no-store"
    assert "QuickBooks was not connected" in page and says in page, page
    return page


@pytest.fixture
def acme(world: World) -> Tenant:
    return world.tenant("Acme")


def test_missing_and_forged_state_change_nothing(world: World, acme: Tenant) -> None:
    params = world.authorize(acme)
    before = snapshot(world, acme)
    refused(world.callback({k: v for k, v in params.items() if k != "state"}), 400, "missing its state")
    refused(world.callback({**params, "state": params["state"][:-2] + "xy"}), 400, "expired or was already used")
    refused(world.callback({**params, "state": "A" * 300}), 400, "missing its state")
    assert snapshot(world, acme) == before
    # The genuine state still works afterwards: the forgeries consumed nothing.
    assert world.callback(params).status_code == 200
    assert world.store.qbo.get(acme.tenant_id) is not None


def test_a_replayed_callback_is_refused_and_the_connection_keeps_its_tokens(world: World, acme: Tenant) -> None:
    params = world.authorize(acme)
    assert world.callback(params).status_code == 200
    world.drain()
    before = snapshot(world, acme)
    refused(world.callback(params), 400, "expired or was already used")
    assert snapshot(world, acme) == before
    assert world.ok("POST", "/v1/qbo/connection/test", key=acme.api_key)["ok"] is True


def test_an_expired_state_is_refused(world: World, acme: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    params = world.authorize(acme)
    before = snapshot(world, acme)
    monkeypatch.setattr(world.services.qbo, "epoch", lambda: time.time() + 601)  # the state lives 10 minutes
    refused(world.callback(params), 400, "expired or was already used")
    assert snapshot(world, acme) == before


def test_intuit_error_callbacks_are_shown_escaped_and_change_nothing(world: World, acme: Tenant) -> None:
    world.emulator.authorize_deny = True
    params = world.authorize(acme)
    assert params["error"] == "access_denied" and "code" not in params
    before = snapshot(world, acme)
    refused(world.callback(params), 400, "access_denied")
    page = refused(world.callback({**params, "error": "<script>alert(1)</script>"}), 400, "&lt;script&gt;")
    assert "<script>" not in page
    assert snapshot(world, acme) == before
    assert world.ok("GET", "/v1/qbo/connection", key=acme.api_key)["status"] == "not_connected"


def test_a_tampered_realm_id_connects_nothing(world: World, acme: Tenant) -> None:
    """Intuit authorized company A; the redirect says company B (another customer's). Nothing may be stored for
    B with A's tokens, and the tenant is not connected to either."""
    authorized = world.emulator.add_company(name="Authorized Co")
    other = world.emulator.add_company(name="Someone Else's Co")
    params = world.authorize(acme, authorized)
    before = snapshot(world, acme)
    answer = world.callback({**params, "realmId": other})
    assert 400 <= answer.status_code < 500, answer.body
    assert "QuickBooks was not connected" in answer.body.decode()
    after = snapshot(world, acme)
    assert after["connections"] == before["connections"] and after["queued"] == before["queued"]
    assert after["events"] == before["events"]
    assert world.ok("GET", "/v1/qbo/connection", key=acme.api_key)["status"] == "not_connected"


def test_the_state_decides_the_tenant_whoever_s_code_comes_with_it(world: World, acme: Tenant) -> None:
    """Tenant A's state with a code Intuit issued to tenant B's sign-in: only A can be connected (to the company
    B's user authorized — what the code is for), B stays as it was, and B's code cannot be used twice."""
    globex = world.tenant("Globex")
    realm_b = world.emulator.add_company(name="Globex Books")
    params_a = world.authorize(acme)
    params_b = world.authorize(globex, realm_b)
    before_b = snapshot(world, globex)
    mixed = {"state": params_a["state"], "code": params_b["code"], "realmId": params_b["realmId"]}
    assert world.callback(mixed).status_code == 200
    assert world.store.qbo.get(acme.tenant_id).realm_id == realm_b  # type: ignore[union-attr]
    assert snapshot(world, globex)["connections"] == before_b["connections"]
    assert world.store.qbo.get(globex.tenant_id) is None
    # B's own state with its (now used) code: Intuit refuses the code; B is told to start again, nothing stored.
    refused(world.callback(params_b), 400, "start again")
    assert world.store.qbo.get(globex.tenant_id) is None
    # A's state is spent: B cannot replay it to reach A's connection either.
    refused(world.callback(mixed), 400, "expired or was already used")
