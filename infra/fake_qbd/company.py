"""An in-memory QuickBooks Desktop company that really processes qbXML (a test double for QuickBooks + QBXMLRP2).

Modelled behaviour (see ../shared/reference/qbwc/NOTES.md):
* names unique (case-insensitively) across Customer/Vendor lists (3100), items unique among items (3100);
* references must resolve (3140), Mod needs the current EditSequence (3200), unknown ListID on Mod (3120);
* ItemServiceMod / ItemNonInventoryMod (a ListID of another item type is 3120; a rename checks the item names,
  3100) and ReceivePaymentMod (its ``AppliedToTxnMod`` entries replace the applications; invoice balances follow);
* queries: no match -> statusCode 1; ListID/FullName/TxnID lookups with missing objects -> 500 Warn;
* iterators (Start/Continue/Stop, 3391 for unknown ids); iterators die with the session (``end_session``);
* ``onError``: ``stopOnError`` stops at the first Error-severity status and returns no responses for the rest;
  ``continueOnError`` goes on; ``rollbackOnError`` is treated like ``stopOnError`` (nothing is rolled back);
* message-set error recovery: like the SDK, only the **last** message set's response is kept. A request whose
  ``oldMessageSetID`` equals it gets that stored response back verbatim and nothing is processed; an unknown
  ``oldMessageSetID`` means the old set never reached QuickBooks, so the new set is processed normally.
Status codes whose exact wording was not found in real traffic (3070, 3391, the unbalanced journal entry,
over-applied payment total) use plausible messages; see the constants below.

Sales tax, discounts and terms (a US company with sales tax turned on):
* the company starts with the sales tax codes ``Tax`` (taxable) and ``Non`` (non-taxable) and the standard terms
  of a new US company (:data:`SEED_TERMS`: 1% 10 Net 30, 2% 10 Net 30, Consignment, Due on receipt, Net 15/30/60);
  it has no sales tax item until one is added, and no "most common sales tax item" until one is chosen;
* ItemDiscount and ItemSalesTax share the item name pool (3100) and are returned by ItemQuery;
* an invoice line's tax code is its SalesTaxCodeRef, else its item's, else the code QuickBooks gives a new item of
  that kind (:data:`ITEM_DEFAULT_TAX_CODE`: parts and discounts ``Tax``, services ``Non`` - turning sales tax on
  only makes existing inventory/non-inventory parts taxable); the invoice's tax item is its ItemSalesTaxRef, else
  the customer's, else the most common one, else none (no tax); its customer code is CustomerSalesTaxCodeRef, else
  the customer's SalesTaxCodeRef, else ``Tax``; a non-taxable customer code means no tax at all;
* SalesTaxTotal = (sum of the amounts of lines with a taxable code, discount lines included) x TaxRate %, rounded
  half-up to the cent, fixed when the invoice is saved; BalanceRemaining = Subtotal + SalesTaxTotal - payments;
* TermsRef (else the customer's terms) sets DueDate = TxnDate + StdDueDays when DueDate is not sent; early-payment
  discounts (StdDiscountDays/DiscountPct) are stored but not computed (no SuggestedDiscountAmount);
* a line with RatePercent (or a discount line without Amount/Rate/RatePercent: its item's DiscountRatePercent) is
  that percentage of the line right above it, a discount line's own DiscountRate a fixed amount; a discount
  always subtracts (inferred from the QuickBooks UI). Sales tax groups, date-driven terms, subtotal items and
  tax-inclusive amounts are not modelled.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from lxml import etree

from infra.fake_qbd.xmlio import (
    COULD_NOT_START_MESSAGE,
    HRESULT_COULD_NOT_START,
    HRESULT_VERSION_NOT_SUPPORTED,
    VERSION_NOT_SUPPORTED_MESSAGE,
    QBXMLProcessingError,
    bool_text,
    is_amount,
    money,
    parse_document,
    parse_error,
    safe_parser,
    serialize,
    sub,
    text,
    texts,
    to_decimal,
)

DEFAULT_VERSIONS: tuple[str, ...] = ("1.0", "1.1", "2.0", "2.1", "3.0", "4.0", "4.1", "5.0", "6.0", "7.0", "8.0")
DEFAULT_VERSIONS = (*DEFAULT_VERSIONS, "9.0", "10.0", "11.0", "12.0", "13.0")
COMPANY_TZ = timezone(timedelta(hours=-5))
CENT = Decimal("0.01")
ZERO = Decimal("0.00")

STATUS_OK = (0, "Info", "Status OK")
NO_MATCH = (1, "Info", "A query request did not find a matching object in QuickBooks")
JE_UNBALANCED_CODE = 3020  # exact QuickBooks code/wording for an unbalanced journal entry not verified
INVALID_REF_TAIL = "  QuickBooks error message: Invalid argument.  The specified record does not exist in the list."

NAME_KINDS = ("Customer", "Vendor", "Employee", "OtherName")
ITEM_KINDS = ("ItemService", "ItemNonInventory", "ItemInventory", "ItemDiscount", "ItemSalesTax")
LIST_KINDS = (*NAME_KINDS, *ITEM_KINDS, "Account", "Class", "SalesTaxCode", "StandardTerms", "PayrollItemWage")
TXN_KINDS = ("Invoice", "ReceivePayment", "JournalEntry")
MAX_NAME = {"Customer": 41, "Vendor": 41, "ItemService": 31, "ItemNonInventory": 31, "Account": 31, "Class": 31}
MAX_NAME |= {"ItemDiscount": 31, "ItemSalesTax": 31, "SalesTaxCode": 3, "StandardTerms": 31, "ItemInventory": 31}
# Rets of these kinds have no FullName/ParentRef/Sublevel (qbxml130.xsd).
FLAT_KINDS = ("Vendor", "Employee", "ItemSalesTax", "SalesTaxCode", "StandardTerms", "PayrollItemWage")
# Top-level references that list records may carry: tag -> (kinds, label in the 3140 message).
LIST_REFS: dict[str, tuple[tuple[str, ...], str]] = {
    "AccountRef": (("Account",), "Account"),
    "SalesTaxCodeRef": (("SalesTaxCode",), "Sales Tax Code"),
    "ItemSalesTaxRef": (("ItemSalesTax",), "Item"),
    "TermsRef": (("StandardTerms",), "Terms"),
    "TaxVendorRef": (("Vendor",), "Vendor"),
}
# Tax code of an item without its own SalesTaxCodeRef, as QuickBooks' new-item defaults: parts taxable, services not.
ITEM_DEFAULT_TAX_CODE = {"ItemService": "Non", "ItemNonInventory": "Tax", "ItemDiscount": "Tax", "ItemSalesTax": "Non"}
ITEM_DEFAULT_TAX_CODE["ItemInventory"] = "Tax"
# Where an item's fields sit in its Ret (qbxml130.xsd ItemServiceRet / ItemNonInventoryRet), after a mod adds one.
ITEM_FIELD_ORDER: tuple[str, ...] = ("ManufacturerPartNumber", "UnitOfMeasureSetRef", "IsTaxIncluded")
ITEM_FIELD_ORDER += ("SalesTaxCodeRef", "SalesOrPurchase", "SalesAndPurchase", "ExternalGUID")
# The sales fields of both forms, and what each becomes when a mod switches the form (inferred from the item
# window, where "purchased / performed by a subcontractor" can be ticked and unticked; not verified on QuickBooks).
SALES_OR_PURCHASE: tuple[str, ...] = ("Desc", "Price", "PricePercent", "AccountRef")
SALES_AND_PURCHASE: tuple[str, ...] = ("SalesDesc", "SalesPrice", "IncomeAccountRef", "PurchaseDesc", "PurchaseCost")
SALES_AND_PURCHASE += ("PurchaseTaxCodeRef", "ExpenseAccountRef", "PrefVendorRef")
SALES_FORM_SWITCH = {"Desc": "SalesDesc", "Price": "SalesPrice", "AccountRef": "IncomeAccountRef"}
SALES_FORM_SWITCH |= {v: k for k, v in SALES_FORM_SWITCH.items()}
FIELD_LIMITS = {
    "CompanyName": 41,
    "Salutation": 15,
    "FirstName": 25,
    "MiddleName": 5,
    "LastName": 25,
    "Phone": 21,
    "AltPhone": 21,
    "Fax": 21,
    "Email": 1023,
    "Contact": 41,
    "AccountNumber": 99,
}
ADDRESS_LIMITS = {"Addr1": 41, "Addr2": 41, "Addr3": 41, "Addr4": 41, "Addr5": 41, "City": 31, "State": 21}
ADDRESS_LIMITS |= {"PostalCode": 13, "Country": 31, "Note": 41}
AMOUNT_TAGS = {"Amount", "Rate", "Price", "TotalAmount", "PaymentAmount", "SalesPrice", "PurchaseCost"}
AMOUNT_TAGS |= {"DiscountAmount", "Quantity", "OpenBalance", "CreditLimit"}
AMOUNT_TAGS |= {"DiscountRate", "DiscountRatePercent", "TaxRate", "DiscountPct"}  # PRICETYPE / PERCENTTYPE
INT_TAGS = {"StdDueDays", "StdDiscountDays"}
DATE_TAGS = {"TxnDate", "DueDate", "ShipDate", "ServiceDate", "FromTxnDate", "ToTxnDate", "OpenBalanceDate"}
ITERABLE = {"CustomerQueryRq", "VendorQueryRq", "ItemQueryRq", "ItemServiceQueryRq", "ItemNonInventoryQueryRq"}
ITERABLE |= {"InvoiceQueryRq", "ReceivePaymentQueryRq", "JournalEntryQueryRq"}
ITERABLE |= {"ItemDiscountQueryRq", "ItemSalesTaxQueryRq", "ItemInventoryQueryRq", "EmployeeQueryRq"}
SEED_ACCOUNTS = (
    ("Accounts Receivable", "AccountsReceivable"),
    ("Undeposited Funds", "OtherCurrentAsset"),
    ("Checking", "Bank"),
    ("Sales", "Income"),
    ("Services", "Income"),
    ("Consulting Income", "Income"),
    ("Cost of Goods Sold", "CostOfGoodsSold"),
    ("Office Supplies", "Expense"),
    ("Opening Balance Equity", "Equity"),
)
# The sales tax codes of a US company (Sales Tax preferences: taxable item code "Tax", non-taxable "Non").
SEED_SALES_TAX_CODES = (("Tax", True, "Taxable Sales"), ("Non", False, "Non-Taxable Sales"))
# The standard terms of a new US QuickBooks Desktop company: (name, StdDueDays, StdDiscountDays, DiscountPct).
SEED_TERMS: tuple[tuple[str, int, int | None, str | None], ...] = (
    ("1% 10 Net 30", 30, 10, "1.0"),
    ("2% 10 Net 30", 30, 10, "2.0"),
    ("Consignment", 0, None, None),
    ("Due on receipt", 0, None, None),
    ("Net 15", 15, None, None),
    ("Net 30", 30, None, None),
    ("Net 60", 60, None, None),
)
# CustomerRet element order (qbxml130.xsd); Customer fields are kept in request order and sorted by this.
CUSTOMER_RET_ORDER = (  # noqa: SIM905 - one XSD sequence, easier to compare as words
    "ListID TimeCreated TimeModified EditSequence Name FullName IsActive ClassRef ParentRef Sublevel CompanyName "
    "Salutation FirstName MiddleName LastName Suffix JobTitle BillAddress BillAddressBlock ShipAddress "
    "ShipAddressBlock ShipToAddress PrintAs Phone Mobile Pager AltPhone Fax Email Cc Contact AltContact "
    "AdditionalContactRef ContactsRet CustomerTypeRef TermsRef SalesRepRef Balance TotalBalance SalesTaxCodeRef "
    "ItemSalesTaxRef SalesTaxCountry ResaleNumber AccountNumber CreditLimit PreferredPaymentMethodRef "
    "CreditCardInfo JobStatus JobStartDate JobProjectedEndDate JobEndDate JobDesc JobTypeRef Notes "
    "AdditionalNotesRet IsStatementWithParent DeliveryMethod PreferredDeliveryMethod PriceLevelRef ExternalGUID "
    "TaxRegistrationNumber CurrencyRef DataExtRet"
).split()


class StatusError(Exception):
    """A per-request failure that QuickBooks reports in the ``*Rs`` status attributes."""

    def __init__(self, code: int, message: str, severity: str = "Error") -> None:
        super().__init__(message)
        self.code = code
        self.severity = severity
        self.message = message


class FileIDConflictError(Exception):
    """QBWC1026-like: a different FileID is already stamped under this OwnerID."""


def too_long(value: str, field_name: str) -> StatusError:
    return StatusError(3070, f'The string "{value}" in the field "{field_name}" is too long.')


def invalid_ref(ref_label: str, value: str, where: str) -> StatusError:
    return StatusError(
        3140, f'There is an invalid reference to QuickBooks {ref_label} "{value}" in the {where}.' + INVALID_REF_TAIL
    )


def not_found(value: str) -> StatusError:
    return StatusError(3120, f'Object "{value}" specified in the request cannot be found.' + INVALID_REF_TAIL)


# ---------------------------------------------------------------------------------------------- records


@dataclass
class ListRecord:
    """A list element (customer, vendor, item, account, class). ``fields`` keeps other child elements verbatim."""

    kind: str
    list_id: str
    name: str
    full_name: str
    time_created: datetime
    time_modified: datetime
    edit_sequence: str
    is_active: bool = True
    parent_id: str | None = None
    sublevel: int = 0
    fields: list[etree._Element] = field(default_factory=list)

    def field_text(self, tag: str) -> str | None:
        for el in self.fields:
            if el.tag == tag:
                return el.text or ""
        return None


@dataclass
class InvoiceLine:
    txn_line_id: str
    item_id: str | None
    desc: str | None
    quantity: Decimal | None
    rate: Decimal | None
    amount: Decimal
    class_id: str | None = None
    service_date: date | None = None
    sales_tax_code_id: str | None = None
    rate_percent: Decimal | None = None


@dataclass
class Invoice:
    txn_id: str
    txn_number: int
    time_created: datetime
    time_modified: datetime
    edit_sequence: str
    customer_id: str
    ar_account_id: str
    txn_date: date
    due_date: date
    ref_number: str
    memo: str | None
    lines: list[InvoiceLine]
    payments: list[tuple[str, Decimal]] = field(default_factory=list)  # (ReceivePayment TxnID, amount)
    terms_id: str | None = None
    item_sales_tax_id: str | None = None
    customer_sales_tax_code_id: str | None = None
    # Fixed when the invoice is saved, like QuickBooks (a later rate change does not touch old invoices).
    sales_tax_percentage: Decimal = ZERO
    sales_tax_total: Decimal = ZERO

    @property
    def subtotal(self) -> Decimal:
        return sum((ln.amount for ln in self.lines), ZERO)

    @property
    def applied_amount(self) -> Decimal:
        return sum((amt for _, amt in self.payments), ZERO)

    @property
    def balance_remaining(self) -> Decimal:
        return self.subtotal + self.sales_tax_total - self.applied_amount

    @property
    def is_paid(self) -> bool:
        return self.balance_remaining <= ZERO


@dataclass
class Payment:
    txn_id: str
    txn_number: int
    time_created: datetime
    time_modified: datetime
    edit_sequence: str
    customer_id: str
    ar_account_id: str
    deposit_account_id: str
    txn_date: date
    ref_number: str | None
    total_amount: Decimal
    memo: str | None
    payment_method: str | None
    applied: list[tuple[str, Decimal]] = field(default_factory=list)  # (Invoice TxnID, amount)

    @property
    def unused_payment(self) -> Decimal:
        return self.total_amount - sum((a for _, a in self.applied), ZERO)


@dataclass
class JournalLine:
    side: str  # "Debit" | "Credit"
    txn_line_id: str
    account_id: str
    amount: Decimal
    memo: str | None = None
    entity_id: str | None = None
    class_id: str | None = None


@dataclass
class JournalEntry:
    txn_id: str
    txn_number: int
    time_created: datetime
    time_modified: datetime
    edit_sequence: str
    txn_date: date
    ref_number: str | None
    is_adjustment: bool
    memo: str | None
    lines: list[JournalLine]


@dataclass
class RequestLogEntry:
    """One ``process`` call: the ``*Rq`` tags it carried and how it ended."""

    requests: list[str]
    outcome: str  # "processed" | "replayed" | "parse_error" | "hresult"
    at: float


@dataclass
class _Iterator:
    iterator_id: str
    rq_tag: str
    ids: list[str]
    pos: int
    max_returned: int


Record = ListRecord | Invoice | Payment | JournalEntry
Handler = Callable[[etree._Element, etree._Element], None]


# ---------------------------------------------------------------------------------------------- company


class FakeCompany:
    """A QuickBooks Desktop company file with the request processor in front of it. Thread-safe."""

    def __init__(
        self,
        name: str = "Fake Co",
        file_path: str = r"C:\Company\fake.qbw",
        supported_versions: Iterable[str] = DEFAULT_VERSIONS,
        country: str = "US",
        *,
        product_name: str = "QuickBooks Pro 2014",
        major_version: int = 24,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.name = name
        self.file_path = file_path
        self.supported_versions = tuple(supported_versions)
        self.country = country
        self.product_name = product_name
        self.major_version = major_version
        self._clock = clock or (lambda: datetime.now(COMPANY_TZ))
        self._lock = threading.RLock()
        # Fault switches (read by the Web Connector simulator and by process()).
        self.parse_error_next = False
        self.fail_open = False
        self.slow_seconds = 0.0
        self._lists: dict[str, ListRecord] = {}
        self._invoices: dict[str, Invoice] = {}
        self._payments: dict[str, Payment] = {}
        self._journals: dict[str, JournalEntry] = {}
        #: deleted transactions as TxnDeletedQuery reports them: TxnID -> {type, txn_id, created, deleted, ref}
        self._deleted: dict[str, dict[str, str]] = {}
        self._data_ext: dict[tuple[str, str], str] = {}  # (OwnerID, DataExtName) -> value
        self._list_seq = 0x80000000
        self._txn_seq = 0
        self._txn_number = 0
        self._line_seq = 0
        self._last_edit = 0
        self._iterators: dict[str, _Iterator] = {}
        self._last_message_set: tuple[str, str] | None = None  # (newMessageSetID, response)
        self.request_log: list[RequestLogEntry] = []
        self.default_sales_tax_item_id: str | None = None  # Sales Tax preference "most common sales tax item"
        from infra.fake_qbd.purchasing import Purchasing  # it reads this module's helpers

        #: time tracking, bills, credit-card charges, purchase orders and inventory receiving (T6-T8)
        self.purchasing = Purchasing(self)
        for acct_name, acct_type in SEED_ACCOUNTS:
            acct = self._new_list("Account", acct_name, None, [])
            acct.fields.append(_el("AccountType", acct_type))
        for code, taxable, desc in SEED_SALES_TAX_CODES:
            self._new_list("SalesTaxCode", code, None, [_el("IsTaxable", bool_text(taxable)), _el("Desc", desc)])
        for terms_name, due_days, discount_days, discount_pct in SEED_TERMS:
            self._new_list("StandardTerms", terms_name, None, _terms_fields(due_days, discount_days, discount_pct))

    # ------------------------------------------------------------------ session / host

    def stamp_file_id(self, owner_id: str, file_id: str) -> bool:
        """Stamp the QWC FileID as a private DataExt under ``owner_id``; True when newly stamped."""
        with self._lock:
            key = (owner_id.upper(), "FileID")
            current = self._data_ext.get(key)
            if current is None:
                self._data_ext[key] = file_id
                return True
            if current.lower() != file_id.lower():
                raise FileIDConflictError(f"OwnerID {owner_id} already has FileID {current}")
            return False

    def host_company_preferences_response(self, owner_id: str | None, file_id: str | None) -> str:
        """The strHCPResponse QBWC sends on a session's first sendRequestXML (stamps FileID first, like QBWC)."""
        with self._lock:
            if owner_id and file_id:
                self.stamp_file_id(owner_id, file_id)
            root = etree.Element("QBXML")
            msgs = sub(root, "QBXMLMsgsRs")
            host_rs = _status(sub(msgs, "HostQueryRs"), "0", STATUS_OK)
            host = sub(host_rs, "HostRet")
            sub(host, "ProductName", self.product_name)
            sub(host, "MajorVersion", str(self.major_version))
            sub(host, "MinorVersion", "0")
            sub(host, "Country", self.country)
            for v in self.supported_versions:
                sub(host, "SupportedQBXMLVersion", v)
            sub(host, "IsAutomaticLogin", "false")
            sub(host, "QBFileMode", "SingleUser")
            comp_rs = _status(sub(msgs, "CompanyQueryRs"), "1", STATUS_OK)
            comp = sub(comp_rs, "CompanyRet")
            sub(comp, "IsSampleCompany", "false")
            sub(comp, "CompanyName", self.name)
            sub(comp, "LegalCompanyName", self.name)
            sub(comp, "FirstMonthFiscalYear", "January")
            sub(comp, "FirstMonthIncomeTaxYear", "January")
            sub(comp, "CompanyType", "ServiceBusiness")
            sub(comp, "TaxForm", "OtherOrNone")
            if owner_id:
                for (owner, ext_name), value in sorted(self._data_ext.items()):
                    if owner == owner_id.upper():
                        ext = sub(comp, "DataExtRet")
                        sub(ext, "OwnerID", owner_id)
                        sub(ext, "DataExtName", ext_name)
                        sub(ext, "DataExtType", "STR255TYPE")
                        sub(ext, "DataExtValue", value)
            pref_rs = _status(sub(msgs, "PreferencesQueryRs"), "2", STATUS_OK)
            pref = sub(pref_rs, "PreferencesRet")
            acc = sub(pref, "AccountingPreferences")
            for tag, val in (
                ("IsUsingAccountNumbers", "false"),
                ("IsRequiringAccounts", "true"),
                ("IsUsingClassTracking", "true"),
                ("IsUsingAuditTrail", "true"),
                ("IsAssigningJournalEntryNumbers", "true"),
            ):
                sub(acc, tag, val)
            mc = sub(pref, "MultiCurrencyPreferences")
            sub(mc, "IsMultiCurrencyOn", "false")
            sales = sub(pref, "SalesAndCustomersPreferences")
            sub(sales, "IsTrackingReimbursedExpensesAsIncome", "false")
            sub(sales, "IsAutoApplyingPayments", "true")
            rights = sub(pref, "CurrentAppAccessRights")
            sub(rights, "IsAutomaticLoginAllowed", "false")
            sub(rights, "IsPersonalDataAccessAllowed", "false")
            return serialize(root)

    def open_connection(self) -> None:
        """Raise like QBXMLRP2 OpenConnection/BeginSession when the ``fail_open`` switch is on."""
        if self.fail_open:
            raise QBXMLProcessingError(HRESULT_COULD_NOT_START, COULD_NOT_START_MESSAGE)

    def end_session(self) -> None:
        """EndSession/CloseConnection: iterators do not survive the QuickBooks session."""
        with self._lock:
            self._iterators.clear()

    def expire_iterators(self) -> None:
        self.end_session()

    # ------------------------------------------------------------------ inspection

    def customers(self) -> list[ListRecord]:
        return self._list_of("Customer")

    def vendors(self) -> list[ListRecord]:
        return self._list_of("Vendor")

    def items(self) -> list[ListRecord]:
        with self._lock:
            return [r for r in self._lists.values() if r.kind in ITEM_KINDS]

    def accounts(self) -> list[ListRecord]:
        return self._list_of("Account")

    def classes(self) -> list[ListRecord]:
        return self._list_of("Class")

    def invoices(self) -> list[Invoice]:
        with self._lock:
            return list(self._invoices.values())

    def payments(self) -> list[Payment]:
        with self._lock:
            return list(self._payments.values())

    def journal_entries(self) -> list[JournalEntry]:
        with self._lock:
            return list(self._journals.values())

    def count(self, kind: str) -> int:
        """Count records of a kind: Customer, Vendor, Item, ItemService, Account, Class, Invoice, ReceivePayment..."""
        with self._lock:
            if kind == "Item":
                return len(self.items())
            if kind in ("Invoice", "invoices"):
                return len(self._invoices)
            if kind in ("ReceivePayment", "Payment", "payments"):
                return len(self._payments)
            if kind in ("JournalEntry", "journal_entries"):
                return len(self._journals)
            if kind in ("TimeTracking", "Bill", "CreditCardCharge", "PurchaseOrder"):
                return len(self.purchasing.of_type(kind))
            return sum(1 for r in self._lists.values() if r.kind == kind)

    def find_customer(self, name: str) -> ListRecord | None:
        return self._find_list(("Customer",), name)

    def find_item(self, name: str) -> ListRecord | None:
        return self._find_list(ITEM_KINDS, name)

    def find_invoice(self, ref_number: str) -> Invoice | None:
        with self._lock:
            return next((i for i in self._invoices.values() if i.ref_number == ref_number), None)

    @property
    def process_calls(self) -> int:
        return len(self.request_log)

    def requests_per_call(self) -> list[int]:
        return [len(e.requests) for e in self.request_log]

    def _list_of(self, kind: str) -> list[ListRecord]:
        with self._lock:
            return [r for r in self._lists.values() if r.kind == kind]

    def _find_list(self, kinds: Iterable[str], full_name: str) -> ListRecord | None:
        key = full_name.casefold()
        with self._lock:
            return next((r for r in self._lists.values() if r.kind in kinds and r.full_name.casefold() == key), None)

    # ------------------------------------------------------------------ admin: sales tax, discounts, terms
    # What a user sets up in QuickBooks before the integration runs. Each hook goes through the same checks as the
    # qbXML Add request, and raises StatusError (3100 duplicate name, 3140 unknown reference...) like it.

    def add_sales_tax_code(self, name: str, *, taxable: bool, desc: str | None = None) -> ListRecord:
        """A sales tax code (Lists > Sales Tax Code List); ``Tax`` and ``Non`` exist from the start.

        Asking for a code that already exists with the same taxability returns it (so setups may name ``Tax``).
        """
        existing = self._find_list(("SalesTaxCode",), name)
        if existing is not None and existing.field_text("IsTaxable") == bool_text(taxable):
            return existing
        add = etree.Element("SalesTaxCodeAdd")
        sub(add, "Name", name)
        sub(add, "IsTaxable", bool_text(taxable))
        if desc is not None:
            sub(add, "Desc", desc)
        return self._admin_add(add)

    def add_sales_tax_item(
        self,
        name: str,
        rate: Decimal | str,
        *,
        desc: str | None = None,
        tax_vendor: str | None = None,
        most_common: bool = False,
    ) -> ListRecord:
        """A Sales Tax Item with ``rate`` in percent (``"8.25"`` = 8.25 %).

        ``most_common`` makes it the Sales Tax preference "Your most common sales tax item": the tax item of
        invoices whose customer has none of its own.
        """
        add = etree.Element("ItemSalesTaxAdd")
        sub(add, "Name", name)
        if desc is not None:
            sub(add, "ItemDesc", desc)
        sub(add, "TaxRate", f"{Decimal(rate):f}")
        if tax_vendor is not None:
            sub(sub(add, "TaxVendorRef"), "FullName", tax_vendor)
        rec = self._admin_add(add)
        if most_common:
            self.default_sales_tax_item_id = rec.list_id
        return rec

    def set_most_common_sales_tax_item(self, name: str | None) -> None:
        """Set (or clear, with None) the Sales Tax preference "Your most common sales tax item"."""
        with self._lock:
            if name is None:
                self.default_sales_tax_item_id = None
                return
            rec = self._find_list(("ItemSalesTax",), name)
            if rec is None:
                raise invalid_ref("Item", name, "Preferences")
            self.default_sales_tax_item_id = rec.list_id

    def add_discount_item(
        self,
        name: str,
        *,
        amount: Decimal | str | None = None,
        percent: Decimal | str | None = None,
        desc: str | None = None,
        tax_code: str | None = None,
        account: str | None = None,
    ) -> ListRecord:
        """A Discount item: a fixed ``amount`` (DiscountRate) or a ``percent`` of the line above it."""
        if amount is not None and percent is not None:
            raise ValueError("a discount item has an amount or a percent, not both")
        add = etree.Element("ItemDiscountAdd")
        sub(add, "Name", name)
        if desc is not None:
            sub(add, "ItemDesc", desc)
        if tax_code is not None:
            sub(sub(add, "SalesTaxCodeRef"), "FullName", tax_code)
        if amount is not None:
            sub(add, "DiscountRate", money(Decimal(amount)))
        if percent is not None:
            sub(add, "DiscountRatePercent", f"{Decimal(percent):f}")
        if account is not None:
            sub(sub(add, "AccountRef"), "FullName", account)
        return self._admin_add(add)

    def add_inventory_item(
        self,
        name: str,
        *,
        part_number: str | None = None,
        desc: str | None = None,
        price: Decimal | str | None = None,
        income_account: str = "Sales",
        cogs_account: str = "Cost of Goods Sold",
    ) -> ListRecord:
        """An inventory part (Lists > Item List > Inventory Part), e.g. one a SKU later matches."""
        add = etree.Element("ItemInventoryAdd")
        sub(add, "Name", name)
        if part_number is not None:
            sub(add, "ManufacturerPartNumber", part_number)
        if desc is not None:
            sub(add, "SalesDesc", desc)
        if price is not None:
            sub(add, "SalesPrice", money(Decimal(price)))
        sub(sub(add, "IncomeAccountRef"), "FullName", income_account)
        sub(sub(add, "COGSAccountRef"), "FullName", cogs_account)
        return self._admin_add(add)

    def edit_item(self, name: str, *, desc: str | None = None, price: Decimal | str | None = None) -> ListRecord:
        """A user edits a service or non-inventory item's description or price (its EditSequence changes)."""
        with self._lock:
            rec = self._find_list(("ItemService", "ItemNonInventory"), name)
            if rec is None:
                raise not_found(name)
            mod = etree.Element(rec.kind + "Mod")
            sub(mod, "ListID", rec.list_id)
            sub(mod, "EditSequence", rec.edit_sequence)
            both = any(f.tag == "SalesAndPurchase" for f in rec.fields)
            sales = sub(mod, "SalesAndPurchaseMod" if both else "SalesOrPurchaseMod")
            if desc is not None:
                sub(sales, "SalesDesc" if both else "Desc", desc)
            if price is not None:
                sub(sales, "SalesPrice" if both else "Price", money(Decimal(price)))
            rq = etree.Element(mod.tag + "Rq")
            rq.append(mod)
            self._validate(rq)
            self._item_mod(rq, etree.Element(mod.tag + "Rs"), rec.kind)
            return rec

    def add_terms(
        self, name: str, due_days: int, *, discount_days: int | None = None, discount_pct: Decimal | str | None = None
    ) -> ListRecord:
        """Standard terms: due ``due_days`` after the invoice date (a discount is only recorded, not applied).

        Asking for terms that already exist with the same days returns them (so setups may name ``Net 30``);
        the same name with other days is a duplicate name (3100).
        """
        pct = None if discount_pct is None else f"{Decimal(discount_pct):f}"
        existing = self._find_list(("StandardTerms",), name)
        if existing is not None:
            same = [(el.tag, Decimal(el.text or "0")) for el in _terms_fields(due_days, discount_days, pct)]
            if [(el.tag, Decimal(el.text or "0")) for el in existing.fields] == same:
                return existing
        add = etree.Element("StandardTermsAdd")
        sub(add, "Name", name)
        for el in _terms_fields(due_days, discount_days, pct):
            add.append(el)
        return self._admin_add(add)

    def set_customer_sales_tax(
        self,
        customer: str,
        *,
        tax_code: str | None = None,
        tax_item: str | None = None,
        terms: str | None = None,
    ) -> ListRecord:
        """Edit a customer's Sales Tax Settings / Payment Settings (tax code, tax item, terms) by full name."""
        with self._lock:
            rec = self._find_list(("Customer",), customer)
            if rec is None:
                raise not_found(customer)
            mod = etree.Element("CustomerMod")
            sub(mod, "ListID", rec.list_id)
            sub(mod, "EditSequence", rec.edit_sequence)
            for tag, value in (("TermsRef", terms), ("SalesTaxCodeRef", tax_code), ("ItemSalesTaxRef", tax_item)):
                if value is not None:
                    sub(sub(mod, tag), "FullName", value)
            rq = etree.Element("CustomerModRq")
            rq.append(mod)
            self._customer_mod(rq, etree.Element("CustomerModRs"))
            return rec

    def sales_tax_codes(self) -> list[ListRecord]:
        return self._list_of("SalesTaxCode")

    def terms(self) -> list[ListRecord]:
        return self._list_of("StandardTerms")

    def _admin_add(self, add: etree._Element) -> ListRecord:
        rq = etree.Element(add.tag + "Rq")
        rq.append(add)
        with self._lock:
            self._validate(rq)
            rs = etree.Element(add.tag + "Rs")
            self._handlers()[rq.tag](rq, rs)
            return self._lists[rs[0].findtext("ListID") or ""]

    # ------------------------------------------------------------------ processing

    def process(self, request_xml: str | bytes) -> str:
        """``ProcessRequest``: answer a qbXML request message set, or raise :class:`QBXMLProcessingError`."""
        if self.slow_seconds > 0:
            time.sleep(min(self.slow_seconds, 30.0))
        with self._lock:
            if self.parse_error_next:
                self.parse_error_next = False
                self.request_log.append(RequestLogEntry([], "hresult", time.time()))
                raise parse_error("injected fault")
            try:
                version, root = parse_document(request_xml)
                msgs = root.find("QBXMLMsgsRq")
                if msgs is None or msgs.get("onError") not in ("stopOnError", "continueOnError", "rollbackOnError"):
                    raise parse_error("QBXMLMsgsRq with a valid onError is required")
                requests = [el for el in msgs if isinstance(el.tag, str)]
                for rq in requests:
                    self._validate(rq)
            except QBXMLProcessingError:
                self.request_log.append(RequestLogEntry([], "parse_error", time.time()))
                raise
            if version not in self.supported_versions:
                self.request_log.append(RequestLogEntry([r.tag for r in requests], "hresult", time.time()))
                raise QBXMLProcessingError(HRESULT_VERSION_NOT_SUPPORTED, VERSION_NOT_SUPPORTED_MESSAGE)
            tags = [r.tag for r in requests]
            old_id, new_id = msgs.get("oldMessageSetID"), msgs.get("newMessageSetID")
            if old_id and self._last_message_set and self._last_message_set[0] == old_id:
                self.request_log.append(RequestLogEntry(tags, "replayed", time.time()))
                return self._last_message_set[1]
            out = etree.Element("QBXML")
            rs_root = sub(out, "QBXMLMsgsRs")
            if new_id:
                rs_root.set("newMessageSetID", new_id)
                rs_root.set("messageSetStatusCode", "0")
            stop_on_error = msgs.get("onError") != "continueOnError"
            include_data = msgs.get("responseData", "includeAll") != "includeNone"
            for rq in requests:
                rs = self._dispatch(rq, include_data)
                rs_root.append(rs)
                if stop_on_error and rs.get("statusSeverity") == "Error":
                    break
            response = serialize(out)
            if new_id:
                self._last_message_set = (new_id, response)
            self.request_log.append(RequestLogEntry(tags, "processed", time.time()))
            return response

    def _validate(self, rq: etree._Element) -> None:
        """Schema-level checks QuickBooks makes before touching data (failures reject the whole set)."""
        if rq.tag not in self._handlers():
            raise parse_error(f"unsupported request {rq.tag}")
        for el in rq.iter():
            if not isinstance(el.tag, str):
                continue
            if el.tag in AMOUNT_TAGS and not is_amount(el.text or ""):
                raise parse_error(f"bad amount in {el.tag}")
            if el.tag in DATE_TAGS:
                try:
                    date.fromisoformat((el.text or "").strip())
                except ValueError as exc:
                    raise parse_error(f"bad date in {el.tag}") from exc
            if (el.tag == "MaxReturned" or el.tag in INT_TAGS) and not (el.text or "").strip().isdigit():
                raise parse_error(f"bad integer in {el.tag}")
        required: dict[str, tuple[str, ...]] = {
            "CustomerAddRq": ("CustomerAdd/Name",),
            "VendorAddRq": ("VendorAdd/Name",),
            "CustomerModRq": ("CustomerMod/ListID", "CustomerMod/EditSequence"),
            "ItemServiceAddRq": ("ItemServiceAdd/Name",),
            "ItemNonInventoryAddRq": ("ItemNonInventoryAdd/Name",),
            "ItemInventoryAddRq": ("ItemInventoryAdd/Name",),
            "ItemServiceModRq": ("ItemServiceMod/ListID", "ItemServiceMod/EditSequence"),
            "ItemNonInventoryModRq": ("ItemNonInventoryMod/ListID", "ItemNonInventoryMod/EditSequence"),
            "ReceivePaymentModRq": ("ReceivePaymentMod/TxnID", "ReceivePaymentMod/EditSequence"),
            "AccountAddRq": ("AccountAdd/Name", "AccountAdd/AccountType"),
            "ClassAddRq": ("ClassAdd/Name",),
            "ItemDiscountAddRq": ("ItemDiscountAdd/Name",),
            "ItemSalesTaxAddRq": ("ItemSalesTaxAdd/Name",),
            "SalesTaxCodeAddRq": ("SalesTaxCodeAdd/Name", "SalesTaxCodeAdd/IsTaxable"),
            "StandardTermsAddRq": ("StandardTermsAdd/Name",),
            "InvoiceAddRq": ("InvoiceAdd/CustomerRef",),
            "InvoiceModRq": ("InvoiceMod/TxnID", "InvoiceMod/EditSequence"),
            "ReceivePaymentAddRq": ("ReceivePaymentAdd/CustomerRef",),
            "JournalEntryAddRq": ("JournalEntryAdd",),
        }
        for path in required.get(rq.tag, ()):
            if rq.find(path) is None:
                raise parse_error(f"{rq.tag} needs {path}")
        if rq.tag in ("ItemServiceAddRq", "ItemNonInventoryAddRq"):
            add = _body(rq)
            if add.find("SalesOrPurchase") is None and add.find("SalesAndPurchase") is None:
                raise parse_error("item needs SalesOrPurchase or SalesAndPurchase")
        iterator = rq.get("iterator")
        if iterator is not None:
            if rq.tag not in ITERABLE or iterator not in ("Start", "Continue", "Stop"):
                raise parse_error("iterator not allowed here")
            if iterator != "Start" and not rq.get("iteratorID"):
                raise parse_error("iteratorID required")

    def _handlers(self) -> dict[str, Callable[[etree._Element, etree._Element], None]]:
        return {
            "CustomerAddRq": self._customer_add,
            "VendorAddRq": self._vendor_add,
            "CustomerModRq": self._customer_mod,
            "CustomerQueryRq": lambda rq, rs: self._list_query(rq, rs, ("Customer",)),
            "VendorQueryRq": lambda rq, rs: self._list_query(rq, rs, ("Vendor",)),
            "ItemServiceAddRq": lambda rq, rs: self._item_add(rq, rs, "ItemService"),
            "ItemNonInventoryAddRq": lambda rq, rs: self._item_add(rq, rs, "ItemNonInventory"),
            "ItemQueryRq": lambda rq, rs: self._list_query(rq, rs, ITEM_KINDS),
            "ItemServiceQueryRq": lambda rq, rs: self._list_query(rq, rs, ("ItemService",)),
            "ItemNonInventoryQueryRq": lambda rq, rs: self._list_query(rq, rs, ("ItemNonInventory",)),
            "ItemServiceModRq": lambda rq, rs: self._item_mod(rq, rs, "ItemService"),
            "ItemNonInventoryModRq": lambda rq, rs: self._item_mod(rq, rs, "ItemNonInventory"),
            "ItemInventoryAddRq": lambda rq, rs: self._item_add(rq, rs, "ItemInventory"),
            "ItemInventoryQueryRq": lambda rq, rs: self._list_query(rq, rs, ("ItemInventory",)),
            "ItemDiscountAddRq": lambda rq, rs: self._item_add(rq, rs, "ItemDiscount"),
            "ItemDiscountQueryRq": lambda rq, rs: self._list_query(rq, rs, ("ItemDiscount",)),
            "ItemSalesTaxAddRq": lambda rq, rs: self._item_add(rq, rs, "ItemSalesTax"),
            "ItemSalesTaxQueryRq": lambda rq, rs: self._list_query(rq, rs, ("ItemSalesTax",)),
            "SalesTaxCodeAddRq": self._sales_tax_code_add,
            "SalesTaxCodeQueryRq": lambda rq, rs: self._list_query(rq, rs, ("SalesTaxCode",)),
            "StandardTermsAddRq": self._terms_add,
            "StandardTermsQueryRq": lambda rq, rs: self._list_query(rq, rs, ("StandardTerms",)),
            "TermsQueryRq": lambda rq, rs: self._list_query(rq, rs, ("StandardTerms",)),
            "AccountAddRq": self._account_add,
            "AccountQueryRq": lambda rq, rs: self._list_query(rq, rs, ("Account",)),
            "ClassAddRq": self._class_add,
            "ClassQueryRq": lambda rq, rs: self._list_query(rq, rs, ("Class",)),
            "InvoiceAddRq": self._invoice_add,
            "InvoiceModRq": self._invoice_mod,
            "InvoiceQueryRq": lambda rq, rs: self._txn_query(rq, rs, "Invoice"),
            "ReceivePaymentAddRq": self._payment_add,
            "ReceivePaymentQueryRq": lambda rq, rs: self._txn_query(rq, rs, "ReceivePayment"),
            "ReceivePaymentModRq": self._payment_mod,
            "JournalEntryAddRq": self._journal_add,
            "JournalEntryQueryRq": lambda rq, rs: self._txn_query(rq, rs, "JournalEntry"),
            "TxnDeletedQueryRq": self._txn_deleted_query,
            **self.purchasing.handlers(),
        }

    def _dispatch(self, rq: etree._Element, include_data: bool) -> etree._Element:
        rs = etree.Element(rq.tag[:-2] + "Rs")
        request_id = rq.get("requestID", "")
        rs.set("requestID", request_id)
        try:
            if len(request_id) > 50:
                raise StatusError(1060, f'The request ID "{request_id}" is invalid, possibly too long.')
            _status(rs, None, STATUS_OK)
            self._handlers()[rq.tag](rq, rs)
        except StatusError as err:
            for ret in list(rs):
                rs.remove(ret)
            for attr in ("iteratorRemainingCount", "iteratorID"):
                rs.attrib.pop(attr, None)
            _status(rs, None, (err.code, err.severity, err.message))
        if not include_data:
            for ret in list(rs):
                rs.remove(ret)
        return rs

    # ------------------------------------------------------------------ ids and time

    def _now(self) -> datetime:
        return self._clock().astimezone(COMPANY_TZ).replace(microsecond=0)

    def _edit_sequence(self) -> str:
        self._last_edit = max(int(self._clock().timestamp()), self._last_edit + 1)
        return str(self._last_edit)

    def _new_list_id(self) -> str:
        self._list_seq += 1
        return f"{self._list_seq:08X}-{int(self._clock().timestamp())}"

    def _new_txn_id(self) -> str:
        self._txn_seq += 1
        return f"{self._txn_seq:X}-{int(self._clock().timestamp())}"

    def _new_line_id(self) -> str:
        self._line_seq += 1
        return f"{self._line_seq:X}-{int(self._clock().timestamp())}"

    def _next_txn_number(self) -> int:
        self._txn_number += 1
        return self._txn_number

    # ------------------------------------------------------------------ lists

    def _new_list(self, kind: str, name: str, parent: ListRecord | None, fields: list[etree._Element]) -> ListRecord:
        now = self._now()
        full = f"{parent.full_name}:{name}" if parent else name
        rec = ListRecord(
            kind=kind,
            list_id=self._new_list_id(),
            name=name,
            full_name=full,
            time_created=now,
            time_modified=now,
            edit_sequence=self._edit_sequence(),
            parent_id=parent.list_id if parent else None,
            sublevel=parent.sublevel + 1 if parent else 0,
            fields=fields,
        )
        self._lists[rec.list_id] = rec
        return rec

    def _resolve(self, ref: etree._Element | None, kinds: Iterable[str]) -> ListRecord | None:
        if ref is None:
            return None
        kinds = tuple(kinds)
        list_id = text(ref, "ListID")
        if list_id:
            rec = self._lists.get(list_id)
            return rec if rec is not None and rec.kind in kinds else None
        full = text(ref, "FullName")
        return self._find_list(kinds, full) if full else None

    def _require(self, ref: etree._Element | None, kinds: Iterable[str], label: str, where: str) -> ListRecord | None:
        if ref is None:
            return None
        rec = self._resolve(ref, kinds)
        if rec is None:
            raise invalid_ref(label, text(ref, "FullName") or text(ref, "ListID") or "", where)
        return rec

    def _check_fields(self, add: etree._Element, skip: Iterable[str] = ()) -> list[etree._Element]:
        """Length-check and copy the plain child elements that the Ret echoes back unchanged."""
        skip = set(skip)
        kept: list[etree._Element] = []
        for el in add:
            if not isinstance(el.tag, str) or el.tag in skip:
                continue
            limit = FIELD_LIMITS.get(el.tag)
            if limit and len(el.text or "") > limit:
                raise too_long(el.text or "", el.tag)
            if el.tag.endswith("Address"):
                for part in el:
                    part_limit = ADDRESS_LIMITS.get(str(part.tag))
                    if part_limit and len(part.text or "") > part_limit:
                        raise too_long(part.text or "", str(part.tag))
            kept.append(copy.deepcopy(el))
        return kept

    def _check_name(self, kind: str, name: str, full: str, pool: Iterable[str], exclude: str | None = None) -> None:
        if len(name) > MAX_NAME.get(kind, 41):
            raise too_long(name, "name")
        clash = self._find_list(pool, full)
        if clash is not None and clash.list_id != exclude:
            raise StatusError(3100, f'The name "{full}" of the list element is already in use.')

    def _add_list(self, rq: etree._Element, rs: etree._Element, kind: str, pool: tuple[str, ...]) -> ListRecord:
        add = _body(rq)
        name = text(add, "Name") or ""
        parent_ref = add.find("ParentRef")
        parent = self._resolve(parent_ref, (kind,)) if parent_ref is not None else None
        if parent_ref is not None and parent is None:
            value = text(parent_ref, "FullName") or text(parent_ref, "ListID") or ""
            raise StatusError(
                3130, f'There is an invalid reference to a parent "{value}" in the {kind}s list.' + INVALID_REF_TAIL
            )
        full = f"{parent.full_name}:{name}" if parent else name
        self._check_name(kind, name, full, pool)
        fields = self._check_fields(add, skip=("Name", "ParentRef", "IsActive"))
        where = "Item" if kind in ITEM_KINDS else kind
        for ref_tag in ("AccountRef", "IncomeAccountRef", "ExpenseAccountRef", "AssetAccountRef"):
            for ref in add.iter(ref_tag):
                self._require(ref, ("Account",), "Account", where)
        fields = self._resolve_field_refs(fields, where)
        rec = self._new_list(kind, name, parent, fields)
        rec.is_active = (text(add, "IsActive") or "true") != "false"
        rs.append(self._list_ret(rec))
        return rec

    def _resolve_field_refs(self, fields: list[etree._Element], where: str) -> list[etree._Element]:
        """Check the top-level references of :data:`LIST_REFS` (3140) and store them as ListID + FullName."""
        out: list[etree._Element] = []
        for el in fields:
            spec = LIST_REFS.get(str(el.tag))
            if spec is not None:
                target = self._require(el, spec[0], spec[1], where)
                assert target is not None
                el = etree.Element(el.tag)
                sub(el, "ListID", target.list_id)
                sub(el, "FullName", target.full_name)
            out.append(el)
        return out

    def _field_ref(self, rec: ListRecord, tag: str, kinds: tuple[str, ...]) -> ListRecord | None:
        """The record a stored top-level reference field (``TermsRef``...) points at, if it still exists."""
        ref = next((el for el in rec.fields if el.tag == tag), None)
        return self._resolve(ref, kinds) if ref is not None else None

    def _customer_add(self, rq: etree._Element, rs: etree._Element) -> None:
        self._add_list(rq, rs, "Customer", NAME_KINDS)

    def _vendor_add(self, rq: etree._Element, rs: etree._Element) -> None:
        self._add_list(rq, rs, "Vendor", NAME_KINDS)

    def _item_add(self, rq: etree._Element, rs: etree._Element, kind: str) -> None:
        self._add_list(rq, rs, kind, ITEM_KINDS)

    def _sales_tax_code_add(self, rq: etree._Element, rs: etree._Element) -> None:
        self._add_list(rq, rs, "SalesTaxCode", ("SalesTaxCode",))

    def _terms_add(self, rq: etree._Element, rs: etree._Element) -> None:
        self._add_list(rq, rs, "StandardTerms", ("StandardTerms",))

    def _class_add(self, rq: etree._Element, rs: etree._Element) -> None:
        self._add_list(rq, rs, "Class", ("Class",))

    def _account_add(self, rq: etree._Element, rs: etree._Element) -> None:
        self._add_list(rq, rs, "Account", ("Account",))

    def _customer_mod(self, rq: etree._Element, rs: etree._Element) -> None:
        mod = _body(rq)
        list_id = text(mod, "ListID") or ""
        rec = self._lists.get(list_id)
        if rec is None or rec.kind != "Customer":
            raise not_found(list_id)
        seq = text(mod, "EditSequence") or ""
        if seq != rec.edit_sequence:
            raise StatusError(3200, f'The provided edit sequence "{seq}" is out-of-date. ')
        new_name = text(mod, "Name")
        if new_name is not None:
            parent = self._lists.get(rec.parent_id) if rec.parent_id else None
            full = f"{parent.full_name}:{new_name}" if parent else new_name
            self._check_name("Customer", new_name, full, NAME_KINDS, exclude=rec.list_id)
        changes = self._check_fields(mod, skip=("ListID", "EditSequence", "Name", "IsActive", "ParentRef"))
        changes = self._resolve_field_refs(changes, "Customer")
        if new_name is not None:
            rec.name = new_name
            rec.full_name = f"{parent.full_name}:{new_name}" if parent else new_name
        active = text(mod, "IsActive")
        if active is not None:
            rec.is_active = active != "false"
        changed_tags = {c.tag for c in changes}
        rec.fields = [f for f in rec.fields if f.tag not in changed_tags] + changes
        rec.time_modified = self._now()
        rec.edit_sequence = self._edit_sequence()
        rs.append(self._list_ret(rec))

    def _item_mod(self, rq: etree._Element, rs: etree._Element, kind: str) -> None:
        """ItemServiceMod / ItemNonInventoryMod: the fields given replace the item's; ``SalesOrPurchaseMod`` /
        ``SalesAndPurchaseMod`` change only the sales fields they carry (``Apply*ToExistingTxns`` is accepted and
        not modelled: old transactions keep their accounts). A ListID of another item type is not found (3120)."""
        mod = _body(rq)
        list_id = text(mod, "ListID") or ""
        rec = self._lists.get(list_id)
        if rec is None or rec.kind != kind:
            raise not_found(list_id)
        seq = text(mod, "EditSequence") or ""
        if seq != rec.edit_sequence:
            raise StatusError(3200, f'The provided edit sequence "{seq}" is out-of-date. ')
        parent = self._lists.get(rec.parent_id) if rec.parent_id else None
        new_name = text(mod, "Name")
        if new_name is not None:
            full = f"{parent.full_name}:{new_name}" if parent else new_name
            self._check_name(kind, new_name, full, ITEM_KINDS, exclude=rec.list_id)
        skip = ("ListID", "EditSequence", "Name", "IsActive", "ParentRef", "ForceUOMChange")
        changes = self._check_fields(mod, skip=(*skip, "SalesOrPurchaseMod", "SalesAndPurchaseMod"))
        for ref_tag in ("AccountRef", "IncomeAccountRef", "ExpenseAccountRef"):
            for ref in mod.iter(ref_tag):
                self._require(ref, ("Account",), "Account", "Item")
        changes = self._resolve_field_refs(changes, "Item")
        sales = self._sales_mod(rec, mod)
        if sales is not None:
            changes.append(sales)
        if new_name is not None:
            rec.name = new_name
            rec.full_name = f"{parent.full_name}:{new_name}" if parent else new_name
        active = text(mod, "IsActive")
        if active is not None:
            rec.is_active = active != "false"
        changed = {c.tag for c in changes} | ({"SalesOrPurchase", "SalesAndPurchase"} if sales is not None else set())
        fields = [f for f in rec.fields if f.tag not in changed] + changes
        order = {tag: index for index, tag in enumerate(ITEM_FIELD_ORDER)}
        rec.fields = sorted(fields, key=lambda el: order.get(str(el.tag), len(order)))
        rec.time_modified = self._now()
        rec.edit_sequence = self._edit_sequence()
        rs.append(self._list_ret(rec))

    def _sales_mod(self, rec: ListRecord, mod: etree._Element) -> etree._Element | None:
        """The item's new ``SalesOrPurchase`` / ``SalesAndPurchase`` after the mod's sales fields (None: unchanged)."""
        change = mod.find("SalesOrPurchaseMod")
        if change is None:
            change = mod.find("SalesAndPurchaseMod")
        if change is None:
            return None
        form = "SalesOrPurchase" if change.tag == "SalesOrPurchaseMod" else "SalesAndPurchase"
        allowed = SALES_OR_PURCHASE if form == "SalesOrPurchase" else SALES_AND_PURCHASE
        values: dict[str, etree._Element] = {}
        current = next((f for f in rec.fields if f.tag in ("SalesOrPurchase", "SalesAndPurchase")), None)
        for el in current if current is not None else ():
            tag = str(el.tag) if current is not None and current.tag == form else SALES_FORM_SWITCH.get(str(el.tag), "")
            if tag in allowed:
                values[tag] = copy.deepcopy(el)
                values[tag].tag = tag
        for el in change:
            if not isinstance(el.tag, str) or el.tag.startswith("Apply"):
                continue
            if el.tag in ("Price", "PricePercent"):  # one or the other
                values.pop("Price", None)
                values.pop("PricePercent", None)
            values[el.tag] = copy.deepcopy(el)
        out = etree.Element(form)
        for tag in allowed:
            if tag in values:
                out.append(values[tag])
        return out

    def _list_ret(self, rec: ListRecord) -> etree._Element:
        ret = etree.Element(rec.kind + "Ret")
        sub(ret, "ListID", rec.list_id)
        sub(ret, "TimeCreated", rec.time_created.isoformat())
        sub(ret, "TimeModified", rec.time_modified.isoformat())
        sub(ret, "EditSequence", rec.edit_sequence)
        sub(ret, "Name", rec.name)
        flat = rec.kind in FLAT_KINDS
        if not flat:
            sub(ret, "FullName", rec.full_name)
        sub(ret, "IsActive", bool_text(rec.is_active))
        for el in rec.fields:
            if el.tag == "ClassRef":  # right after IsActive in every list Ret
                ret.append(copy.deepcopy(el))
        if not flat:
            if rec.parent_id and rec.parent_id in self._lists:
                _ref(ret, "ParentRef", self._lists[rec.parent_id])
            sub(ret, "Sublevel", str(rec.sublevel))
        for el in rec.fields:
            if el.tag == "ClassRef":
                continue
            target = self._lists.get(text(el, "ListID") or "") if el.tag in LIST_REFS else None
            if target is not None:  # a stored reference shows the target's current name
                _ref(ret, str(el.tag), target)
            else:
                ret.append(copy.deepcopy(el))
        if rec.kind == "Customer":
            balance = sum((i.balance_remaining for i in self._invoices.values() if i.customer_id == rec.list_id), ZERO)
            sub(ret, "Balance", money(balance))
            sub(ret, "TotalBalance", money(balance))
            sub(ret, "JobStatus", "None")
            order = {tag: index for index, tag in enumerate(CUSTOMER_RET_ORDER)}
            children = sorted(ret, key=lambda el: order.get(str(el.tag), len(order)))
            for el in children:
                if el.tag in order:
                    ret.append(el)  # lxml moves the element: appending in sorted order reorders them
                else:
                    ret.remove(el)  # Add-only elements (OpenBalance...) are not part of CustomerRet
        elif rec.kind in ("Vendor", "Account"):
            sub(ret, "Balance", "0.00")
        return ret

    def _list_query(self, rq: etree._Element, rs: etree._Element, kinds: tuple[str, ...]) -> None:
        def ret_of(list_id: str) -> etree._Element | None:
            rec = self._lists.get(list_id)
            return self._list_ret(rec) if rec is not None else None

        if self._continue_iterator(rq, rs, ret_of):
            return
        ids = texts(rq, "ListID")
        names = texts(rq, "FullName")
        if ids or names:
            found: list[ListRecord] = []
            missing: list[str] = []
            for list_id in ids:
                rec = self._lists.get(list_id)
                (found.append(rec) if rec is not None and rec.kind in kinds else missing.append(list_id))
            for full in names:
                rec = self._find_list(kinds, full)
                (found.append(rec) if rec is not None else missing.append(full))
            self._emit(rq, rs, [self._list_ret(r) for r in found])
            if missing:
                _status(rs, None, (500, "Warn", _warn_500(missing[0])))
            return
        recs = sorted((r for r in self._lists.values() if r.kind in kinds), key=lambda r: r.full_name.casefold())
        status = text(rq, "ActiveStatus") or "ActiveOnly"
        if status == "ActiveOnly":
            recs = [r for r in recs if r.is_active]
        elif status == "InactiveOnly":
            recs = [r for r in recs if not r.is_active]
        recs = _modified_filter(recs, text(rq, "FromModifiedDate"), text(rq, "ToModifiedDate"))
        name_filter = rq.find("NameFilter")
        if name_filter is not None:
            crit = text(name_filter, "MatchCriterion") or "StartsWith"
            needle = (text(name_filter, "Name") or "").casefold()
            recs = [r for r in recs if _name_matches(r.full_name.casefold(), needle, crit)]
        range_filter = rq.find("NameRangeFilter")
        if range_filter is not None:
            lo = (text(range_filter, "FromName") or "").casefold()
            hi = (text(range_filter, "ToName") or "\uffff").casefold()
            recs = [r for r in recs if lo <= r.full_name.casefold() <= hi + "\uffff"]
        acct_types = set(texts(rq, "AccountType"))
        if acct_types:
            recs = [r for r in recs if r.field_text("AccountType") in acct_types]
        self._page(rq, rs, [r.list_id for r in recs], ret_of)

    # ------------------------------------------------------------------ transactions

    def _txn_date(self, el: etree._Element, tag: str, default: date) -> date:
        value = text(el, tag)
        return date.fromisoformat(value.strip()) if value else default

    def _invoice_add(self, rq: etree._Element, rs: etree._Element) -> None:
        inv = self._invoice_from(_body(rq), "InvoiceLineAdd", None)
        self._invoices[inv.txn_id] = inv
        rs.append(self._invoice_ret(inv, include_lines=True, include_linked=False))

    def _invoice_mod(self, rq: etree._Element, rs: etree._Element) -> None:
        """InvoiceMod: fields given replace the invoice's; lines given replace all its lines (``TxnLineID`` -1 is a
        new line; an existing line's id keeps that line as it was); tax and balance are computed again."""
        mod = _body(rq)
        txn_id = text(mod, "TxnID") or ""
        old = self._invoices.get(txn_id)
        if old is None:
            raise not_found(txn_id)
        seq = text(mod, "EditSequence") or ""
        if seq != old.edit_sequence:
            raise StatusError(3200, f'The provided edit sequence "{seq}" is out-of-date. ')
        inv = self._invoice_from(mod, "InvoiceLineMod", old)
        self._invoices[inv.txn_id] = inv
        rs.append(self._invoice_ret(inv, include_lines=True, include_linked=False))

    def _invoice_from(self, add: etree._Element, line_tag: str, old: Invoice | None) -> Invoice:
        """The invoice an InvoiceAdd (``old`` None) or InvoiceMod (``old``: what the mod changes) describes."""
        where = "Invoice"
        customer = self._require(add.find("CustomerRef"), ("Customer",), "Customer", where)
        if customer is None and old is not None:
            customer = self._lists[old.customer_id]
        assert customer is not None
        ar = self._require(add.find("ARAccountRef"), ("Account",), "Account", where) or (
            self._lists[old.ar_account_id] if old else self._find_list(("Account",), "Accounts Receivable")
        )
        assert ar is not None
        self._require(add.find("ClassRef"), ("Class",), "Class", where)
        ref_number = text(add, "RefNumber")
        if ref_number is not None and len(ref_number) > 11:
            raise too_long(ref_number, "RefNumber")
        memo = text(add, "Memo")
        if memo is None and old is not None:
            memo = old.memo
        terms = self._require(add.find("TermsRef"), ("StandardTerms",), "Terms", where)
        if terms is None and old is not None and old.terms_id:
            terms = self._lists.get(old.terms_id)
        terms = terms or self._field_ref(customer, "TermsRef", ("StandardTerms",))
        tax_item = self._require(add.find("ItemSalesTaxRef"), ("ItemSalesTax",), "Item", where)
        if tax_item is None and old is not None and old.item_sales_tax_id:
            tax_item = self._lists.get(old.item_sales_tax_id)
        tax_item = tax_item or self._field_ref(customer, "ItemSalesTaxRef", ("ItemSalesTax",))
        if tax_item is None and self.default_sales_tax_item_id:
            tax_item = self._lists.get(self.default_sales_tax_item_id)
        customer_code = self._require(add.find("CustomerSalesTaxCodeRef"), ("SalesTaxCode",), "Sales Tax Code", where)
        if customer_code is None and old is not None and old.customer_sales_tax_code_id:
            customer_code = self._lists.get(old.customer_sales_tax_code_id)
        customer_code = customer_code or self._field_ref(customer, "SalesTaxCodeRef", ("SalesTaxCode",))
        customer_code = customer_code or self._find_list(("SalesTaxCode",), "Tax")
        line_els = add.findall(line_tag)
        lines: list[InvoiceLine] = [] if line_els or old is None else list(old.lines)
        kept = {ln.txn_line_id: ln for ln in old.lines} if old is not None else {}
        for line_el in line_els:
            line_id = text(line_el, "TxnLineID")
            if line_id is not None and line_id != "-1":
                if line_id not in kept:
                    raise not_found(line_id)
                lines.append(kept[line_id])
                continue
            item = self._require(line_el.find("ItemRef"), ITEM_KINDS, "Item", where)
            cls = self._require(line_el.find("ClassRef"), ("Class",), "Class", where)
            code = self._require(line_el.find("SalesTaxCodeRef"), ("SalesTaxCode",), "Sales Tax Code", where)
            if code is None and item is not None:
                code = self._item_tax_code(item)
            qty = to_decimal(text(line_el, "Quantity"))
            rate = to_decimal(text(line_el, "Rate"))
            rate_percent = to_decimal(text(line_el, "RatePercent"))
            if rate is None and item is not None:
                rate = to_decimal(_item_price(item))
            amount = to_decimal(text(line_el, "Amount"))
            discount = item if item is not None and item.kind == "ItemDiscount" else None
            if discount is not None and amount is None and rate is None and rate_percent is None:
                # A discount item's own rate: a fixed amount, or a percentage of the line right above it.
                fixed = to_decimal(discount.field_text("DiscountRate"))
                if fixed is not None:
                    rate = -abs(fixed)
                    amount = rate.quantize(CENT, ROUND_HALF_UP)
                else:
                    rate_percent = to_decimal(discount.field_text("DiscountRatePercent"))
            if rate_percent is not None and amount is None:
                if discount is not None:
                    rate_percent = -abs(rate_percent)  # a discount always subtracts
                above = lines[-1].amount if lines else ZERO
                amount = (above * rate_percent / 100).quantize(CENT, ROUND_HALF_UP)
            if amount is None:
                amount = ((qty if qty is not None else Decimal(1)) * (rate or ZERO)).quantize(CENT, ROUND_HALF_UP)
            desc = text(line_el, "Desc")
            if desc is None and item is not None:
                desc = _item_desc(item)
            service_date = text(line_el, "ServiceDate")
            lines.append(
                InvoiceLine(
                    self._new_line_id(),
                    item.list_id if item else None,
                    desc,
                    qty,
                    rate,
                    amount,
                    cls.list_id if cls else None,
                    service_date=date.fromisoformat(service_date.strip()) if service_date else None,
                    sales_tax_code_id=code.list_id if code else None,
                    rate_percent=rate_percent,
                )
            )
        tax_rate = to_decimal(tax_item.field_text("TaxRate"), ZERO) if tax_item is not None else ZERO
        assert tax_rate is not None
        sales_tax = ZERO
        if tax_item is not None and self._is_taxable(customer_code.list_id if customer_code else None):
            base = sum((ln.amount for ln in lines if self._is_taxable(ln.sales_tax_code_id)), ZERO)
            sales_tax = (base * tax_rate / 100).quantize(CENT, ROUND_HALF_UP)
        now = self._now()
        txn_date = self._txn_date(add, "TxnDate", old.txn_date if old else now.date())
        due_days = int(terms.field_text("StdDueDays") or 0) if terms is not None else 0
        default_due = old.due_date if old and add.find("TxnDate") is None else txn_date + timedelta(days=due_days)
        if ref_number is None:
            ref_number = old.ref_number if old else str(len(self._invoices) + 1)
        return Invoice(
            txn_id=old.txn_id if old else self._new_txn_id(),
            txn_number=old.txn_number if old else self._next_txn_number(),
            time_created=old.time_created if old else now,
            time_modified=now,
            edit_sequence=self._edit_sequence(),
            customer_id=customer.list_id,
            ar_account_id=ar.list_id,
            txn_date=txn_date,
            due_date=self._txn_date(add, "DueDate", default_due),
            ref_number=ref_number,
            memo=memo,
            lines=lines,
            payments=list(old.payments) if old else [],
            terms_id=terms.list_id if terms else None,
            item_sales_tax_id=tax_item.list_id if tax_item else None,
            customer_sales_tax_code_id=customer_code.list_id if customer_code else None,
            sales_tax_percentage=tax_rate,
            sales_tax_total=sales_tax,
        )

    def _item_tax_code(self, item: ListRecord) -> ListRecord | None:
        """An item's own sales tax code, else the code QuickBooks gives a new item of its kind."""
        own = self._field_ref(item, "SalesTaxCodeRef", ("SalesTaxCode",))
        return own or self._find_list(("SalesTaxCode",), ITEM_DEFAULT_TAX_CODE.get(item.kind, "Non"))

    def _is_taxable(self, code_id: str | None) -> bool:
        code = self._lists.get(code_id) if code_id else None
        return code is not None and code.field_text("IsTaxable") == "true"

    def _invoice_ret(self, inv: Invoice, *, include_lines: bool, include_linked: bool) -> etree._Element:
        ret = etree.Element("InvoiceRet")
        _txn_head(ret, inv.txn_id, inv.time_created, inv.time_modified, inv.edit_sequence, inv.txn_number)
        _ref(ret, "CustomerRef", self._lists[inv.customer_id])
        _ref(ret, "ARAccountRef", self._lists[inv.ar_account_id])
        sub(ret, "TxnDate", inv.txn_date.isoformat())
        sub(ret, "RefNumber", inv.ref_number)
        sub(ret, "IsPending", "false")
        sub(ret, "IsFinanceCharge", "false")
        if inv.terms_id and inv.terms_id in self._lists:
            _ref(ret, "TermsRef", self._lists[inv.terms_id])
        sub(ret, "DueDate", inv.due_date.isoformat())
        sub(ret, "ShipDate", inv.txn_date.isoformat())
        sub(ret, "Subtotal", money(inv.subtotal))
        if inv.item_sales_tax_id and inv.item_sales_tax_id in self._lists:
            _ref(ret, "ItemSalesTaxRef", self._lists[inv.item_sales_tax_id])
        sub(ret, "SalesTaxPercentage", _percent(inv.sales_tax_percentage))
        sub(ret, "SalesTaxTotal", money(inv.sales_tax_total))
        sub(ret, "AppliedAmount", money(-inv.applied_amount))
        sub(ret, "BalanceRemaining", money(inv.balance_remaining))
        if inv.memo is not None:
            sub(ret, "Memo", inv.memo)
        sub(ret, "IsPaid", bool_text(inv.is_paid))
        sub(ret, "IsToBePrinted", "false")
        sub(ret, "IsToBeEmailed", "false")
        if inv.customer_sales_tax_code_id and inv.customer_sales_tax_code_id in self._lists:
            _ref(ret, "CustomerSalesTaxCodeRef", self._lists[inv.customer_sales_tax_code_id])
        if include_linked:
            for pay_id, amount in inv.payments:
                pay = self._payments[pay_id]
                link = sub(ret, "LinkedTxn")
                sub(link, "TxnID", pay.txn_id)
                sub(link, "TxnType", "ReceivePayment")
                sub(link, "TxnDate", pay.txn_date.isoformat())
                if pay.ref_number is not None:
                    sub(link, "RefNumber", pay.ref_number)
                sub(link, "LinkType", "AMTTYPE")
                sub(link, "Amount", money(-amount))
        if include_lines:
            for ln in inv.lines:
                line = sub(ret, "InvoiceLineRet")
                sub(line, "TxnLineID", ln.txn_line_id)
                if ln.item_id and ln.item_id in self._lists:
                    _ref(line, "ItemRef", self._lists[ln.item_id])
                if ln.desc is not None:
                    sub(line, "Desc", ln.desc)
                if ln.quantity is not None:
                    sub(line, "Quantity", f"{ln.quantity.normalize():f}")
                if ln.rate_percent is not None:
                    sub(line, "RatePercent", _percent(ln.rate_percent))
                elif ln.rate is not None:
                    sub(line, "Rate", money(ln.rate))
                if ln.class_id and ln.class_id in self._lists:
                    _ref(line, "ClassRef", self._lists[ln.class_id])
                sub(line, "Amount", money(ln.amount))
                if ln.service_date is not None:
                    sub(line, "ServiceDate", ln.service_date.isoformat())
                if ln.sales_tax_code_id and ln.sales_tax_code_id in self._lists:
                    _ref(line, "SalesTaxCodeRef", self._lists[ln.sales_tax_code_id])
        return ret

    def _payment_add(self, rq: etree._Element, rs: etree._Element) -> None:
        add = _body(rq)
        where = "ReceivePayment"
        customer = self._require(add.find("CustomerRef"), ("Customer",), "Customer", where)
        assert customer is not None
        ar = self._require(add.find("ARAccountRef"), ("Account",), "Account", where) or self._find_list(
            ("Account",), "Accounts Receivable"
        )
        deposit = self._require(add.find("DepositToAccountRef"), ("Account",), "Account", where) or self._find_list(
            ("Account",), "Undeposited Funds"
        )
        assert ar is not None and deposit is not None
        ref_number = text(add, "RefNumber")
        if ref_number is not None and len(ref_number) > 20:
            raise too_long(ref_number, "RefNumber")
        wanted: dict[str, Decimal] = {}
        for app in add.findall("AppliedToTxnAdd"):
            txn_id = text(app, "TxnID") or ""
            inv = self._invoices.get(txn_id)
            if inv is None or inv.customer_id != customer.list_id:
                raise not_found(txn_id)
            wanted[txn_id] = wanted.get(txn_id, ZERO) + (to_decimal(text(app, "PaymentAmount")) or ZERO)
        for txn_id, amount in wanted.items():
            if amount > self._invoices[txn_id].balance_remaining:
                raise StatusError(
                    3210,
                    f'The "AppliedToTxnAdd payment amount" field has an invalid value "{money(amount)}".  '
                    "QuickBooks error message: You cannot pay more than the amount due.",
                )
        total = to_decimal(text(add, "TotalAmount"))
        applied_sum = sum(wanted.values(), ZERO)
        if total is None:
            total = applied_sum
        if applied_sum > total:
            raise StatusError(
                3210,
                f'The "AppliedToTxnAdd payment amount" field has an invalid value "{money(applied_sum)}".  '
                "QuickBooks error message: The amount applied is more than the payment amount.",
            )
        if (text(add, "IsAutoApply") or "false") == "true":
            remaining = total
            opens = sorted(
                (i for i in self._invoices.values() if i.customer_id == customer.list_id and not i.is_paid),
                key=lambda i: (i.txn_date, i.txn_number),
            )
            for inv in opens:
                if remaining <= ZERO:
                    break
                take = min(remaining, inv.balance_remaining)
                wanted[inv.txn_id] = take
                remaining -= take
        now = self._now()
        pay = Payment(
            txn_id=self._new_txn_id(),
            txn_number=self._next_txn_number(),
            time_created=now,
            time_modified=now,
            edit_sequence=self._edit_sequence(),
            customer_id=customer.list_id,
            ar_account_id=ar.list_id,
            deposit_account_id=deposit.list_id,
            txn_date=self._txn_date(add, "TxnDate", now.date()),
            ref_number=ref_number,
            total_amount=total,
            memo=text(add, "Memo"),
            payment_method=text(add.find("PaymentMethodRef"), "FullName"),
            applied=list(wanted.items()),
        )
        self._payments[pay.txn_id] = pay
        for txn_id, amount in pay.applied:
            inv = self._invoices[txn_id]
            inv.payments.append((pay.txn_id, amount))
            inv.time_modified = now
            inv.edit_sequence = self._edit_sequence()
        rs.append(self._payment_ret(pay))

    def _payment_mod(self, rq: etree._Element, rs: etree._Element) -> None:
        """ReceivePaymentMod: the header fields given replace the payment's; the ``AppliedToTxnMod`` entries, when
        given, are its applications afterwards (an invoice left out gets its amount back). Each invoice may take at
        most its balance without this payment (3210); the balances of every invoice involved follow."""
        mod = _body(rq)
        txn_id = text(mod, "TxnID") or ""
        pay = self._payments.get(txn_id)
        if pay is None:
            raise not_found(txn_id)
        seq = text(mod, "EditSequence") or ""
        if seq != pay.edit_sequence:
            raise StatusError(3200, f'The provided edit sequence "{seq}" is out-of-date. ')
        where = "ReceivePayment"
        customer = self._require(mod.find("CustomerRef"), ("Customer",), "Customer", where)
        ar = self._require(mod.find("ARAccountRef"), ("Account",), "Account", where)
        deposit = self._require(mod.find("DepositToAccountRef"), ("Account",), "Account", where)
        customer_id = customer.list_id if customer is not None else pay.customer_id
        ref_number = text(mod, "RefNumber")
        if ref_number is not None and len(ref_number) > 20:
            raise too_long(ref_number, "RefNumber")
        old = dict(pay.applied)
        apps = mod.findall("AppliedToTxnMod")
        wanted: dict[str, Decimal] = {} if apps else dict(old)
        for app in apps:
            applied_id = text(app, "TxnID") or ""
            wanted[applied_id] = wanted.get(applied_id, ZERO) + (to_decimal(text(app, "PaymentAmount")) or ZERO)
        for applied_id, amount in wanted.items():
            inv = self._invoices.get(applied_id)
            if inv is None or inv.customer_id != customer_id:
                raise not_found(applied_id)
            if amount > inv.balance_remaining + old.get(applied_id, ZERO):
                raise StatusError(
                    3210,
                    f'The "AppliedToTxnMod payment amount" field has an invalid value "{money(amount)}".  '
                    "QuickBooks error message: You cannot pay more than the amount due.",
                )
        total = to_decimal(text(mod, "TotalAmount"))
        total = pay.total_amount if total is None else total
        applied_sum = sum(wanted.values(), ZERO)
        if applied_sum > total:
            raise StatusError(
                3210,
                f'The "AppliedToTxnMod payment amount" field has an invalid value "{money(applied_sum)}".  '
                "QuickBooks error message: The amount applied is more than the payment amount.",
            )
        now = self._now()
        for applied_id in set(old) | set(wanted):
            inv = self._invoices[applied_id]
            inv.payments = [(p, a) for p, a in inv.payments if p != pay.txn_id]
            if applied_id in wanted:
                inv.payments.append((pay.txn_id, wanted[applied_id]))
            if old.get(applied_id) != wanted.get(applied_id):
                inv.time_modified = now
                inv.edit_sequence = self._edit_sequence()
        pay.applied = list(wanted.items())
        pay.customer_id = customer_id
        pay.ar_account_id = ar.list_id if ar is not None else pay.ar_account_id
        pay.deposit_account_id = deposit.list_id if deposit is not None else pay.deposit_account_id
        pay.txn_date = self._txn_date(mod, "TxnDate", pay.txn_date)
        pay.ref_number = ref_number if ref_number is not None else pay.ref_number
        pay.total_amount = total
        memo = text(mod, "Memo")
        pay.memo = memo if memo is not None else pay.memo
        method = mod.find("PaymentMethodRef")
        pay.payment_method = text(method, "FullName") if method is not None else pay.payment_method
        pay.time_modified = now
        pay.edit_sequence = self._edit_sequence()
        rs.append(self._payment_ret(pay))

    def _payment_ret(self, pay: Payment) -> etree._Element:
        ret = etree.Element("ReceivePaymentRet")
        _txn_head(ret, pay.txn_id, pay.time_created, pay.time_modified, pay.edit_sequence, pay.txn_number)
        _ref(ret, "CustomerRef", self._lists[pay.customer_id])
        _ref(ret, "ARAccountRef", self._lists[pay.ar_account_id])
        sub(ret, "TxnDate", pay.txn_date.isoformat())
        if pay.ref_number is not None:
            sub(ret, "RefNumber", pay.ref_number)
        sub(ret, "TotalAmount", money(pay.total_amount))
        if pay.payment_method:
            method = sub(ret, "PaymentMethodRef")
            sub(method, "FullName", pay.payment_method)
        if pay.memo is not None:
            sub(ret, "Memo", pay.memo)
        _ref(ret, "DepositToAccountRef", self._lists[pay.deposit_account_id])
        sub(ret, "UnusedPayment", money(pay.unused_payment))
        sub(ret, "UnusedCredits", "0.00")
        for txn_id, amount in pay.applied:
            inv = self._invoices[txn_id]
            app = sub(ret, "AppliedToTxnRet")
            sub(app, "TxnID", inv.txn_id)
            sub(app, "TxnType", "Invoice")
            sub(app, "TxnDate", inv.txn_date.isoformat())
            sub(app, "RefNumber", inv.ref_number)
            sub(app, "BalanceRemaining", money(inv.balance_remaining))
            sub(app, "Amount", money(amount))
        return ret

    def _journal_add(self, rq: etree._Element, rs: etree._Element) -> None:
        add = _body(rq)
        where = "JournalEntry"
        ref_number = text(add, "RefNumber")
        if ref_number is not None and len(ref_number) > 11:
            raise too_long(ref_number, "RefNumber")
        lines: list[JournalLine] = []
        for el in add:
            if el.tag not in ("JournalDebitLine", "JournalCreditLine"):
                continue
            acct = self._require(el.find("AccountRef"), ("Account",), "Account", where)
            if acct is None:
                raise StatusError(3140, "There is a missing element: AccountRef in the JournalEntry line.")
            entity = self._require(el.find("EntityRef"), NAME_KINDS, "Entity", where)
            cls = self._require(el.find("ClassRef"), ("Class",), "Class", where)
            side = "Debit" if el.tag == "JournalDebitLine" else "Credit"
            amount = to_decimal(text(el, "Amount")) or ZERO
            lines.append(
                JournalLine(
                    side,
                    self._new_line_id(),
                    acct.list_id,
                    amount.quantize(CENT, ROUND_HALF_UP),
                    text(el, "Memo"),
                    entity.list_id if entity else None,
                    cls.list_id if cls else None,
                )
            )
        debits = sum((ln.amount for ln in lines if ln.side == "Debit"), ZERO)
        credits = sum((ln.amount for ln in lines if ln.side == "Credit"), ZERO)
        if not lines or debits != credits:
            raise StatusError(
                JE_UNBALANCED_CODE,
                f"Transaction not in balance: debits {money(debits)} do not equal credits {money(credits)}.",
            )
        now = self._now()
        je = JournalEntry(
            txn_id=self._new_txn_id(),
            txn_number=self._next_txn_number(),
            time_created=now,
            time_modified=now,
            edit_sequence=self._edit_sequence(),
            txn_date=self._txn_date(add, "TxnDate", now.date()),
            ref_number=ref_number,
            is_adjustment=(text(add, "IsAdjustment") or "false") == "true",
            memo=text(add, "Memo"),
            lines=lines,
        )
        self._journals[je.txn_id] = je
        rs.append(self._journal_ret(je))

    def _journal_ret(self, je: JournalEntry) -> etree._Element:
        ret = etree.Element("JournalEntryRet")
        _txn_head(ret, je.txn_id, je.time_created, je.time_modified, je.edit_sequence, je.txn_number)
        sub(ret, "TxnDate", je.txn_date.isoformat())
        if je.ref_number is not None:
            sub(ret, "RefNumber", je.ref_number)
        sub(ret, "IsAdjustment", bool_text(je.is_adjustment))
        for ln in je.lines:
            line = sub(ret, f"Journal{ln.side}Line")
            sub(line, "TxnLineID", ln.txn_line_id)
            _ref(line, "AccountRef", self._lists[ln.account_id])
            sub(line, "Amount", money(ln.amount))
            if ln.memo is not None:
                sub(line, "Memo", ln.memo)
            if ln.entity_id:
                _ref(line, "EntityRef", self._lists[ln.entity_id])
            if ln.class_id:
                _ref(line, "ClassRef", self._lists[ln.class_id])
        return ret

    def _txn_query(self, rq: etree._Element, rs: etree._Element, kind: str) -> None:
        stores: dict[str, dict[str, Any]] = {"Invoice": self._invoices, "ReceivePayment": self._payments}
        store: dict[str, Any] = stores.get(kind, self._journals)
        include_lines = (text(rq, "IncludeLineItems") or "false") == "true"
        include_linked = (text(rq, "IncludeLinkedTxns") or "false") == "true"

        def ret_of(txn_id: str) -> etree._Element | None:
            rec = store.get(txn_id)
            if rec is None:
                return None
            if isinstance(rec, Invoice):
                return self._invoice_ret(rec, include_lines=include_lines, include_linked=include_linked)
            if isinstance(rec, Payment):
                return self._payment_ret(rec)
            return self._journal_ret(rec)

        if self._continue_iterator(rq, rs, ret_of):
            return
        ids = texts(rq, "TxnID")
        refs = texts(rq, "RefNumber")
        if ids or refs:
            found: list[str] = []
            missing: list[str] = []
            for txn_id in ids:
                (found.append(txn_id) if txn_id in store else missing.append(txn_id))
            for ref in refs:
                hits = [r.txn_id for r in store.values() if r.ref_number == ref]
                (found.extend(hits) if hits else missing.append(ref))
            self._emit(rq, rs, [e for e in (ret_of(t) for t in found) if e is not None])
            if missing:
                _status(rs, None, (500, "Warn", _warn_500(missing[0])))
            return
        recs: list[Any] = sorted(store.values(), key=lambda r: (r.txn_date, r.txn_number))
        mod_range = rq.find("ModifiedDateRangeFilter")
        if mod_range is not None:
            recs = _modified_filter(recs, text(mod_range, "FromModifiedDate"), text(mod_range, "ToModifiedDate"))
        date_range = rq.find("TxnDateRangeFilter")
        if date_range is not None:
            lo, hi = text(date_range, "FromTxnDate"), text(date_range, "ToTxnDate")
            if lo:
                recs = [r for r in recs if r.txn_date >= date.fromisoformat(lo)]
            if hi:
                recs = [r for r in recs if r.txn_date <= date.fromisoformat(hi)]
        entity = rq.find("EntityFilter")
        if entity is not None and kind != "JournalEntry":
            target = self._resolve(entity, NAME_KINDS)
            recs = [r for r in recs if target is not None and r.customer_id == target.list_id]
        paid = text(rq, "PaidStatus")
        if kind == "Invoice" and paid in ("PaidOnly", "NotPaidOnly"):
            recs = [r for r in recs if r.is_paid == (paid == "PaidOnly")]
        self._page(rq, rs, [r.txn_id for r in recs], ret_of)

    # ------------------------------------------------------------------ paging / iterators

    def _emit(self, rq: etree._Element, rs: etree._Element, rets: list[etree._Element]) -> None:
        keep = set(texts(rq, "IncludeRetElement"))
        for ret in rets:
            if keep:
                for el in list(ret):
                    if el.tag not in keep:
                        ret.remove(el)
            rs.append(ret)

    def _page(
        self, rq: etree._Element, rs: etree._Element, ids: list[str], ret_of: Callable[[str], etree._Element | None]
    ) -> None:
        max_text = text(rq, "MaxReturned")
        max_returned = int(max_text) if max_text else None
        if rq.get("iterator") == "Start":
            size = max_returned or 500  # QuickBooks needs MaxReturned with iterators; be lenient
            it = _Iterator("{" + str(uuid.uuid4()) + "}", rq.tag, ids, 0, size)
            self._iterators[it.iterator_id] = it
            self._iterate(rq, rs, it, ret_of)
            return
        if max_returned is not None:
            ids = ids[:max_returned]
        if not ids:
            _status(rs, None, NO_MATCH)
            return
        self._emit(rq, rs, [e for e in (ret_of(i) for i in ids) if e is not None])

    def _continue_iterator(
        self, rq: etree._Element, rs: etree._Element, ret_of: Callable[[str], etree._Element | None]
    ) -> bool:
        mode = rq.get("iterator")
        if mode not in ("Continue", "Stop"):
            return False
        iterator_id = rq.get("iteratorID", "")
        it = self._iterators.get(iterator_id)
        if it is None or it.rq_tag != rq.tag:
            raise StatusError(3391, f'The iteratorID "{iterator_id}" is not valid.')
        if mode == "Stop":
            del self._iterators[iterator_id]
            rs.set("iteratorRemainingCount", "0")
            rs.set("iteratorID", iterator_id)
            return True
        max_text = text(rq, "MaxReturned")
        if max_text:
            it.max_returned = int(max_text)
        self._iterate(rq, rs, it, ret_of)
        return True

    def _iterate(
        self, rq: etree._Element, rs: etree._Element, it: _Iterator, ret_of: Callable[[str], etree._Element | None]
    ) -> None:
        chunk = it.ids[it.pos : it.pos + it.max_returned]
        it.pos += len(chunk)
        remaining = len(it.ids) - it.pos
        if remaining == 0:
            self._iterators.pop(it.iterator_id, None)
        if chunk:
            self._emit(rq, rs, [e for e in (ret_of(i) for i in chunk) if e is not None])
        else:
            _status(rs, None, NO_MATCH)
        rs.set("iteratorRemainingCount", str(remaining))
        rs.set("iteratorID", it.iterator_id)

    # ------------------------------------------------------------------ admin hooks (what a user does in QuickBooks)

    def pay_invoice(
        self,
        ref_or_txn_id: str,
        *,
        amount: Decimal | str | None = None,
        txn_date: date | str | None = None,
        ref_number: str | None = None,
    ) -> Payment:
        """Receive a payment for one invoice (default: its open balance), as a user would in QuickBooks."""
        with self._lock:
            inv = self._invoices.get(ref_or_txn_id) or self.find_invoice(ref_or_txn_id)
            if inv is None:
                raise KeyError(f"no invoice {ref_or_txn_id!r}")
            paying = Decimal(str(amount)) if amount is not None else inv.balance_remaining
            if paying <= ZERO or paying > inv.balance_remaining:
                raise ValueError(f"cannot pay {paying} on a balance of {inv.balance_remaining}")
            when = date.fromisoformat(txn_date) if isinstance(txn_date, str) else txn_date
            now = self._now()
            customer = self._lists[inv.customer_id]
            deposit = self._find_list(("Account",), "Undeposited Funds")
            assert deposit is not None
            pay = Payment(
                txn_id=self._new_txn_id(),
                txn_number=self._next_txn_number(),
                time_created=now,
                time_modified=now,
                edit_sequence=self._edit_sequence(),
                customer_id=customer.list_id,
                ar_account_id=inv.ar_account_id,
                deposit_account_id=deposit.list_id,
                txn_date=when or now.date(),
                ref_number=ref_number,
                total_amount=paying,
                memo=None,
                payment_method=None,
                applied=[(inv.txn_id, paying)],
            )
            self._payments[pay.txn_id] = pay
            inv.payments.append((pay.txn_id, paying))
            inv.time_modified = now
            inv.edit_sequence = self._edit_sequence()
            return pay

    def delete_transaction(self, txn_id: str) -> None:
        """Delete an invoice (without payments) or a payment, as a user would; TxnDeletedQuery then reports it."""
        with self._lock:
            now = self._now()
            if txn_id in self._invoices:
                inv = self._invoices[txn_id]
                if inv.payments:
                    raise ValueError("this invoice has payments applied: delete them first")
                del self._invoices[txn_id]
                kind, created, ref = "Invoice", inv.time_created, inv.ref_number
            elif txn_id in self._payments:
                pay = self._payments.pop(txn_id)
                for inv_id, _ in pay.applied:
                    inv = self._invoices[inv_id]
                    inv.payments = [(p, a) for p, a in inv.payments if p != txn_id]
                    inv.time_modified = now
                    inv.edit_sequence = self._edit_sequence()
                kind, created, ref = "ReceivePayment", pay.time_created, pay.ref_number or ""
            else:
                raise KeyError(f"no transaction {txn_id!r}")
            self._deleted[txn_id] = {
                "type": kind,
                "txn_id": txn_id,
                "created": created.isoformat(),
                "deleted": now.isoformat(),
                "ref": ref,
            }

    def _txn_deleted_query(self, rq: etree._Element, rs: etree._Element) -> None:
        types = set(texts(rq, "TxnDelType"))
        found = [d for d in self._deleted.values() if d["type"] in types]
        deleted_range = rq.find("DeletedDateRangeFilter")
        if deleted_range is not None:
            try:
                lo, hi = text(deleted_range, "FromDeletedDate"), text(deleted_range, "ToDeletedDate")
                if lo:
                    start = _parse_when(lo, end_of_day=False)
                    found = [d for d in found if datetime.fromisoformat(d["deleted"]) >= start]
                if hi:
                    end = _parse_when(hi, end_of_day=True)
                    found = [d for d in found if datetime.fromisoformat(d["deleted"]) <= end]
            except ValueError as exc:
                raise StatusError(3020, f"Invalid date/time value in the deleted date filter: {exc}") from exc
        if not found:
            _status(rs, None, NO_MATCH)
            return
        for d in sorted(found, key=lambda d: d["deleted"]):
            ret = sub(rs, "TxnDeletedRet")
            sub(ret, "TxnDelType", d["type"])
            sub(ret, "TxnID", d["txn_id"])
            sub(ret, "TimeCreated", d["created"])
            sub(ret, "TimeDeleted", d["deleted"])
            if d["ref"]:
                sub(ret, "RefNumber", d["ref"])

    # ------------------------------------------------------------------ persistence (for the CLI)

    def to_json(self) -> str:
        """Serialize the company data (not iterators, faults or the request log) to JSON."""
        with self._lock:

            def dump_list(r: ListRecord) -> dict[str, Any]:
                return {
                    "kind": r.kind,
                    "list_id": r.list_id,
                    "name": r.name,
                    "full_name": r.full_name,
                    "time_created": r.time_created.isoformat(),
                    "time_modified": r.time_modified.isoformat(),
                    "edit_sequence": r.edit_sequence,
                    "is_active": r.is_active,
                    "parent_id": r.parent_id,
                    "sublevel": r.sublevel,
                    "fields": [etree.tostring(f, encoding="unicode") for f in r.fields],
                }

            def dump_txn(r: Invoice | Payment | JournalEntry) -> dict[str, Any]:
                out: dict[str, Any] = {}
                for key, value in vars(r).items():
                    out[key] = _jsonable(value)
                return out

            state = {
                "name": self.name,
                "file_path": self.file_path,
                "supported_versions": list(self.supported_versions),
                "country": self.country,
                "lists": [dump_list(r) for r in self._lists.values()],
                "invoices": [dump_txn(r) for r in self._invoices.values()],
                "payments": [dump_txn(r) for r in self._payments.values()],
                "journals": [dump_txn(r) for r in self._journals.values()],
                "purchasing": self.purchasing.dump(),
                "deleted": list(self._deleted.values()),
                "data_ext": [[o, n, v] for (o, n), v in self._data_ext.items()],
                "seq": [self._list_seq, self._txn_seq, self._txn_number, self._line_seq, self._last_edit],
                "default_sales_tax_item": self.default_sales_tax_item_id,
                "last_message_set": list(self._last_message_set) if self._last_message_set else None,
            }
            return json.dumps(state, indent=1)

    @classmethod
    def from_json(cls, data: str) -> FakeCompany:
        state = json.loads(data)
        company = cls(state["name"], state["file_path"], state["supported_versions"], state["country"])
        company._lists.clear()
        for r in state["lists"]:
            rec = ListRecord(
                kind=r["kind"],
                list_id=r["list_id"],
                name=r["name"],
                full_name=r["full_name"],
                time_created=datetime.fromisoformat(r["time_created"]),
                time_modified=datetime.fromisoformat(r["time_modified"]),
                edit_sequence=r["edit_sequence"],
                is_active=r["is_active"],
                parent_id=r["parent_id"],
                sublevel=r["sublevel"],
                fields=[etree.fromstring(f.encode("utf-8"), parser=safe_parser()) for f in r["fields"]],
            )
            company._lists[rec.list_id] = rec
        for raw in state["invoices"]:
            raw["lines"] = [InvoiceLine(**_unjson(ln, InvoiceLine)) for ln in raw["lines"]]
            raw["payments"] = [(a, Decimal(b)) for a, b in raw["payments"]]
            inv = Invoice(**_unjson(raw, Invoice))
            company._invoices[inv.txn_id] = inv
        for raw in state["payments"]:
            raw["applied"] = [(a, Decimal(b)) for a, b in raw["applied"]]
            pay = Payment(**_unjson(raw, Payment))
            company._payments[pay.txn_id] = pay
        for raw in state["journals"]:
            raw["lines"] = [JournalLine(**_unjson(ln, JournalLine)) for ln in raw["lines"]]
            je = JournalEntry(**_unjson(raw, JournalEntry))
            company._journals[je.txn_id] = je
        company.purchasing.load(state.get("purchasing"))
        company._deleted = {d["txn_id"]: d for d in state.get("deleted", [])}
        company._data_ext = {(o, n): v for o, n, v in state["data_ext"]}
        (company._list_seq, company._txn_seq, company._txn_number, company._line_seq, company._last_edit) = state["seq"]
        company.default_sales_tax_item_id = state.get("default_sales_tax_item")
        lms = state.get("last_message_set")
        company._last_message_set = (lms[0], lms[1]) if lms else None
        return company


