"""Web Connector connectors (C1-C3): create, list, change, unlock, and the login rules the SOAP
``authenticate`` call applies (wrong password → count → lock after N; inactive tenant; disabled; locked)."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from qbsync.clock import Clock, SystemClock, iso
from qbsync.errors import ConcurrentModification, Conflict, NotFound
from qbsync.models import DisplayName, StrictModel, validate_model
from qbsync.security import dummy_hash, hash_secret, new_id, verify_secret
from qbsync.store.ports import Connector, ConnectorRepository, Job, Store, Tenant
from qbsync.tenancy import settings_of

TransferType = Literal[
    "customers", "items", "invoices", "payments", "journal_entries", "timesheets", "expense_reports", "purchase_orders"
]
ALL_TRANSFERS: list[TransferType] = [
    "customers",
    "items",
    "invoices",
    "payments",
    "journal_entries",
    "timesheets",
    "expense_reports",
    "purchase_orders",
]
# The Web Connector sends the username typed in the .qwc; keep it to safe, visible characters.
Username = Annotated[str, StringConstraints(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9._@+-]+$")]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128, strip_whitespace=False)]
MAX_CONVERSATIONS = 10
_RETRIES = 8


class ConnectorCreate(StrictModel):
    name: DisplayName
    username: Username
    password: Password
    run_every_minutes: int = Field(15, ge=1, le=1440, description="Web Connector schedule (Auto-Run interval).")
    enabled_transfers: list[TransferType] = Field(default_factory=lambda: list(ALL_TRANSFERS))


class ConnectorPatch(StrictModel):
    name: DisplayName | None = None
    password: Password | None = None
    run_every_minutes: int | None = Field(None, ge=1, le=1440)
    enabled_transfers: list[TransferType] | None = None
    enabled: bool | None = None


class ConversationView(StrictModel):
    ticket_ref: str = Field(description="A short reference to the conversation (never the ticket itself).")
    status: str
    started_at: str
    finished_at: str | None = None
    detail: str = ""
    round_trips: int = 0
    sent: dict[str, int] = Field(default_factory=dict)
    errors: dict[str, int] = Field(default_factory=dict)
    config_issues: int = Field(0, description="Configuration issues (missing or stale mappings) it reported.")
    config_issue_details: list[dict[str, str]] = Field(
        default_factory=list, description="Up to 10 of them: kind, id, code, message."
    )


class ConnectorView(StrictModel):
    connector_id: str
    name: str
    username: str
    is_default: bool
    enabled: bool
    enabled_transfers: list[str]
    run_every_minutes: int
    company_file: str | None
    locked: bool
    failed_logins: int
    last_login_failure: dict[str, str] | None
    last_sync_at: str | None
    last_status: str | None
    conversations: list[ConversationView]
    created_at: str
    updated_at: str


class ConnectorList(StrictModel):
    items: list[ConnectorView]


OrganizationId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f#/]+$")]


class OrganizationRouteRequest(StrictModel):
    connector_id: str | None = Field(description="The connector for this organization; null: the default one.")


class OrganizationRoute(StrictModel):
    organization_id: str
    connector_id: str
    is_default: bool = Field(description="True when the organization is not mapped and uses the default connector.")


class JobView(StrictModel):
    seq: int
    kind: str
    transfer_type: str
    status: str
    source_ref: str | None
    attempts: int
    result: dict[str, Any] = Field(
        description="QuickBooks status code/message, ListID/TxnID/EditSequence and what was answered (qb_type)."
    )
    created_at: str
    updated_at: str


class JobList(StrictModel):
    items: list[JobView]
    cursor: str | None = Field(None, description="Pass as ?after= to read the next page.")


def job_list(jobs: list[Job], limit: int) -> JobList:
    items = [
        JobView(
            seq=j.seq,
            kind=j.kind,
            transfer_type=j.transfer_type,
            status=j.status,
            source_ref=j.source_ref,
            attempts=j.attempts,
            result=j.result,
            created_at=j.created_at,
            updated_at=j.updated_at,
        )
        for j in jobs
    ]
    return JobList(items=items, cursor=str(jobs[-1].seq) if len(jobs) == limit else None)


def connector_view(connector: Connector) -> ConnectorView:
    return ConnectorView(
        connector_id=connector.connector_id,
        name=connector.name,
        username=connector.username,
        is_default=connector.is_default,
        enabled=connector.enabled,
        enabled_transfers=connector.enabled_transfers,
        run_every_minutes=connector.run_every_minutes,
        company_file=connector.company_file,
        locked=connector.locked,
        failed_logins=connector.failed_logins,
        last_login_failure=connector.last_login_failure,
        last_sync_at=connector.last_sync_at,
        last_status=connector.last_status,
        conversations=[ConversationView.model_validate(c) for c in connector.conversations],
        created_at=connector.created_at,
        updated_at=connector.updated_at,
    )


class _OrganizationPath(StrictModel):
    organization_id: OrganizationId


def validate_organization_id(value: str) -> str:
    return validate_model(_OrganizationPath, {"organization_id": value}).organization_id


def new_guid() -> str:
    """A braced GUID, the form QWC OwnerID/FileID require."""
    return "{" + str(uuid.uuid4()).upper() + "}"


@dataclass
class Login:
    """The outcome of a Web Connector login: the connector and tenant, or why it was refused."""

    connector: Connector | None
    tenant: Tenant | None
    refused: str | None = None  # unknown_user | wrong_password | locked | tenant_inactive | disabled

    @property
    def ok(self) -> bool:
        return self.refused is None


class ConnectorService:
    def __init__(self, store: Store, *, clock: Clock | None = None) -> None:
        self.store = store
        self.repo: ConnectorRepository = store.connectors
        self.clock = clock or SystemClock()

    def create(self, tenant: Tenant, body: ConnectorCreate) -> Connector:
        now = iso(self.clock.now())
        connector = Connector(
            connector_id=new_id("c_")[:22],
            tenant_id=tenant.tenant_id,
            name=body.name,
            username=body.username,
            password_hash=hash_secret(body.password),
            owner_id=new_guid(),
            file_id=new_guid(),
            run_every_minutes=body.run_every_minutes,
            enabled_transfers=list(dict.fromkeys(body.enabled_transfers)),
            created_at=now,
            updated_at=now,
        )
        return self.repo.create(connector)

    def list(self, tenant: Tenant) -> list[Connector]:
        return self.repo.list(tenant.tenant_id)

    def get(self, tenant: Tenant, connector_id: str) -> Connector:
        found = self.repo.get(tenant.tenant_id, connector_id)
        if found is None:
            raise NotFound(f"No connector {connector_id}.")
        return found

    def update(self, tenant: Tenant, connector_id: str, patch: ConnectorPatch) -> Connector:
        def change(connector: Connector) -> Connector:
            if patch.enabled is False and connector.is_default:
                raise Conflict("The default connector cannot be disabled.")
            return replace(
                connector,
                name=patch.name if patch.name is not None else connector.name,
                password_hash=hash_secret(patch.password) if patch.password is not None else connector.password_hash,
                run_every_minutes=patch.run_every_minutes or connector.run_every_minutes,
                enabled_transfers=(
                    list(dict.fromkeys(patch.enabled_transfers))
                    if patch.enabled_transfers is not None
                    else connector.enabled_transfers
                ),
                enabled=patch.enabled if patch.enabled is not None else connector.enabled,
                updated_at=iso(self.clock.now()),
            )

        return self.modify(tenant.tenant_id, connector_id, change)

    def map_organization(self, tenant: Tenant, organization_id: str, connector_id: str | None) -> OrganizationRoute:
        """C3: send one source organization's records to a non-default connector (None: back to the default)."""
        organization_id = validate_organization_id(organization_id)
        if connector_id is not None:
            target = self.get(tenant, connector_id)
            if not target.enabled:
                raise Conflict(f"Connector {connector_id} is disabled.")
        self.repo.map_organization(tenant.tenant_id, organization_id, connector_id)
        return self.route(tenant, organization_id)

    def route(self, tenant: Tenant, organization_id: str | None = None) -> OrganizationRoute:
        """Which connector gets an organization's records: its mapped connector, else the tenant's default."""
        mapped = (
            self.repo.organization_connector(tenant.tenant_id, validate_organization_id(organization_id))
            if organization_id
            else None
        )
        if mapped is not None and self.repo.get(tenant.tenant_id, mapped) is not None:
            return OrganizationRoute(organization_id=organization_id or "", connector_id=mapped, is_default=False)
        default = next((c for c in self.repo.list(tenant.tenant_id) if c.is_default), None)
        if default is None:
            raise NotFound("This tenant has no Web Connector connector yet.")
        return OrganizationRoute(
            organization_id=organization_id or "", connector_id=default.connector_id, is_default=True
        )

    def jobs(self, tenant: Tenant, connector_id: str, *, after: int, limit: int) -> builtins.list[Job]:
        """The connector's queue and history (what went to QuickBooks, with its outcome), oldest first."""
        self.get(tenant, connector_id)
        return self.store.jobs.history(connector_id, after_seq=after, limit=limit)

    def unlock(self, tenant: Tenant, connector_id: str) -> Connector:
        return self.modify(
            tenant.tenant_id,
            connector_id,
            lambda c: replace(c, locked_at=None, failed_logins=0, updated_at=iso(self.clock.now())),
        )

    def login(self, username: str, password: str) -> Login:
        """Check a Web Connector login. Every refusal is recorded on the connector so the grid can show it."""
        connector = self.repo.find_by_username(username)
        if connector is None:
            verify_secret(password, dummy_hash())
            return Login(None, None, "unknown_user")
        # Verified before any other check, so every refusal costs the same scrypt: the answer time tells a
        # guesser nothing about whether the connector is locked, disabled or its tenant inactive.
        valid = verify_secret(password, connector.password_hash)
        tenant = self.store.tenants.get(connector.tenant_id)
        if tenant is None or not tenant.is_active:
            return self._refuse(connector, tenant, "tenant_inactive")
        if not connector.enabled:
            return self._refuse(connector, tenant, "disabled")
        if connector.locked:
            return self._refuse(connector, tenant, "locked")
        if not valid:
            lockout_after = settings_of(tenant).connector_lockout_attempts
            now = iso(self.clock.now())

            def count_failure(c: Connector) -> Connector:
                failures = c.failed_logins + 1
                return replace(
                    c,
                    failed_logins=failures,
                    locked_at=c.locked_at or (now if failures >= lockout_after else None),
                    last_login_failure={"at": now, "reason": "wrong_password"},
                )

            updated = self.modify(connector.tenant_id, connector.connector_id, count_failure)
            return Login(updated, tenant, "locked" if updated.locked else "wrong_password")
        if connector.failed_logins:
            connector = self.modify(connector.tenant_id, connector.connector_id, lambda c: replace(c, failed_logins=0))
        return Login(connector, tenant)

    def _refuse(self, connector: Connector, tenant: Tenant | None, reason: str) -> Login:
        now = iso(self.clock.now())
        updated = self.modify(
            connector.tenant_id,
            connector.connector_id,
            lambda c: replace(c, last_login_failure={"at": now, "reason": reason}),
        )
        return Login(updated, tenant, reason)

    def modify(self, tenant_id: str, connector_id: str, change: Callable[[Connector], Connector]) -> Connector:
        """Read-change-write with optimistic locking, retried when another writer got there first."""

        for _ in range(_RETRIES):
            current = self.repo.get(tenant_id, connector_id)
            if current is None:
                raise NotFound(f"No connector {connector_id}.")
            try:
                return self.repo.update(change(current))
            except ConcurrentModification:
                continue
        raise ConcurrentModification(f"Connector {connector_id} is changing too often; try again.")
