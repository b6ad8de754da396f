"""Timesheets, expense reports and purchase orders to QuickBooks Online (T6-T8, the QBO equivalents).

- Timesheet → ``TimeActivity`` (``NameOf`` Employee or Vendor from M4, customer, service item, class from M3,
  billable status, hours and minutes). The payroll category (M5) is not sent: the Accounting API has no payroll
  item list to check it against.
- Expense report → ``Bill`` to the resource's vendor (``paid_with: bill``) or ``Purchase`` with ``PaymentType``
  CreditCard on ``expense_credit_card_account`` (``paid_with: credit_card``), account-based lines (M2).
- Purchase order → ``PurchaseOrder`` with item-based lines.

Mapped names are looked up in the company's lists before anything is written: a name QuickBooks does not have is a
``mapping_stale`` configuration issue (the record is blocked with the action), never a failed write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from qbsync.mappings import TARGET_OF, MappingKind
from qbsync.sync import mapping
from qbsync.sync.desktop_transfers import ConfigurationIssue, Resolver
from qbsync.sync.records import SourceExpenseReport, SourcePurchaseOrder, SourceTimesheet

Ids = Callable[[str], Mapping[str, str]]  # QBO entity → name → Id (cached by the worker)
ENTITY = {"timesheets": "TimeActivity", "purchase_orders": "PurchaseOrder"}


def _find(ids: Mapping[str, str], name: str) -> str | None:
    if name in ids:
        return ids[name]
    folded = name.casefold()
    return next((value for key, value in ids.items() if key.casefold() == folded), None)


class QboLookup:
    """Mapped names → QuickBooks Online references, checked against the company's lists."""

    def __init__(self, resolve: Resolver, ids: Ids) -> None:
        self.resolve = resolve
        self.ids = ids

    def mapped(self, kind: MappingKind, key: str, field: str, entity: str) -> dict[str, str]:
        name = self.resolve.target(kind, key, field).name
        found = _find(self.ids(entity), name)
        if found is None:
            raise ConfigurationIssue(
                "mapping_stale",
                f"{field}: {key!r} maps to the {TARGET_OF[kind]} {name!r}, which QuickBooks Online does not have",
                f"Fix the mapping (PUT /v1/mappings/{kind}) or create {name!r} in QuickBooks, then re-sync.",
                mapping_kind=kind,
                mapping_key=key,
                field=field,
            )
        return {"value": found, "name": name}

    def resource(self, key: str, field: str, *, vendor_only: bool = False) -> tuple[str, dict[str, str]]:
        target = self.resolve.target("resources", key, field)
        if vendor_only and target.type != "vendor":
            self.resolve.resource(key, field, vendor_only=True)  # raises the mapping_wrong_type issue
        entity = "Vendor" if target.type == "vendor" else "Employee"
        return entity, self.mapped("resources", key, field, entity)

    def klass(self, line_of_business: str | None, field: str) -> dict[str, str] | None:
        if line_of_business is None or not self.resolve.settings.use_classes:
            return None
        return self.mapped("lines_of_business", line_of_business, field, "Class")

    def setting_account(self, name: str, setting: str) -> dict[str, str]:
        found = _find(self.ids("Account"), name)
        if found is None:
            raise ConfigurationIssue(
                "quickbooks_reference_missing",
                f"{setting}: QuickBooks Online has no account named {name!r}",
                f"Create it in QuickBooks or correct the setting (PATCH /v1/tenant/settings {{{setting!r}: …}}), "
                "then re-sync.",
                setting=setting,
            )
        return {"value": found, "name": name}


def time_activity(ts: SourceTimesheet, look: QboLookup, *, customer: mapping.QbRef | None, item: mapping.QbRef) -> Any:
    entity, person = look.resource(ts.resource_id, "resource_id")
    body: dict[str, Any] = {
        "TxnDate": ts.date.isoformat(),
        "NameOf": entity,
        f"{entity}Ref": person,
        "ItemRef": mapping.qbo_ref(item, "service_item_id"),
        "Hours": ts.minutes // 60,
        "Minutes": ts.minutes % 60,
    }
    if customer is not None:
        body["CustomerRef"] = mapping.qbo_ref(customer, "customer_id")
        body["BillableStatus"] = "Billable" if ts.billable else "NotBillable"
    klass = look.klass(ts.line_of_business, "line_of_business")
    if klass:
        body["ClassRef"] = klass
    if ts.notes:
        body["Description"] = mapping._qbo_text("notes", ts.notes, mapping.QBO_PRIVATE_NOTE_LIMIT)
    return body


