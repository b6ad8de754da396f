"""The transfer dead-letter queue (R4): look at what is parked there and send it back to the transfer queue.

Used by ``qbsync dlq list|redrive``. Both queues are SQS FIFO, so two SQS facts shape this:

* Listing receives messages and makes them visible again at once; SQS FIFO only hands out the oldest in-flight
  message of each message group, so a listing shows at most the head of every group (plus the queue's counts).
* Redrive sends each message back to the transfer queue in its original message group (per-company order holds)
  with a new deduplication id, *then* deletes it from the dead-letter queue: a crash in between sends it twice,
  which the transfer worker absorbs (records already synced are a no-op); it never loses one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qbsync import aws
from qbsync.errors import NotConfigured
from qbsync.settings import Settings

RECEIVE_BATCH = 10  # SQS maximum per ReceiveMessage
REDRIVE_VISIBILITY_SECONDS = 60


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    group_id: str | None
    receive_count: int
    sent_at: str | None  # epoch milliseconds, as SQS reports it
    body: str

    def summary(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body)
        except ValueError:
            data = None
        described = (
            {k: data.get(k) for k in ("kind", "tenant_id", "transfer_id", "target")} if isinstance(data, dict) else {}
        )
        if isinstance(data, dict) and isinstance(data.get("payload"), dict):
            described["source_id"] = data["payload"].get("source_id")
        return {
            "message_id": self.message_id,
            "group": self.group_id,
            "receive_count": self.receive_count,
            "sent_at": self.sent_at,
            **{k: v for k, v in described.items() if v is not None},
            **({} if described else {"body": self.body[:500]}),  # unreadable: show what it is
        }


class DeadLetterQueue:
    def __init__(self, settings: Settings) -> None:
        if not settings.transfer_dlq_url or not settings.transfer_queue_url:
            raise NotConfigured(
                "The transfer queue and its dead-letter queue are not configured "
                "(QBSYNC_TRANSFER_QUEUE_URL, QBSYNC_TRANSFER_DLQ_URL)."
            )
        self.dlq_url = settings.transfer_dlq_url
        self.queue_url = settings.transfer_queue_url
        self.sqs = aws.client("sqs", settings)

    def depth(self) -> dict[str, int]:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.dlq_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return {
            "waiting": int(attributes.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        }

    def peek(self, limit: int = 50) -> dict[str, Any]:
        """Up to ``limit`` parked messages, left in the queue (made visible again straight away)."""
        seen: dict[str, DeadLetter] = {}
        for _ in range(max(1, limit // RECEIVE_BATCH + 2)):
            batch = self._receive(min(RECEIVE_BATCH, limit - len(seen)), visibility=30)
            if not batch:
                break
            fresh = [m for m in batch if m.message_id not in seen]
            seen.update({m.message_id: m for m in fresh})
            if not fresh or len(seen) >= limit:
                break
        self._release(list(seen.values()))
        return {**self.depth(), "messages": [m.summary() for m in seen.values()]}

    def redrive(self, limit: int = 100, message_ids: Sequence[str] = ()) -> dict[str, Any]:
        """Move up to ``limit`` messages (only ``message_ids`` if given) back to the transfer queue."""
        wanted = set(message_ids)
        moved: list[str] = []
        skipped: list[DeadLetter] = []
        for _ in range(limit // RECEIVE_BATCH + len(wanted) + 5):
            if len(moved) >= limit:
                break
            batch = self._receive(min(RECEIVE_BATCH, limit - len(moved)), visibility=REDRIVE_VISIBILITY_SECONDS)
            if not batch:
                break
            chosen = [m for m in batch if not wanted or m.message_id in wanted]
            skipped += [m for m in batch if m not in chosen]
            for message in chosen:
                self.sqs.send_message(
                    QueueUrl=self.queue_url,
                    MessageBody=message.body,
                    MessageGroupId=message.group_id or "redrive",
                    MessageDeduplicationId=f"redrive-{message.message_id}"[:128],
                )
                self.sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=message.receipt_handle)
                moved.append(message.message_id)
            if wanted and wanted <= set(moved):
                break
            if not chosen and wanted:
                break  # the ones asked for are not at the head of any group right now
        self._release(skipped)
        result: dict[str, Any] = {"redriven": len(moved), "message_ids": moved, **self.depth()}
        if wanted - set(moved):
            result["not_found"] = sorted(wanted - set(moved))
        return result

    def _receive(self, count: int, *, visibility: int) -> list[DeadLetter]:
        if count <= 0:
            return []
        response = self.sqs.receive_message(
            QueueUrl=self.dlq_url,
            MaxNumberOfMessages=count,
            VisibilityTimeout=visibility,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["All"],
        )
        return [
            DeadLetter(
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                group_id=m.get("Attributes", {}).get("MessageGroupId"),
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
                sent_at=m.get("Attributes", {}).get("SentTimestamp"),
                body=m["Body"],
            )
            for m in response.get("Messages", [])
        ]

    def _release(self, messages: list[DeadLetter]) -> None:
        for start in range(0, len(messages), RECEIVE_BATCH):
            chunk = messages[start : start + RECEIVE_BATCH]
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.dlq_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
                    for i, m in enumerate(chunk)
                ],
            )
