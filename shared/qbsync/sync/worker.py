"""Moving one record into QuickBooks (the transfer worker's ``sync.<kind>`` messages).

Idempotent under redelivery: a record whose synced content already equals its current content is a no-op; every
QBO write carries a requestid derived from (tenant, realm, kind, id, content) so a retried write is de-duplicated
by Intuit; the QuickBooks id is stored before the message is acknowledged. Order: an invoice waits for its customer
and items, a payment for its invoices; when a record syncs, whatever waited for it is queued again (T3, T4).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from qbsync.clock import iso
from qbsync.errors import ConcurrentModification, QbsyncError
from qbsync.events import EventPublisher
from qbsync.mappings import Mappings
from qbsync.models import TenantSettings
from qbsync.observability import get_logger
from qbsync.qbo import errors as qbo_errors
from qbsync.qbo.client import QboClient
from qbsync.qbo.requestids import request_id
from qbsync.qbo.tokens import NeedsReauth, NotConnected, TokenManager
from qbsync.qbwc.jobs import CustomerChange, InvoiceChange, ItemChange, JobService, ReceivePaymentChange, job_kind
from qbsync.qbxml.records import Item, ItemKind
from qbsync.settings import Settings
from qbsync.store.ports import Job, Store, SyncRecord, SyncState, TransferRecord, TransferStatus
from qbsync.sync import desktop_transfers, mapping, qbo_transfers
from qbsync.sync.desktop_match import IMPORT_READY, WAITING_CODE, DesktopMatcher
from qbsync.sync.ingest import IssueService
from qbsync.sync.records import (
    SourceCustomer,
    SourceExpenseReport,
    SourceInvoice,
    SourceItem,
    SourcePayment,
    SourcePurchaseOrder,
    SourceTimesheet,
)
from qbsync.tenancy import settings_of
from qbsync.transfers import MessageMeta, TransferMessage

EVENT_ON_SYNC = {
    "invoices": "invoice.synced",
    "payments": "payment.synced",
    "customers": "customer.synced",
    "items": "item.synced",
    **desktop_transfers.EVENT_ON_SYNC,
}
LIST_CACHE_SECONDS = 60.0
TRANSFER_STATUS: dict[str, TransferStatus] = {
    "synced": "succeeded",
    "failed": "failed",
    "blocked": "blocked",
    "waiting": "waiting",
    "pending": "queued",
}
Found = tuple[str, str, Any]  # a match candidate: QuickBooks id, name, the object
DESKTOP_UPDATES = {
    "customers": ("customer_mod", "customer_lookup"),
    "items": ("item_mod", "item_lookup"),
    "invoices": ("invoice_mod", "invoice_lookup"),
    "payments": ("receive_payment_mod", "receive_payment_lookup"),
}
# Desktop item types qbsync can modify (the qbXML item kind each Mod is built with); any other is a blocked update.
ITEM_MOD_KINDS: dict[str, ItemKind] = {"ItemService": "service", "ItemNonInventory": "non_inventory"}
ITEM_TYPE_NAMES = {
    "ItemInventory": "an inventory part",
    "ItemInventoryAssembly": "an inventory assembly",
    "ItemOtherCharge": "an other charge item",
    "ItemGroup": "a group item",
    "ItemDiscount": "a discount item",
    "ItemSubtotal": "a subtotal item",
    "ItemPayment": "a payment item",
    "ItemSalesTax": "a sales tax item",
    "ItemSalesTaxGroup": "a sales tax group",
    "ItemFixedAsset": "a fixed asset item",
}
JOB_FINISHED = "qbd.job_finished"  # transfer kind: apply a Desktop job's outcome to its record
REFRESH_REF = "refresh:"  # <record job ref>:<stale EditSequence>: a lookup before a Desktop mod
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
        self.matcher = DesktopMatcher(store, self.jobs)
        self.transfers = desktop_transfers.DesktopTransfers(store)
        # Other writers of Desktop jobs (summarized journal entries…): each says True when the job was its own.
        self.job_listeners: list[Callable[[Job], bool]] = []

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
            self._wait(record, waiting.reason, str(waiting))
            return {"waiting": waiting.reason["waiting_for"]}
        except desktop_transfers.ConfigurationIssue as issue:
            self._configuration_issue(record, issue.reason)
            return {"blocked": issue.reason["code"]}
        except mapping.MappingError as exc:
            if kind not in desktop_transfers.KINDS:
                raise
            reason = {
                "code": exc.code,
                "message": exc.detail,
                "errors": exc.extra.get("errors"),
                "action": "Fix the record in the source and send it again.",
            }
            self._finish(record, "failed", reason=reason, code=exc.code, message=exc.detail)
            return {"failed": exc.code}
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

    def _configuration_issue(self, record: SyncRecord, reason: dict[str, Any]) -> None:
        """Blocked until the mappings or settings are fixed (M1-M5): the record says why, the SaaS app is told."""
        self._finish(
            record,
            "blocked",
            reason=reason,
            code=str(reason.get("qb_code") or reason["code"]),
            message=reason["message"],
        )
        self.events.publish(
            desktop_transfers.CONFIG_EVENT, record.tenant_id, {"kind": record.kind, "id": record.source_id, **reason}
        )

    # --- QuickBooks Desktop: records become connector jobs, run at the next Web Connector conversation --------

    def _to_desktop(self, record: SyncRecord, settings: TenantSettings, connector_id: str) -> dict[str, Any]:
        if record.job_seq is not None:
            job = self.store.jobs.get(connector_id, record.job_seq)
            if job is not None and job.status in ("queued", "sent") and job.source_ref == _job_ref(record):
                return {"skipped": "already queued"}  # redelivery: the job is waiting for the Web Connector
        previous = self._previous_add(record, connector_id)
        if previous is not None:
            # An older content of this record is being added. A second add would make a second invoice (or a
            # 3100 duplicate name): wait for it, then send this content as an update of what it created.
            if previous.status in ("queued", "sent"):
                return self._wait_for_previous(record, previous)
            created = previous.result.get("list_id") or previous.result.get("txn_id")
            if previous.status == "done" and created:
                record = self._save_state(record, qb_id=str(created), qb_version=previous.result.get("edit_sequence"))
        try:
            if record.qb_id is not None:
                if record.kind not in DESKTOP_UPDATES:
                    raise Blocked(
                        "desktop_update_unsupported",
                        f"{record.kind[:-1].capitalize()} {record.source_id!r} is already in QuickBooks Desktop; "
                        f"qbsync updates {', '.join(DESKTOP_UPDATES)} there, not {record.kind}.",
                        "Change it in QuickBooks Desktop, or keep the source unchanged.",
                    )
                if record.qb_version is None or (record.kind == "items" and record.qb_type is None):
                    # Linked, not created by qbsync (or an item of unknown type): read its EditSequence (and the
                    # item's type, which names the Mod request) first.
                    return self._read_edit_sequence(record, connector_id)
                if record.kind == "items" and _item_base_type(record.qb_type) not in ITEM_MOD_KINDS:
                    raise _item_type_blocked(record)
            elif record.kind in ("customers", "items"):
                if not self.matcher.ready(record.tenant_id, connector_id):
                    return self._wait_for_import(record, connector_id)
                linked = self._desktop_match(record, settings, connector_id)
                if linked is not None:
                    return self._linked(record, linked.qb_id, None)
            elif record.kind in desktop_transfers.KINDS and self.transfers.enabled(record, connector_id) is None:
                reason = self.transfers.disabled_reason(record, connector_id)
                self._finish(record, "waiting", reason=reason, message=reason["message"])
                return {"waiting": desktop_transfers.DISABLED_CODE}
            kind, payload, depends_on = self._desktop_job(record, settings)
            job = self.jobs.enqueue(
                record.tenant_id, connector_id, kind, payload, depends_on=depends_on, source_ref=_job_ref(record)
            )
        except Blocked as blocked:
            self._finish(record, "blocked", reason=blocked.reason, code=blocked.reason["code"], message=str(blocked))
            return {"blocked": blocked.reason["code"]}
        except Waiting as waiting:
            self._wait(record, waiting.reason, str(waiting))
            return {"waiting": waiting.reason["waiting_for"]}
        except desktop_transfers.ConfigurationIssue as issue:
            self._configuration_issue(record, issue.reason)
            self.transfers.note_issue(record, connector_id, issue.reason)
            return {"blocked": issue.reason["code"]}
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
        saved = self._save_state(
            record,
            state="pending",
            job_seq=job.seq,
            reason={
                "code": "queued_for_web_connector",
                "message": "Queued for the next QuickBooks Web Connector run.",
                "action": "none: it is sent at the next scheduled run",
            },
        )
        if job.status in ("done", "error", "blocked"):
            # Redelivered after a crash: the job queued by the first delivery has already run in QuickBooks.
            self.job_finished(job)
            return {"finished_job": job.seq}
        if record.kind in ("customers", "items") and saved.job_seq == job.seq:
            # Invoices that waited for this customer or item can queue now, behind its job: the same Web
            # Connector run then creates both, instead of the invoice waiting for the next run.
            self._release_dependents(saved)
        return {"queued_job": job.seq}

    def _previous_add(self, record: SyncRecord, connector_id: str) -> Job | None:
        """The add job of an older content of ``record`` whose outcome the record does not carry yet."""
        if record.qb_id is not None or record.job_seq is None:
            return None
        job = self.store.jobs.get(connector_id, record.job_seq)
        if job is None or not job.kind.endswith("_add") or job.source_ref == _job_ref(record):
            return None
        parsed = _parse_job_ref(job.source_ref or "")
        if parsed is None or parsed[:2] != (record.kind, record.source_id):
            return None
        return job

    def _wait_for_previous(self, record: SyncRecord, previous: Job) -> dict[str, Any]:
        self._save_state(
            record,
            state="pending",
            reason={
                "code": "waiting_previous_version",
                "message": "An earlier version of this record is on its way to QuickBooks Desktop; this one follows "
                "as an update.",
                "action": "none: it is sent automatically",
            },
        )
        return {"waiting": f"job {previous.seq}"}

    def _superseded_job_finished(self, job: Job, record: SyncRecord) -> None:
        """A job for an older content finished while the newer content waited for it (``_wait_for_previous``):
        link what it created and send the newer content (then an update); if it failed, the newer content goes on
        its own."""
        if record.job_seq != job.seq or record.state == "synced":
            return
        created = job.result.get("list_id") or job.result.get("txn_id")
        if job.status == "done" and created and record.qb_id is None and job.kind.endswith("_add"):
            record = self._save_state(record, qb_id=str(created), qb_version=job.result.get("edit_sequence"))
        self.issues.requeue(record)

    def _wait_for_import(self, record: SyncRecord, connector_id: str) -> dict[str, Any]:
        saved = self._finish(
            record,
            "waiting",
            reason={
                "code": WAITING_CODE,
                "message": "QuickBooks Desktop's customers and items are read at the next Web Connector run, to "
                "match this record against them.",
                "action": "none: it is matched and sent automatically",
            },
        )
        if saved.state == "waiting" and self.matcher.ready(record.tenant_id, connector_id):
            self.issues.requeue(saved)  # the import finished while we looked: nobody else will release it
        return {"waiting": WAITING_CODE}

    def _desktop_match(self, record: SyncRecord, settings: TenantSettings, connector_id: str) -> Any | None:
        """The company file's customer/item this record is (an index entry), or None to create it."""
        if record.kind == "customers":
            customer = SourceCustomer.model_validate(record.payload)
            linked = self._match(
                CUSTOMER_MATCH,
                customer.email,
                customer.name,
                settings.auto_create_customers,
                lambda key: [(e.qb_id, e.name, e) for e in self.matcher.find_customer(connector_id, key)],
            )
            name = mapping.qbd_customer(customer, settings, creating=True).name or customer.name
            rule = CUSTOMER_MATCH
        else:
            item = SourceItem.model_validate(record.payload)
            linked = self._match(
                ITEM_MATCH,
                item.sku,
                item.name,
                settings.auto_create_items,
                lambda key: [(e.qb_id, e.name, e) for e in self.matcher.find_item(connector_id, key)],
            )
            name = mapping.qbd_item_name(item, settings)
            rule = ITEM_MATCH
        if linked is not None:
            return linked
        taken = self.matcher.find_name(connector_id, rule.kind, name)
        if taken:
            raise Blocked(
                f"{rule.kind}_duplicate_name",
                f"The company file already has a {rule.kind} named {taken[0].name!r}, and its {rule.key_name} "
                "does not match.",
                "Rename it in the source or in QuickBooks, or link it: POST /v1/match-issues/{id}/resolve "
                '{"quickbooks_id": …}.',
                candidates=[{"quickbooks_id": e.qb_id, "name": e.name} for e in taken],
            )
        return None

    def _linked(self, record: SyncRecord, qb_id: str, qb_version: str | None) -> dict[str, Any]:
        synced = self._finish(record, "synced", action="link", qb_id=qb_id, qb_version=qb_version)
        self.events.publish(
            EVENT_ON_SYNC[record.kind], record.tenant_id, {"id": record.source_id, "quickbooks_id": qb_id}
        )
        self._release_dependents(synced)
        return {"synced": qb_id, "action": "link"}

    def _read_edit_sequence(self, record: SyncRecord, connector_id: str) -> dict[str, Any]:
        """Queue a lookup of the QuickBooks object's current EditSequence (a mod needs it); when it comes back the
        record is sent again (``job_finished``). The reference names the stale version, so each one is read once."""
        job = self.jobs.enqueue(
            record.tenant_id,
            connector_id,
            DESKTOP_UPDATES[record.kind][1],
            {"id": record.qb_id},
            source_ref=f"{REFRESH_REF}{_job_ref(record)}:{record.qb_version or '-'}",
        )
        self._save_state(
            record,
            state="pending",
            reason={
                "code": "reading_quickbooks",
                "message": "Reading the QuickBooks Desktop record's current version before updating it.",
                "action": "none: it is updated at the next Web Connector runs",
            },
        )
        if job.status in ("done", "error", "blocked"):
            self.job_finished(job)
        return {"queued_job": job.seq}

    def _edit_sequence_read(self, job: Job, ref: str) -> None:
        parsed = _parse_job_ref(ref.removeprefix(REFRESH_REF).rsplit(":", 1)[0])
        if parsed is None:
            return
        kind, source_id, content = parsed
        record = self.store.records.get(job.tenant_id, kind, source_id)
        if record is None or record.content_hash != content or record.state == "synced":
            return
        edit_sequence = job.result.get("edit_sequence")
        if job.status == "done" and edit_sequence:
            changes: dict[str, Any] = {"qb_version": str(edit_sequence)}
            if kind == "items":  # ItemQuery answers with the item's own Ret: ItemServiceRet, ItemInventoryRet…
                changes["qb_type"] = str(job.result.get("qb_type") or "unknown")
            self.issues.requeue(self._save_state(record, **changes))
            return
        reason = {
            "code": "quickbooks_record_missing",
            "qb_code": str(job.result.get("status_code", "")),
            "message": f"QuickBooks Desktop no longer has {kind[:-1]} {record.qb_id}: "
            + str(job.result.get("message", "")),
            "action": "Link the record again (POST /v1/records/{kind}/{id}/resync after fixing it in QuickBooks).",
        }
        self._finish(record, "failed", reason=reason, code=reason["qb_code"], message=reason["message"])

    def _desktop_job(self, record: SyncRecord, settings: TenantSettings) -> tuple[str, Any, list[int]]:
        if record.kind in desktop_transfers.KINDS:
            return self.transfers.job(record, settings, self._dependency, self._queued_or_synced)
        if record.kind == "customers":
            qbd = mapping.qbd_customer(
                SourceCustomer.model_validate(record.payload), settings, creating=record.qb_id is None
            )
            if record.qb_id is not None:
                return "customer_mod", CustomerChange(record.qb_id, record.qb_version or "", qbd), []
            return "customer_add", qbd, []
        if record.kind == "items":
            item = mapping.qbd_item(SourceItem.model_validate(record.payload), settings)
            if record.qb_id is not None:
                # The Mod request follows the item's type in QuickBooks (checked by _to_desktop), not the source's
                # type: QuickBooks cannot turn a service into a non-inventory part. A sales-and-purchase item stays
                # one (its purchase fields untouched) even when qbsync sends no purchase information.
                base, _, form = (record.qb_type or "").partition("/")
                item_change = ItemChange(
                    record.qb_id,
                    record.qb_version or "",
                    replace(item, kind=ITEM_MOD_KINDS[base]),
                    sales_and_purchase=form == "SalesAndPurchase",
                )
                return "item_mod", item_change, []
            return "item_add", item, []
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
            mapped = mapping.qbd_invoice(
                invoice, settings, refs, customer=customer, items=items, discount_item=settings.discount_item
            )
            if record.qb_id is not None:
                return "invoice_mod", InvoiceChange(record.qb_id, record.qb_version or "", mapped), depends_on
            return "invoice_add", mapped, depends_on
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
            mapped_payment = mapping.qbd_payment(payment, settings, refs)
            if record.qb_id is not None:
                change = ReceivePaymentChange(record.qb_id, record.qb_version or "", mapped_payment)
                return "receive_payment_mod", change, []
            return "receive_payment_add", mapped_payment, []
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
        if self.matcher.on_finished(job):
            # The match index is complete. What waited for it is released by the transfer worker, not inside this
            # Web Connector call (thousands of records would outlast its timeout).
            self.issues.ingest.queue.send(
                TransferMessage(
                    tenant_id=job.tenant_id,
                    transfer_id=f"import-{job.connector_id}-{job.seq}",
                    kind=IMPORT_READY,
                    target="qbd",
                    payload={"connector_id": job.connector_id},
                ),
                group_id=f"{job.tenant_id}:qbd:{job.connector_id}",
                deduplication_id=f"import-ready-{job.connector_id}-{job.seq}",
            )
            return
        if (job.source_ref or "").startswith(REFRESH_REF):
            self._edit_sequence_read(job, job.source_ref or "")
            return
        if any(listener(job) for listener in self.job_listeners):
            return
        parsed = _parse_job_ref(job.source_ref or "")
        if parsed is None:
            return  # a job queued by something other than the record sync
        kind, source_id, content = parsed
        record = self.store.records.get(job.tenant_id, kind, source_id)
        if record is None:
            return
        if record.content_hash != content:  # superseded by newer content, which may be waiting for this job
            self._superseded_job_finished(job, record)
            return
        if record.job_seq is not None and record.job_seq != job.seq:
            return  # an older job of the same content (re-sent after a failure): the newer one decides
        # job_seq None: the job ran before the worker that queued it saved the record; the content hash says it
        # is this record's job, and that worker will not overwrite the outcome (see _save_state).
        result = job.result
        if job.status == "done":
            qb_id = result.get("list_id") or result.get("txn_id")
            if kind in ("customers", "items") and qb_id and result.get("name"):
                self.matcher.remember(
                    job.connector_id,
                    kind[:-1],
                    str(qb_id),
                    str(result["name"]),
                    email=record.payload.get("email") if kind == "customers" else None,
                )
            synced = self._finish(
                record,
                "synced",
                action="update" if job.kind.endswith("_mod") else "create",
                qb_id=qb_id,
                qb_version=result.get("edit_sequence"),
                qb_type=_item_type(job) if kind == "items" else None,
            )
            self.events.publish(EVENT_ON_SYNC[kind], record.tenant_id, {"id": source_id, "quickbooks_id": qb_id})
            self._release_dependents(synced)
            return
        if job.status == "blocked":
            waits = self._unsynced_dependencies(record)
            self._wait(
                record,
                {
                    "code": "waiting",
                    "waiting_for": waits,
                    "message": result.get("reason", "a record it needs failed"),
                    "action": "Fix the record it depends on.",
                },
                result.get("reason"),
            )
            return
        code = str(result.get("status_code", ""))
        if code == "3200" and job.kind.endswith("_mod"):
            # Changed in QuickBooks since qbsync's last write: read the current EditSequence and send it again.
            self._read_edit_sequence(record, job.connector_id)
            return
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
        stale = self.transfers.stale_mapping(record, job) if kind in desktop_transfers.KINDS else None
        if stale is not None:
            self._configuration_issue(record, stale)
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

    def defer_job_finished(self, job: Job) -> None:
        """The Web Connector call that finished ``job`` only queues its outcome: applying it (the record's state,
        events, releasing dependents) happens in the transfer worker, so receiveResponseXML stays short however many
        jobs one answer finishes (API Gateway gives it 29 seconds)."""
        self.issues.ingest.queue.send(
            TransferMessage(
                tenant_id=job.tenant_id,
                transfer_id=f"job-{job.connector_id}-{job.seq}",
                kind=JOB_FINISHED,
                target="qbd",
                payload={"connector_id": job.connector_id, "seq": job.seq},
            ),
            group_id=f"{job.tenant_id}:qbd:{job.connector_id}",
            deduplication_id=f"job-{job.connector_id}-{job.seq}-{job.status}-{job.version}",
        )

    def apply_job_outcome(self, message: TransferMessage, meta: MessageMeta) -> dict[str, Any]:
        """Transfer-queue handler for :meth:`defer_job_finished` (idempotent: applying an outcome twice is a no-op)."""
        job = self.store.jobs.get(str(message.payload["connector_id"]), int(message.payload["seq"]))
        if job is None or job.tenant_id != message.tenant_id or job.status not in ("done", "error", "blocked"):
            return {"skipped": "no finished job"}
        self.job_finished(job)
        return {"applied": job.seq}

    def import_ready(self, message: TransferMessage, meta: MessageMeta) -> dict[str, Any]:
        """Transfer-queue handler: a connector's match index is complete; match and send what waited for it."""
        released = self.issues.release(
            message.tenant_id, lambda reason: reason.get("code") == WAITING_CODE, kinds=("customers", "items")
        )
        return {"released": released}

    def _unsynced_dependencies(self, record: SyncRecord) -> list[str]:
        payload = record.payload
        refs = [("customers", payload.get("customer_id")), ("items", payload.get("service_item_id"))]
        refs += [("items", line.get("item_id")) for line in payload.get("lines", [])]
        refs += [("customers", line.get("customer_id")) for line in payload.get("lines", [])]
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
                    CUSTOMER_MATCH,
                    customer.email,
                    customer.name,
                    settings.auto_create_customers,
                    self._qbo_lookup(client, CUSTOMER_MATCH),
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
                linked = self._match(
                    ITEM_MATCH, item.sku, item.name, settings.auto_create_items, self._qbo_lookup(client, ITEM_MATCH)
                )
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
        if kind in desktop_transfers.KINDS:
            entity, body = self._qbo_transfer_body(client, record, settings)
            return self._write(client, record, entity, body, rid)
        raise QbsyncError(f"Unknown record kind {kind!r}.")

    def _qbo_transfer_body(
        self, client: QboClient, record: SyncRecord, settings: TenantSettings
    ) -> tuple[str, dict[str, Any]]:
        """T6-T8 to QuickBooks Online (see :mod:`qbsync.sync.qbo_transfers`); dependencies must be in QuickBooks."""
        look = qbo_transfers.QboLookup(
            desktop_transfers.Resolver(Mappings.load(self.store, record.tenant_id), settings),
            lambda entity: self._ids(client, entity),
        )

        def ref(kind: str, source_id: str) -> mapping.QbRef:
            found = self._dependency(record, kind, source_id)
            self._raise_if_waiting(record, [found])
            return mapping.QbRef(found.qb_id, found.payload.get("name"))

        if record.kind == "timesheets":
            ts = SourceTimesheet.model_validate(record.payload)
            customer = ref("customers", ts.customer_id) if ts.customer_id else None
            body = qbo_transfers.time_activity(ts, look, customer=customer, item=ref("items", ts.service_item_id))
            return "TimeActivity", body
        if record.kind == "expense_reports":
            report = SourceExpenseReport.model_validate(record.payload)
            ids = sorted({line.customer_id for line in report.lines if line.customer_id})
            return qbo_transfers.expense(report, look, customers={cid: ref("customers", cid) for cid in ids})
        order = SourcePurchaseOrder.model_validate(record.payload)
        items = {line.item_id: ref("items", line.item_id) for line in order.lines}
        return "PurchaseOrder", qbo_transfers.purchase_order(order, look, items=items)

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
        self, rule: MatchRule, key: str | None, label: str, auto_create: bool, lookup: Callable[[str], list[Found]]
    ) -> Any | None:
        """The QuickBooks object this record is, by its matching key (T1 email, T2 SKU); None: create it.
        ``lookup(key)`` gives the candidates as (QuickBooks id, name, object)."""
        if not key:
            if auto_create:
                return None
            raise Blocked(
                f"{rule.kind}_missing_{rule.key_code}",
                f"{rule.kind.capitalize()} {label!r} has no {rule.key_name} to match on.",
                f"Add the {rule.key_name} in the source, or link it by hand.",
            )
        found = lookup(key)
        if len(found) == 1:
            return found[0][2]
        if len(found) > 1:
            raise Blocked(
                f"{rule.kind}_{rule.key_code}_shared",
                f"{len(found)} QuickBooks {rule.kind}s share the {rule.key_name} {key}.",
                'Pick one: POST /v1/match-issues/{id}/resolve {"quickbooks_id": …}.',
                candidates=[{"quickbooks_id": qb_id, "name": name} for qb_id, name, _ in found],
            )
        if auto_create:
            return None
        raise Blocked(
            f"{rule.kind}_not_found",
            f"No QuickBooks {rule.kind} has the {rule.key_name} {key}.",
            f"Create it in QuickBooks, turn on auto-create {rule.kind}s, or link it by hand.",
        )

    def _qbo_lookup(self, client: QboClient, rule: MatchRule) -> Callable[[str], list[Found]]:
        def lookup(key: str) -> list[Found]:
            rows = client.query_all(rule.entity, where=f"{rule.query_field} = {_q(key)}")
            return [(str(row["Id"]), str(row.get(rule.name_field) or ""), row) for row in rows]

        return lookup

    def _ids(self, client: QboClient, entity: str) -> dict[str, str]:
        """Name → Id of a small QuickBooks list (terms, classes, accounts, tax codes), cached per realm for a
        minute so a thousand invoices do not read the lists a thousand times."""
        key = (client.realm_id, entity)
        cached = self._lists.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        name_field = {"Account": "FullyQualifiedName", "Class": "FullyQualifiedName"}.get(entity, "Name")
        name_field = "DisplayName" if entity in ("Employee", "Vendor") else name_field
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

    def _wait(self, record: SyncRecord, reason: dict[str, Any], message: str | None) -> None:
        """Park ``record`` until its dependencies reach QuickBooks. The wait edges are written first and the
        dependencies looked at again after: one that synced in between released nobody, so we requeue ourselves."""
        waits = [str(ref) for ref in reason.get("waiting_for", [])]
        self.issues.wait_for(record, waits)
        saved = self._finish(record, "waiting", reason=reason, message=message)
        if waits and saved.state == "waiting" and self._all_synced(record.tenant_id, waits):
            self.issues.requeue(saved)

    def _all_synced(self, tenant_id: str, refs: list[str]) -> bool:
        for ref in refs:
            kind, _, source_id = ref.partition(":")
            found = self.store.records.get(tenant_id, kind, source_id) if kind in EVENT_ON_SYNC else None
            if found is None or found.state != "synced" or found.qb_id is None:
                return False
        return True

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
                if fresh.state != record.state:
                    return fresh  # someone decided its outcome meanwhile (its job already ran): keep that
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
        qb_type: str | None = None,
        reason: dict[str, Any] | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> SyncRecord:
        now = iso(datetime.now(UTC))
        current = record
        for _ in range(8):
            if current.content_hash != record.content_hash:  # superseded while we worked: the newer transfer decides
                if not (state == "synced" and qb_id and current.qb_id is None and current.target == record.target):
                    return current
                # …but the older content did reach QuickBooks: keep the link, so the newer transfer updates that
                # object instead of creating a second one.
                try:
                    return self.store.records.save(replace(current, qb_id=qb_id, qb_version=qb_version))
                except ConcurrentModification:
                    fresh = self.store.records.get(record.tenant_id, record.kind, record.source_id)
                    if fresh is None:
                        return record
                    current = fresh
                    continue
            changes: dict[str, Any] = {"state": state, "reason": reason, "updated_at": now}
            if state == "synced":
                changes.update(qb_id=qb_id, qb_version=qb_version, synced_hash=current.content_hash, synced_at=now)
                changes["qb_type"] = qb_type
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


