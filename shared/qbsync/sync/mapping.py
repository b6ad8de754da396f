"""Mapping layer: source records (T1-T4) → QuickBooks Online JSON bodies and QuickBooks Desktop qbXML records.

The mapping functions are pure (no I/O): everything they need from QuickBooks (Ids, ListIDs, TxnIDs, names of
terms/classes/tax codes) is resolved by the caller and passed in. ``qbo_*`` build QuickBooks Online API v3 JSON
bodies, ``qbd_*`` build the Desktop records of :mod:`qbsync.qbxml.records` (which the qbXML builders turn into
XSD-valid requests).

Rules shared by both (FEATURES S2-S6):

* **Tax** (S4) is only written when ``settings.sales_tax.enabled``. A line is taxable only when its item is
  taxable *and* the customer is not tax exempt: tax-exempt items are never taxed, exempt customers never pay tax.
  The transaction tax code is the invoice's ``tax_code``, else the customer's (when ``customer_override``), else
  ``default_tax_code``.
* **Terms** (S2): invoice terms, else the customer's, else ``default_terms``.
* **Classes** (S3): header class only with ``use_classes``; per-line classes only with ``allow_class_override`` too.
* **Addresses** (S5): written when the QuickBooks customer is created, or always with ``customer_address="always"``.
* **Item names** (S6): :func:`render_item_name`.
"""

from __future__ import annotations

import base64
import hashlib
import re
import string
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from qbsync.errors import FieldError, ValidationFailed
from qbsync.models import TenantSettings
from qbsync.qbo.jsonbody import dumps
from qbsync.qbxml.errors import QbxmlFieldError
from qbsync.qbxml.records import Address as QbdAddress
from qbsync.qbxml.records import AppliedTo, Customer, Invoice, InvoiceLine, Item, ReceivePayment, Ref
from qbsync.qbxml.text import REPLACEMENT, latin1_safe, text_field
from qbsync.sync.records import Address, SourceCustomer, SourceInvoice, SourceItem, SourcePayment


class MappingError(ValidationFailed):
    """A source record cannot be turned into a QuickBooks record as it is: the user must fix the record.

    ``field`` names the source field (``name``, ``lines[2].item_id``, ``doc_number``...); ``limit`` is set for
    length problems. Renders like any validation error (422, ``errors=[{field, message}]``) with a stable code.
    """

    code, title = "mapping_error", "Record cannot be mapped to QuickBooks"
    #: True for problems fixed in the tenant's settings / QuickBooks lists rather than in the record.
    configuration = False

    def __init__(self, field: str, message: str, *, limit: int | None = None) -> None:
        super().__init__([FieldError(field, message)], detail=f"{field}: {message}")
        self.field = field
        self.message = message
        self.limit = limit
        self.extra.update({"field": field, "limit": limit, "configuration": self.configuration})


class MappingConfigurationError(MappingError):
    """A setting or a QuickBooks list entry is missing (income account, terms, class, tax code...).

    Surfaced as a *configuration issue* (FEATURES M1-M5), not as a problem of the record.
    """

    code, title = "mapping_configuration_error", "QuickBooks configuration issue"
    configuration = True


@dataclass(frozen=True, slots=True)
class QbRef:
    """An already resolved QuickBooks object.

    QBO: ``id`` is the entity ``Id`` (required), ``name`` its display name (optional, informative).
    QBD: ``id`` is the ListID (lists) or TxnID (transactions); a list element may be referenced by ``name``
    (its FullName) alone, e.g. a customer added earlier in the same batch. Transactions need ``id``.
    """

    id: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if not self.id and not self.name:
            raise ValueError("QbRef needs an id or a name")


@dataclass(frozen=True, slots=True, kw_only=True)
class Refs:
    """References resolved by the caller for one transaction.

    ``items`` is keyed by source item id, ``invoices`` by source invoice id (``QbRef(id=Id/TxnID,
    name=doc number)``). ``discount_account`` (QBO only) is the account a discount line posts to; QuickBooks uses
    the company's default discount account when it is absent.
    """

    customer: QbRef
    items: Mapping[str, QbRef] = field(default_factory=dict)
    invoices: Mapping[str, QbRef] = field(default_factory=dict)
    discount_account: QbRef | None = None


# --------------------------------------------------------------------------------------------------- look-ups


def lookup(ids: Mapping[str, str] | None, name: str, *, field: str, what: str) -> str:
    """The QuickBooks Id of ``name`` in ``ids`` (exact match first, then case-insensitive, as QuickBooks
    compares names). Missing → :class:`MappingConfigurationError` naming the setting/field."""
    ids = ids or {}
    if name in ids:
        return ids[name]
    folded = name.casefold()
    for key, value in ids.items():
        if key.casefold() == folded:
            return value
    raise MappingConfigurationError(field, f"QuickBooks has no {what} named {name!r}; create it or fix the setting")


def item_ref(refs: Refs, item_id: str, index: int) -> QbRef:
    ref = refs.items.get(item_id)
    if ref is None:
        raise MappingError(f"lines[{index}].item_id", f"item {item_id!r} is not in QuickBooks yet; sync it first")
    return ref


def source_item(items: Mapping[str, SourceItem], item_id: str, index: int) -> SourceItem:
    item = items.get(item_id)
    if item is None:
        raise MappingError(f"lines[{index}].item_id", f"item {item_id!r} is unknown (not pushed to qbsync)")
    return item


