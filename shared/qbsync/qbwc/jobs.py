"""The connector job queue's vocabulary: which qbXML request each job kind becomes, and the internal API other
parts of qbsync (the sync issues) use to queue work for a QuickBooks Desktop company file.

A job's payload is the qbXML record (``Customer``, ``Invoice``…) in JSON form; it is validated and built once at
enqueue time, so a record QuickBooks would refuse (a 42-character name, an amount with three decimals) fails when
it is queued, with the field named, instead of in the middle of a Web Connector conversation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from lxml import etree
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from qbsync.clock import Clock, SystemClock, iso
from qbsync.errors import NotFound, ValidationFailed
from qbsync.models import field_errors
from qbsync.qbxml import (
    Customer,
    Invoice,
    Item,
    JournalEntry,
    ReceivePayment,
    build_customer_add,
    build_customer_mod,
    build_customer_query,
    build_invoice_add,
    build_invoice_mod,
    build_invoice_query,
    build_item_add,
    build_item_mod,
    build_item_query,
    build_journal_entry_add,
    build_receive_payment_add,
    build_receive_payment_mod,
    build_receive_payment_query,
    build_txn_deleted_query,
)
from qbsync.qbxml.builders import IteratorMode
from qbsync.qbxml.purchasing import (
    Bill,
    CreditCardCharge,
    PurchaseOrder,
    TimeTracking,
    build_bill_add,
    build_credit_card_charge_add,
    build_item_inventory_query,
    build_purchase_order_add,
    build_time_tracking_add,
)
from qbsync.qbxml.versions import PREFERRED_VERSION, QbxmlVersion
from qbsync.store.ports import Job, Store

Builder = Callable[[str, Any, QbxmlVersion], etree._Element]
QueryBuilder = Callable[[str, Any, QbxmlVersion, "IteratorMode | None", "str | None"], etree._Element]
MAX_QUERY_PAGE = 100  # records per iterator page: keeps each receiveResponseXML far below Lambda's 6 MB


@dataclass(frozen=True)
class CustomerQuery:
    """Read customers (all, or those changed since ``from_modified``), a page at a time."""

    max_returned: int = MAX_QUERY_PAGE
    active_status: Literal["ActiveOnly", "InactiveOnly", "All"] | None = None
    from_modified: datetime | None = None


@dataclass(frozen=True)
class ItemQuery:
    """Read items of every type (all, or those changed since ``from_modified``), a page at a time."""

    max_returned: int = MAX_QUERY_PAGE
    active_status: Literal["ActiveOnly", "InactiveOnly", "All"] | None = None
    from_modified: datetime | None = None


@dataclass(frozen=True)
class InvoiceQuery:
    """Read invoices (paid status, balances, linked payments), a page at a time."""

    max_returned: int = MAX_QUERY_PAGE
    modified_from: datetime | None = None
    paid_status: Literal["All", "PaidOnly", "NotPaidOnly"] | None = None
    include_linked_txns: bool | None = None


@dataclass(frozen=True)
class CustomerChange:
    """CustomerMod: the customer's ListID, the EditSequence qbsync last saw, the fields to set."""

    list_id: str
    edit_sequence: str
    customer: Customer


@dataclass(frozen=True)
class InvoiceChange:
    """InvoiceMod: the invoice's TxnID, the EditSequence qbsync last saw, the header and (all) lines to set."""

    txn_id: str
    edit_sequence: str
    invoice: Invoice


@dataclass(frozen=True)
class ItemChange:
    """ItemServiceMod / ItemNonInventoryMod: the item's ListID, the EditSequence qbsync last saw, the fields to set.
    ``item.kind`` must be the item's type in QuickBooks (a mod cannot change it); ``sales_and_purchase``: QuickBooks'
    item is a sales-and-purchase one, so the mod keeps that form (and its purchase fields)."""

    list_id: str
    edit_sequence: str
    item: Item
    sales_and_purchase: bool = False


@dataclass(frozen=True)
class ReceivePaymentChange:
    """ReceivePaymentMod: the payment's TxnID, the EditSequence qbsync last saw, the header and (all) applications."""

    txn_id: str
    edit_sequence: str
    payment: ReceivePayment


@dataclass(frozen=True)
class Lookup:
    """Read one list object or transaction by id (its current EditSequence, before a mod)."""

    id: str


@dataclass(frozen=True)
class ReceivePaymentQuery:
    """Read payments changed since ``modified_from`` (each with the invoices it pays), a page at a time."""

    max_returned: int = MAX_QUERY_PAGE
    modified_from: datetime | None = None


