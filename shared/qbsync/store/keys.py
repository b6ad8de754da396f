"""The key design of qbsync's single DynamoDB table. Every key string is built here and nowhere else.

Table ``PK``/``SK`` (strings), one overloaded index ``GSI1`` (``GSI1PK``/``GSI1SK``, projection ALL), TTL attribute
``expires_at`` (epoch seconds). Every item also carries ``entity`` (its type) and, when it is mutable, ``version``
(optimistic locking: a write succeeds only if the stored version equals the one read; it then becomes version + 1).

| entity     | PK                      | SK       | GSI1PK    | GSI1SK                     | notes              |
|------------|-------------------------|----------|-----------|----------------------------|--------------------|
| tenant     | `TENANT#<tenant_id>`    | `META`   | `TENANTS` | `<created_at>#<tenant_id>` | list oldest first  |
| apikey     | `APIKEY#<key_id>`       | `META`   | -         | -                          | secret hash only   |
| schedule   | `SCHEDULE#<name>`       | `META`   | -         | -                          | `runs`: atomic ADD |
| claim      | `CLAIM#<scope>#<value>` | `META`   | -         | -                          | one `owner`        |
| connector  | `TENANT#<tenant_id>`    | `CONN#<connector_id>` | - | -                      | JSON `doc`         |
| default    | `TENANT#<tenant_id>`    | `CONN_DEFAULT` | - | -                             | first connector    |
| username   | `CLAIM#qbwc-user#<name>`| `META`   | -         | -                          | owner `<t>/<c>`    |
| qbo conn   | `TENANT#<tenant_id>`    | `QBO`    | `QBOCONN` | `<tenant_id>`              | tokens: KMS blob   |
| oauth state| `OAUTHSTATE#<sha256>`   | `META`   | -         | -                          | TTL, single use    |
| qbo limit  | `QBOLIMIT#<realm_id>`   | `M#<epoch min>` | - | -  | `count`, `sNN`, `batch`, TTL |
| record     | `TENANT#<tenant_id>`    | `REC#<kind>#<source_id>` | - | -                   | JSON `doc`         |
| transfer   | `TENANT#<tenant_id>`    | `XFER#<at>#<transfer_id>` | - | -                  | newest first       |
| match idx  | `MATCH#<scope>`         | `<kind>#<field>#<len>:<key>#<qb_id>` / `STATUS` | - | - | import index |
| job ref    | `JOBREF#<connector_id>` | `<source_ref>` | - | -                         | `seq`, TTL         |
| wait edge  | `WAITON#<tenant_id>#<kind>#<len>:<id>` | `<kind>#<id>` | - | -     | TTL; who waits     |
| sync run   | `TENANT#<tenant_id>`    | `SYNC#<sync_id>` | - | -                          | bulk sync (T9)     |
| org route  | `TENANT#<tenant_id>`    | `ORG#<organization_id>` | - | -                    | `connector_id`     |
| job        | `CONN#<connector_id>`   | `JOB#<seq:012d>` | - | -                         | JSON `doc`         |
| job seq    | `CONN#<connector_id>`   | `JOBSEQ` | -         | -                          | `next`, `low`      |
| link       | `LINK#...`              | reserved | reserved  | reserved                   | later issue        |
| ticket     | `TICKET#<sha256>`       | `META`   | -         | -                          | TTL `expires_at`   |
| webhook id | `WEBHOOK#<sha256>`      | `META`   | -         | -                          | TTL, dedupe        |
| reconcile  | `TENANT#<tenant_id>`    | `RECON#<target>` | - | -                          | JSON `doc`         |
| mappings   | `TENANT#<tenant_id>`    | `MAP#<kind>` | - | -                              | JSON `entries`     |
| transfer   | `XFER#...`              | reserved | reserved  | reserved                   | later issue        |

Rules:

* Singleton items use ``SK = "META"`` so that child items can later share the partition (e.g. ``TENANT#t1`` /
  ``CONN#c1``) and be read with one ``Query``.
* ``created_at`` is :func:`qbsync.clock.iso` output (fixed width, UTC, ``Z``), so it sorts as a string; the tenant id
  suffix makes ``GSI1SK`` unique when two tenants are created in the same millisecond.
* A component followed by ``#`` must not contain ``#`` (claim scopes); trailing components may contain anything.
* Free-form dicts (tenant ``settings``, schedule ``last_outcome``) are stored as JSON strings (see ``dynamo.py``).
* Pagination cursors are opaque to callers: base64url (no padding) of the JSON of the last returned item's key
  attributes (table keys + index keys), i.e. a DynamoDB ``ExclusiveStartKey`` with string values. Both adapters
  produce and accept the same format.
"""

from __future__ import annotations

import base64
import binascii
import json

from qbsync.errors import BadRequest

META = "META"

