"""Events qbsync emits for the SaaS app (V4): EventBridge in AWS, an in-memory list in tests.

``source`` is always ``qbsync``; ``detail-type`` names the event (``connection.needs_reauth``, ``invoice.paid``…);
``detail`` always carries ``tenant_id``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from qbsync import aws
from qbsync.errors import QbsyncError
from qbsync.settings import Settings

SOURCE = "qbsync"


class EventPublisher(Protocol):
    def publish(self, detail_type: str, tenant_id: str, detail: dict[str, Any]) -> None: ...


class EventPublishFailed(QbsyncError):
    code, status, title = "event_publish_failed", 503, "Event not published"


class EventBridgePublisher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def publish(self, detail_type: str, tenant_id: str, detail: dict[str, Any]) -> None:
        if not self.settings.event_bus:
            return  # no bus configured (unit tests without AWS): nothing subscribes
        response = aws.client("events", self.settings).put_events(
            Entries=[
                {
                    "Source": SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps({"tenant_id": tenant_id, **detail}, default=str),
                    "EventBusName": self.settings.event_bus,
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise EventPublishFailed(f"EventBridge refused the {detail_type} event: {response['Entries']}")


@dataclass
class MemoryPublisher:
    events: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, detail_type: str, tenant_id: str, detail: dict[str, Any]) -> None:
        with self._lock:
            self.events.append({"detail-type": detail_type, "detail": {"tenant_id": tenant_id, **detail}})

    def of_type(self, detail_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["detail-type"] == detail_type]
