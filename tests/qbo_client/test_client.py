"""QboClient against a scripted fake QBO on 127.0.0.1: CRUD, 5010 retry, paging, batch, CDC, retries, logging."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from qbsync.qbo import errors as qe
from qbsync.qbo.client import BatchItem, QboClient, RetryPolicy
from qbsync.qbo.limiter import MemoryRealmLimiter, RealmBudget
from qbsync.qbo.requestids import derive, request_id
from tests.qbo_client.conftest import REALM, FakeTime, FakeTokens, reference
from tests.qbo_client.fake_qbo import FakeQbo, Reply, Seen

RID = request_id("tenant-1", REALM, "Customer", "src-42", "v1")


def _customer(cid: str = "58", sync: str = "0", **fields: Any) -> dict[str, Any]:
    return {"Customer": {"Id": cid, "SyncToken": sync, "DisplayName": "ABC Corporation", **fields}, "time": "x"}


def _fault(code: str, message: str, detail: str = "", ftype: str = "ValidationFault") -> dict[str, Any]:
    return {"Fault": {"Error": [{"Message": message, "Detail": detail, "code": code, "element": ""}], "type": ftype}}


STALE = _fault("5010", "Stale Object Error", "Stale Object Error : You and root were working on this at the same time.")


# --- basic calls ---------------------------------------------------------------------------------------------------


def test_create_sends_json_minorversion_requestid_and_bearer(qbo: FakeQbo, client: QboClient) -> None:
    qbo.push(Reply(200, _customer()))
    created = client.create("Customer", {"DisplayName": "ABC Corporation"}, request_id=RID)
    assert created["Id"] == "58"
    (seen,) = qbo.seen
    assert (seen.method, seen.path) == ("POST", f"/v3/company/{REALM}/customer")
    assert seen.param("minorversion") == "75"
    assert seen.param("requestid") == RID
    assert seen.headers["Accept"] == "application/json"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Authorization"] == "Bearer tok-secret-1"
    assert seen.json() == {"DisplayName": "ABC Corporation"}


def test_read_company_info_and_preferences(qbo: FakeQbo, client: QboClient) -> None:
    prefs = reference("examples/preferences.examples.json")["examples"][0]["json"]
    qbo.push(
        Reply(200, _customer("7", "3")),
        Reply(200, {"CompanyInfo": {"CompanyName": "Sandbox Co", "Id": "1"}}),
        Reply(200, prefs),
    )
    assert client.read("Customer", "7")["SyncToken"] == "3"
    assert client.company_info()["CompanyName"] == "Sandbox Co"
    assert client.preferences()["AccountingInfoPrefs"]["FirstMonthOfFiscalYear"] == "January"
    assert [(s.method, s.path) for s in qbo.seen] == [
        ("GET", f"/v3/company/{REALM}/customer/7"),
        ("GET", f"/v3/company/{REALM}/companyinfo/{REALM}"),
        ("GET", f"/v3/company/{REALM}/preferences"),
    ]
    assert all(s.param("requestid") is None and s.param("minorversion") == "75" for s in qbo.seen)


def test_sparse_update_retries_once_on_stale_sync_token(qbo: FakeQbo, client: QboClient) -> None:
    qbo.push(Reply(400, STALE), Reply(200, _customer("58", "4")), Reply(200, _customer("58", "5", Notes="hi")))
    updated = client.sparse_update("Customer", "58", "2", {"Notes": "hi"}, request_id=RID)
    assert updated["SyncToken"] == "5"
    first, reread, retry = qbo.seen
    assert first.json() == {"Notes": "hi", "Id": "58", "SyncToken": "2", "sparse": True}
    assert (reread.method, reread.path) == ("GET", f"/v3/company/{REALM}/customer/58")
    assert retry.json() == {"Notes": "hi", "Id": "58", "SyncToken": "4", "sparse": True}
    assert first.param("requestid") == RID
    assert retry.param("requestid") == derive(RID, "stale", "4") != RID


def test_sparse_update_gives_up_after_one_stale_retry(qbo: FakeQbo, client: QboClient) -> None:
    qbo.push(Reply(400, STALE), Reply(200, _customer("58", "4")), Reply(400, STALE))
    with pytest.raises(qe.StaleObject) as caught:
        client.sparse_update("Customer", "58", "2", {"Notes": "hi"}, request_id=RID)
    assert caught.value.intuit_code == "5010"
    assert len(qbo.seen) == 3


def test_delete(qbo: FakeQbo, client: QboClient) -> None:
    qbo.push(Reply(200, {"Invoice": {"status": "Deleted", "domain": "QBO", "Id": "129"}}))
    assert client.delete("Invoice", "129", "0", request_id=RID)["status"] == "Deleted"
    (seen,) = qbo.seen
    assert seen.param("operation") == "delete" and seen.json() == {"Id": "129", "SyncToken": "0"}


# --- query paging --------------------------------------------------------------------------------------------------

_PAGE = re.compile(r"^SELECT \* FROM (\w+)(?: WHERE (.+?))? STARTPOSITION (\d+) MAXRESULTS (\d+)$")


def _paging_server(total: int) -> Callable[[Seen], Reply]:
    def reply(seen: Seen) -> Reply:
        match = _PAGE.match(seen.param("query") or "")
        assert match, seen.param("query")
        entity, _, start, size = match.group(1), match.group(2), int(match.group(3)), int(match.group(4))
        assert size <= 1000
        rows = [{"Id": str(i)} for i in range(start, min(start + size - 1, total) + 1)]
        page: dict[str, Any] = {"startPosition": start, "maxResults": len(rows)} if rows else {}
        if rows:
            page[entity] = rows
        return Reply(200, {"QueryResponse": page, "time": "t"})

    return reply


def test_query_all_pages_2500_records_in_3_pages(qbo: FakeQbo, client: QboClient) -> None:
    qbo.default = _paging_server(2500)
    rows = client.query_all("Customer", "Active = true")
    assert len(rows) == 2500 and len({r["Id"] for r in rows}) == 2500
    queries = [s.param("query") for s in qbo.seen]
    assert queries == [
        "SELECT * FROM Customer WHERE Active = true STARTPOSITION 1 MAXRESULTS 1000",
        "SELECT * FROM Customer WHERE Active = true STARTPOSITION 1001 MAXRESULTS 1000",
        "SELECT * FROM Customer WHERE Active = true STARTPOSITION 2001 MAXRESULTS 1000",
    ]


def test_query_all_exact_multiple_ends_on_empty_page_and_is_bounded(qbo: FakeQbo, client: QboClient) -> None:
    qbo.default = _paging_server(2000)
    assert len(client.query_all("Item", page_size=1000)) == 2000
    assert len(qbo.seen) == 3
    qbo.default = _paging_server(10**9)
    with pytest.raises(qe.ResultSetTooBig):
        client.query_all("Item", page_size=10, max_pages=4)
    with pytest.raises(ValueError):
        client.query_all("Item", page_size=1001)


# --- batch ---------------------------------------------------------------------------------------------------------


def test_batch_maps_each_item_to_entity_query_or_domain_error(qbo: FakeQbo, client: QboClient) -> None:
    response = reference("examples/batch.examples.json")["examples"][1]["json"]
    qbo.push(Reply(200, response, {"intuit_tid": "tid-batch"}))
    batch_rid = request_id("tenant-1", REALM, "batch-7", length=36)
    results = client.batch(
        [
            BatchItem.create("bid1", "Vendor", {"DisplayName": "Smith Family Store"}),
            BatchItem.delete("bid2", "Invoice", "129", "0"),
            BatchItem.sparse_update("bid3", "SalesReceipt", "11", "0", {"PrivateNote": "A private note."}),
            BatchItem.select("bid4", "select * from SalesReceipt where TotalAmt > '300.00'"),
        ],
        request_id=batch_rid,
    )
    (seen,) = qbo.seen
    assert seen.path.endswith("/batch") and seen.param("requestid") == batch_rid and len(batch_rid) <= 36
    sent = seen.json()["BatchItemRequest"]
    assert sent[0] == {"bId": "bid1", "operation": "create", "Vendor": {"DisplayName": "Smith Family Store"}}
    assert sent[2]["SalesReceipt"]["sparse"] is True and sent[3] == {"bId": "bid4", "Query": sent[3]["Query"]}
    assert [type(r.error) for r in results[:3]] == [qe.DuplicateName, qe.InvalidReference, qe.StaleObject]
    assert [r.error.intuit_code for r in results[:3] if r.error] == ["6240", "610", "5010"]
    assert results[3].ok and results[3].query_response is not None
    assert results[3].query_response["SalesReceipt"][0]["Id"] == "11"


def test_batch_with_success_and_fault_in_any_order(qbo: FakeQbo, client: QboClient) -> None:
    qbo.push(Reply(200, reference("errors/python-quickbooks_batch_fault_example.json")))
    results = client.batch(
        [
            BatchItem.create("1", "Customer", {"DisplayName": "a"}),
            BatchItem.create("2", "Customer", {"DisplayName": "b"}),
        ],
        request_id="0123456789abcdef0123456789abcdef0123",
    )
    assert isinstance(results[0].error, qe.DuplicateName) and results[0].error.code == "qbo_duplicate_name"
    assert results[1].ok and results[1].entity_name == "Customer" and results[1].entity == {"Id": 164}


def test_batch_limits(client: QboClient) -> None:
    item = BatchItem.create("b", "Customer", {"DisplayName": "x"})
    with pytest.raises(ValueError, match="1-30"):
        client.batch([BatchItem.create(f"b{i}", "Customer", {}) for i in range(31)], request_id="r")
    with pytest.raises(ValueError, match="bId"):
        client.batch([BatchItem.create("b" * 11, "Customer", {})], request_id="r")
    with pytest.raises(ValueError, match="requestid"):
        client.batch([item], request_id="r" * 37)
    with pytest.raises(ValueError, match="request_id"):
        client.batch([item])
    with pytest.raises(ValueError, match="unique"):
        client.batch([item, item], request_id="r")


# --- CDC -----------------------------------------------------------------------------------------------------------


def test_cdc_flattens_entities_and_keeps_deleted(qbo: FakeQbo, client: QboClient) -> None:
    qbo.push(Reply(200, reference("examples/cdc.examples.json")["examples"][1]["json"]))
    since = datetime(2015, 12, 22, 12, 0, tzinfo=UTC)
    changes = client.cdc(["Customer", "Estimate", "Invoice"], since)
    assert [c["Id"] for c in changes["Customer"]] == ["63", "99"]
    assert changes["Estimate"][2] == {**changes["Estimate"][2], "status": "Deleted", "Id": "979"}
    assert changes["Invoice"] == []
    (seen,) = qbo.seen
    assert seen.path.endswith("/cdc")
    assert seen.param("entities") == "Customer,Estimate,Invoice"
    assert seen.param("changedSince") == "2015-12-22T12:00:00+00:00"


def test_cdc_no_changes(qbo: FakeQbo, client: QboClient) -> None:
    qbo.push(Reply(200, reference("examples/cdc_guide.examples.json")["examples"][1]["json"]))
    assert client.cdc(["Customer"], "2015-12-22T12:00:00Z") == {"Customer": []}
    with pytest.raises(ValueError):
        client.cdc(["Customer"], datetime(2015, 12, 22))  # naive


# --- retries -------------------------------------------------------------------------------------------------------

THROTTLE_XML = reference("errors/ruckus_too_many_requests_error.xml")


def test_429_then_success_resends_the_same_request_after_retry_after(
    qbo: FakeQbo, client: QboClient, fake_time: FakeTime
) -> None:
    qbo.push(Reply(429, THROTTLE_XML, {"Retry-After": "7", "intuit_tid": "tid-429"}), Reply(200, _customer()))
    assert client.create("Customer", {"DisplayName": "x"}, request_id=RID)["Id"] == "58"
    first, second = qbo.seen
    assert first.param("requestid") == second.param("requestid") == RID
    assert first.body == second.body
    assert fake_time.sleeps == [7.0]


def test_429_without_retry_after_uses_bounded_backoff_then_raises_throttled(
    qbo: FakeQbo, make_client: Callable[..., QboClient], fake_time: FakeTime
) -> None:
    qbo.default = Reply(429, THROTTLE_XML, {"intuit_tid": "tid-429"})
    client = make_client(retry=RetryPolicy(throttle_retries=3, backoff_base=2.0, backoff_cap=5.0))
    with pytest.raises(qe.Throttled) as caught:
        client.create("Customer", {"DisplayName": "x"}, request_id=RID)
    assert len(qbo.seen) == 4 and {s.param("requestid") for s in qbo.seen} == {RID}
    assert fake_time.sleeps == [1.5, 3.0, 3.75]  # equal jitter at rng=0.5: steps 2, 4, 5 (capped)
    error = caught.value
    assert error.retry_after == 60.0 and error.intuit_code == "3001" and error.intuit_tid == "tid-429"
    assert error.code == "qbo_throttled" and error.retryable


def test_429_with_a_retry_after_beyond_the_sleep_budget_raises_at_once(
    qbo: FakeQbo, make_client: Callable[..., QboClient], fake_time: FakeTime
) -> None:
    qbo.default = Reply(429, THROTTLE_XML, {"Retry-After": "120"})
    with pytest.raises(qe.Throttled) as caught:
        make_client(retry=RetryPolicy(max_total_sleep=30)).read("Customer", "1")
    assert caught.value.retry_after == 120.0 and fake_time.sleeps == [] and len(qbo.seen) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_then_success_resends_the_same_requestid(
    qbo: FakeQbo, client: QboClient, fake_time: FakeTime, status: int
) -> None:
    qbo.push(Reply(status, "<html>oops</html>"), Reply(status, {}), Reply(200, _customer()))
    client.create("Customer", {"DisplayName": "x"}, request_id=RID)
    assert [s.param("requestid") for s in qbo.seen] == [RID] * 3
    assert len(fake_time.sleeps) == 2


def test_5xx_forever_raises_service_unavailable(qbo: FakeQbo, client: QboClient) -> None:
    qbo.default = Reply(503, {}, {"intuit_tid": "tid-503"})
    with pytest.raises(qe.ServiceUnavailable) as caught:
        client.create("Customer", {"DisplayName": "x"}, request_id=RID)
    assert caught.value.http_status == 503 and caught.value.intuit_tid == "tid-503"
    assert len(qbo.seen) == 1 + RetryPolicy().server_retries


class _FlakyAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if self.failures:
            self.failures -= 1
            raise requests.ConnectionError("connection reset by peer")
        return super().send(request, *args, **kwargs)


def test_connection_error_on_a_write_is_retried_with_the_same_requestid(
    qbo: FakeQbo, make_client: Callable[..., QboClient]
) -> None:
    session = requests.Session()
    session.mount("http://", _FlakyAdapter(failures=2))
    qbo.push(Reply(200, _customer()))
    assert make_client(session=session).create("Customer", {"DisplayName": "x"}, request_id=RID)["Id"] == "58"
    assert [s.param("requestid") for s in qbo.seen] == [RID]  # the two failed attempts never reached the server


def test_401_refreshes_once_then_succeeds(qbo: FakeQbo, client: QboClient, tokens: FakeTokens) -> None:
    body_401 = reference("errors/issue_thread_error_bodies.json")["items"][0]["body"]
    qbo.push(Reply(401, body_401), Reply(200, _customer()))
    client.read("Customer", "58")
    assert tokens.refreshes == 1
    assert [s.headers["Authorization"] for s in qbo.seen] == ["Bearer tok-secret-1", "Bearer tok-secret-2"]


def test_401_twice_raises_authentication_failed(qbo: FakeQbo, client: QboClient, tokens: FakeTokens) -> None:
    body_401 = reference("errors/issue_thread_error_bodies.json")["items"][1]["body"]
    qbo.default = Reply(401, body_401, {"intuit_tid": "tid-401"})
    with pytest.raises(qe.AuthenticationFailed) as caught:
        client.create("Customer", {"DisplayName": "x"}, request_id=RID)
    assert tokens.refreshes == 1 and len(qbo.seen) == 2
    assert caught.value.intuit_detail == "Malformed bearer token: too short or too long"
    assert caught.value.code == "qbo_authentication_failed"


def test_fault_inside_http_200_is_an_error(qbo: FakeQbo, client: QboClient) -> None:
    body = _fault("6190", "Invalid Company Status", "Subscription period has ended or cancelled", "ValidationFault")
    qbo.push(Reply(200, body, {"intuit_tid": "tid-200"}))
    with pytest.raises(qe.CompanyStatusInvalid) as caught:
        client.create("Invoice", {"Line": []}, request_id=RID)
    assert caught.value.http_status == 200 and caught.value.intuit_tid == "tid-200"


def test_limiter_is_asked_before_every_attempt(qbo: FakeQbo, make_client: Callable[..., QboClient]) -> None:
    calls: list[tuple[str, bool]] = []

    class Recording:
        def acquire(self, realm_id: str, *, batch: bool = False) -> None:
            calls.append((realm_id, batch))

    qbo.push(Reply(503, {}), Reply(200, _customer()), Reply(200, {"BatchItemResponse": []}))
    client = make_client(limiter=Recording())
    client.read("Customer", "1")
    client.batch([BatchItem.select("q", "select * from Customer")])
    assert calls == [(REALM, False), (REALM, False), (REALM, True)]


# --- logging -------------------------------------------------------------------------------------------------------


def test_errors_are_logged_with_intuit_tid_and_without_tokens(
    qbo: FakeQbo, client: QboClient, log_output: io.StringIO
) -> None:
    body_401 = reference("errors/issue_thread_error_bodies.json")["items"][0]["body"]
    qbo.push(
        Reply(401, body_401, {"intuit_tid": "tid-auth-1"}),
        Reply(
            400,
            _fault("6240", "Duplicate Name Exists Error", "The name supplied already exists."),
            {"intuit_tid": "tid-dup-2"},
        ),
    )
    with pytest.raises(qe.DuplicateName):
        client.create("Customer", {"DisplayName": "x"}, request_id=RID)
    output = log_output.getvalue()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert {line.get("intuit_tid") for line in lines} >= {"tid-auth-1", "tid-dup-2"}
    final = next(line for line in lines if line.get("intuit_tid") == "tid-dup-2")
    assert final["intuit_code"] == "6240" and final["requestid"] == RID and final["error_code"] == "qbo_duplicate_name"
    assert final["intuit_detail"] == "The name supplied already exists."
    assert "tok-secret" not in output and "Bearer" not in output


def test_an_exhausted_realm_budget_is_logged_and_raised_without_calling_qbo(
    qbo: FakeQbo, make_client: Callable[..., QboClient], fake_time: FakeTime, log_output: io.StringIO
) -> None:
    limiter = MemoryRealmLimiter(RealmBudget(per_second=1), max_wait=0, clock=fake_time.clock, sleep=fake_time.sleep)
    qbo.default = Reply(200, _customer())
    client = make_client(limiter=limiter)
    client.read("Customer", "1")
    with pytest.raises(qe.RealmBudgetExhausted):
        client.create("Customer", {"DisplayName": "x"}, request_id=RID)
    assert len(qbo.seen) == 1
    assert '"error_code":"qbo_realm_budget_exhausted"' in log_output.getvalue().replace(" ", "")