TENANT_PREFIX = "TENANT#"
APIKEY_PREFIX = "APIKEY#"
SCHEDULE_PREFIX = "SCHEDULE#"
CLAIM_PREFIX = "CLAIM#"
CONN_PREFIX = "CONN#"
CONN_DEFAULT = "CONN_DEFAULT"
USERNAME_SCOPE = "qbwc-user"
# Reserved for later issues (documented above; not used yet).
JOB_PREFIX = "JOB#"
LINK_PREFIX = "LINK#"
TICKET_PREFIX = "TICKET#"
XFER_PREFIX = "XFER#"

TENANTS_GSI1PK = "TENANTS"
GSI1 = "GSI1"
TTL_ATTRIBUTE = "expires_at"

ENTITY_TENANT = "tenant"
ENTITY_APIKEY = "apikey"
ENTITY_SCHEDULE = "schedule"
ENTITY_CLAIM = "claim"
ENTITY_CONNECTOR = "connector"

KeyDict = dict[str, str]


def _part(value: str, what: str, *, allow_hash: bool = True) -> str:
    if not value:
        raise ValueError(f"{what} must not be empty")
    if not allow_hash and "#" in value:
        raise ValueError(f"{what} must not contain '#': {value!r}")
    return value


def tenant_pk(tenant_id: str) -> str:
    return TENANT_PREFIX + _part(tenant_id, "tenant_id")


def tenant_key(tenant_id: str) -> KeyDict:
    return {"PK": tenant_pk(tenant_id), "SK": META}


def tenant_gsi1sk(created_at: str, tenant_id: str) -> str:
    return f"{_part(created_at, 'created_at')}#{_part(tenant_id, 'tenant_id')}"


def tenant_index_key(tenant_id: str, created_at: str) -> KeyDict:
    """Everything ``ExclusiveStartKey`` needs to resume a GSI1 query after this tenant."""
    return {
        "PK": tenant_pk(tenant_id),
        "SK": META,
        "GSI1PK": TENANTS_GSI1PK,
        "GSI1SK": tenant_gsi1sk(created_at, tenant_id),
    }


def apikey_pk(key_id: str) -> str:
    return APIKEY_PREFIX + _part(key_id, "key_id")


def apikey_key(key_id: str) -> KeyDict:
    return {"PK": apikey_pk(key_id), "SK": META}


def schedule_pk(name: str) -> str:
    return SCHEDULE_PREFIX + _part(name, "schedule name")


def schedule_key(name: str) -> KeyDict:
    return {"PK": schedule_pk(name), "SK": META}


def claim_pk(scope: str, value: str) -> str:
    return f"{CLAIM_PREFIX}{_part(scope, 'claim scope', allow_hash=False)}#{_part(value, 'claim value')}"


def claim_key(scope: str, value: str) -> KeyDict:
    return {"PK": claim_pk(scope, value), "SK": META}


def connector_key(tenant_id: str, connector_id: str) -> KeyDict:
    return {"PK": tenant_pk(tenant_id), "SK": CONN_PREFIX + _part(connector_id, "connector_id")}


def organization_key(tenant_id: str, organization_id: str) -> KeyDict:
    return {"PK": tenant_pk(tenant_id), "SK": "ORG#" + _part(organization_id, "organization_id")}


QBO_GSI1PK = "QBOCONN"


def qbo_connection_key(tenant_id: str) -> KeyDict:
    return {"PK": tenant_pk(tenant_id), "SK": "QBO"}


def qbo_connection_index_key(tenant_id: str) -> KeyDict:
    return {**qbo_connection_key(tenant_id), "GSI1PK": QBO_GSI1PK, "GSI1SK": tenant_id}


def qbo_limit_pk(realm_id: str) -> str:
    """Per-realm rate-limit windows (``qbsync.qbo.limiter``): one counter item per window, removed by TTL."""
    return "QBOLIMIT#" + _part(realm_id, "realm_id")


def qbo_limit_second_sk(epoch_second: int) -> str:
    return f"S#{epoch_second}"


def qbo_limit_minute_sk(epoch_minute: int) -> str:
    return f"M#{epoch_minute}"


def qbo_limit_batch_minute_sk(epoch_minute: int) -> str:
    return f"B#{epoch_minute}"


def record_sk_prefix(kind: str) -> str:
    return f"REC#{_part(kind, 'kind', allow_hash=False)}#"


MATCH_STATUS_SK = "STATUS"


def match_pk(scope: str) -> str:
    """A company's match index (Desktop: the connector id), one partition."""
    return "MATCH#" + _part(scope, "scope")


def match_sk_prefix(kind: str, field: str, key: str) -> str:
    """Entries with one key. The key is length-prefixed, so ``a`` never finds ``a#b``."""
    return f"{_part(kind, 'kind', allow_hash=False)}#{_part(field, 'field', allow_hash=False)}#{len(key)}:{key}#"


