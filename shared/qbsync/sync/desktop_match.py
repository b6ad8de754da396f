"""Matching source customers and items to what a QuickBooks Desktop company file already holds (T1, T2).

QuickBooks Desktop cannot be asked "which customer has this e-mail" and items have no SKU field, so on a connector's
first sync qbsync reads the file's customers and items with iterator queries (``CustomerQuery`` and ``ItemQuery``,
100 a page, at the next Web Connector run) into a match index, and matches against it:

* a customer by its billing e-mail (the customer's ``Email``), case-insensitively;
* an item by the source SKU, compared with the item's Manufacturer's Part Number (``ManufacturerPartNumber``) and,
  when no item has that part number, with the item's full name — both case-insensitively;
* before qbsync creates a customer or an item, its QuickBooks name is looked up too: a name already taken (list
  names are unique in a company file) is a ``*_duplicate_name`` match issue with the existing record as the
  candidate, instead of a refused request.

Records waiting for the import say so (``desktop_import``) and are released when it finishes. Customers and items
that qbsync creates are added to the index when QuickBooks answers, so a second record with the same e-mail links.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qbsync.clock import Clock, SystemClock, iso
from qbsync.qbwc.jobs import JobService
from qbsync.qbxml import RetRecord
from qbsync.store.ports import Job, MatchEntry, Store

IMPORT_REF = "match-import:"
IMPORT_JOBS = {"customer": "customer_query", "item": "item_query"}
WAITING_CODE = "desktop_import"
IMPORT_READY = "qbd.import_ready"  # transfer kind: release what waited for a connector's import


def normalise(value: str) -> str:
    return value.strip().casefold()


def entries_of(kind: str, rets: Iterable[RetRecord]) -> list[MatchEntry]:
    """Index entries for one page of ``CustomerRet`` / ``Item*Ret`` answers."""
    entries: list[MatchEntry] = []
    for ret in rets:
        name = ret.full_name or ret.name
        if not ret.list_id or not name:
            continue
        entries.append(MatchEntry(kind, "name", normalise(name), ret.list_id, name))
        if kind == "customer":
            email = ret.raw.get("Email")
            if isinstance(email, str) and email.strip():
                entries.append(MatchEntry(kind, "email", normalise(email), ret.list_id, name))
        else:
            part = ret.raw.get("ManufacturerPartNumber")
            if isinstance(part, str) and part.strip():
                entries.append(MatchEntry(kind, "mpn", normalise(part), ret.list_id, name))
    return entries


class DesktopMatcher:
    def __init__(self, store: Store, jobs: JobService, clock: Clock | None = None) -> None:
        self.store = store
        self.jobs = jobs
        self.clock = clock or SystemClock()

    # --- the import -----------------------------------------------------------------------------------------

    def ready(self, tenant_id: str, connector_id: str) -> bool:
        """True once the connector's company file has been read; the first caller queues the import."""
        status = self.store.matches.status(connector_id)
        if status is not None:
            return bool(status.get("state") == "ready")
        if self.store.matches.save_status(connector_id, self._importing(), create_only=True):
            self._queue_import(tenant_id, connector_id, IMPORT_JOBS)
        return False

    def status(self, connector_id: str) -> dict[str, Any] | None:
        return self.store.matches.status(connector_id)

    def on_page(self, job: Job, rets: tuple[RetRecord, ...]) -> None:
        kind = _import_kind(job)
        if kind is not None:
            self.store.matches.put_many(job.connector_id, entries_of(kind, rets))

    def on_finished(self, job: Job) -> bool:
        """Record an import query's end; True when the index has just become ready."""
        kind = _import_kind(job)
        if kind is None:
            return False
        status = self.store.matches.status(job.connector_id) or self._importing()
        if job.status != "done":  # QuickBooks refused or kept failing: read that list again at the next run
            status["failures"] = int(status.get("failures", 0)) + 1
            status["last_error"] = str(job.result.get("message", ""))
            self.store.matches.save_status(job.connector_id, status)
            self._queue_import(job.tenant_id, job.connector_id, {kind: IMPORT_JOBS[kind]})
            return False
        counts = dict(status.get("counts", {}))
        counts[kind] = int(job.result.get("records", 0))
        status["counts"] = counts
        if status.get("state") != "ready" and set(counts) >= set(IMPORT_JOBS):
            status.update(state="ready", ready_at=iso(self.clock.now()))
            self.store.matches.save_status(job.connector_id, status)
            return True
        self.store.matches.save_status(job.connector_id, status)
        return False

    def remember(self, connector_id: str, kind: str, qb_id: str, name: str, *, email: str | None = None) -> None:
        """A customer or item qbsync created: match the next record with the same key to it."""
        entries = [MatchEntry(kind, "name", normalise(name), qb_id, name)]
        if email:
            entries.append(MatchEntry(kind, "email", normalise(email), qb_id, name))
        self.store.matches.put_many(connector_id, entries)

    # --- matching -------------------------------------------------------------------------------------------

    def find_customer(self, connector_id: str, email: str) -> list[MatchEntry]:
        return self.store.matches.find(connector_id, "customer", "email", normalise(email))

    def find_item(self, connector_id: str, sku: str) -> list[MatchEntry]:
        by_part = self.store.matches.find(connector_id, "item", "mpn", normalise(sku))
        return by_part or self.store.matches.find(connector_id, "item", "name", normalise(sku))

    def find_name(self, connector_id: str, kind: str, name: str) -> list[MatchEntry]:
        return self.store.matches.find(connector_id, kind, "name", normalise(name))

    # --- helpers --------------------------------------------------------------------------------------------

    def _importing(self) -> dict[str, Any]:
        return {"state": "importing", "started_at": iso(self.clock.now()), "counts": {}}

    def _queue_import(self, tenant_id: str, connector_id: str, kinds: dict[str, str]) -> None:
        for kind, job_kind in kinds.items():
            self.jobs.enqueue(tenant_id, connector_id, job_kind, {"active_status": "All"}, source_ref=IMPORT_REF + kind)


def _import_kind(job: Job) -> str | None:
    ref = job.source_ref or ""
    kind = ref.removeprefix(IMPORT_REF) if ref.startswith(IMPORT_REF) else None
    return kind if kind in IMPORT_JOBS else None
