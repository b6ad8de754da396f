"""Accepting records from the SaaS app (T1-T4, T9, T10): validate, store, route, enqueue — in that order, so a 202
means the record is stored and on its way (or visibly waiting), never lost.

Re-posting a record with the same content is a no-op (same transfer); changed content becomes a new transfer that
updates QuickBooks. Each record is routed to its tenant's QuickBooks: the QBO connection, else the Desktop connector
for its organization (or the default one). With neither, the record waits and flows once one is connected.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, StringConstraints, ValidationError

from qbsync.clock import Clock, SystemClock, iso
from qbsync.errors import AlreadyExists, ConcurrentModification, FieldError, NotFound, ValidationFailed
from qbsync.models import StrictModel, field_errors
from qbsync.queue import Outgoing, TransferQueue
from qbsync.store.ports import Page, Store, SyncRecord, SyncState, Tenant, TransferRecord
from qbsync.sync.mapping import MappingError, qbd_preflight
from qbsync.sync.records import RECORD_MODELS, SourceRecord
from qbsync.tenancy import settings_of
from qbsync.transfers import TransferMessage

MAX_RECORDS_PER_POST = 500
R = TypeVar("R", bound=SourceRecord)
RECORD_STATES = ("pending", "synced", "waiting", "blocked", "failed")


class Accepted(StrictModel):
    id: str
    transfer_id: str
    status: str  # queued | unchanged | waiting


class AcceptedList(StrictModel):
    transfers: list[Accepted]


class RecordView(StrictModel):
    id: str
    kind: str
    state: str
    quickbooks_id: str | None
    transfer_id: str
    target: str | None
    reason: dict[str, Any] | None
    updated_at: str
    synced_at: str | None


def record_view(record: SyncRecord) -> RecordView:
    return RecordView(
        id=record.source_id,
        kind=record.kind,
        state=record.state,
        quickbooks_id=record.qb_id,
        transfer_id=record.transfer_id,
        target=record.target,
        reason=record.reason,
        updated_at=record.updated_at,
        synced_at=record.synced_at,
    )


def content_hash(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def validate_records(kind: str, body: Any) -> list[SourceRecord]:
    """One object or a list of them; every error names the record's index and field."""
    return validate_list(RECORD_MODELS[kind], body, noun="record")


def validate_list(model: type[R], body: Any, *, noun: str) -> list[R]:
    """A POST body of one ``model`` or a list of up to ``MAX_RECORDS_PER_POST``: every bad field is named with the
    record's index in front, and one id twice in the list is refused."""
    items = body if isinstance(body, list) else [body]
    if not items:
        raise ValidationFailed([FieldError("body", f"send one {noun} or a non-empty list")])
    if len(items) > MAX_RECORDS_PER_POST:
        raise ValidationFailed([FieldError("body", f"at most {MAX_RECORDS_PER_POST} {noun}s per request")])
    errors: list[FieldError] = []
    records: list[R] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        prefix = str(index) if isinstance(body, list) else ""
        try:
            record = model.model_validate(item)
        except ValidationError as exc:  # every field named with the record's index in front
            errors += field_errors(exc, prefix)
            continue
        source_id = record.id
        if source_id in seen:
            errors.append(FieldError(f"{prefix}.id" if prefix else "id", f"{source_id!r} appears twice"))
        seen.add(source_id)
        records.append(record)
    if errors:
        raise ValidationFailed(errors)
    return records


def all_records(store: Store, tenant_id: str, kind: str) -> Iterator[SyncRecord]:
    """Every record of one kind of a tenant, a page of 500 at a time (bounded: 50 million records)."""
    cursor: str | None = None
    for _ in range(100_000):
        page = store.records.list(tenant_id, kind, limit=500, cursor=cursor)
        yield from page.items
        cursor = page.cursor
        if cursor is None:
            return


