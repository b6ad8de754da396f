"""Reconciliation back from QuickBooks (R1, R2): paid status and paid date, payments entered in QuickBooks, drift.

What an invoice's ``reconciliation`` holds (shown by ``GET /v1/invoices/{id}``): ``balance`` and ``total`` as
QuickBooks has them, ``paid`` (balance 0 on a non-zero invoice), ``paid_date`` (the date of the payment that closed
the balance), ``payments`` (every payment applied to it: ``origin`` ``qbsync`` for the ones we sent, ``quickbooks``
for the ones entered there), ``drift`` (``deleted``, ``voided``, ``total_mismatch``) and ``checked_at``.

Events, on transitions only (a re-run with nothing new emits nothing): ``invoice.paid``, ``invoice.unpaid`` (a
payment was removed), ``payment.recorded_in_qb`` (once per payment entered in QuickBooks, with the invoices it
pays), ``invoice.drift`` / ``payment.drift``.

The per-company core (:class:`Reconciliation`) takes what QuickBooks says about some invoices and payments and
updates the linked records; the QuickBooks Online and Desktop readers feed it. QBO: change data capture since a
watermark per realm (30-day / 1,000-object limits respected), a query of the linked ids when the gap is longer
(or on the first run), and targeted reads for webhook notifications.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from qbsync.clock import Clock, SystemClock, iso
from qbsync.errors import ConcurrentModification
from qbsync.events import EventPublisher
from qbsync.observability import get_logger
from qbsync.qbo import errors as qbo_errors
from qbsync.qbo.client import QboClient
from qbsync.qbo.tokens import NeedsReauth, NotConnected, TokenManager
from qbsync.settings import Settings
from qbsync.store.ports import Store, SyncRecord
from qbsync.sync.records import SourceInvoice

Json = dict[str, Any]
CDC_LOOKBACK = timedelta(days=29)  # Intuit's CDC reaches back 30 days; keep a day of margin
CDC_MAX_OBJECTS = 1000
OVERLAP = timedelta(minutes=5)  # re-read a little before the watermark: clocks differ, commits land late
IDS_PER_QUERY = 100
MAX_CDC_ROUNDS = 50
MONEY = Decimal("0.01")


def money(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)).quantize(MONEY)
    except (InvalidOperation, ValueError):
        return None


def _date(value: Any) -> str | None:
    return value[:10] if isinstance(value, str) and len(value) >= 10 else None


def _parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _is_deleted(obj: Json) -> bool:
    return str(obj.get("status", "")).lower() == "deleted"


# --- QuickBooks facts, whichever QuickBooks they come from ----------------------------------------------------


@dataclass(frozen=True)
class QbPayment:
    qb_id: str
    date: str | None
    amount: Decimal | None
    applied: dict[str, Decimal]  # QuickBooks invoice id → amount applied to it
    reference: str | None = None
    deleted: bool = False


@dataclass(frozen=True)
class QbInvoice:
    qb_id: str
    deleted: bool = False
    total: Decimal | None = None
    balance: Decimal | None = None
    tax: Decimal | None = None
    voided: bool = False
    payment_ids: tuple[str, ...] = ()
    updated_at: str | None = None


def qbo_invoice(obj: Json) -> QbInvoice:
    if _is_deleted(obj):
        return QbInvoice(str(obj["Id"]), deleted=True)
    total = money(obj.get("TotalAmt"))
    links = [lt for lt in obj.get("LinkedTxn") or [] if isinstance(lt, dict) and lt.get("TxnType") == "Payment"]
    note = str(obj.get("PrivateNote") or "")
    return QbInvoice(
        qb_id=str(obj["Id"]),
        total=total,
        balance=money(obj.get("Balance")),
        tax=money((obj.get("TxnTaxDetail") or {}).get("TotalTax", 0)),
        voided=total == 0 and note.lower().startswith("voided"),
        payment_ids=tuple(str(lt["TxnId"]) for lt in links if lt.get("TxnId")),
        updated_at=(obj.get("MetaData") or {}).get("LastUpdatedTime"),
    )


def gone_payment(qb_id: str) -> QbPayment:
    return QbPayment(qb_id, None, None, {}, deleted=True)


def qbo_payment(obj: Json) -> QbPayment:
    if _is_deleted(obj):
        return gone_payment(str(obj["Id"]))
    applied: dict[str, Decimal] = {}
    for line in obj.get("Line") or []:
        amount = money(line.get("Amount")) or Decimal(0)
        for linked in line.get("LinkedTxn") or []:
            if linked.get("TxnType") == "Invoice" and linked.get("TxnId"):
                applied[str(linked["TxnId"])] = applied.get(str(linked["TxnId"]), Decimal(0)) + amount
    return QbPayment(
        qb_id=str(obj["Id"]),
        date=_date(obj.get("TxnDate")),
        amount=money(obj.get("TotalAmt")),
        applied=applied,
        reference=obj.get("PaymentRefNum"),
    )


# --- the per-company core -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    invoices_checked: int = 0
    paid: int = 0
    unpaid: int = 0
    drift: int = 0
    payments_reported: int = 0

    def add(self, other: Outcome) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class Ledger:
    """Which QuickBooks invoices and payments of one company are ours: QuickBooks id → source id. Read once per
    run, only when QuickBooks reported something (a scan of the tenant's invoice and payment records)."""

    store: Store
    tenant_id: str
    target: str
    _maps: dict[str, dict[str, str]] | None = None

    def _load(self) -> dict[str, dict[str, str]]:
        if self._maps is None:
            maps: dict[str, dict[str, str]] = {"invoices": {}, "payments": {}}
            for kind, found in maps.items():
                cursor: str | None = None
                for _ in range(10_000):
                    page = self.store.records.list(self.tenant_id, kind, limit=100, cursor=cursor)
                    found.update({r.qb_id: r.source_id for r in page.items if r.qb_id and r.target == self.target})
                    cursor = page.cursor
                    if cursor is None:
                        break
            self._maps = maps
        return self._maps

    def invoice(self, qb_id: str) -> str | None:
        return self._load()["invoices"].get(qb_id)

    def payment(self, qb_id: str) -> str | None:
        return self._load()["payments"].get(qb_id)

    @property
    def invoices(self) -> dict[str, str]:
        return self._load()["invoices"]

    @property
    def payments(self) -> dict[str, str]:
        return self._load()["payments"]


class Reconciliation:
    """Apply QuickBooks' invoices and payments of one company to the linked records, emitting transition events."""

    def __init__(self, store: Store, events: EventPublisher, ledger: Ledger, clock: Clock) -> None:
        self.store = store
        self.events = events
        self.ledger = ledger
        self.clock = clock
        self.log = get_logger()

    def apply(
        self,
        invoices: Iterable[QbInvoice],
        payments: Iterable[QbPayment],
        fetch_payments: Callable[[Sequence[str]], list[QbPayment]] | None = None,
        fetch_invoices: Callable[[Sequence[str]], list[QbInvoice]] | None = None,
    ) -> Outcome:
        """``invoices``/``payments``: what QuickBooks reported. ``fetch_*`` read more by id when needed (the
        payments applied to a paid invoice; the invoices a payment entered in QuickBooks pays)."""
        outcome = Outcome()
        by_invoice = {i.qb_id: i for i in invoices if self.ledger.invoice(i.qb_id)}
        known_payments = {p.qb_id: p for p in payments}
        for payment in known_payments.values():
            source = self.ledger.payment(payment.qb_id)
            if source is not None and payment.deleted:
                outcome.drift += self._payment_deleted(source, payment)
        touched = {
            inv for p in known_payments.values() if not p.deleted for inv in p.applied if self.ledger.invoice(inv)
        }
        # A deleted payment no longer names its invoices: the invoices that listed it must be re-read.
        deleted_ids = {p.qb_id for p in known_payments.values() if p.deleted}
        if deleted_ids:
            touched |= self._invoices_listing(deleted_ids)
        missing = sorted(touched - set(by_invoice))
        if missing and fetch_invoices is not None:
            by_invoice.update({i.qb_id: i for i in fetch_invoices(missing)})
        needed = sorted({pid for inv in by_invoice.values() for pid in inv.payment_ids} - set(known_payments))
        if needed and fetch_payments is not None:
            known_payments.update({p.qb_id: p for p in fetch_payments(needed)})
        reported: dict[str, list[Json]] = {}
        for invoice in by_invoice.values():
            source_id = self.ledger.invoice(invoice.qb_id)
            if source_id is None:
                continue
            outcome.invoices_checked += 1
            self._apply_invoice(source_id, invoice, known_payments, outcome, reported)
        for payment_id, applications in reported.items():
            payment = known_payments[payment_id]
            self.events.publish(
                "payment.recorded_in_qb",
                self.ledger.tenant_id,
                {
                    "quickbooks_id": payment.qb_id,
                    "target": self.ledger.target,
                    "date": payment.date,
                    "amount": str(payment.amount) if payment.amount is not None else None,
                    "reference": payment.reference,
                    "applied_to": applications,
                },
            )
            outcome.payments_reported += 1
        return outcome

    def _invoices_listing(self, payment_ids: set[str]) -> set[str]:
        found: set[str] = set()
        cursor: str | None = None
        for _ in range(10_000):
            page = self.store.records.list(self.ledger.tenant_id, "invoices", limit=100, cursor=cursor)
            for record in page.items:
                paid_by = {p.get("quickbooks_id") for p in (record.reconciliation or {}).get("payments", [])}
                if record.qb_id and record.target == self.ledger.target and paid_by & payment_ids:
                    found.add(record.qb_id)
            cursor = page.cursor
            if cursor is None:
                break
        return found

    def _apply_invoice(
        self,
        source_id: str,
        invoice: QbInvoice,
        payments: dict[str, QbPayment],
        outcome: Outcome,
        reported: dict[str, list[Json]],
    ) -> None:
        now = iso(self.clock.now())

        def change(record: SyncRecord) -> Json:
            old = record.reconciliation or {}
            if invoice.deleted:
                return {
                    **old,
                    "paid": False,
                    "paid_date": None,
                    "balance": None,
                    "deleted": True,
                    "drift": old.get("drift") if _drift_code(old) == "deleted" else _drift("deleted", now),
                    "checked_at": now,
                }
            applied = []
            for pid in invoice.payment_ids:
                payment = payments.get(pid)
                ours = self.ledger.payment(pid)
                amount = payment.applied.get(invoice.qb_id) if payment else None
                applied.append(
                    {
                        "quickbooks_id": pid,
                        "date": payment.date if payment else None,
                        "amount": str(amount) if amount is not None else None,
                        "origin": "qbsync" if ours else "quickbooks",
                        **({"id": ours} if ours else {}),
                    }
                )
            paid = invoice.balance == 0 and bool(invoice.total) and not invoice.voided
            drift = self._invoice_drift(record, invoice, old, now)
            return {
                **old,
                "total": str(invoice.total) if invoice.total is not None else None,
                "balance": str(invoice.balance) if invoice.balance is not None else None,
                "paid": paid,
                "paid_date": _closing_date(invoice, applied) if paid else None,
                "payments": applied,
                "deleted": False,
                "drift": drift,
                "checked_at": now,
            }

        saved, before = self._save(source_id, "invoices", change)
        if saved is None:
            return
        after = saved.reconciliation or {}
        detail = {"id": source_id, "quickbooks_id": invoice.qb_id, "target": self.ledger.target}
        if after.get("paid") and not before.get("paid"):
            outcome.paid += 1
            self.events.publish(
                "invoice.paid",
                saved.tenant_id,
                {
                    **detail,
                    "paid_date": after.get("paid_date"),
                    "total": after.get("total"),
                    "payments": after.get("payments", []),
                },
            )
        elif before.get("paid") and not after.get("paid") and not after.get("deleted"):
            outcome.unpaid += 1
            self.events.publish("invoice.unpaid", saved.tenant_id, {**detail, "balance": after.get("balance")})
        if after.get("drift") and _drift_code(after) != _drift_code(before):
            outcome.drift += 1
            self.events.publish("invoice.drift", saved.tenant_id, {**detail, **after["drift"]})
        seen_before = {p.get("quickbooks_id") for p in before.get("payments", [])}
        for entry in after.get("payments", []):
            if entry["origin"] == "quickbooks" and entry["quickbooks_id"] not in seen_before:
                reported.setdefault(entry["quickbooks_id"], []).append(
                    {"invoice_id": source_id, "quickbooks_invoice_id": invoice.qb_id, "amount": entry["amount"]}
                )

    def _invoice_drift(self, record: SyncRecord, invoice: QbInvoice, old: Json, now: str) -> Json | None:
        source_total = _source_total(record)
        current = record.state == "synced" and record.synced_hash == record.content_hash
        if invoice.voided and source_total:
            code, message = "voided", "The invoice was voided in QuickBooks."
        elif current and source_total is not None and invoice.total is not None and invoice.total != source_total:
            if invoice.tax and invoice.total - invoice.tax == source_total and not record.payload.get("tax_amount"):
                return None  # QuickBooks added the sales tax it computes itself
            code = "total_mismatch"
            message = f"QuickBooks has a total of {invoice.total}; the source has {source_total}."
        else:
            return None
        if _drift_code(old) == code:
            return dict(old["drift"])
        return {"code": code, "message": message, "detected_at": now}

    def _payment_deleted(self, source_id: str, payment: QbPayment) -> int:
        now = iso(self.clock.now())

        def change(record: SyncRecord) -> Json:
            old = record.reconciliation or {}
            if _drift_code(old) == "deleted":
                return old
            return {**old, "deleted": True, "drift": _drift("deleted", now), "checked_at": now}

        saved, before = self._save(source_id, "payments", change)
        if saved is None or _drift_code(before) == "deleted":
            return 0
        self.events.publish(
            "payment.drift",
            saved.tenant_id,
            {"id": source_id, "quickbooks_id": payment.qb_id, "target": self.ledger.target, **_drift("deleted", now)},
        )
        return 1

    def _save(self, source_id: str, kind: str, change: Callable[[SyncRecord], Json]) -> tuple[SyncRecord | None, Json]:
        """Read-change-write with optimistic retries; returns the saved record and the state it replaced."""
        for _ in range(8):
            record = self.store.records.get(self.ledger.tenant_id, kind, source_id)
            if record is None or record.target != self.ledger.target:
                return None, {}
            before = record.reconciliation or {}
            after = change(record)
            if _without_check_time(after) == _without_check_time(before):
                return None, before  # nothing new: no write, no event
            try:
                return self.store.records.save(replace(record, reconciliation=after)), before
            except ConcurrentModification:
                continue
        raise ConcurrentModification(f"{kind} {source_id!r} is changing too often to reconcile.")


def _drift(code: str, now: str) -> Json:
    messages = {
        "deleted": "It was deleted in QuickBooks.",
        "voided": "The invoice was voided in QuickBooks.",
    }
    return {"code": code, "message": messages.get(code, code), "detected_at": now}


def _without_check_time(state: Json) -> Json:
    return {k: v for k, v in state.items() if k != "checked_at"}


def _drift_code(state: Json) -> str | None:
    drift = state.get("drift")
    return drift.get("code") if isinstance(drift, dict) else None


def _source_total(record: SyncRecord) -> Decimal | None:
    try:
        return SourceInvoice.model_validate(record.payload).expected_total.quantize(MONEY)
    except ValueError:
        return None


def _closing_date(invoice: QbInvoice, applied: list[Json]) -> str | None:
    """The date of the payment that brought the balance to zero: payments in date order, the first at which the
    applied amounts reach the total. Without amounts, the latest payment date; without payments, the date
    QuickBooks last changed the invoice."""
    dated = sorted((p for p in applied if p.get("date")), key=lambda p: (p["date"], p["quickbooks_id"]))
    running = Decimal(0)
    for payment in dated:
        running += Decimal(payment["amount"]) if payment.get("amount") else Decimal(0)
        if invoice.total is not None and running >= invoice.total:
            return str(payment["date"])
    if dated:
        return str(dated[-1]["date"])
    return _date(invoice.updated_at)


# --- QuickBooks Online ------------------------------------------------------------------------------------------


class QboReconciler:
    """Reconcile every connected QuickBooks Online company (scheduled), or the entities a webhook named."""

    def __init__(
        self,
        store: Store,
        tokens: TokenManager,
        events: EventPublisher,
        settings: Settings,
        *,
        client_factory: Callable[[str, str], QboClient] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.events = events
        self.clock = clock or SystemClock()
        self.client_factory = client_factory or (
            lambda realm, tenant_id: QboClient.for_settings(realm, tokens.token_source(tenant_id), settings)
        )
        self.log = get_logger()

    def run_all(self, *, deadline: float | None = None) -> dict[str, Any]:
        """Every connected company once (bounded by ``deadline``, a ``time.monotonic()`` value)."""
        total, companies, failed, skipped = Outcome(), 0, 0, 0
        cursor: str | None = None
        for _ in range(10_000):
            page = self.store.qbo.list_all(limit=100, cursor=cursor)
            for connection in page.items:
                if connection.status != "connected":
                    continue
                if deadline is not None and time.monotonic() > deadline:
                    skipped += 1  # the next run starts from this company's watermark: nothing is lost
                    continue
                tenant = self.store.tenants.get(connection.tenant_id)
                if tenant is None or not tenant.is_active:
                    continue
                try:
                    total.add(self.reconcile_company(connection.tenant_id, connection.realm_id))
                    companies += 1
                except (NeedsReauth, NotConnected, qbo_errors.QboError) as exc:
                    failed += 1
                    self.log.warning(
                        "qbo reconcile failed for a company",
                        extra={"tenant_id": connection.tenant_id, "realm_id": connection.realm_id, "code": exc.code},
                    )
            cursor = page.cursor
            if cursor is None:
                break
        return {"qbo_companies": companies, "qbo_failed": failed, "qbo_deferred": skipped, **total.as_dict()}

    def reconcile_company(self, tenant_id: str, realm_id: str) -> Outcome:
        target = f"qbo:{realm_id}"
        started = self.clock.now()
        state = self.store.reconcile.get(tenant_id, target) or {}
        since = _parse_time(state["since"]) if state.get("since") else None
        client = self.client_factory(realm_id, tenant_id)
        ledger = Ledger(self.store, tenant_id, target)
        core = Reconciliation(self.store, self.events, ledger, self.clock)
        fetch_payments, fetch_invoices = self._fetchers(client)
        mode = "cdc"
        changes = self._cdc(client, since) if since is not None and started - since <= CDC_LOOKBACK else None
        if changes is None:
            mode = "query"
            invoices, payments = self._full(client, ledger)
        else:
            invoices = [qbo_invoice(o) for o in changes.get("Invoice", [])]
            payments = [qbo_payment(o) for o in changes.get("Payment", [])]
        outcome = core.apply(invoices, payments, fetch_payments, fetch_invoices)
        self.store.reconcile.put(
            tenant_id, target, {"since": iso(started - OVERLAP), "last_run": iso(started), "mode": mode}
        )
        return outcome

    def reconcile_entities(self, tenant_id: str, realm_id: str, entities: Sequence[Json]) -> Outcome:
        """A webhook named these entities: read them (one query per type) and apply what QuickBooks has."""
        target = f"qbo:{realm_id}"
        client = self.client_factory(realm_id, tenant_id)
        ledger = Ledger(self.store, tenant_id, target)
        fetch_payments, fetch_invoices = self._fetchers(client)
        wanted: dict[str, set[str]] = {"Invoice": set(), "Payment": set()}
        deleted: dict[str, set[str]] = {"Invoice": set(), "Payment": set()}
        for entity in entities:
            name, entity_id = str(entity.get("name")), str(entity.get("id"))
            if name in wanted:
                wanted[name].add(entity_id)
                if str(entity.get("operation", "")).lower() == "delete":
                    deleted[name].add(entity_id)
        invoices = fetch_invoices(sorted(wanted["Invoice"]))
        payments = fetch_payments(sorted(wanted["Payment"]))
        # Gone from QuickBooks and announced as deleted: a tombstone, as CDC would report it.
        invoices += [QbInvoice(i, deleted=True) for i in deleted["Invoice"] - {x.qb_id for x in invoices}]
        payments += [gone_payment(p) for p in deleted["Payment"] - {x.qb_id for x in payments}]
        return Reconciliation(self.store, self.events, ledger, self.clock).apply(
            invoices, payments, fetch_payments, fetch_invoices
        )

    def _fetchers(
        self, client: QboClient
    ) -> tuple[Callable[[Sequence[str]], list[QbPayment]], Callable[[Sequence[str]], list[QbInvoice]]]:
        def payments(ids: Sequence[str]) -> list[QbPayment]:
            return [qbo_payment(o) for o in _by_ids(client, "Payment", ids)]

        def invoices(ids: Sequence[str]) -> list[QbInvoice]:
            return [qbo_invoice(o) for o in _by_ids(client, "Invoice", ids)]

        return payments, invoices

    def _cdc(self, client: QboClient, since: datetime) -> dict[str, list[Json]] | None:
        """Invoices and payments changed since ``since``; None when the 1,000-object cap cannot be paged past
        (everything changed within one instant): the caller falls back to a query."""
        first = client.cdc(["Invoice", "Payment"], since)
        if sum(len(v) for v in first.values()) < CDC_MAX_OBJECTS:
            return first
        # Capped: page each entity on its own, moving the window to the newest change seen (re-reads are harmless).
        merged: dict[str, list[Json]] = {}
        for entity in ("Invoice", "Payment"):
            window, seen = since, 0
            for _ in range(MAX_CDC_ROUNDS):
                objects = client.cdc([entity], window).get(entity, [])
                merged.setdefault(entity, []).extend(objects)
                seen += len(objects)
                if len(objects) < CDC_MAX_OBJECTS:
                    break
                newest = max(_parse_time(o["MetaData"]["LastUpdatedTime"]) for o in objects if o.get("MetaData"))
                if newest <= window:
                    return None
                window = newest
            else:
                return None
        return merged

    def _full(self, client: QboClient, ledger: Ledger) -> tuple[list[QbInvoice], list[QbPayment]]:
        """Every linked invoice and payment by id; linked ids QuickBooks no longer has are deleted there."""
        invoice_ids, payment_ids = sorted(ledger.invoices), sorted(ledger.payments)
        invoices = [qbo_invoice(o) for o in _by_ids(client, "Invoice", invoice_ids)]
        payments = [qbo_payment(o) for o in _by_ids(client, "Payment", payment_ids)]
        invoices += [QbInvoice(i, deleted=True) for i in set(invoice_ids) - {x.qb_id for x in invoices}]
        payments += [gone_payment(p) for p in set(payment_ids) - {x.qb_id for x in payments}]
        return invoices, payments


def _by_ids(client: QboClient, entity: str, ids: Sequence[str]) -> list[Json]:
    found: list[Json] = []
    unique = list(dict.fromkeys(i for i in ids if i))
    for start in range(0, len(unique), IDS_PER_QUERY):
        chunk = unique[start : start + IDS_PER_QUERY]
        quoted = ", ".join("'" + i.replace("\\", "\\\\").replace("'", "\\'") + "'" for i in chunk)
        found += client.query_all(entity, where=f"Id IN ({quoted})")
    return found