def expense(report: SourceExpenseReport, look: QboLookup, *, customers: Mapping[str, mapping.QbRef]) -> tuple[str, Any]:
    lines = []
    for index, line in enumerate(report.lines):
        field = f"lines[{index}]"
        detail: dict[str, Any] = {
            "AccountRef": look.mapped("expense_categories", line.category, f"{field}.category", "Account")
        }
        if line.customer_id:
            detail["CustomerRef"] = mapping.qbo_ref(customers[line.customer_id], f"{field}.customer_id")
            detail["BillableStatus"] = "Billable" if line.billable else "NotBillable"
        klass = look.klass(line.line_of_business, f"{field}.line_of_business")
        if klass:
            detail["ClassRef"] = klass
        entry: dict[str, Any] = {
            "DetailType": "AccountBasedExpenseLineDetail",
            "Amount": line.amount,
            "AccountBasedExpenseLineDetail": detail,
        }
        if line.description:
            entry["Description"] = mapping._qbo_text(f"{field}.description", line.description, 4000)
        lines.append(entry)
    body: dict[str, Any] = {"TxnDate": report.date.isoformat(), "Line": lines}
    if report.ref_number:
        body["DocNumber"] = report.ref_number
    if report.memo:
        body["PrivateNote"] = mapping._qbo_text("memo", report.memo, mapping.QBO_PRIVATE_NOTE_LIMIT)
    settings = look.resolve.settings
    if report.paid_with == "credit_card":
        card = look.resolve.credit_card_account()
        entity, payee = look.resource(report.resource_id, "resource_id")
        body.update(
            {
                "PaymentType": "CreditCard",
                "AccountRef": look.setting_account(card, "expense_credit_card_account"),
                "EntityRef": {**payee, "type": entity},
            }
        )
        return "Purchase", body
    _, vendor = look.resource(report.resource_id, "resource_id", vendor_only=True)
    body["VendorRef"] = vendor
    if settings.ap_account:
        body["APAccountRef"] = look.setting_account(settings.ap_account, "ap_account")
    return "Bill", body


def purchase_order(order: SourcePurchaseOrder, look: QboLookup, *, items: Mapping[str, mapping.QbRef]) -> Any:
    if order.vendor_resource_id is not None:
        _, vendor = look.resource(order.vendor_resource_id, "vendor_resource_id", vendor_only=True)
    else:
        assert order.vendor is not None
        found = _find(look.ids("Vendor"), order.vendor)
        if found is None:
            raise mapping.MappingError("vendor", f"QuickBooks Online has no vendor named {order.vendor!r}")
        vendor = {"value": found, "name": order.vendor}
    lines = []
    for index, line in enumerate(order.lines):
        amount = (line.quantity * line.rate).quantize(Decimal("0.01"))
        entry: dict[str, Any] = {
            "DetailType": "ItemBasedExpenseLineDetail",
            "Amount": amount,
            "ItemBasedExpenseLineDetail": {
                "ItemRef": mapping.qbo_ref(items[line.item_id], f"lines[{index}].item_id"),
                "Qty": line.quantity,
                "UnitPrice": line.rate,
            },
        }
        if line.description:
            entry["Description"] = mapping._qbo_text(f"lines[{index}].description", line.description, 4000)
        lines.append(entry)
    body: dict[str, Any] = {"VendorRef": vendor, "TxnDate": order.date.isoformat(), "Line": lines}
    klass = look.klass(order.line_of_business, "line_of_business")
    if klass:
        body["ClassRef"] = klass
    if order.ref_number:
        body["DocNumber"] = order.ref_number
    if order.expected_date:
        body["ExpectedDate"] = order.expected_date.isoformat()
    if order.memo:
        body["Memo"] = mapping._qbo_text("memo", order.memo, mapping.QBO_PRIVATE_NOTE_LIMIT)
    return body
