"""Brute force and timing: a connector locks after the tenant's number of wrong passwords and then refuses the
right one with the very same answer; every refusal (unknown user, wrong password, locked, disabled, inactive
tenant; unknown key id, wrong secret, revoked key) costs exactly one scrypt verification, so the answer time tells
a guesser nothing; API key guessing never locks the real key out; and no secret in shared/qbsync is compared
with ``==`` (only ``hmac.compare_digest`` / ``verify_secret``)."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from infra.fake_qbd import FakeCompany
from qbsync import security
from tests.conftest import ADMIN_KEY
from tests.support import ROOT
from tests.world import Tenant, World

PASSWORD = "the right connector password"


@pytest.fixture
def scrypts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every verify_secret call (the scrypt) made by the login and API-key checks."""
    calls: list[str] = []
    real: Callable[[str, str], bool] = security.verify_secret

    def counting(secret: str, stored: str) -> bool:
        calls.append(secret)
        return real(secret, stored)

    monkeypatch.setattr("qbsync.connectors.verify_secret", counting)
    monkeypatch.setattr("qbsync.tenancy.verify_secret", counting)
    return calls


def connector(world: World, tenant: Tenant, username: str, lockout: int = 3) -> str:
    world.ok("PATCH", "/v1/tenant/settings", key=tenant.api_key, json_body={"connector_lockout_attempts": lockout})
    created = world.ok(
        "POST", "/v1/connectors", key=tenant.api_key, json_body={"name": username, "username": username,
                                                                 "password": PASSWORD}
    )  # fmt: skip
    return str(created["connector_id"])


def login(world: World, username: str, password: str) -> list[str]:
    return world.soap_result("authenticate", {"strUserName": username, "strPassword": password})


def test_lockout_holds_and_a_locked_connector_answers_the_right_password_like_a_wrong_one(world: World) -> None:
    acme, other = world.tenant("Acme"), world.tenant("Other")
    acme_id = connector(world, acme, "acme-desk")
    connector(world, other, "other-desk")
    world.services.jobs.enqueue(acme.tenant_id, acme_id, "customer_query", {})  # work waiting: a login gets a ticket
    wrong = [login(world, "acme-desk", f"guess number {n}") for n in range(3)]
    assert wrong == [["", "nvu"]] * 3
    grid = world.ok("GET", f"/v1/connectors/{acme_id}", key=acme.api_key)
    assert grid["locked"] is True and grid["failed_logins"] == 3
    assert login(world, "acme-desk", PASSWORD) == ["", "nvu"]  # locked: the right password opens nothing
    assert login(world, "acme-desk", "guess number 4") == ["", "nvu"]
    assert login(world, "nobody-at-all", PASSWORD) == ["", "nvu"]  # an unknown user looks the same
    assert login(world, "other-desk", PASSWORD)[1] in ("none", "")  # another tenant's connector is not affected
    assert world.ok("GET", f"/v1/connectors/{acme_id}", key=acme.api_key)["failed_logins"] >= 3
    world.ok("POST", f"/v1/connectors/{acme_id}/unlock", key=acme.api_key)
    assert world.web_connector("acme-desk", PASSWORD, FakeCompany()).ok


def test_every_login_refusal_costs_one_scrypt(world: World, scrypts: list[str]) -> None:
    acme = world.tenant("Acme")
    acme_id = connector(world, acme, "acme-desk", lockout=2)
    disabled = world.tenant("Disabled Co")
    connector(world, disabled, "disabled-main")  # the default one cannot be disabled
    disabled_id = connector(world, disabled, "disabled-desk")
    world.ok("PATCH", f"/v1/connectors/{disabled_id}", key=disabled.api_key, json_body={"enabled": False})
    inactive = world.tenant("Inactive Co")
    connector(world, inactive, "inactive-desk")
    world.ok("PATCH", f"/v1/tenants/{inactive.tenant_id}", key=ADMIN_KEY, json_body={"status": "inactive"})
    cases = [
        ("nobody-at-all", PASSWORD),
        ("acme-desk", "wrong password 1"),
        ("acme-desk", "wrong password 2"),  # now locked
        ("acme-desk", PASSWORD),  # locked, right password
        ("acme-desk", "wrong password 3"),  # locked, wrong password
        ("disabled-desk", PASSWORD),
        ("inactive-desk", PASSWORD),
    ]
    for username, password in cases:
        before = len(scrypts)
        assert login(world, username, password) == ["", "nvu"], username
        assert len(scrypts) - before == 1, (username, password)
    assert world.ok("GET", f"/v1/connectors/{acme_id}", key=acme.api_key)["locked"] is True


def test_every_api_key_refusal_costs_one_scrypt_and_guessing_never_locks_the_real_key(
    world: World, scrypts: list[str]
) -> None:
    acme = world.tenant("Acme")
    key_id = acme.api_key.split("_")[1]
    guesses = [
        f"qbs_{'0' * 16}_{'A' * 43}",  # an unknown key id
        f"qbs_{key_id}_{'B' * 43}",  # the real key id, a wrong secret
        acme.api_key[:-1] + ("C" if not acme.api_key.endswith("C") else "D"),  # one character off
    ]
    bodies = set()
    for _ in range(10):
        for guess in guesses:
            before = len(scrypts)
            answer = world.call("GET", "/v1/tenant", key=guess)
            assert answer.status_code == 401
            assert len(scrypts) - before == 1, guess
            problem = json.loads(answer.body)
            problem.pop("request_id")
            bodies.add(json.dumps(problem, sort_keys=True))
    assert len(bodies) == 1  # one answer for every kind of wrong key
    assert world.call("GET", "/v1/tenant", key="not-even-a-key").status_code == 401  # malformed: no scrypt needed
    assert world.ok("GET", "/v1/tenant", key=acme.api_key)["tenant_id"] == acme.tenant_id  # 30 guesses later
    for wrong_admin in ("", ADMIN_KEY[:-1], ADMIN_KEY + "x", ADMIN_KEY.upper()):
        assert world.call("GET", "/v1/tenants", key=wrong_admin or None).status_code == 401


# Identifiers that hold a secret (or its presented form). Comparing them with == leaks, through timing, how much
# of a guess was right.
SECRET_NAME = re.compile(
    r"(^|_)(password|secret|api_key|admin_key|signature|verifier_token|access_token|refresh_token|token|presented)"
    r"($|_)",
    re.IGNORECASE,
)
NOT_SECRET = {"API_KEY_PREFIX"}  # the public "qbs" prefix of every key


def _final_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _final_name(node.func)
    return None


def test_no_secret_is_compared_with_equals_in_the_library() -> None:
    found: list[str] = []
    sources = sorted((ROOT / "shared" / "qbsync").rglob("*.py"))
    assert len(sources) > 50
    for path in sources:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare) or not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                continue
            for operand in (node.left, *node.comparators):
                name = _final_name(operand)
                if name and name not in NOT_SECRET and SECRET_NAME.search(name):
                    found.append(f"{Path(path).relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert found == [], "compare secrets with hmac.compare_digest / security.verify_secret:\n" + "\n".join(found)


def test_the_scan_would_catch_an_equals_comparison() -> None:
    tree = ast.parse("ok = presented == settings.admin_key\nsame = body.signature != expected")
    hits = [
        _final_name(o)
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        for o in (node.left, *node.comparators)
        if _final_name(o) and SECRET_NAME.search(_final_name(o) or "")
    ]
    assert hits == ["presented", "admin_key", "signature"]
