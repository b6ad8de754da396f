"""Domain records → API response models."""

from __future__ import annotations

from qbsync.models import TenantCreated, TenantList, TenantView
from qbsync.store.ports import Page, Tenant
from qbsync.tenancy import CreatedTenant, settings_of


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
