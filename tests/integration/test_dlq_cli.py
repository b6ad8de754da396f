"""`qbsync dlq list|redrive` against moto SQS FIFO queues made from template.yaml: listing leaves messages in place,
redrive moves them back into their message groups and they are then gone from the dead-letter queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from infra.aws_bootstrap import LocalResources, bootstrap
from qbsync import aws, cli
from qbsync.settings import reset_settings
from qbsync.transfers import TransferMessage
from tests.infra_fixtures import fixture_template


@pytest.fixture
def resources(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalResources]:
    monkeypatch.chdir("/")  # no .qbsync/local-env.json of a running stack leaks in
    with mock_aws():
        found = bootstrap(None, template=fixture_template(), environ={})
        for key, value in found.env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        reset_settings()
        aws.reset_clients()
        yield found
    reset_settings()
    aws.reset_clients()


def park(resources: LocalResources, count: int, group: str = "t1:qbo:1") -> list[str]:
    sqs = aws.client("sqs")
    ids = []
    for i in range(count):
        message = TransferMessage(
            tenant_id="t1", transfer_id=f"x{i}", kind="sync.invoices", target="qbo", payload={"source_id": f"i{i}"}
        )
        sent = sqs.send_message(
            QueueUrl=resources.env["QBSYNC_TRANSFER_DLQ_URL"],
            MessageBody=message.model_dump_json(),
            MessageGroupId=group,
            MessageDeduplicationId=f"d-{group}-{i}",
        )
        ids.append(sent["MessageId"])
    return ids


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if code == 0 else captured.err


def transfer_queue_bodies(resources: LocalResources) -> list[tuple[str, dict[str, Any]]]:
    sqs = aws.client("sqs")
    url = resources.env["QBSYNC_TRANSFER_QUEUE_URL"]
    found = []
    for _ in range(20):
        response = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageSystemAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            break
        for message in messages:
            found.append((message["Attributes"]["MessageGroupId"], json.loads(message["Body"])))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_list_shows_parked_messages_and_leaves_them(
    resources: LocalResources, capsys: pytest.CaptureFixture[str]
) -> None:
    code, empty = run(capsys, "dlq", "list")
    assert code == 0 and empty["messages"] == [] and empty["waiting"] == 0
    first = park(resources, 2, group="t1:qbo:1")
    other = park(resources, 1, group="t2:qbd:c9")
    code, listed = run(capsys, "dlq", "list")
    assert code == 0 and listed["waiting"] == 3
    shown = {m["message_id"]: m for m in listed["messages"]}
    assert first[0] in shown and other[0] in shown  # the head of each group
    assert shown[first[0]]["kind"] == "sync.invoices" and shown[first[0]]["source_id"] == "i0"
    assert shown[first[0]]["group"] == "t1:qbo:1"
    code, again = run(capsys, "dlq", "list")
    assert again["waiting"] == 3 and {m["message_id"] for m in again["messages"]} == set(shown)  # nothing consumed


def test_redrive_moves_messages_back_into_their_groups(
    resources: LocalResources, capsys: pytest.CaptureFixture[str]
) -> None:
    park(resources, 3, group="t1:qbo:1")
    only = park(resources, 2, group="t2:qbd:c9")
    code, one = run(capsys, "dlq", "redrive", "--message-id", only[0])
    assert code == 0 and one["redriven"] == 1 and one["message_ids"] == [only[0]]
    assert one["waiting"] == 4  # the others were released again at once
    assert [(g, b["payload"]["source_id"]) for g, b in transfer_queue_bodies(resources)] == [("t2:qbd:c9", "i0")]

    code, rest = run(capsys, "dlq", "redrive")
    assert code == 0 and rest["redriven"] == 4 and rest["waiting"] == 0
    moved = transfer_queue_bodies(resources)
    assert sorted((g, b["payload"]["source_id"]) for g, b in moved) == [
        ("t1:qbo:1", "i0"), ("t1:qbo:1", "i1"), ("t1:qbo:1", "i2"), ("t2:qbd:c9", "i1")
    ]  # fmt: skip
    assert [b["payload"]["source_id"] for g, b in moved if g == "t1:qbo:1"] == ["i0", "i1", "i2"]  # order kept
    code, after = run(capsys, "dlq", "list")
    assert after["messages"] == [] and after["waiting"] == 0

    code, missing = run(capsys, "dlq", "redrive", "--message-id", "nope")
    assert code == 0 and missing["redriven"] == 0 and missing["not_found"] == ["nope"]


def test_without_queues_configured_the_cli_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir("/")
    monkeypatch.delenv("QBSYNC_TRANSFER_DLQ_URL", raising=False)
    reset_settings()
    assert cli.main(["dlq", "list"]) == 1
    assert "QBSYNC_TRANSFER_DLQ_URL" in capsys.readouterr().err
    assert cli.main(["dlq", "list", "--limit", "0"]) == 1
