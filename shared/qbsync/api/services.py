"""The use cases the API needs, wired to their adapters once per process (lazily, never at import)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from qbsync.connectors import ConnectorService
from qbsync.qbwc.jobs import JobService
from qbsync.qbwc.service import WebConnectorSession
from qbsync.settings import Settings, get_settings
from qbsync.store.factory import get_store
from qbsync.store.ports import Store
from qbsync.tenancy import AdminAuthenticator, TenantService


@dataclass
class Services:
    settings: Settings
    store: Store
    tenants: TenantService
    admin: AdminAuthenticator
    connectors: ConnectorService
    jobs: JobService
    web_connector: WebConnectorSession

    @classmethod
    def build(cls, settings: Settings, store: Store) -> Services:
        connectors = ConnectorService(store)
        return cls(
            settings=settings,
            store=store,
            tenants=TenantService(store.tenants, key_cache_seconds=settings.api_key_cache_seconds),
            admin=AdminAuthenticator(settings),
            connectors=connectors,
            jobs=JobService(store),
            web_connector=WebConnectorSession(store, connectors),
        )


_lock = threading.Lock()
_services: Services | None = None


def get_services() -> Services:
    global _services
    if _services is None:
        with _lock:
            if _services is None:
                settings = get_settings()
                _services = Services.build(settings, get_store(settings))
    return _services


def use_services(services: Services | None) -> None:
    """Replace (or with None, forget) the process-wide services: tests and the local stack."""
    global _services
    with _lock:
        _services = services