# ---------------------------------------------------------------------------------------------- helpers


def _el(tag: str, value: str) -> etree._Element:
    el = etree.Element(tag)
    el.text = value
    return el


def _percent(value: Decimal) -> str:
    """A PERCENTTYPE value: two decimals, more when the rate has them (8.375)."""
    return money(value) if value == value.quantize(CENT) else f"{value.normalize():f}"


def _terms_fields(due_days: int, discount_days: int | None, discount_pct: str | None) -> list[etree._Element]:
    fields = [_el("StdDueDays", str(due_days))]
    if discount_days is not None:
        fields.append(_el("StdDiscountDays", str(discount_days)))
    if discount_pct is not None:
        fields.append(_el("DiscountPct", discount_pct))
    return fields


def _status(rs: etree._Element, request_id: str | None, status: tuple[int, str, str]) -> etree._Element:
    if request_id is not None:
        rs.set("requestID", request_id)
    rs.set("statusCode", str(status[0]))
    rs.set("statusSeverity", status[1])
    rs.set("statusMessage", status[2])
    return rs


def _body(rq: etree._Element) -> etree._Element:
    """The ``XxxAdd``/``XxxMod`` element of an ``XxxAddRq`` (presence is checked in ``_validate``)."""
    found = rq.find(rq.tag[:-2])
    if found is None:
        raise parse_error(f"{rq.tag} has no {rq.tag[:-2]}")
    return found