class Router:
    """Which QuickBooks a tenant's record goes to."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def target(self, tenant_id: str, organization_id: str | None = None) -> str | None:
        connection = self.store.qbo.get(tenant_id)
        if connection is not None and connection.status in ("connecting", "connected"):
            return f"qbo:{connection.realm_id}"
        if organization_id:
            mapped = self.store.connectors.organization_connector(tenant_id, organization_id)
            if mapped and self.store.connectors.get(tenant_id, mapped):
                return f"qbd:{mapped}"
        default = next((c for c in self.store.connectors.list(tenant_id) if c.is_default and c.enabled), None)
        return f"qbd:{default.connector_id}" if default else None


class IngestService:
    def __init__(self, store: Store, queue: TransferQueue, clock: Clock | None = None) -> None:
        self.store = store
        self.queue = queue
        self.router = Router(store)
        self.clock = clock or SystemClock()

    def accept(self, tenant: Tenant, kind: str, body: Any) -> AcceptedList:
        """Store and queue a batch with few round trips: one batched read, one conditional write per changed
        record (the only per-record call), then batched history writes and batched queue sends."""
        records = validate_records(kind, body)
        tenant_id = tenant.tenant_id
        targets: dict[str | None, str | None] = {}  # organization → target, worked out once per request
        self._preflight(tenant, kind, records, targets, listed=isinstance(body, list))
        existing = self.store.records.get_many(tenant_id, kind, [r.id for r in records])
        now = iso(self.clock.now())
        answers: list[Accepted] = []
        logs: list[TransferRecord] = []
        outgoing: list[Outgoing] = []
        for record in records:
            payload = record.model_dump(mode="json", exclude_none=True)
            digest = content_hash(payload)
            current = existing.get(record.id)
            if current is not None and current.content_hash == digest and current.state != "failed":
                if current.state == "pending" and current.target:
                    # Stored but maybe never queued (the send failed and the client retries): send it again under
                    # the same deduplication id. SQS drops it if the first went; the worker skips finished work.
                    outgoing.append(self.message(current))
                answers.append(Accepted(id=record.id, transfer_id=current.transfer_id, status="unchanged"))
                continue
            organization = payload.get("organization_id")
            if organization not in targets:
                targets[organization] = self.router.target(tenant_id, organization)
            try:
                stored = self._store(tenant_id, kind, record.id, payload, digest, current, now, targets[organization])
            except (ConcurrentModification, AlreadyExists):
                answers.append(self._accept_one(tenant_id, kind, record))  # raced with another post: one by one
                continue
            logs.append(self._queued_log(stored, now))
            if stored.target:
                outgoing.append(self.message(stored))
            answers.append(
                Accepted(id=record.id, transfer_id=stored.transfer_id, status="queued" if stored.target else "waiting")
            )
        self.store.records.log_many(logs)
        self.queue.send_many(outgoing)
        return AcceptedList(transfers=answers)

    def _preflight(
        self,
        tenant: Tenant,
        kind: str,
        records: list[SourceRecord],
        targets: dict[str | None, str | None],
        *,
        listed: bool,
    ) -> None:
        """Refuse, before anything is stored, what the target QuickBooks Desktop would refuse in the records
        themselves (a 60-character customer name, a name in Cyrillic): 422 naming each record and field."""
        errors: list[FieldError] = []
        settings = None
        for index, record in enumerate(records):
            organization = getattr(record, "organization_id", None)
            if organization not in targets:
                targets[organization] = self.router.target(tenant.tenant_id, organization)
            if not (targets[organization] or "").startswith("qbd:"):
                continue
            settings = settings or settings_of(tenant)
            try:
                qbd_preflight(kind, record, settings)
            except MappingError as exc:
                field = f"{index}.{exc.field}" if listed else exc.field
                errors.append(FieldError(field, f"{exc.message} (the record goes to QuickBooks Desktop)"))
        if errors:
            raise ValidationFailed(errors)

    def _store(
        self,
        tenant_id: str,
        kind: str,
        source_id: str,
        payload: dict[str, Any],
        digest: str,
        existing: SyncRecord | None,
        now: str,
        target: str | None,
    ) -> SyncRecord:
        transfer_id = "x_" + secrets.token_hex(10)
        state: SyncState = "pending" if target else "waiting"
        reason = (
            None
            if target
            else {
                "code": "not_connected",
                "message": "No QuickBooks is connected yet; the record is sent once one is.",
                "action": "Connect QuickBooks Online or add a Web Connector connector.",
            }
        )
        if existing is None:
            return self.store.records.create(
                SyncRecord(
                    tenant_id=tenant_id,
                    kind=kind,
                    source_id=source_id,
                    content_hash=digest,
                    payload=payload,
                    state=state,
                    created_at=now,
                    updated_at=now,
                    transfer_id=transfer_id,
                    target=target,
                    reason=reason,
                )
            )
        return self.store.records.save(
            replace(
                existing,
                content_hash=digest,
                payload=payload,
                state=state,
                updated_at=now,
                transfer_id=transfer_id,
                target=target,
                reason=reason,
            )
        )

    @staticmethod
    def _queued_log(record: SyncRecord, now: str) -> TransferRecord:
        return TransferRecord(
            record.tenant_id,
            record.transfer_id,
            record.kind,
            record.source_id,
            "queued" if record.target else "waiting",
            now,
            target=record.target,
            message=None if record.target else "waiting for a QuickBooks connection",
        )

    def get(self, tenant: Tenant, kind: str, source_id: str) -> SyncRecord:
        found = self.store.records.get(tenant.tenant_id, kind, source_id)
        if found is None:
            raise NotFound(f"No {kind[:-1]} {source_id!r} has been received.")
        return found

    def list_records(
        self, tenant: Tenant, kind: str, *, state: str | None, limit: int, cursor: str | None
    ) -> Page[SyncRecord]:
        """One page of a tenant's records of ``kind`` in id order, optionally only those in ``state``."""
        if state is not None and state not in RECORD_STATES:
            raise ValidationFailed([FieldError("state", f"one of {', '.join(RECORD_STATES)}")])
        return self.store.records.list(tenant.tenant_id, kind, state=state, limit=limit, cursor=cursor)

    def _accept_one(self, tenant_id: str, kind: str, record: SourceRecord) -> Accepted:
        """One record, re-reading on every conflict (used when a batched write raced with another post)."""
        payload = record.model_dump(mode="json", exclude_none=True)
        digest = content_hash(payload)
        for _ in range(8):
            now = iso(self.clock.now())
            existing = self.store.records.get(tenant_id, kind, record.id)
            if existing is not None and existing.content_hash == digest and existing.state != "failed":
                if existing.state == "pending" and existing.target:
                    self.enqueue(existing)  # as in accept(): it may never have reached the queue
                return Accepted(id=record.id, transfer_id=existing.transfer_id, status="unchanged")
            try:
                target = self.router.target(tenant_id, payload.get("organization_id"))
                stored = self._store(tenant_id, kind, record.id, payload, digest, existing, now, target)
            except (ConcurrentModification, AlreadyExists):
                continue
            self.store.records.log(self._queued_log(stored, now))
            if stored.target:
                self.enqueue(stored)
            return Accepted(
                id=record.id, transfer_id=stored.transfer_id, status="queued" if stored.target else "waiting"
            )
        raise ConcurrentModification(f"{kind} {record.id!r} is changing too often; try again.")

    def enqueue(self, record: SyncRecord) -> None:
        message, group_id, deduplication_id = self.message(record)
        self.queue.send(message, group_id=group_id, deduplication_id=deduplication_id)

    @staticmethod
    def message(record: SyncRecord) -> Outgoing:
        assert record.target is not None
        return (
            TransferMessage(
                tenant_id=record.tenant_id,
                transfer_id=record.transfer_id,
                kind=f"sync.{record.kind}",
                target="qbo" if record.target.startswith("qbo:") else "qbd",
                payload={"source_id": record.source_id, "content_hash": record.content_hash},
            ),
            f"{record.tenant_id}:{record.target}",
            # The version changes with every state change, so a record released again (it waited for a customer,
            # then for an item) is not dropped by SQS's 5-minute de-duplication; redeliveries of one message are
            # harmless anyway (the worker skips content that is already in QuickBooks).
            f"{record.transfer_id}-{record.version}",
        )


