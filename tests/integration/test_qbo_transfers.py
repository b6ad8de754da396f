"""Timesheets, expense reports and purchase orders to QuickBooks Online (the QBO equivalents of T6-T8) against the
emulator: TimeActivity, Bill, Purchase (credit card) and PurchaseOrder land with the mapped references; a mapped
name the company does not have is a mapping_stale configuration issue, fixed by the mapping and a re-sync."""

from __future__ import annotations

from typing import Any

import pytest

from infra.qbo_emulator import api as emulator_api
from infra.qbo_emulator.errors import QboFault
from qbsync.mappings import MappingPut, MappingService
from qbsync.sync.ingest import BulkSyncService
from tests.integration.test_sync_reliability import World, world  # noqa: F401 - the fixture


def by_name(world: World, entity: str, name: str) -> str:  # noqa: F811
    company = world.emulator.company(world.realm)
    for obj in company.entities[entity].values():
        if name in (obj.get("DisplayName"), obj.get("Name")):
            return str(obj["Id"])
    raise AssertionError(f"no {entity} {name!r}")


def only(world: World, entity: str) -> list[dict[str, Any]]:  # noqa: F811
    return list(world.emulator.company(world.realm).entities[entity].values())


def setup(world: World) -> None:  # noqa: F811
    company = world.emulator.company(world.realm)
    emulator_api.create(company, "Employee", {"DisplayName": "Alice Field"})
    emulator_api.create(company, "Vendor", {"DisplayName": "Bob Contractor"})
    emulator_api.create(company, "Vendor", {"DisplayName": "Parts Inc"})
    emulator_api.create(company, "Account", {"Name": "Travel", "AccountType": "Expense"})
    emulator_api.create(company, "Account", {"Name": "Company Visa", "AccountType": "Credit Card"})
    emulator_api.create(company, "Class", {"Name": "Field Services"})
    world.tenant.settings.update({"use_classes": True, "expense_credit_card_account": "Company Visa"})
    world.tenant = world.store.tenants.update(world.tenant)
    mappings = MappingService(world.store)
    for kind, entries in {
        "resources": {
            "r-alice": {"name": "Alice Field", "type": "employee"},
            "r-bob": {"name": "Bob Contractor", "type": "vendor"},
            "r-gone": {"name": "Left The Company", "type": "employee"},
        },
        "lines_of_business": {"field": {"name": "Field Services"}},
        "expense_categories": {"travel": {"name": "Travel"}},
    }.items():
        mappings.put(world.tenant, kind, MappingPut.model_validate({"entries": entries}))
    world.ingest.accept(world.tenant, "customers", {"id": "c-1", "name": "Acme Ltd", "email": "ap@acme.example"})
    world.ingest.accept(
        world.tenant,
        "items",
        [
            {"id": "svc", "name": "Repair", "sku": "REP", "price": "90"},
            {"id": "widget", "name": "Widget", "sku": "W-1", "price": "4", "type": "product"},
        ],
    )


TIMESHEET = {
    "id": "t-1",
    "date": "2026-11-02",
    "resource_id": "r-alice",
    "customer_id": "c-1",
    "service_item_id": "svc",
    "payroll_category": "regular",  # not sent to QuickBooks Online (no payroll item list in the API)
    "line_of_business": "field",
    "duration": 7.5,
    "billable": True,
}


