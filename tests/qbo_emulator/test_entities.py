"""CRUD, business rules and response shapes of the v3 entity endpoints."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from infra.qbo_emulator import DUPLICATE_DOC_NUMBER_CODE
from tests.qbo_emulator.conftest import Api, fault_error, reference_example

NS = {"i": "http://schema.intuit.com/finance/v3"}


def _service_item(api: Api, name: str = "Consulting") -> dict[str, Any]:
    return api.create("Item", {"Name": name, "Type": "Service", "IncomeAccountRef": {"value": "1"}, "UnitPrice": 100})


def _invoice(api: Api, customer: str, item: str, amounts: list[float], **extra: Any) -> dict[str, Any]:
    lines = [
        {"Amount": a, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": item}}}
        for a in amounts
    ]
    return api.create("Invoice", {"CustomerRef": {"value": customer}, "Line": lines, **extra})


def test_companyinfo_and_preferences(api: Api) -> None:
    info = api.get("companyinfo/1").json()
    assert set(info) == {"CompanyInfo", "time"}
    assert info["CompanyInfo"]["CompanyName"] == "Test Co"
    queried = api.query("SELECT * FROM CompanyInfo").json()
    assert queried["QueryResponse"]["CompanyInfo"][0]["Id"] == "1"
    prefs = api.get("preferences").json()
    reference = reference_example("preferences.examples.json", "Preferences")
    assert set(prefs) == set(reference)
    assert "SalesFormsPrefs" in prefs["Preferences"]


def test_customer_create_read_sparse_update_and_stale(api: Api) -> None:
    reference = reference_example("customer.examples.json", "Customer")
    response = api.post("customer", {"DisplayName": "ABC Corporation", "PrimaryPhone": {"FreeFormNumber": "1"}})
    assert response.status_code == 200
    assert response.headers["intuit_tid"]
    body = response.json()
    assert set(body) == set(reference)
    customer = body["Customer"]
    assert customer["SyncToken"] == "0"
    assert set(reference["Customer"]) - set(customer) <= {"CompanyName", "GivenName", "FamilyName", "PrimaryEmailAddr",
                                                            "BillAddr"}  # fmt: skip
    assert set(customer["MetaData"]) == {"CreateTime", "LastUpdatedTime"}
    read = api.get(f"customer/{customer['Id']}").json()["Customer"]
    assert read == customer
    updated = api.create(
        "Customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True, "CompanyName": "ABC Corp"}
    )
    assert updated["SyncToken"] == "1"
    assert updated["PrimaryPhone"] == {"FreeFormNumber": "1"}  # sparse keeps untouched fields
    stale = api.post("customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True, "Notes": "x"})
    assert stale.status_code == 400
    error = fault_error(stale)
    assert error["code"] == "5010"
    assert error["Message"] == "Stale Object Error"
    full = api.create("Customer", {"Id": customer["Id"], "SyncToken": "1", "DisplayName": "ABC Corporation"})
    assert "PrimaryPhone" not in full  # a full update clears omitted fields
    missing = api.get("customer/999")
    assert fault_error(missing)["code"] == "610"


def test_display_name_unique_across_customer_vendor_employee(api: Api) -> None:
    api.create("Customer", {"DisplayName": "Acme"})
    for entity in ("customer", "vendor", "employee"):
        response = api.post(entity, {"DisplayName": "acme "})
        assert response.status_code == 400
        assert fault_error(response)["code"] == "6240"
    employee = api.create("Employee", {"GivenName": "Ada", "FamilyName": "Lovelace"})
    assert employee["DisplayName"] == "Ada Lovelace"
    assert fault_error(api.post("customer", {"Notes": "no name"}))["code"] == "2020"


def test_item_rules(api: Api) -> None:
    reference = reference_example("item.examples.json", "Item")
    item = api.post("item", {"Name": "Consulting", "Type": "Service", "IncomeAccountRef": {"value": "1"}}).json()
    assert set(item) == set(reference)
    assert item["Item"]["IncomeAccountRef"]["name"] == "Services"
    assert (
        fault_error(api.post("item", {"Name": "CONSULTING", "Type": "Service", "IncomeAccountRef": {"value": "1"}}))[
            "code"
        ]
        == "6240"
    )
    assert fault_error(api.post("item", {"Name": "Widget", "Type": "Service"}))["code"] == "2020"
    bad_ref = api.post("item", {"Name": "Widget", "Type": "Service", "IncomeAccountRef": {"value": "999"}})
    assert fault_error(bad_ref)["code"] == "2500"


def test_invoice_totals_references_and_doc_numbers(api: Api) -> None:
    reference = reference_example("invoice.examples.json", "Invoice")
    customer = api.create("Customer", {"DisplayName": "Buyer"})
    item = _service_item(api)
    ref = {"ItemRef": {"value": item["Id"]}}
    lines = [
        {"Amount": 100.0, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": ref},
        {"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {**ref, "Qty": 3, "UnitPrice": 12.5}},
    ]
    response = api.post("invoice", {"CustomerRef": {"value": customer["Id"]}, "Line": lines})
    assert response.status_code == 200, response.text
    assert set(response.json()) == set(reference)
    invoice = response.json()["Invoice"]
    assert invoice["TotalAmt"] == 137.5
    assert invoice["Balance"] == 137.5
    assert invoice["DocNumber"] == "1001"
    assert invoice["Line"][-1]["DetailType"] == "SubTotalLineDetail"
    assert invoice["CustomerRef"]["name"] == "Buyer"
    assert api.get(f"customer/{customer['Id']}").json()["Customer"]["Balance"] == 137.5

    bad = api.post("invoice", {"CustomerRef": {"value": "424242"}, "Line": invoice["Line"][:1]})
    assert fault_error(bad)["code"] == "2500"
    assert fault_error(api.post("invoice", {"CustomerRef": {"value": customer["Id"]}}))["code"] == "2020"

    duplicate = api.post(
        "invoice", {"CustomerRef": {"value": customer["Id"]}, "Line": invoice["Line"][:1], "DocNumber": "1001"}
    )
    error = fault_error(duplicate)
    assert error["code"] == DUPLICATE_DOC_NUMBER_CODE
    assert f"TxnId={invoice['Id']}" in error["Detail"]
    allowed = api.post(
        "invoice",
        {"CustomerRef": {"value": customer["Id"]}, "Line": invoice["Line"][:1], "DocNumber": "1001"},
        include="allowduplicatedocnum",
    )
    assert allowed.status_code == 200
    api.emu.company(api.realm).reject_duplicate_doc_numbers = False
    _invoice(api, customer["Id"], item["Id"], [5], DocNumber="1001")


def test_payment_applies_to_invoice_balance(api: Api) -> None:
    reference = reference_example("payment.examples.json", "Payment")
    customer = api.create("Customer", {"DisplayName": "Payer"})
    item = _service_item(api)
    invoice = _invoice(api, customer["Id"], item["Id"], [60, 40])
    link = [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]
    response = api.post(
        "payment",
        {"CustomerRef": {"value": customer["Id"]}, "TotalAmt": 70, "Line": [{"Amount": 70, "LinkedTxn": link}]},
    )
    assert response.status_code == 200, response.text
    assert set(response.json()) == set(reference)
    assert response.json()["Payment"]["UnappliedAmt"] == 0
    after = api.get(f"invoice/{invoice['Id']}").json()["Invoice"]
    assert after["Balance"] == 30
    assert after["SyncToken"] == "1"  # linking a payment modifies the invoice
    assert {"TxnId": response.json()["Payment"]["Id"], "TxnType": "Payment"} in after["LinkedTxn"]
    over = api.post(
        "payment",
        {"CustomerRef": {"value": customer["Id"]}, "TotalAmt": 31, "Line": [{"Amount": 31, "LinkedTxn": link}]},
    )
    assert fault_error(over)["code"] == "6000"
    api.create(
        "Payment",
        {"CustomerRef": {"value": customer["Id"]}, "TotalAmt": 30, "Line": [{"Amount": 30, "LinkedTxn": link}]},
    )
    assert api.get(f"invoice/{invoice['Id']}").json()["Invoice"]["Balance"] == 0
    paid = api.query(f"SELECT * FROM Invoice WHERE Balance = '0' AND CustomerRef = '{customer['Id']}'").json()
    assert [i["Id"] for i in paid["QueryResponse"]["Invoice"]] == [invoice["Id"]]
    # an invoice with payments cannot be deleted
    current = api.get(f"invoice/{invoice['Id']}").json()["Invoice"]
    blocked = api.post("invoice", {"Id": invoice["Id"], "SyncToken": current["SyncToken"]}, operation="delete")
    assert fault_error(blocked)["code"] == "6000"


def test_journal_entry_must_balance(api: Api) -> None:
    reference = reference_example("journalentry.examples.json", "JournalEntry")

    def line(posting: str, amount: float, account: str = "8") -> dict[str, Any]:
        detail = {"PostingType": posting, "AccountRef": {"value": account}}
        return {"Amount": amount, "DetailType": "JournalEntryLineDetail", "JournalEntryLineDetail": detail}

    ok = api.post("journalentry", {"Line": [line("Debit", 25.54), line("Credit", 25.54, "6")]})
    assert ok.status_code == 200, ok.text
    assert set(ok.json()) == set(reference)
    unbalanced = api.post("journalentry", {"Line": [line("Debit", 25.54), line("Credit", 25.00, "6")]})
    assert fault_error(unbalanced)["code"] == "6000"
    receivable = api.post("journalentry", {"Line": [line("Debit", 10, "3"), line("Credit", 10, "1")]})
    assert "Accounts Receivable" in fault_error(receivable)["Detail"]


def test_class_term_account_taxcode(api: Api) -> None:
    klass = api.create("Class", {"Name": "East"})
    sub = api.create("Class", {"Name": "Boston", "ParentRef": {"value": klass["Id"]}})
    assert sub["FullyQualifiedName"] == "East:Boston"
    assert api.create("Term", {"Name": "Net 45", "DueDays": 45})["Type"] == "STANDARD"
    assert api.create("Account", {"Name": "Consulting Income", "AccountType": "Income"})["Classification"] == "Revenue"
    taxcodes = api.query("SELECT * FROM TaxCode WHERE Name IN ('TAX', 'NON')").json()["QueryResponse"]
    assert [t["Id"] for t in taxcodes["TaxCode"]] == ["NON", "TAX"]
    assert fault_error(api.post("taxcode", {"Name": "X"}))["code"] == "500"
    assert fault_error(api.post("customer", {"Id": "1", "SyncToken": "0"}, operation="delete"))["code"] in (
        "500",
        "610",
    )


def test_xml_fault_variant(api: Api) -> None:
    api.create("Customer", {"DisplayName": "Dup"})
    response = api.post("customer", {"DisplayName": "Dup"}, accept="application/xml")
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/xml")
    root = etree.fromstring(response.content)
    error = root.find("i:Fault/i:Error", NS)
    assert error is not None and error.get("code") == "6240"
    assert root.find("i:Fault", NS).get("type") == "ValidationFault"
    assert error.findtext("i:Message", namespaces=NS) == "Duplicate Name Exists Error"
    api.emu.faults.xml_faults = True
    forced = api.post("customer", {"DisplayName": "Dup"})
    assert etree.fromstring(forced.content).find("i:Fault/i:Error", NS).get("code") == "6240"


@pytest.mark.parametrize("void_entity", ["invoice"])
def test_delete_and_void(api: Api, void_entity: str) -> None:
    customer = api.create("Customer", {"DisplayName": "Voidable"})
    item = _service_item(api)
    invoice = _invoice(api, customer["Id"], item["Id"], [10])
    voided = api.post(void_entity, {"Id": invoice["Id"], "SyncToken": "0"}, operation="void").json()["Invoice"]
    assert voided["TotalAmt"] == 0 and voided["Balance"] == 0 and voided["SyncToken"] == "1"
    deleted = api.post("invoice", {"Id": invoice["Id"], "SyncToken": "1"}, operation="delete").json()
    assert deleted["Invoice"] == {"status": "Deleted", "domain": "QBO", "Id": invoice["Id"]}
    assert fault_error(api.get(f"invoice/{invoice['Id']}"))["code"] == "610"


def test_payment_update_and_delete_restore_invoice_balance(api: Api) -> None:
    customer = api.create("Customer", {"DisplayName": "Reverser"})
    item = _service_item(api)
    invoice = _invoice(api, customer["Id"], item["Id"], [100])
    link = [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]
    payment = api.create(
        "Payment",
        {"CustomerRef": {"value": customer["Id"]}, "TotalAmt": 100, "Line": [{"Amount": 100, "LinkedTxn": link}]},
    )
    assert api.get(f"invoice/{invoice['Id']}").json()["Invoice"]["Balance"] == 0
    changed = api.create(
        "Payment",
        {"Id": payment["Id"], "SyncToken": "0", "sparse": True, "Line": [{"Amount": 40, "LinkedTxn": link}]},
    )
    assert changed["UnappliedAmt"] == 60
    assert api.get(f"invoice/{invoice['Id']}").json()["Invoice"]["Balance"] == 60
    assert api.get(f"customer/{customer['Id']}").json()["Customer"]["Balance"] == 0  # 60 owed - 60 unapplied
    api.post("payment", {"Id": payment["Id"], "SyncToken": "1"}, operation="delete")
    restored = api.get(f"invoice/{invoice['Id']}").json()["Invoice"]
    assert restored["Balance"] == 100
    assert restored["LinkedTxn"] == []


def test_company_info_is_read_by_realm_id_as_intuit_documents(api: Api) -> None:
    answer = api.get(f"companyinfo/{api.realm}")
    assert answer.status_code == 200 and answer.json()["CompanyInfo"]["CompanyName"] == "Test Co"
