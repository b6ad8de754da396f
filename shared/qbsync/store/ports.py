"""Storage ports: the records qbsync keeps and the repository interfaces use cases depend on.

Two adapters implement every port: ``store.dynamo`` (the single DynamoDB table; the only code that knows keys)
and ``store.memory`` (in-memory fakes for unit tests). ``tests/contract`` runs one suite against both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

T = TypeVar("T")

TenantStatus = Literal["active", "inactive"]


@dataclass
class Tenant:
    tenant_id: str
    name: str
    status: TenantStatus
    settings: dict[str, Any]
    created_at: str
    updated_at: str
    version: int = 1

    @property
    def is_active(self) -> bool:
        return self.status == "active"


@dataclass
class ApiKey:
    """An API key as stored: only the salted hash of its secret part is kept."""

    key_id: str
    tenant_id: str
    secret_hash: str
    created_at: str
    revoked: bool = False


@dataclass
class ScheduleRun:
    """The last run of a scheduled handler (reconciler, token refresher, sweeper…)."""

    name: str
    runs: int
    last_started_at: str
    last_finished_at: str | None
    last_outcome: dict[str, Any] = field(default_factory=dict)
    version: int = 1


@dataclass
class Connector:
    """A QuickBooks Web Connector login, bound one-to-one to a QuickBooks Desktop company file (C1-C3)."""

    connector_id: str
    tenant_id: str
    name: str
    username: str
    password_hash: str
    owner_id: str  # braced GUID, stable for the connector's life (QWC OwnerID)
    file_id: str  # braced GUID (QWC FileID), stamped into the company file by the Web Connector
    run_every_minutes: int
    enabled_transfers: list[str]
    created_at: str
    updated_at: str
    is_default: bool = False
    enabled: bool = True
    company_file: str | None = None  # the first company file seen; others are refused
    failed_logins: int = 0
    locked_at: str | None = None
    last_login_failure: dict[str, Any] | None = None  # {"at", "reason": wrong_password|locked|tenant_inactive|…}
    last_sync_at: str | None = None
    last_status: str | None = None
    conversations: list[dict[str, Any]] = field(default_factory=list)  # newest first, at most 10
    live_ticket: str | None = None  # hash of the open conversation's ticket (another login gets "busy")
    live_until: int = 0  # epoch seconds the open conversation stays live without activity
    version: int = 1

    @property
    def locked(self) -> bool:
        return self.locked_at is not None


JobStatus = Literal["queued", "sent", "done", "error", "blocked"]
UNFINISHED: tuple[JobStatus, ...] = ("queued", "sent")


@dataclass
class Job:
    """One qbXML request waiting for (or done by) a connector's company file, in per-connector order (``seq``)."""

    connector_id: str
    seq: int
    tenant_id: str
    kind: str  # customer_add, item_add, invoice_add, receive_payment_add, journal_entry_add, customer_query, …
    transfer_type: str  # customers, items, invoices, payments, journal_entries, … (for per-type counts)
    payload: dict[str, Any]
    created_at: str
    updated_at: str
    depends_on: list[int] = field(default_factory=list)  # seqs on the same connector that must be done first
    status: JobStatus = "queued"
    source_ref: str | None = None  # the source record this job writes, e.g. "invoice:INV-1001"
    message_set_id: str | None = None  # the message set it was last sent in (for lost-response recovery)
    attempts: int = 0
    result: dict[str, Any] = field(default_factory=dict)  # status code/message, ListID/TxnID/EditSequence
    version: int = 1

    @property
    def request_id(self) -> str:
        return str(self.seq)


@dataclass
class Ticket:
    """A Web Connector conversation. Stored under a hash of the ticket: the ticket itself is a bearer secret."""

    ticket_hash: str
    tenant_id: str
    connector_id: str
    created_at: str
    expires_at: int  # epoch seconds; DynamoDB TTL removes the item later, reads check it now
    state: Literal["open", "closed"] = "open"
    company_file: str | None = None
    qbxml_version: str | None = None
    in_flight: dict[str, Any] | None = None  # {"message_set_id": str, "seqs": [int, ...]}
    last_error: str | None = None
    round_trips: int = 0
    done: int = 0
    sent: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    config_issues: int = 0
    percent: int = 0
    last_activity: int = 0  # epoch seconds of the last SOAP call in this conversation
    version: int = 1