def invoice_ref(refs: Refs, invoice_id: str, index: int) -> str:
    """TxnID / Id of an invoice a payment is applied to. Never silently leaves a payment unapplied."""
    ref = refs.invoices.get(invoice_id)
    if ref is None or not ref.id:
        raise MappingError(
            f"applied_to[{index}].invoice_id",
            f"invoice {invoice_id!r} is not in QuickBooks yet; sync it before the payment",
        )
    return ref.id


# --------------------------------------------------------------------------------------------------- S2-S5


def invoice_terms(inv: SourceInvoice, customer: SourceCustomer, s: TenantSettings) -> tuple[str, str] | None:
    """(terms name, the field it came from): invoice terms, else the customer's, else ``default_terms`` (S2)."""
    if inv.terms:
        return inv.terms, "terms"
    if customer.terms:
        return customer.terms, "customer.terms"
    if s.default_terms:
        return s.default_terms, "settings.default_terms"
    return None


def header_class(inv: SourceInvoice, s: TenantSettings) -> str | None:
    return inv.class_name if s.use_classes and inv.class_name else None


def line_class(class_name: str | None, s: TenantSettings) -> str | None:
    return class_name if s.use_classes and s.allow_class_override and class_name else None


def write_address(s: TenantSettings, *, creating: bool) -> bool:
    return creating or s.customer_address == "always"


def line_taxable(item: SourceItem, customer: SourceCustomer) -> bool:
    """S4: taxed only when the item is taxable and the customer is not exempt (exempt items are never taxed)."""
    return item.taxable and not customer.tax_exempt


def transaction_tax_code(inv: SourceInvoice, customer: SourceCustomer, s: TenantSettings) -> tuple[str, str] | None:
    """(tax code name, where it came from): invoice → customer (if ``customer_override``) → default (S4)."""
    if inv.tax_code:
        return inv.tax_code, "tax_code"
    if s.sales_tax.customer_override and customer.tax_code:
        return customer.tax_code, "customer.tax_code"
    if s.sales_tax.default_tax_code:
        return s.sales_tax.default_tax_code, "settings.sales_tax.default_tax_code"
    return None


def check_tax_amount(inv: SourceInvoice, customer: SourceCustomer, s: TenantSettings, taxable_lines: int) -> None:
    """Refuse tax the rules say cannot exist, rather than sending totals QuickBooks would recompute differently."""
    if not inv.tax_amount:
        return
    if not s.sales_tax.enabled:
        raise MappingConfigurationError(
            "tax_amount", "the invoice carries sales tax but sales tax is disabled in the settings (S4)"
        )
    if customer.tax_exempt:
        raise MappingError("tax_amount", f"customer {customer.id!r} is tax exempt but the invoice carries tax")
    if taxable_lines == 0:
        raise MappingError("tax_amount", "the invoice carries tax but none of its items is taxable")


def discount_description(inv: SourceInvoice) -> str | None:
    if inv.discount is None:
        return None
    if inv.discount.description:
        return inv.discount.description
    if inv.discount.percent is not None:
        return f"Discount {inv.discount.percent.normalize():f}%"
    return "Discount"


# --------------------------------------------------------------------------------------------------- S6 names

#: Order in which placeholder values are shortened when a rendered item name is too long. ``{sku}`` is never cut.
CUT_ORDER = ("description", "name", "code")
HASH_SUFFIX_LENGTH = 4  # base32: about a million values, and the names' own text differs too
_SPACES = re.compile(r"\s+")
_TRAILING = " -_.,;/|(["