@dataclass(frozen=True)
class TxnDeletedQuery:
    """Transactions of these types deleted since ``deleted_from`` (one answer, no iterator)."""

    types: tuple[str, ...] = ("Invoice", "ReceivePayment")
    deleted_from: datetime | None = None


@dataclass(frozen=True)
class ItemInventoryQuery:
    """Read inventory parts (QuantityOnHand), all or those changed since ``from_modified``, a page at a time."""

    max_returned: int = MAX_QUERY_PAGE
    from_modified: datetime | None = None


@dataclass(frozen=True)
class JobKind:
    name: str
    transfer_type: str
    record: type
    build_request: Builder | None
    id_field: str  # "list_id" for list objects, "txn_id" for transactions
    build_query: QueryBuilder | None = None  # iterator queries: run page by page within one session

    @property
    def iterates(self) -> bool:
        return self.build_query is not None

    def adapter(self) -> TypeAdapter[Any]:
        return _ADAPTERS[self.name]

    def record_from(self, payload: dict[str, Any]) -> Any:
        return self.adapter().validate_python(payload)

    def build(self, job: Job, version: QbxmlVersion, session: str | None = None) -> etree._Element:
        record = self.record_from(job.payload)
        if self.build_query is not None:
            # Iterators live in one QuickBooks session: continue only what this session started.
            iterator_id = job.result.get("iterator_id") if job.result.get("iterator_session") == session else None
            mode: IteratorMode = "Continue" if iterator_id else "Start"
            return self.build_query(job.request_id, record, version, mode, iterator_id)
        assert self.build_request is not None
        return self.build_request(job.request_id, record, version)


JOB_KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        JobKind("customer_add", "customers", Customer, lambda r, c, v: build_customer_add(r, c, version=v), "list_id"),
        JobKind(
            "customer_mod",
            "customers",
            CustomerChange,
            lambda r, c, v: build_customer_mod(r, c.list_id, c.edit_sequence, c.customer, version=v),
            "list_id",
        ),
        JobKind(
            "customer_lookup",
            "customers",
            Lookup,
            lambda r, q, v: build_customer_query(r, list_ids=[q.id]),
            "list_id",
        ),
        JobKind("item_add", "items", Item, lambda r, i, v: build_item_add(r, i, version=v), "list_id"),
        JobKind(
            "item_mod",
            "items",
            ItemChange,
            lambda r, c, v: build_item_mod(
                r, c.list_id, c.edit_sequence, c.item, sales_and_purchase=c.sales_and_purchase, version=v
            ),
            "list_id",
        ),
        JobKind(  # ItemQuery answers with the item's own type (ItemServiceRet, ItemInventoryRet…): see ret_type
            "item_lookup",
            "items",
            Lookup,
            lambda r, q, v: build_item_query(r, list_ids=[q.id]),
            "list_id",
        ),
        JobKind("invoice_add", "invoices", Invoice, lambda r, i, v: build_invoice_add(r, i, version=v), "txn_id"),
        JobKind(
            "invoice_mod",
            "invoices",
            InvoiceChange,
            lambda r, c, v: build_invoice_mod(r, c.txn_id, c.edit_sequence, c.invoice, version=v),
            "txn_id",
        ),
        JobKind(
            "invoice_lookup",
            "invoices",
            Lookup,
            lambda r, q, v: build_invoice_query(r, txn_ids=[q.id]),
            "txn_id",
        ),
        JobKind(
            "receive_payment_add",
            "payments",
            ReceivePayment,
            lambda r, p, v: build_receive_payment_add(r, p, version=v),
            "txn_id",
        ),
        JobKind(
            "receive_payment_mod",
            "payments",
            ReceivePaymentChange,
            lambda r, c, v: build_receive_payment_mod(r, c.txn_id, c.edit_sequence, c.payment, version=v),
            "txn_id",
        ),
        JobKind(
            "receive_payment_lookup",
            "payments",
            Lookup,
            lambda r, q, v: build_receive_payment_query(r, txn_ids=[q.id]),
            "txn_id",
        ),
        JobKind(
            "journal_entry_add",
            "journal_entries",
            JournalEntry,
            lambda r, j, v: build_journal_entry_add(r, j, version=v),
            "txn_id",
        ),
        JobKind(
            "customer_query",
            "customers",
            CustomerQuery,
            None,
            "list_id",
            build_query=lambda r, q, v, mode, iid: build_customer_query(
                r,
                max_returned=q.max_returned,
                active_status=q.active_status,
                from_modified=q.from_modified,
                iterator=mode,
                iterator_id=iid,
            ),
        ),
        JobKind(
            "item_query",
            "items",
            ItemQuery,
            None,
            "list_id",
            build_query=lambda r, q, v, mode, iid: build_item_query(
                r,
                max_returned=q.max_returned,
                active_status=q.active_status,
                from_modified=q.from_modified,
                iterator=mode,
                iterator_id=iid,
            ),
        ),
        JobKind(
            "invoice_query",
            "invoices",
            InvoiceQuery,
            None,
            "txn_id",
            build_query=lambda r, q, v, mode, iid: build_invoice_query(
                r,
                max_returned=q.max_returned,
                modified_from=q.modified_from,
                paid_status=q.paid_status,
                include_linked_txns=q.include_linked_txns,
                iterator=mode,
                iterator_id=iid,
            ),
        ),
        # Time and purchasing (T6-T8) and inventory sync.
        JobKind(
            "time_tracking_add",
            "timesheets",
            TimeTracking,
            lambda r, t, v: build_time_tracking_add(r, t),
            "txn_id",
        ),
        JobKind("bill_add", "expense_reports", Bill, lambda r, b, v: build_bill_add(r, b), "txn_id"),
        JobKind(
            "credit_card_charge_add",
            "expense_reports",
            CreditCardCharge,
            lambda r, c, v: build_credit_card_charge_add(r, c),
            "txn_id",
        ),
        JobKind(
            "purchase_order_add",
            "purchase_orders",
            PurchaseOrder,
            lambda r, p, v: build_purchase_order_add(r, p),
            "txn_id",
        ),
        JobKind(
            "item_inventory_query",
            "inventory",
            ItemInventoryQuery,
            None,
            "list_id",
            build_query=lambda r, q, v, mode, iid: build_item_inventory_query(
                r, max_returned=q.max_returned, from_modified=q.from_modified, iterator=mode, iterator_id=iid
            ),
        ),
        # Reconciliation (R1, R2): paid status, payments and deletions back from the company file.
        JobKind(
            "receive_payment_query",
            "payments",
            ReceivePaymentQuery,
            None,
            "txn_id",
            build_query=lambda r, q, v, mode, iid: build_receive_payment_query(
                r, max_returned=q.max_returned, modified_from=q.modified_from, iterator=mode, iterator_id=iid
            ),
        ),
        JobKind(
            "txn_deleted_query",
            "invoices",
            TxnDeletedQuery,
            lambda r, q, v: build_txn_deleted_query(r, list(q.types), deleted_from=q.deleted_from),
            "txn_id",
        ),
    )
}
_ADAPTERS: dict[str, TypeAdapter[Any]] = {name: TypeAdapter(kind.record) for name, kind in JOB_KINDS.items()}