class MatchIssue(StrictModel):
    id: str  # "<kind>:<source id>"
    kind: str
    record_id: str
    code: str
    message: str
    action: str
    candidates: list[dict[str, Any]] = []


class MatchIssueList(StrictModel):
    items: list[MatchIssue]


class ResolveRequest(StrictModel):
    quickbooks_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class TransferView(StrictModel):
    transfer_id: str
    kind: str
    id: str
    status: str
    at: str
    action: str
    target: str | None
    quickbooks_id: str | None
    code: str | None
    message: str | None


class TransferList(StrictModel):
    items: list[TransferView]
    cursor: str | None = None


MATCHABLE = ("customers", "items")


# Which kinds can wait for a record of a kind: invoices wait for customers and items, payments for customers and
# invoices. Releasing only these keeps a sync from scanning waiting lists nothing can be in.
class IssueService:
    """Match issues (V3), resolving them (T1, T2), the transfer history (V2), and releasing waiting records."""

    def __init__(self, store: Store, ingest: IngestService, clock: Clock | None = None) -> None:
        self.store = store
        self.ingest = ingest
        self.clock = clock or SystemClock()

    def match_issues(self, tenant: Tenant) -> MatchIssueList:
        issues: list[MatchIssue] = []
        for kind in MATCHABLE:
            cursor = None
            for _ in range(1000):
                page = self.store.records.list(tenant.tenant_id, kind, state="blocked", limit=100, cursor=cursor)
                for r in page.items:
                    reason = r.reason or {}
                    issues.append(
                        MatchIssue(
                            id=f"{kind}:{r.source_id}",
                            kind=kind,
                            record_id=r.source_id,
                            code=str(reason.get("code")),
                            message=str(reason.get("message", "")),
                            action=str(reason.get("action", "")),
                            candidates=list(reason.get("candidates", [])),
                        )
                    )
                cursor = page.cursor
                if cursor is None:
                    break
        return MatchIssueList(items=issues)

    def resolve(self, tenant: Tenant, issue_id: str, quickbooks_id: str) -> SyncRecord:
        """Link the record to the QuickBooks object the user picked; whatever waited for it is released."""
        kind, _, source_id = issue_id.partition(":")
        if kind not in MATCHABLE or not source_id:
            raise NotFound(f"No match issue {issue_id!r}.")
        record = self.store.records.get(tenant.tenant_id, kind, source_id)
        if record is None or record.state != "blocked":
            raise NotFound(f"No open match issue {issue_id!r}.")
        candidates = {str(c.get("quickbooks_id")) for c in (record.reason or {}).get("candidates", [])}
        if candidates and quickbooks_id not in candidates:
            raise ValidationFailed([FieldError("quickbooks_id", f"pick one of {', '.join(sorted(candidates))}")])
        now = iso(self.clock.now())
        linked = self.store.records.save(
            replace(
                record,
                state="synced",
                qb_id=quickbooks_id,
                qb_version=None,
                synced_hash=record.content_hash,
                synced_at=now,
                updated_at=now,
                reason=None,
            )
        )
        self.store.records.log(
            TransferRecord(
                tenant.tenant_id,
                record.transfer_id,
                kind,
                source_id,
                "succeeded",
                now,
                action="link",
                target=record.target,
                qb_id=quickbooks_id,
                message="linked by hand",
            )
        )
        self.release_dependents(tenant.tenant_id, kind, source_id)
        return linked

    def release(self, tenant_id: str, wanted: Any, kinds: Iterable[str] = RECORD_MODELS) -> int:
        """Queue again the waiting records (of ``kinds``) whose reason satisfies ``wanted(reason)``. This reads
        every record of those kinds: for rare, tenant-wide events (a connection), not for each synced record."""
        released = 0
        for kind in kinds:
            cursor = None
            for _ in range(1000):
                page = self.store.records.list(tenant_id, kind, state="waiting", limit=100, cursor=cursor)
                released += sum(self.requeue(record) for record in page.items if wanted(record.reason or {}))
                cursor = page.cursor
                if cursor is None:
                    break
        return released

    def release_dependents(self, tenant_id: str, kind: str, source_id: str) -> int:
        """A record reached QuickBooks: queue again whatever waited for it (it may still wait for others).
        One consistent query of the wait edges the waiters wrote (``wait_for``), usually empty."""
        dependency = (kind, source_id)
        waiters = self.store.records.waiters(tenant_id, dependency)
        if not waiters:
            return 0
        ref = f"{kind}:{source_id}"
        released = 0
        by_kind: dict[str, list[str]] = {}
        for waiter_kind, waiter_id in waiters:
            by_kind.setdefault(waiter_kind, []).append(waiter_id)
        for waiter_kind, ids in by_kind.items():
            for record in self.store.records.get_many(tenant_id, waiter_kind, ids).values():
                if record.state == "waiting" and ref in (record.reason or {}).get("waiting_for", []):
                    released += self.requeue(record)
        self.store.records.remove_waits(tenant_id, dependency, waiters)
        return released

    def wait_for(self, record: SyncRecord, waiting_for: Iterable[str]) -> None:
        """Write the edges ``release_dependents`` reads: ``record`` waits for each ``kind:id`` of ``waiting_for``."""
        dependencies = []
        for ref in waiting_for:
            dep_kind, _, dep_id = ref.partition(":")
            if dep_kind in RECORD_MODELS and dep_id:
                dependencies.append((dep_kind, dep_id))
        if dependencies:
            self.store.records.add_waits(record.tenant_id, (record.kind, record.source_id), dependencies)

    def requeue(self, record: SyncRecord) -> int:
        """Queue ``record`` again (routing it first if it waited for a target); 1 if queued."""
        target = record.target or self.ingest.router.target(record.tenant_id, record.payload.get("organization_id"))
        if target is None:
            return 0
        if target != record.target:
            record = self.store.records.save(replace(record, target=target, state="pending"))
        self.ingest.enqueue(record)
        return 1

    def release_on_connect(self, tenant_id: str) -> int:
        """QuickBooks is connected now: send everything that waited for a connection."""
        return self.release(
            tenant_id, lambda reason: reason.get("code") in ("not_connected", "qbo_needs_reauth", "qbo_not_connected")
        )

    def transfers(
        self,
        tenant: Tenant,
        *,
        kind: str | None,
        status: str | None,
        record_id: str | None,
        limit: int,
        cursor: str | None,
    ) -> TransferList:
        page = self.store.records.history(tenant.tenant_id, limit=limit, cursor=cursor)
        items = [
            TransferView(
                transfer_id=t.transfer_id,
                kind=t.kind,
                id=t.source_id,
                status=t.status,
                at=t.at,
                action=t.action,
                target=t.target,
                quickbooks_id=t.qb_id,
                code=t.code,
                message=t.message,
            )
            for t in page.items
            if (kind is None or t.kind == kind)
            and (status is None or t.status == status)
            and (record_id is None or t.source_id == record_id)
        ]
        return TransferList(items=items, cursor=page.cursor)


