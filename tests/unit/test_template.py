"""template.yaml and the code agree: every Chalice route has an API event, every function has its handler."""

from __future__ import annotations

from pathlib import Path

from infra.template import load_template, resources_of_type
from tests.support import ROOT, load_function_module


def test_every_chalice_route_has_exactly_one_api_event_and_back() -> None:
    template = load_template()
    function = template["Resources"]["ApiFunction"]["Properties"]
    events = {
        (event["Properties"]["Path"], event["Properties"]["Method"].upper())
        for event in function["Events"].values()
        if event["Type"] == "Api"
    }
    app = load_function_module("api").app
    routes = {(path, method) for path, methods in app.routes.items() for method in methods}
    assert routes - events == set(), "routes missing from template.yaml ApiFunction events"
    assert events - routes == set(), "template.yaml API events with no Chalice route"
    assert len(events) == len(function["Events"])


def test_every_function_points_at_a_real_handler() -> None:
    template = load_template()
    functions = resources_of_type(template, "AWS::Serverless::Function")
    assert {
        "ApiFunction",
        "TransferWorkerFunction",
        "ReconcilerFunction",
        "TokenRefresherFunction",
        "JobSweeperFunction",
        "SummarizerFunction",
    } <= set(functions)
    for name, resource in functions.items():
        props = resource["Properties"]
        folder = Path(props["CodeUri"]).name
        module_name, attribute = props["Handler"].split(".")
        assert module_name == "app", name
        assert (ROOT / "functions" / folder / "app.py").exists(), name
        assert callable(getattr(load_function_module(folder), attribute)), name


def test_queue_and_worker_settings_hold_the_design_rules() -> None:
    resources = load_template()["Resources"]
    queue = resources["TransferQueue"]["Properties"]
    worker = resources["TransferWorkerFunction"]["Properties"]
    assert queue["FifoQueue"] is True
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["TransferDeadLetterQueue", "Arn"]}
    sqs_event = next(e for e in worker["Events"].values() if e["Type"] == "SQS")
    assert sqs_event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    table = resources["Table"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEType"] == "KMS"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    globals_ = load_template()["Globals"]["Function"]
    assert globals_["Architectures"] == ["arm64"] and globals_["Runtime"] == "python3.12"


def test_no_module_level_aws_clients() -> None:
    """boto3 clients built at import escape moto and slow cold starts: only qbsync.aws may build them, lazily."""
    offenders = []
    for path in list((ROOT / "shared" / "qbsync").rglob("*.py")) + list((ROOT / "functions").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.startswith((" ", "\t")) and (
                "boto3.client(" in line or "boto3.resource(" in line or "aws.client(" in line
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert offenders == []
