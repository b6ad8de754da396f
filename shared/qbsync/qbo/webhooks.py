"""QuickBooks Online webhooks (R1, R2): ``POST /qbo/webhooks`` verifies, de-duplicates and queues a targeted
reconcile, then answers at once (Intuit expects a quick 200; the work runs on the transfer worker).

* **Signature**: ``intuit-signature`` is base64(HMAC-SHA256(verifier token, raw body)); compared in constant time
  over the exact bytes received, before anything is parsed. A missing or wrong signature is a 401 and changes nothing.
* **Payloads**: the legacy ``{"eventNotifications": [...]}`` object and the CloudEvents array
  (``specversion``, ``type: qbo.<entity>.<operation>.v1``, ``intuitaccountid`` = realm, ``intuitentityid``).
* **Dedupe**: each event id (CloudEvents ``id``; for legacy events a hash of realm, entity, id, operation and
  ``lastUpdated``) is claimed with a conditional write kept by TTL; a replayed notification queues nothing. A replay
  after the TTL would only queue a reconcile, which reads the truth from QuickBooks and so changes nothing either.
* Notifications carry ids only: the reconcile reads the named invoices and payments from QuickBooks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qbsync import aws
from qbsync.errors import BadRequest, NotConfigured, Unauthorized
from qbsync.models import StrictModel
from qbsync.queue import TransferQueue
from qbsync.settings import Settings
from qbsync.store.ports import Store
from qbsync.transfers import TransferMessage

SIGNATURE_HEADER = "intuit-signature"
RECONCILE_KIND = "reconcile.qbo"
RECONCILED_ENTITIES = ("Invoice", "Payment")
MAX_EVENTS = 1000  # Intuit sends at most 100 per notification; anything far above is not Intuit
DEDUPE_SECONDS = 3 * 86_400
REALM_SCOPE = "qbo-realm"  # claim: realm → the tenant last found connected to it (a cache, re-checked on use)
_SECRET_CACHE_SECONDS = 300
_OPERATIONS = {
    "created": "Create",
    "updated": "Update",
    "deleted": "Delete",
    "merged": "Merge",
    "voided": "Void",
    "emailed": "Emailed",
}
_ENTITY_NAMES = {name.lower(): name for name in ("Invoice", "Payment", "Customer", "Item", "JournalEntry")}


@dataclass(frozen=True)
class EntityChange:
    """One entity named by a notification."""

    event_id: str
    realm_id: str
    entity: str  # Invoice, Payment, Customer…
    entity_id: str
    operation: str  # Create, Update, Delete, Merge, Void, Emailed
    occurred_at: str | None = None

    def as_payload(self) -> dict[str, str]:
        return {"name": self.entity, "id": self.entity_id, "operation": self.operation}


class WebhookAck(StrictModel):
    received: int
    duplicates: int
    queued: int  # targeted reconciles queued (one per tenant connected to a named realm)


def signature_of(raw_body: bytes, verifier_token: str) -> str:
    digest = hmac.new(verifier_token.encode("utf-8"), raw_body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_signature(raw_body: bytes, signature: str | None, verifier_token: str) -> bool:
    """True only if ``signature`` is the base64 HMAC-SHA256 of the exact body (constant-time comparison)."""
    if not signature or not verifier_token:
        return False
    expected = signature_of(raw_body, verifier_token).encode("ascii")
    return hmac.compare_digest(expected, signature.strip().encode("utf-8", "replace"))


def parse_notification(raw_body: bytes) -> list[EntityChange]:
    """Both payload formats → the entities they name. ``BadRequest`` for anything else."""
    try:
        data = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The notification is not JSON: {exc}") from None
    if isinstance(data, list):
        changes = [_cloud_event(event) for event in data]
    elif isinstance(data, dict) and "specversion" in data:
        changes = [_cloud_event(data)]
    elif isinstance(data, dict) and isinstance(data.get("eventNotifications"), list):
        changes = [
            change for notification in data["eventNotifications"] for change in _legacy_notification(notification)
        ]
    else:
        raise BadRequest("Not a QuickBooks Online notification (neither eventNotifications nor CloudEvents).")
    if len(changes) > MAX_EVENTS:
        raise BadRequest(f"A notification holds at most {MAX_EVENTS} events.")
    return changes


def _text(value: Any, what: str, max_length: int = 200) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise BadRequest(f"The notification has no valid {what}.")
    text = str(value).strip()
    if len(text) > max_length:
        raise BadRequest(f"The notification's {what} is too long.")
    return text


def _entity_name(raw: str) -> str:
    return _ENTITY_NAMES.get(raw.lower(), raw[:1].upper() + raw[1:])


def _cloud_event(event: Any) -> EntityChange:
    if not isinstance(event, dict) or event.get("specversion") is None:
        raise BadRequest("Every CloudEvents entry must be an object with specversion.")
    event_type = _text(event.get("type"), "type")
    parts = event_type.split(".")
    if len(parts) < 3 or parts[0] != "qbo":
        raise BadRequest(f"Unknown event type {event_type!r}.")
    operation = _OPERATIONS.get(parts[2].lower(), parts[2][:1].upper() + parts[2][1:])
    return EntityChange(
        event_id="ce:" + _text(event.get("id"), "id"),
        realm_id=_text(event.get("intuitaccountid"), "intuitaccountid"),
        entity=_entity_name(parts[1]),
        entity_id=_text(event.get("intuitentityid"), "intuitentityid"),
        operation=operation,
        occurred_at=event.get("time") if isinstance(event.get("time"), str) else None,
    )


def _legacy_notification(notification: Any) -> list[EntityChange]:
    if not isinstance(notification, dict):
        raise BadRequest("Every eventNotifications entry must be an object.")
    realm = _text(notification.get("realmId"), "realmId")
    entities = (notification.get("dataChangeEvent") or {}).get("entities")
    if not isinstance(entities, list):
        raise BadRequest("eventNotifications[].dataChangeEvent.entities must be a list.")
    changes = []
    for entity in entities:
        if not isinstance(entity, dict):
            raise BadRequest("dataChangeEvent.entities entries must be objects.")
        name = _entity_name(_text(entity.get("name"), "entity name"))
        entity_id = _text(entity.get("id"), "entity id")
        operation = _text(entity.get("operation"), "operation")
        updated = entity.get("lastUpdated") if isinstance(entity.get("lastUpdated"), str) else None
        fingerprint = "|".join((realm, name, entity_id, operation, updated or ""))
        changes.append(
            EntityChange(
                event_id="legacy:" + hashlib.sha256(fingerprint.encode("utf-8")).hexdigest(),
                realm_id=realm,
                entity=name,
                entity_id=entity_id,
                operation=operation,
                occurred_at=updated,
            )
        )
    return changes


class WebhookService:
    def __init__(
        self,
        store: Store,
        queue: TransferQueue,
        settings: Settings,
        *,
        epoch: Callable[[], float] = time.time,
        dedupe_seconds: int = DEDUPE_SECONDS,
    ) -> None:
        self.store = store
        self.queue = queue
        self.settings = settings
        self.epoch = epoch
        self.dedupe_seconds = dedupe_seconds
        self._secret: tuple[float, str] | None = None
        self._lock = threading.Lock()

    def receive(self, raw_body: bytes, signature: str | None) -> WebhookAck:
        if not verify_signature(raw_body, signature, self._verifier_token()):
            raise Unauthorized("The intuit-signature header does not match this notification.")
        changes = parse_notification(raw_body)
        wanted = [c for c in changes if c.entity in RECONCILED_ENTITIES]
        now = int(self.epoch())
        fresh: list[EntityChange] = []
        for change in wanted:
            if self.store.reconcile.claim_event(_event_hash(change), now=now, expires_at=now + self.dedupe_seconds):
                fresh.append(change)
        by_realm: dict[str, list[EntityChange]] = {}
        for change in fresh:
            by_realm.setdefault(change.realm_id, []).append(change)
        queued = 0
        for realm, group in by_realm.items():
            try:
                queued += self._queue_reconcile(realm, group)
            except Exception:
                for change in group:  # not queued: Intuit retries the notification, and the retry must count
                    self.store.reconcile.release_event(_event_hash(change))
                raise
        return WebhookAck(received=len(changes), duplicates=len(wanted) - len(fresh), queued=queued)

    def _queue_reconcile(self, realm: str, changes: list[EntityChange]) -> int:
        entities = list({(c.entity, c.entity_id): c.as_payload() for c in changes}.values())
        digest = hashlib.sha256("\n".join(sorted(_event_hash(c) for c in changes)).encode()).hexdigest()[:40]
        tenants = self.tenants_for_realm(realm)
        for tenant_id in tenants:
            self.queue.send(
                TransferMessage(
                    tenant_id=tenant_id,
                    transfer_id=f"wh-{digest}",
                    kind=RECONCILE_KIND,
                    target="qbo",
                    payload={"realm_id": realm, "entities": entities},
                ),
                group_id=f"{tenant_id}:qbo:{realm}",  # the records' group: after the company's queued writes
                deduplication_id=f"wh-{tenant_id}-{digest}",
            )
        return len(tenants)

    def tenants_for_realm(self, realm: str) -> list[str]:
        """The tenants connected to ``realm``: the cached owner if it still is, else a (bounded) scan."""
        cached = self.store.claims.owner_of(REALM_SCOPE, realm)
        if cached is not None:
            connection = self.store.qbo.get(cached)
            if connection is not None and connection.realm_id == realm and connection.status != "disconnected":
                return [cached]
            self.store.claims.release(REALM_SCOPE, realm, cached)
        found: list[str] = []
        cursor: str | None = None
        for _ in range(10_000):
            page = self.store.qbo.list_all(limit=100, cursor=cursor)
            found += [c.tenant_id for c in page.items if c.realm_id == realm and c.status != "disconnected"]
            cursor = page.cursor
            if cursor is None:
                break
        if len(found) == 1:
            self.store.claims.claim(REALM_SCOPE, realm, found[0])
        return found

    def _verifier_token(self) -> str:
        if self.settings.qbo_webhook_verifier_token:
            return self.settings.qbo_webhook_verifier_token
        if not self.settings.qbo_webhook_verifier_token_arn:
            raise NotConfigured(
                "QuickBooks Online webhooks are not configured "
                "(QBO_WEBHOOK_VERIFIER_TOKEN or QBO_WEBHOOK_VERIFIER_TOKEN_ARN)."
            )
        with self._lock:
            if self._secret is None or self._secret[0] < time.monotonic():
                value = aws.client("secretsmanager", self.settings).get_secret_value(
                    SecretId=self.settings.qbo_webhook_verifier_token_arn
                )["SecretString"]
                self._secret = (time.monotonic() + _SECRET_CACHE_SECONDS, str(value).strip())
            return self._secret[1]


def _event_hash(change: EntityChange) -> str:
    return hashlib.sha256(change.event_id.encode("utf-8")).hexdigest()
