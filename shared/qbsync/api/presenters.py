"""Domain records → API response models."""

from __future__ import annotations

from typing import Any

from qbsync.models import StrictModel, TenantCreated, TenantList, TenantView
from qbsync.store.ports import Page, SyncRecord, Tenant
from qbsync.sync.ingest import RecordView, record_view
from qbsync.tenancy import CreatedTenant, settings_of


class PaymentView(RecordView):
    """A payment's sync state and what the reconciler last saw of it in QuickBooks."""

    drift: dict[str, Any] | None = None  # {"code": "deleted", "message", "detected_at"}
    reconciled_at: str | None = None


class InvoiceView(PaymentView):
    """An invoice's sync state plus its QuickBooks balance and paid status (R1, R2). ``paid`` is null until the
    reconciler has looked at it."""

    balance: str | None = None
    quickbooks_total: str | None = None
    paid: bool | None = None
    paid_date: str | None = None
    payments: list[dict[str, Any]] = []  # {"quickbooks_id", "date", "amount", "origin": qbsync|quickbooks, "id"?}


def payment_view(record: SyncRecord) -> PaymentView:
    seen = record.reconciliation or {}
    return PaymentView(
        **record_view(record).model_dump(), drift=seen.get("drift"), reconciled_at=seen.get("checked_at")
    )


def invoice_view(record: SyncRecord) -> InvoiceView:
    seen = record.reconciliation or {}
    return InvoiceView(
        **payment_view(record).model_dump(),
        balance=seen.get("balance"),
        quickbooks_total=seen.get("total"),
        paid=seen.get("paid"),
        paid_date=seen.get("paid_date"),
        payments=list(seen.get("payments") or []),
    )


class InvoiceSummary(InvoiceView):
    """An invoice in the list: its sync state plus what identifies it to a person."""

    doc_number: str | None = None
    customer_id: str | None = None
    date: str | None = None
    total: str | None = None


class InvoiceList(StrictModel):
    items: list[InvoiceSummary]
    cursor: str | None = None


def invoice_list(page: Page[SyncRecord]) -> InvoiceList:
    items = []
    for record in page.items:
        payload = record.payload
        items.append(
            InvoiceSummary(
                **invoice_view(record).model_dump(),
                doc_number=_opt(payload.get("doc_number")),
                customer_id=_opt(payload.get("customer_id")),
                date=_opt(payload.get("date")),
                total=_opt(payload.get("total")),
            )
        )
    return InvoiceList(items=items, cursor=page.cursor)


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def tenant_view(tenant: Tenant) -> TenantView:
    return TenantView(
        tenant_id=tenant.tenant_id,
        name=tenant.name,
        status=tenant.status,
        settings=settings_of(tenant),
        created_at=tenant.created_at,
        updated_at=tenant.updated_at,
    )


def tenant_created(created: CreatedTenant) -> TenantCreated:
    return TenantCreated(**tenant_view(created.tenant).model_dump(), api_key=created.api_key)


def tenant_list(page: Page[Tenant]) -> TenantList:
    return TenantList(items=[tenant_view(t) for t in page.items], cursor=page.cursor)