def _name_matches(name: str, needle: str, criterion: str) -> bool:
    if criterion == "Contains":
        return needle in name
    if criterion == "EndsWith":
        return name.endswith(needle)
    return name.startswith(needle)


def _warn_500(missing: str) -> str:
    return (
        "The query request has not been fully completed. There was a required element "
        f'("{missing}") that could not be found in QuickBooks.'
    )


def _ref(parent: etree._Element, tag: str, rec: ListRecord) -> None:
    ref = sub(parent, tag)
    sub(ref, "ListID", rec.list_id)
    sub(ref, "FullName", rec.full_name)


def _txn_head(ret: etree._Element, txn_id: str, created: datetime, modified: datetime, seq: str, number: int) -> None:
    sub(ret, "TxnID", txn_id)
    sub(ret, "TimeCreated", created.isoformat())
    sub(ret, "TimeModified", modified.isoformat())
    sub(ret, "EditSequence", seq)
    sub(ret, "TxnNumber", str(number))


def _item_price(item: ListRecord) -> str | None:
    if item.kind == "ItemInventory":
        return item.field_text("SalesPrice")
    for el in item.fields:
        if el.tag == "SalesOrPurchase":
            return text(el, "Price")
        if el.tag == "SalesAndPurchase":
            return text(el, "SalesPrice")
    return None


