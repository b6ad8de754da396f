"""Build the process-wide :class:`~qbsync.store.ports.Store` once, lazily (never at import time).

Handlers call :func:`get_store`; tests either call :func:`set_store` with a ``MemoryStore`` or let it build a
``DynamoStore`` inside moto, and call :func:`reset_store` afterwards.
"""

from __future__ import annotations

import threading

from qbsync.settings import Settings, get_settings
from qbsync.store.dynamo import DynamoStore
from qbsync.store.ports import Store

_lock = threading.Lock()
_stores: dict[tuple[str, str, str | None], Store] = {}
_override: Store | None = None


def get_store(settings: Settings | None = None) -> Store:
    """The store for ``settings`` (default: the process settings), cached per (table, region, endpoint).

    ``DynamoStore`` resolves its boto3 client per call through :mod:`qbsync.aws`, so ``aws.reset_clients()`` is
    enough to point a cached store at a new endpoint/mock.
    """
    if _override is not None:
        return _override
    settings = settings or get_settings()
    key = (settings.table_name, settings.aws_region, settings.aws_endpoint_url)
    found = _stores.get(key)
    if found is not None:
        return found
    with _lock:
        found = _stores.get(key)
        if found is None:
            found = DynamoStore(settings)
            _stores[key] = found
        return found


def set_store(store: Store | None) -> None:
    """Make :func:`get_store` return ``store`` regardless of settings (unit tests); ``None`` undoes it."""
    global _override
    with _lock:
        _override = store


def reset_store() -> None:
    """Forget cached stores and any override."""
    global _override
    with _lock:
        _stores.clear()
        _override = None
