"""Per-realm company state, fault switches and the sliding-window rate limiter."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from infra.qbo_emulator.errors import iso_time

#: URL segment (lower-case) → entity name. CompanyInfo/Preferences/TaxCode are read-only here.
ENTITIES: dict[str, str] = {
    name.lower(): name
    for name in (
        "CompanyInfo",
        "Preferences",
        "Customer",
        "Item",
        "Invoice",
        "Payment",
        "JournalEntry",
        "Class",
        "Term",
        "Account",
        "TaxCode",
        "Vendor",
        "Employee",
        "TimeActivity",
        "Bill",
        "Purchase",
        "PurchaseOrder",
    )
}
READ_ONLY = {"CompanyInfo", "Preferences", "TaxCode"}
#: Transactions can be deleted; list entities are only deactivated (``Active: false``).
DELETABLE = {"Invoice", "Payment", "JournalEntry", "TimeActivity", "Bill", "Purchase", "PurchaseOrder"}
#: CDC does not cover these (NOTES.md §2).
NOT_IN_CDC = {"TaxCode", "TaxRate", "TaxAgency", "JournalCode", "TimeActivity"}


@dataclass
class Faults:
    """Fault-injection switches. Plain attributes: set them from the test thread; counters are decremented under
    the emulator lock."""

    #: the next N writes (create/update/delete/batch) commit, then answer 500 and 503 alternately.
    fail_after_commit_5xx: int = 0
    #: the next API requests (any v3 call, authenticated), one status each, are answered with that status
    #: (429: Intuit's throttle fault; 5xx: a system failure) before anything is read or written.
    fail_next: list[int] = field(default_factory=list)
    #: sleep this long before handling every request.
    latency_seconds: float = 0.0
    #: every access token answers 401/3200 until cleared.
    expire_access_tokens: bool = False
    #: the next refresh_token grant answers invalid_grant (the token itself stays valid).
    invalid_grant_next_refresh: bool = False
    #: answer every fault as XML whatever the Accept header says.
    xml_faults: bool = False
    #: answer 429 as XML (as Intuit has been seen to do even for JSON requests); False → JSON fault.
    throttle_xml: bool = True
    #: also replay *error* responses for a repeated requestid (default: only successes are remembered).
    replay_errors: bool = False


@dataclass
class Limits:
    per_minute: int | None = None
    per_second: int | None = None
    batch_per_minute: int | None = None
    concurrent: int | None = None


class RateWindow:
    """Timestamps of accepted requests for one realm; rejected requests are not counted."""

    def __init__(self) -> None:
        self.all: deque[float] = deque()
        self.batch: deque[float] = deque()
        self.in_flight = 0

    def admit(self, now: float, limits: Limits, *, is_batch: bool) -> bool:
        while self.all and self.all[0] <= now - 60:
            self.all.popleft()
        while self.batch and self.batch[0] <= now - 60:
            self.batch.popleft()
        if limits.per_second is not None and sum(1 for t in self.all if t > now - 1) >= limits.per_second:
            return False
        if limits.per_minute is not None and len(self.all) >= limits.per_minute:
            return False
        if is_batch and limits.batch_per_minute is not None and len(self.batch) >= limits.batch_per_minute:
            return False
        self.all.append(now)
        if is_batch:
            self.batch.append(now)
        return True


@dataclass
class StoredResponse:
    status: int
    body: bytes
    content_type: str


class CompanyState:
    """Everything one realm holds. ``entities[type][id]`` are the stored dicts (as returned by the API)."""

    def __init__(self, realm_id: str, name: str, country: str, clock: Callable[[], float]) -> None:
        self.realm_id = realm_id
        self.name = name
        self.country = country
        self.clock = clock
        self.entities: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in ENTITIES.values()}
        #: deleted transactions as CDC reports them: type → id → {"Id","status","domain","MetaData"}
        self.deleted: dict[str, dict[str, dict[str, Any]]] = {}
        self.request_log: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()
        self.requestids: dict[str, StoredResponse] = {}
        self.rate = RateWindow()
        #: QBO's "warn if duplicate invoice number" preference: True → duplicate DocNumber is fault 6140.
        self.reject_duplicate_doc_numbers = True
        #: applying/unapplying a payment bumps the invoice's SyncToken and LastUpdatedTime (inferred from QBO).
        self.bump_invoice_on_payment = True
        self._next_ids: Counter[str] = Counter()
        self._next_doc_number = 1001
        self._seed()

    # ---- helpers ----------------------------------------------------------------------------------------
    @property
    def throttled(self) -> int:
        return self.counts["throttled"]

    def next_id(self, entity: str) -> str:
        self._next_ids[entity] += 1
        return str(self._next_ids[entity])

    def next_doc_number(self) -> str:
        used = {str(inv.get("DocNumber")) for inv in self.entities["Invoice"].values()}
        while str(self._next_doc_number) in used:
            self._next_doc_number += 1
        number = str(self._next_doc_number)
        self._next_doc_number += 1
        return number

    def metadata(self, created: float | None = None) -> dict[str, str]:
        now = iso_time(self.clock())
        return {"CreateTime": iso_time(created) if created is not None else now, "LastUpdatedTime": now}

    def get(self, entity: str, entity_id: str) -> dict[str, Any] | None:
        return self.entities.get(entity, {}).get(str(entity_id))

    def _add(self, entity: str, body: dict[str, Any], entity_id: str | None = None) -> dict[str, Any]:
        new_id = entity_id or self.next_id(entity)
        obj = {**body, "Id": new_id, "SyncToken": "0", "domain": "QBO", "sparse": False, "MetaData": self.metadata()}
        self.entities[entity][new_id] = obj
        return obj

    # ---- seed data ----------------------------------------------------------------------------------------
    def _seed(self) -> None:
        currency = "USD" if self.country == "US" else {"CA": "CAD", "GB": "GBP", "AU": "AUD"}.get(self.country, "USD")
        self._add(
            "CompanyInfo",
            {
                "CompanyName": self.name,
                "LegalName": self.name,
                "Country": self.country,
                "CompanyAddr": {"Line1": "1 Emulator Way", "City": "Mountain View", "Country": self.country},
                "Email": {"Address": "owner@example.com"},
                "FiscalYearStartMonth": "January",
                "SupportedLanguages": "en",
                "NameValue": [{"Name": "OfferingSku", "Value": "QuickBooks Online Plus"}],
            },
            "1",
        )
        self._add(
            "Preferences",
            {
                "AccountingInfoPrefs": {"ClassTrackingPerTxn": False, "ClassTrackingPerTxnLine": True},
                "SalesFormsPrefs": {"CustomTxnNumbers": False, "AllowDiscount": True},
                "TaxPrefs": {"UsingSalesTax": True, "PartnerTaxEnabled": False},
                "CurrencyPrefs": {"MultiCurrencyEnabled": False, "HomeCurrency": {"value": currency}},
            },
            "1",
        )
        accounts = [
            ("Services", "Income", "ServiceFeeIncome", "Revenue"),
            ("Sales of Product Income", "Income", "SalesOfProductIncome", "Revenue"),
            ("Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable", "Asset"),
            ("Accounts Payable (A/P)", "Accounts Payable", "AccountsPayable", "Liability"),
            ("Undeposited Funds", "Other Current Asset", "UndepositedFunds", "Asset"),
            ("Checking", "Bank", "Checking", "Asset"),
            ("Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs", "Expense"),
            ("Office Expenses", "Expense", "OfficeGeneralAdministrativeExpenses", "Expense"),
            ("Inventory Asset", "Other Current Asset", "Inventory", "Asset"),
        ]
        for name, account_type, sub_type, classification in accounts:
            self._add(
                "Account",
                {
                    "Name": name,
                    "FullyQualifiedName": name,
                    "AccountType": account_type,
                    "AccountSubType": sub_type,
                    "Classification": classification,
                    "Active": True,
                    "SubAccount": False,
                    "CurrentBalance": 0,
                    "CurrencyRef": {"value": currency},
                },
            )
        for code, taxable in (("TAX", True), ("NON", False)):
            self.entities["TaxCode"][code] = {
                "Id": code,
                "Name": code,
                "Description": code,
                "Taxable": taxable,
                "TaxGroup": False,
                "Active": True,
                "MetaData": self.metadata(),
            }
        for name, days in (("Due on receipt", 0), ("Net 15", 15), ("Net 30", 30)):
            self._add("Term", {"Name": name, "Type": "STANDARD", "DueDays": days, "Active": True})
