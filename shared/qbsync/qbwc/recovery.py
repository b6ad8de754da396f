"""Jobs whose response was lost *and* whose conversation expired (R4): look before writing again.

Within a conversation a lost response is recovered with qbXML message-set error recovery (``oldMessageSetID``;
see :mod:`qbsync.qbwc.service`). QuickBooks keeps only the *last* message set's response, so once the
conversation has expired that is no longer safe: QuickBooks may have run the set and answered a later one since,
and an unknown ``oldMessageSetID`` makes it run the writes again. The stuck-job sweeper therefore turns such jobs
into **verifications**: at the next conversation each sends a query for what its write would have created, instead
of the write. Found (exactly one match, created after the job was queued) → the job is done with that object's
ids, as if the response had arrived; absent → the write goes in the next round trip; several matches → the job
fails with a message asking a person to check, and nothing is written.

Kinds without a verification query (journal entries, iterator queries) keep the message-set recovery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from lxml import etree

from qbsync.qbwc.jobs import job_kind
from qbsync.qbxml import (
    QbxmlResult,
    Ref,
    RetRecord,
    build_customer_query,
    build_invoice_query,
    build_item_query,
    build_receive_payment_query,
)
from qbsync.store.ports import Job

VERIFY = "verify"  # key in Job.result while a job is being verified
CLOCK_SLACK = timedelta(hours=2)  # the QuickBooks PC's clock and ours may differ (and DST, see the SDK notes)
VERIFIABLE = ("customer_add", "item_add", "invoice_add", "receive_payment_add")

Outcome = Literal["found", "absent", "ambiguous"]


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    ids: dict[str, str]
    message: str = ""


def can_verify(job: Job) -> bool:
    return job.kind in VERIFIABLE


def needs_verify(job: Job) -> bool:
    return bool(job.result.get(VERIFY))


def _ref_name(ref: Any) -> str | None:
    if isinstance(ref, str):
        return ref
    if isinstance(ref, Ref):
        return ref.full_name
    return None


def _full_name(record: Any) -> str:
    parent = _ref_name(getattr(record, "parent", None))
    return f"{parent}:{record.name}" if parent else str(record.name)


def verify_request(job: Job) -> etree._Element:
    """The query that finds what ``job``'s write would have created."""
    record = job_kind(job.kind).record_from(job.payload)
    rid = job.request_id
    if job.kind == "customer_add":
        return build_customer_query(rid, full_names=[_full_name(record)])
    if job.kind == "item_add":
        return build_item_query(rid, full_names=[_full_name(record)])
    if job.kind == "invoice_add":
        if record.ref_number:
            return build_invoice_query(rid, ref_numbers=[record.ref_number])
        return build_invoice_query(
            rid, customer=record.customer, txn_date_from=record.txn_date, txn_date_to=record.txn_date
        )
    if job.kind == "receive_payment_add":
        return build_receive_payment_query(
            rid, customer=record.customer, txn_date_from=record.txn_date, txn_date_to=record.txn_date
        )
    raise ValueError(f"job kind {job.kind} cannot be verified")


def verdict(job: Job, result: QbxmlResult) -> Verdict:
    """What the verification query found (``result`` must be ok: a match or a "no match" warning)."""
    record = job_kind(job.kind).record_from(job.payload)
    since = _parse(job.created_at) - CLOCK_SLACK
    candidates = [r for r in result.rets if _created_since(r, since) and _matches(job.kind, record, r)]
    if not candidates:
        return Verdict("absent", {})
    if len(candidates) > 1:
        named = ", ".join(str(r.txn_id or r.list_id) for r in candidates[:5])
        return Verdict(
            "ambiguous",
            {},
            f"The response to this request was lost and QuickBooks now has {len(candidates)} records that could be "
            f"it ({named}). Check QuickBooks, then send the record again if none of them is it.",
        )
    found = candidates[0]
    ids: dict[str, str] = {k: v for k, v in {"list_id": found.list_id, "txn_id": found.txn_id}.items() if v}
    if found.edit_sequence:
        ids["edit_sequence"] = found.edit_sequence
    if found.full_name or found.name:
        ids["name"] = str(found.full_name or found.name)
    if found.ref_number:
        ids["ref_number"] = found.ref_number
    return Verdict("found", ids)


def _parse(moment: str) -> datetime:
    parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _created_since(ret: RetRecord, since: datetime) -> bool:
    if not ret.time_created:
        return True  # QuickBooks always sends it; without it, do not rule the match out
    try:
        return _parse(ret.time_created) >= since
    except ValueError:
        return True


def _matches(kind: str, record: Any, ret: RetRecord) -> bool:
    if kind in ("customer_add", "item_add"):
        return (ret.full_name or ret.name or "").casefold() == _full_name(record).casefold()
    customer = _ref_name(record.customer)
    their_customer = ret.customer_ref.full_name if ret.customer_ref is not None else None
    if customer and their_customer and their_customer.casefold() != customer.casefold():
        return False
    if record.txn_date is not None and ret.raw.get("TxnDate") not in (None, record.txn_date.isoformat()):
        return False
    if kind == "invoice_add":
        return not record.ref_number or ret.ref_number == record.ref_number
    # receive_payment_add: same total, same reference, and it pays the invoices the job pays
    total = ret.raw.get("TotalAmount")
    if record.total_amount is not None and total is not None and _money(total) != _money(record.total_amount):
        return False
    if record.ref_number and ret.ref_number != record.ref_number:
        return False
    applied = ret.raw.get("AppliedToTxnRet") or []
    paid = {a.get("TxnID") for a in (applied if isinstance(applied, list) else [applied]) if isinstance(a, dict)}
    return {a.txn_id for a in record.applied_to} <= paid


def _money(value: Any) -> str:
    return str(Decimal(str(value)).quantize(Decimal("0.01")))
