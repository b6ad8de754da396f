"""Typed records handed to the request builders. Plain frozen dataclasses: no I/O, no qbXML knowledge.

Every optional field left ``None`` is simply not emitted (for ``*Mod`` requests that means "unchanged").
Money is ``Decimal``; floats are refused by the builders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to a QuickBooks list element (customer, item, account, class, terms...).

    ``list_id`` wins when both are set (QuickBooks would use ListID anyway; sending both is allowed).
    """

    list_id: str | None = None
    full_name: str | None = None

    def __post_init__(self) -> None:
        if not self.list_id and not self.full_name:
            raise ValueError("Ref needs a list_id or a full_name")

    @classmethod
    def by_id(cls, list_id: str) -> Ref:
        return cls(list_id=list_id)

    @classmethod
    def by_name(cls, full_name: str) -> Ref:
        return cls(full_name=full_name)


#: A plain ``str`` is shorthand for ``Ref(full_name=...)``.
RefLike = Ref | str


@dataclass(frozen=True, slots=True, kw_only=True)
class Address:
    addr1: str | None = None
    addr2: str | None = None
    addr3: str | None = None
    addr4: str | None = None
    addr5: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Customer:
    name: str | None = None  # required for CustomerAdd; optional (rename) for CustomerMod
    is_active: bool | None = None
    parent: RefLike | None = None
    company_name: str | None = None
    salutation: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    last_name: str | None = None
    bill_address: Address | None = None
    ship_address: Address | None = None
    phone: str | None = None
    alt_phone: str | None = None
    fax: str | None = None
    email: str | None = None
    contact: str | None = None
    terms: RefLike | None = None
    sales_tax_code: RefLike | None = None
    item_sales_tax: RefLike | None = None
    resale_number: str | None = None
    account_number: str | None = None
    credit_limit: Decimal | None = None
    notes: str | None = None
    #: CustomerAdd only, qbXML >= 8.0 (dropped for older versions). Lets us find the record by our own GUID.
    external_guid: str | None = None


ItemKind = Literal["service", "non_inventory"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """A service or non-inventory item.

    Without any purchase field the item is "sales or purchase" (``Desc``/``Price``/``AccountRef`` = income
    account). With ``expense_account``/``purchase_*`` it becomes "sales and purchase".
    """

    name: str
    kind: ItemKind = "service"
    income_account: RefLike
    description: str | None = None
    price: Decimal | None = None
    price_percent: Decimal | None = None  # only for "sales or purchase" items
    expense_account: RefLike | None = None
    purchase_description: str | None = None
    purchase_cost: Decimal | None = None
    preferred_vendor: RefLike | None = None
    tax_code: RefLike | None = None
    is_active: bool | None = None
    parent: RefLike | None = None
    manufacturer_part_number: str | None = None  # non-inventory only
    external_guid: str | None = None  # qbXML >= 8.0

    @property
    def is_sales_and_purchase(self) -> bool:
        return any(
            v is not None
            for v in (self.expense_account, self.purchase_description, self.purchase_cost, self.preferred_vendor)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoiceLine:
    """One invoice line. A discount line is just a line whose ``item`` is a Discount item, with a negative
    ``amount`` or a ``rate_percent``."""

    item: RefLike | None = None
    description: str | None = None
    quantity: Decimal | None = None
    rate: Decimal | None = None
    rate_percent: Decimal | None = None
    class_ref: RefLike | None = None
    amount: Decimal | None = None
    service_date: date | None = None
    sales_tax_code: RefLike | None = None
    override_item_account: RefLike | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Invoice:
    customer: RefLike
    class_ref: RefLike | None = None
    ar_account: RefLike | None = None
    template: RefLike | None = None
    txn_date: date | None = None
    ref_number: str | None = None
    bill_address: Address | None = None
    ship_address: Address | None = None
    is_pending: bool | None = None
    po_number: str | None = None
    terms: RefLike | None = None
    due_date: date | None = None
    ship_date: date | None = None
    item_sales_tax: RefLike | None = None
    memo: str | None = None
    customer_msg: RefLike | None = None
    is_to_be_printed: bool | None = None
    is_to_be_emailed: bool | None = None
    customer_sales_tax_code: RefLike | None = None
    other: str | None = None
    external_guid: str | None = None  # qbXML >= 9.0
    lines: tuple[InvoiceLine, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AppliedTo:
    txn_id: str
    payment_amount: Decimal
    discount_amount: Decimal | None = None
    discount_account: RefLike | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceivePayment:
    """Either ``auto_apply=True`` or at least one ``applied_to`` entry (exactly one of the two)."""

    customer: RefLike
    ar_account: RefLike | None = None
    txn_date: date | None = None
    ref_number: str | None = None
    total_amount: Decimal | None = None
    payment_method: RefLike | None = None
    memo: str | None = None
    deposit_to_account: RefLike | None = None
    external_guid: str | None = None  # qbXML >= 9.0
    auto_apply: bool = False
    applied_to: tuple[AppliedTo, ...] = ()


BillableStatus = Literal["Billable", "NotBillable", "HasBeenBilled"]


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalLine:
    side: Literal["debit", "credit"]
    account: RefLike
    amount: Decimal
    memo: str | None = None
    entity: RefLike | None = None
    class_ref: RefLike | None = None
    billable_status: BillableStatus | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalEntry:
    """Debits must equal credits (checked by the builder: QuickBooks would refuse it anyway).

    ``memo`` is the header memo: accepted by the 13.0 XSD but documented by Intuit as "not in QBD" — prefer line
    memos; it is emitted only when set.
    """

    txn_date: date | None = None
    ref_number: str | None = None
    memo: str | None = None
    is_adjustment: bool | None = None
    external_guid: str | None = None  # qbXML >= 9.0
    lines: tuple[JournalLine, ...] = field(default=())
