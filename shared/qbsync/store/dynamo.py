"""DynamoDB adapters for the storage ports (the single table described in :mod:`qbsync.store.keys`).

Uses the low-level client so every request is explicit and typed. botocore ``ClientError``s that mean something to
the domain (failed conditions, cancelled transactions) become :mod:`qbsync.errors` here; anything else (throttling
after retries, missing table, bad credentials) propagates unchanged.

Free-form dicts (tenant ``settings``, schedule ``last_outcome``) are stored as JSON strings, not DynamoDB maps:
boto3 refuses Python floats (they would need a Decimal round trip that turns every number, ints included, into
``Decimal`` on the way back), empty strings/sets have edge cases, and nothing ever queries inside these dicts.
A JSON string round-trips exactly what the caller stored, and the memory adapter does the same round trip.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from qbsync import aws
from qbsync.errors import AlreadyExists, BadRequest, ConcurrentModification, NotFound, QbsyncError
from qbsync.settings import Settings, get_settings
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
    TenantStatus,
    Ticket,
    TransferRecord,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

    Item = dict[str, AttributeValueTypeDef]

MAX_PAGE_SIZE = 1000
FAILED_JOB = ("error", "blocked")
ORPHAN_REF_SECONDS = 120  # a job reference whose job is still unwritten after this long lost its writer
WAIT_TTL_SECONDS = 90 * 86400  # a wait edge outlives any sensible wait; TTL removes forgotten ones
_CONDITION_FAILED = "ConditionalCheckFailedException"
_TXN_CANCELLED = "TransactionCanceledException"


# --- attribute helpers ---------------------------------------------------------------------------------------------


def _s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def _n(value: int) -> AttributeValueTypeDef:
    return {"N": str(value)}


def _key(key: keys.KeyDict) -> Item:
    return {name: _s(value) for name, value in key.items()}


def _str(item: Item, name: str) -> str:
    return item[name]["S"]


def _opt_str(item: Item, name: str) -> str | None:
    value = item.get(name)
    return None if value is None else value["S"]


def _int(item: Item, name: str, default: int = 0) -> int:
    value = item.get(name)
    return default if value is None else int(value["N"])


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _dict(item: Item, name: str) -> dict[str, Any]:
    raw = _opt_str(item, name)
    loaded = json.loads(raw) if raw else {}
    return cast("dict[str, Any]", loaded) if isinstance(loaded, dict) else {}


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _cancellation_codes(exc: ClientError) -> list[str]:
    """Per-action reason codes of a cancelled transaction (``"None"`` for actions that were fine)."""
    reasons = cast("list[dict[str, Any]]", exc.response.get("CancellationReasons") or [])
    return [str(reason.get("Code") or "None") for reason in reasons]


def _transact(db: Any, actions: list[TransactWriteItemTypeDef], *, first_failed: QbsyncError, conflict: str) -> None:
    """Run a tenant-then-API-key transaction, mapping a cancellation to the domain error it means: the first
    action's condition → ``first_failed``; the API key's → ``AlreadyExists``; a concurrent transaction →
    ``ConcurrentModification``."""
    try:
        db.transact_write_items(TransactItems=actions)
    except ClientError as exc:
        if _error_code(exc) != _TXN_CANCELLED:
            raise
        codes = _cancellation_codes(exc)
        if codes[:1] == ["ConditionalCheckFailed"]:
            raise first_failed from exc
        if "ConditionalCheckFailed" in codes:
            raise AlreadyExists("API key id already exists") from exc
        if "TransactionConflict" in codes:
            raise ConcurrentModification(conflict) from exc
        raise


# --- records <-> items ---------------------------------------------------------------------------------------------


def _tenant_item(tenant: Tenant) -> Item:
    item = _key(keys.tenant_key(tenant.tenant_id))
    item.update(
        {
            "GSI1PK": _s(keys.TENANTS_GSI1PK),
            "GSI1SK": _s(keys.tenant_gsi1sk(tenant.created_at, tenant.tenant_id)),
            "entity": _s(keys.ENTITY_TENANT),
            "tenant_id": _s(tenant.tenant_id),
            "name": _s(tenant.name),
            "status": _s(tenant.status),
            "settings": _s(_json(tenant.settings)),
            "created_at": _s(tenant.created_at),
            "updated_at": _s(tenant.updated_at),
            "version": _n(tenant.version),
        }
    )
    return item


def _tenant(item: Item) -> Tenant:
    return Tenant(
        tenant_id=_str(item, "tenant_id"),
        name=_str(item, "name"),
        status=cast("TenantStatus", _str(item, "status")),
        settings=_dict(item, "settings"),
        created_at=_str(item, "created_at"),
        updated_at=_str(item, "updated_at"),
        version=_int(item, "version", 1),
    )


def _apikey_item(api_key: ApiKey) -> Item:
    item = _key(keys.apikey_key(api_key.key_id))
    item.update(
        {
            "entity": _s(keys.ENTITY_APIKEY),
            "key_id": _s(api_key.key_id),
            "tenant_id": _s(api_key.tenant_id),
            "secret_hash": _s(api_key.secret_hash),
            "created_at": _s(api_key.created_at),
            "revoked": {"BOOL": api_key.revoked},
        }
    )
    return item


def _apikey(item: Item) -> ApiKey:
    return ApiKey(
        key_id=_str(item, "key_id"),
        tenant_id=_str(item, "tenant_id"),
        secret_hash=_str(item, "secret_hash"),
        created_at=_str(item, "created_at"),
        revoked=bool(item.get("revoked", {}).get("BOOL", False)),
    )


def _schedule_run(item: Item) -> ScheduleRun:
    return ScheduleRun(
        name=_str(item, "name"),
        runs=_int(item, "runs"),
        last_started_at=_str(item, "last_started_at"),
        last_finished_at=_opt_str(item, "last_finished_at"),
        last_outcome=_dict(item, "last_outcome"),
        version=_int(item, "version", 1),
    )


def _check_page_size(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise BadRequest(f"limit must be between 1 and {MAX_PAGE_SIZE}")


# --- adapters ------------------------------------------------------------------------------------------------------


class _DynamoBase:
    def __init__(self, settings: Settings, client: DynamoDBClient | None = None) -> None:
        self._settings = settings
        self._table = settings.table_name
        self._fixed_client = client

    @property
    def _db(self) -> DynamoDBClient:
        """Resolved per call (a dict lookup) so ``aws.reset_clients()`` is honoured by long-lived stores."""
        if self._fixed_client is not None:
            return self._fixed_client
        return cast("DynamoDBClient", aws.client("dynamodb", self._settings))

    def _get(self, key: keys.KeyDict) -> Item | None:
        response = self._db.get_item(TableName=self._table, Key=_key(key), ConsistentRead=True)
        return response.get("Item")

    def _batch_write(self, requests: Sequence[Any]) -> None:
        for start in range(0, len(requests), 25):  # BatchWriteItem takes at most 25 writes
            pending: builtins.list[Any] = builtins.list(requests[start : start + 25])
            for _ in range(50):  # unprocessed items (throttling) are retried, bounded
                response = self._db.batch_write_item(RequestItems={self._table: pending})
                pending = builtins.list(response.get("UnprocessedItems", {}).get(self._table, []))
                if not pending:
                    break


class DynamoTenantRepository(_DynamoBase):
    def create(self, tenant: Tenant, api_key: ApiKey) -> None:
        if api_key.tenant_id != tenant.tenant_id:
            raise ValueError("api_key.tenant_id must equal tenant.tenant_id")
        actions: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _tenant_item(tenant),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _apikey_item(api_key),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
        ]
        _transact(
            self._db,
            actions,
            first_failed=AlreadyExists(f"Tenant {tenant.tenant_id!r} already exists"),
            conflict="Tenant is being created concurrently",
        )

    def get(self, tenant_id: str) -> Tenant | None:
        item = self._get(keys.tenant_key(tenant_id))
        return None if item is None else _tenant(item)

    def list(self, *, limit: int = 50, cursor: str | None = None) -> Page[Tenant]:
        """Oldest first. GSI queries are eventually consistent: a tenant created a moment ago may be missing."""
        _check_page_size(limit)
        start: Item | None = _key(keys.decode_cursor(cursor)) if cursor else None
        found: list[Item] = []
        # Ask for one more than a page so the cursor is returned only when another item really exists (DynamoDB's
        # own LastEvaluatedKey may point past the last item); loop because a query may stop at 1 MB.
        while len(found) <= limit:
            params: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": keys.GSI1,
                "KeyConditionExpression": "GSI1PK = :pk",
                "ExpressionAttributeValues": {":pk": _s(keys.TENANTS_GSI1PK)},
                "ScanIndexForward": True,
                "Limit": limit + 1 - len(found),
            }
            if start is not None:
                params["ExclusiveStartKey"] = start
            response = self._db.query(**params)
            found.extend(response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if start is None:
                break
        tenants = [_tenant(item) for item in found[:limit]]
        next_cursor = None
        if len(found) > limit:
            last = tenants[-1]
            next_cursor = keys.encode_cursor(keys.tenant_index_key(last.tenant_id, last.created_at))
        return Page(items=tenants, cursor=next_cursor)

    def update(self, tenant: Tenant) -> Tenant:
        """Saves name, status, settings and updated_at (id and created_at never change)."""
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key=_key(keys.tenant_key(tenant.tenant_id)),
                UpdateExpression="SET #name = :name, #status = :status, #settings = :settings, "
                "#updated_at = :updated_at, #version = :next",
                ConditionExpression="attribute_exists(PK) AND #version = :expected",
                ExpressionAttributeNames={
                    "#name": "name",
                    "#status": "status",
                    "#settings": "settings",
                    "#updated_at": "updated_at",
                    "#version": "version",
                },
                ExpressionAttributeValues={
                    ":name": _s(tenant.name),
                    ":status": _s(tenant.status),
                    ":settings": _s(_json(tenant.settings)),
                    ":updated_at": _s(tenant.updated_at),
                    ":expected": _n(tenant.version),
                    ":next": _n(tenant.version + 1),
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _error_code(exc) != _CONDITION_FAILED:
                raise
            exists = "Item" in exc.response or self._get(keys.tenant_key(tenant.tenant_id)) is not None
            if exists:
                raise ConcurrentModification(f"Tenant {tenant.tenant_id!r} was modified by someone else") from exc
            raise NotFound(f"Tenant {tenant.tenant_id!r} not found") from exc
        return _tenant(response["Attributes"])

    def add_api_key(self, api_key: ApiKey) -> None:
        actions: list[TransactWriteItemTypeDef] = [
            {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": _key(keys.tenant_key(api_key.tenant_id)),
                    "ConditionExpression": "attribute_exists(PK)",
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _apikey_item(api_key),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
        ]
        _transact(
            self._db,
            actions,
            first_failed=NotFound(f"Tenant {api_key.tenant_id!r} not found"),
            conflict="API key is being written concurrently",
        )

    def get_api_key(self, key_id: str) -> ApiKey | None:
        item = self._get(keys.apikey_key(key_id))
        return None if item is None else _apikey(item)

    def revoke_api_key(self, key_id: str) -> None:
        """Idempotent; ``NotFound`` if the key does not exist."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_key(keys.apikey_key(key_id)),
                UpdateExpression="SET #revoked = :true",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeNames={"#revoked": "revoked"},
                ExpressionAttributeValues={":true": {"BOOL": True}},
            )
        except ClientError as exc:
            if _error_code(exc) == _CONDITION_FAILED:
                raise NotFound("API key not found") from exc
            raise


