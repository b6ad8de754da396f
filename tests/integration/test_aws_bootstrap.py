"""The embedded-AWS bootstrap creates what template.yaml declares, with the template's properties."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.aws_bootstrap import LOCAL_ADMIN_KEY, apply_env, bootstrap
from infra.template import load_template, resources_of_type
from qbsync.aws import reset_clients
from qbsync.settings import get_settings, reset_settings

TEMPLATE = load_template()


@pytest.fixture
def restore_environ() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    reset_settings()
    reset_clients()


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def _client(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1")


def test_every_queue_has_the_template_properties(aws: None) -> None:
    res = bootstrap(None, environ={})
    sqs = _client("sqs")
    queues = resources_of_type(TEMPLATE, "AWS::SQS::Queue")
    assert queues, "the template declares queues"
    for logical_id, resource in queues.items():
        props = resource["Properties"]
        url = res.physical_ids[logical_id]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert url.endswith(".fifo") == bool(props.get("FifoQueue"))
        assert attrs["QueueArn"] == res.attributes[logical_id]["Arn"]
        for key in ("FifoQueue", "ContentBasedDeduplication", "VisibilityTimeout", "MessageRetentionPeriod"):
            if key in props:
                expected = str(props[key]).lower() if isinstance(props[key], bool) else str(props[key])
                assert attrs[key] == expected, (logical_id, key)
        if "RedrivePolicy" in props:
            policy = json.loads(attrs["RedrivePolicy"])
            target = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            assert policy["deadLetterTargetArn"] == res.attributes[target]["Arn"]
            assert int(policy["maxReceiveCount"]) == props["RedrivePolicy"]["maxReceiveCount"]


def test_transfer_queue_is_fifo_with_dead_letter_queue(aws: None) -> None:
    res = bootstrap(None, environ={})
    attrs = _client("sqs").get_queue_attributes(QueueUrl=res.physical_ids["TransferQueue"], AttributeNames=["All"])
    attrs = attrs["Attributes"]
    assert attrs["FifoQueue"] == "true"
    assert attrs["VisibilityTimeout"] == "360"
    policy = json.loads(attrs["RedrivePolicy"])
    assert policy["deadLetterTargetArn"].endswith(":qbsync-local-TransferDeadLetterQueue.fifo")
    assert int(policy["maxReceiveCount"]) == 5


def test_table_matches_the_template(aws: None) -> None:
    res = bootstrap(None, environ={})
    dynamodb = _client("dynamodb")
    (logical_id, resource), *_ = resources_of_type(TEMPLATE, "AWS::DynamoDB::Table").items()
    table = dynamodb.describe_table(TableName=res.physical_ids[logical_id])["Table"]
    props = resource["Properties"]
    assert table["KeySchema"] == props["KeySchema"]
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {"GSI1"}
    gsi1 = table["GlobalSecondaryIndexes"][0]
    assert gsi1["KeySchema"] == props["GlobalSecondaryIndexes"][0]["KeySchema"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"
    assert ttl["AttributeName"] == props["TimeToLiveSpecification"]["AttributeName"]


def test_bus_key_and_secrets(aws: None) -> None:
    res = bootstrap(None, environ={})
    assert res.physical_ids["EventBus"] == "qbsync-local"  # !Sub "qbsync-${Stage}" with Stage=local
    assert _client("events").describe_event_bus(Name="qbsync-local")["Arn"] == res.attributes["EventBus"]["Arn"]
    kms = _client("kms")
    key = kms.describe_key(KeyId=res.physical_ids["TokenKey"])["KeyMetadata"]
    assert key["Enabled"] is True
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    secrets = _client("secretsmanager")
    admin = secrets.get_secret_value(SecretId=res.physical_ids["AdminKeySecret"])["SecretString"]
    assert admin == LOCAL_ADMIN_KEY
    qbo = secrets.get_secret_value(SecretId=res.physical_ids["QboClientSecret"])["SecretString"]
    spec = TEMPLATE["Resources"]["QboClientSecret"]["Properties"]["GenerateSecretString"]
    assert len(qbo) == spec["PasswordLength"]
    assert qbo.isalnum()  # ExcludePunctuation


def test_every_supported_resource_exists(aws: None) -> None:
    res = bootstrap(None, environ={})
    supported = (
        "AWS::DynamoDB::Table",
        "AWS::SQS::Queue",
        "AWS::Events::EventBus",
        "AWS::KMS::Key",
        "AWS::SecretsManager::Secret",
    )
    for kind in supported:
        for logical_id in resources_of_type(TEMPLATE, kind):
            assert res.physical_ids.get(logical_id), logical_id
    functions = resources_of_type(TEMPLATE, "AWS::Serverless::Function")
    assert set(res.functions) == set(functions)
    worker = res.functions["TransferWorkerFunction"]
    (sqs_event,) = [e for e in worker["events"] if e["type"] == "SQS"]
    assert sqs_event["queue_url"] == res.physical_ids["TransferQueue"]
    assert sqs_event["batch_size"] == 10
    assert sqs_event["report_batch_item_failures"] is True
    assert res.functions["ApiFunction"]["handler"] == "app.app"
    assert res.functions["ApiFunction"]["code_uri"].rstrip("/") == "functions/api"


def test_environment_is_resolved(aws: None) -> None:
    res = bootstrap(None, environ={})
    env = res.env
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert set(variables) <= set(env)
    assert env["QBSYNC_STAGE"] == "local"
    assert env["QBSYNC_TABLE"] == res.physical_ids["Table"]
    assert env["QBSYNC_TRANSFER_QUEUE_URL"] == res.physical_ids["TransferQueue"]
    assert env["QBSYNC_EVENT_BUS"] == "qbsync-local"
    assert env["QBSYNC_KMS_KEY_ID"] == res.physical_ids["TokenKey"]
    assert env["QBSYNC_ADMIN_KEY_SECRET_ARN"].startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:")
    assert env["QBO_ENVIRONMENT"] == TEMPLATE["Parameters"]["QboEnvironment"]["Default"]
    assert env["QBSYNC_ADMIN_KEY"] == LOCAL_ADMIN_KEY
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_ACCESS_KEY_ID"]
    assert "AWS_ENDPOINT_URL" not in env  # inside mock_aws
    assert not any("{" in value for value in env.values()), env


def test_callers_environment_wins(aws: None) -> None:
    caller = {
        "QBO_ENVIRONMENT": "https://idp.example.test/.well-known/openid-configuration",
        "QBO_API_BASE_URL": "https://qbo.example.test",
        "QBSYNC_ADMIN_KEY": "my-admin-key",
        "QBSYNC_PUBLIC_URL": "https://qbsync.example.test",
    }
    res = bootstrap(None, environ=caller)
    for name in ("QBO_ENVIRONMENT", "QBSYNC_ADMIN_KEY", "QBSYNC_PUBLIC_URL"):
        assert res.env[name] == caller[name]
    admin = _client("secretsmanager").get_secret_value(SecretId=res.physical_ids["AdminKeySecret"])
    assert admin["SecretString"] == "my-admin-key"


def test_apply_env_feeds_settings(aws: None, restore_environ: None) -> None:
    os.environ["QBO_ENVIRONMENT"] = "production"
    os.environ["AWS_ENDPOINT_URL"] = "http://127.0.0.1:1"  # would escape mock_aws
    res = bootstrap(None)
    apply_env(res)
    settings = get_settings()
    assert settings.table_name == res.physical_ids["Table"]
    assert settings.transfer_queue_url == res.physical_ids["TransferQueue"]
    assert settings.qbo_environment == "production"
    assert settings.is_local and settings.admin_key == LOCAL_ADMIN_KEY
    assert "AWS_ENDPOINT_URL" not in os.environ


def test_bootstrap_twice_reuses_resources(aws: None) -> None:
    first = bootstrap(None, environ={})
    sqs = _client("sqs")
    sqs.send_message(
        QueueUrl=first.physical_ids["TransferQueue"], MessageBody="{}", MessageGroupId="g", MessageDeduplicationId="d"
    )
    second = bootstrap(None, environ={})
    assert second.physical_ids == first.physical_ids
    assert second.env == first.env
    attrs = sqs.get_queue_attributes(
        QueueUrl=second.physical_ids["TransferQueue"], AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "1"  # the queue was kept, not recreated
    assert len(_client("kms").list_keys()["Keys"]) == 1


def test_bootstrap_against_a_moto_server() -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        res = bootstrap(endpoint, prefix="qbsync-bootstrap-test", environ={"AWS_ENDPOINT_URL": "http://elsewhere"})
        again = bootstrap(endpoint, prefix="qbsync-bootstrap-test", environ={})
        assert again.physical_ids == res.physical_ids
        assert res.env["AWS_ENDPOINT_URL"] == endpoint
        assert res.physical_ids["TransferQueue"].startswith(endpoint)
        sqs = boto3.client(
            "sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        assert res.physical_ids["TransferQueue"] in sqs.list_queues()["QueueUrls"]
    finally:
        server.stop()
