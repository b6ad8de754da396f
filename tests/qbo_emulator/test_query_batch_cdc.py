"""The query language subset, batch and change data capture."""

from __future__ import annotations

from typing import Any

from infra.qbo_emulator import QboEmulator
from tests.qbo_emulator.conftest import Api, FakeClock, fault_error, reference_example


def _customers(api: Api, names: list[str]) -> list[dict[str, Any]]:
    return [api.create("Customer", {"DisplayName": name}) for name in names]


def test_query_filters_paging_and_count(api: Api) -> None:
    reference = reference_example("invoice.examples.json", "QueryResponse")
    made = _customers(api, ["Alpha", "Beta", "Gamma", "Alphonse", "Delta"])
    response = api.query("SELECT * FROM Customer WHERE DisplayName = 'Beta'")
    assert set(response.json()) == set(reference)
    page = response.json()["QueryResponse"]
    assert [c["DisplayName"] for c in page["Customer"]] == ["Beta"]
    assert page["startPosition"] == 1 and page["maxResults"] == 1

    like = api.query("select * from customer where DisplayName LIKE 'Alph%' orderby DisplayName desc").json()
    assert [c["DisplayName"] for c in like["QueryResponse"]["Customer"]] == ["Alphonse", "Alpha"]
    ids = f"('{made[0]['Id']}', '{made[2]['Id']}')"
    within = api.query(f"SELECT * FROM Customer WHERE Id IN {ids}").json()["QueryResponse"]["Customer"]
    assert {c["DisplayName"] for c in within} == {"Alpha", "Gamma"}
    paged = api.query("SELECT * FROM Customer ORDERBY Id STARTPOSITION 2 MAXRESULTS 2").json()["QueryResponse"]
    assert [c["DisplayName"] for c in paged["Customer"]] == ["Beta", "Gamma"]
    assert paged["startPosition"] == 2 and paged["maxResults"] == 2
    count = api.query("SELECT COUNT(*) FROM Customer WHERE Active = true").json()["QueryResponse"]
    assert count == {"totalCount": 5}
    empty = api.query("SELECT * FROM Customer WHERE DisplayName = 'Nobody'").json()
    assert empty["QueryResponse"] == {}
    escaped = api.create("Customer", {"DisplayName": "O'Brien"})
    found = api.query("SELECT * FROM Customer WHERE DisplayName = 'O\\'Brien'").json()["QueryResponse"]["Customer"]
    assert found[0]["Id"] == escaped["Id"]


def test_query_by_last_updated_time(clocked_emu: QboEmulator, clock: FakeClock) -> None:
    realm = clocked_emu.add_company()
    api = Api(clocked_emu, realm, clocked_emu.issue_tokens(realm)["access_token"])
    old = api.create("Customer", {"DisplayName": "Old"})
    clock.advance(1800)
    new = api.create("Customer", {"DisplayName": "New"})
    since = old["MetaData"]["LastUpdatedTime"]
    result = api.query(f"SELECT * FROM Customer WHERE MetaData.LastUpdatedTime > '{since}'").json()
    assert [c["Id"] for c in result["QueryResponse"]["Customer"]] == [new["Id"]]


def test_bad_queries_fault_4000(api: Api) -> None:
    for text in ("SELEC * FROM Customer", "SELECT * FROM Nope", "SELECT * FROM Customer WHERE A = 'x' OR B = 'y'", ""):
        response = api.query(text)
        assert response.status_code == 400
        assert fault_error(response)["code"] == "4000", text