QboStatus = Literal["connecting", "connected", "needs_reauth", "disconnected"]


@dataclass
class QboConnection:
    """A tenant's QuickBooks Online connection (one realm per tenant). ``tokens`` is KMS ciphertext only."""

    tenant_id: str
    realm_id: str
    status: QboStatus
    company_name: str | None
    tokens: str  # base64 KMS ciphertext of {"access_token", "refresh_token"}; "" once disconnected
    access_expires_at: int  # epoch seconds
    refresh_expires_at: int
    connected_at: str
    updated_at: str
    hard_expires_at: int | None = None
    tokens_version: int = 1  # +1 on every refresh: a caller holding an older token knows someone refreshed
    last_refresh_at: str | None = None
    lease_owner: str | None = None  # the one caller allowed to refresh right now (single flight per realm)
    lease_until: int = 0
    last_error: str | None = None
    warnings_sent: list[str] = field(default_factory=list)
    version: int = 1


SyncState = Literal["pending", "synced", "waiting", "blocked", "failed"]


@dataclass
class SyncRecord:
    """One source record and where it stands in QuickBooks (T1-T4, T10): the latest content the SaaS app sent,
    the QuickBooks object it is linked to, and why it is not there yet when it is not."""

    tenant_id: str
    kind: str  # customers | items | invoices | payments
    source_id: str
    content_hash: str  # of the latest accepted content
    payload: dict[str, Any]
    state: SyncState
    created_at: str
    updated_at: str
    transfer_id: str = ""  # the latest transfer
    target: str | None = None  # "qbo:<realm>" or "qbd:<connector>"
    qb_id: str | None = None  # QBO Id / Desktop ListID or TxnID
    qb_version: str | None = None  # QBO SyncToken / Desktop EditSequence
    synced_hash: str | None = None  # the content hash QuickBooks has
    synced_at: str | None = None
    reason: dict[str, Any] | None = None  # {"code", "message", "action", "candidates"?, "waiting_for"?}
    job_seq: int | None = None  # Desktop: the connector job carrying the current content
    # What the reconciler last saw in QuickBooks (R1, R2): balance, paid, paid_date, payments, drift, checked_at.
    # None until the first reconciliation; records stored before it existed load with None.
    reconciliation: dict[str, Any] | None = None
    version: int = 1


TransferStatus = Literal["queued", "succeeded", "failed", "blocked", "waiting", "skipped"]


@dataclass
class TransferRecord:
    """One attempt to move a record into QuickBooks: the history V2 shows, newest first."""

    tenant_id: str
    transfer_id: str
    kind: str
    source_id: str
    status: TransferStatus
    at: str
    action: str = ""  # create | update | link | none
    target: str | None = None
    qb_id: str | None = None
    code: str | None = None  # QuickBooks' code or qbsync's
    message: str | None = None


@dataclass
class Page(Generic[T]):
    items: list[T]
    cursor: str | None = None  # opaque; pass back to get the next page


class TenantRepository(Protocol):
    def create(self, tenant: Tenant, api_key: ApiKey) -> None:
        """Write the tenant and its first API key atomically. ``AlreadyExists`` if either id is taken."""

    def get(self, tenant_id: str) -> Tenant | None: ...

    def list(self, *, limit: int = 50, cursor: str | None = None) -> Page[Tenant]:
        """Tenants, oldest first."""

    def update(self, tenant: Tenant) -> Tenant:
        """Save ``tenant`` if its stored version still equals ``tenant.version``; return it with version + 1.

        ``ConcurrentModification`` if someone else saved first; ``NotFound`` if it does not exist."""

    def add_api_key(self, api_key: ApiKey) -> None:
        """``AlreadyExists`` if the key id is taken; ``NotFound`` if the tenant does not exist."""

    def get_api_key(self, key_id: str) -> ApiKey | None: ...

    def revoke_api_key(self, key_id: str) -> None: ...