def test_time_expenses_and_purchase_orders_to_quickbooks_online(world: World) -> None:  # noqa: F811
    setup(world)
    world.ingest.accept(world.tenant, "timesheets", [TIMESHEET, {**TIMESHEET, "id": "t-gone", "resource_id": "r-gone"}])
    world.ingest.accept(
        world.tenant,
        "expense_reports",
        [
            {"id": "e-bill", "date": "2026-11-03", "resource_id": "r-bob", "ref_number": "ER-1",
             "lines": [{"category": "travel", "amount": "120.00", "customer_id": "c-1", "billable": True}]},
            {"id": "e-card", "date": "2026-11-03", "resource_id": "r-alice", "paid_with": "credit_card",
             "lines": [{"category": "travel", "amount": "45.00", "line_of_business": "field"}]},
        ],
    )  # fmt: skip
    world.ingest.accept(
        world.tenant,
        "purchase_orders",
        {"id": "po-1", "date": "2026-11-04", "vendor": "Parts Inc", "ref_number": "PO-1",
         "expected_date": "2026-11-20", "lines": [{"item_id": "widget", "quantity": "2.5", "rate": "4"}]},
    )  # fmt: skip
    world.drain()

    def record(kind: str, source_id: str) -> Any:
        found = world.store.records.get(world.tenant.tenant_id, kind, source_id)
        assert found is not None
        return found

    for kind, source_id in (("timesheets", "t-1"), ("expense_reports", "e-bill"), ("expense_reports", "e-card"),
                            ("purchase_orders", "po-1")):  # fmt: skip
        assert record(kind, source_id).state == "synced", record(kind, source_id).reason

    [activity] = only(world, "TimeActivity")
    assert activity["NameOf"] == "Employee" and activity["EmployeeRef"]["value"] == by_name(
        world, "Employee", "Alice Field"
    )
    assert (activity["Hours"], activity["Minutes"], activity["BillableStatus"]) == (7, 30, "Billable")
    assert activity["ClassRef"]["value"] == by_name(world, "Class", "Field Services")
    assert activity["CustomerRef"]["value"] == record("customers", "c-1").qb_id
    assert activity["ItemRef"]["value"] == record("items", "svc").qb_id
    [bill] = only(world, "Bill")
    assert bill["VendorRef"]["value"] == by_name(world, "Vendor", "Bob Contractor") and bill["TotalAmt"] == 120
    detail = bill["Line"][0]["AccountBasedExpenseLineDetail"]
    assert detail["AccountRef"]["value"] == by_name(world, "Account", "Travel")
    assert detail["CustomerRef"]["value"] == record("customers", "c-1").qb_id and detail["BillableStatus"] == "Billable"
    [purchase] = only(world, "Purchase")
    assert purchase["PaymentType"] == "CreditCard"
    assert purchase["AccountRef"]["value"] == by_name(world, "Account", "Company Visa")
    assert purchase["EntityRef"] == {"value": by_name(world, "Employee", "Alice Field"), "name": "Alice Field",
                                     "type": "Employee"}  # fmt: skip
    [order] = only(world, "PurchaseOrder")
    assert order["VendorRef"]["value"] == by_name(world, "Vendor", "Parts Inc") and order["TotalAmt"] == 10
    line = order["Line"][0]["ItemBasedExpenseLineDetail"]
    assert line["ItemRef"]["value"] == record("items", "widget").qb_id and line["Qty"] == 2.5
    assert order["ExpectedDate"] == "2026-11-20" and order["DocNumber"] == "PO-1"

    # A mapping naming someone QuickBooks Online does not have: blocked as mapping_stale, then fixed.
    gone = record("timesheets", "t-gone")
    assert gone.state == "blocked" and gone.reason["code"] == "mapping_stale"
    assert gone.reason["mapping_key"] == "r-gone" and "PUT /v1/mappings/resources" in gone.reason["action"]
    assert len(only(world, "TimeActivity")) == 1
    MappingService(world.store).put(
        world.tenant,
        "resources",
        MappingPut.model_validate({"entries": {"r-gone": {"name": "Bob Contractor", "type": "vendor"}}}),
    )
    BulkSyncService(world.store, world.ingest).resync(world.tenant, "timesheets", "t-gone")
    world.drain()
    assert record("timesheets", "t-gone").state == "synced"
    vendors = [a for a in only(world, "TimeActivity") if a["NameOf"] == "Vendor"]
    assert [a["VendorRef"]["value"] for a in vendors] == [by_name(world, "Vendor", "Bob Contractor")]


def test_the_emulator_refuses_what_quickbooks_online_refuses(world: World) -> None:  # noqa: F811
    company = world.emulator.company(world.realm)
    setup(world)
    travel = by_name(world, "Account", "Travel")
    line = {"DetailType": "AccountBasedExpenseLineDetail", "Amount": 1,
            "AccountBasedExpenseLineDetail": {"AccountRef": {"value": travel}}}  # fmt: skip
    cases = [
        ("TimeActivity", {"NameOf": "Employee", "EmployeeRef": {"value": "999"}, "Hours": 1, "Minutes": 0}, "2500"),
        ("TimeActivity", {"NameOf": "Employee", "EmployeeRef": {"value": by_name(world, "Employee", "Alice Field")},
                          "Hours": 1, "Minutes": 0, "BillableStatus": "Billable"}, "6000"),  # billable, no customer
        ("Bill", {"Line": [line]}, "2020"),  # no VendorRef
        ("Purchase", {"PaymentType": "CreditCard", "AccountRef": {"value": travel}, "Line": [line]}, "6000"),
        ("PurchaseOrder", {"VendorRef": {"value": by_name(world, "Vendor", "Parts Inc")}, "Line": [
            {"DetailType": "ItemBasedExpenseLineDetail", "Amount": 5,
             "ItemBasedExpenseLineDetail": {"ItemRef": {"value": "404"}, "Qty": 2, "UnitPrice": 2}}]}, "2500"),
    ]  # fmt: skip
    for entity, body, code in cases:
        with pytest.raises(QboFault) as refused:
            emulator_api.create(company, entity, body)
        assert refused.value.code == code, (entity, refused.value)
    assert all(not only(world, entity) for entity in ("TimeActivity", "Bill", "Purchase", "PurchaseOrder"))
