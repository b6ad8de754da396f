"""Every fault shape in reference/qbo/errors parses to the right domain error, directly and over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from qbsync.errors import QbsyncError
from qbsync.qbo import errors as qe
from qbsync.qbo.client import QboClient, RetryPolicy
from qbsync.qbo.requestids import request_id
from tests.qbo_client.conftest import reference
from tests.qbo_client.fake_qbo import FakeQbo, Reply

ISSUES = {item["what"]: item for item in reference("errors/issue_thread_error_bodies.json")["items"]}


def _issue(prefix: str) -> Any:
    item = next(v for k, v in ISSUES.items() if k.startswith(prefix))
    return item.get("body") or item.get("body_xml") or item.get("text")


@dataclass
class Case:
    name: str
    status: int
    body: Any
    error: type[qe.QboError]
    code: str
    intuit_code: str
    message: str
    detail: str | None = None
    element: str | None = None


_2020_message, _2020_detail = _issue("2020 Required param").split(" / ")
_6190_text = _issue("6190 Invalid Company Status")

CASES = [
    Case(
        "401 lower-case json",
        401,
        _issue("401 AuthenticationFailed (note"),
        qe.AuthenticationFailed,
        "qbo_authentication_failed",
        "3200",
        "message=AuthenticationFailed; errorCode=003200; statusCode=401",
    ),
    Case(
        "401 malformed bearer",
        401,
        _issue("401 AuthenticationFailed, malformed"),
        qe.AuthenticationFailed,
        "qbo_authentication_failed",
        "3200",
        "message=AuthenticationFailed; errorCode=003200; statusCode=401",
        "Malformed bearer token: too short or too long",
    ),
    Case(
        "403 ApplicationAuthorizationFailed",
        403,
        _issue("403 ApplicationAuthorizationFailed"),
        qe.Forbidden,
        "qbo_forbidden",
        "3100",
        "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
    ),
    Case(
        "403 AuthorizationFailed",
        403,
        _issue("403 AuthorizationFailed"),
        qe.Forbidden,
        "qbo_forbidden",
        "3100",
        "message=AuthorizationFailed; errorCode=003100; statusCode=403",
    ),
    Case(
        "throttle xml in a 403",
        403,
        _issue("ThrottleExceeded returned as XML"),
        qe.Throttled,
        "qbo_throttled",
        "3001",
        "message=ThrottleExceeded; errorCode=003001; statusCode=403",
        "The request limit was reached.  Try again later",
    ),
    Case(
        "throttle xml 429",
        429,
        reference("errors/ruckus_too_many_requests_error.xml"),
        qe.Throttled,
        "qbo_throttled",
        "3001",
        "message=ThrottleExceeded; errorCode=003001; statusCode=429",
        "The request limit was reached.  Try again later",
    ),
    Case(
        "6000 business validation",
        400,
        _issue("6000 business validation"),
        qe.ValidationFault,
        "qbo_validation",
        "6000",
        "A business validation error has occurred while processing your request",
        "Business Validation Error: Unexpected Internal Error. (-30000)",
    ),
    Case(
        "5010 stale", 400, _issue("5010 Stale Object"), qe.StaleObject, "qbo_stale_object", "5010", "Stale Object Error"
    ),
    Case(
        "10100 result set big",
        400,
        _issue("10100 Result Set Big"),
        qe.ResultSetTooBig,
        "qbo_result_too_big",
        "10100",
        "Result Set Big Error",
        "Result Set Big Error : Report too large, please customize",
        "ReportName",
    ),
    Case(
        "6240 bare xml fault",
        400,
        _issue("6240 Duplicate Name"),
        qe.DuplicateName,
        "qbo_duplicate_name",
        "6240",
        "Duplicate Name Exists Error",
    ),
    Case(
        "6240 IntuitResponse xml",
        400,
        reference("errors/ruckus_customer_duplicate_error.xml"),
        qe.DuplicateName,
        "qbo_duplicate_name",
        "6240",
        "Duplicate Name Exists Error",
    ),
    Case(
        "6240 json",
        400,
        reference("errors/ruckus_tax_service_error_dup.json"),
        qe.DuplicateName,
        "qbo_duplicate_name",
        "6240",
        "Duplicate Name Exists Error",
    ),
    Case(
        "multiple errors xml",
        400,
        reference("errors/ruckus_fault_multiple_errors.xml"),
        qe.ValidationFault,
        "qbo_validation",
        "101",
        "Length of the field exceeds 21 chars",
    ),
    Case(
        "2020 required param",
        400,
        {"Fault": {"Error": [{"Message": _2020_message, "Detail": _2020_detail, "code": "2020"}]}},
        qe.ValidationFault,
        "qbo_validation",
        "2020",
        _2020_message,
        _2020_detail,
    ),
    Case(
        "6190 in HTTP 200",
        200,
        {"Fault": {"Error": [{"Message": "Invalid Company Status", "Detail": _6190_text, "code": "6190"}]}},
        qe.CompanyStatusInvalid,
        "qbo_company_status",
        "6190",
        "Invalid Company Status",
        _6190_text,
    ),
    Case(
        "6240 xml in HTTP 200",
        200,
        reference("errors/ruckus_customer_duplicate_error.xml"),
        qe.DuplicateName,
        "qbo_duplicate_name",
        "6240",
        "Duplicate Name Exists Error",
    ),
    Case(
        "610 object not found",
        400,
        reference("examples/batch.examples.json")["examples"][1]["json"]["BatchItemResponse"][1],
        qe.InvalidReference,
        "qbo_invalid_reference",
        "610",
        "Object Not Found",
    ),
    Case(
        "6140 duplicate doc number",
        400,
        {
            "Fault": {
                "Error": [
                    {
                        "Message": "Duplicate Document Number Error",
                        "code": "6140",
                        "Detail": "DocNumber=1001 is assigned to TxnType=Invoice with TxnId=130",
                    }
                ]
            }
        },
        qe.DuplicateDocNumber,
        "qbo_duplicate_doc_number",
        "6140",
        "Duplicate Document Number Error",
    ),
    Case("bare 502", 502, "<html>Bad gateway</html>", qe.ServiceUnavailable, "qbo_unavailable", "", ""),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_parse_and_map(case: Case) -> None:
    error = qe.error_for(qe.parse_fault(case.body), http_status=case.status, intuit_tid="tid-x")
    _check(error, case, "tid-x")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_over_http(case: Case, qbo: FakeQbo, make_client: Callable[..., QboClient]) -> None:
    qbo.default = Reply(case.status, case.body, {"intuit_tid": f"tid-{case.status}"})
    client = make_client(retry=RetryPolicy(throttle_retries=0, server_retries=0))
    with pytest.raises(qe.QboError) as caught:
        client.create("Customer", {"DisplayName": "x"}, request_id=request_id("case", case.name))
    _check(caught.value, case, f"tid-{case.status}")


def _check(error: qe.QboError, case: Case, tid: str) -> None:
    assert type(error) is case.error
    assert isinstance(error, QbsyncError)
    assert error.code == case.code
    assert (error.intuit_code or "") == case.intuit_code
    assert (error.intuit_message or "") == case.message
    if case.detail is not None:
        assert error.intuit_detail == case.detail
    if case.element is not None:
        assert error.intuit_element == case.element
    assert error.intuit_tid == tid
    assert error.http_status == case.status
    assert error.extra["intuit_tid"] == tid


def test_multiple_errors_are_all_kept() -> None:
    error = qe.error_for(qe.parse_fault(reference("errors/ruckus_fault_multiple_errors.xml")), http_status=400)
    assert [f.code for f in error.faults] == ["101", "201"]
    assert error.fault_type == "ValidationFault"
    assert [e["code"] for e in error.extra["intuit_errors"]] == ["101", "201"]


def test_known_code_wins_over_an_earlier_unknown_one() -> None:
    body = {"Fault": {"Error": [{"Message": "odd", "code": "9999"}, {"Message": "Stale", "code": "5010"}]}}
    error = qe.error_for(qe.parse_fault(body), http_status=400)
    assert isinstance(error, qe.StaleObject) and error.intuit_code == "5010" and len(error.faults) == 2


def test_bodies_without_a_fault() -> None:
    assert qe.parse_fault(b'{"Customer": {"Id": "1"}}') is None
    assert qe.parse_fault("not json, not xml") is None
    assert qe.parse_fault("<html><body>502</body></html>") is None
    assert qe.parse_fault('<!DOCTYPE x [<!ENTITY e "boom">]><Fault/>') is None  # hostile XML is refused


def test_throttled_carries_retry_after() -> None:
    parsed = qe.parse_fault(reference("errors/ruckus_too_many_requests_error.xml"))
    assert qe.error_for(parsed, http_status=429, retry_after=12).retry_after == 12.0  # type: ignore[attr-defined]
    assert qe.error_for(None, http_status=429).retry_after == 60.0  # type: ignore[attr-defined]
