"""Summarized Journal Entry mode, the use case (FEATURES S1, T5): charges in, one journal entry per period out.

The arithmetic and the design are in :mod:`qbsync.sync.summarize`; this module stores and moves things:

* ``POST /v1/charges`` stores each charge as a sync record of kind ``charges`` (content-hash idempotent, like every
  record) and sends nothing: a 202 means it is stored. Refused unless the tenant is in summarized mode.
* A *run* (the transfer worker's ``summarize.post`` message — queued by the ``summarizer`` schedule for every
  summarized tenant, or on demand by ``POST /v1/journal-entries/post``) reads the tenant's charges, sums them per
  period and posts what QuickBooks lacks for every closed period. Runs of one company are serialized by the FIFO
  message group (the same as its record transfers and Desktop job outcomes).
* Each period is a sync record of kind ``journal_entries`` (id: the period key) whose payload holds the groups
  posted so far and every entry (``postings``). An entry is saved as ``sending`` *before* it goes to QuickBooks and
  is re-sent unchanged until it is confirmed: QuickBooks Online gets a deterministic ``requestid`` (a retry returns
  the entry already created), QuickBooks Desktop a connector job whose reference carries the entry's number and
  content (queued once). Only a confirmed entry adds its amounts to the period's posted groups.
* Once a period's charges add up to what QuickBooks has, its charges are marked ``synced`` with the entry's id.
* A missing M1/M3 mapping or ``journal_debit_account`` blocks the period with a configuration issue
  (``mapping_missing``; a name QuickBooks does not know: ``mapping_stale``); its charges stay pending and the next
  run after the fix posts it. An entry QuickBooks refuses is ``failed`` and is not re-sent unchanged: a run
  retries it once its content changes (a fixed mapping, new charges), or at once with ``POST .../post {period}``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Protocol

from pydantic import Field

from qbsync.clock import Clock, SystemClock, iso
from qbsync.errors import AlreadyExists, ConcurrentModification, Conflict, FieldError, NotFound, ValidationFailed
from qbsync.events import EventPublisher
from qbsync.models import StrictModel, TenantSettings
from qbsync.qbo import errors as qbo_errors
from qbsync.qbo.requestids import request_id
from qbsync.qbo.tokens import NeedsReauth, NotConnected
from qbsync.qbwc.jobs import JobService
from qbsync.qbxml.records import JournalEntry, JournalLine, Ref
from qbsync.queue import TransferQueue
from qbsync.store.ports import Job, Store, SyncRecord, SyncState, Tenant, TransferRecord, TransferStatus
from qbsync.sync.desktop_transfers import CONFIG_EVENT, DesktopTransfers
from qbsync.sync.ingest import Accepted, AcceptedList, Router, all_records, content_hash, validate_list
from qbsync.sync.summarize import (
    ZERO,
    EntryLine,
    GroupKey,
    Period,
    PeriodAssigner,
    SourceCharge,
    Target,
    check_balanced,
    deltas,
    entry_lines,
    parse_period,
    totals,
)
from qbsync.tenancy import settings_of
from qbsync.transfers import MessageMeta, TransferMessage

CHARGES = "charges"
PERIODS = "journal_entries"
RUN_KIND = "summarize.post"  # transfer kind of a run
JOB_REF = "summary:"  # Desktop job reference: summary:<period>:<number>:<fingerprint>
RUN_BUDGET_SECONDS = 40.0  # of the worker's 60 s: a run that has more to do continues in a new message
MAX_ROUNDS = 5  # post → confirm → (late charges meanwhile) → adjust … per period and run
DESKTOP_INVALID_REFERENCE = ("3120", "3140")  # "object … not found" / "invalid reference to …"


class SummarizedModeOff(Conflict):
    code, title = "summarized_mode_off", "Not in summarized mode"


class MappingLookup(Protocol):
    def get(self, kind: Any, key: str) -> Any: ...


def load_mappings(store: Store, tenant_id: str) -> MappingLookup:
    from qbsync.mappings import Mappings

    return Mappings.load(store, tenant_id)


# --------------------------------------------------------------------------------------------------- views


class ChargeView(StrictModel):
    id: str
    state: str = Field(description="pending (waits for its period's entry) or synced (in QuickBooks).")
    date: str
    amount: str
    billing_code: str
    line_of_business: str | None
    period: str
    journal_entry: str | None = Field(description="Doc number of the entry holding its current amount.")
    quickbooks_id: str | None
    reason: dict[str, Any] | None
    updated_at: str
    synced_at: str | None


class EntryView(StrictModel):
    number: int = Field(description="0: the period's entry; 1, 2…: adjusting entries.")
    doc_number: str
    status: str = Field(description="sending, posted or failed.")
    quickbooks_id: str | None
    txn_date: str
    total: str
    lines: list[dict[str, Any]]
    created_at: str
    posted_at: str | None
    error: dict[str, Any] | None


class PeriodView(StrictModel):
    period: str
    granularity: str
    start: str
    end: str
    closes_at: str
    state: str = Field(description="pending, synced, waiting, blocked (configuration issue) or failed.")
    reason: dict[str, Any] | None
    charges: int
    charges_total: str
    posted_total: str
    entries: list[EntryView]


class PeriodList(StrictModel):
    items: list[PeriodView]


class PostRequest(StrictModel):
    period: str | None = Field(
        None,
        description="Post this period now, even before it closes (later charges become adjusting entries). "
        "Without it: every closed period.",
    )


class PostQueued(StrictModel):
    queued: bool
    period: str | None
    target: str


# --------------------------------------------------------------------------------------------------- helpers


def _money(value: Any) -> Decimal:
    return Decimal(str(value))


def _posted_groups(doc: dict[str, Any]) -> tuple[dict[GroupKey, Decimal], dict[GroupKey, Target]]:
    amounts: dict[GroupKey, Decimal] = {}
    targets: dict[GroupKey, Target] = {}
    for group in doc.get("groups", []):
        key = (str(group["billing_code"]), str(group.get("line_of_business") or ""))
        amounts[key] = amounts.get(key, ZERO) + _money(group["amount"])
        targets[key] = Target(str(group["account"]), group.get("class"))
    return amounts, targets


def _line_json(line: EntryLine) -> dict[str, Any]:
    out: dict[str, Any] = {"side": line.side, "account": line.account, "amount": str(line.amount)}
    if line.class_name:
        out["class"] = line.class_name
    return out


def _lines_of(posting: dict[str, Any]) -> list[EntryLine]:
    return [
        EntryLine(line["side"], line["account"], _money(line["amount"]), line.get("class"), posting.get("memo"))
        for line in posting["lines"]
    ]


@dataclass
class Missing:
    """Configuration issues found while resolving one entry's accounts and classes."""

    code: str = "mapping_missing"
    items: list[str] | None = None

    def add(self, item: str) -> None:
        self.items = [*(self.items or []), item]


