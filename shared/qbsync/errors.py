"""Domain errors with stable codes. Each entry point has one mapper that renders them (REST: problem+json)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class QbsyncError(Exception):
    """Base of every error qbsync raises on purpose. ``code`` is stable: clients may branch on it."""

    code = "internal_error"
    status = 500
    title = "Internal error"

    def __init__(self, detail: str | None = None, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra or {}


class BadRequest(QbsyncError):
    code, status, title = "bad_request", 400, "Bad request"


class MalformedJson(QbsyncError):
    code, status, title = "malformed_json", 400, "Malformed JSON"


class ValidationFailed(QbsyncError):
    code, status, title = "validation_error", 422, "Validation failed"

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        self.errors = errors
        names = ", ".join(e.field for e in errors) or "body"
        super().__init__(detail or f"Invalid field(s): {names}", extra={"errors": [e.as_dict() for e in errors]})


class Unauthorized(QbsyncError):
    code, status, title = "unauthorized", 401, "Unauthorized"


class Forbidden(QbsyncError):
    code, status, title = "forbidden", 403, "Forbidden"


class TenantInactive(QbsyncError):
    code, status, title = "tenant_inactive", 403, "Tenant inactive"


class NotFound(QbsyncError):
    code, status, title = "not_found", 404, "Not found"


class MethodNotAllowed(QbsyncError):
    code, status, title = "method_not_allowed", 405, "Method not allowed"


class Conflict(QbsyncError):
    code, status, title = "conflict", 409, "Conflict"


class PayloadTooLarge(QbsyncError):
    code, status, title = "payload_too_large", 413, "Payload too large"


class UnsupportedMediaType(QbsyncError):
    code, status, title = "unsupported_media_type", 415, "Unsupported media type"


class ServiceBusy(QbsyncError):
    """An AWS service qbsync depends on throttled it beyond the SDK's retries: nothing was lost, retry shortly."""

    code, status, title = "service_busy", 503, "Service busy"


class NotConfigured(QbsyncError):
    code, status, title = "not_configured", 503, "Service not configured"


# --- storage-level errors (raised by store adapters; use cases translate or let them map) ---


class AlreadyExists(Conflict):
    code, title = "already_exists", "Already exists"


class ConcurrentModification(Conflict):
    """An optimistic-lock (version) check failed: someone else changed the item first."""

    code, title = "concurrent_modification", "Concurrent modification"


@dataclass
class ErrorReport:
    """What a worker records when a message fails (kept for transfer history)."""

    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
