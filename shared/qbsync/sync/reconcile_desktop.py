"""Reconciliation from QuickBooks Desktop (R1, R2): QuickBooks Desktop can only be asked during a Web Connector
conversation, so the scheduled run *queues* a reconcile on each connector and the answers are read when they come.

One run = three query jobs on the connector's queue, in this order (the conversation runs them in order):

1. ``ReceivePaymentQuery`` (modified since the watermark, iterator): the payments that apply to our invoices, kept
   with the run so the invoices below know each payment's total and reference;
2. ``TxnDeletedQuery`` (Invoice, ReceivePayment deleted since the watermark): deleted → drift;
3. ``InvoiceQuery`` (``ModifiedDateRangeFilter`` from the watermark, ``PaidStatus`` All, ``IncludeLinkedTxns``,
   iterator): balance, paid status, and every applying payment's date and amount (its linked transactions).

Each answer goes through the same core as QuickBooks Online (:class:`qbsync.sync.reconcile.Reconciliation`):
transitions become ``invoice.paid``, ``payment.recorded_in_qb``, ``invoice.drift``… The watermark moves when the
invoice query's last page has been read; a run still waiting for the Web Connector is not queued twice.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from qbsync.clock import Clock, SystemClock, iso
from qbsync.events import EventPublisher
from qbsync.observability import get_logger
from qbsync.qbwc.jobs import InvoiceQuery, JobService, ReceivePaymentQuery, TxnDeletedQuery
from qbsync.qbxml import QbxmlResult, RetRecord
from qbsync.store.ports import Connector, Job, Store
from qbsync.sync.reconcile import Ledger, Outcome, QbInvoice, QbPayment, Reconciliation, gone_payment, money

REF_PREFIX = "reconcile:"
OVERLAP = timedelta(hours=2)  # the QuickBooks PC's clock is not ours (and QuickBooks may be an hour off at DST)
FIRST_RUN_MARGIN = timedelta(days=1)
MAX_CACHED_PAYMENTS = 2000  # keeps the run's state item far below DynamoDB's 400 KB


def qbd_invoice(ret: RetRecord) -> QbInvoice:
    subtotal = ret.subtotal or Decimal(0)
    tax = ret.sales_tax_total or Decimal(0)
    return QbInvoice(
        qb_id=str(ret.txn_id),
        total=money(subtotal + tax),
        balance=money(ret.balance_remaining) if ret.balance_remaining is not None else None,
        tax=money(tax),
        payment_ids=tuple(str(lt.txn_id) for lt in ret.linked_txns if lt.txn_type == "ReceivePayment" and lt.txn_id),
        updated_at=ret.time_modified,
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value else []


def qbd_payment(ret: RetRecord) -> QbPayment:
    applied: dict[str, Decimal] = {}
    for app in _list(ret.raw.get("AppliedToTxnRet")):
        if isinstance(app, dict) and app.get("TxnID") and app.get("Amount") is not None:
            applied[str(app["TxnID"])] = applied.get(str(app["TxnID"]), Decimal(0)) + (money(app["Amount"]) or 0)
    date = ret.raw.get("TxnDate")
    return QbPayment(
        qb_id=str(ret.txn_id),
        date=date if isinstance(date, str) else None,
        amount=money(ret.raw.get("TotalAmount")),
        applied=applied,
        reference=ret.ref_number,
    )


def _payment_json(payment: QbPayment) -> dict[str, Any]:
    data = asdict(payment)
    data["amount"] = str(payment.amount) if payment.amount is not None else None
    data["applied"] = {k: str(v) for k, v in payment.applied.items()}
    return data


def _payment_from_json(data: dict[str, Any]) -> QbPayment:
    return QbPayment(
        qb_id=data["qb_id"],
        date=data.get("date"),
        amount=money(data["amount"]) if data.get("amount") is not None else None,
        applied={k: Decimal(v) for k, v in (data.get("applied") or {}).items()},
        reference=data.get("reference"),
    )


class DesktopReconciler:
    def __init__(self, store: Store, events: EventPublisher, jobs: JobService, clock: Clock | None = None) -> None:
        self.store = store
        self.events = events
        self.jobs = jobs
        self.clock = clock or SystemClock()
        self.log = get_logger()

    # --- the scheduled side: queue a run per connector ------------------------------------------------------

    def enqueue_all(self) -> dict[str, int]:
        outcome = {"qbd_connectors": 0, "qbd_reconcile_queued": 0, "qbd_reconcile_waiting": 0}
        cursor: str | None = None
        for _ in range(10_000):
            page = self.store.tenants.list(limit=100, cursor=cursor)
            for tenant in page.items:
                if not tenant.is_active:
                    continue
                for connector in self.store.connectors.list(tenant.tenant_id):
                    if not connector.enabled:
                        continue
                    outcome["qbd_connectors"] += 1
                    queued = self.enqueue(connector)
                    if queued is True:
                        outcome["qbd_reconcile_queued"] += 1
                    elif queued is None:
                        outcome["qbd_reconcile_waiting"] += 1
            cursor = page.cursor
            if cursor is None:
                break
        return outcome

    def enqueue(self, connector: Connector) -> bool | None:
        """True: a run was queued; None: the previous run still waits for the Web Connector; False: nothing of
        ours is in this company file yet."""
        tenant_id, target = connector.tenant_id, f"qbd:{connector.connector_id}"
        state = self.store.reconcile.get(tenant_id, target) or {}
        run = state.get("run") or {}
        if run and not run.get("finished"):
            last = self.store.jobs.get(connector.connector_id, int(run["seqs"][-1]))
            if last is not None and last.status in ("queued", "sent"):
                return None
        since = _parse(state["since"]) if state.get("since") else self._first_since(tenant_id, target)
        if since is None:
            return False
        token = secrets.token_hex(8)
        queries: list[tuple[str, Any]] = [
            ("receive_payment_query", ReceivePaymentQuery(modified_from=since)),
            ("txn_deleted_query", TxnDeletedQuery(deleted_from=since)),
            ("invoice_query", InvoiceQuery(modified_from=since, paid_status="All", include_linked_txns=True)),
        ]
        # One reference per job: job enqueue is idempotent by reference, and the run's token ties them together.
        queued = [
            self.jobs.enqueue(tenant_id, connector.connector_id, kind, query, source_ref=f"{REF_PREFIX}{token}:{kind}")
            for kind, query in queries
        ]
        self.store.reconcile.put(
            tenant_id,
            target,
            {
                **state,
                "run": {
                    "token": token,
                    "queued_at": iso(self.clock.now()),
                    "since": iso(since),
                    "seqs": [job.seq for job in queued],
                    "payments": {},
                    "failed": False,
                    "finished": False,
                },
            },
        )
        return True

    def _first_since(self, tenant_id: str, target: str) -> datetime | None:
        """No watermark yet: from a day before the oldest invoice qbsync put into this company file."""
        oldest: str | None = None
        cursor: str | None = None
        for _ in range(10_000):
            page = self.store.records.list(tenant_id, "invoices", limit=100, cursor=cursor)
            for record in page.items:
                if record.target == target and record.qb_id and record.synced_at:
                    oldest = min(oldest or record.synced_at, record.synced_at)
            cursor = page.cursor
            if cursor is None:
                break
        return _parse(oldest) - FIRST_RUN_MARGIN if oldest else None

    # --- the conversation side: read each answer ------------------------------------------------------------

    def on_query_result(self, job: Job, result: QbxmlResult) -> None:
        """A page of one of our queries came back from QuickBooks (called by the Web Connector session)."""
        ref = job.source_ref or ""
        if not ref.startswith(REF_PREFIX):
            return
        target = f"qbd:{job.connector_id}"
        state = self.store.reconcile.get(job.tenant_id, target) or {}
        run = state.get("run") or {}
        if run.get("token") != ref.removeprefix(REF_PREFIX).partition(":")[0]:
            return  # an older run's job: a newer run reads the same facts
        try:
            outcome = self._read(job, result, run)
        except Exception:
            run["failed"] = True  # the watermark stays: the next run reads these changes again
            self.store.reconcile.put(job.tenant_id, target, {**state, "run": run})
            raise
        last_page = job.kind == "invoice_query" and not result.has_more
        if last_page:
            run["finished"] = True
            run["payments"] = {}
            if not run.get("failed"):
                state["since"] = iso(self.clock.now() - OVERLAP)
        run["outcome"] = {k: run.get("outcome", {}).get(k, 0) + v for k, v in outcome.as_dict().items()}
        self.store.reconcile.put(job.tenant_id, target, {**state, "run": run})

    def _read(self, job: Job, result: QbxmlResult, run: dict[str, Any]) -> Outcome:
        ledger = Ledger(self.store, job.tenant_id, f"qbd:{job.connector_id}")
        core = Reconciliation(self.store, self.events, ledger, self.clock)
        if job.kind == "receive_payment_query":
            cache: dict[str, Any] = run.setdefault("payments", {})
            for ret in result.rets:
                payment = qbd_payment(ret)
                ours = ledger.payment(payment.qb_id) or any(ledger.invoice(i) for i in payment.applied)
                if ours and len(cache) < MAX_CACHED_PAYMENTS:
                    cache[payment.qb_id] = _payment_json(payment)
            return Outcome()
        if job.kind == "txn_deleted_query":
            invoices = [QbInvoice(str(r.txn_id), deleted=True) for r in result.rets if _del_type(r) == "Invoice"]
            payments = [gone_payment(str(r.txn_id)) for r in result.rets if _del_type(r) == "ReceivePayment"]
            return core.apply(invoices, payments)
        if job.kind == "invoice_query":
            invoices = [qbd_invoice(ret) for ret in result.rets if ret.txn_id]
            known = {k: _payment_from_json(v) for k, v in (run.get("payments") or {}).items()}
            from_links: dict[str, QbPayment] = {}
            for ret in result.rets:
                for link in ret.linked_txns:
                    if link.txn_type != "ReceivePayment" or not link.txn_id or link.txn_id in known:
                        continue
                    seen = from_links.get(link.txn_id)
                    applied = dict(seen.applied) if seen else {}
                    applied[str(ret.txn_id)] = abs(money(link.amount) or Decimal(0))
                    from_links[link.txn_id] = QbPayment(
                        link.txn_id, link.txn_date, None, applied, reference=link.ref_number
                    )
            return core.apply(invoices, [*known.values(), *from_links.values()])
        return Outcome()


def _del_type(ret: RetRecord) -> str | None:
    value = ret.raw.get("TxnDelType")
    return value if isinstance(value, str) else None


def _parse(moment: str) -> datetime:
    parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
