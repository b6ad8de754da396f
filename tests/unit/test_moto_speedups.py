"""The moto speed patches change no answer: the same queries and sends, with and without them, agree."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCENARIO = textwrap.dedent(
    """
    import json, os, sys
    os.environ.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1")
    if sys.argv[1] == "patched":
        from infra.moto_speedups import install
        install()
        install()  # idempotent
    import boto3
    from moto import mock_aws
    from infra.dynamo_table import create_table_from_template

    out = []
    with mock_aws():
        db = boto3.client("dynamodb")
        create_table_from_template(db, "t")
        for pk in ("A", "B", "C"):
            for sk in range(30):
                item = {"PK": {"S": pk}, "SK": {"S": f"S#{sk:03d}"}, "n": {"N": str(sk)}}
                if sk % 3 == 0:
                    item.update({"GSI1PK": {"S": "G"}, "GSI1SK": {"S": f"{pk}{sk:03d}"}})
                db.put_item(TableName="t", Item=item)
        queries = [
            {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {"S": "B"}}},
            {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {"S": "nope"}}},
            {"KeyConditionExpression": "PK = :p AND begins_with(SK, :s)",
             "ExpressionAttributeValues": {":p": {"S": "A"}, ":s": {"S": "S#01"}}, "ScanIndexForward": False},
            {"KeyConditionExpression": "PK = :p AND SK BETWEEN :a AND :b", "Limit": 4,
             "ExpressionAttributeValues": {":p": {"S": "C"}, ":a": {"S": "S#005"}, ":b": {"S": "S#020"}}},
            {"KeyConditionExpression": "PK = :p", "FilterExpression": "n > :n",
             "ExpressionAttributeValues": {":p": {"S": "A"}, ":n": {"N": "25"}}},
            {"IndexName": "GSI1", "KeyConditionExpression": "GSI1PK = :g",
             "ExpressionAttributeValues": {":g": {"S": "G"}}},
        ]
        for q in queries:
            pages, start = [], None
            while True:
                kwargs = dict(q, TableName="t", **({"ExclusiveStartKey": start} if start else {}))
                r = db.query(**kwargs)
                pages.append([i["SK"]["S"] + i["PK"]["S"] for i in r["Items"]])
                start = r.get("LastEvaluatedKey")
                if not start or len(pages) > 20:
                    break
            out.append(pages)
        sqs = boto3.client("sqs")
        for content_based in ("false", "true"):
            url = sqs.create_queue(QueueName=f"q{content_based}.fifo", Attributes={
                "FifoQueue": "true", "ContentBasedDeduplication": content_based})["QueueUrl"]
            for i in range(3):
                extra = {} if content_based == "true" else {"MessageDeduplicationId": f"d{i % 2}"}
                sqs.send_message(QueueUrl=url, MessageBody=f"m{i % 2}", MessageGroupId="g", **extra)
            sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "MessageBody": f"b{i}", "MessageGroupId": "g", "MessageDeduplicationId": f"b{i}"}
                for i in range(3)])
            for bad in ({}, {"MessageGroupId": "g"}):  # no group; no deduplication id on a non-content-based queue
                try:
                    sqs.send_message(QueueUrl=url, MessageBody="bad", **bad)
                    out.append("sent")
                except Exception as exc:
                    out.append(type(exc).__name__ + str(exc)[:60])
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
            out.append([m["Body"] for m in got])
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            out.append({k: v for k, v in attrs.items() if not k.endswith(("Timestamp", "Arn"))})
            names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "FifoQueue", "Policy"]
            out.append(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"])
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"MessageRetentionPeriod": "60"})
            out.append(len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])))
    print(json.dumps(out, sort_keys=True))
    """
)


def _run(mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCENARIO, mode], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_patched_moto_answers_exactly_as_moto_does() -> None:
    plain, patched = _run("plain"), _run("patched")
    assert '"S#029B' in plain and "ApproximateNumberOfMessages" in plain  # the scenario really ran
    assert patched == plain
