"""Every ``qbsync`` command of the README's deploy guide, run as written against a stand-in for a deployed stack.

The stand-in: the local stack (real HTTP API, embedded AWS on loopback) plus a CloudFormation stack in that embedded
AWS whose outputs are the ones template.yaml declares (``ApiUrl``, ``AdminKeySecretArn``, ``QboClientSecretArn``…),
pointing at the local API and the local secrets. ``--stack`` then resolves exactly as it does against AWS.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.local_stack import LocalStack
from infra.template import load_template
from qbsync import cli
from qbsync.aws import reset_clients
from qbsync.settings import reset_settings
from qbsync.smoke import same_endpoint

pytestmark = pytest.mark.e2e

STACK = "qbsync-prod"
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(port=0, scheduler=False, prefix="qbsync-guide") as running:
        assert running.resources is not None
        outputs = {
            "ApiUrl": running.base_url,
            "SoapUrl": running.base_url + "/qbwc",
            "QboRedirectUri": running.base_url + "/qbo/callback",
            "AdminKeySecretArn": running.resources.physical_ids["AdminKeySecret"],
            "QboClientSecretArn": running.resources.physical_ids["QboClientSecret"],
        }
        assert set(outputs) <= set(load_template()["Outputs"]), "the stand-in uses outputs the template lacks"
        cloudformation = boto3.client("cloudformation", endpoint_url=running.aws_endpoint, region_name="us-east-1")
        cloudformation.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(
                {
                    "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
                    "Outputs": {name: {"Value": value} for name, value in outputs.items()},
                }
            ),
        )
        yield running
    reset_settings()
    reset_clients()


def qbsync(capsys: pytest.CaptureFixture[str], *args: str, stdin: str | None = None) -> Any:
    """``qbsync --stack qbsync-prod ARGS`` in-process; the parsed JSON it printed."""
    capsys.readouterr()
    saved = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        code = cli.main(["--stack", STACK, *args])
    finally:
        sys.stdin = saved
    captured = capsys.readouterr()
    assert code == 0, captured.err + captured.out
    # The in-process API's one-line JSON logs share stdout; the CLI prints indented JSON.
    out = captured.out
    start = 0 if out.startswith("{\n") else out.index("\n{\n") + 1
    return json.loads(out[start : out.index("\n}\n", start) + 2])


def test_the_guide_commands_run_against_a_stack(
    stack: LocalStack, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QBSYNC_URL", raising=False)
    monkeypatch.delenv("QBSYNC_ADMIN_KEY", raising=False)
    outputs = qbsync(capsys, "stack", "outputs")
    assert outputs["ApiUrl"] == stack.base_url and outputs["SoapUrl"].endswith("/qbwc")

    stored = qbsync(capsys, "stack", "put-secret", "QboClientSecretArn", stdin="intuit-client-secret\n")
    secrets = boto3.client("secretsmanager", endpoint_url=stack.aws_endpoint, region_name="us-east-1")
    assert secrets.get_secret_value(SecretId=stored["secret"])["SecretString"] == "intuit-client-secret"
    assert qbsync(capsys, "stack", "admin-key")["admin_key"] == stack.admin_key

    assert qbsync(capsys, "health")["status"] == "ok"
    tenant = qbsync(capsys, "tenants", "create", "Acme")
    key = tenant["api_key"]
    connector = qbsync(
        capsys, "--key", key, "connectors", "create", "Main office", "--username", "acme-main",
        "--password", "correct horse battery",
    )  # fmt: skip
    monkeypatch.chdir(tmp_path)
    qwc = qbsync(capsys, "--key", key, "connectors", "qwc", connector["connector_id"], "-o", "acme.qwc")
    assert same_endpoint(qwc["app_url"], stack.base_url + "/qbwc")
    assert "<AppURL>" in (tmp_path / "acme.qwc").read_text()
    grid = qbsync(capsys, "--key", key, "connectors", "list")
    assert [c["username"] for c in grid["items"]] == ["acme-main"]

    authorization = qbsync(capsys, "--key", key, "qbo", "connect")["authorization_url"]
    assert "redirect_uri=" in authorization
    assert qbsync(capsys, "--key", key, "qbo", "status")["status"] == "not_connected"

    report = qbsync(capsys, "smoke")
    assert report["ok"] is True, report
    names = {c["name"]: c["ok"] for c in report["checks"]}
    expected_checks = ("health", "tenant", "wrong key refused", "qwc AppURL", "qbwc authenticate",
                       "record stored and queued", "qbo authorization url", "smoke tenant deactivated")  # fmt: skip
    for check in expected_checks:
        assert names.get(check) is True, (check, report)
    listed = qbsync(capsys, "tenants", "list")
    smoke_tenant = next(t for t in listed["items"] if t["tenant_id"] == report["tenant_id"])
    assert smoke_tenant["status"] == "inactive"


def test_smoke_fails_loudly_when_a_check_fails(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--url", stack.base_url, "--admin-key", "not-the-admin-key", "smoke"])
    captured = capsys.readouterr()
    assert code == 1
    assert "smoke test failed" in captured.err and '"ok": false' in captured.out


def test_stack_errors_are_clear(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--stack", "no-such-stack", "health"]) == 1
    assert "cannot read stack 'no-such-stack'" in capsys.readouterr().err
    assert cli.main(["--stack", STACK, "stack", "put-secret", "ApiUrl"]) == 1
    assert "not a secret output" in capsys.readouterr().err
    assert cli.main(["stack", "outputs"]) == 1
    assert "--stack" in capsys.readouterr().err


def guide_commands() -> list[str]:
    """The shell lines of the README's deploy guide (its ```bash blocks)."""
    text = README.read_text()
    guide = text[text.index("## Deploying") : text.index("\n## ", text.index("## Deploying") + 3)]
    lines, inside = [], False
    for line in guide.splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```bash"
            continue
        if inside and line.strip():
            lines.append(line.split("  #", 1)[0].strip())
    return lines


EXERCISED = {
    *("stack outputs", "stack put-secret", "stack admin-key", "health", "tenants create", "tenants list"),
    *("connectors create", "connectors qwc", "connectors list", "qbo connect", "qbo status", "smoke"),
}


def qbsync_subcommand(line: str) -> str:
    words = [w for w in line.split()[1:] if not w.startswith("-")]
    words = [w for w in words if w not in (STACK, '"$KEY"')]
    return " ".join(words[:2]) if words[0] in ("stack", "tenants", "connectors", "qbo") else words[0]


def test_every_command_in_the_guide_is_exercised() -> None:
    """Each guide command is run above (qbsync), by make deploy-check, or is `sam deploy` itself."""
    commands = guide_commands()
    assert len(commands) >= 12
    for line in commands:
        if line.startswith(".venv/bin/qbsync "):
            assert qbsync_subcommand(line) in EXERCISED, line
        elif line.startswith(".sam-venv/bin/sam deploy"):
            continue  # the one command no test can run
        elif line.startswith("KEY="):
            continue
        else:
            assert line == "make deploy-check", f"a guide command no test exercises: {line}"
