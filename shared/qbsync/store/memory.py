"""In-memory fakes of the storage ports, for unit tests. ``tests/contract`` holds them to the DynamoDB behaviour:
same errors, same ordering, same cursor format, same JSON round trip of free-form dicts, same key validation.

Every operation holds one lock, so the fakes are safe to share between threads (and conditional writes are atomic
as they are in DynamoDB). Records are copied in and out: mutating a returned object never changes the store.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

from qbsync.errors import AlreadyExists, BadRequest, ConcurrentModification, NotFound
from qbsync.store import keys
from qbsync.store.documents import (
    connector_doc,
    connector_from_doc,
    connector_owner,
    from_doc,
    parse_connector_owner,
    to_doc,
)
from qbsync.store.ports import (
    UNFINISHED,
    ApiKey,
    Connector,
    Job,
    MappingSet,
    MatchEntry,
    Page,
    QboConnection,
    RecordRef,
    ScheduleRun,
    SyncRecord,
    Tenant,
    Ticket,
    TransferRecord,
)

MAX_PAGE_SIZE = 1000


def _roundtrip(value: dict[str, Any]) -> dict[str, Any]:
    """What the DynamoDB adapter does to free-form dicts (stored as JSON strings)."""
    return cast("dict[str, Any]", json.loads(json.dumps(value, separators=(",", ":"), sort_keys=True)))


def _copy_tenant(tenant: Tenant) -> Tenant:
    return replace(tenant, settings=_roundtrip(tenant.settings))


def _copy_run(run: ScheduleRun) -> ScheduleRun:
    return replace(run, last_outcome=_roundtrip(run.last_outcome))


class _Tables:
    """The shared state of one fake "table" (all repositories of a MemoryStore see the same data)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tenants: dict[str, Tenant] = {}  # by PK
        self.api_keys: dict[str, ApiKey] = {}  # by PK
        self.schedule_runs: dict[str, ScheduleRun] = {}  # by PK
        self.claims: dict[str, str] = {}  # PK -> owner
        self.connectors: dict[tuple[str, str], tuple[str, int]] = {}  # (PK, SK) -> (doc, version)
        self.jobs: dict[str, dict[int, tuple[str, int]]] = {}  # connector -> seq -> (doc, version)
        self.job_counters: dict[str, tuple[int, int]] = {}  # connector -> (last seq, low water)
        self.job_refs: dict[tuple[str, str], int] = {}  # (connector, source_ref) -> seq
        self.tickets: dict[str, tuple[str, int]] = {}  # hash -> (doc, version)
        self.org_routes: dict[tuple[str, str], str] = {}  # (PK, SK) -> connector id
        self.qbo: dict[str, tuple[str, int]] = {}  # tenant -> (doc, version)
        self.oauth_states: dict[str, tuple[str, int]] = {}  # state hash -> (tenant, expires_at)
        self.records: dict[tuple[str, str, str], tuple[str, int]] = {}  # (tenant, kind, id) -> (doc, version)
        self.transfers: dict[str, list[tuple[str, str]]] = {}  # tenant -> [(sort key, json)]
        self.sync_runs: dict[tuple[str, str], str] = {}  # (tenant, sync id) -> json
        self.matches: dict[str, dict[tuple[str, str, str, str], MatchEntry]] = {}  # scope -> entries
        self.match_status: dict[str, str] = {}  # scope -> json
        self.waits: dict[tuple[str, RecordRef], dict[RecordRef, None]] = {}  # (tenant, dependency) -> waiters
        self.webhook_events: dict[str, int] = {}  # event hash -> expires_at
        self.reconcile: dict[tuple[str, str], str] = {}  # (tenant, target) -> json
        self.mappings: dict[tuple[str, str], str] = {}  # (tenant, kind) -> json