def job_kind(name: str) -> JobKind:
    found = JOB_KINDS.get(name)
    if found is None:
        raise NotFound(f"Unknown job kind {name!r}; known: {', '.join(sorted(JOB_KINDS))}.")
    return found


class JobService:
    """Queue work for one connector's company file, in order."""

    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self.store = store
        self.clock = clock or SystemClock()

    def enqueue(
        self,
        tenant_id: str,
        connector_id: str,
        kind: str,
        record: Any,
        *,
        depends_on: Sequence[int] = (),
        source_ref: str | None = None,
    ) -> Job:
        """Queue ``record`` (a qbXML record or its JSON dict). ``depends_on``: seqs that must succeed first."""
        spec = job_kind(kind)
        adapter = spec.adapter()
        if dataclasses.is_dataclass(record) and not isinstance(record, type):
            record = dataclasses.asdict(record)  # validate its fields too, not just its type
        try:
            typed = adapter.validate_python(record)
        except PydanticValidationError as exc:
            raise ValidationFailed(field_errors(exc)) from None
        payload = adapter.dump_python(typed, mode="json", exclude_none=True)
        if self.store.connectors.get(tenant_id, connector_id) is None:
            raise NotFound(f"No connector {connector_id}.")
        now = iso(self.clock.now())
        job = Job(
            connector_id=connector_id,
            seq=0,
            tenant_id=tenant_id,
            kind=kind,
            transfer_type=spec.transfer_type,
            payload=payload,
            created_at=now,
            updated_at=now,
            depends_on=list(depends_on),
            source_ref=source_ref,
        )
        spec.build(job, PREFERRED_VERSION)  # refuse now what QuickBooks would refuse later (QbxmlFieldError)
        return self.store.jobs.enqueue(job)
