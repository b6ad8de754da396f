"""Sending work to the transfer queue (SQS FIFO): one message group per QuickBooks company keeps each company's
work in order while different companies run in parallel; the deduplication id makes a re-send within SQS's
5-minute window a no-op."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

from qbsync import aws
from qbsync.errors import NotConfigured, QbsyncError
from qbsync.settings import Settings
from qbsync.transfers import TransferMessage

Outgoing = tuple[TransferMessage, str, str]  # (message, group id, deduplication id)


class SendFailed(QbsyncError):
    code, status, title = "queue_send_failed", 503, "Could not queue the work"


class TransferQueue(Protocol):
    def send(self, message: TransferMessage, *, group_id: str, deduplication_id: str) -> None: ...

    def send_many(self, messages: list[Outgoing]) -> None:
        """Send in order (SendMessageBatch, 10 at a time)."""


class SqsTransferQueue:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, message: TransferMessage, *, group_id: str, deduplication_id: str) -> None:
        if not self.settings.transfer_queue_url:
            raise NotConfigured("No transfer queue is configured (QBSYNC_TRANSFER_QUEUE_URL).")
        self.send_many([(message, group_id, deduplication_id)])

    def send_many(self, messages: list[Outgoing]) -> None:
        if not self.settings.transfer_queue_url:
            raise NotConfigured("No transfer queue is configured (QBSYNC_TRANSFER_QUEUE_URL).")
        sqs = aws.client("sqs", self.settings)
        for start in range(0, len(messages), 10):
            entries = [
                {
                    "Id": str(index),
                    "MessageBody": message.model_dump_json(),
                    "MessageGroupId": group_id[:128],
                    "MessageDeduplicationId": deduplication_id[:128],
                }
                for index, (message, group_id, deduplication_id) in enumerate(messages[start : start + 10])
            ]
            response = sqs.send_message_batch(QueueUrl=self.settings.transfer_queue_url, Entries=entries)
            if response.get("Failed"):
                raise SendFailed(f"SQS refused {len(response['Failed'])} message(s): {response['Failed'][:3]}")


@dataclass
class MemoryTransferQueue:
    sent: list[tuple[TransferMessage, str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, message: TransferMessage, *, group_id: str, deduplication_id: str) -> None:
        with self._lock:
            if any(dedup == deduplication_id for _, _, dedup in self.sent):
                return
            self.sent.append((message, group_id, deduplication_id))

    def send_many(self, messages: list[Outgoing]) -> None:
        for message, group_id, deduplication_id in messages:
            self.send(message, group_id=group_id, deduplication_id=deduplication_id)