class ConnectorRepository(Protocol):
    def create(self, connector: Connector) -> Connector:
        """Store a new connector and claim its username (unique across the deployment, case-insensitive:
        ``AlreadyExists`` if taken). The tenant's first connector becomes its default; the stored connector,
        with ``is_default`` decided, is returned."""

    def get(self, tenant_id: str, connector_id: str) -> Connector | None: ...

    def find_by_username(self, username: str) -> Connector | None:
        """The connector a Web Connector logs in as (case-insensitive), whichever tenant owns it."""

    def list(self, tenant_id: str) -> list[Connector]:
        """The tenant's connectors, oldest first."""

    def update(self, connector: Connector) -> Connector:
        """Optimistic save (``ConcurrentModification`` if the version moved; ``NotFound`` if absent); returns it
        with version + 1. ``username`` and ``is_default`` cannot change."""

    def map_organization(self, tenant_id: str, organization_id: str, connector_id: str | None) -> None:
        """Route a source organization's records to ``connector_id`` (None: back to the default connector)."""

    def organization_connector(self, tenant_id: str, organization_id: str) -> str | None: ...


class JobQueue(Protocol):
    def enqueue(self, job: Job) -> Job:
        """Append ``job`` to its connector's queue; its ``seq`` is assigned here (strictly increasing).

        Idempotent by ``source_ref``: while a job with the same reference exists on the connector and has not
        failed (``error``/``blocked``), that job is returned instead of a second one, so a worker that dies between
        queueing a record's job and saving the record never makes QuickBooks do the work twice."""

    def get(self, connector_id: str, seq: int) -> Job | None: ...

    def unfinished(self, connector_id: str, limit: int) -> list[Job]:
        """Queued and sent jobs, oldest first, read consistently (never a job already done)."""

    def history(self, connector_id: str, *, after_seq: int = 0, limit: int = 100) -> list[Job]:
        """All jobs after ``after_seq``, oldest first."""

    def save(self, job: Job) -> Job:
        """Optimistic save (``ConcurrentModification`` if the version moved); returns it with version + 1."""

    def advance_low_water(self, connector_id: str, seq: int) -> None:
        """Every job below ``seq`` is finished: later ``unfinished`` reads may start there."""


class QboConnectionRepository(Protocol):
    def get(self, tenant_id: str) -> QboConnection | None: ...

    def create(self, connection: QboConnection) -> QboConnection:
        """``AlreadyExists`` if the tenant already has a connection (then ``save`` it instead)."""

    def save(self, connection: QboConnection) -> QboConnection:
        """Optimistic save (``ConcurrentModification`` if the version moved); returns it with version + 1."""

    def list_all(self, *, limit: int = 100, cursor: str | None = None) -> Page[QboConnection]:
        """Every tenant's connection (for the token refresher), in tenant order."""

    def create_state(self, state_hash: str, tenant_id: str, expires_at: int) -> None: ...

    def consume_state(self, state_hash: str, now: int) -> str | None:
        """The tenant an OAuth ``state`` was issued to, deleting it (single use); None if unknown or expired."""


RecordRef = tuple[str, str]  # (kind, source id)


