"""QuickBooks Online Accounting API: client, fault mapping, per-realm rate limiting, deterministic requestids."""

from qbsync.qbo.client import BatchItem, BatchResult, QboClient, RetryPolicy, TokenSource, base_url_for
from qbsync.qbo.errors import QboError, QboFault
from qbsync.qbo.limiter import DynamoRealmLimiter, MemoryRealmLimiter, RealmBudget, RealmLimiter
from qbsync.qbo.requestids import batch_item_id, batch_request_id, content_hash, request_id

__all__ = [
    "BatchItem",
    "BatchResult",
    "DynamoRealmLimiter",
    "MemoryRealmLimiter",
    "QboClient",
    "QboError",
    "QboFault",
    "RealmBudget",
    "RealmLimiter",
    "RetryPolicy",
    "TokenSource",
    "base_url_for",
    "batch_item_id",
    "batch_request_id",
    "content_hash",
    "request_id",
]
