"""Scheduled handler that remembers its events and contexts."""

from typing import Any

CALLS: list[tuple[dict[str, Any], Any]] = []


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    CALLS.append((event, context))
    return {"function": "reconciler", "calls": len(CALLS)}


handler.calls = CALLS  # type: ignore[attr-defined]