def _item_desc(item: ListRecord) -> str | None:
    if item.kind in ("ItemDiscount", "ItemSalesTax"):
        return item.field_text("ItemDesc")
    if item.kind == "ItemInventory":
        return item.field_text("SalesDesc")
    for el in item.fields:
        if el.tag == "SalesOrPurchase":
            return text(el, "Desc")
        if el.tag == "SalesAndPurchase":
            return text(el, "SalesDesc")
    return None


def _parse_when(value: str, end_of_day: bool) -> datetime:
    stamp = datetime.fromisoformat(value.strip())
    if len(value.strip()) == 10 and end_of_day:
        stamp = stamp + timedelta(days=1, seconds=-1)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=COMPANY_TZ)
    return stamp


def _modified_filter(recs: list[Any], lo: str | None, hi: str | None) -> list[Any]:
    try:
        if lo:
            start = _parse_when(lo, end_of_day=False)
            recs = [r for r in recs if r.time_modified >= start]
        if hi:
            end = _parse_when(hi, end_of_day=True)
            recs = [r for r in recs if r.time_modified <= end]
    except ValueError as exc:
        raise StatusError(3020, f"Invalid date/time value in the modified date filter: {exc}") from exc
    return recs


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {k: _jsonable(v) for k, v in vars(value).items()}
    return value


def _unjson(raw: dict[str, Any], kind: type) -> dict[str, Any]:
    """Turn JSON strings back into Decimal/date/datetime according to the dataclass annotations."""
    out = dict(raw)
    for name, spec in kind.__dataclass_fields__.items():  # type: ignore[attr-defined]
        value = out.get(name)
        annotation = str(spec.type).removesuffix(" | None")
        if value is None or not isinstance(value, str):
            continue
        if annotation.startswith("Decimal"):
            out[name] = Decimal(value)
        elif annotation == "datetime":
            out[name] = datetime.fromisoformat(value)
        elif annotation == "date":
            out[name] = date.fromisoformat(value)
    return out


__all__ = [
    "DEFAULT_VERSIONS",
    "FakeCompany",
    "FileIDConflictError",
    "Invoice",
    "InvoiceLine",
    "JournalEntry",
    "JournalLine",
    "ListRecord",
    "Payment",
    "QBXMLProcessingError",
    "RequestLogEntry",
    "StatusError",
]
