"""End to end through the local stack: real HTTP to the Chalice dev server, embedded AWS over loopback, the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests

from infra.aws_bootstrap import apply_env
from infra.local_stack import LocalStack
from qbsync import cli
from tests.support import ROOT

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def running_stack() -> Iterator[LocalStack]:
    with LocalStack(port=0, scheduler=False) as running:
        yield running


@pytest.fixture
def stack(running_stack: LocalStack) -> LocalStack:
    """The module's stack, with its environment re-applied after the per-test clean-up."""
    assert running_stack.resources is not None
    apply_env(running_stack.resources)
    return running_stack


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