class Blocked(Exception):
    def __init__(self, reason: dict[str, Any]) -> None:
        super().__init__(reason["message"])
        self.reason = reason


def _blocked(code: str, problems: list[str], *, stale: bool) -> Blocked:
    what = "; ".join(problems)
    if stale:
        message = f"QuickBooks has no {what}."
        action = "Fix the mapping (PUT /v1/mappings/{kind}) or the setting to a name QuickBooks has, or create it."
    else:
        message = f"Not mapped: {what}."
        action = "Map " + "; ".join(problems) + " in Mappings (PUT /v1/mappings/{kind}) or the settings."
    return Blocked({"code": code, "message": message, "action": action, "missing": problems})


# --------------------------------------------------------------------------------------------------- the service


class JournalService:
    def __init__(
        self,
        store: Store,
        queue: TransferQueue,
        events: EventPublisher,
        *,
        client_factory: Callable[[str, str], Any],
        jobs: JobService | None = None,
        mappings: Callable[[Store, str], MappingLookup] = load_mappings,
        clock: Clock | None = None,
        budget_seconds: float = RUN_BUDGET_SECONDS,
    ) -> None:
        self.store = store
        self.queue = queue
        self.events = events
        self.client_factory = client_factory
        self.jobs = jobs or JobService(store)
        self.mappings = mappings
        self.clock = clock or SystemClock()
        self.router = Router(store)
        self.budget_seconds = budget_seconds
        self._deadline = float("inf")
        self._lists: dict[tuple[str, str], dict[str, str]] = {}

    # --- charges in ---------------------------------------------------------------------------------------

    def accept(self, tenant: Tenant, body: Any) -> AcceptedList:
        """Store charges (one or a list of up to 500); nothing is sent until their period is posted."""
        if settings_of(tenant).mode != "summarized":
            raise SummarizedModeOff(
                "Charges are summarized into journal entries only in summarized mode; switch with "
                'PATCH /v1/tenant/settings {"mode": "summarized"} (full mode takes invoices instead).'
            )
        charges = validate_list(SourceCharge, body, noun="charge")
        tenant_id = tenant.tenant_id
        existing = self.store.records.get_many(tenant_id, CHARGES, [c.id for c in charges])
        answers = []
        for charge in charges:
            answers.append(self._store_charge(tenant_id, charge, existing.get(charge.id)))
        return AcceptedList(transfers=answers)

    def _store_charge(self, tenant_id: str, charge: SourceCharge, current: SyncRecord | None) -> Accepted:
        payload = charge.model_dump(mode="json", exclude_none=True)
        digest = content_hash(payload)
        for attempt in range(8):
            if attempt:
                current = self.store.records.get(tenant_id, CHARGES, charge.id)
            if current is not None and current.content_hash == digest:
                return Accepted(id=charge.id, transfer_id=current.transfer_id, status="unchanged")
            now = iso(self.clock.now())
            transfer_id = "x_" + secrets.token_hex(10)
            try:
                if current is None:
                    self.store.records.create(
                        SyncRecord(tenant_id, CHARGES, charge.id, digest, payload, "pending", now, now, transfer_id)
                    )
                else:
                    self.store.records.save(
                        replace(
                            current,
                            content_hash=digest,
                            payload=payload,
                            state="pending",
                            reason=None,
                            updated_at=now,
                            transfer_id=transfer_id,
                        )
                    )
            except (ConcurrentModification, AlreadyExists):
                continue
            return Accepted(id=charge.id, transfer_id=transfer_id, status="stored")
        raise ConcurrentModification(f"Charge {charge.id!r} is changing too often; try again.")

    # --- state out ----------------------------------------------------------------------------------------

    def charge(self, tenant: Tenant, charge_id: str) -> ChargeView:
        record = self.store.records.get(tenant.tenant_id, CHARGES, charge_id)
        if record is None:
            raise NotFound(f"No charge {charge_id!r} has been received.")
        charge = SourceCharge.model_validate(record.payload)
        periods = self._periods(tenant.tenant_id)
        period = self._assigner(settings_of(tenant), periods)(charge.date)
        doc = periods[period.key].payload if period.key in periods else {}
        in_qb = record.state == "synced" and record.synced_hash == record.content_hash
        entry = next((p for p in doc.get("postings", []) if in_qb and p.get("qb_id") == record.qb_id), None)
        reason = None
        if not in_qb:
            holder = periods.get(period.key)
            sending = any(p.get("status") == "sending" for p in doc.get("postings", []))
            if holder is not None and (sending or holder.state in ("blocked", "failed", "waiting")):
                reason = holder.reason  # what the period is waiting for (a configuration issue, the Web Connector…)
            elif any(p.get("status") == "posted" for p in doc.get("postings", [])):
                reason = {
                    "code": "adjustment_pending",
                    "message": f"Period {period.key} is already posted: this goes into an adjusting entry.",
                    "action": "none: it is posted at the next run",
                }
            else:
                reason = {
                    "code": "period_open",
                    "message": f"Summed into the journal entry of period {period.key}, posted once it closes.",
                    "action": 'none (or post it now: POST /v1/journal-entries/post {"period": …})',
                }
        return ChargeView(
            id=record.source_id,
            state="synced" if in_qb else "pending",
            date=charge.date.isoformat(),
            amount=str(charge.amount),
            billing_code=charge.billing_code,
            line_of_business=charge.line_of_business,
            period=period.key,
            journal_entry=entry["doc_number"] if entry else None,
            quickbooks_id=record.qb_id if in_qb else None,
            reason=reason,
            updated_at=record.updated_at,
            synced_at=record.synced_at if in_qb else None,
        )

    def periods(self, tenant: Tenant) -> PeriodList:
        records = self._periods(tenant.tenant_id)
        grace = settings_of(tenant).summarized_grace_hours
        return PeriodList(items=[_period_view(r, grace) for _, r in sorted(records.items(), reverse=True)])

    def period(self, tenant: Tenant, key: str) -> PeriodView:
        try:
            parse_period(key)
        except ValueError as exc:
            raise NotFound(str(exc)) from None
        record = self.store.records.get(tenant.tenant_id, PERIODS, key)
        if record is None:
            raise NotFound(f"No charges have been summarized for period {key} (runs record a period).")
        return _period_view(record, settings_of(tenant).summarized_grace_hours)

    # --- runs ---------------------------------------------------------------------------------------------

    def request_post(self, tenant: Tenant, period: str | None) -> PostQueued:
        """Queue a run now (``POST /v1/journal-entries/post``); with ``period``, that period is posted even if open."""
        if settings_of(tenant).mode != "summarized":
            raise SummarizedModeOff("Journal entries are posted only in summarized mode.")
        if period is not None:
            try:
                parse_period(period)
            except ValueError as exc:
                raise ValidationFailed([FieldError("period", str(exc))]) from None
        target = self.router.target(tenant.tenant_id)
        if target is None:
            raise Conflict("No QuickBooks is connected: connect QuickBooks Online or add a Web Connector connector.")
        self._queue_run(tenant.tenant_id, target, period)
        return PostQueued(queued=True, period=period, target=target)

    def enqueue_all(self) -> dict[str, int]:
        """The ``summarizer`` schedule: queue a run for every active tenant in summarized mode with a QuickBooks."""
        queued = tenants = 0
        cursor = None
        for _ in range(10_000):
            page = self.store.tenants.list(limit=100, cursor=cursor)
            for tenant in page.items:
                if not tenant.is_active or settings_of(tenant).mode != "summarized":
                    continue
                tenants += 1
                target = self.router.target(tenant.tenant_id)
                if target is not None:
                    self._queue_run(tenant.tenant_id, target, None)
                    queued += 1
            cursor = page.cursor
            if cursor is None:
                break
        return {"summarized_tenants": tenants, "runs_queued": queued}

    def _queue_run(self, tenant_id: str, target: str, period: str | None, *, start: str | None = None) -> None:
        payload = {"period": period} if period else {}
        if start:
            payload["start"] = start
        self.queue.send(
            TransferMessage(
                tenant_id=tenant_id,
                transfer_id="j_" + secrets.token_hex(8),
                kind=RUN_KIND,
                target="qbo" if target.startswith("qbo:") else "qbd",
                payload=payload,
            ),
            group_id=f"{tenant_id}:{target}",
            deduplication_id="j_" + secrets.token_hex(12),  # every request is a run; runs are idempotent
        )

    def handle(self, message: TransferMessage, meta: MessageMeta) -> dict[str, Any]:
        """Transfer-queue handler for ``summarize.post``."""
        period, start = message.payload.get("period"), message.payload.get("start")
        return self.run(message.tenant_id, force=str(period) if period else None, start=str(start) if start else None)

    def run(
        self, tenant_id: str, *, force: str | None = None, only: str | None = None, start: str | None = None
    ) -> dict[str, Any]:
        """Post what QuickBooks lacks for every closed period (and ``force``, open or not); ``only``: one period;
        ``start``: the periods from this key on (a continuation)."""
        tenant = self.store.tenants.get(tenant_id)
        if tenant is None or not tenant.is_active:
            return {"skipped": "tenant inactive"}
        settings = settings_of(tenant)
        if settings.mode != "summarized":
            return {"skipped": "not in summarized mode"}
        deadline = time.monotonic() + self.budget_seconds
        self._lists = {}  # QuickBooks lists are read afresh by every run
        outcome: dict[str, Any] = {"periods": 0, "posted": 0, "blocked": 0, "failed": 0, "charges_marked": 0}
        periods = self._periods(tenant_id)
        assign = self._assigner(settings, periods)
        by_period: dict[str, list[tuple[SyncRecord, SourceCharge]]] = {}
        known: dict[str, Period] = {key: parse_period(key) for key in periods}
        for stored in all_records(self.store, tenant_id, CHARGES):
            charge = SourceCharge.model_validate(stored.payload)
            period = assign(charge.date)
            known.setdefault(period.key, period)
            by_period.setdefault(period.key, []).append((stored, charge))
        target = self.router.target(tenant_id)
        self._deadline = deadline
        todo = [key for key in sorted(known) if (only is None or key == only) and (start is None or key >= start)]
        for index, key in enumerate(todo):
            outcome["periods"] += 1
            record = periods.get(key)
            unfinished = False
            for _ in range(MAX_ROUNDS):
                result = self._period(tenant, settings, known[key], record, by_period.get(key, []), target, force)
                outcome["charges_marked"] += result.marked
                unfinished = result.unfinished
                for name in ("posted", "blocked", "failed"):
                    outcome[name] += getattr(result, name)
                if not result.again:
                    break
                record = self.store.records.get(tenant_id, PERIODS, key)
            more = unfinished or index + 1 < len(todo)
            if more and time.monotonic() > deadline and target is not None:
                # Out of time (Lambda's): the rest in a new message, from where this one stopped. Every run finishes
                # a period or marks charges, so the continuations end.
                self._queue_run(tenant_id, target, force, start=key if unfinished else todo[index + 1])
                outcome["continued"] = True
                break
        return outcome

    # --- one period ---------------------------------------------------------------------------------------

    def _period(
        self,
        tenant: Tenant,
        settings: TenantSettings,
        period: Period,
        record: SyncRecord | None,
        items: list[tuple[SyncRecord, SourceCharge]],
        target: str | None,
        force: str | None,
    ) -> _Result:
        doc = dict(record.payload) if record is not None else _new_doc(period)
        current = totals(charge for _, charge in items)
        posted, targets = _posted_groups(doc)
        changes = deltas(current, posted)
        doc["charges"] = len(items)
        doc["charges_total"] = str(sum(current.values(), ZERO))
        postings: list[dict[str, Any]] = doc.setdefault("postings", [])
        sending = next((p for p in postings if p["status"] == "sending"), None)
        if sending is not None:
            return self._resend(tenant, period, record, doc, sending)
        if not changes:
            marked, unfinished = self._mark(tenant.tenant_id, doc, items)
            state: SyncState = "synced" if any(p["status"] == "posted" for p in postings) else "pending"
            self._save(tenant.tenant_id, period, record, doc, state, None if state == "synced" else _open(period))
            return _Result(marked=marked, unfinished=unfinished)
        closed = period.is_closed(self.clock.now(), settings.summarized_grace_hours) or force == period.key
        if not closed:
            self._save(tenant.tenant_id, period, record, doc, "pending", _open(period))
            return _Result()
        if target is None:
            reason = {
                "code": "not_connected",
                "message": "No QuickBooks is connected; the period is posted once one is.",
                "action": "Connect QuickBooks Online or add a Web Connector connector.",
            }
            self._save(tenant.tenant_id, period, record, doc, "waiting", reason)
            return _Result()
        try:
            group_targets = self._targets(tenant.tenant_id, settings, changes, targets)
            if settings.journal_debit_account is None:
                raise _blocked(
                    "mapping_missing", ["the balancing account (settings.journal_debit_account)"], stale=False
                )
            memo = f"qbsync summary of {doc['charges']} charges, {period.key}"
            lines = entry_lines(changes, group_targets.__getitem__, settings.journal_debit_account, memo)
            check = self._check_in_quickbooks(tenant.tenant_id, target, lines)
        except Blocked as blocked:
            return self._block(tenant.tenant_id, period, record, doc, blocked.reason, target)
        groups = [
            {
                "billing_code": key[0],
                "line_of_business": key[1] or None,
                "amount": str(amount),
                "account": group_targets[key].account,
                "class": group_targets[key].class_name,
            }
            for key, amount in changes.items()
        ]
        number = sum(1 for p in postings if p["status"] == "posted")
        if not lines:  # the changes cancel out per account and class: nothing changes in QuickBooks
            doc["groups"] = [*doc.get("groups", []), *groups]
            self._save(tenant.tenant_id, period, record, doc, "synced" if number else "pending", None)
            return _Result(again=True)
        try:
            doc_number = period.doc_number(number)
        except ValueError as exc:
            reason = {
                "code": "too_many_adjustments",
                "message": str(exc),
                "action": "Post this period's remaining changes by hand in QuickBooks.",
            }
            return self._block(tenant.tenant_id, period, record, doc, reason, target)
        posting = {
            "number": number,
            "doc_number": doc_number,
            "txn_date": period.end.isoformat(),
            "memo": memo,
            "target": target,
            "lines": [_line_json(line) for line in lines],
            "total": str(check_balanced(lines)),
            "groups": groups,
            "created_at": iso(self.clock.now()),
            "status": "sending",
            "qb_id": None,
            "posted_at": None,
            "error": None,
            "qb_ids": check,
        }
        posting["fingerprint"] = content_hash({k: posting[k] for k in ("number", "txn_date", "target", "lines")})
        failed = next((p for p in postings if p["status"] == "failed" and p["number"] == number), None)
        if failed is not None:
            if failed["fingerprint"] == posting["fingerprint"]:
                if force != period.key:
                    return _Result()  # refused as it is: sent again once something changes, or on request
                # Sent again as it is, on request: a new attempt needs a new requestid (Intuit replays the fault).
                posting["attempt"] = int(failed.get("attempt", 0)) + 1
            postings.remove(failed)
        postings.append(posting)
        try:
            record = self._save(tenant.tenant_id, period, record, doc, "pending", _sending(posting))
        except ConcurrentModification:
            return _Result()  # another run got there first; it posts
        return self._send(tenant, period, record, posting)

    def _targets(
        self,
        tenant_id: str,
        settings: TenantSettings,
        changes: dict[GroupKey, Decimal],
        posted: dict[GroupKey, Target],
    ) -> dict[GroupKey, Target]:
        """Each changed group's account (M1) and class (M3): the one it was posted to before, else the mappings."""
        out: dict[GroupKey, Target] = {}
        problems: list[str] = []
        mappings: MappingLookup | None = None
        for key in changes:
            if key in posted:
                out[key] = posted[key]
                continue
            mappings = mappings or self.mappings(self.store, tenant_id)
            code, line_of_business = key
            account = mappings.get("billing_codes", code)
            class_name = None
            if settings.use_classes and line_of_business:
                found = mappings.get("lines_of_business", line_of_business)
                if found is None:
                    problems.append(f"line of business {line_of_business!r} (lines_of_business)")
                else:
                    class_name = str(found.name)
            if account is None:
                problems.append(f"billing code {code!r} (billing_codes)")
                continue
            out[key] = Target(str(account.name), class_name)
        if problems:
            raise _blocked("mapping_missing", sorted(set(problems)), stale=False)
        return out

    def _check_in_quickbooks(self, tenant_id: str, target: str, lines: list[EntryLine]) -> dict[str, Any]:
        """QuickBooks Online: every account and class named must exist (name → Id); a name it does not know is a
        stale mapping. Desktop names are checked by QuickBooks itself when the entry runs."""
        if not target.startswith("qbo:") or not lines:
            return {}
        client = self.client_factory(target.removeprefix("qbo:"), tenant_id)
        accounts = self._list(client, target, "Account")
        classes = self._list(client, target, "Class") if any(line.class_name for line in lines) else {}
        problems = []
        ids: dict[str, Any] = {"accounts": {}, "classes": {}}
        for line in lines:
            found = _find(accounts, line.account)
            if found is None:
                problems.append(f"account {line.account!r}")
            else:
                ids["accounts"][line.account] = found
            if line.class_name:
                klass = _find(classes, line.class_name)
                if klass is None:
                    problems.append(f"class {line.class_name!r}")
                else:
                    ids["classes"][line.class_name] = klass
        if problems:
            raise _blocked("mapping_stale", sorted(set(problems)), stale=True)
        return ids

    def _list(self, client: Any, target: str, entity: str) -> dict[str, str]:
        """Name → Id of a QuickBooks Online list, read once per run (a run posts up to a month of daily entries)."""
        key = (target, entity)
        if key not in self._lists:
            self._lists[key] = _name_ids(client, entity)
        return self._lists[key]

    # --- sending ------------------------------------------------------------------------------------------

    def _resend(
        self, tenant: Tenant, period: Period, record: SyncRecord | None, doc: dict[str, Any], posting: dict[str, Any]
    ) -> _Result:
        assert record is not None
        record = self._save(tenant.tenant_id, period, record, doc, record.state, record.reason)
        if str(posting["target"]).startswith("qbd:"):
            job_seq = posting.get("job_seq")
            connector_id = str(posting["target"]).removeprefix("qbd:")
            job = self.store.jobs.get(connector_id, int(job_seq)) if job_seq is not None else None
            if job is not None and job.status in ("done", "error", "blocked"):
                return self._job_outcome(tenant.tenant_id, job)  # its outcome has not been applied yet
            if job is not None:
                return _Result()  # waiting for the Web Connector
        return self._send(tenant, period, record, posting)

    def _send(self, tenant: Tenant, period: Period, record: SyncRecord, posting: dict[str, Any]) -> _Result:
        target = str(posting["target"])
        if target.startswith("qbd:"):
            return self._to_desktop(tenant.tenant_id, period, record, posting)
        realm = target.removeprefix("qbo:")
        body = _qbo_body(posting)
        rid = request_id(tenant.tenant_id, target, "JournalEntry", period.key, posting["number"], _attempt(posting))
        try:
            client = self.client_factory(realm, tenant.tenant_id)
            created = client.create("JournalEntry", body, request_id=rid)
        except (NeedsReauth, NotConnected) as exc:
            reason = {
                "code": exc.code,
                "message": exc.detail,
                "action": "Reconnect QuickBooks Online (GET /v1/qbo/connect).",
            }
            self._update(tenant.tenant_id, period.key, lambda doc: None, "waiting", reason)
            return _Result()
        except qbo_errors.QboError as exc:
            if exc.retryable:
                raise  # throttled / unavailable: the message comes back and the same entry is re-sent
            stale = isinstance(exc, qbo_errors.InvalidReference)  # an account or class deleted since the check
            return self._refused(tenant.tenant_id, period, posting, exc.intuit_code or exc.code, exc.detail, stale)
        return self._confirmed(tenant.tenant_id, period, posting, str(created["Id"]))

    def _to_desktop(self, tenant_id: str, period: Period, record: SyncRecord, posting: dict[str, Any]) -> _Result:
        entry = JournalEntry(
            txn_date=period.end,
            ref_number=posting["doc_number"],
            lines=tuple(
                JournalLine(
                    side=line.side,
                    account=Ref(full_name=line.account),
                    amount=line.amount,
                    memo=line.memo,
                    class_ref=Ref(full_name=line.class_name) if line.class_name else None,
                )
                for line in _lines_of(posting)
            ),
        )
        ref = f"{JOB_REF}{period.key}:{posting['number']}:{_attempt(posting)}"
        connector_id = str(posting["target"]).removeprefix("qbd:")
        job = self.jobs.enqueue(tenant_id, connector_id, "journal_entry_add", entry, source_ref=ref)

        def remember(doc: dict[str, Any]) -> None:
            for p in doc["postings"]:
                if p["fingerprint"] == posting["fingerprint"] and p["status"] == "sending":
                    p["job_seq"] = job.seq

        self._update(tenant_id, period.key, remember, "pending", _sending(posting, desktop=True))
        if job.status in ("done", "error", "blocked"):
            return self._job_outcome(tenant_id, job)
        return _Result()

    def job_finished(self, job: Job) -> bool:
        """A Desktop job ran: when it carried a journal entry, record its outcome (True) and finish the period."""
        if not (job.source_ref or "").startswith(JOB_REF):
            return False
        result = self._job_outcome(job.tenant_id, job)
        if result.again:
            period = str(job.source_ref).removeprefix(JOB_REF).split(":", 1)[0]
            self.run(job.tenant_id, only=period)
        return True

    def _job_outcome(self, tenant_id: str, job: Job) -> _Result:
        key, number, attempt = str(job.source_ref).removeprefix(JOB_REF).rsplit(":", 2)
        record = self.store.records.get(tenant_id, PERIODS, key)
        if record is None:
            return _Result()
        posting = next((p for p in record.payload.get("postings", []) if _attempt(p) == attempt), None)
        if posting is None or posting["status"] != "sending" or str(posting["number"]) != number:
            return _Result()  # applied already
        period = parse_period(key)
        if job.status == "done":
            return self._confirmed(tenant_id, period, posting, str(job.result.get("txn_id") or ""))
        code = str(job.result.get("status_code", ""))
        message = str(job.result.get("message") or job.result.get("reason") or "QuickBooks refused the entry")
        return self._refused(tenant_id, period, posting, code, message, code in DESKTOP_INVALID_REFERENCE)

    def _confirmed(self, tenant_id: str, period: Period, posting: dict[str, Any], qb_id: str) -> _Result:
        now = iso(self.clock.now())

        def posted(doc: dict[str, Any]) -> None:
            for p in doc["postings"]:
                if p["fingerprint"] == posting["fingerprint"] and p["status"] == "sending":
                    p.update(status="posted", qb_id=qb_id, posted_at=now)
                    doc["groups"] = [*doc.get("groups", []), *p["groups"]]

        self._update(tenant_id, period.key, posted, "synced", None)
        self._log(tenant_id, period.key, "succeeded", posting, qb_id=qb_id)
        self.events.publish(
            "journal_entry.synced",
            tenant_id,
            {
                "period": period.key,
                "doc_number": posting["doc_number"],
                "quickbooks_id": qb_id,
                "adjustment": posting["number"] > 0,
                "total": posting["total"],
                "target": posting["target"],
            },
        )
        return _Result(posted=1, again=True)

    def _refused(
        self, tenant_id: str, period: Period, posting: dict[str, Any], code: str, message: str, stale: bool
    ) -> _Result:
        """QuickBooks refused the entry; ``stale``: because it does not know an account or class named in it."""
        reason = {
            "code": "mapping_stale" if stale else "quickbooks_error",
            "qb_code": code,
            "message": message,
            "action": "Fix the mapping or setting to a name QuickBooks has (or create it there); the next run sends "
            "the corrected entry."
            if stale
            else 'Fix the cause in QuickBooks or the settings, then POST /v1/journal-entries/post {"period": …}.',
        }

        def failed(doc: dict[str, Any]) -> None:
            for p in doc["postings"]:
                if p["fingerprint"] == posting["fingerprint"] and p["status"] == "sending":
                    p.update(status="failed", error={"code": code, "message": message})

        state: SyncState = "blocked" if stale else "failed"
        saved = self._update(tenant_id, period.key, failed, state, reason)
        self._log(tenant_id, period.key, "blocked" if stale else "failed", posting, code=code, message=message)
        if stale:
            # The Desktop conversation that got the refusal reported it already: only the SaaS app is told here.
            self._configuration_issue(saved, None, {**reason, "doc_number": posting["doc_number"]})
        else:
            self.events.publish(
                "transfer.failed",
                tenant_id,
                {
                    "kind": PERIODS,
                    "id": period.key,
                    "doc_number": posting["doc_number"],
                    "code": code,
                    "message": message,
                },
            )
        return _Result(failed=1)

    def _configuration_issue(self, record: SyncRecord, target: str | None, reason: dict[str, Any]) -> None:
        """Tell the SaaS app (``configuration.issue``, as for records) and, with a Desktop ``target``, the
        connector: its next conversation reports "success with configuration issues"."""
        self.events.publish(CONFIG_EVENT, record.tenant_id, {"kind": PERIODS, "id": record.source_id, **reason})
        if target is not None and target.startswith("qbd:"):
            DesktopTransfers(self.store).note_issue(record, target.removeprefix("qbd:"), reason)

    def _block(
        self,
        tenant_id: str,
        period: Period,
        record: SyncRecord | None,
        doc: dict[str, Any],
        reason: dict[str, Any],
        target: str | None,
    ) -> _Result:
        changed = record is None or record.state != "blocked" or record.reason != reason
        saved = self._save(tenant_id, period, record, doc, "blocked", reason)
        if changed:  # reported once per issue, not at every run
            self.store.records.log(
                TransferRecord(
                    tenant_id,
                    "j_" + secrets.token_hex(8),
                    PERIODS,
                    period.key,
                    "blocked",
                    iso(self.clock.now()),
                    action="none",
                    code=reason["code"],
                    message=reason["message"],
                )
            )
            self._configuration_issue(saved, target, reason)
        return _Result(blocked=1)

    def _mark(
        self, tenant_id: str, doc: dict[str, Any], items: list[tuple[SyncRecord, SourceCharge]]
    ) -> tuple[int, bool]:
        """QuickBooks has the period's current sums: its charges are synced, in the latest entry. Returns how many
        were marked and whether some are left for the next run (out of time)."""
        last = next((p for p in reversed(doc.get("postings", [])) if p["status"] == "posted"), None)
        if last is None:
            return 0, False
        now = iso(self.clock.now())
        marked = 0
        for record, _ in items:
            if record.state == "synced" and record.synced_hash == record.content_hash:
                continue
            if marked and time.monotonic() > self._deadline:
                return marked, True  # the run continues in a new message and marks the rest
            try:
                self.store.records.save(
                    replace(
                        record,
                        state="synced",
                        qb_id=last["qb_id"],
                        synced_hash=record.content_hash,
                        synced_at=now,
                        target=last["target"],
                        reason=None,
                        updated_at=now,
                    )
                )
                marked += 1
            except ConcurrentModification:
                continue  # changed meanwhile: its new amount is a delta for the next run
        return marked, False

    # --- storage ------------------------------------------------------------------------------------------

    def _save(
        self,
        tenant_id: str,
        period: Period,
        record: SyncRecord | None,
        doc: dict[str, Any],
        state: SyncState,
        reason: dict[str, Any] | None,
    ) -> SyncRecord:
        """Save the period (optimistic: ``ConcurrentModification`` if a concurrent run saved it first)."""
        now = iso(self.clock.now())
        digest = content_hash(doc)
        if record is None:
            return self.store.records.create(
                SyncRecord(
                    tenant_id,
                    PERIODS,
                    period.key,
                    digest,
                    doc,
                    state,
                    now,
                    now,
                    "j_" + secrets.token_hex(8),
                    reason=reason,
                )
            )
        if record.content_hash == digest and record.state == state and record.reason == reason:
            return record
        return self.store.records.save(
            replace(record, content_hash=digest, payload=doc, state=state, reason=reason, updated_at=now)
        )

    def _update(
        self,
        tenant_id: str,
        key: str,
        change: Callable[[dict[str, Any]], None],
        state: SyncState,
        reason: dict[str, Any] | None,
    ) -> SyncRecord:
        """Re-read, change and save a period until the save wins (bounded)."""
        for _ in range(8):
            record = self.store.records.get(tenant_id, PERIODS, key)
            if record is None:
                raise NotFound(f"period {key}")
            doc = _copy(record.payload)
            change(doc)
            try:
                return self._save(tenant_id, parse_period(key), record, doc, state, reason)
            except ConcurrentModification:
                continue
        raise ConcurrentModification(f"Period {key} is changing too often.")

    def _log(self, tenant_id: str, key: str, status: TransferStatus, posting: dict[str, Any], **extra: Any) -> None:
        self.store.records.log(
            TransferRecord(
                tenant_id,
                f"j_{key}_{posting['number']}_{posting['fingerprint'][:8]}",
                PERIODS,
                key,
                status,
                iso(self.clock.now()),
                action="create",
                target=posting["target"],
                **extra,
            )
        )

    def _periods(self, tenant_id: str) -> dict[str, SyncRecord]:
        return {r.source_id: r for r in all_records(self.store, tenant_id, PERIODS)}

    @staticmethod
    def _assigner(settings: TenantSettings, periods: dict[str, SyncRecord]) -> PeriodAssigner:
        # Only periods that have sent something keep their days; an unposted period of another granularity (the
        # setting changed while it was open) gives its days to the current setting.
        recorded = sorted(
            (r for r in periods.values() if r.payload.get("postings")), key=lambda r: (r.created_at, r.source_id)
        )
        return PeriodAssigner(settings.summarized_period, [parse_period(r.source_id) for r in recorded])