def _item_type(job: Job) -> str | None:
    """The QuickBooks type (and form) of the item an item_add / item_mod job wrote: from its answer
    (``ItemServiceRet`` → ``ItemService``), else (a response recovered by a verification query) from its request."""
    answered = job.result.get("qb_type")
    if answered:
        return str(answered)
    if job.kind not in ("item_add", "item_mod"):
        return None
    record = job_kind(job.kind).record_from(job.payload)
    item = record if isinstance(record, Item) else record.item
    both = item.is_sales_and_purchase or getattr(record, "sales_and_purchase", False)
    base = {"service": "ItemService", "non_inventory": "ItemNonInventory"}[item.kind]
    return base + ("/SalesAndPurchase" if both else "")


def _item_base_type(qb_type: str | None) -> str:
    return (qb_type or "").partition("/")[0]


def _item_type_blocked(record: SyncRecord) -> Blocked:
    qb_type = _item_base_type(record.qb_type) or "unknown"
    what = ITEM_TYPE_NAMES.get(qb_type, f"an item of type {qb_type}")
    return Blocked(
        "desktop_item_type_unsupported",
        f"Item {record.source_id!r} is linked to {what} in QuickBooks Desktop ({record.qb_id}); qbsync updates "
        "service and non-inventory items there, so this change was not sent.",
        "Make the change in QuickBooks Desktop and keep the source unchanged, or link the record to a service or "
        'non-inventory item: POST /v1/match-issues/{id}/resolve {"quickbooks_id": …}.',
        quickbooks_type=qb_type,
    )


def _job_ref(record: SyncRecord) -> str:
    return f"{record.kind}:{record.source_id}:{record.content_hash}"


def _parse_job_ref(ref: str) -> tuple[str, str, str] | None:
    """``<kind>:<source id>:<content hash>`` as written by :func:`_job_ref`, or None for any other reference."""
    kind, _, rest = ref.partition(":")
    source_id, _, content = rest.rpartition(":")
    if kind not in EVENT_ON_SYNC or not source_id or len(content) != 32:
        return None
    return kind, source_id, content
