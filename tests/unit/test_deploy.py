"""Production settings of template.yaml, the Lambda build inputs and the deploy examples stay what the guide says."""

from __future__ import annotations

import copy
import re
import tomllib
from typing import Any

import pytest
from moto import mock_aws

from infra.aws_bootstrap import BootstrapError, bootstrap
from infra.template import load_template
from qbsync.settings import Settings, SettingsError, parse_origins
from tests.support import ROOT

FOURTEEN_DAYS = 14 * 86_400


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def _resources(template: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in template["Resources"].items() if r["Type"] == type_name}


def test_production_settings_are_template_parameters(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    for name in ("Stage", "CustomDomainName", "CertificateArn", "QboEnvironment", "ConsoleOrigins",
                 "LogRetentionDays", "ApiThrottlingRateLimit", "ApiThrottlingBurstLimit", "WorkerReservedConcurrency",
                 "AlarmEmail"):  # fmt: skip
        assert name in parameters, name
    resources = template["Resources"]
    method = resources["Api"]["Properties"]["MethodSettings"][0]
    assert method["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert method["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    worker = resources["TransferWorkerFunction"]["Properties"]
    assert worker["ReservedConcurrentExecutions"]["Fn::If"][1] == {"Ref": "WorkerReservedConcurrency"}
    scaling = worker["Events"]["TransferQueue"]["Properties"]["ScalingConfig"]["Fn::If"][1]
    assert scaling == {"MaximumConcurrency": {"Ref": "WorkerReservedConcurrency"}}
    assert "WorkerReservationOfZeroOrAtLeastTwo" in template["Rules"]  # the SQS poller's minimum is 2
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["QBSYNC_CONSOLE_ORIGINS"] == {"Ref": "ConsoleOrigins"}
    assert variables["QBO_ENVIRONMENT"] == {"Ref": "QboEnvironment"}
    assert variables["QBSYNC_STAGE"] == {"Ref": "Stage"}


def test_tracing_backups_retention_and_logs(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert template["Globals"]["Function"]["Tracing"] == "Active"
    assert resources["Api"]["Properties"]["TracingEnabled"] is True
    table = resources["Table"]
    assert table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    assert resources["TransferDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == FOURTEEN_DAYS
    for name, function in _resources(template, "AWS::Serverless::Function").items():
        log_group = resources[function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]]
        assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name


def test_every_alarm_notifies_the_topic_and_the_email_is_optional(template: dict[str, Any]) -> None:
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 4
    for name, alarm in alarms.items():
        assert {"Ref": "NotificationTopic"} in alarm["Properties"]["AlarmActions"], name
    subscription = template["Resources"]["NotificationEmail"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    allowed = template["Resources"]["NotificationTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"][1]
    sources = {ref["Fn::GetAtt"][0] for ref in allowed["Condition"]["ArnEquals"]["aws:SourceArn"]}
    assert sources == set(alarms), "the topic policy must let every alarm publish"


def emitted_event_types() -> set[str]:
    """Every detail-type the library publishes (string literals passed to ``publish``)."""
    code = "\n".join(p.read_text() for p in (ROOT / "shared" / "qbsync").rglob("*.py"))
    found = set(re.findall(r"publish\(\s*\"([a-z_]+\.[a-z_]+)\"", code))
    found |= set(re.findall(r"\"[a-z]+\": \"([a-z]+\.synced)\"", code))
    return found


def test_failure_events_reach_the_notification_topic(template: dict[str, Any]) -> None:
    rule = template["Resources"]["FailureNotificationRule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "EventBus"}
    assert rule["Targets"][0]["Arn"] == {"Ref": "NotificationTopic"}
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["qbsync"]
    emitted = emitted_event_types()
    assert {"transfer.failed", "connection.needs_reauth", "connection.expiring", "match.issue"} <= emitted
    assert set(pattern["detail-type"]) <= emitted, "the rule names an event qbsync never emits"
    assert set(pattern["detail-type"]) == {"transfer.failed", "connection.needs_reauth", "connection.expiring"}
    assert "match.issue" not in pattern["detail-type"]  # routine work for the SaaS app, not an operator page


def test_custom_domain_is_optional_and_feeds_the_public_url(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    for name in ("ApiDomainName", "ApiBasePathMapping"):
        assert resources[name]["Condition"] == "HasCustomDomain", name
    assert resources["ApiDnsRecord"]["Condition"] == "HasDnsRecord"
    assert resources["ApiBasePathMapping"]["Properties"]["RestApiId"] == {"Ref": "Api"}
    assert template["Parameters"]["CustomDomainName"]["Default"] == ""
    assert "CustomDomainNeedsCertificate" in template["Rules"]
    for output in ("ApiUrl", "SoapUrl", "QboRedirectUri"):
        assert template["Outputs"][output]["Value"]["Fn::If"][0] == "HasCustomDomain", output


@pytest.mark.parametrize(("domain", "expected"), [("", ""), ("qbsync.example.com", "https://qbsync.example.com")])
def test_the_local_bootstrap_evaluates_the_conditions(template: dict[str, Any], domain: str, expected: str) -> None:
    changed = copy.deepcopy(template)
    changed["Parameters"]["CustomDomainName"]["Default"] = domain
    with mock_aws():
        resources = bootstrap(None, template=changed, environ={})
    assert resources.env["QBSYNC_PUBLIC_URL"] == expected
    assert resources.env["QBSYNC_CONSOLE_ORIGINS"] == ""


def test_the_local_bootstrap_refuses_an_unknown_condition(template: dict[str, Any]) -> None:
    changed = copy.deepcopy(template)
    changed["Globals"]["Function"]["Environment"]["Variables"]["X"] = {"Fn::If": ["Nope", "a", "b"]}
    with mock_aws(), pytest.raises(BootstrapError, match="Nope"):
        bootstrap(None, template=changed, environ={})


def test_console_origins_are_parsed_and_checked() -> None:
    settings = Settings.from_env({"QBSYNC_CONSOLE_ORIGINS": " https://App.Example.com/ ,http://localhost:5173,"})
    assert settings.console_origins == ("https://app.example.com", "http://localhost:5173")
    assert Settings.from_env({}).console_origins == ()
    assert parse_origins("https://a.example.com,https://a.example.com") == ("https://a.example.com",)
    for bad in ("http://app.example.com", "https://app.example.com/console", "app.example.com", "ftp://x.example"):
        with pytest.raises(SettingsError, match="QBSYNC_CONSOLE_ORIGINS"):
            parse_origins(bad)


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=~! ;]", line.strip(), maxsplit=1)[0].lower() for line in requirements}


def test_the_layer_carries_the_runtime_dependencies_except_boto3_and_chalice() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = _names(pyproject["project"]["dependencies"])
    lines = (ROOT / "deploy" / "layer-requirements.txt").read_text().splitlines()
    layer = [line for line in lines if line.strip() and not line.startswith("#")]
    assert _names(layer) == runtime - {"boto3", "chalice"}
    # same version ranges as pyproject, so the layer runs what the tests ran
    assert set(layer) == {d for d in pyproject["project"]["dependencies"] if _names([d]) & _names(layer)}
    api_requirements = (ROOT / "functions" / "api" / "requirements.txt").read_text().split()
    assert api_requirements == [d for d in pyproject["project"]["dependencies"] if d.startswith("chalice")]


def test_every_resource_is_a_makefile_build(template: dict[str, Any]) -> None:
    makefile = (ROOT / "deploy" / "Makefile").read_text()
    for name, resource in template["Resources"].items():
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion"):
            assert resource["Metadata"]["BuildMethod"] == "makefile", name
            assert resource["Metadata"]["ContextPath"] == "deploy/", name
            assert f"build-{name}:" in makefile or name.endswith("Function"), name
    assert template["Resources"]["SharedLayer"]["Properties"]["CompatibleRuntimes"] == [
        template["Globals"]["Function"]["Runtime"]
    ]
    assert "LAMBDA_PYTHON ?= " + template["Globals"]["Function"]["Runtime"].removeprefix("python") in makefile


def test_the_samconfig_example_names_real_parameters(template: dict[str, Any]) -> None:
    config = tomllib.loads((ROOT / "samconfig.example.toml").read_text())
    deploy = config["default"]["deploy"]["parameters"]
    overrides = dict(item.split("=", 1) for item in deploy["parameter_overrides"])
    assert set(overrides) <= set(template["Parameters"])
    assert {"Stage", "QboEnvironment", "QboClientId", "CustomDomainName", "CertificateArn", "AlarmEmail"} <= set(
        overrides
    )
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    for name, value in overrides.items():
        spec = template["Parameters"][name]
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], name
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], value), name