@dataclass
class _Result:
    posted: int = 0
    blocked: int = 0
    failed: int = 0
    marked: int = 0
    again: bool = False  # something was confirmed: look at the period again (mark charges, adjust)
    unfinished: bool = False  # out of time while marking its charges


def _attempt(posting: dict[str, Any]) -> str:
    """One attempt at an entry: its content, and how many times it was sent again on request after a refusal."""
    attempt = int(posting.get("attempt", 0))
    return f"{posting['fingerprint']}.{attempt}" if attempt else str(posting["fingerprint"])


def _new_doc(period: Period) -> dict[str, Any]:
    return {
        "period": period.key,
        "granularity": period.granularity,
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "groups": [],
        "postings": [],
    }


def _copy(doc: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    out["postings"] = [dict(p) for p in doc.get("postings", [])]
    out["groups"] = list(doc.get("groups", []))
    return out


def _open(period: Period) -> dict[str, Any]:
    return {
        "code": "period_open",
        "message": f"Period {period.key} ends on {period.end.isoformat()}; it is posted once it closes.",
        "action": 'none (or post it now: POST /v1/journal-entries/post {"period": …})',
    }


def _sending(posting: dict[str, Any], *, desktop: bool = False) -> dict[str, Any]:
    if desktop:
        return {
            "code": "queued_for_web_connector",
            "message": f"Entry {posting['doc_number']} is queued for the next QuickBooks Web Connector run.",
            "action": "none: it is sent at the next scheduled run",
        }
    return {"code": "sending", "message": f"Entry {posting['doc_number']} is being sent.", "action": "none"}


def _name_ids(client: Any, entity: str) -> dict[str, str]:
    rows = client.query_all(entity)
    return {str(row.get("FullyQualifiedName") or row.get("Name")): str(row["Id"]) for row in rows}


def _find(ids: dict[str, str], name: str) -> str | None:
    if name in ids:
        return ids[name]
    folded = name.casefold()
    return next((value for key, value in ids.items() if key.casefold() == folded), None)


def _qbo_body(posting: dict[str, Any]) -> dict[str, Any]:
    ids = posting.get("qb_ids") or {"accounts": {}, "classes": {}}
    lines = []
    for line in _lines_of(posting):
        detail: dict[str, Any] = {
            "PostingType": "Debit" if line.side == "debit" else "Credit",
            "AccountRef": {"value": ids["accounts"][line.account], "name": line.account},
        }
        if line.class_name:
            detail["ClassRef"] = {"value": ids["classes"][line.class_name], "name": line.class_name}
        lines.append(
            {
                "Description": line.memo,
                "Amount": line.amount,
                "DetailType": "JournalEntryLineDetail",
                "JournalEntryLineDetail": detail,
            }
        )
    return {
        "DocNumber": posting["doc_number"],
        "TxnDate": posting["txn_date"],
        "PrivateNote": posting["memo"],
        "Adjustment": posting["number"] > 0,
        "Line": lines,
    }


def _period_view(record: SyncRecord, grace_hours: int) -> PeriodView:
    doc = record.payload
    period = parse_period(record.source_id)
    posted, _ = _posted_groups(doc)
    return PeriodView(
        period=period.key,
        granularity=period.granularity,
        start=period.start.isoformat(),
        end=period.end.isoformat(),
        closes_at=iso(period.closes_at(grace_hours)),
        state=record.state,
        reason=record.reason,
        charges=int(doc.get("charges", 0)),
        charges_total=str(doc.get("charges_total", "0.00")),
        posted_total=str(sum(posted.values(), ZERO)),
        entries=[
            EntryView(
                number=int(p["number"]),
                doc_number=str(p["doc_number"]),
                status=str(p["status"]),
                quickbooks_id=p.get("qb_id"),
                txn_date=str(p["txn_date"]),
                total=str(p["total"]),
                lines=list(p["lines"]),
                created_at=str(p["created_at"]),
                posted_at=p.get("posted_at"),
                error=p.get("error"),
            )
            for p in doc.get("postings", [])
        ],
    )
