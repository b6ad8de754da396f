"""The records a SaaS app pushes (T1-T4): validated strictly, with amounts as exact decimals.

Every record carries the source ``id`` (the SaaS app's own primary key). Amounts have at most two decimal places
(``12.345`` is refused, never rounded); quantities and unit rates may have up to five, as QuickBooks allows.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, model_validator

from qbsync.models import StrictModel, no_control_chars

SourceId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f#]+$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=4000), AfterValidator(no_control_chars)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(no_control_chars)]
Memo = Annotated[str, StringConstraints(max_length=4000)]
# Amounts and dates arrive as JSON strings or numbers: these (only) accept them, exactly, without float rounding.
Money = Annotated[Decimal, Field(max_digits=15, decimal_places=2, strict=False)]
MAX_AMOUNT = Decimal(10) ** 13  # what Money holds (15 digits, 2 of them decimals)
Rate = Annotated[Decimal, Field(max_digits=18, decimal_places=5, strict=False)]
Quantity = Annotated[Decimal, Field(max_digits=18, decimal_places=5, strict=False)]
Day = Annotated[dt.date, Field(strict=False)]
Email = Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class StrictRecord(StrictModel):
    """Unknown fields and wrong types are refused with the field named (amounts and dates excepted, above)."""


class SourceRecord(StrictRecord):
    id: SourceId = Field(description="The SaaS app's own id for the record.")


class Address(StrictRecord):
    line1: ShortText | None = None
    line2: ShortText | None = None
    line3: ShortText | None = None
    city: ShortText | None = None
    state: ShortText | None = None
    postal_code: Annotated[str, StringConstraints(min_length=1, max_length=30)] | None = None
    country: ShortText | None = None


class SourceCustomer(SourceRecord):
    name: ShortText = Field(description="Display name; QuickBooks' customer name.")
    email: Email | None = Field(None, description="Billing email: how customers are matched to QuickBooks (T1).")
    company_name: ShortText | None = None
    first_name: ShortText | None = None
    last_name: ShortText | None = None
    phone: Annotated[str, StringConstraints(max_length=30)] | None = None
    billing_address: Address | None = None
    shipping_address: Address | None = None
    terms: ShortText | None = Field(None, description="QuickBooks terms name; the tenant default applies if empty.")
    tax_exempt: bool = False
    tax_code: ShortText | None = Field(None, description="Customer-specific tax code overriding the default (S4).")
    organization_id: SourceId | None = Field(None, description="Routes to a mapped Desktop connector (C3).")
    notes: Memo | None = None


class SourceItem(SourceRecord):
    name: ShortText
    sku: ShortText | None = Field(None, description="How items are matched to QuickBooks (T2).")
    description: Text | None = None
    price: Rate | None = None
    type: Literal["service", "product"] = "service"
    taxable: bool = Field(True, description="Tax-exempt items are never taxed (S4).")
    income_account: ShortText | None = None
    expense_account: ShortText | None = None
    code: ShortText | None = Field(None, description="Billing code, usable in the item naming template (S6).")


class InvoiceLine(StrictRecord):
    item_id: SourceId
    description: Text | None = None
    quantity: Quantity = Decimal(1)
    rate: Rate
    amount: Money | None = Field(None, description="When given it must equal quantity x rate (to the cent).")
    class_name: ShortText | None = Field(None, description="Per-line class override (S3).")
    service_date: Day | None = None

    @model_validator(mode="after")
    def _amount_matches(self) -> InvoiceLine:
        product = self.quantity * self.rate
        if abs(product) >= MAX_AMOUNT:
            raise ValueError(f"quantity x rate is {product:.2f}; QuickBooks amounts stay below {MAX_AMOUNT:,}")
        computed = product.quantize(Decimal("0.01"))
        if self.amount is not None and self.amount != computed:
            raise ValueError(f"amount {self.amount} is not quantity x rate ({computed})")
        return self

    @property
    def line_amount(self) -> Decimal:
        return self.amount if self.amount is not None else (self.quantity * self.rate).quantize(Decimal("0.01"))


class Discount(StrictRecord):
    description: ShortText | None = None
    amount: Annotated[Money, Field(gt=0)] | None = None
    percent: Annotated[Decimal, Field(gt=0, le=100, decimal_places=4, strict=False)] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Discount:
        if (self.amount is None) == (self.percent is None):
            raise ValueError("give either amount or percent")
        return self


class SourceInvoice(SourceRecord):
    customer_id: SourceId
    doc_number: Annotated[str, StringConstraints(min_length=1, max_length=21)] | None = None
    date: Day
    due_date: Day | None = None
    terms: ShortText | None = None
    class_name: ShortText | None = Field(None, description="Line of business → class (S3).")
    memo: Memo | None = None
    lines: list[InvoiceLine] = Field(min_length=1, max_length=500)
    discount: Discount | None = None
    tax_code: ShortText | None = Field(None, description="Transaction tax code overriding customer and default.")
    tax_amount: Annotated[Money, Field(ge=0)] | None = Field(
        None, description="Sales tax the source computed (checked, not recomputed)."
    )
    total: Money | None = Field(None, description="The source's total: checked before anything is sent.")
    organization_id: SourceId | None = None

    @property
    def subtotal(self) -> Decimal:
        return sum((line.line_amount for line in self.lines), Decimal("0.00"))

    @property
    def discount_amount(self) -> Decimal:
        if self.discount is None:
            return Decimal("0.00")
        if self.discount.amount is not None:
            return self.discount.amount
        assert self.discount.percent is not None
        return (self.subtotal * self.discount.percent / 100).quantize(Decimal("0.01"))

    @property
    def expected_total(self) -> Decimal:
        return self.subtotal - self.discount_amount + (self.tax_amount or Decimal("0.00"))

    @model_validator(mode="after")
    def _total_matches(self) -> SourceInvoice:
        # Lines may be negative (a credit line on an invoice, as QuickBooks allows); the invoice may not.
        if self.subtotal < 0:
            raise ValueError(f"the lines add up to {self.subtotal}; an invoice cannot be negative (send a credit memo)")
        if self.total is not None and self.total != self.expected_total:
            raise ValueError(f"total {self.total} does not match lines - discount + tax ({self.expected_total})")
        if self.discount_amount > self.subtotal:
            raise ValueError("the discount is larger than the invoice")
        return self


class PaymentApplication(StrictRecord):
    invoice_id: SourceId
    amount: Annotated[Money, Field(gt=0)]


class SourcePayment(SourceRecord):
    customer_id: SourceId
    date: Day
    amount: Annotated[Money, Field(gt=0)]
    method: ShortText | None = None
    reference: Annotated[str, StringConstraints(min_length=1, max_length=20)] | None = None
    memo: Memo | None = None
    applied_to: list[PaymentApplication] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _applications_fit(self) -> SourcePayment:
        applied = sum((a.amount for a in self.applied_to), Decimal("0.00"))
        if applied != self.amount:
            raise ValueError(f"applied amounts ({applied}) must add up to the payment amount ({self.amount})")
        if len({a.invoice_id for a in self.applied_to}) != len(self.applied_to):
            raise ValueError("an invoice appears twice in applied_to")
        return self


# --- time and purchasing (T6-T8): QuickBooks Desktop time tracking, bills / credit-card charges, purchase orders

_DURATION_RE = re.compile(r"^PT(?:(\d{1,3})H)?(?:(\d{1,4})M)?(?:(\d{1,5})S)?$")
MAX_TIMESHEET_HOURS = Decimal(168)


def _duration(value: object) -> Decimal:
    """Hours as a number (``7.5``, ``"7.5"``) or an ISO-8601 duration (``"PT7H30M"``) → hours, exactly."""
    if isinstance(value, bool):
        raise ValueError("give hours (7.5) or an ISO-8601 duration (PT7H30M)")
    if isinstance(value, str) and value.strip().upper().startswith("P"):
        match = _DURATION_RE.match(value.strip().upper())
        if match is None or not any(match.groups()):
            raise ValueError(f"{value!r} is not an ISO-8601 duration such as PT7H30M")
        hours, minutes, seconds = (int(g or 0) for g in match.groups())
        return Decimal(hours) + Decimal(minutes) / 60 + Decimal(seconds) / 3600
    if isinstance(value, int | str | Decimal):
        try:
            return Decimal(str(value).strip())
        except ArithmeticError:
            raise ValueError(f"{value!r} is not a number of hours") from None
    if isinstance(value, float):
        return Decimal(str(value))
    raise ValueError("give hours (7.5) or an ISO-8601 duration (PT7H30M)")


class SourceTimesheet(SourceRecord):
    """T6: one time entry → QuickBooks Desktop TimeTrackingAdd."""

    date: Day
    resource_id: SourceId = Field(description="Who worked: mapped to a QuickBooks employee or vendor (M4).")
    customer_id: SourceId | None = Field(None, description="The customer (a record sent to /v1/customers).")
    service_item_id: SourceId = Field(description="The service worked on (a record sent to /v1/items).")
    payroll_category: ShortText | None = Field(None, description="Mapped to a payroll wage item (M5).")
    line_of_business: ShortText | None = Field(None, description="Mapped to a class (M3).")
    duration: Annotated[Decimal, BeforeValidator(_duration), Field(strict=False)] = Field(
        description="Hours (7.5) or an ISO-8601 duration (PT7H30M); stored as hours."
    )
    billable: bool = False
    notes: Memo | None = None
    organization_id: SourceId | None = None

    @model_validator(mode="after")
    def _checks(self) -> SourceTimesheet:
        if not Decimal(0) < self.duration <= MAX_TIMESHEET_HOURS:
            raise ValueError(f"duration must be more than 0 and at most {MAX_TIMESHEET_HOURS} hours")
        if self.minutes < 1:
            raise ValueError("duration must be at least one minute")
        if self.billable and not self.customer_id:
            raise ValueError("a billable timesheet needs a customer_id")
        return self

    @property
    def minutes(self) -> int:
        """QuickBooks keeps time in whole minutes: rounded half-up."""
        seconds = (self.duration * 3600).quantize(Decimal(1))  # exact for ISO durations (hours + s/3600)
        return int((seconds / 60).quantize(Decimal(1), rounding="ROUND_HALF_UP"))


class ExpenseLine(StrictRecord):
    category: ShortText = Field(description="Expense category: mapped to an expense account (M2).")
    amount: Annotated[Money, Field(gt=0)]
    description: Memo | None = None
    customer_id: SourceId | None = None
    billable: bool = False
    line_of_business: ShortText | None = Field(None, description="Mapped to a class (M3).")

    @model_validator(mode="after")
    def _billable_needs_customer(self) -> ExpenseLine:
        if self.billable and not self.customer_id:
            raise ValueError("a billable expense needs a customer_id")
        return self


class SourceExpenseReport(SourceRecord):
    """T7: an expense report → a bill to the resource's vendor (``paid_with: bill``, the default: the company
    owes the person) or a credit-card charge on the tenant's ``expense_credit_card_account`` (``credit_card``:
    the company card already paid)."""

    date: Day
    resource_id: SourceId = Field(description="Who spent: mapped to a QuickBooks vendor (M4; bills need a vendor).")
    paid_with: Literal["bill", "credit_card"] = "bill"
    ref_number: Annotated[str, StringConstraints(min_length=1, max_length=11)] | None = None
    memo: Memo | None = None
    lines: list[ExpenseLine] = Field(min_length=1, max_length=200)
    organization_id: SourceId | None = None

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))


class PurchaseOrderLine(StrictRecord):
    item_id: SourceId
    quantity: Annotated[Quantity, Field(gt=0)]
    rate: Rate
    description: Text | None = None


class SourcePurchaseOrder(SourceRecord):
    """T8: a purchase order → PurchaseOrderAdd. The vendor is a QuickBooks vendor name, or a resource (M4)."""

    date: Day
    vendor: ShortText | None = Field(None, description="The QuickBooks vendor's name.")
    vendor_resource_id: SourceId | None = Field(None, description="…or a resource mapped to a vendor (M4).")
    expected_date: Day | None = None
    ref_number: Annotated[str, StringConstraints(min_length=1, max_length=11)] | None = None
    line_of_business: ShortText | None = Field(None, description="Mapped to a class (M3).")
    memo: Memo | None = None
    lines: list[PurchaseOrderLine] = Field(min_length=1, max_length=500)
    organization_id: SourceId | None = None

    @model_validator(mode="after")
    def _one_vendor(self) -> SourcePurchaseOrder:
        if (self.vendor is None) == (self.vendor_resource_id is None):
            raise ValueError("give either vendor or vendor_resource_id")
        return self


RecordKind = Literal["customers", "items", "invoices", "payments", "timesheets", "expense_reports", "purchase_orders"]
RECORD_MODELS: dict[str, type[SourceRecord]] = {
    "customers": SourceCustomer,
    "items": SourceItem,
    "invoices": SourceInvoice,
    "payments": SourcePayment,
    "timesheets": SourceTimesheet,
    "expense_reports": SourceExpenseReport,
    "purchase_orders": SourcePurchaseOrder,
}
