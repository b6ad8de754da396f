"""The local SQS worker behaves like Lambda's SQS event source mapping with ReportBatchItemFailures."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.aws_bootstrap import LocalResources, bootstrap
from infra.functions import lambda_context, load_handler
from infra.local_stack import LocalStack
from infra.worker import SqsWorker, failed_ids
from qbsync.aws import reset_clients
from qbsync.settings import reset_settings
from tests.infra_fixtures import fixture_template

MAX_RECEIVE_COUNT = 5  # template.yaml TransferQueue RedrivePolicy


@pytest.fixture
def resources() -> Iterator[LocalResources]:
    with mock_aws():
        yield bootstrap(None, template=fixture_template(), environ={})


@pytest.fixture
def events(resources: LocalResources) -> list[dict[str, Any]]:
    handler = load_handler("transfer_worker", resources)
    handler.events.clear()
    return handler.events  # type: ignore[no-any-return]


def _sqs() -> Any:
    return boto3.client("sqs", region_name="us-east-1")


def _send(url: str, action: str, group: str, attributes: dict[str, Any] | None = None) -> str:
    response = _sqs().send_message(
        QueueUrl=url,
        MessageBody=json.dumps({"action": action}),
        MessageGroupId=group,
        MessageDeduplicationId=f"{group}-{action}",
        MessageAttributes=attributes or {},
    )
    return str(response["MessageId"])


def _count(url: str) -> int:
    attrs = _sqs().get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_event_is_shaped_like_lambdas(resources: LocalResources, events: list[dict[str, Any]]) -> None:
    url = resources.physical_ids["TransferQueue"]
    message_id = _send(url, "ok", "realm-1", {"tenant": {"DataType": "String", "StringValue": "t-1"}})
    worker = SqsWorker(resources)
    (result,) = worker.run_once()
    assert (result.received, result.deleted, result.failed) == (1, 1, 0)
    (record,) = events[0]["Records"]
    assert record["messageId"] == message_id
    assert record["receiptHandle"]
    assert json.loads(record["body"]) == {"action": "ok"}
    assert record["attributes"]["MessageGroupId"] == "realm-1"
    assert record["attributes"]["MessageDeduplicationId"] == "realm-1-ok"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["tenant"]["stringValue"] == "t-1"
    assert record["messageAttributes"]["tenant"]["dataType"] == "String"
    assert record["md5OfBody"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == resources.attributes["TransferQueue"]["Arn"]
    assert record["awsRegion"] == "us-east-1"
    assert _count(url) == 0


def test_failed_record_is_redelivered_then_dead_lettered(
    resources: LocalResources, events: list[dict[str, Any]]
) -> None:
    url = resources.physical_ids["TransferQueue"]
    dlq = resources.physical_ids["TransferDeadLetterQueue"]
    ok_id = _send(url, "ok", "realm-a")
    fail_id = _send(url, "fail", "realm-b")
    worker = SqsWorker(resources, retry_visibility_seconds=0)

    (first,) = worker.run_once()
    assert (first.received, first.deleted, first.failed) == (2, 1, 1)
    assert {r["messageId"] for r in events[0]["Records"]} == {ok_id, fail_id}
    assert _count(url) == 1  # the success is gone, the failure is back in the queue

    receive_counts = []
    for _ in range(MAX_RECEIVE_COUNT + 3):  # bounded: the DLQ move happens on the (maxReceiveCount + 1)th receive
        if not worker.run_once():
            break
        (record,) = events[-1]["Records"]
        assert record["messageId"] == fail_id
        receive_counts.append(int(record["attributes"]["ApproximateReceiveCount"]))
    assert receive_counts == list(range(2, MAX_RECEIVE_COUNT + 1))
    assert _count(url) == 0
    moved = _sqs().receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    assert [json.loads(m["Body"]) for m in moved] == [{"action": "fail"}]


def test_handler_exception_deletes_nothing(resources: LocalResources, events: list[dict[str, Any]]) -> None:
    url = resources.physical_ids["TransferQueue"]
    _send(url, "ok", "g1")
    _send(url, "raise", "g2")
    worker = SqsWorker(resources, retry_visibility_seconds=0)
    (result,) = worker.run_once()
    assert result.raised
    assert (result.deleted, result.failed) == (0, 2)
    assert _count(url) == 2


def test_failure_without_retry_override_waits_for_visibility_timeout(
    resources: LocalResources, events: list[dict[str, Any]]
) -> None:
    url = resources.physical_ids["TransferQueue"]
    _send(url, "fail", "g1")
    worker = SqsWorker(resources)
    assert worker.run_once()[0].failed == 1
    assert worker.run_once() == []  # invisible for the queue's 360 s
    assert _count(url) == 1


def test_malformed_batch_response_fails_the_whole_batch() -> None:
    ids = ["a", "b"]
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "a"}]}, ids, True) == {"a"}
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": ""}]}, ids, True) == {"a", "b"}
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, ids, True) == {"a", "b"}
    assert failed_ids({"batchItemFailures": []}, ids, True) == set()
    assert failed_ids(None, ids, True) == set()
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "a"}]}, ids, False) == set()


def test_lambda_context() -> None:
    context = lambda_context("qbsync-local-TransferWorkerFunction", 60)
    assert context.function_name == "qbsync-local-TransferWorkerFunction"
    assert context.invoked_function_arn.endswith(":function:qbsync-local-TransferWorkerFunction")
    assert context.memory_limit_in_mb > 0
    assert len(context.aws_request_id) == 36
    assert 59_000 < context.get_remaining_time_in_millis() <= 60_000
    assert lambda_context("f", 1).aws_request_id != context.aws_request_id


def test_load_handler_by_logical_id_or_folder(resources: LocalResources) -> None:
    assert load_handler("TransferWorkerFunction", resources) is load_handler("transfer_worker", resources)
    with pytest.raises(KeyError):
        load_handler("no_such_function", resources)


@pytest.fixture
def restore_environ() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    reset_settings()
    reset_clients()


def test_local_stack_serves_the_api_and_runs_the_worker(restore_environ: None) -> None:
    """In-process stack on free ports: HTTP answers, and the worker thread drains the queue."""
    stack = LocalStack(port=0, template=fixture_template(), prefix="qbsync-worker-test", scheduler=False)
    stack.start()
    try:
        with urllib.request.urlopen(f"{stack.base_url}/health", timeout=5) as response:
            assert json.loads(response.read()) == {"status": "ok", "app": "fixture"}
        assert stack.resources is not None
        handler = load_handler("transfer_worker", stack.resources)
        before = len(handler.events)
        sqs = boto3.client(
            "sqs",
            endpoint_url=stack.aws_endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        sqs.send_message(
            QueueUrl=stack.resources.physical_ids["TransferQueue"],
            MessageBody=json.dumps({"action": "ok"}),
            MessageGroupId="g",
            MessageDeduplicationId="stack-1",
        )
        deadline = time.monotonic() + 10
        while len(handler.events) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(handler.events) > before
    finally:
        stack.stop()
