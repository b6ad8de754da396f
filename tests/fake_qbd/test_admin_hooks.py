"""The fake company's admin hooks (what a user does in QuickBooks itself) and the queries reconciliation uses:
InvoiceQuery with ModifiedDateRangeFilter + PaidStatus + linked payments, ReceivePaymentQuery, TxnDeletedQuery."""

from __future__ import annotations

from decimal import Decimal

import pytest

from infra.fake_qbd import FakeCompany
from tests.fake_qbd.test_company import customer_add, invoice_add, item_add, run, status


@pytest.fixture
def company() -> FakeCompany:
    company = FakeCompany()
    run(company, customer_add("Acme"), item_add("Consulting"))
    run(company, invoice_add("Acme", ("Consulting", "1", "100.00"), ref="A-1", rid="a"))
    run(company, invoice_add("Acme", ("Consulting", "1", "40.00"), ref="A-2", rid="b"))
    return company


def test_paying_and_deleting_show_in_the_reconciliation_queries(company: FakeCompany) -> None:
    before = run(company, '<InvoiceQueryRq requestID="x"><PaidStatus>PaidOnly</PaidStatus></InvoiceQueryRq>')
    assert status(before[0])[0] == 1  # nothing paid yet
    payment = company.pay_invoice("A-1", amount="60.00", txn_date="2026-11-10", ref_number="CHK-9")
    company.pay_invoice("A-1", txn_date="2026-11-12")  # the rest
    assert company.find_invoice("A-1").is_paid  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        company.pay_invoice("A-2", amount="41.00")  # more than is owed
    [paid] = run(
        company,
        '<InvoiceQueryRq requestID="p"><ModifiedDateRangeFilter>'
        "<FromModifiedDate>2020-01-01T00:00:00</FromModifiedDate></ModifiedDateRangeFilter><PaidStatus>PaidOnly</PaidStatus><IncludeLinkedTxns>true</IncludeLinkedTxns>"
        "</InvoiceQueryRq>",
    )
    [ret] = paid.findall("InvoiceRet")
    assert ret.findtext("RefNumber") == "A-1" and ret.findtext("IsPaid") == "true"
    links = [(lt.findtext("TxnDate"), lt.findtext("Amount")) for lt in ret.findall("LinkedTxn")]
    assert links == [("2026-11-10", "-60.00"), ("2026-11-12", "-40.00")]
    [payments] = run(
        company, '<ReceivePaymentQueryRq requestID="r"><MaxReturned>10</MaxReturned></ReceivePaymentQueryRq>'
    )
    first = payments.findall("ReceivePaymentRet")[0]
    assert first.findtext("RefNumber") == "CHK-9" and first.findtext("AppliedToTxnRet/Amount") == "60.00"

    with pytest.raises(ValueError):
        company.delete_transaction(company.find_invoice("A-1").txn_id)  # type: ignore[union-attr]  (paid)
    a2 = company.find_invoice("A-2").txn_id  # type: ignore[union-attr]
    company.delete_transaction(a2)
    company.delete_transaction(payment.txn_id)
    assert company.find_invoice("A-1").balance_remaining == Decimal("60.00")  # type: ignore[union-attr]
    query = (
        '<TxnDeletedQueryRq requestID="d"><TxnDelType>Invoice</TxnDelType><TxnDelType>ReceivePayment</TxnDelType>'
        "<DeletedDateRangeFilter><FromDeletedDate>2020-01-01T00:00:00</FromDeletedDate></DeletedDateRangeFilter>"
        "</TxnDeletedQueryRq>"
    )
    [deleted] = run(company, query)
    found = {(r.findtext("TxnDelType"), r.findtext("TxnID")) for r in deleted.findall("TxnDeletedRet")}
    assert found == {("Invoice", a2), ("ReceivePayment", payment.txn_id)}

    again = FakeCompany.from_json(company.to_json())  # --company-state keeps deletions between runs
    [kept] = run(again, query)
    assert len(kept.findall("TxnDeletedRet")) == 2
    future = query.replace("2020-01-01", "2099-01-01")
    assert status(run(again, future)[0])[0] == 1