class SyncRecordRepository(Protocol):
    def get(self, tenant_id: str, kind: str, source_id: str) -> SyncRecord | None: ...

    def create(self, record: SyncRecord) -> SyncRecord:
        """``AlreadyExists`` if the record is known (then ``save`` it)."""

    def save(self, record: SyncRecord) -> SyncRecord:
        """Optimistic save; returns it with version + 1."""

    def list(
        self, tenant_id: str, kind: str, *, state: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[SyncRecord]:
        """A tenant's records of one kind in source-id order, optionally only those in ``state``."""

    def get_many(self, tenant_id: str, kind: str, source_ids: Sequence[str]) -> dict[str, SyncRecord]:
        """The known records among ``source_ids`` (consistent reads, batched)."""

    def add_waits(self, tenant_id: str, waiter: RecordRef, dependencies: Sequence[RecordRef]) -> None:
        """Remember that ``waiter`` waits for each of ``dependencies`` (idempotent)."""

    def waiters(self, tenant_id: str, dependency: RecordRef) -> Sequence[RecordRef]:
        """The records that said they wait for ``dependency`` (consistent, one query per page)."""

    def remove_waits(self, tenant_id: str, dependency: RecordRef, waiters: Sequence[RecordRef]) -> None:
        """Forget those waits (the dependency reached QuickBooks and its waiters were released)."""

    def log(self, transfer: TransferRecord) -> None:
        """Append to the transfer history."""

    def log_many(self, transfers: Sequence[TransferRecord]) -> None:
        """Append several entries (batched writes)."""

    def history(self, tenant_id: str, *, limit: int = 100, cursor: str | None = None) -> Page[TransferRecord]:
        """The tenant's transfers, newest first."""

    def save_sync_run(self, tenant_id: str, sync_id: str, run: dict[str, Any]) -> None: ...

    def get_sync_run(self, tenant_id: str, sync_id: str) -> dict[str, Any] | None: ...


class ReconcileStateRepository(Protocol):
    """The reconciler's small state: webhook event ids already seen, and a watermark per QuickBooks company."""

    def claim_event(self, event_hash: str, *, now: int, expires_at: int) -> bool:
        """True the first time ``event_hash`` is claimed (conditional write, kept until ``expires_at`` by TTL);
        False while an unexpired claim exists (a replayed or duplicated notification)."""

    def release_event(self, event_hash: str) -> None:
        """Forget a claim (the event could not be queued: Intuit's retry must be accepted)."""

    def get(self, tenant_id: str, target: str) -> dict[str, Any] | None: ...

    def put(self, tenant_id: str, target: str, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class MappingSet:
    """One kind of a tenant's mappings (FEATURES M1-M5): source key → ``{"name": QuickBooks name, "type"?: ...}``."""

    kind: str
    entries: dict[str, dict[str, str]]
    updated_at: str


class MappingRepository(Protocol):
    """A tenant's mappings, one item per kind; a ``put`` replaces the whole kind."""

    def get(self, tenant_id: str, kind: str) -> MappingSet | None: ...

    def get_all(self, tenant_id: str) -> dict[str, MappingSet]:
        """Every kind the tenant has set (one query)."""

    def put(self, tenant_id: str, mappings: MappingSet) -> None: ...


class TicketRepository(Protocol):
    def create(self, ticket: Ticket) -> None: ...

    def get(self, ticket_hash: str) -> Ticket | None: ...

    def save(self, ticket: Ticket) -> Ticket:
        """Optimistic save; returns it with version + 1."""


class ScheduleRunRepository(Protocol):
    def get(self, name: str) -> ScheduleRun | None: ...

    def record_start(self, name: str, started_at: str) -> ScheduleRun:
        """Increment ``runs`` atomically and set ``last_started_at`` (creates the record on first run)."""

    def record_finish(self, name: str, finished_at: str, outcome: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class MatchEntry:
    """One QuickBooks list record as the matcher sees it: found by ``(kind, field, key)``, e.g.
    ``("customer", "email", "ann@example.com")``. Keys are stored normalised (see ``qbsync.sync.desktop_match``)."""

    kind: str  # customer | item
    field: str  # email | name | mpn
    key: str
    qb_id: str
    name: str


class MatchIndexRepository(Protocol):
    """The match index of one QuickBooks company (``scope``: a Desktop connector id), built by an import."""

    def put_many(self, scope: str, entries: Sequence[MatchEntry]) -> None:
        """Add (or overwrite) entries, batched."""

    def find(self, scope: str, kind: str, field: str, key: str) -> list[MatchEntry]:
        """Every entry with exactly that key (consistent read)."""

    def status(self, scope: str) -> dict[str, Any] | None:
        """The import's progress document, None before the first import."""

    def save_status(self, scope: str, status: dict[str, Any], *, create_only: bool = False) -> bool:
        """Store the progress document; with ``create_only`` only if there is none yet (False if there was)."""


class UniqueClaims(Protocol):
    """Conditional-write uniqueness: one owner per (scope, value), e.g. a connector username per deployment."""

    def claim(self, scope: str, value: str, owner: str) -> bool:
        """True if ``owner`` now holds the claim (or already did); False if another owner holds it."""

    def release(self, scope: str, value: str, owner: str) -> None: ...

    def owner_of(self, scope: str, value: str) -> str | None: ...


class Store(Protocol):
    """Everything a use case may need from storage, built once per process by ``store.factory``."""

    @property
    def tenants(self) -> TenantRepository: ...

    @property
    def schedule_runs(self) -> ScheduleRunRepository: ...

    @property
    def connectors(self) -> ConnectorRepository: ...

    @property
    def jobs(self) -> JobQueue: ...

    @property
    def tickets(self) -> TicketRepository: ...

    @property
    def qbo(self) -> QboConnectionRepository: ...

    @property
    def records(self) -> SyncRecordRepository: ...

    @property
    def claims(self) -> UniqueClaims: ...

    @property
    def matches(self) -> MatchIndexRepository: ...

    @property
    def reconcile(self) -> ReconcileStateRepository: ...

    @property
    def mappings(self) -> MappingRepository: ...