class DynamoScheduleRunRepository(_DynamoBase):
    def get(self, name: str) -> ScheduleRun | None:
        item = self._get(keys.schedule_key(name))
        return None if item is None else _schedule_run(item)

    def record_start(self, name: str, started_at: str) -> ScheduleRun:
        response = self._db.update_item(
            TableName=self._table,
            Key=_key(keys.schedule_key(name)),
            UpdateExpression="SET #entity = :entity, #name = :name, #started = :started ADD #runs :one, #version :one",
            ExpressionAttributeNames={
                "#entity": "entity",
                "#name": "name",
                "#started": "last_started_at",
                "#runs": "runs",
                "#version": "version",
            },
            ExpressionAttributeValues={
                ":entity": _s(keys.ENTITY_SCHEDULE),
                ":name": _s(name),
                ":started": _s(started_at),
                ":one": _n(1),
            },
            ReturnValues="ALL_NEW",
        )
        return _schedule_run(response["Attributes"])

    def record_finish(self, name: str, finished_at: str, outcome: dict[str, Any]) -> None:
        """``NotFound`` if ``record_start`` never ran for ``name``."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_key(keys.schedule_key(name)),
                UpdateExpression="SET #finished = :finished, #outcome = :outcome ADD #version :one",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeNames={
                    "#finished": "last_finished_at",
                    "#outcome": "last_outcome",
                    "#version": "version",
                },
                ExpressionAttributeValues={
                    ":finished": _s(finished_at),
                    ":outcome": _s(_json(outcome)),
                    ":one": _n(1),
                },
            )
        except ClientError as exc:
            if _error_code(exc) == _CONDITION_FAILED:
                raise NotFound(f"Schedule run {name!r} was never started") from exc
            raise


class DynamoUniqueClaims(_DynamoBase):
    def claim(self, scope: str, value: str, owner: str) -> bool:
        item = _key(keys.claim_key(scope, value))
        item.update({"entity": _s(keys.ENTITY_CLAIM), "scope": _s(scope), "value": _s(value), "owner": _s(owner)})
        try:
            self._db.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(PK) OR #owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": _s(owner)},
            )
        except ClientError as exc:
            if _error_code(exc) == _CONDITION_FAILED:
                return False
            raise
        return True

    def release(self, scope: str, value: str, owner: str) -> None:
        """Idempotent; a no-op unless ``owner`` holds the claim."""
        try:
            self._db.delete_item(
                TableName=self._table,
                Key=_key(keys.claim_key(scope, value)),
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": _s(owner)},
            )
        except ClientError as exc:
            if _error_code(exc) != _CONDITION_FAILED:
                raise

    def owner_of(self, scope: str, value: str) -> str | None:
        item = self._get(keys.claim_key(scope, value))
        return None if item is None else _opt_str(item, "owner")


class _DynamoDocuments(_DynamoBase):
    """Items that are a JSON ``doc`` plus ``version``: conditional create, consistent get, optimistic save."""

    entity = ""

    def _put_new(self, key: keys.KeyDict, doc: str, what: str, extra: Item | None = None) -> None:
        item = _key(key)
        item.update({"entity": _s(self.entity), "doc": _s(doc), "version": _n(1), **(extra or {})})
        try:
            self._db.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(PK)")
        except ClientError as exc:
            if _error_code(exc) == _CONDITION_FAILED:
                raise AlreadyExists(f"{what} already exists") from exc
            raise

    def _get_doc(self, key: keys.KeyDict) -> tuple[str, int] | None:
        item = self._get(key)
        return None if item is None else (_str(item, "doc"), _int(item, "version"))

    def _save_doc(self, key: keys.KeyDict, doc: str, expected_version: int, what: str) -> None:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_key(key),
                UpdateExpression="SET #doc = :doc, #version = :next",
                ConditionExpression="#version = :expected",
                ExpressionAttributeNames={"#doc": "doc", "#version": "version"},
                ExpressionAttributeValues={
                    ":doc": _s(doc),
                    ":expected": _n(expected_version),
                    ":next": _n(expected_version + 1),
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _error_code(exc) != _CONDITION_FAILED:
                raise
            if "Item" in exc.response:
                raise ConcurrentModification(f"{what} was modified by someone else") from exc
            raise NotFound(f"{what} not found") from exc

    def _query_docs(self, pk: str, start_sk: str, end_sk: str, limit: int | None = None) -> list[tuple[str, int]]:
        """Consistent read of the docs whose SK lies in [start_sk, end_sk], in SK order."""
        found: list[tuple[str, int]] = []
        paginator = self._db.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="PK = :pk AND SK BETWEEN :start AND :end",
            ExpressionAttributeValues={":pk": _s(pk), ":start": _s(start_sk), ":end": _s(end_sk)},
            ConsistentRead=True,
        )
        for page in pages:
            found += [(_str(i, "doc"), _int(i, "version")) for i in page.get("Items", [])]
            if limit is not None and len(found) >= limit:
                return found[:limit]
        return found


class DynamoConnectorRepository(_DynamoDocuments):
    entity = keys.ENTITY_CONNECTOR

    def create(self, connector: Connector) -> Connector:
        # The first connector of a tenant claims the tenant's default pointer in the same transaction; when a
        # default already exists that condition fails and the connector is written again as non-default.
        for as_default in (True, False):
            stored = replace(connector, is_default=as_default, version=1)
            item = _key(keys.connector_key(stored.tenant_id, stored.connector_id))
            item.update({"entity": _s(keys.ENTITY_CONNECTOR), "doc": _s(connector_doc(stored)), "version": _n(1)})
            claim = _key(keys.username_claim_key(stored.username))
            claim.update(
                {
                    "entity": _s(keys.ENTITY_CLAIM),
                    "scope": _s(keys.USERNAME_SCOPE),
                    "owner": _s(connector_owner(stored)),
                }
            )
            actions: list[TransactWriteItemTypeDef] = [
                {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(PK)"}},
                {"Put": {"TableName": self._table, "Item": claim, "ConditionExpression": "attribute_not_exists(PK)"}},
            ]
            if as_default:
                pointer = _key(keys.default_connector_key(stored.tenant_id))
                pointer.update({"entity": _s("default_connector"), "connector_id": _s(stored.connector_id)})
                actions.append(
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": pointer,
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    }
                )
            try:
                self._db.transact_write_items(TransactItems=actions)
            except ClientError as exc:
                if _error_code(exc) != _TXN_CANCELLED:
                    raise
                codes = _cancellation_codes(exc)
                failed = [i for i, code in enumerate(codes) if code == "ConditionalCheckFailed"]
                if 0 in failed:
                    raise AlreadyExists(f"Connector {stored.connector_id!r} already exists") from exc
                if 1 in failed:
                    raise AlreadyExists(f"The username {stored.username!r} is already in use") from exc
                if failed == [2]:
                    continue
                if "TransactionConflict" in codes:
                    raise ConcurrentModification("Connector is being created concurrently") from exc
                raise
            return stored
        raise ConcurrentModification("Connector could not be created")  # pragma: no cover - loop always returns

    def get(self, tenant_id: str, connector_id: str) -> Connector | None:
        found = self._get_doc(keys.connector_key(tenant_id, connector_id))
        return None if found is None else connector_from_doc(*found)

    def find_by_username(self, username: str) -> Connector | None:
        claim = self._get(keys.username_claim_key(username))
        if claim is None:
            return None
        return self.get(*parse_connector_owner(_str(claim, "owner")))

    def list(self, tenant_id: str) -> list[Connector]:
        found: list[Connector] = []
        paginator = self._db.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={":pk": _s(keys.tenant_pk(tenant_id)), ":prefix": _s(keys.CONN_PREFIX)},
            ConsistentRead=True,
        ):
            found += [connector_from_doc(_str(i, "doc"), _int(i, "version")) for i in page.get("Items", [])]
        return sorted(found, key=lambda c: (c.created_at, c.connector_id))

    def update(self, connector: Connector) -> Connector:
        current = self.get(connector.tenant_id, connector.connector_id)
        if current is None:
            raise NotFound(f"Connector {connector.connector_id!r} not found")
        stored = replace(connector, username=current.username, is_default=current.is_default)
        key = keys.connector_key(connector.tenant_id, connector.connector_id)
        self._save_doc(key, connector_doc(stored), connector.version, f"Connector {connector.connector_id!r}")
        return replace(stored, version=connector.version + 1)

    def map_organization(self, tenant_id: str, organization_id: str, connector_id: str | None) -> None:
        key = _key(keys.organization_key(tenant_id, organization_id))
        if connector_id is None:
            self._db.delete_item(TableName=self._table, Key=key)
            return
        key.update({"entity": _s("organization_route"), "connector_id": _s(connector_id)})
        self._db.put_item(TableName=self._table, Item=key)

    def organization_connector(self, tenant_id: str, organization_id: str) -> str | None:
        item = self._get(keys.organization_key(tenant_id, organization_id))
        return None if item is None else _opt_str(item, "connector_id")


class DynamoJobQueue(_DynamoDocuments):
    entity = "job"

    def enqueue(self, job: Job) -> Job:
        ref = self._get(keys.job_ref_key(job.connector_id, job.source_ref)) if job.source_ref else None
        if ref is not None:
            existing = self.get(job.connector_id, _int(ref, "seq"))
            if existing is not None and existing.status not in FAILED_JOB:
                return existing
            if existing is None and _int(ref, "at") > time.time() - ORPHAN_REF_SECONDS:
                # Claimed a moment ago by an enqueue that has not written its job yet: never a second job.
                raise ConcurrentModification(f"a job for {job.source_ref!r} is being queued right now; try again")
        response = self._db.update_item(
            TableName=self._table,
            Key=_key(keys.job_sequence_key(job.connector_id)),
            UpdateExpression="ADD #next :one SET #entity = :entity",
            ExpressionAttributeNames={"#next": "next", "#entity": "entity"},
            ExpressionAttributeValues={":one": _n(1), ":entity": _s("job_sequence")},
            ReturnValues="UPDATED_NEW",
        )
        stored = replace(job, seq=int(response["Attributes"]["next"]["N"]), version=1)
        if job.source_ref and not self._claim_ref(stored, job.source_ref, None if ref is None else _int(ref, "seq")):
            winner = self._job_for_ref(job.connector_id, job.source_ref)  # a concurrent enqueue of the same work
            if winner is None:
                raise ConcurrentModification(f"a job for {job.source_ref!r} is being queued right now; try again")
            return winner
        self._put_new(keys.job_key(stored.connector_id, stored.seq), to_doc(stored), f"Job {stored.seq}")
        return stored

    def _claim_ref(self, job: Job, source_ref: str, seen: int | None) -> bool:
        """Point ``source_ref`` at ``job`` before the job is written (two plain writes, no transaction, which would
        cost twice as much): a new reference, or still the failed (or never written) job we saw. False if another
        enqueue of the same work claimed it first."""
        item = _key(keys.job_ref_key(job.connector_id, source_ref))
        item.update(
            {
                "entity": _s("job_ref"),
                "seq": _n(job.seq),
                "at": _n(int(time.time())),
                keys.TTL_ATTRIBUTE: _n(_ref_expiry()),
            }
        )
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(PK)"}
        if seen is not None:
            condition = {
                "ConditionExpression": "#seq = :seen",
                "ExpressionAttributeNames": {"#seq": "seq"},
                "ExpressionAttributeValues": {":seen": _n(seen)},
            }
        try:
            self._db.put_item(TableName=self._table, Item=item, **condition)
        except ClientError as exc:
            if _error_code(exc) != _CONDITION_FAILED:
                raise
            return False
        return True

    def _job_for_ref(self, connector_id: str, source_ref: str) -> Job | None:
        ref = self._get(keys.job_ref_key(connector_id, source_ref))
        return None if ref is None else self.get(connector_id, _int(ref, "seq"))

    def get(self, connector_id: str, seq: int) -> Job | None:
        found = self._get_doc(keys.job_key(connector_id, seq))
        return None if found is None else from_doc(Job, *found)

    def unfinished(self, connector_id: str, limit: int) -> list[Job]:
        counter = self._get(keys.job_sequence_key(connector_id))
        low = _int(counter, "low") if counter is not None else 0
        jobs: list[Job] = []
        start = max(low, 1)
        # Read forward in chunks until `limit` unfinished jobs are found or the queue ends.
        while len(jobs) < limit:
            chunk = self._query_docs(
                keys.connector_pk(connector_id), keys.job_sk(start), keys.job_sk(10**12 - 1), limit=max(limit, 100)
            )
            if not chunk:
                break
            batch = [from_doc(Job, *row) for row in chunk]
            jobs += [job for job in batch if job.status in UNFINISHED]
            start = batch[-1].seq + 1
        return jobs[:limit]

    def history(self, connector_id: str, *, after_seq: int = 0, limit: int = 100) -> list[Job]:
        rows = self._query_docs(
            keys.connector_pk(connector_id), keys.job_sk(after_seq + 1), keys.job_sk(10**12 - 1), limit=limit
        )
        return [from_doc(Job, *row) for row in rows]

    def save(self, job: Job) -> Job:
        self._save_doc(keys.job_key(job.connector_id, job.seq), to_doc(job), job.version, f"Job {job.seq}")
        return replace(job, version=job.version + 1)

    def advance_low_water(self, connector_id: str, seq: int) -> None:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_key(keys.job_sequence_key(connector_id)),
                UpdateExpression="SET #low = :seq",
                ConditionExpression="attribute_not_exists(#low) OR #low < :seq",
                ExpressionAttributeNames={"#low": "low"},
                ExpressionAttributeValues={":seq": _n(seq)},
            )
        except ClientError as exc:
            if _error_code(exc) != _CONDITION_FAILED:
                raise


class DynamoTicketRepository(_DynamoDocuments):
    entity = "ticket"

    def create(self, ticket: Ticket) -> None:
        self._put_new(
            keys.ticket_key(ticket.ticket_hash),
            to_doc(ticket),
            "Ticket",
            extra={keys.TTL_ATTRIBUTE: _n(ticket.expires_at + 86_400)},  # kept a day after it stops working
        )

    def get(self, ticket_hash: str) -> Ticket | None:
        found = self._get_doc(keys.ticket_key(ticket_hash))
        return None if found is None else from_doc(Ticket, *found)

    def save(self, ticket: Ticket) -> Ticket:
        self._save_doc(keys.ticket_key(ticket.ticket_hash), to_doc(ticket), ticket.version, "Ticket")
        return replace(ticket, version=ticket.version + 1)


class DynamoQboConnections(_DynamoDocuments):
    entity = "qbo_connection"

    def get(self, tenant_id: str) -> QboConnection | None:
        found = self._get_doc(keys.qbo_connection_key(tenant_id))
        return None if found is None else from_doc(QboConnection, *found)

    def create(self, connection: QboConnection) -> QboConnection:
        index = keys.qbo_connection_index_key(connection.tenant_id)
        self._put_new(
            keys.qbo_connection_key(connection.tenant_id),
            to_doc(connection),
            "QuickBooks Online connection",
            extra={"GSI1PK": _s(index["GSI1PK"]), "GSI1SK": _s(index["GSI1SK"])},
        )
        return replace(connection, version=1)

    def save(self, connection: QboConnection) -> QboConnection:
        self._save_doc(
            keys.qbo_connection_key(connection.tenant_id),
            to_doc(connection),
            connection.version,
            "QuickBooks Online connection",
        )
        return replace(connection, version=connection.version + 1)

    def list_all(self, *, limit: int = 100, cursor: str | None = None) -> Page[QboConnection]:
        _check_page_size(limit)
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": keys.GSI1,
            "KeyConditionExpression": "GSI1PK = :pk",
            "ExpressionAttributeValues": {":pk": _s(keys.QBO_GSI1PK)},
            "Limit": limit + 1,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = _key(keys.decode_cursor(cursor))
        items = self._db.query(**kwargs).get("Items", [])
        page = [from_doc(QboConnection, _str(i, "doc"), _int(i, "version")) for i in items[:limit]]
        more = len(items) > limit and page
        next_cursor = keys.encode_cursor(keys.qbo_connection_index_key(page[-1].tenant_id)) if more else None
        return Page(items=page, cursor=next_cursor)

    def create_state(self, state_hash: str, tenant_id: str, expires_at: int) -> None:
        item = _key(keys.oauth_state_key(state_hash))
        item.update({"entity": _s("oauth_state"), "tenant_id": _s(tenant_id), keys.TTL_ATTRIBUTE: _n(expires_at)})
        try:
            self._db.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(PK)")
        except ClientError as exc:
            if _error_code(exc) == _CONDITION_FAILED:
                raise AlreadyExists("OAuth state already exists") from exc
            raise

    def consume_state(self, state_hash: str, now: int) -> str | None:
        try:
            response = self._db.delete_item(
                TableName=self._table,
                Key=_key(keys.oauth_state_key(state_hash)),
                ConditionExpression="attribute_exists(PK)",
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if _error_code(exc) == _CONDITION_FAILED:
                return None
            raise
        old = response.get("Attributes") or {}
        if not old or _int(old, keys.TTL_ATTRIBUTE) <= now:
            return None
        return _opt_str(old, "tenant_id")


class DynamoSyncRecords(_DynamoDocuments):
    entity = "record"

    def get(self, tenant_id: str, kind: str, source_id: str) -> SyncRecord | None:
        found = self._get_doc(keys.record_key(tenant_id, kind, source_id))
        return None if found is None else from_doc(SyncRecord, *found)

    def create(self, record: SyncRecord) -> SyncRecord:
        self._put_new(
            keys.record_key(record.tenant_id, record.kind, record.source_id),
            to_doc(record),
            f"{record.kind} {record.source_id!r}",
            extra={"state": _s(record.state)},
        )
        return replace(record, version=1)

    def save(self, record: SyncRecord) -> SyncRecord:
        key = _key(keys.record_key(record.tenant_id, record.kind, record.source_id))
        try:
            self._db.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="SET #doc = :doc, #version = :next, #state = :state",
                ConditionExpression="#version = :expected",
                ExpressionAttributeNames={"#doc": "doc", "#version": "version", "#state": "state"},
                ExpressionAttributeValues={
                    ":doc": _s(to_doc(record)),
                    ":expected": _n(record.version),
                    ":next": _n(record.version + 1),
                    ":state": _s(record.state),
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _error_code(exc) != _CONDITION_FAILED:
                raise
            if "Item" in exc.response:
                raise ConcurrentModification(
                    f"{record.kind} {record.source_id!r} was modified by someone else"
                ) from exc
            raise NotFound(f"{record.kind} {record.source_id!r} not found") from exc
        return replace(record, version=record.version + 1)

    def list(
        self, tenant_id: str, kind: str, *, state: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[SyncRecord]:
        _check_page_size(limit)
        found: list[SyncRecord] = []
        start = _key(keys.decode_cursor(cursor, ("PK", "SK"))) if cursor else None
        last_key: dict[str, Any] | None = None
        for _ in range(10_000):
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
                "ExpressionAttributeValues": {
                    ":pk": _s(keys.tenant_pk(tenant_id)),
                    ":prefix": _s(keys.record_sk_prefix(kind)),
                },
                "ConsistentRead": True,
                "Limit": max(limit + 1 - len(found), 1),
            }
            if state is not None:
                kwargs["FilterExpression"] = "#state = :state"
                kwargs["ExpressionAttributeNames"] = {"#state": "state"}
                kwargs["ExpressionAttributeValues"][":state"] = _s(state)
            if start is not None:
                kwargs["ExclusiveStartKey"] = start
            response = self._db.query(**kwargs)
            found += [from_doc(SyncRecord, _str(i, "doc"), _int(i, "version")) for i in response.get("Items", [])]
            last_key = response.get("LastEvaluatedKey")
            if len(found) > limit or not last_key:
                break
            start = last_key
        page = found[:limit]
        more = len(found) > limit or (last_key is not None and len(found) == limit)
        next_cursor = (
            keys.encode_cursor(keys.record_key(tenant_id, kind, page[-1].source_id)) if more and page else None
        )
        return Page(items=page, cursor=next_cursor)

    def get_many(self, tenant_id: str, kind: str, source_ids: Sequence[str]) -> dict[str, SyncRecord]:
        found: dict[str, SyncRecord] = {}
        unique: builtins.list[str] = builtins.list(dict.fromkeys(source_ids))
        for start in range(0, len(unique), 100):  # BatchGetItem takes at most 100 keys
            pending: builtins.list[Item] = [
                _key(keys.record_key(tenant_id, kind, sid)) for sid in unique[start : start + 100]
            ]
            for _ in range(50):  # unprocessed keys (throttling) are retried, bounded
                response = self._db.batch_get_item(
                    RequestItems={self._table: {"Keys": pending, "ConsistentRead": True}}
                )
                for item in response.get("Responses", {}).get(self._table, []):
                    record = from_doc(SyncRecord, _str(item, "doc"), _int(item, "version"))
                    found[record.source_id] = record
                unprocessed: Any = response.get("UnprocessedKeys", {})
                pending = builtins.list(unprocessed.get(self._table, {}).get("Keys", []))
                if not pending:
                    break
        return found

    def log(self, transfer: TransferRecord) -> None:
        self.log_many([transfer])

    def add_waits(self, tenant_id: str, waiter: RecordRef, dependencies: Sequence[RecordRef]) -> None:
        expires = int(time.time()) + WAIT_TTL_SECONDS
        self._batch_write(
            [
                {
                    "PutRequest": {
                        "Item": {
                            **_key(keys.wait_key(tenant_id, dependency, waiter)),
                            "entity": _s("wait"),
                            "waiter_kind": _s(waiter[0]),
                            "waiter_id": _s(waiter[1]),
                            keys.TTL_ATTRIBUTE: _n(expires),
                        }
                    }
                }
                for dependency in dict.fromkeys(dependencies)
            ]
        )

    def waiters(self, tenant_id: str, dependency: RecordRef) -> builtins.list[RecordRef]:
        found: builtins.list[RecordRef] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": _s(keys.wait_pk(tenant_id, *dependency))},
            "ConsistentRead": True,
        }
        for _ in range(1000):  # bounded paging
            response = self._db.query(**kwargs)
            found += [(_str(i, "waiter_kind"), _str(i, "waiter_id")) for i in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return found

    def remove_waits(self, tenant_id: str, dependency: RecordRef, waiters: Sequence[RecordRef]) -> None:
        self._batch_write(
            [
                {"DeleteRequest": {"Key": _key(keys.wait_key(tenant_id, dependency, waiter))}}
                for waiter in dict.fromkeys(waiters)
            ]
        )

    def log_many(self, transfers: Sequence[TransferRecord]) -> None:
        items = []
        for transfer in transfers:
            item = _key(keys.transfer_key(transfer.tenant_id, transfer.at, transfer.transfer_id))
            item.update({"entity": _s("transfer"), "doc": _s(json.dumps(dataclasses.asdict(transfer)))})
            items.append({"PutRequest": {"Item": item}})
        self._batch_write(items)

    def save_sync_run(self, tenant_id: str, sync_id: str, run: dict[str, Any]) -> None:
        item = _key(keys.sync_run_key(tenant_id, sync_id))
        item.update({"entity": _s("sync_run"), "doc": _s(json.dumps(run))})
        self._db.put_item(TableName=self._table, Item=item)

    def get_sync_run(self, tenant_id: str, sync_id: str) -> dict[str, Any] | None:
        item = self._get(keys.sync_run_key(tenant_id, sync_id))
        return None if item is None else cast("dict[str, Any]", json.loads(_str(item, "doc")))

    def history(self, tenant_id: str, *, limit: int = 100, cursor: str | None = None) -> Page[TransferRecord]:
        _check_page_size(limit)
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {":pk": _s(keys.tenant_pk(tenant_id)), ":prefix": _s(keys.XFER_PREFIX_SK)},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = _key(keys.decode_cursor(cursor, ("PK", "SK")))
        response = self._db.query(**kwargs)
        items = response.get("Items", [])
        page = [TransferRecord(**json.loads(_str(i, "doc"))) for i in items]
        last = response.get("LastEvaluatedKey")
        next_cursor = keys.encode_cursor({"PK": _str(last, "PK"), "SK": _str(last, "SK")}) if last else None
        return Page(items=page, cursor=next_cursor)


def _ref_expiry() -> int:
    return int(time.time()) + WAIT_TTL_SECONDS


class DynamoMatchIndex(_DynamoBase):
    def put_many(self, scope: str, entries: Sequence[MatchEntry]) -> None:
        self._batch_write(
            [
                {
                    "PutRequest": {
                        "Item": {
                            **_key(keys.match_key(scope, e.kind, e.field, e.key, e.qb_id)),
                            "entity": _s("match"),
                            "doc": _s(json.dumps(dataclasses.asdict(e))),
                        }
                    }
                }
                for e in {(e.kind, e.field, e.key, e.qb_id): e for e in entries}.values()
            ]
        )

    def find(self, scope: str, kind: str, field: str, key: str) -> builtins.list[MatchEntry]:
        found: builtins.list[MatchEntry] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": _s(keys.match_pk(scope)),
                ":prefix": _s(keys.match_sk_prefix(kind, field, key)),
            },
            "ConsistentRead": True,
        }
        for _ in range(100):  # bounded paging: a key shared by thousands of records is not a match anyway
            response = self._db.query(**kwargs)
            found += [MatchEntry(**json.loads(_str(i, "doc"))) for i in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return found

    def status(self, scope: str) -> dict[str, Any] | None:
        item = self._get({"PK": keys.match_pk(scope), "SK": keys.MATCH_STATUS_SK})
        return None if item is None else cast("dict[str, Any]", json.loads(_str(item, "doc")))

    def save_status(self, scope: str, status: dict[str, Any], *, create_only: bool = False) -> bool:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Item": {
                **_key({"PK": keys.match_pk(scope), "SK": keys.MATCH_STATUS_SK}),
                "entity": _s("match_status"),
                "doc": _s(json.dumps(status)),
            },
        }
        if create_only:
            kwargs["ConditionExpression"] = "attribute_not_exists(PK)"
        try:
            self._db.put_item(**kwargs)
        except ClientError as exc:
            if _error_code(exc) == _CONDITION_FAILED:
                return False
            raise
        return True


class DynamoReconcileState(_DynamoBase):
    def claim_event(self, event_hash: str, *, now: int, expires_at: int) -> bool:
        item = _key(keys.webhook_event_key(event_hash))
        item.update({"entity": _s("webhook_event"), keys.TTL_ATTRIBUTE: _n(expires_at)})
        try:
            self._db.put_item(
                TableName=self._table,
                Item=item,
                # TTL deletes lazily: an expired claim still in the table counts as absent.
                ConditionExpression="attribute_not_exists(PK) OR #ttl <= :now",
                ExpressionAttributeNames={"#ttl": keys.TTL_ATTRIBUTE},
                ExpressionAttributeValues={":now": _n(now)},
            )
        except ClientError as exc:
            if _error_code(exc) == _CONDITION_FAILED:
                return False
            raise
        return True

    def release_event(self, event_hash: str) -> None:
        self._db.delete_item(TableName=self._table, Key=_key(keys.webhook_event_key(event_hash)))

    def get(self, tenant_id: str, target: str) -> dict[str, Any] | None:
        item = self._get(keys.reconcile_state_key(tenant_id, target))
        return None if item is None else _dict(item, "doc")

    def put(self, tenant_id: str, target: str, state: dict[str, Any]) -> None:
        item = _key(keys.reconcile_state_key(tenant_id, target))
        item.update({"entity": _s("reconcile_state"), "doc": _s(_json(state))})
        self._db.put_item(TableName=self._table, Item=item)


class DynamoMappings(_DynamoBase):
    def get(self, tenant_id: str, kind: str) -> MappingSet | None:
        item = self._get(keys.mapping_key(tenant_id, kind))
        return None if item is None else _mapping_set(item)

    def get_all(self, tenant_id: str) -> dict[str, MappingSet]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {":pk": _s(keys.tenant_pk(tenant_id)), ":prefix": _s(keys.MAPPING_SK_PREFIX)},
            "ConsistentRead": True,
        }
        found: dict[str, MappingSet] = {}
        while True:
            response = self._db.query(**kwargs)
            for item in response.get("Items", []):
                mapping_set = _mapping_set(item)
                found[mapping_set.kind] = mapping_set
            if "LastEvaluatedKey" not in response:
                return dict(sorted(found.items()))
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def put(self, tenant_id: str, mappings: MappingSet) -> None:
        item = _key(keys.mapping_key(tenant_id, mappings.kind))
        item.update(
            {
                "entity": _s("mappings"),
                "kind": _s(mappings.kind),
                "entries": _s(_json(mappings.entries)),
                "updated_at": _s(mappings.updated_at),
            }
        )
        self._db.put_item(TableName=self._table, Item=item)


def _mapping_set(item: Item) -> MappingSet:
    return MappingSet(kind=_str(item, "kind"), entries=_dict(item, "entries"), updated_at=_str(item, "updated_at"))


class DynamoStore:
    """The DynamoDB-backed :class:`~qbsync.store.ports.Store`. Cheap to build; no AWS call until first use."""

    def __init__(self, settings: Settings | None = None, client: DynamoDBClient | None = None) -> None:
        self.settings = settings or get_settings()
        self._tenants = DynamoTenantRepository(self.settings, client)
        self._schedule_runs = DynamoScheduleRunRepository(self.settings, client)
        self._claims = DynamoUniqueClaims(self.settings, client)
        self._connectors = DynamoConnectorRepository(self.settings, client)
        self._jobs = DynamoJobQueue(self.settings, client)
        self._tickets = DynamoTicketRepository(self.settings, client)
        self._qbo = DynamoQboConnections(self.settings, client)
        self._records = DynamoSyncRecords(self.settings, client)
        self._matches = DynamoMatchIndex(self.settings, client)
        self._reconcile = DynamoReconcileState(self.settings, client)
        self._mappings = DynamoMappings(self.settings, client)

    @property
    def matches(self) -> DynamoMatchIndex:
        return self._matches

    @property
    def reconcile(self) -> DynamoReconcileState:
        return self._reconcile

    @property
    def mappings(self) -> DynamoMappings:
        return self._mappings

    @property
    def records(self) -> DynamoSyncRecords:
        return self._records

    @property
    def qbo(self) -> DynamoQboConnections:
        return self._qbo

    @property
    def jobs(self) -> DynamoJobQueue:
        return self._jobs

    @property
    def tickets(self) -> DynamoTicketRepository:
        return self._tickets

    @property
    def connectors(self) -> DynamoConnectorRepository:
        return self._connectors

    @property
    def tenants(self) -> DynamoTenantRepository:
        return self._tenants

    @property
    def schedule_runs(self) -> DynamoScheduleRunRepository:
        return self._schedule_runs

    @property
    def claims(self) -> DynamoUniqueClaims:
        return self._claims


__all__ = [
    "DynamoConnectorRepository",
    "DynamoJobQueue",
    "DynamoMappings",
    "DynamoQboConnections",
    "DynamoReconcileState",
    "DynamoScheduleRunRepository",
    "DynamoStore",
    "DynamoSyncRecords",
    "DynamoTenantRepository",
    "DynamoTicketRepository",
    "DynamoUniqueClaims",
]
