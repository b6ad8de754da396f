"""Every sample event in events/ runs through the make-invoke path (in-process embedded AWS) with the expected
outcome, so the samples stay true as the code changes; one also goes through `make invoke` itself."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from infra.invoke import invoke
from tests.support import ROOT

EVENTS = sorted((ROOT / "events").glob("*/*.json"))

API_STATUS = {
    "get_health": 200,
    "get_openapi": 200,
    "post_tenants_created": 201,
    "post_tenants_malformed_json": 400,
    "post_tenants_unknown_field": 422,
    "get_tenants_list": 200,
    "get_tenant_wrong_key": 401,
    "patch_tenant_not_found": 404,
    "get_console_login": 200,  # the admin console's sign-in page (templates and Jinja2 come from the layer)
}


def test_there_is_a_sample_event_for_every_function() -> None:
    folders = {path.parent.name for path in EVENTS}
    assert folders == {p.name for p in (ROOT / "functions").iterdir() if (p / "app.py").exists()}
    assert {path.stem for path in EVENTS if path.parent.name == "api"} == set(API_STATUS)


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_sample_event(path: Path) -> None:
    function, case = path.parent.name, path.stem
    event = json.loads(path.read_text())
    result = invoke(function, event)
    if function == "api":
        assert result["statusCode"] == API_STATUS[case], result["body"]
        content_type = result["headers"]["Content-Type"]
        if case.startswith("get_console"):
            assert content_type == "text/html; charset=utf-8" and '<form method="post"' in result["body"]
            assert "default-src 'self'" in result["headers"]["Content-Security-Policy"]
            return
        assert content_type == ("application/json" if result["statusCode"] < 400 else "application/problem+json")
        json.loads(result["body"])
    elif function == "transfer_worker":
        failed = {item["itemIdentifier"] for item in result["batchItemFailures"]}
        assert failed == {record["messageId"] for record in event["Records"]}  # poison is retried, never dropped
    else:
        assert result["schedule"] == function and result["ok"] is True and result["run"] == 1


def test_make_invoke_runs_a_handler() -> None:
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("make invoke needs the project's .venv (make test creates it)")
    completed = subprocess.run(
        ["make", "-s", "invoke", "FN=reconciler", "EVENT=events/reconciler/scheduled.json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert '"schedule": "reconciler"' in completed.stdout and '"ok": true' in completed.stdout
