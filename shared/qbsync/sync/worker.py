"""Moving one record into QuickBooks (the transfer worker's ``sync.<kind>`` messages).

Idempotent under redelivery: a record whose synced content already equals its current content is a no-op; every
QBO write carries a requestid derived from (tenant, realm, kind, id, content) so a retried write is de-duplicated
by Intuit; the QuickBooks id is stored before the message is acknowledged. Order: an invoice waits for its customer
and items, a payment for its invoices; when a record syncs, whatever waited for it is queued again (T3, T4).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from qbsync.clock import iso
from qbsync.errors import ConcurrentModification, QbsyncError
from qbsync.events import EventPublisher
from qbsync.models import TenantSettings
from qbsync.observability import get_logger
from qbsync.qbo import errors as qbo_errors
from qbsync.qbo.client import QboClient
from qbsync.qbo.requestids import request_id
from qbsync.qbo.tokens import NeedsReauth, NotConnected, TokenManager
from qbsync.qbwc.jobs import JobService
from qbsync.settings import Settings
from qbsync.store.ports import Job, Store, SyncRecord, SyncState, TransferRecord, TransferStatus
from qbsync.sync import mapping
from qbsync.sync.ingest import IssueService
from qbsync.sync.records import SourceCustomer, SourceInvoice, SourceItem, SourcePayment
from qbsync.tenancy import settings_of
from qbsync.transfers import MessageMeta, TransferMessage

EVENT_ON_SYNC = {
    "invoices": "invoice.synced",
    "payments": "payment.synced",
    "customers": "customer.synced",
    "items": "item.synced",
}
LIST_CACHE_SECONDS = 60.0
TRANSFER_STATUS: dict[str, TransferStatus] = {
    "synced": "succeeded",
    "failed": "failed",
    "blocked": "blocked",
    "waiting": "waiting",
    "pending": "queued",
}
QBO_ENTITY = {"customers": "Customer", "items": "Item", "invoices": "Invoice", "payments": "Payment"}


@dataclass(frozen=True)
class MatchRule:
    """How one kind of list record is matched to QuickBooks, and the match-issue codes it raises."""

    kind: str  # customer | item
    entity: str
    query_field: str
    key_name: str  # what users call the key
    key_code: str  # in issue codes: customer_missing_email, customer_email_shared…
    name_field: str


CUSTOMER_MATCH = MatchRule("customer", "Customer", "PrimaryEmailAddr", "billing email", "email", "DisplayName")
ITEM_MATCH = MatchRule("item", "Item", "Sku", "SKU", "sku", "Name")


class Blocked(Exception):
    """The record cannot go to QuickBooks until someone acts (a match issue or a configuration issue)."""

    def __init__(self, code: str, message: str, action: str, **extra: Any) -> None:
        super().__init__(message)
        self.reason = {"code": code, "message": message, "action": action, **extra}


class Waiting(Exception):
    def __init__(self, waiting_for: list[str], message: str) -> None:
        super().__init__(message)
        self.reason = {
            "code": "waiting",
            "message": message,
            "action": "none: it is sent automatically",
            "waiting_for": waiting_for,
        }


def _q(value: str) -> str:
    """A string literal for the QBO query language (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SyncWorker:
    def __init__(
        self,
        store: Store,
        tokens: TokenManager,
        issues: IssueService,
        events: EventPublisher,
        settings: Settings,
        *,
        client_factory: Any = None,
        jobs: JobService | None = None,
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.issues = issues
        self.events = events
        self.settings = settings
        self.client_factory = client_factory or (
            lambda realm, tenant_id: QboClient.for_settings(realm, tokens.token_source(tenant_id), settings)
        )
        self.log = get_logger()
        self._lists: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}
        self.jobs = jobs or JobService(store)

    # --- entry point ----------------------------------------------------------------------------------------

    def handle(self, message: TransferMessage, meta: MessageMeta) -> dict[str, Any]:
        kind = message.kind.removeprefix("sync.")
        source_id = str(message.payload["source_id"])
        record = self.store.records.get(message.tenant_id, kind, source_id)
        if record is None or record.content_hash != message.payload.get("content_hash"):
            return {"skipped": "superseded"}  # a newer transfer of this record is queued behind this one
        if record.state == "synced" and record.synced_hash == record.content_hash:
            return {"skipped": "already synced"}  # SQS redelivery after the work was done
        tenant = self.store.tenants.get(record.tenant_id)
        if tenant is None or not tenant.is_active:
            return {"skipped": "tenant inactive"}
        if record.target is not None and record.target.startswith("qbd:"):
            return self._to_desktop(record, settings_of(tenant), record.target.removeprefix("qbd:"))
        if record.target is None:
            return {"skipped": "no target"}
        realm = record.target.removeprefix("qbo:")
        try:
            client = self.client_factory(realm, record.tenant_id)
            action, qb_id, qb_version = self._sync(client, record, settings_of(tenant))
        except Blocked as blocked:
            self._finish(record, "blocked", reason=blocked.reason, code=blocked.reason["code"], message=str(blocked))
            self.events.publish("match.issue", record.tenant_id, {"kind": kind, "id": source_id, **blocked.reason})
            return {"blocked": blocked.reason["code"]}
        except Waiting as waiting:
            self._finish(record, "waiting", reason=waiting.reason, message=str(waiting))
            return {"waiting": waiting.reason["waiting_for"]}
        except (NeedsReauth, NotConnected) as exc:
            self._finish(
                record,
                "waiting",
                reason={
                    "code": exc.code,
                    "message": exc.detail,
                    "action": "Reconnect QuickBooks Online (GET /v1/qbo/connect).",
                },
                message=exc.detail,
            )
            return {"waiting": "reconnect"}
        except qbo_errors.QboError as exc:
            if exc.retryable:
                raise  # throttled / unavailable: SQS brings the message back, nothing lost
            self._finish(
                record,
                "failed",
                code=exc.intuit_code or exc.code,
                message=exc.detail,
                reason={
                    "code": exc.code,
                    "message": exc.detail,
                    "qb_code": exc.intuit_code,
                    "action": "Fix the record in the source and send it again.",
                },
            )
            self.events.publish(
                "transfer.failed",
                record.tenant_id,
                {"kind": kind, "id": source_id, "code": exc.intuit_code, "message": exc.detail},
            )
            return {"failed": exc.intuit_code}
        synced = self._finish(record, "synced", action=action, qb_id=qb_id, qb_version=qb_version)
        self.events.publish(EVENT_ON_SYNC[kind], record.tenant_id, {"id": source_id, "quickbooks_id": qb_id})
        self._release_dependents(synced)
        return {"synced": qb_id, "action": action}

    # --- QuickBooks Desktop: records become connector jobs, run at the next Web Connector conversation --------

    def _to_desktop(self, record: SyncRecord, settings: TenantSettings, connector_id: str) -> dict[str, Any]:
        if record.job_seq is not None:
            job = self.store.jobs.get(connector_id, record.job_seq)
            if job is not None and job.status in ("queued", "sent") and job.source_ref == _job_ref(record):
                return {"skipped": "already queued"}  # redelivery: the job is waiting for the Web Connector
        try:
            if record.qb_id is not None:
                raise Blocked(
                    "desktop_update_unsupported",
                    f"{record.kind[:-1].capitalize()} {record.source_id!r} is already in QuickBooks Desktop; "
                    "updating it from the source is not supported yet.",
                    "Change it in QuickBooks Desktop, or keep the source unchanged.",
                )
            kind, payload, depends_on = self._desktop_job(record, settings)
            job = self.jobs.enqueue(
                record.tenant_id, connector_id, kind, payload, depends_on=depends_on, source_ref=_job_ref(record)
            )
        except Blocked as blocked:
            self._finish(record, "blocked", reason=blocked.reason, code=blocked.reason["code"], message=str(blocked))
            return {"blocked": blocked.reason["code"]}
        except Waiting as waiting:
            self._finish(record, "waiting", reason=waiting.reason, message=str(waiting))
            return {"waiting": waiting.reason["waiting_for"]}
        except mapping.MappingError as exc:
            reason = {
                "code": exc.code,
                "message": exc.detail,
                "errors": exc.extra.get("errors"),
                "action": "Fix the record in the source (or the settings) and send it again.",
            }
            self._finish(
                record,
                "blocked" if isinstance(exc, mapping.MappingConfigurationError) else "failed",
                reason=reason,
                code=exc.code,
                message=exc.detail,
            )
            return {"failed": exc.code}
        self._save_state(
            record,
            state="pending",
            job_seq=job.seq,
            reason={
                "code": "queued_for_web_connector",
                "message": "Queued for the next QuickBooks Web Connector run.",
                "action": "none: it is sent at the next scheduled run",
            },
        )
        return {"queued_job": job.seq}

    def _desktop_job(self, record: SyncRecord, settings: TenantSettings) -> tuple[str, Any, list[int]]:
        if record.kind == "customers":
            return (
                "customer_add",
                mapping.qbd_customer(SourceCustomer.model_validate(record.payload), settings, creating=True),
                [],
            )
        if record.kind == "items":
            return "item_add", mapping.qbd_item(SourceItem.model_validate(record.payload), settings), []
        if record.kind == "invoices":
            invoice = SourceInvoice.model_validate(record.payload)
            customer_record = self._dependency(record, "customers", invoice.customer_id)
            item_records = {line.item_id: self._dependency(record, "items", line.item_id) for line in invoice.lines}
            depends_on = self._queued_or_synced(record, [customer_record, *item_records.values()])
            customer = SourceCustomer.model_validate(customer_record.payload)
            items = {k: SourceItem.model_validate(v.payload) for k, v in item_records.items()}
            refs = mapping.Refs(
                customer=mapping.QbRef(
                    customer_record.qb_id, mapping.qbd_customer(customer, settings, creating=True).name
                ),
                items={
                    k: mapping.QbRef(v.qb_id, mapping.qbd_item_name(items[k], settings))
                    for k, v in item_records.items()
                },
            )
            return (
                "invoice_add",
                mapping.qbd_invoice(invoice, settings, refs, customer=customer, items=items),
                depends_on,
            )
        if record.kind == "payments":
            payment = SourcePayment.model_validate(record.payload)
            customer_record = self._dependency(record, "customers", payment.customer_id)
            invoice_records = {
                a.invoice_id: self._dependency(record, "invoices", a.invoice_id) for a in payment.applied_to
            }
            # A payment names each invoice by its TxnID, which exists only once the invoice is in QuickBooks.
            self._raise_if_waiting(record, [customer_record, *invoice_records.values()])
            customer = SourceCustomer.model_validate(customer_record.payload)
            refs = mapping.Refs(
                customer=mapping.QbRef(
                    customer_record.qb_id, mapping.qbd_customer(customer, settings, creating=True).name
                ),
                invoices={k: mapping.QbRef(v.qb_id, v.payload.get("doc_number")) for k, v in invoice_records.items()},
            )
            return "receive_payment_add", mapping.qbd_payment(payment, settings, refs), []
        raise QbsyncError(f"Unknown record kind {record.kind!r}.")

    def _queued_or_synced(self, record: SyncRecord, dependencies: list[SyncRecord]) -> list[int]:
        """Desktop dependencies may still be queued jobs of the same connector: the invoice's job runs after them
        (QuickBooks resolves names in order). Anything else not yet in QuickBooks means waiting."""
        depends_on, missing = [], []
        for dependency in dependencies:
            if dependency.state == "synced" and dependency.qb_id:
                continue
            if dependency.state == "pending" and dependency.job_seq is not None and dependency.target == record.target:
                depends_on.append(dependency.job_seq)
            else:
                missing.append(f"{dependency.kind}:{dependency.source_id}")
        if missing:
            raise Waiting(missing, f"Waiting for {', '.join(missing)} to reach QuickBooks.")
        return depends_on

    def job_finished(self, job: Job) -> None:
        """A connector job ran in QuickBooks Desktop: record the outcome on its source record."""
        parsed = _parse_job_ref(job.source_ref or "")
        if parsed is None:
            return  # a job queued by something other than the record sync
        kind, source_id, content = parsed
        record = self.store.records.get(job.tenant_id, kind, source_id)
        if record is None or record.content_hash != content or record.job_seq != job.seq:
            return  # superseded by newer content
        result = job.result
        if job.status == "done":
            qb_id = result.get("list_id") or result.get("txn_id")
            synced = self._finish(
                record, "synced", action="create", qb_id=qb_id, qb_version=result.get("edit_sequence")
            )
            self.events.publish(EVENT_ON_SYNC[kind], record.tenant_id, {"id": source_id, "quickbooks_id": qb_id})
            self._release_dependents(synced)
            return
        if job.status == "blocked":
            waits = self._unsynced_dependencies(record)
            self._finish(
                record,
                "waiting",
                reason={
                    "code": "waiting",
                    "waiting_for": waits,
                    "message": result.get("reason", "a record it needs failed"),
                    "action": "Fix the record it depends on.",
                },
                message=result.get("reason"),
            )
            return
        code = str(result.get("status_code", ""))
        if code == "3100" and kind in ("customers", "items"):
            match_code = "customer_duplicate_name" if kind == "customers" else "item_duplicate_name"
            reason = {
                "code": match_code,
                "message": result.get("message", ""),
                "qb_code": code,
                "action": 'Rename it, or link it: POST /v1/match-issues/{id}/resolve {"quickbooks_id": ListID}.',
            }
            self._finish(record, "blocked", reason=reason, code=code, message=result.get("message"))
            self.events.publish("match.issue", record.tenant_id, {"kind": kind, "id": source_id, **reason})
            return
        reason = {
            "code": "quickbooks_error",
            "qb_code": code,
            "message": result.get("message", ""),
            "action": "Fix the record in the source and send it again.",
        }
        self._finish(record, "failed", reason=reason, code=code, message=result.get("message"))
        self.events.publish(
            "transfer.failed",
            record.tenant_id,
            {"kind": kind, "id": source_id, "code": code, "message": result.get("message")},
        )

    def _unsynced_dependencies(self, record: SyncRecord) -> list[str]:
        payload = record.payload
        refs = [("customers", payload.get("customer_id"))]
        refs += [("items", line.get("item_id")) for line in payload.get("lines", [])]
        refs += [("invoices", a.get("invoice_id")) for a in payload.get("applied_to", [])]
        waits = []
        for kind, source_id in refs:
            if not source_id:
                continue
            found = self.store.records.get(record.tenant_id, kind, str(source_id))
            if found is None or found.state != "synced":
                waits.append(f"{kind}:{source_id}")
        return waits

    # --- per kind -------------------------------------------------------------------------------------------

    def _sync(self, client: QboClient, record: SyncRecord, settings: TenantSettings) -> tuple[str, str, str | None]:
        kind = record.kind
        rid = request_id(record.tenant_id, record.target or "", kind, record.source_id, record.content_hash)
        if kind == "customers":
            customer = SourceCustomer.model_validate(record.payload)
            if record.qb_id is None:
                linked = self._match(
                    client, CUSTOMER_MATCH, customer.email, customer.name, settings.auto_create_customers
                )
                if linked is not None:
                    return "link", linked["Id"], linked.get("SyncToken")
            body = mapping.qbo_customer(
                customer, settings, creating=record.qb_id is None, terms_ids=self._ids(client, "Term")
            )
            return self._write(
                client,
                record,
                "Customer",
                body,
                rid,
                duplicate=(
                    "customer_duplicate_name",
                    f"QuickBooks already has a customer, vendor or employee named {customer.name!r}.",
                ),
            )
        if kind == "items":
            item = SourceItem.model_validate(record.payload)
            if record.qb_id is None:
                linked = self._match(client, ITEM_MATCH, item.sku, item.name, settings.auto_create_items)
                if linked is not None:
                    return "link", linked["Id"], linked.get("SyncToken")
            try:
                body = mapping.qbo_item(item, settings, account_ids=self._ids(client, "Account"))
            except mapping.MappingError as exc:
                raise Blocked(
                    "item_configuration", str(exc), "Set the income account (settings) or on the item."
                ) from None
            return self._write(
                client,
                record,
                "Item",
                body,
                rid,
                duplicate=("item_duplicate_name", f"QuickBooks already has an item named {item.name!r}."),
            )
        if kind == "invoices":
            invoice = SourceInvoice.model_validate(record.payload)
            customer_record = self._dependency(record, "customers", invoice.customer_id)
            item_records = {line.item_id: self._dependency(record, "items", line.item_id) for line in invoice.lines}
            self._raise_if_waiting(record, [customer_record, *item_records.values()])
            body = mapping.qbo_invoice(
                invoice,
                settings,
                mapping.Refs(
                    customer=mapping.QbRef(customer_record.qb_id or "", customer_record.payload.get("name")),
                    items={k: mapping.QbRef(v.qb_id or "", v.payload.get("name")) for k, v in item_records.items()},
                ),
                customer=SourceCustomer.model_validate(customer_record.payload),
                items={k: SourceItem.model_validate(v.payload) for k, v in item_records.items()},
                class_ids=self._ids(client, "Class"),
                term_ids=self._ids(client, "Term"),
                tax_code_ids=self._ids(client, "TaxCode"),
            )
            return self._write(client, record, "Invoice", body, rid)
        if kind == "payments":
            payment = SourcePayment.model_validate(record.payload)
            customer_record = self._dependency(record, "customers", payment.customer_id)
            invoice_records = {
                a.invoice_id: self._dependency(record, "invoices", a.invoice_id) for a in payment.applied_to
            }
            self._raise_if_waiting(record, [customer_record, *invoice_records.values()])
            body = mapping.qbo_payment(
                payment,
                mapping.Refs(
                    customer=mapping.QbRef(customer_record.qb_id or "", customer_record.payload.get("name")),
                    invoices={
                        k: mapping.QbRef(v.qb_id or "", v.payload.get("doc_number")) for k, v in invoice_records.items()
                    },
                ),
            )
            return self._write(client, record, "Payment", body, rid)
        raise QbsyncError(f"Unknown record kind {kind!r}.")

    def _write(
        self,
        client: QboClient,
        record: SyncRecord,
        entity: str,
        body: dict[str, Any],
        rid: str,
        duplicate: tuple[str, str] | None = None,
    ) -> tuple[str, str, str | None]:
        try:
            if record.qb_id is None:
                created = client.create(entity, body, request_id=rid)
                return "create", str(created["Id"]), created.get("SyncToken")
            updated = client.sparse_update(entity, record.qb_id, record.qb_version or "0", body, request_id=rid)
            return "update", str(updated["Id"]), updated.get("SyncToken")
        except qbo_errors.DuplicateName as exc:
            if duplicate is None:
                raise
            raise Blocked(
                duplicate[0],
                duplicate[1],
                "Rename it in the source or in QuickBooks, or link it: POST /v1/match-issues/{id}/resolve.",
                qb_message=exc.detail,
            ) from None

    def _match(
        self, client: QboClient, rule: MatchRule, key: str | None, label: str, auto_create: bool
    ) -> dict[str, Any] | None:
        """The QuickBooks object this record is, by its matching key (T1 email, T2 SKU); None: create it."""
        if not key:
            if auto_create:
                return None
            raise Blocked(
                f"{rule.kind}_missing_{rule.key_code}",
                f"{rule.kind.capitalize()} {label!r} has no {rule.key_name} to match on.",
                f"Add the {rule.key_name} in the source, or link it by hand.",
            )
        found = client.query_all(rule.entity, where=f"{rule.query_field} = {_q(key)}")
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise Blocked(
                f"{rule.kind}_{rule.key_code}_shared",
                f"{len(found)} QuickBooks {rule.kind}s share the {rule.key_name} {key}.",
                'Pick one: POST /v1/match-issues/{id}/resolve {"quickbooks_id": …}.',
                candidates=[{"quickbooks_id": c["Id"], "name": c.get(rule.name_field)} for c in found],
            )
        if auto_create:
            return None
        raise Blocked(
            f"{rule.kind}_not_found",
            f"No QuickBooks {rule.kind} has the {rule.key_name} {key}.",
            f"Create it in QuickBooks, turn on auto-create {rule.kind}s, or link it by hand.",
        )

    def _ids(self, client: QboClient, entity: str) -> dict[str, str]:
        """Name → Id of a small QuickBooks list (terms, classes, accounts, tax codes), cached per realm for a
        minute so a thousand invoices do not read the lists a thousand times."""
        key = (client.realm_id, entity)
        cached = self._lists.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        name_field = "FullyQualifiedName" if entity in ("Account", "Class") else "Name"
        ids = {str(row.get(name_field) or row.get("Name")): str(row["Id"]) for row in client.query_all(entity)}
        self._lists[key] = (time.monotonic() + LIST_CACHE_SECONDS, ids)
        return ids

    # --- dependencies ---------------------------------------------------------------------------------------

    def _dependency(self, record: SyncRecord, kind: str, source_id: str) -> SyncRecord:
        found = self.store.records.get(record.tenant_id, kind, source_id)
        if found is None:
            raise Waiting(
                [f"{kind}:{source_id}"], f"Waiting for {kind[:-1]} {source_id!r}, which has not been sent yet."
            )
        return found

    def _raise_if_waiting(self, record: SyncRecord, dependencies: list[SyncRecord]) -> None:
        pending = [d for d in dependencies if d.state != "synced" or d.qb_id is None]
        if pending:
            names = [f"{d.kind}:{d.source_id}" for d in pending]
            raise Waiting(names, f"Waiting for {', '.join(names)} to reach QuickBooks.")

    def _release_dependents(self, synced: SyncRecord) -> None:
        self.issues.release_dependents(synced.tenant_id, synced.kind, synced.source_id)

    # --- bookkeeping ----------------------------------------------------------------------------------------

    def _save_state(self, record: SyncRecord, **changes: Any) -> SyncRecord:
        current = record
        for _ in range(8):
            try:
                return self.store.records.save(replace(current, updated_at=iso(datetime.now(UTC)), **changes))
            except ConcurrentModification:
                fresh = self.store.records.get(record.tenant_id, record.kind, record.source_id)
                if fresh is None or fresh.content_hash != record.content_hash:
                    return record
                current = fresh
        raise ConcurrentModification("The record is changing too often.")

    def _finish(
        self,
        record: SyncRecord,
        state: SyncState,
        *,
        action: str = "",
        qb_id: str | None = None,
        qb_version: str | None = None,
        reason: dict[str, Any] | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> SyncRecord:
        now = iso(datetime.now(UTC))
        current = record
        for _ in range(8):
            if current.content_hash != record.content_hash:
                return current  # superseded while we worked: the newer transfer decides
            changes: dict[str, Any] = {"state": state, "reason": reason, "updated_at": now}
            if state == "synced":
                changes.update(qb_id=qb_id, qb_version=qb_version, synced_hash=current.content_hash, synced_at=now)
            try:
                saved = self.store.records.save(replace(current, **changes))
                break
            except ConcurrentModification:
                fresh = self.store.records.get(record.tenant_id, record.kind, record.source_id)
                if fresh is None:
                    return record
                current = fresh
        else:
            raise ConcurrentModification("The record is changing too often.")
        status: TransferStatus = TRANSFER_STATUS[state]
        self.store.records.log(
            TransferRecord(
                record.tenant_id,
                record.transfer_id,
                record.kind,
                record.source_id,
                status,
                now,
                action=action,
                target=record.target,
                qb_id=qb_id or record.qb_id,
                code=code,
                message=message,
            )
        )
        return saved


def _job_ref(record: SyncRecord) -> str:
    return f"{record.kind}:{record.source_id}:{record.content_hash}"


def _parse_job_ref(ref: str) -> tuple[str, str, str] | None:
    """``<kind>:<source id>:<content hash>`` as written by :func:`_job_ref`, or None for any other reference."""
    kind, _, rest = ref.partition(":")
    source_id, _, content = rest.rpartition(":")
    if kind not in EVENT_ON_SYNC or not source_id or len(content) != 32:
        return None
    return kind, source_id, content
