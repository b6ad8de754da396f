"""Stuck jobs (R4): jobs whose response was lost in a conversation that then expired are verified in QuickBooks by
a query before anything is written again: found → done with its ids, absent → written once, ambiguous → an
error for a person, never a duplicate."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from infra.fake_qbd import FakeCompany
from infra.wc_sim import Faults
from qbsync.clock import iso
from qbsync.qbwc.recovery import VERIFY
from qbsync.qbwc.service import Limits
from qbsync.qbwc.sweeper import StuckJobSweeper
from qbsync.qbxml import Invoice, InvoiceLine, Item, ReceivePayment
from tests.qbwc.test_conversation import Env, ValidatingCompany, customer, env  # noqa: F401
from tests.support import serve_api

LATER = 3600.0  # past the conversation's 30-minute expiry


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with serve_api() as base:
        yield f"{base}/qbwc"


def sweeper(env: Env, ahead: float = LATER) -> StuckJobSweeper:  # noqa: F811
    return StuckJobSweeper(env.store, epoch=lambda: time.time() + ahead)


def jobs(env: Env) -> list:  # noqa: F811
    return env.store.jobs.history(env.connector.connector_id)


def setup_company(env: Env, company: FakeCompany) -> None:  # noqa: F811
    env.enqueue("item_add", Item(name="Consulting", income_account="Services", price=Decimal("75.00")))
    assert env.simulator(company).run_update().ok


def invoice(ref: str | None, name: str = "Customer 0000") -> Invoice:
    return Invoice(
        customer=name,
        ref_number=ref,
        txn_date=date(2026, 11, 3),
        lines=(InvoiceLine(item="Consulting", quantity=Decimal(2), rate=Decimal("75.00")),),
    )


def test_writes_lost_with_their_conversation_are_found_by_a_query_not_written_twice(env: Env) -> None:  # noqa: F811
    company = ValidatingCompany()
    setup_company(env, company)
    for i in range(3):
        env.enqueue("customer_add", customer(i))
    env.enqueue("invoice_add", invoice("R-1"))
    env.enqueue("invoice_add", invoice(None, "Customer 0001"))
    dropped = env.simulator(company, faults=Faults(drop_response_after_processing=True)).run_update()
    assert not dropped.ok and company.count("Customer") == 3 and company.count("Invoice") == 2
    # QuickBooks answered other message sets since: its stored response for the lost set is gone, so resending
    # the set with oldMessageSetID would run the writes again.
    company._last_message_set = None

    assert sweeper(env, ahead=60).sweep()["stuck_jobs"] == 0  # the conversation may still be alive: hands off
    swept = sweeper(env).sweep()
    assert swept["stuck_jobs"] == 5 and swept["verifying"] == 5
    waiting = [j for j in jobs(env) if j.status != "done"]
    assert {j.status for j in waiting} == {"queued"} and all(j.result.get(VERIFY) for j in waiting)
    assert sweeper(env).sweep()["stuck_jobs"] == 0  # idempotent

    env.services.web_connector.limits = Limits(busy_seconds=0)
    rerun = env.simulator(company).run_update()
    assert rerun.ok, rerun.summary()
    assert company.invalid == []  # the verification queries are valid qbXML 13.0
    assert company.count("Customer") == 3 and company.count("Invoice") == 2  # nothing written twice
    finished = jobs(env)
    assert {j.status for j in finished} == {"done"}
    for job in finished[1:]:
        assert job.result["recovered"] is True and (job.result.get("list_id") or job.result.get("txn_id"))
    assert finished[4].result["ref_number"] == "R-1"


def test_a_lost_write_that_never_reached_quickbooks_is_written_once(env: Env) -> None:  # noqa: F811
    company = FakeCompany()
    setup_company(env, company)
    seq = env.enqueue("customer_add", customer(7))
    job = env.store.jobs.get(env.connector.connector_id, seq)
    assert job is not None  # as if it had been sent in a set that never reached QuickBooks
    env.store.jobs.save(replace(job, status="sent", message_set_id="lost-set", updated_at=iso_ago(7200)))
    assert sweeper(env, ahead=0).sweep()["verifying"] == 1
    assert env.simulator(company).run_update().ok
    assert company.count("Customer") == 1
    done = env.store.jobs.get(env.connector.connector_id, seq)
    assert done is not None and done.status == "done" and done.result["list_id"] and "recovered" not in done.result


def test_several_candidates_make_an_error_for_a_person_and_nothing_is_written(env: Env) -> None:  # noqa: F811
    company = FakeCompany()
    setup_company(env, company)
    env.enqueue("customer_add", customer(0))
    assert env.simulator(company).run_update().ok
    payment = ReceivePayment(
        customer="Customer 0000", txn_date=date(2026, 11, 6), total_amount=Decimal("150.00"), applied_to=()
    )
    # Three identical payments in one message set whose response is lost with its conversation: each could be
    # any of the three QuickBooks now has.
    seqs = [env.enqueue("receive_payment_add", replace(payment, auto_apply=True)) for _ in range(3)]
    assert not env.simulator(company, faults=Faults(drop_response_after_processing=True)).run_update().ok
    assert company.count("ReceivePayment") == 3
    company._last_message_set = None
    assert sweeper(env).sweep()["verifying"] == 3
    env.services.web_connector.limits = Limits(busy_seconds=0)
    assert env.simulator(company).run_update().ok
    assert company.count("ReceivePayment") == 3  # nothing written again
    for seq in seqs:
        failed = env.store.jobs.get(env.connector.connector_id, seq)
        assert failed is not None and failed.status == "error"
        assert failed.result["status_code"] == "lost_response_ambiguous"
        assert "Check QuickBooks" in failed.result["message"]


def test_kinds_without_a_verification_keep_message_set_recovery(env: Env) -> None:  # noqa: F811
    seq = env.enqueue("customer_query", {"max_returned": 10})
    job = env.store.jobs.get(env.connector.connector_id, seq)
    assert job is not None
    env.store.jobs.save(replace(job, status="sent", message_set_id="lost", updated_at=iso_ago(7200)))
    outcome = sweeper(env, ahead=0).sweep()
    assert outcome["stuck_jobs"] == 1 and outcome["awaiting_recovery"] == 1 and outcome["verifying"] == 0
    still = env.store.jobs.get(env.connector.connector_id, seq)
    assert still is not None and still.status == "sent" and still.message_set_id == "lost"


def iso_ago(seconds: float) -> str:
    from datetime import UTC, datetime, timedelta

    return iso(datetime.now(UTC) - timedelta(seconds=seconds))


def test_a_lost_payment_is_found_by_customer_date_and_amount(env: Env) -> None:  # noqa: F811
    company = FakeCompany()
    setup_company(env, company)
    env.enqueue("customer_add", customer(0))
    env.enqueue("invoice_add", invoice("P-1"))
    assert env.simulator(company).run_update().ok
    txn_id = company.find_invoice("P-1").txn_id  # type: ignore[union-attr]
    from qbsync.qbxml.records import AppliedTo

    seq = env.enqueue(
        "receive_payment_add",
        ReceivePayment(
            customer="Customer 0000",
            txn_date=date(2026, 11, 6),
            total_amount=Decimal("150.00"),
            applied_to=(AppliedTo(txn_id=txn_id, payment_amount=Decimal("150.00")),),
        ),
    )
    assert not env.simulator(company, faults=Faults(drop_response_after_processing=True)).run_update().ok
    company._last_message_set = None
    assert sweeper(env).sweep()["verifying"] == 1
    env.services.web_connector.limits = Limits(busy_seconds=0)
    assert env.simulator(company).run_update().ok
    assert company.count("ReceivePayment") == 1
    found = env.store.jobs.get(env.connector.connector_id, seq)
    assert found is not None and found.status == "done" and found.result["recovered"] is True
    assert found.result["txn_id"] == company.payments()[0].txn_id
