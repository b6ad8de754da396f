"""Storage: ports (records + protocols), the DynamoDB adapter, in-memory fakes and the process-wide factory."""

from qbsync.store.dynamo import DynamoStore
from qbsync.store.factory import get_store, reset_store, set_store
from qbsync.store.memory import MemoryStore
from qbsync.store.ports import (
    ApiKey,
    Page,
    ScheduleRun,
    ScheduleRunRepository,
    Store,
    Tenant,
    TenantRepository,
    TenantStatus,
    UniqueClaims,
)

__all__ = [
    "ApiKey",
    "DynamoStore",
    "MemoryStore",
    "Page",
    "ScheduleRun",
    "ScheduleRunRepository",
    "Store",
    "Tenant",
    "TenantRepository",
    "TenantStatus",
    "UniqueClaims",
    "get_store",
    "reset_store",
    "set_store",
]
