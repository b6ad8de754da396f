"""requestid replay, throttling and fault injection."""

from __future__ import annotations

import threading
import time

import requests
from lxml import etree

from infra.qbo_emulator import QboEmulator
from tests.qbo_emulator.conftest import Api, FakeClock, fault_error

NS = {"i": "http://schema.intuit.com/finance/v3"}


def _api(emu: QboEmulator) -> Api:
    realm = emu.add_company()
    return Api(emu, realm, emu.issue_tokens(realm)["access_token"])


def test_requestid_replays_original_response(api: Api) -> None:
    first = api.post("customer", {"DisplayName": "Once"}, requestid="req-1")
    assert first.status_code == 200
    again = api.post("customer", {"DisplayName": "Once"}, requestid="req-1")
    assert again.status_code == 200
    assert again.content == first.content
    assert len(api.emu.company(api.realm).entities["Customer"]) == 1
    assert api.emu.company(api.realm).counts["replays"] == 1
    # a different requestid is a new request → duplicate name
    assert fault_error(api.post("customer", {"DisplayName": "Once"}, requestid="req-2"))["code"] == "6240"
    # a failed request is not remembered by default: fixing the data and retrying the same requestid works
    retry = api.post("customer", {"DisplayName": "Twice"}, requestid="req-2")
    assert retry.status_code == 200
    # batches are replayed too
    batch = {"BatchItemRequest": [{"bId": "1", "operation": "create", "Customer": {"DisplayName": "Batched"}}]}
    b1 = api.post("batch", batch, requestid="batch-1")
    b2 = api.post("batch", batch, requestid="batch-1")
    assert b1.content == b2.content and "Fault" not in b1.json()["BatchItemResponse"][0]


def test_requestid_is_per_realm(emu: QboEmulator) -> None:
    one, two = _api(emu), _api(emu)
    a = one.post("customer", {"DisplayName": "Same"}, requestid="shared")
    b = two.post("customer", {"DisplayName": "Same"}, requestid="shared")
    assert a.json()["Customer"]["Id"] == b.json()["Customer"]["Id"] == "1"
    assert len(emu.company(two.realm).entities["Customer"]) == 1


def test_fail_after_commit_then_replay_returns_original(api: Api) -> None:
    api.emu.faults.fail_after_commit_5xx = 2
    failed = api.post("customer", {"DisplayName": "Committed"}, requestid="r-commit")
    assert failed.status_code == 500
    assert fault_error(failed)["code"] == "10000"
    assert [c["DisplayName"] for c in api.emu.company(api.realm).entities["Customer"].values()] == ["Committed"]
    replay = api.post("customer", {"DisplayName": "Committed"}, requestid="r-commit")
    assert replay.status_code == 200  # replays are served from the cache and do not consume the fault
    assert replay.json()["Customer"]["DisplayName"] == "Committed"
    second = api.post("customer", {"DisplayName": "Also committed"})
    assert second.status_code == 503
    assert api.emu.faults.fail_after_commit_5xx == 0
    assert api.post("customer", {"DisplayName": "Clean"}).status_code == 200
    assert len(api.emu.company(api.realm).entities["Customer"]) == 3


def test_throttle_429_on_eleventh_request_in_a_second(clocked_emu: QboEmulator, clock: FakeClock) -> None:
    api = _api(clocked_emu)
    clocked_emu.set_limits(per_minute=None, per_second=10, batch_per_minute=None)
    statuses = [api.get("companyinfo/1").status_code for _ in range(11)]
    assert statuses == [200] * 10 + [429]
    throttled = api.get("companyinfo/1")
    root = etree.fromstring(throttled.content)  # XML even though JSON was asked for, as Intuit has done
    error = root.find("i:Fault/i:Error", NS)
    assert error is not None and error.get("code") == "3001"
    assert "ThrottleExceeded" in (error.findtext("i:Message", namespaces=NS) or "")
    assert clocked_emu.company(api.realm).throttled == 2
    assert clocked_emu.throttled == 2
    clock.advance(1.01)
    assert api.get("companyinfo/1").status_code == 200
    clocked_emu.faults.throttle_xml = False
    clocked_emu.set_limits(per_minute=11, per_second=None, batch_per_minute=None)  # 11 accepted so far
    json_throttle = api.get("companyinfo/1")
    assert json_throttle.status_code == 429
    assert fault_error(json_throttle)["code"] == "3001"


def test_limits_are_off_by_default_and_batch_limit(clocked_emu: QboEmulator, clock: FakeClock) -> None:
    api = _api(clocked_emu)
    assert all(api.get("companyinfo/1").status_code == 200 for _ in range(30))
    clocked_emu.set_limits(per_second=None)
    batch = {"BatchItemRequest": [{"bId": "1", "Query": "SELECT * FROM Customer"}]}
    statuses = []
    for _ in range(41):
        statuses.append(api.post("batch", batch).status_code)
        clock.advance(0.5)
    assert statuses == [200] * 40 + [429]
    clock.advance(60)
    assert api.post("batch", batch).status_code == 200


def test_latency_and_concurrency_limit(emu: QboEmulator) -> None:
    api = _api(emu)
    emu.faults.latency_seconds = 0.4
    emu.set_limits(per_minute=None, per_second=None, batch_per_minute=None, concurrent=1)
    results: list[int] = []

    def call() -> None:
        session = requests.Session()
        response = session.get(api.url("companyinfo/1"), headers=api.headers(), timeout=10)
        results.append(response.status_code)

    started = time.monotonic()
    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.1)
    for thread in threads:
        thread.join(timeout=10)
    assert time.monotonic() - started >= 0.3
    assert sorted(results) == [200, 429]


def test_request_log_records_calls(api: Api) -> None:
    api.post("customer", {"DisplayName": "Logged"}, requestid="log-1")
    api.get("customer/1")
    log = api.emu.company(api.realm).request_log
    assert [(e["method"], e["status"]) for e in log] == [("POST", 200), ("GET", 200)]
    assert log[0]["requestid"] == "log-1" and log[0]["minorversion"] == "75"
    assert log[0]["entity"] == "Customer"


def test_fail_next_answers_the_next_calls_with_those_statuses_and_does_nothing(api: Api) -> None:
    api.emu.faults.fail_next = [429, 503, 500]
    statuses = [api.post("customer", {"DisplayName": f"Try {n}"}).status_code for n in range(4)]
    assert statuses == [429, 503, 500, 200]
    company = api.emu.company(api.realm)
    assert [c["DisplayName"] for c in company.entities["Customer"].values() if c["DisplayName"].startswith("Try")] == [
        "Try 3"
    ]
    assert company.counts["injected_faults"] == 3 and not api.emu.faults.fail_next


def test_expire_access_tokens_now_ages_out_issued_tokens_only(emu: QboEmulator) -> None:
    realm = emu.add_company()
    old = Api(emu, realm, emu.issue_tokens(realm)["access_token"])
    assert old.get(f"companyinfo/{realm}").status_code == 200
    assert emu.expire_access_tokens_now() >= 1
    expired = old.get(f"companyinfo/{realm}")
    assert expired.status_code == 401 and "expired" in expired.text.lower()
    fresh = Api(emu, realm, emu.issue_tokens(realm)["access_token"])
    assert fresh.get(f"companyinfo/{realm}").status_code == 200