class MemoryTenantRepository:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def create(self, tenant: Tenant, api_key: ApiKey) -> None:
        if api_key.tenant_id != tenant.tenant_id:
            raise ValueError("api_key.tenant_id must equal tenant.tenant_id")
        tenant_pk = keys.tenant_pk(tenant.tenant_id)
        key_pk = keys.apikey_pk(api_key.key_id)
        keys.tenant_gsi1sk(tenant.created_at, tenant.tenant_id)  # same validation as the DynamoDB item
        stored = _copy_tenant(tenant)
        with self._t.lock:
            if tenant_pk in self._t.tenants:
                raise AlreadyExists(f"Tenant {tenant.tenant_id!r} already exists")
            if key_pk in self._t.api_keys:
                raise AlreadyExists("API key id already exists")
            self._t.tenants[tenant_pk] = stored
            self._t.api_keys[key_pk] = replace(api_key)

    def get(self, tenant_id: str) -> Tenant | None:
        pk = keys.tenant_pk(tenant_id)
        with self._t.lock:
            found = self._t.tenants.get(pk)
            return None if found is None else _copy_tenant(found)

    def list(self, *, limit: int = 50, cursor: str | None = None) -> Page[Tenant]:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise BadRequest(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        after = keys.decode_cursor(cursor)["GSI1SK"] if cursor else None
        with self._t.lock:
            ordered = sorted(
                ((keys.tenant_gsi1sk(t.created_at, t.tenant_id), t) for t in self._t.tenants.values()),
                key=lambda pair: pair[0],
            )
            found = [_copy_tenant(t) for sk, t in ordered if after is None or sk > after][: limit + 1]
        items = found[:limit]
        next_cursor = None
        if len(found) > limit:
            last = items[-1]
            next_cursor = keys.encode_cursor(keys.tenant_index_key(last.tenant_id, last.created_at))
        return Page(items=items, cursor=next_cursor)

    def update(self, tenant: Tenant) -> Tenant:
        pk = keys.tenant_pk(tenant.tenant_id)
        with self._t.lock:
            stored = self._t.tenants.get(pk)
            if stored is None:
                raise NotFound(f"Tenant {tenant.tenant_id!r} not found")
            if stored.version != tenant.version:
                raise ConcurrentModification(f"Tenant {tenant.tenant_id!r} was modified by someone else")
            saved = replace(
                stored,
                name=tenant.name,
                status=tenant.status,
                settings=_roundtrip(tenant.settings),
                updated_at=tenant.updated_at,
                version=tenant.version + 1,
            )
            self._t.tenants[pk] = saved
            return _copy_tenant(saved)

    def add_api_key(self, api_key: ApiKey) -> None:
        tenant_pk = keys.tenant_pk(api_key.tenant_id)
        key_pk = keys.apikey_pk(api_key.key_id)
        with self._t.lock:
            if tenant_pk not in self._t.tenants:
                raise NotFound(f"Tenant {api_key.tenant_id!r} not found")
            if key_pk in self._t.api_keys:
                raise AlreadyExists("API key id already exists")
            self._t.api_keys[key_pk] = replace(api_key)

    def get_api_key(self, key_id: str) -> ApiKey | None:
        pk = keys.apikey_pk(key_id)
        with self._t.lock:
            found = self._t.api_keys.get(pk)
            return None if found is None else replace(found)

    def revoke_api_key(self, key_id: str) -> None:
        pk = keys.apikey_pk(key_id)
        with self._t.lock:
            found = self._t.api_keys.get(pk)
            if found is None:
                raise NotFound("API key not found")
            self._t.api_keys[pk] = replace(found, revoked=True)


class MemoryScheduleRunRepository:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def get(self, name: str) -> ScheduleRun | None:
        pk = keys.schedule_pk(name)
        with self._t.lock:
            found = self._t.schedule_runs.get(pk)
            return None if found is None else _copy_run(found)

    def record_start(self, name: str, started_at: str) -> ScheduleRun:
        pk = keys.schedule_pk(name)
        with self._t.lock:
            found = self._t.schedule_runs.get(pk)
            if found is None:
                run = ScheduleRun(name=name, runs=1, last_started_at=started_at, last_finished_at=None, version=1)
            else:
                run = replace(found, runs=found.runs + 1, last_started_at=started_at, version=found.version + 1)
            self._t.schedule_runs[pk] = run
            return _copy_run(run)

    def record_finish(self, name: str, finished_at: str, outcome: dict[str, Any]) -> None:
        pk = keys.schedule_pk(name)
        stored_outcome = _roundtrip(outcome)
        with self._t.lock:
            found = self._t.schedule_runs.get(pk)
            if found is None:
                raise NotFound(f"Schedule run {name!r} was never started")
            self._t.schedule_runs[pk] = replace(
                found, last_finished_at=finished_at, last_outcome=stored_outcome, version=found.version + 1
            )


class MemoryUniqueClaims:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def claim(self, scope: str, value: str, owner: str) -> bool:
        pk = keys.claim_pk(scope, value)
        with self._t.lock:
            current = self._t.claims.get(pk)
            if current is not None and current != owner:
                return False
            self._t.claims[pk] = owner
            return True

    def release(self, scope: str, value: str, owner: str) -> None:
        pk = keys.claim_pk(scope, value)
        with self._t.lock:
            if self._t.claims.get(pk) == owner:
                del self._t.claims[pk]

    def owner_of(self, scope: str, value: str) -> str | None:
        pk = keys.claim_pk(scope, value)
        with self._t.lock:
            return self._t.claims.get(pk)


class MemoryConnectorRepository:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def create(self, connector: Connector) -> Connector:
        pk = keys.connector_key(connector.tenant_id, connector.connector_id)
        claim = keys.username_claim_key(connector.username)["PK"]
        default = keys.default_connector_key(connector.tenant_id)["PK"]
        with self._t.lock:
            if (pk["PK"], pk["SK"]) in self._t.connectors:
                raise AlreadyExists(f"Connector {connector.connector_id!r} already exists")
            if claim in self._t.claims:
                raise AlreadyExists(f"The username {connector.username!r} is already in use")
            is_default = default not in self._t.claims
            stored = replace(connector, is_default=is_default, version=1)
            self._t.connectors[(pk["PK"], pk["SK"])] = (connector_doc(stored), 1)
            self._t.claims[claim] = connector_owner(stored)
            if is_default:
                self._t.claims[default] = stored.connector_id
            return connector_from_doc(connector_doc(stored), 1)

    def get(self, tenant_id: str, connector_id: str) -> Connector | None:
        key = keys.connector_key(tenant_id, connector_id)
        with self._t.lock:
            found = self._t.connectors.get((key["PK"], key["SK"]))
        return None if found is None else connector_from_doc(*found)

    def find_by_username(self, username: str) -> Connector | None:
        with self._t.lock:
            owner = self._t.claims.get(keys.username_claim_key(username)["PK"])
        return None if owner is None else self.get(*parse_connector_owner(owner))

    def list(self, tenant_id: str) -> list[Connector]:
        pk = keys.tenant_pk(tenant_id)
        with self._t.lock:
            found = [(sk, v) for (p, sk), v in self._t.connectors.items() if p == pk]
        return sorted((connector_from_doc(*v) for _, v in found), key=lambda c: (c.created_at, c.connector_id))

    def update(self, connector: Connector) -> Connector:
        key = keys.connector_key(connector.tenant_id, connector.connector_id)
        with self._t.lock:
            found = self._t.connectors.get((key["PK"], key["SK"]))
            if found is None:
                raise NotFound(f"Connector {connector.connector_id!r} not found")
            current = connector_from_doc(*found)
            if current.version != connector.version:
                raise ConcurrentModification(f"Connector {connector.connector_id!r} was modified by someone else")
            stored = replace(connector, username=current.username, is_default=current.is_default)
            self._t.connectors[(key["PK"], key["SK"])] = (connector_doc(stored), current.version + 1)
            return connector_from_doc(connector_doc(stored), current.version + 1)

    def map_organization(self, tenant_id: str, organization_id: str, connector_id: str | None) -> None:
        key = keys.organization_key(tenant_id, organization_id)
        with self._t.lock:
            if connector_id is None:
                self._t.org_routes.pop((key["PK"], key["SK"]), None)
            else:
                self._t.org_routes[(key["PK"], key["SK"])] = connector_id

    def organization_connector(self, tenant_id: str, organization_id: str) -> str | None:
        key = keys.organization_key(tenant_id, organization_id)
        with self._t.lock:
            return self._t.org_routes.get((key["PK"], key["SK"]))


class MemoryJobQueue:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def enqueue(self, job: Job) -> Job:
        with self._t.lock:
            if job.source_ref:
                seq = self._t.job_refs.get((job.connector_id, job.source_ref))
                existing = self.get(job.connector_id, seq) if seq is not None else None
                if existing is not None and existing.status not in ("error", "blocked"):
                    return existing
            last, low = self._t.job_counters.get(job.connector_id, (0, 0))
            stored = replace(job, seq=last + 1, version=1)
            keys.job_key(stored.connector_id, stored.seq)  # same validation as the DynamoDB item
            self._t.job_counters[job.connector_id] = (last + 1, low)
            self._t.jobs.setdefault(job.connector_id, {})[stored.seq] = (to_doc(stored), 1)
            if job.source_ref:
                keys.job_ref_key(job.connector_id, job.source_ref)
                self._t.job_refs[(job.connector_id, job.source_ref)] = stored.seq
            return from_doc(Job, to_doc(stored), 1)

    def get(self, connector_id: str, seq: int) -> Job | None:
        with self._t.lock:
            found = self._t.jobs.get(connector_id, {}).get(seq)
        return None if found is None else from_doc(Job, *found)

    def unfinished(self, connector_id: str, limit: int) -> list[Job]:
        with self._t.lock:
            low = self._t.job_counters.get(connector_id, (0, 0))[1]
            rows = sorted(self._t.jobs.get(connector_id, {}).items())
        jobs = [from_doc(Job, *row) for seq, row in rows if seq >= low]
        return [job for job in jobs if job.status in UNFINISHED][:limit]

    def history(self, connector_id: str, *, after_seq: int = 0, limit: int = 100) -> list[Job]:
        with self._t.lock:
            rows = sorted(self._t.jobs.get(connector_id, {}).items())
        return [from_doc(Job, *row) for seq, row in rows if seq > after_seq][:limit]

    def save(self, job: Job) -> Job:
        with self._t.lock:
            found = self._t.jobs.get(job.connector_id, {}).get(job.seq)
            if found is None:
                raise NotFound(f"Job {job.connector_id}:{job.seq} not found")
            if found[1] != job.version:
                raise ConcurrentModification(f"Job {job.connector_id}:{job.seq} was modified by someone else")
            self._t.jobs[job.connector_id][job.seq] = (to_doc(job), job.version + 1)
            return from_doc(Job, to_doc(job), job.version + 1)

    def advance_low_water(self, connector_id: str, seq: int) -> None:
        with self._t.lock:
            last, low = self._t.job_counters.get(connector_id, (0, 0))
            self._t.job_counters[connector_id] = (last, max(low, seq))


class MemoryTicketRepository:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def create(self, ticket: Ticket) -> None:
        with self._t.lock:
            if ticket.ticket_hash in self._t.tickets:
                raise AlreadyExists("Ticket already exists")
            self._t.tickets[ticket.ticket_hash] = (to_doc(ticket), 1)

    def get(self, ticket_hash: str) -> Ticket | None:
        with self._t.lock:
            found = self._t.tickets.get(ticket_hash)
        return None if found is None else from_doc(Ticket, *found)

    def save(self, ticket: Ticket) -> Ticket:
        with self._t.lock:
            found = self._t.tickets.get(ticket.ticket_hash)
            if found is None:
                raise NotFound("Ticket not found")
            if found[1] != ticket.version:
                raise ConcurrentModification("Ticket was modified by someone else")
            self._t.tickets[ticket.ticket_hash] = (to_doc(ticket), ticket.version + 1)
            return from_doc(Ticket, to_doc(ticket), ticket.version + 1)


class MemoryQboConnections:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def get(self, tenant_id: str) -> QboConnection | None:
        with self._t.lock:
            found = self._t.qbo.get(tenant_id)
        return None if found is None else from_doc(QboConnection, *found)

    def create(self, connection: QboConnection) -> QboConnection:
        with self._t.lock:
            if connection.tenant_id in self._t.qbo:
                raise AlreadyExists(f"Tenant {connection.tenant_id!r} already has a QuickBooks Online connection")
            self._t.qbo[connection.tenant_id] = (to_doc(connection), 1)
        return replace(connection, version=1)

    def save(self, connection: QboConnection) -> QboConnection:
        with self._t.lock:
            found = self._t.qbo.get(connection.tenant_id)
            if found is None:
                raise NotFound("QuickBooks Online connection not found")
            if found[1] != connection.version:
                raise ConcurrentModification("The QuickBooks Online connection was modified by someone else")
            self._t.qbo[connection.tenant_id] = (to_doc(connection), connection.version + 1)
        return replace(connection, version=connection.version + 1)

    def list_all(self, *, limit: int = 100, cursor: str | None = None) -> Page[QboConnection]:
        with self._t.lock:
            rows = sorted(self._t.qbo.items())
        after = keys.decode_cursor(cursor)["GSI1SK"] if cursor else ""
        rows = [row for row in rows if row[0] > after]
        page = [from_doc(QboConnection, *doc) for _, doc in rows[:limit]]
        more = len(rows) > limit
        next_cursor = keys.encode_cursor(keys.qbo_connection_index_key(page[-1].tenant_id)) if more and page else None
        return Page(items=page, cursor=next_cursor)

    def create_state(self, state_hash: str, tenant_id: str, expires_at: int) -> None:
        with self._t.lock:
            if state_hash in self._t.oauth_states:
                raise AlreadyExists("OAuth state already exists")
            self._t.oauth_states[state_hash] = (tenant_id, expires_at)

    def consume_state(self, state_hash: str, now: int) -> str | None:
        with self._t.lock:
            found = self._t.oauth_states.pop(state_hash, None)
        if found is None or found[1] <= now:
            return None
        return found[0]


class MemorySyncRecords:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def add_waits(self, tenant_id: str, waiter: RecordRef, dependencies: Sequence[RecordRef]) -> None:
        with self._t.lock:
            for dependency in dependencies:
                keys.wait_key(tenant_id, dependency, waiter)
                self._t.waits.setdefault((tenant_id, dependency), {})[waiter] = None

    def waiters(self, tenant_id: str, dependency: RecordRef) -> list[RecordRef]:
        with self._t.lock:
            return list(self._t.waits.get((tenant_id, dependency), {}))

    def remove_waits(self, tenant_id: str, dependency: RecordRef, waiters: Sequence[RecordRef]) -> None:
        with self._t.lock:
            found = self._t.waits.get((tenant_id, dependency), {})
            for waiter in waiters:
                found.pop(waiter, None)
            if not found:
                self._t.waits.pop((tenant_id, dependency), None)

    def get(self, tenant_id: str, kind: str, source_id: str) -> SyncRecord | None:
        keys.record_key(tenant_id, kind, source_id)
        with self._t.lock:
            found = self._t.records.get((tenant_id, kind, source_id))
        return None if found is None else from_doc(SyncRecord, *found)

    def create(self, record: SyncRecord) -> SyncRecord:
        keys.record_key(record.tenant_id, record.kind, record.source_id)
        key = (record.tenant_id, record.kind, record.source_id)
        with self._t.lock:
            if key in self._t.records:
                raise AlreadyExists(f"{record.kind} {record.source_id!r} already exists")
            self._t.records[key] = (to_doc(record), 1)
        return replace(record, version=1)

    def save(self, record: SyncRecord) -> SyncRecord:
        key = (record.tenant_id, record.kind, record.source_id)
        with self._t.lock:
            found = self._t.records.get(key)
            if found is None:
                raise NotFound(f"{record.kind} {record.source_id!r} not found")
            if found[1] != record.version:
                raise ConcurrentModification(f"{record.kind} {record.source_id!r} was modified by someone else")
            self._t.records[key] = (to_doc(record), record.version + 1)
        return replace(record, version=record.version + 1)

    def list(
        self, tenant_id: str, kind: str, *, state: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[SyncRecord]:
        with self._t.lock:
            rows = sorted((k[2], v) for k, v in self._t.records.items() if k[0] == tenant_id and k[1] == kind)
        after = keys.decode_cursor(cursor, ("PK", "SK"))["SK"] if cursor else ""
        found = [
            r
            for source_id, doc in rows
            if keys.record_key(tenant_id, kind, source_id)["SK"] > after
            for r in [from_doc(SyncRecord, *doc)]
            if state is None or r.state == state
        ]
        page = found[:limit]
        more = len(found) > limit
        next_cursor = (
            keys.encode_cursor(keys.record_key(tenant_id, kind, page[-1].source_id)) if more and page else None
        )
        return Page(items=page, cursor=next_cursor)

    def get_many(self, tenant_id: str, kind: str, source_ids: Sequence[str]) -> dict[str, SyncRecord]:
        found = {source_id: self.get(tenant_id, kind, source_id) for source_id in source_ids}
        return {k: v for k, v in found.items() if v is not None}

    def log_many(self, transfers: Sequence[TransferRecord]) -> None:
        for transfer in transfers:
            self.log(transfer)

    def log(self, transfer: TransferRecord) -> None:
        sk = keys.transfer_key(transfer.tenant_id, transfer.at, transfer.transfer_id)["SK"]
        with self._t.lock:
            self._t.transfers.setdefault(transfer.tenant_id, []).append((sk, json.dumps(dataclasses.asdict(transfer))))

    def save_sync_run(self, tenant_id: str, sync_id: str, run: dict[str, Any]) -> None:
        keys.sync_run_key(tenant_id, sync_id)
        with self._t.lock:
            self._t.sync_runs[(tenant_id, sync_id)] = json.dumps(run)

    def get_sync_run(self, tenant_id: str, sync_id: str) -> dict[str, Any] | None:
        with self._t.lock:
            found = self._t.sync_runs.get((tenant_id, sync_id))
        return None if found is None else cast("dict[str, Any]", json.loads(found))

    def history(self, tenant_id: str, *, limit: int = 100, cursor: str | None = None) -> Page[TransferRecord]:
        with self._t.lock:
            rows = sorted(self._t.transfers.get(tenant_id, []), reverse=True)
        before = keys.decode_cursor(cursor, ("PK", "SK"))["SK"] if cursor else None
        rows = [r for r in rows if before is None or r[0] < before]
        page = [TransferRecord(**json.loads(doc)) for _, doc in rows[:limit]]
        more = len(rows) > limit
        last_sk = rows[limit - 1][0] if more else None
        next_cursor = keys.encode_cursor({"PK": keys.tenant_pk(tenant_id), "SK": last_sk}) if last_sk else None
        return Page(items=page, cursor=next_cursor)


class MemoryMatchIndex:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def put_many(self, scope: str, entries: Sequence[MatchEntry]) -> None:
        with self._t.lock:
            index = self._t.matches.setdefault(scope, {})
            for e in entries:
                keys.match_key(scope, e.kind, e.field, e.key, e.qb_id)
                index[(e.kind, e.field, e.key, e.qb_id)] = e

    def find(self, scope: str, kind: str, field: str, key: str) -> list[MatchEntry]:
        with self._t.lock:
            index = self._t.matches.get(scope, {})
            return [e for (k, f, v, _), e in sorted(index.items()) if (k, f, v) == (kind, field, key)]

    def status(self, scope: str) -> dict[str, Any] | None:
        with self._t.lock:
            found = self._t.match_status.get(scope)
        return None if found is None else cast("dict[str, Any]", json.loads(found))

    def save_status(self, scope: str, status: dict[str, Any], *, create_only: bool = False) -> bool:
        with self._t.lock:
            if create_only and scope in self._t.match_status:
                return False
            self._t.match_status[scope] = json.dumps(status)
        return True


class MemoryReconcileState:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def claim_event(self, event_hash: str, *, now: int, expires_at: int) -> bool:
        with self._t.lock:
            current = self._t.webhook_events.get(event_hash)
            if current is not None and current > now:
                return False
            self._t.webhook_events[event_hash] = expires_at
            return True

    def release_event(self, event_hash: str) -> None:
        with self._t.lock:
            self._t.webhook_events.pop(event_hash, None)

    def get(self, tenant_id: str, target: str) -> dict[str, Any] | None:
        with self._t.lock:
            raw = self._t.reconcile.get((tenant_id, target))
        return None if raw is None else cast("dict[str, Any]", json.loads(raw))

    def put(self, tenant_id: str, target: str, state: dict[str, Any]) -> None:
        keys.reconcile_state_key(tenant_id, target)  # the same argument checks as the DynamoDB adapter
        with self._t.lock:
            self._t.reconcile[(tenant_id, target)] = json.dumps(state, sort_keys=True)


class MemoryMappings:
    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def get(self, tenant_id: str, kind: str) -> MappingSet | None:
        with self._t.lock:
            raw = self._t.mappings.get((tenant_id, kind))
        return None if raw is None else MappingSet(**json.loads(raw))

    def get_all(self, tenant_id: str) -> dict[str, MappingSet]:
        with self._t.lock:
            found = {kind: raw for (tenant, kind), raw in self._t.mappings.items() if tenant == tenant_id}
        return {kind: MappingSet(**json.loads(raw)) for kind, raw in sorted(found.items())}

    def put(self, tenant_id: str, mappings: MappingSet) -> None:
        keys.mapping_key(tenant_id, mappings.kind)  # the same argument checks as the DynamoDB adapter
        with self._t.lock:
            self._t.mappings[(tenant_id, mappings.kind)] = json.dumps(dataclasses.asdict(mappings), sort_keys=True)


class MemoryStore:
    """An in-memory :class:`~qbsync.store.ports.Store`; each instance is an empty, independent table."""

    def __init__(self) -> None:
        self._tables = _Tables()
        self._tenants = MemoryTenantRepository(self._tables)
        self._schedule_runs = MemoryScheduleRunRepository(self._tables)
        self._claims = MemoryUniqueClaims(self._tables)
        self._connectors = MemoryConnectorRepository(self._tables)
        self._jobs = MemoryJobQueue(self._tables)
        self._tickets = MemoryTicketRepository(self._tables)
        self._qbo = MemoryQboConnections(self._tables)
        self._records = MemorySyncRecords(self._tables)
        self._matches = MemoryMatchIndex(self._tables)
        self._reconcile = MemoryReconcileState(self._tables)
        self._mappings = MemoryMappings(self._tables)

    @property
    def matches(self) -> MemoryMatchIndex:
        return self._matches

    @property
    def reconcile(self) -> MemoryReconcileState:
        return self._reconcile

    @property
    def mappings(self) -> MemoryMappings:
        return self._mappings

    @property
    def records(self) -> MemorySyncRecords:
        return self._records

    @property
    def qbo(self) -> MemoryQboConnections:
        return self._qbo

    @property
    def jobs(self) -> MemoryJobQueue:
        return self._jobs

    @property
    def tickets(self) -> MemoryTicketRepository:
        return self._tickets

    @property
    def connectors(self) -> MemoryConnectorRepository:
        return self._connectors

    @property
    def tenants(self) -> MemoryTenantRepository:
        return self._tenants

    @property
    def schedule_runs(self) -> MemoryScheduleRunRepository:
        return self._schedule_runs

    @property
    def claims(self) -> MemoryUniqueClaims:
        return self._claims

    def clear(self) -> None:
        with self._tables.lock:
            for table in (self._tables.tenants, self._tables.api_keys, self._tables.schedule_runs, self._tables.claims):
                table.clear()
            for other in (
                self._tables.connectors,
                self._tables.jobs,
                self._tables.job_counters,
                self._tables.tickets,
                self._tables.org_routes,
                self._tables.qbo,
                self._tables.oauth_states,
                self._tables.webhook_events,
                self._tables.reconcile,
                self._tables.mappings,
            ):
                other.clear()
