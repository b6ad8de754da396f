"""Sending work to the transfer queue (SQS FIFO): one message group per QuickBooks company keeps each company's
work in order while different companies run in parallel; the deduplication id makes a re-send within SQS's
5-minute window a no-op."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

from qbsync import aws
from qbsync.errors import NotConfigured
from qbsync.settings import Settings
from qbsync.transfers import TransferMessage


class TransferQueue(Protocol):
    def send(self, message: TransferMessage, *, group_id: str, deduplication_id: str) -> None: ...


class SqsTransferQueue:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, message: TransferMessage, *, group_id: str, deduplication_id: str) -> None:
        if not self.settings.transfer_queue_url:
            raise NotConfigured("No transfer queue is configured (QBSYNC_TRANSFER_QUEUE_URL).")
        aws.client("sqs", self.settings).send_message(
            QueueUrl=self.settings.transfer_queue_url,
            MessageBody=message.model_dump_json(),
            MessageGroupId=group_id[:128],
            MessageDeduplicationId=deduplication_id[:128],
        )


@dataclass
class MemoryTransferQueue:
    sent: list[tuple[TransferMessage, str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, message: TransferMessage, *, group_id: str, deduplication_id: str) -> None:
        with self._lock:
            if any(dedup == deduplication_id for _, _, dedup in self.sent):
                return
            self.sent.append((message, group_id, deduplication_id))