def render_item_name(
    template: str,
    item: SourceItem,
    *,
    limit: int,
    clean: Callable[[str], str] = lambda text: text,
) -> str:
    """Render the S6 naming template for ``item`` within ``limit`` characters.

    Each value is passed through ``clean`` (the Desktop Latin-1 rule; colons become ``-`` since QuickBooks uses
    ``:`` as the hierarchy separator) and whitespace runs become one space. A placeholder whose value is missing
    (``{sku}`` without a SKU) is refused: an empty part would make names collide.

    **Length rule.** When the name is too long, ``{description}``, then ``{name}``, then ``{code}`` are cut from
    their end (trailing separators dropped; a value cut away entirely also drops the separator before it) until
    it fits. The literal text and ``{sku}`` are never cut: the SKU
    keeps names unique and is how items are matched (T2). A template without ``{sku}`` has nothing unique to keep,
    so a name that had to be cut ends in ``~`` and four characters of a hash of the whole uncut name: two long
    names sharing their first characters still get different, and always the same, QuickBooks names. If the
    literal text and SKU alone exceed the limit, the name is refused (:class:`MappingError` on
    ``item_name_template``).
    """

    def norm(text: str) -> str:
        return _SPACES.sub(" ", clean(text).replace(":", "-")).strip()

    values: dict[str, str] = {}
    parts: list[tuple[str, str | None]] = []  # (literal, field)
    for literal, field_name, _spec, _conv in string.Formatter().parse(template):
        if field_name is not None and field_name not in values:
            raw = getattr(item, field_name, None)
            if not raw:
                raise MappingError(field_name, f"the item naming template uses {{{field_name}}} but the item has none")
            values[field_name] = norm(str(raw))
        parts.append((_SPACES.sub(" ", clean(literal).replace(":", "-")), field_name))

    def render() -> str:
        out = []
        for lit, f in parts:
            if f is not None and not values[f]:
                # A value cut away entirely takes its separator-only literal with it: "{name} - {description}".
                if not any(ch.isalnum() for ch in lit):
                    continue
                out.append(lit)
                continue
            out.append(lit + (values[f] if f else ""))
        return _SPACES.sub(" ", "".join(out)).strip()

    name = render()
    full = name
    suffix = ""
    if len(name) > limit and "sku" not in values:
        digest = base64.b32encode(hashlib.sha256(full.encode()).digest()).decode()
        suffix = "~" + digest[:HASH_SUFFIX_LENGTH]
    room = limit - len(suffix)
    for field_name in CUT_ORDER:
        if len(name) <= room:
            break
        if field_name not in values:
            continue
        uses = sum(1 for _lit, f in parts if f == field_name)
        excess = len(name) - room
        cut = -(-excess // uses)  # ceil: each occurrence loses the same amount
        kept = values[field_name][: max(0, len(values[field_name]) - cut)].rstrip(_TRAILING)
        values[field_name] = kept
        name = render()
    if suffix and len(name) <= room:
        name = name.rstrip(_TRAILING) + suffix
    if len(name) > limit:
        raise MappingError(
            "item_name_template",
            f"the item name {name!r} is {len(name)} characters even after shortening; QuickBooks allows {limit}",
            limit=limit,
        )
    if not name:
        raise MappingError("name", "the item name is empty after applying the naming template")
    return name


def money(value: Decimal) -> Decimal:
    """Amounts are kept as exact ``Decimal`` with two places (never floats)."""
    return value.quantize(Decimal("0.01"))


# =================================================================================================== QuickBooks Online
#
# Bodies are plain dicts in QBO's shape. **Amounts, quantities and rates stay ``Decimal``** (never float): the JSON
# encoder that sends them must write a ``Decimal`` as a JSON number (``json.dumps`` alone refuses ``Decimal``, and
# ``default=str`` would send a JSON string): use :func:`qbo_json`. Dates are ISO ``YYYY-MM-DD`` strings.
#
# Create bodies are returned as-is. For an update the caller adds ``Id``, ``SyncToken`` and ``"sparse": True``:
# fields left out (e.g. addresses of an existing customer, S5) are then left unchanged by QuickBooks.

QboBody = dict[str, Any]

# Field limits (characters) of the current QBO API reference; the bundled XSD documents older, smaller ones.
QBO_DISPLAY_NAME_LIMIT = 500
QBO_PERSON_NAME_LIMIT = 100
QBO_COMPANY_NAME_LIMIT = 100
QBO_EMAIL_LIMIT = 100
QBO_PHONE_LIMIT = 30
QBO_ITEM_NAME_LIMIT = 100
QBO_SKU_LIMIT = 100
QBO_DOC_NUMBER_LIMIT = 21
QBO_PAYMENT_REF_LIMIT = 21
QBO_PRIVATE_NOTE_LIMIT = 4000
QBO_CUSTOMER_MEMO_LIMIT = 1000
QBO_NOTES_LIMIT = 2000
QBO_ADDRESS_LIMITS = {"Line": 500, "City": 255, "CountrySubDivisionCode": 255, "PostalCode": 30, "Country": 255}

#: US automated sales tax pseudo codes for lines.
US_TAXABLE = "TAX"
US_NON_TAXABLE = "NON"


def qbo_ref(qb: QbRef, field: str) -> dict[str, str]:
    """``{"value": Id, "name": name}``; QBO references need the Id."""
    if not qb.id:
        raise MappingError(field, f"{qb.name!r} has no QuickBooks Id yet; sync it first")
    out = {"value": qb.id}
    if qb.name:
        out["name"] = qb.name
    return out


def _qbo_id_ref(ids: Mapping[str, str] | None, name: str, *, field: str, what: str) -> dict[str, str]:
    return {"value": lookup(ids, name, field=field, what=what), "name": name}


def _qbo_text(field: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise MappingError(field, f"is {len(value)} characters; QuickBooks Online allows {limit}", limit=limit)
    return value


def _qbo_name(field: str, value: str, limit: int) -> str:
    """QBO names may not contain ``:`` (sub-entity separator), tab or newline. Refused, never rewritten."""
    if any(ch in value for ch in ":\t\r\n"):
        raise MappingError(field, "QuickBooks names may not contain ':' , tabs or line breaks")
    return _qbo_text(field, value, limit)


def _qbo_address(a: Address, field: str) -> QboBody:
    out: QboBody = {}
    for index, line in enumerate((a.line1, a.line2, a.line3), start=1):
        if line:
            out[f"Line{index}"] = _qbo_text(f"{field}.line{index}", line, QBO_ADDRESS_LIMITS["Line"])
    for key, attr in (
        ("City", "city"),
        ("CountrySubDivisionCode", "state"),
        ("PostalCode", "postal_code"),
        ("Country", "country"),
    ):
        value = getattr(a, attr)
        if value:
            out[key] = _qbo_text(f"{field}.{attr}", value, QBO_ADDRESS_LIMITS[key])
    return out


# --------------------------------------------------------------------------------------------------- customers


def qbo_customer(
    c: SourceCustomer,
    s: TenantSettings,
    *,
    creating: bool,
    terms_ids: Mapping[str, str] | None = None,
    tax_code_ids: Mapping[str, str] | None = None,
    exemption_reason_id: str | None = None,
) -> QboBody:
    """Customer body (T1). ``terms_ids``/``tax_code_ids`` map QuickBooks names to Ids (QBO refs need Ids).

    Addresses only when ``creating`` unless ``customer_address="always"`` (S5). With sales tax enabled (S4):
    ``Taxable`` is ``not tax_exempt``; an exempt customer also gets ``TaxExemptionReasonId`` when
    ``exemption_reason_id`` is given (QBO's reason list, e.g. "9" resale); a customer ``tax_code`` becomes
    ``DefaultTaxCodeRef`` when ``customer_override`` is on.
    """
    body: QboBody = {"DisplayName": _qbo_name("name", c.name, QBO_DISPLAY_NAME_LIMIT)}
    if c.company_name:
        body["CompanyName"] = _qbo_text("company_name", c.company_name, QBO_COMPANY_NAME_LIMIT)
    if c.first_name:
        body["GivenName"] = _qbo_text("first_name", c.first_name, QBO_PERSON_NAME_LIMIT)
    if c.last_name:
        body["FamilyName"] = _qbo_text("last_name", c.last_name, QBO_PERSON_NAME_LIMIT)
    if c.email:
        body["PrimaryEmailAddr"] = {"Address": _qbo_text("email", c.email, QBO_EMAIL_LIMIT)}
    if c.phone:
        body["PrimaryPhone"] = {"FreeFormNumber": _qbo_text("phone", c.phone, QBO_PHONE_LIMIT)}
    if write_address(s, creating=creating):
        if c.billing_address:
            body["BillAddr"] = _qbo_address(c.billing_address, "billing_address")
        if c.shipping_address:
            body["ShipAddr"] = _qbo_address(c.shipping_address, "shipping_address")
    if c.terms:
        body["SalesTermRef"] = _qbo_id_ref(terms_ids, c.terms, field="terms", what="terms")
    if s.sales_tax.enabled:
        body["Taxable"] = not c.tax_exempt
        if c.tax_exempt and exemption_reason_id:
            body["TaxExemptionReasonId"] = exemption_reason_id
        if not c.tax_exempt and c.tax_code and s.sales_tax.customer_override:
            body["DefaultTaxCodeRef"] = _qbo_id_ref(tax_code_ids, c.tax_code, field="tax_code", what="tax code")
    if c.notes:
        body["Notes"] = _qbo_text("notes", c.notes, QBO_NOTES_LIMIT)
    return body


# --------------------------------------------------------------------------------------------------- items


def qbo_item_name(i: SourceItem, s: TenantSettings) -> str:
    """The S6 name of an item qbsync creates (≤100 characters, see :func:`render_item_name`)."""
    return render_item_name(s.item_name_template, i, limit=QBO_ITEM_NAME_LIMIT)


def qbo_item(i: SourceItem, s: TenantSettings, *, account_ids: Mapping[str, str]) -> QboBody:
    """Item body (T2): ``Service``, or ``NonInventory`` for products (qbsync never tracks inventory).

    The income account is the item's, else the tenant's ``income_account``; neither → configuration issue.
    The expense account (item's, else tenant's) is sent when there is one. ``account_ids``: account name → Id.
    """
    income = i.income_account or s.income_account
    if not income:
        raise MappingConfigurationError(
            "income_account", "no income account for the item and no default income account in the settings (S2)"
        )
    body: QboBody = {
        "Name": qbo_item_name(i, s),
        "Type": "Service" if i.type == "service" else "NonInventory",
        "IncomeAccountRef": _qbo_id_ref(account_ids, income, field="income_account", what="account"),
    }
    expense = i.expense_account or s.expense_account
    if expense:
        body["ExpenseAccountRef"] = _qbo_id_ref(account_ids, expense, field="expense_account", what="account")
    if i.sku:
        body["Sku"] = _qbo_text("sku", i.sku, QBO_SKU_LIMIT)
    if i.description:
        body["Description"] = i.description
    if i.price is not None:
        body["UnitPrice"] = i.price
    if s.sales_tax.enabled:
        body["Taxable"] = i.taxable
    return body


# --------------------------------------------------------------------------------------------------- invoices


def qbo_invoice(
    inv: SourceInvoice,
    s: TenantSettings,
    refs: Refs,
    *,
    customer: SourceCustomer,
    items: Mapping[str, SourceItem],
    us_tax: bool = True,
    class_ids: Mapping[str, str] | None = None,
    term_ids: Mapping[str, str] | None = None,
    tax_code_ids: Mapping[str, str] | None = None,
    customer_memo: bool = False,
) -> QboBody:
    """Invoice body (T3). ``*_ids`` map QuickBooks names (classes, terms, tax codes) to Ids.

    Sales tax (S4, only when enabled):

    * ``us_tax=True`` (US automated sales tax): each line carries the pseudo code ``TAX`` or ``NON``
      (:func:`line_taxable`); ``TxnTaxDetail.TxnTaxCodeRef`` is the transaction tax code (invoice → customer →
      default) when there is one, ``TotalTax`` the source's ``tax_amount`` when given (QBO honours and prorates it).
    * ``us_tax=False``: each line carries the resolved tax code's Id (exempt lines: ``exempt_tax_code``),
      ``GlobalTaxCalculation`` is ``TaxExcluded`` (source amounts are net) and QBO computes the tax.

    ``memo`` goes to ``PrivateNote`` (internal, like the Desktop memo); with ``customer_memo`` it is also printed on
    the invoice (``CustomerMemo``, ≤1000 characters).
    """
    tax_enabled = s.sales_tax.enabled
    tax_code_name = transaction_tax_code(inv, customer, s) if tax_enabled else None
    line_code_taxable: str | None = None
    line_code_exempt: str | None = None
    if tax_enabled and us_tax:
        line_code_taxable, line_code_exempt = US_TAXABLE, US_NON_TAXABLE
    elif tax_enabled:
        if tax_code_name is None:
            raise MappingConfigurationError(
                "settings.sales_tax.default_tax_code", "no tax code for the invoice, its customer or the settings"
            )
        line_code_taxable = lookup(tax_code_ids, tax_code_name[0], field=tax_code_name[1], what="tax code")
        line_code_exempt = lookup(
            tax_code_ids, s.sales_tax.exempt_tax_code, field="settings.sales_tax.exempt_tax_code", what="tax code"
        )

    lines: list[QboBody] = []
    taxable_lines = 0
    for index, line in enumerate(inv.lines):
        item = source_item(items, line.item_id, index)
        detail: QboBody = {
            "ItemRef": qbo_ref(item_ref(refs, line.item_id, index), f"lines[{index}].item_id"),
            "Qty": line.quantity,
            "UnitPrice": line.rate,
        }
        taxable = line_taxable(item, customer)
        taxable_lines += taxable
        if line_code_taxable is not None:
            detail["TaxCodeRef"] = {"value": line_code_taxable if taxable else line_code_exempt}
        class_name = line_class(line.class_name, s)
        if class_name:
            detail["ClassRef"] = _qbo_id_ref(class_ids, class_name, field=f"lines[{index}].class_name", what="class")
        if line.service_date:
            detail["ServiceDate"] = line.service_date.isoformat()
        body_line: QboBody = {"LineNum": index + 1, "DetailType": "SalesItemLineDetail", "Amount": line.line_amount}
        if line.description:
            body_line["Description"] = line.description
        body_line["SalesItemLineDetail"] = detail
        lines.append(body_line)
    check_tax_amount(inv, customer, s, taxable_lines)

    if inv.discount is not None:
        discount: QboBody = {"PercentBased": inv.discount.percent is not None}
        if inv.discount.percent is not None:
            discount["DiscountPercent"] = inv.discount.percent
        if refs.discount_account is not None:
            discount["DiscountAccountRef"] = qbo_ref(refs.discount_account, "discount_account")
        lines.append(
            {
                "DetailType": "DiscountLineDetail",
                "Amount": inv.discount_amount,
                "Description": discount_description(inv),
                "DiscountLineDetail": discount,
            }
        )

    body: QboBody = {
        "CustomerRef": qbo_ref(refs.customer, "customer_id"),
        "TxnDate": inv.date.isoformat(),
        "Line": lines,
    }
    if inv.doc_number:
        body["DocNumber"] = _qbo_text("doc_number", inv.doc_number, QBO_DOC_NUMBER_LIMIT)
    if inv.due_date:
        body["DueDate"] = inv.due_date.isoformat()
    terms = invoice_terms(inv, customer, s)
    if terms:
        body["SalesTermRef"] = _qbo_id_ref(term_ids, terms[0], field=terms[1], what="terms")
    class_name = header_class(inv, s)
    if class_name:
        body["ClassRef"] = _qbo_id_ref(class_ids, class_name, field="class_name", what="class")
    if inv.memo:
        body["PrivateNote"] = _qbo_text("memo", inv.memo, QBO_PRIVATE_NOTE_LIMIT)
        if customer_memo:
            body["CustomerMemo"] = {"value": _qbo_text("memo", inv.memo, QBO_CUSTOMER_MEMO_LIMIT)}
    if tax_enabled and us_tax:
        tax: QboBody = {}
        if tax_code_name is not None:
            tax["TxnTaxCodeRef"] = _qbo_id_ref(tax_code_ids, tax_code_name[0], field=tax_code_name[1], what="tax code")
        if inv.tax_amount is not None:
            tax["TotalTax"] = inv.tax_amount
        if tax:
            body["TxnTaxDetail"] = tax
    elif tax_enabled:
        body["GlobalTaxCalculation"] = "TaxExcluded"
    return body


def check_qbo_invoice_total(body: QboBody, inv: SourceInvoice) -> None:
    """Before sending: the body's lines must add up to the source's subtotal - discount (and, with a
    ``TotalTax``, to its total). Guards against a mapping bug turning into a wrong invoice in QuickBooks."""
    sales = Decimal("0.00")
    discount = Decimal("0.00")
    for index, line in enumerate(body.get("Line", [])):
        amount = line.get("Amount")
        if not isinstance(amount, Decimal):
            raise MappingError(f"Line[{index}].Amount", f"expected a Decimal amount, got {type(amount).__name__}")
        if line.get("DetailType") == "SalesItemLineDetail":
            detail = line["SalesItemLineDetail"]
            computed = money(Decimal(detail["Qty"]) * Decimal(detail["UnitPrice"]))
            if computed != amount:
                raise MappingError(f"Line[{index}].Amount", f"{amount} is not Qty x UnitPrice ({computed})")
            sales += amount
        elif line.get("DetailType") == "DiscountLineDetail":
            discount += amount
    expected = inv.subtotal - inv.discount_amount
    if sales - discount != expected:
        raise MappingError("total", f"lines add up to {sales - discount}, the source says {expected}")
    tax = body.get("TxnTaxDetail", {}).get("TotalTax")
    if tax is not None and inv.total is not None and expected + tax != inv.total:
        raise MappingError("total", f"lines - discount + tax = {expected + tax}, the source total is {inv.total}")


# --------------------------------------------------------------------------------------------------- payments


def qbo_payment(
    p: SourcePayment,
    refs: Refs,
    *,
    payment_method_ids: Mapping[str, str] | None = None,
) -> QboBody:
    """Payment body (T4): one line per application, linked to the invoice's Id.

    An application to an invoice that is not in QuickBooks is refused (never an unapplied payment).
    ``payment_method_ids`` (name → Id): when given, ``method`` must be found in it; when ``None`` the method is not
    sent.
    """
    lines: list[QboBody] = [
        {"Amount": a.amount, "LinkedTxn": [{"TxnId": invoice_ref(refs, a.invoice_id, index), "TxnType": "Invoice"}]}
        for index, a in enumerate(p.applied_to)
    ]
    body: QboBody = {
        "CustomerRef": qbo_ref(refs.customer, "customer_id"),
        "TotalAmt": p.amount,
        "TxnDate": p.date.isoformat(),
        "Line": lines,
    }
    if p.reference:
        body["PaymentRefNum"] = _qbo_text("reference", p.reference, QBO_PAYMENT_REF_LIMIT)
    if p.method and payment_method_ids is not None:
        body["PaymentMethodRef"] = _qbo_id_ref(payment_method_ids, p.method, field="method", what="payment method")
    if p.memo:
        body["PrivateNote"] = _qbo_text("memo", p.memo, QBO_PRIVATE_NOTE_LIMIT)
    return body


def qbo_json(body: Any) -> str:
    """A QBO body as JSON with exact decimal amounts (see :mod:`qbsync.qbo.jsonbody`)."""
    try:
        return dumps(body)
    except ValueError as exc:
        raise MappingError("body", str(exc)) from None


# =================================================================================================== QuickBooks Desktop
#
# Records go to :mod:`qbsync.qbxml.builders`, which apply the Latin-1 rule and refuse over-long values. This layer
# checks the limits first so that the user sees the *source* field named (``name``, ``doc_number``...) rather than a
# qbXML element, and applies the documented shortening rule to item names (S6).
#
# Desktop tax (S4, only when ``sales_tax.enabled``): lines carry the sales tax code ``Tax`` or the exempt code (``Non``
# unless ``exempt_tax_code`` names another Desktop code); the invoice's sales tax item (``ItemSalesTaxRef``) is the
# invoice ``tax_code``, else ``default_tax_item``. QuickBooks computes the tax amount itself.

# qbXML 13.0 limits (characters, after the Latin-1 rule).
QBD_CUSTOMER_NAME_LIMIT = 41
QBD_ITEM_NAME_LIMIT = 31
QBD_REF_NUMBER_LIMIT = 11
QBD_TERMS_LIMIT = 31
QBD_SALES_TAX_CODE_LIMIT = 3
QBD_TAXABLE_CODE = "Tax"
QBD_NON_TAXABLE_CODE = "Non"


def _qbd_text(field: str, value: str, limit: int | None, *, multiline: bool = False) -> str:
    """Latin-1-safe ``value`` within ``limit``, or a :class:`MappingError` naming the *source* field.

    Line breaks are kept only in ``multiline`` (memo/description/notes) text, as the qbXML builders do.
    """
    try:
        return text_field("Memo" if multiline else field, value, limit)
    except QbxmlFieldError as exc:
        message = str(exc).split(": ", 1)[-1]
        if exc.limit is not None:
            message += " in QuickBooks Desktop"
        raise MappingError(field, message, limit=exc.limit) from None


def unrepresentable(value: str) -> list[str]:
    """The characters of ``value`` the Latin-1 rule can only turn into ``?`` (nothing close in ISO-8859-1)."""
    return [
        ch
        for ch in dict.fromkeys(unicodedata.normalize("NFC", value))
        if ch != REPLACEMENT and latin1_safe(ch).text == REPLACEMENT
    ]


def _qbd_identity(field: str, value: str | None) -> None:
    """A name or SKU is how a Desktop list entry is found again (matching, sub-lists): a character that would
    become ``?`` could make two names one, so it is refused instead of rewritten (free text keeps the rule)."""
    lost = unrepresentable(value or "")
    if lost:
        raise MappingError(
            field,
            f"has characters QuickBooks Desktop cannot store (ISO-8859-1 only): {''.join(lost[:10])!r}; "
            "they would become '?'",
        )


def _qbd_name(field: str, value: str, limit: int) -> str:
    _qbd_identity(field, value)
    text = _qbd_text(field, value, limit)
    if ":" in text:
        raise MappingError(field, "QuickBooks Desktop names may not contain ':' (it separates sub-list levels)")
    return text


def _qbd_ref(qb: QbRef) -> Ref:
    return Ref(list_id=qb.id) if qb.id else Ref(full_name=qb.name)


def qbd_exempt_code(s: TenantSettings) -> str:
    """The Desktop code for non-taxable lines: ``Non`` unless the settings name another (≤3 characters)."""
    code = s.sales_tax.exempt_tax_code
    if code.casefold() == QBD_NON_TAXABLE_CODE.casefold():
        return QBD_NON_TAXABLE_CODE
    if len(code) > QBD_SALES_TAX_CODE_LIMIT:
        raise MappingConfigurationError(
            "settings.sales_tax.exempt_tax_code",
            f"{code!r} is not a Desktop sales tax code (at most {QBD_SALES_TAX_CODE_LIMIT} characters)",
            limit=QBD_SALES_TAX_CODE_LIMIT,
        )
    return code


def _qbd_address(a: Address, field: str) -> QbdAddress:
    def get(attr: str, limit: int) -> str | None:
        value = getattr(a, attr)
        return _qbd_text(f"{field}.{attr}", value, limit) if value else None

    return QbdAddress(
        addr1=get("line1", 41),
        addr2=get("line2", 41),
        addr3=get("line3", 41),
        city=get("city", 31),
        state=get("state", 21),
        postal_code=get("postal_code", 13),
        country=get("country", 31),
    )


# --------------------------------------------------------------------------------------------------- customers


def qbd_customer(c: SourceCustomer, s: TenantSettings, *, creating: bool) -> Customer:
    """Customer record for CustomerAdd / CustomerMod (T1). Name ≤41 after the Latin-1 rule (longer is refused:
    the name is the customer's identity in Desktop). Addresses per S5; terms by name (the customer's own; the
    S2 default applies on invoices). With sales tax: exempt → ``Non``; else the customer's code when
    ``customer_override``."""
    sales_tax_code: str | None = None
    if s.sales_tax.enabled:
        if c.tax_exempt:
            sales_tax_code = qbd_exempt_code(s)
        elif c.tax_code and s.sales_tax.customer_override:
            sales_tax_code = _qbd_text("tax_code", c.tax_code, QBD_SALES_TAX_CODE_LIMIT)
    address = write_address(s, creating=creating)
    return Customer(
        name=_qbd_name("name", c.name, QBD_CUSTOMER_NAME_LIMIT),
        company_name=_qbd_text("company_name", c.company_name, 41) if c.company_name else None,
        first_name=_qbd_text("first_name", c.first_name, 25) if c.first_name else None,
        last_name=_qbd_text("last_name", c.last_name, 25) if c.last_name else None,
        bill_address=_qbd_address(c.billing_address, "billing_address") if address and c.billing_address else None,
        ship_address=_qbd_address(c.shipping_address, "shipping_address") if address and c.shipping_address else None,
        phone=_qbd_text("phone", c.phone, 21) if c.phone else None,
        email=_qbd_text("email", c.email, 1023) if c.email else None,
        terms=_qbd_text("terms", c.terms, QBD_TERMS_LIMIT) if c.terms else None,
        sales_tax_code=sales_tax_code,
        notes=_qbd_text("notes", c.notes, 4095, multiline=True) if c.notes else None,
    )


# --------------------------------------------------------------------------------------------------- items


def qbd_item_name(i: SourceItem, s: TenantSettings) -> str:
    """The S6 name (≤31 characters after the Latin-1 rule; shortening rule in :func:`render_item_name`)."""
    _qbd_identity("name", i.name)
    _qbd_identity("sku", i.sku)
    return render_item_name(s.item_name_template, i, limit=QBD_ITEM_NAME_LIMIT, clean=lambda t: latin1_safe(t).text)


def qbd_item(i: SourceItem, s: TenantSettings) -> Item:
    """ItemService / ItemNonInventory record (T2): products become non-inventory items (no inventory tracking).

    Accounts are referenced by full name (item's, else the tenant default); no income account is a configuration
    issue. An expense account makes it a "sales and purchase" item.
    """
    income = i.income_account or s.income_account
    if not income:
        raise MappingConfigurationError(
            "income_account", "no income account for the item and no default income account in the settings (S2)"
        )
    expense = i.expense_account or s.expense_account
    tax_code = None
    if s.sales_tax.enabled:
        tax_code = QBD_TAXABLE_CODE if i.taxable else qbd_exempt_code(s)
    return Item(
        name=qbd_item_name(i, s),
        kind="service" if i.type == "service" else "non_inventory",
        income_account=Ref(full_name=_qbd_text("income_account", income, 159)),
        expense_account=Ref(full_name=_qbd_text("expense_account", expense, 159)) if expense else None,
        description=_qbd_text("description", i.description, 4095, multiline=True) if i.description else None,
        price=i.price,
        tax_code=tax_code,
    )


# --------------------------------------------------------------------------------------------------- invoices


def qbd_invoice(
    inv: SourceInvoice,
    s: TenantSettings,
    refs: Refs,
    *,
    customer: SourceCustomer,
    items: Mapping[str, SourceItem],
    discount_item: QbRef | str | None = None,
) -> Invoice:
    """InvoiceAdd record (T3).

    ``discount_item`` is the Desktop *Discount* item that carries the invoice discount (Desktop has no discount
    field; the caller creates/looks up that item, e.g. "qbsync Discount"). The discount is sent as a fixed negative
    ``Amount`` (also for percentages, described as such) because a percentage discount item only applies to the
    line right above it. Required when the invoice has a discount (configuration issue otherwise).

    ``RefNumber`` is limited to 11 characters: a longer ``doc_number`` is refused, never truncated (it is how the
    invoice is found again).
    """
    tax = s.sales_tax.enabled
    exempt = qbd_exempt_code(s) if tax else None
    lines: list[InvoiceLine] = []
    taxable_lines = 0
    for index, line in enumerate(inv.lines):
        item = source_item(items, line.item_id, index)
        taxable = line_taxable(item, customer)
        taxable_lines += taxable
        class_name = line_class(line.class_name, s)
        lines.append(
            InvoiceLine(
                item=_qbd_ref(item_ref(refs, line.item_id, index)),
                description=_qbd_text(f"lines[{index}].description", line.description, 4095, multiline=True)
                if line.description
                else None,
                quantity=line.quantity,
                rate=line.rate,
                amount=line.line_amount,
                class_ref=_qbd_text(f"lines[{index}].class_name", class_name, 159) if class_name else None,
                service_date=line.service_date,
                sales_tax_code=(QBD_TAXABLE_CODE if taxable else exempt) if tax else None,
            )
        )
    check_tax_amount(inv, customer, s, taxable_lines)
    if inv.discount is not None:
        if discount_item is None:
            raise MappingConfigurationError(
                "discount_item",
                "the invoice has a discount; set settings.discount_item to a Discount item of the company file",
            )
        discount_ref = discount_item if isinstance(discount_item, str) else _qbd_ref(discount_item)
        description = discount_description(inv)
        lines.append(
            InvoiceLine(
                item=discount_ref,
                description=_qbd_text("discount.description", description, 4095, multiline=True)
                if description
                else None,
                amount=-inv.discount_amount,
                # Tax is on the lines before the discount, as on QBO (ApplyTaxAfterDiscount false).
                sales_tax_code=exempt if tax else None,
            )
        )

    ref_number = None
    if inv.doc_number:
        ref_number = _qbd_text("doc_number", inv.doc_number, QBD_REF_NUMBER_LIMIT)
    terms = invoice_terms(inv, customer, s)
    class_name = header_class(inv, s)
    item_sales_tax = None
    customer_code = None
    if tax:
        # Without a sales tax item QuickBooks uses the customer's own one.
        tax_item = inv.tax_code or s.sales_tax.default_tax_item
        if tax_item:
            field = "tax_code" if inv.tax_code else "settings.sales_tax.default_tax_item"
            item_sales_tax = _qbd_text(field, tax_item, 31)
        if customer.tax_exempt:
            customer_code = exempt
    return Invoice(
        customer=_qbd_ref(refs.customer),
        class_ref=_qbd_text("class_name", class_name, 159) if class_name else None,
        ar_account=_qbd_text("settings.ar_account", s.ar_account, 159) if s.ar_account else None,
        txn_date=inv.date,
        ref_number=ref_number,
        terms=_qbd_text(terms[1], terms[0], QBD_TERMS_LIMIT) if terms else None,
        due_date=inv.due_date,
        item_sales_tax=item_sales_tax,
        memo=_qbd_text("memo", inv.memo, 4095, multiline=True) if inv.memo else None,
        customer_sales_tax_code=customer_code,
        lines=tuple(lines),
    )


# --------------------------------------------------------------------------------------------------- payments


def qbd_payment(
    p: SourcePayment,
    s: TenantSettings,
    refs: Refs,
    *,
    payment_methods: Mapping[str, str] | None = None,
) -> ReceivePayment:
    """ReceivePaymentAdd record (T4): applied to each invoice's TxnID; an invoice not in QuickBooks is refused.

    ``payment_methods`` maps source method → Desktop payment method name; when ``None`` no method is sent, when
    given an unknown method is a configuration issue.
    """
    applied = tuple(
        AppliedTo(txn_id=invoice_ref(refs, a.invoice_id, index), payment_amount=a.amount)
        for index, a in enumerate(p.applied_to)
    )
    method = None
    if p.method and payment_methods is not None:
        if p.method not in payment_methods:
            raise MappingConfigurationError("method", f"payment method {p.method!r} is not mapped to QuickBooks")
        method = _qbd_text("method", payment_methods[p.method], 31)
    return ReceivePayment(
        customer=_qbd_ref(refs.customer),
        ar_account=_qbd_text("settings.ar_account", s.ar_account, 159) if s.ar_account else None,
        txn_date=p.date,
        ref_number=_qbd_text("reference", p.reference, 20) if p.reference else None,
        total_amount=p.amount,
        payment_method=method,
        memo=_qbd_text("memo", p.memo, 4095, multiline=True) if p.memo else None,
        applied_to=applied,
    )


def qbd_preflight(kind: str, record: Any, s: TenantSettings) -> None:
    """What QuickBooks Desktop would refuse in the record itself (names and their limits, characters a name
    cannot hold, reference numbers), checked when the record is posted for a Desktop connector, so it is refused
    at once instead of failing later. References and the tenant's configuration are checked at sync time."""
    try:
        if kind == "customers":
            qbd_customer(record, s, creating=True)
        elif kind == "items":
            qbd_item_name(record, s)
        elif kind == "invoices" and record.doc_number:
            _qbd_text("doc_number", record.doc_number, QBD_REF_NUMBER_LIMIT)
        elif kind == "payments" and record.reference:
            _qbd_text("reference", record.reference, 20)
    except MappingConfigurationError:
        return  # a settings problem, not the record's: reported when the record syncs