def test_batch_shapes_and_item_faults(api: Api) -> None:
    reference = reference_example("batch.examples.json", "BatchItemResponse")
    existing = api.create("Customer", {"DisplayName": "Taken"})
    request = {
        "BatchItemRequest": [
            {"bId": "b1", "operation": "create", "Vendor": {"DisplayName": "Taken"}},
            {"bId": "b2", "operation": "create", "Customer": {"DisplayName": "Fresh"}},
            {"bId": "b3", "operation": "update", "Customer": {"Id": existing["Id"], "SyncToken": "7", "sparse": True}},
            {"bId": "b4", "operation": "delete", "Invoice": {"Id": "129", "SyncToken": "0"}},
            {"bId": "b5", "Query": "SELECT * FROM Customer WHERE DisplayName = 'Taken'"},
        ]
    }
    response = api.post("batch", request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == set(reference)
    items = {item["bId"]: item for item in body["BatchItemResponse"]}
    ref_fault = reference["BatchItemResponse"][0]
    assert set(items["b1"]) == set(ref_fault)
    assert items["b1"]["Fault"]["Error"][0]["code"] == "6240"
    assert set(items["b1"]["Fault"]["Error"][0]) == set(ref_fault["Fault"]["Error"][0])
    assert items["b2"]["Customer"]["DisplayName"] == "Fresh"
    assert items["b3"]["Fault"]["Error"][0]["code"] == "5010"
    assert items["b4"]["Fault"]["Error"][0]["code"] == "610"
    assert items["b5"]["QueryResponse"]["Customer"][0]["Id"] == existing["Id"]
    assert set(reference["BatchItemResponse"][3]) == set(items["b5"])

    too_many = {"BatchItemRequest": [{"bId": str(n), "Query": "SELECT * FROM Item"} for n in range(31)]}
    response = api.post("batch", too_many)
    assert response.status_code == 400
    fault_error(response)


def test_cdc_reports_changes_and_deletions(api: Api) -> None:
    reference = reference_example("cdc.examples.json", "CDCResponse")
    customer = api.create("Customer", {"DisplayName": "Changed"})
    item = api.create("Item", {"Name": "Thing", "Type": "Service", "IncomeAccountRef": {"value": "1"}})
    line = {"Amount": 5, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}}}
    invoice = api.create("Invoice", {"CustomerRef": {"value": customer["Id"]}, "Line": [line]})
    api.post("invoice", {"Id": invoice["Id"], "SyncToken": "0"}, operation="delete")
    since = "2000-01-01T00:00:00-08:00"
    body = api.get("cdc", entities="Customer,Invoice,Payment", changedSince=since).json()
    assert set(body) == set(reference)
    responses = body["CDCResponse"][0]["QueryResponse"]
    assert responses[0]["Customer"][0]["Id"] == customer["Id"]
    deleted = responses[1]["Invoice"][0]
    assert deleted["status"] == "Deleted" and deleted["Id"] == invoice["Id"]
    assert set(deleted) == set(reference["CDCResponse"][0]["QueryResponse"][1]["Estimate"][2])
    assert responses[2] == {}
    future = api.get("cdc", entities="Customer", changedSince="2999-01-01T00:00:00Z").json()
    assert future["CDCResponse"] == [{"QueryResponse": [{}]}]
    assert fault_error(api.get("cdc", entities="TaxCode", changedSince=since))["code"] == "500"


def test_query_variants(api: Api) -> None:
    api.create("Item", {"Name": "Widget", "Type": "Service", "IncomeAccountRef": {"value": "1"}, "Sku": "W-1"})
    response = api.session.post(
        api.url("query"),
        data="SELECT *, Sku FROM Item ORDER BY Name ASC",
        headers={**api.headers(), "Content-Type": "application/text"},
        timeout=10,
    )
    assert response.json()["QueryResponse"]["Item"][0]["Sku"] == "W-1"
    assert fault_error(api.get("customer"))["code"] == "500"  # a read needs an id


def test_customers_are_queried_by_their_email_address(api: Api) -> None:
    api.create("Customer", {"DisplayName": "Mail Match", "PrimaryEmailAddr": {"Address": "match@example.com"}})
    found = api.query("SELECT * FROM Customer WHERE PrimaryEmailAddr = 'match@example.com'").json()
    assert [c["DisplayName"] for c in found["QueryResponse"]["Customer"]] == ["Mail Match"]
