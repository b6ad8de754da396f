"""Timesheets, expense reports and purchase orders to QuickBooks Desktop (T6-T8) through the mappings (M2-M5).

- Timesheet → ``TimeTrackingAdd``: EntityRef = the resource's employee or vendor (M4), CustomerRef / ItemServiceRef
  = the synced customer and service item, PayrollItemWageRef = the payroll category's wage item (M5), ClassRef = the
  line of business's class (M3, when ``use_classes`` is on), BillableStatus from ``billable``.
- Expense report → ``BillAdd`` to the resource's *vendor* (``paid_with: bill``, the default: the company owes the
  person, and QuickBooks Desktop bills are payable to vendors only), or ``CreditCardChargeAdd`` on the tenant's
  ``expense_credit_card_account`` with the resource (employee or vendor) as payee (``paid_with: credit_card``: the
  company card already paid). Each line goes to its category's expense account (M2).
- Purchase order → ``PurchaseOrderAdd`` to the named vendor, or the resource's vendor (M4); lines name synced items.

A missing mapping (or one of the wrong type) is a *configuration issue*: the record is ``blocked`` with the reason
and the action, and the connector's next conversation reports "success with configuration issues". A mapping whose
name QuickBooks does not know (3140 "invalid reference") is reported the same way, as ``mapping_stale``. Fixing the
mapping and re-syncing sends the record; nothing is lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from qbsync.errors import ConcurrentModification
from qbsync.mappings import TARGET_OF, MappingKind, Mappings, MappingTarget, MissingMapping
from qbsync.models import TenantSettings
from qbsync.qbxml.purchasing import (
    Bill,
    CreditCardCharge,
    ExpenseLine,
    PurchaseOrder,
    PurchaseOrderLine,
    TimeTracking,
)
from qbsync.qbxml.records import Ref
from qbsync.store.ports import Connector, Job, Store, SyncRecord
from qbsync.sync import mapping
from qbsync.sync.records import (
    SourceCustomer,
    SourceExpenseReport,
    SourceItem,
    SourcePurchaseOrder,
    SourceTimesheet,
)

KINDS = ("timesheets", "expense_reports", "purchase_orders")
EVENT_ON_SYNC = {
    "timesheets": "timesheet.synced",
    "expense_reports": "expense_report.synced",
    "purchase_orders": "purchase_order.synced",
}
JOB_KINDS = ("time_tracking_add", "bill_add", "credit_card_charge_add", "purchase_order_add")
DISABLED_CODE = "transfer_disabled"
CONFIG_EVENT = "configuration.issue"  # a record blocked by a missing or stale mapping or setting
MAX_PENDING_ISSUES = 50  # configuration issues kept on a connector until its next conversation reports them
# QuickBooks' 3140 message names the list: 'There is an invalid reference to QuickBooks Employee "Bob" in the …'
INVALID_REF = re.compile(r'invalid reference to QuickBooks ([A-Za-z ]+?) "([^"]*)"')
#: The list named in a 3140 message → the mapping kind whose targets live in that list.
LIST_KIND: dict[str, MappingKind] = {
    "Employee": "resources",
    "Vendor": "resources",
    "Entity": "resources",
    "Payee": "resources",
    "Account": "expense_categories",
    "Class": "lines_of_business",
    "Payroll Item": "payroll_categories",
    "Payroll Item Wage": "payroll_categories",
}

Dependency = Callable[[SyncRecord, str, str], SyncRecord]
QueuedOrSynced = Callable[[SyncRecord, list[SyncRecord]], list[int]]


class ConfigurationIssue(Exception):
    """The record cannot go until someone fixes the mappings or settings (not the record)."""

    def __init__(self, code: str, message: str, action: str, **extra: Any) -> None:
        super().__init__(message)
        self.reason = {"code": code, "message": message, "action": action, "configuration_issue": True, **extra}


def _missing(exc: MissingMapping) -> ConfigurationIssue:
    return ConfigurationIssue(
        "mapping_missing",
        exc.detail,
        f"Map it to a QuickBooks {TARGET_OF[exc.kind]} (PUT /v1/mappings/{exc.kind}), then re-sync the record "
        "(POST /v1/records/{kind}/{id}/resync).",
        mapping_kind=exc.kind,
        mapping_key=exc.key,
        field=exc.field,
    )


class Resolver:
    """The mapped QuickBooks names a record needs; every lookup failure becomes a :class:`ConfigurationIssue`."""

    def __init__(self, mappings: Mappings, settings: TenantSettings) -> None:
        self.mappings = mappings
        self.settings = settings

    def target(self, kind: MappingKind, key: str, field: str) -> MappingTarget:
        try:
            return self.mappings.target(kind, key, field=field)
        except MissingMapping as exc:
            raise _missing(exc) from None

    def resource(self, key: str, field: str, *, vendor_only: bool = False) -> tuple[Ref, str]:
        found = self.target("resources", key, field)
        if vendor_only and found.type != "vendor":
            raise ConfigurationIssue(
                "mapping_wrong_type",
                f"{field}: resource {key!r} maps to the QuickBooks {found.type} {found.name!r}; QuickBooks Desktop "
                "bills and purchase orders are payable to vendors only",
                "Map the resource to a vendor (PUT /v1/mappings/resources), or send the expense report with "
                "paid_with: credit_card; then re-sync.",
                mapping_kind="resources",
                mapping_key=key,
                field=field,
            )
        return Ref(full_name=found.name), str(found.type)

    def credit_card_account(self) -> str:
        """The account an expense report ``paid_with: credit_card`` posts to (a setting, not a mapping)."""
        card = self.settings.expense_credit_card_account
        if card is None:
            raise ConfigurationIssue(
                "setting_missing",
                "paid_with: credit_card needs the credit card account the company card posts to",
                'Set it: PATCH /v1/tenant/settings {"expense_credit_card_account": "<QuickBooks account>"}, then '
                "re-sync.",
                setting="expense_credit_card_account",
            )
        return card

    def klass(self, line_of_business: str | None, field: str) -> Ref | None:
        if line_of_business is None or not self.settings.use_classes:
            return None
        return Ref(full_name=self.target("lines_of_business", line_of_business, field).name)


def _ref(qb: mapping.QbRef) -> Ref:
    return Ref(list_id=qb.id) if qb.id else Ref(full_name=qb.name)


def time_tracking(
    ts: SourceTimesheet, resolve: Resolver, *, customer: mapping.QbRef | None, item: mapping.QbRef
) -> Any:
    entity, _ = resolve.resource(ts.resource_id, "resource_id")
    payroll = (
        Ref(full_name=resolve.target("payroll_categories", ts.payroll_category, "payroll_category").name)
        if ts.payroll_category
        else None
    )
    return TimeTracking(
        entity=entity,
        minutes=ts.minutes,
        txn_date=ts.date,
        customer=_ref(customer) if customer else None,
        service_item=_ref(item),
        class_ref=resolve.klass(ts.line_of_business, "line_of_business"),
        payroll_item=payroll,
        notes=mapping._qbd_text("notes", ts.notes, 4095, multiline=True) if ts.notes else None,
        billable_status=("Billable" if ts.billable else "NotBillable") if customer else None,
    )


def expense_report(
    report: SourceExpenseReport, resolve: Resolver, *, customers: dict[str, mapping.QbRef]
) -> tuple[str, Any]:
    lines = []
    for index, line in enumerate(report.lines):
        field = f"lines[{index}]"
        account = resolve.target("expense_categories", line.category, f"{field}.category").name
        customer = customers.get(line.customer_id) if line.customer_id else None
        lines.append(
            ExpenseLine(
                account=Ref(full_name=account),
                amount=line.amount,
                memo=mapping._qbd_text(f"{field}.description", line.description, 4095, multiline=True)
                if line.description
                else None,
                customer=_ref(customer) if customer else None,
                class_ref=resolve.klass(line.line_of_business, f"{field}.line_of_business"),
                billable_status=("Billable" if line.billable else "NotBillable") if customer else None,
            )
        )
    memo = mapping._qbd_text("memo", report.memo, 4095, multiline=True) if report.memo else None
    if report.paid_with == "credit_card":
        card = resolve.credit_card_account()
        payee, _ = resolve.resource(report.resource_id, "resource_id")
        charge = CreditCardCharge(
            account=Ref(full_name=card),
            payee=payee,
            lines=tuple(lines),
            txn_date=report.date,
            ref_number=report.ref_number,
            memo=memo,
        )
        return "credit_card_charge_add", charge
    vendor, _ = resolve.resource(report.resource_id, "resource_id", vendor_only=True)
    ap = resolve.settings.ap_account
    bill = Bill(
        vendor=vendor,
        lines=tuple(lines),
        ap_account=Ref(full_name=ap) if ap else None,
        txn_date=report.date,
        ref_number=report.ref_number,
        memo=memo,
    )
    return "bill_add", bill


def purchase_order(order: SourcePurchaseOrder, resolve: Resolver, *, items: dict[str, mapping.QbRef]) -> Any:
    if order.vendor_resource_id is not None:
        vendor, _ = resolve.resource(order.vendor_resource_id, "vendor_resource_id", vendor_only=True)
    else:
        assert order.vendor is not None
        vendor = Ref(full_name=mapping._qbd_text("vendor", order.vendor, 41))
    return PurchaseOrder(
        vendor=vendor,
        class_ref=resolve.klass(order.line_of_business, "line_of_business"),
        txn_date=order.date,
        ref_number=order.ref_number,
        expected_date=order.expected_date,
        memo=mapping._qbd_text("memo", order.memo, 4095, multiline=True) if order.memo else None,
        lines=tuple(
            PurchaseOrderLine(
                item=_ref(items[line.item_id]),
                quantity=line.quantity,
                rate=line.rate,
                description=mapping._qbd_text(f"lines[{i}].description", line.description, 4095, multiline=True)
                if line.description
                else None,
            )
            for i, line in enumerate(order.lines)
        ),
    )


class DesktopTransfers:
    """The worker's Desktop side for T6-T8: record → (job kind, qbXML record, jobs it waits for)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def enabled(self, record: SyncRecord, connector_id: str) -> Connector | None:
        """The connector when ``record``'s transfer is switched on there; None when it is off (V1 grid)."""
        connector = self.store.connectors.get(record.tenant_id, connector_id)
        if connector is None or record.kind not in connector.enabled_transfers:
            return None
        return connector

    def disabled_reason(self, record: SyncRecord, connector_id: str) -> dict[str, Any]:
        label = record.kind.replace("_", " ")
        return {
            "code": DISABLED_CODE,
            "message": f"The {label} transfer is turned off for connector {connector_id}; the record waits.",
            "action": f"Turn it on (PATCH /v1/connectors/{connector_id} with {record.kind} in enabled_transfers): "
            "waiting records are sent then.",
            "connector_id": connector_id,
            "transfer": record.kind,
        }

    def job(
        self,
        record: SyncRecord,
        settings: TenantSettings,
        dependency: Dependency,
        queued_or_synced: QueuedOrSynced,
    ) -> tuple[str, Any, list[int]]:
        resolve = Resolver(Mappings.load(self.store, record.tenant_id), settings)
        if record.kind == "timesheets":
            ts = SourceTimesheet.model_validate(record.payload)
            item_record = dependency(record, "items", ts.service_item_id)
            customer_record = dependency(record, "customers", ts.customer_id) if ts.customer_id else None
            depends_on = queued_or_synced(record, [r for r in (customer_record, item_record) if r is not None])
            item = SourceItem.model_validate(item_record.payload)
            if item.type != "service":
                raise mapping.MappingError(
                    "service_item_id", f"item {ts.service_item_id!r} is a product; time is tracked on services"
                )
            customer = self._customer_ref(customer_record, settings) if customer_record else None
            entry = time_tracking(
                ts,
                resolve,
                customer=customer,
                item=mapping.QbRef(item_record.qb_id, mapping.qbd_item_name(item, settings)),
            )
            return "time_tracking_add", entry, depends_on
        if record.kind == "expense_reports":
            report = SourceExpenseReport.model_validate(record.payload)
            ids = sorted({line.customer_id for line in report.lines if line.customer_id})
            customer_records = {cid: dependency(record, "customers", cid) for cid in ids}
            depends_on = queued_or_synced(record, list(customer_records.values()))
            kind, body = expense_report(
                report,
                resolve,
                customers={cid: self._customer_ref(r, settings) for cid, r in customer_records.items()},
            )
            return kind, body, depends_on
        if record.kind == "purchase_orders":
            order = SourcePurchaseOrder.model_validate(record.payload)
            item_records = {line.item_id: dependency(record, "items", line.item_id) for line in order.lines}
            depends_on = queued_or_synced(record, list(item_records.values()))
            refs = {
                k: mapping.QbRef(v.qb_id, mapping.qbd_item_name(SourceItem.model_validate(v.payload), settings))
                for k, v in item_records.items()
            }
            return "purchase_order_add", purchase_order(order, resolve, items=refs), depends_on
        raise ValueError(f"not a Desktop transfer kind: {record.kind}")

    @staticmethod
    def _customer_ref(record: SyncRecord, settings: TenantSettings) -> mapping.QbRef:
        customer = SourceCustomer.model_validate(record.payload)
        return mapping.QbRef(record.qb_id, mapping.qbd_customer(customer, settings, creating=True).name)

    # --- QuickBooks' answer ---------------------------------------------------------------------------------

    def stale_mapping(self, record: SyncRecord, job: Job) -> dict[str, Any] | None:
        """The reason for a 3140 "invalid reference" to a list the mappings and settings point into (a stale
        mapping when it names one of the record's mapped targets); None for other answers."""
        if not is_configuration_issue(job):
            return None
        found = INVALID_REF.search(str(job.result.get("message", "")))
        if found is None:
            return None
        kind = LIST_KIND.get(found.group(1).strip())
        name = found.group(2)
        if kind is None:
            return None
        mappings = Mappings.load(self.store, record.tenant_id)
        keys = [key for key in _mapped_keys(record, kind) if (t := mappings.get(kind, key)) and _same(t.name, name)]
        if not keys and _same(str(record.payload.get("vendor") or ""), name):
            return None  # the purchase order's own vendor field: the record is wrong, not the configuration
        if not keys:  # a name from the settings (the credit card or A/P account): a configuration issue too
            return {
                "code": "quickbooks_reference_missing",
                "qb_code": "3140",
                "message": str(job.result.get("message", "")),
                "action": f"Create {name!r} in QuickBooks or correct the setting that names it "
                "(PATCH /v1/tenant/settings), then re-sync the record.",
                "configuration_issue": True,
            }
        return {
            "code": "mapping_stale",
            "qb_code": "3140",
            "message": f"QuickBooks has no {TARGET_OF[kind]} named {name!r}, the {kind} mapping of "
            f"{', '.join(repr(k) for k in keys)}: " + str(job.result.get("message", "")),
            "action": f"Fix the mapping (PUT /v1/mappings/{kind}) or create {name!r} in QuickBooks, then re-sync "
            "the record (POST /v1/records/{kind}/{id}/resync).",
            "configuration_issue": True,
            "mapping_kind": kind,
            "mapping_key": keys[0],
        }

    def note_issue(self, record: SyncRecord, connector_id: str, reason: dict[str, Any]) -> None:
        """Keep the issue on the connector: its next conversation reports "success with configuration issues"."""
        issue = {
            "kind": record.kind,
            "id": record.source_id,
            "code": str(reason.get("code")),
            "message": str(reason.get("message", "")),
        }

        def add(c: Connector) -> Connector:
            kept = [i for i in c.config_issues if (i.get("kind"), i.get("id")) != (issue["kind"], issue["id"])]
            return replace(c, config_issues=[*kept, issue][-MAX_PENDING_ISSUES:])

        for _ in range(8):
            current = self.store.connectors.get(record.tenant_id, connector_id)
            if current is None:
                return
            try:
                self.store.connectors.update(add(current))
                return
            except ConcurrentModification:
                continue


