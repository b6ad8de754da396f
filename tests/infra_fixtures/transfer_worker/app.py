"""SQS handler that fails records whose body says ``fail`` and raises on ``raise``; remembers every event."""

import json
from typing import Any

EVENTS: list[dict[str, Any]] = []


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    EVENTS.append(event)
    failures = []
    for record in event["Records"]:
        action = json.loads(record["body"]).get("action")
        if action == "raise":
            raise RuntimeError("the fixture handler was told to raise")
        if action == "fail":
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


handler.events = EVENTS  # type: ignore[attr-defined]