Kind = Literal["customers", "items", "invoices", "payments", "timesheets", "expense_reports", "purchase_orders"]
ALL_KINDS: list[Kind] = [
    "customers",
    "items",
    "invoices",
    "payments",
    "timesheets",
    "expense_reports",
    "purchase_orders",
]


class SyncRequest(StrictModel):
    kinds: list[Kind] = Field(default_factory=lambda: list(ALL_KINDS))


class SyncProgress(StrictModel):
    sync_id: str
    started_at: str
    queued: int = Field(description="Records this run sent (again) to QuickBooks.")
    done: int
    failed: int
    waiting: int
    remaining: int
    by_kind: dict[str, dict[str, int]]


class BulkSyncService:
    """T9 "Sync Data": send everything not yet in QuickBooks (failed records too, after a fix), with progress.
    T10: re-send one record."""

    def __init__(self, store: Store, ingest: IngestService, clock: Clock | None = None) -> None:
        self.store = store
        self.ingest = ingest
        self.clock = clock or SystemClock()

    def start(self, tenant: Tenant, request: SyncRequest) -> SyncProgress:
        sync_id = "s_" + secrets.token_hex(8)
        started_at = iso(self.clock.now())
        queued = 0
        for kind in request.kinds:
            for record in all_records(self.store, tenant.tenant_id, kind):
                if record.state != "synced" and self.resend(record) is not None:
                    queued += 1
        run = {"started_at": started_at, "kinds": list(request.kinds), "queued": queued}
        self.store.records.save_sync_run(tenant.tenant_id, sync_id, run)
        return self.progress(tenant, sync_id)

    def progress(self, tenant: Tenant, sync_id: str) -> SyncProgress:
        run = self.store.records.get_sync_run(tenant.tenant_id, sync_id)
        if run is None:
            raise NotFound(f"No sync {sync_id!r}.")
        by_kind: dict[str, dict[str, int]] = {}
        for kind in run["kinds"]:
            counts = {"done": 0, "failed": 0, "waiting": 0, "remaining": 0}
            for record in all_records(self.store, tenant.tenant_id, kind):
                bucket = {"synced": "done", "failed": "failed", "blocked": "failed", "waiting": "waiting"}
                counts[bucket.get(record.state, "remaining")] += 1
            by_kind[kind] = counts
        totals = {k: sum(c[k] for c in by_kind.values()) for k in ("done", "failed", "waiting", "remaining")}
        return SyncProgress(
            sync_id=sync_id, started_at=run["started_at"], queued=run["queued"], by_kind=by_kind, **totals
        )

    def resync(self, tenant: Tenant, kind: str, source_id: str) -> SyncRecord:
        record = self.ingest.get(tenant, kind, source_id)
        return self.resend(record) or record

    def resend(self, record: SyncRecord) -> SyncRecord | None:
        """Route and queue ``record`` again under a new transfer id; None when no QuickBooks is connected."""
        target = self.ingest.router.target(record.tenant_id, record.payload.get("organization_id"))
        if target is None:
            return None
        transfer_id = "x_" + secrets.token_hex(10)
        now = iso(self.clock.now())
        updated = self.store.records.save(
            replace(
                record,
                state="pending",
                target=target,
                transfer_id=transfer_id,
                reason=None,
                updated_at=now,
                synced_hash=None if record.state != "synced" else record.synced_hash,
            )
        )
        self.store.records.log(
            TransferRecord(
                record.tenant_id,
                transfer_id,
                record.kind,
                record.source_id,
                "queued",
                now,
                target=target,
                message="re-sent",
            )
        )
        self.ingest.enqueue(updated)
        return updated
