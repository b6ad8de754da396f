"""The use cases the API needs, wired to their adapters once per process (lazily, never at import)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from qbsync.connectors import ConnectorService
from qbsync.console.sessions import ConsoleSessions
from qbsync.events import EventBridgePublisher, EventPublisher
from qbsync.mappings import MappingService
from qbsync.qbo.company import company_reader
from qbsync.qbo.connection import QboConnectionService
from qbsync.qbo.oauth import OAuthProvider
from qbsync.qbo.tokens import KmsTokenCipher, TokenCipher, TokenManager
from qbsync.qbo.webhooks import WebhookService
from qbsync.qbwc.jobs import JobService
from qbsync.qbwc.service import Limits, WebConnectorSession
from qbsync.qbxml import QbxmlResult
from qbsync.queue import SqsTransferQueue, TransferQueue
from qbsync.settings import Settings, get_settings
from qbsync.store.factory import get_store
from qbsync.store.ports import Job, Store
from qbsync.sync.ingest import BulkSyncService, IngestService, IssueService
from qbsync.sync.inventory import InventorySync
from qbsync.sync.journal import JournalService
from qbsync.sync.reconcile import QboReconciler
from qbsync.sync.reconcile_desktop import DesktopReconciler
from qbsync.sync.worker import SyncWorker
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
    tokens: TokenManager
    qbo: QboConnectionService
    events: EventPublisher
    ingest: IngestService
    issues: IssueService
    sync: SyncWorker
    bulk: BulkSyncService
    webhooks: WebhookService
    reconciler: QboReconciler
    desktop_reconciler: DesktopReconciler
    inventory: InventorySync
    console: ConsoleSessions
    journal: JournalService
    mappings: MappingService

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: Store,
        *,
        events: EventPublisher | None = None,
        queue: TransferQueue | None = None,
        cipher: TokenCipher | None = None,
        oauth: OAuthProvider | None = None,
    ) -> Services:
        connectors = ConnectorService(store)
        events = events or EventBridgePublisher(settings)
        oauth = oauth or OAuthProvider(settings)
        tokens = TokenManager(store, cipher or KmsTokenCipher(settings), oauth, events)
        queue = queue or SqsTransferQueue(settings)
        qbo = QboConnectionService(store, tokens, oauth, queue, events, company_reader(settings))
        ingest = IngestService(store, queue)
        issues = IssueService(store, ingest)
        sync = SyncWorker(store, tokens, issues, events, settings, jobs=JobService(store))
        desktop_reconciler = DesktopReconciler(store, events, JobService(store))
        inventory = InventorySync(store, events, JobService(store))

        def on_query_result(job: Job, result: QbxmlResult) -> None:
            desktop_reconciler.on_query_result(job, result)
            inventory.on_query_result(job, result)

        tenants = TenantService(store.tenants, key_cache_seconds=settings.api_key_cache_seconds)
        journal = JournalService(store, queue, events, client_factory=sync.client_factory, jobs=sync.jobs)
        sync.job_listeners.append(journal.job_finished)
        return cls(
            settings=settings,
            store=store,
            tenants=tenants,
            admin=AdminAuthenticator(settings),
            connectors=connectors,
            jobs=JobService(store),
            web_connector=WebConnectorSession(
                store,
                connectors,
                limits=Limits(max_requests=settings.wc_max_requests) if settings.wc_max_requests else None,
                on_job_finished=sync.defer_job_finished,
                on_page=lambda job, rets: sync.matcher.on_page(job, rets),
                on_query_result=on_query_result,
            ),
            tokens=tokens,
            qbo=qbo,
            events=events,
            ingest=ingest,
            issues=issues,
            sync=sync,
            bulk=BulkSyncService(store, ingest),
            webhooks=WebhookService(store, queue, settings),
            reconciler=QboReconciler(store, tokens, events, settings),
            desktop_reconciler=desktop_reconciler,
            inventory=inventory,
            console=ConsoleSessions(store, tenants, minutes=settings.console_session_minutes),
            mappings=MappingService(store),
            journal=journal,
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
