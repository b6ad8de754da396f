"""Deterministic ``requestid``s: the same logical write always sends the same id, so Intuit deduplicates retries.

Intuit treats ``requestid`` as an idempotency key, unique per company: replaying an id returns the original
response instead of executing the write again. It must be at most 50 characters (36 for ``/batch``, whose item
``bId``s must then be at most 10 characters). A random id per attempt would defeat the point, because the retries
that matter (SQS redelivery after a Lambda timeout, a read timeout after QBO already applied the write) happen in a
*new* attempt that knows nothing of the previous one.

Derivation (stable; changing it would re-execute in-flight writes)::

    digest = SHA-256( for each part: utf8(str(part)) prefixed by its length as 8-byte big-endian )
    id     = lowercase base32(digest) without "=" padding, first N characters   (N = 50, or 36 for batch)

* Length-prefixing each part makes ``("ab", "c")`` and ``("a", "bc")`` different ids.
* base32 (``a-z2-7``) is URL-safe and case-insensitive; 50 characters carry 250 bits, 36 carry 180 bits, far beyond
  any collision concern within one company.
* Callers pass what identifies the write, e.g. ``request_id(tenant, realm, "Customer", source_id, content_hash(doc))``:
  a changed document (new content hash) is a new write with a new id; the same one retried keeps its id.
* :func:`derive` makes a follow-up id from a parent id (e.g. the re-try after a 5010 stale SyncToken: the parent id
  is already "used" by the failed attempt, whose fault Intuit would replay).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

MAX_REQUEST_ID = 50
MAX_BATCH_REQUEST_ID = 36
MAX_BATCH_ITEM_ID = 10


def _digest(parts: tuple[object, ...]) -> bytes:
    h = hashlib.sha256()
    for part in parts:
        raw = str(part).encode("utf-8")
        h.update(len(raw).to_bytes(8, "big"))
        h.update(raw)
    return h.digest()


def _encode(digest: bytes, length: int) -> str:
    return base64.b32encode(digest).decode("ascii").rstrip("=").lower()[:length]


def request_id(*parts: object, length: int = MAX_REQUEST_ID) -> str:
    """A deterministic id of at most ``length`` (≤ 50) characters for the write identified by ``parts``."""
    if not parts:
        raise ValueError("request_id needs at least one part")
    if not 1 <= length <= MAX_REQUEST_ID:
        raise ValueError(f"length must be between 1 and {MAX_REQUEST_ID}")
    return _encode(_digest(parts), length)


def batch_request_id(*parts: object) -> str:
    """A deterministic id for a ``/batch`` call (at most 36 characters)."""
    return request_id("batch", *parts, length=MAX_BATCH_REQUEST_ID)


def batch_item_id(*parts: object) -> str:
    """A deterministic ``bId`` (10 characters) for one batch item."""
    return request_id("bid", *parts, length=MAX_BATCH_ITEM_ID)


def derive(parent: str, *parts: object) -> str:
    """A follow-up id of the same length as ``parent`` (at most 50), deterministic in ``parent`` and ``parts``."""
    return request_id("derived", parent, *parts, length=min(max(len(parent), 1), MAX_REQUEST_ID))


def content_hash(document: Any) -> str:
    """SHA-256 hex of the canonical JSON of ``document`` (sorted keys, no spaces), to version a write's content."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def check_request_id(value: str, *, batch: bool = False) -> str:
    """``value`` if it is an acceptable requestid, else ``ValueError`` (a programming error, not a QBO fault)."""
    limit = MAX_BATCH_REQUEST_ID if batch else MAX_REQUEST_ID
    if not value or len(value) > limit:
        raise ValueError(f"requestid must be 1-{limit} characters, got {len(value)}")
    if not value.isascii() or not all(c.isalnum() or c in "-_." for c in value):
        raise ValueError("requestid may only contain ASCII letters, digits, '-', '_' and '.'")
    return value
