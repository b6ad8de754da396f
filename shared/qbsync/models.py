"""Validation models shared by the REST API (request bodies, responses, OpenAPI) and the use cases.

Every model forbids unknown fields and is strict about types, so ``{"create_invoices": "yes"}`` or a misspelled
field is rejected with the field named instead of being silently coerced or ignored.
"""

from __future__ import annotations

import string
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticValidationError

from qbsync.errors import FieldError, ValidationFailed

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)


def no_control_chars(value: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must not contain control characters")
    return value


# A QuickBooks list name: QBD account full names go up to 159 characters (31 per segment, ':'-separated).
QbName = Annotated[str, StringConstraints(min_length=1, max_length=159), AfterValidator(no_control_chars)]
DisplayName = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(no_control_chars)]

ITEM_NAME_FIELDS = frozenset({"name", "sku", "code", "description"})


def _item_name_template(value: str) -> str:
    no_control_chars(value)
    fields = []
    try:
        for _literal, field_name, format_spec, conversion in string.Formatter().parse(value):
            if field_name is None:
                continue
            if format_spec or conversion or field_name not in ITEM_NAME_FIELDS:
                allowed = ", ".join("{" + f + "}" for f in sorted(ITEM_NAME_FIELDS))
                raise ValueError(f"unknown placeholder {{{field_name}}}; allowed: {allowed}")
            fields.append(field_name)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    if not fields:
        raise ValueError("must contain at least one placeholder such as {name} or {sku}")
    return value


ItemNameTemplate = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(_item_name_template)]


class SalesTaxSettings(StrictModel):
    """S4: how sales tax is applied. Names must match QuickBooks (QBO TaxCode / QBD item sales tax)."""

    enabled: bool = False
    default_tax_code: QbName | None = Field(None, description="Tax code for taxable lines (QBO US: TAX).")
    default_tax_item: QbName | None = Field(
        None, description="QBD item sales tax / QBO non-US tax rate applied when a customer has none."
    )
    customer_override: bool = Field(True, description="A customer's own tax code wins over the default.")
    exempt_tax_code: QbName = Field("NON", description="Code for tax-exempt items; exempt items are never taxed.")


class TenantSettings(StrictModel):
    """Integration settings (FEATURES S1-S6). Every field has a default, so ``{}`` is a valid configuration."""

    mode: Literal["full", "summarized"] = Field("full", description="S1: Full Synchronization or Summarized JE.")
    summarized_period: Literal["daily", "weekly", "monthly"] = "monthly"
    summarized_grace_hours: int = Field(
        2, ge=0, le=168, description="S1: hours after a period's last day before its journal entry is posted."
    )
    default_terms: QbName | None = Field(None, description="S2: terms used when the customer has none.")
    ar_account: QbName | None = None
    ap_account: QbName | None = None
    income_account: QbName | None = Field(None, description="Income account for items qbsync creates.")
    expense_account: QbName | None = Field(None, description="Expense account for items qbsync creates.")
    journal_debit_account: QbName | None = Field(None, description="Balancing debit account in summarized mode.")
    create_invoices: bool = True
    auto_create_customers: bool = False
    auto_create_items: bool = False
    use_classes: bool = Field(False, description="S3: line of business → class.")
    allow_class_override: bool = Field(False, description="S3: per-line class overrides.")
    sales_tax: SalesTaxSettings = Field(default_factory=SalesTaxSettings)
    customer_address: Literal["on_create", "always"] = Field(
        "on_create", description="S5: write the address only when the QB customer is created, or on every update."
    )
    connector_lockout_attempts: int = Field(
        5, ge=1, le=100, description="C2: failed Web Connector logins that lock a connector until it is unlocked."
    )
    discount_item: QbName | None = Field(
        None,
        description="QuickBooks Desktop: the Discount item that carries invoice discounts (Desktop invoices have no "
        "discount field). QuickBooks Online uses its own discount line.",
    )
    expense_credit_card_account: QbName | None = Field(
        None,
        description="T7: the credit card account of expense reports paid with the company card (paid_with: "
        "credit_card); reports paid with: bill go to the resource's vendor (M4) instead.",
    )
    item_name_template: ItemNameTemplate = Field(
        "{name}", description="S6: name of items qbsync creates; placeholders {name} {sku} {code} {description}."
    )


class TenantCreateRequest(StrictModel):
    name: DisplayName
    settings: TenantSettings | None = None


class TenantAdminPatch(StrictModel):
    name: DisplayName | None = None
    status: Literal["active", "inactive"] | None = None


class TenantView(StrictModel):
    tenant_id: str
    name: str
    status: Literal["active", "inactive"]
    settings: TenantSettings
    created_at: str
    updated_at: str


class TenantCreated(TenantView):
    api_key: str = Field(description="Shown once. qbsync keeps only a salted hash of it.")


class TenantList(StrictModel):
    items: list[TenantView]
    cursor: str | None = None


class Health(StrictModel):
    status: Literal["ok"]
    version: str
    stage: str


class Problem(BaseModel):
    """RFC 9457 problem details, plus a stable ``code`` and, for validation errors, the failing fields."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    errors: list[dict[str, str]] | None = None


def field_errors(exc: PydanticValidationError, prefix: str = "") -> list[FieldError]:
    errors = []
    for item in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in item["loc"]) or "body"
        if prefix:
            loc = f"{prefix}.{loc}" if loc != "body" else prefix
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        errors.append(FieldError(loc, message))
    return errors


def validate_model(model: type[M], data: Any, *, prefix: str = "") -> M:
    """``model.model_validate`` that raises our ``ValidationFailed`` naming every bad field."""
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise ValidationFailed(field_errors(exc, prefix)) from None


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396 JSON merge patch: objects merge recursively, ``null`` removes (restoring the default)."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge_patch(result[key], value)
        else:
            result[key] = value
    return result
