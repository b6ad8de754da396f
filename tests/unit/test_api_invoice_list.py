"""GET /v1/invoices: the invoices tab's data (T3, V2) — each invoice's state, why it waits and what to do."""

from __future__ import annotations

from qbsync.store.memory import MemoryStore
from qbsync.store.ports import SyncRecord
from tests.conftest import Api


def _invoice(tenant_id: str, source_id: str, state: str, reason: dict | None = None) -> SyncRecord:
    return SyncRecord(
        tenant_id=tenant_id,
        kind="invoices",
        source_id=source_id,
        content_hash="h",
        payload={"id": source_id, "doc_number": f"D-{source_id}", "customer_id": "c-1", "total": "10.00"},
        state=state,  # type: ignore[arg-type]
        created_at="2026-11-21T10:00:00.000Z",
        updated_at="2026-11-21T10:00:00.000Z",
        transfer_id="x_1",
        reason=reason,
    )


def test_invoices_list_with_state_filter_paging_and_tenant_isolation(api: Api, memory_store: MemoryStore) -> None:
    key = api.create_tenant("A")["api_key"]
    other = api.create_tenant("B")["api_key"]
    tenant_id = api.request("GET", "/v1/tenant", key=key).json_body["tenant_id"]
    waiting = {"code": "waiting", "message": "Waits for customer c-1.", "action": "Resolve the customer's match issue."}
    memory_store.records.create(_invoice(tenant_id, "inv-1", "synced"))
    memory_store.records.create(_invoice(tenant_id, "inv-2", "waiting", waiting))
    memory_store.records.create(_invoice(tenant_id, "inv-3", "failed"))

    listed = api.request("GET", "/v1/invoices", key=key).json_body
    assert [i["id"] for i in listed["items"]] == ["inv-1", "inv-2", "inv-3"] and listed["cursor"] is None
    second = listed["items"][1]
    assert second["state"] == "waiting" and second["reason"]["action"] == "Resolve the customer's match issue."
    assert second["doc_number"] == "D-inv-2" and second["total"] == "10.00" and second["customer_id"] == "c-1"

    only = api.request("GET", "/v1/invoices?state=failed", key=key).json_body["items"]
    assert [i["id"] for i in only] == ["inv-3"]
    page = api.request("GET", "/v1/invoices?limit=2", key=key).json_body
    assert len(page["items"]) == 2 and page["cursor"]
    rest = api.request("GET", f"/v1/invoices?limit=2&cursor={page['cursor']}", key=key).json_body
    assert [i["id"] for i in rest["items"]] == ["inv-3"]

    assert api.request("GET", "/v1/invoices", key=other).json_body["items"] == []
    bad = api.request("GET", "/v1/invoices?state=lost", key=key)
    assert bad.status_code == 422 and bad.json_body["errors"][0]["field"] == "state"