def match_key(scope: str, kind: str, field: str, key: str, qb_id: str) -> KeyDict:
    return {"PK": match_pk(scope), "SK": match_sk_prefix(kind, field, _part(key, "key")) + _part(qb_id, "qb_id")}


def wait_pk(tenant_id: str, kind: str, source_id: str) -> str:
    """The waiters of one record live in a partition of their own: one small query when the record syncs."""
    kind = _part(kind, "kind", allow_hash=False)
    return f"WAITON#{tenant_id}#{kind}#{len(source_id)}:{_part(source_id, 'source_id')}"


def wait_key(tenant_id: str, dependency: tuple[str, str], waiter: tuple[str, str]) -> KeyDict:
    return {
        "PK": wait_pk(_part(tenant_id, "tenant_id"), *dependency),
        "SK": f"{_part(waiter[0], 'kind', allow_hash=False)}#{_part(waiter[1], 'id')}",
    }


def record_key(tenant_id: str, kind: str, source_id: str) -> KeyDict:
    return {"PK": tenant_pk(tenant_id), "SK": record_sk_prefix(kind) + _part(source_id, "source_id")}


XFER_PREFIX_SK = "XFER#"


def sync_run_key(tenant_id: str, sync_id: str) -> KeyDict:
    return {"PK": tenant_pk(tenant_id), "SK": "SYNC#" + _part(sync_id, "sync_id")}


def transfer_key(tenant_id: str, at: str, transfer_id: str) -> KeyDict:
    return {"PK": tenant_pk(tenant_id), "SK": f"{XFER_PREFIX_SK}{_part(at, 'at')}#{_part(transfer_id, 'transfer_id')}"}


def oauth_state_key(state_hash: str) -> KeyDict:
    return {"PK": "OAUTHSTATE#" + _part(state_hash, "state hash"), "SK": META}


def default_connector_key(tenant_id: str) -> KeyDict:
    return {"PK": tenant_pk(tenant_id), "SK": CONN_DEFAULT}


def username_claim_key(username: str) -> KeyDict:
    return claim_key(USERNAME_SCOPE, username.casefold())


def connector_pk(connector_id: str) -> str:
    return CONN_PREFIX + _part(connector_id, "connector_id")


def job_sk(seq: int) -> str:
    if seq < 0 or seq >= 10**12:
        raise ValueError(f"job seq out of range: {seq}")
    return f"{JOB_PREFIX}{seq:012d}"


def job_key(connector_id: str, seq: int) -> KeyDict:
    return {"PK": connector_pk(connector_id), "SK": job_sk(seq)}


def job_ref_key(connector_id: str, source_ref: str) -> KeyDict:
    """Which job carries ``source_ref`` (idempotent enqueue)."""
    return {"PK": "JOBREF#" + _part(connector_id, "connector_id"), "SK": _part(source_ref, "source_ref")}


def job_sequence_key(connector_id: str) -> KeyDict:
    return {"PK": connector_pk(connector_id), "SK": "JOBSEQ"}


def ticket_key(ticket_hash: str) -> KeyDict:
    return {"PK": TICKET_PREFIX + _part(ticket_hash, "ticket hash"), "SK": META}


def webhook_event_key(event_hash: str) -> KeyDict:
    """A QuickBooks Online webhook event already received (dedupe; removed by TTL)."""
    return {"PK": "WEBHOOK#" + _part(event_hash, "event hash"), "SK": META}


def reconcile_state_key(tenant_id: str, target: str) -> KeyDict:
    """The reconciler's watermark for one QuickBooks company of a tenant (``qbo:<realm>`` / ``qbd:<connector>``)."""
    return {"PK": tenant_pk(tenant_id), "SK": "RECON#" + _part(target, "target")}


MAPPING_SK_PREFIX = "MAP#"


def mapping_key(tenant_id: str, kind: str) -> KeyDict:
    """One kind of a tenant's mappings (M1-M5), e.g. ``MAP#billing_codes``: all its entries in one item."""
    return {"PK": tenant_pk(tenant_id), "SK": MAPPING_SK_PREFIX + _part(kind, "mapping kind", allow_hash=False)}


def encode_cursor(key: KeyDict) -> str:
    raw = json.dumps(key, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, required: tuple[str, ...] = ("PK", "SK", "GSI1PK", "GSI1SK")) -> KeyDict:
    """Inverse of :func:`encode_cursor`; ``BadRequest`` for anything a client could have mangled."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("Invalid cursor") from exc
    if (
        not isinstance(data, dict)
        or set(data) != set(required)
        or not all(isinstance(v, str) and v for v in data.values())
    ):
        raise BadRequest("Invalid cursor")
    return {str(k): str(v) for k, v in data.items()}