def turned_on(connector_id: str, enabled: list[str]) -> Callable[[dict[str, Any]], bool]:
    """Which waiting records a connector's new ``enabled_transfers`` lets go (for ``IssueService.release``)."""

    def wanted(reason: dict[str, Any]) -> bool:
        return (
            reason.get("code") == DISABLED_CODE
            and reason.get("connector_id") == connector_id
            and reason.get("transfer") in enabled
        )

    return wanted


def _mapped_keys(record: SyncRecord, kind: MappingKind) -> list[str]:
    """The source keys of ``kind`` that ``record`` uses."""
    p = record.payload
    lines = p.get("lines", [])
    keys: list[Any]
    if kind == "resources":
        keys = [p.get("resource_id"), p.get("vendor_resource_id")]
    elif kind == "expense_categories":
        keys = [line.get("category") for line in lines]
    elif kind == "lines_of_business":
        keys = [p.get("line_of_business"), *(line.get("line_of_business") for line in lines)]
    elif kind == "payroll_categories":
        keys = [p.get("payroll_category")]
    else:
        keys = []
    return [str(k) for k in dict.fromkeys(keys) if k]


def _same(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


def is_configuration_issue(job: Job) -> bool:
    """A Desktop transfer answered 3140 for a list that mappings point into (counted per conversation)."""
    if job.kind not in JOB_KINDS or str(job.result.get("status_code", "")) != "3140":
        return False
    found = INVALID_REF.search(str(job.result.get("message", "")))
    return found is not None and found.group(1).strip() in LIST_KIND


__all__ = ["KINDS", "ConfigurationIssue", "DesktopTransfers", "is_configuration_issue"]
