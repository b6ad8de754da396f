"""The local stand-in for Lambda's SQS event source mapping.

It long-polls each SQS-triggered function's queue, hands the handler a real-shaped SQS event, and deletes only the
records the handler did not report in ``batchItemFailures`` (none if it raised). Failed records stay in the queue and
come back after the visibility timeout; the queue's redrive policy moves them to the DLQ after ``maxReceiveCount``.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3

from infra.aws_bootstrap import CLIENT_CONFIG, LocalResources
from infra.functions import context_for, invocation_lock, load_handler

log = logging.getLogger("qbsync.local.worker")

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class _Source:
    function: str
    queue_url: str
    queue_arn: str
    batch_size: int
    report_batch_item_failures: bool


@dataclass
class BatchResult:
    function: str
    received: int
    deleted: int
    failed: int
    raised: bool = False


def _message_attributes(raw: Mapping[str, Any]) -> dict[str, Any]:
    """SQS API message attributes → the Lambda event's lower-camel-case shape."""
    out: dict[str, Any] = {}
    for name, attr in raw.items():
        binary = attr.get("BinaryValue")
        out[name] = {
            "stringValue": attr.get("StringValue"),
            "binaryValue": base64.b64encode(binary).decode() if isinstance(binary, bytes) else binary,
            "stringListValues": list(attr.get("StringListValues", [])),
            "binaryListValues": [
                base64.b64encode(v).decode() if isinstance(v, bytes) else v for v in attr.get("BinaryListValues", [])
            ],
            "dataType": attr.get("DataType", "String"),
        }
    return out


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda hands an SQS-triggered function for ``messages`` (as returned by ReceiveMessage)."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m.get("Body", ""),
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": _message_attributes(m.get("MessageAttributes", {})),
                "md5OfMessageAttributes": m.get("MD5OfMessageAttributes"),
                "md5OfBody": m.get("MD5OfBody"),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def failed_ids(response: Any, message_ids: list[str], report_batch_item_failures: bool) -> set[str]:
    """Which records to keep, following Lambda's rules for a handler's response."""
    if not report_batch_item_failures or not isinstance(response, Mapping):
        return set()
    failures = response.get("batchItemFailures")
    if not failures:
        return set()
    ids: set[str] = set()
    for failure in failures:
        item = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not item or item not in message_ids:
            return set(message_ids)  # Lambda treats a malformed response as a failure of the whole batch
        ids.add(item)
    return ids


class SqsWorker:
    """Polls every SQS event source of the template's functions and invokes their handlers.

    ``retry_visibility_seconds`` (default: leave the queue's visibility timeout alone) makes failed records visible
    again sooner, which tests and impatient local runs want; Lambda itself does not do this.
    """

    def __init__(
        self,
        resources: LocalResources,
        *,
        handlers: Mapping[str, Handler] | None = None,
        wait_seconds: int = 1,
        retry_visibility_seconds: int | None = None,
        functions: list[str] | None = None,
    ) -> None:
        self.resources = resources
        self.wait_seconds = max(0, min(20, wait_seconds))
        self.retry_visibility_seconds = retry_visibility_seconds
        self._handlers: dict[str, Handler] = dict(handlers or {})
        self._sources: list[_Source] = []
        for logical_id, spec in resources.functions.items():
            if functions is not None and logical_id not in functions:
                continue
            for event in spec["events"]:
                if event["type"] == "SQS" and event.get("queue_url"):
                    self._sources.append(
                        _Source(
                            function=logical_id,
                            queue_url=event["queue_url"],
                            queue_arn=event["queue_arn"],
                            batch_size=max(1, min(10, int(event["batch_size"]))),
                            report_batch_item_failures=bool(event["report_batch_item_failures"]),
                        )
                    )
        session = boto3.session.Session(region_name=resources.region)
        self._sqs = session.client(
            "sqs",
            endpoint_url=resources.endpoint_url,
            config=CLIENT_CONFIG,
            aws_access_key_id=resources.env.get("AWS_ACCESS_KEY_ID", "testing"),
            aws_secret_access_key=resources.env.get("AWS_SECRET_ACCESS_KEY", "testing"),
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def sources(self) -> list[tuple[str, str]]:
        return [(s.function, s.queue_url) for s in self._sources]

    def _handler(self, function: str) -> Handler:
        if function not in self._handlers:
            self._handlers[function] = load_handler(function, self.resources)
        return self._handlers[function]

    def poll(self, source: _Source, wait_seconds: int | None = None) -> BatchResult | None:
        """Receive one batch from ``source`` and run its handler; ``None`` when the queue had nothing."""
        received = self._sqs.receive_message(
            QueueUrl=source.queue_url,
            MaxNumberOfMessages=source.batch_size,
            WaitTimeSeconds=self.wait_seconds if wait_seconds is None else wait_seconds,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = [dict(m) for m in received.get("Messages", [])]
        if not messages:
            return None
        spec = self.resources.functions[source.function]
        event = sqs_event(messages, source.queue_arn, self.resources.region)
        ids = [m["MessageId"] for m in messages]
        raised = False
        try:
            handler = self._handler(source.function)
            with invocation_lock:
                response = handler(event, context_for(spec, self.resources))
            keep = failed_ids(response, ids, source.report_batch_item_failures)
        except Exception:
            log.exception("%s raised on a batch of %d; every record will be retried", source.function, len(ids))
            keep, raised = set(ids), True
        done = [m for m in messages if m["MessageId"] not in keep]
        if done:
            result = self._sqs.delete_message_batch(
                QueueUrl=source.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
            for failure in result.get("Failed", []):
                log.warning("could not delete a message from %s: %s", source.queue_url, failure)
        if keep and self.retry_visibility_seconds is not None:
            self._sqs.change_message_visibility_batch(
                QueueUrl=source.queue_url,
                Entries=[
                    {
                        "Id": str(i),
                        "ReceiptHandle": m["ReceiptHandle"],
                        "VisibilityTimeout": self.retry_visibility_seconds,
                    }
                    for i, m in enumerate(messages)
                    if m["MessageId"] in keep
                ],
            )
        return BatchResult(source.function, len(messages), len(done), len(keep), raised)

    def run_once(self, wait_seconds: int | None = 0) -> list[BatchResult]:
        """One poll of every source (no long-poll wait by default, for tests)."""
        results = []
        for source in self._sources:
            result = self.poll(source, wait_seconds)
            if result is not None:
                results.append(result)
        return results

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._sources:
                self._stop.wait(1)
                continue
            for source in self._sources:
                if self._stop.is_set():
                    break
                try:
                    self.poll(source)
                except Exception:
                    log.exception("polling %s failed", source.queue_url)
                    self._stop.wait(1)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="qbsync-sqs-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the SQS worker did not stop within %.0f s (a handler is still running)", timeout)
            self._thread = None


def drain(worker: SqsWorker, *, max_polls: int = 50, max_seconds: float = 10) -> list[BatchResult]:
    """Poll until every queue is empty, bounded by count and time (tests)."""
    results: list[BatchResult] = []
    deadline = time.monotonic() + max_seconds
    for _ in range(max_polls):
        batch = worker.run_once()
        results.extend(batch)
        if not batch or time.monotonic() > deadline:
            break
    return results
