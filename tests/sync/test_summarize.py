"""Summarized journal entries, the arithmetic: periods and their boundaries, exact sums, deltas and balanced lines."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest

from qbsync.sync.summarize import (
    EntryLine,
    PeriodAssigner,
    SourceCharge,
    Target,
    UnbalancedEntry,
    check_balanced,
    deltas,
    entry_lines,
    parse_period,
    period_of,
    totals,
)

D = Decimal


def charge(i: int, amount: str, code: str = "SUP", lob: str | None = None, day: str = "2026-11-05") -> SourceCharge:
    data = {"id": f"ch-{i}", "date": day, "amount": amount, "billing_code": code}
    if lob:
        data["line_of_business"] = lob
    return SourceCharge.model_validate(data)


def test_periods_by_granularity_and_their_keys() -> None:
    day = dt.date(2026, 11, 5)  # a Thursday
    daily, weekly, monthly = (period_of(day, g) for g in ("daily", "weekly", "monthly"))  # type: ignore[arg-type]
    assert (daily.key, daily.start, daily.end) == ("2026-11-05", day, day)
    assert (weekly.key, weekly.start, weekly.end) == ("2026-W45", dt.date(2026, 11, 2), dt.date(2026, 11, 8))
    assert (monthly.key, monthly.start, monthly.end) == ("2026-11", dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    for period in (daily, weekly, monthly):
        assert parse_period(period.key) == period
    assert period_of(dt.date(2024, 2, 10), "monthly").end == dt.date(2024, 2, 29)  # leap year
    assert period_of(dt.date(2026, 12, 31), "monthly").end == dt.date(2026, 12, 31)


def test_weekly_periods_run_monday_to_sunday_across_months_and_years() -> None:
    sunday, monday = dt.date(2026, 11, 8), dt.date(2026, 11, 9)
    assert period_of(sunday, "weekly").key == "2026-W45" and period_of(monday, "weekly").key == "2026-W46"
    new_year = period_of(dt.date(2027, 1, 1), "weekly")  # a Friday in ISO week 53 of 2026
    assert (
        new_year.key == "2026-W53" and new_year.start == dt.date(2026, 12, 28) and new_year.end == dt.date(2027, 1, 3)
    )
    assert new_year.doc_number(0) == "QS26W53"
    assert period_of(dt.date(2026, 11, 30), "weekly").end == dt.date(2026, 12, 6)


@pytest.mark.parametrize("key", ["2026-13", "2026-W60", "2026-02-30", "26-11", "2026-11-5", "november"])
def test_unknown_period_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="not a period"):
        parse_period(key)


def test_doc_numbers_fit_desktop_and_number_the_adjustments() -> None:
    day = dt.date(2026, 11, 5)
    assert period_of(day, "monthly").doc_number(0) == "QS2611"
    assert period_of(day, "monthly").doc_number(3) == "QS2611A3"
    assert period_of(day, "daily").doc_number(0) == "QS261105"
    assert period_of(day, "daily").doc_number(99) == "QS261105A99"
    with pytest.raises(ValueError, match="too many"):
        period_of(day, "daily").doc_number(100)


def test_a_period_closes_after_its_last_day_plus_the_grace() -> None:
    period = parse_period("2026-11")
    assert period.closes_at(2) == dt.datetime(2026, 12, 1, 2, tzinfo=dt.UTC)
    assert not period.is_closed(dt.datetime(2026, 12, 1, 1, 59, tzinfo=dt.UTC), 2)
    assert period.is_closed(dt.datetime(2026, 12, 1, 2, tzinfo=dt.UTC), 2)


def test_recorded_periods_keep_their_days_when_the_granularity_changes() -> None:
    november = parse_period("2026-11")
    assign = PeriodAssigner("daily", [november])
    assert assign(dt.date(2026, 11, 30)) == november  # already summarized monthly: never posted twice
    assert assign(dt.date(2026, 12, 1)).key == "2026-12-01"


def test_sums_are_exact_to_the_cent_over_thousands_of_charges() -> None:
    rng = random.Random(7)
    amounts = [D(rng.randint(-500, 100_000)) / 100 for _ in range(5000)]
    charges = [charge(i, str(a), code=("SUP", "LIC", "FEE")[i % 3]) for i, a in enumerate(amounts)]
    summed = totals(charges)
    assert sum(summed.values()) == sum(amounts)
    assert summed[("SUP", "")] == sum(amounts[0::3])
    assert all(v == v.quantize(D("0.01")) for v in summed.values())


def test_deltas_are_only_what_changed() -> None:
    posted = {("SUP", ""): D("100.00"), ("LIC", "East"): D("50.00")}
    current = {("SUP", ""): D("100.00"), ("LIC", "East"): D("45.50"), ("FEE", ""): D("7.25")}
    assert deltas(current, posted) == {("LIC", "East"): D("-4.50"), ("FEE", ""): D("7.25")}
    assert deltas(posted, posted) == {}
    assert deltas({}, posted) == {("LIC", "East"): D("-50.00"), ("SUP", ""): D("-100.00")}


def targets(key: tuple[str, str]) -> Target:
    accounts = {"SUP": "Services", "LIC": "Services", "FEE": "Fees"}
    return Target(accounts[key[0]], key[1] or None)


def test_entry_lines_credit_income_per_account_and_class_and_debit_the_balance() -> None:
    changes = {("SUP", "East"): D("100.10"), ("LIC", "East"): D("20.00"), ("FEE", ""): D("5.05")}
    lines = entry_lines(changes, targets, "Undeposited Funds", "memo")
    assert lines == [
        EntryLine("debit", "Undeposited Funds", D("125.15"), None, "memo"),
        EntryLine("credit", "Fees", D("5.05"), None, "memo"),
        EntryLine("credit", "Services", D("120.10"), "East", "memo"),
    ]
    assert check_balanced(lines) == D("125.15")


def test_negative_deltas_flip_debit_and_credit() -> None:
    lines = entry_lines({("SUP", ""): D("-30.00"), ("FEE", ""): D("10.00")}, targets, "Clearing", "m")
    assert lines == [
        EntryLine("credit", "Clearing", D("20.00"), None, "m"),
        EntryLine("credit", "Fees", D("10.00"), None, "m"),
        EntryLine("debit", "Services", D("30.00"), None, "m"),
    ]


def test_changes_that_cancel_out_in_one_account_make_no_lines() -> None:
    assert entry_lines({("SUP", ""): D("5.00"), ("LIC", ""): D("-5.00")}, targets, "Clearing", "m") == []


def test_an_unbalanced_or_fractional_entry_is_refused() -> None:
    with pytest.raises(UnbalancedEntry):
        check_balanced([EntryLine("debit", "A", D("1.00")), EntryLine("credit", "B", D("0.99"))])
    with pytest.raises(UnbalancedEntry):
        check_balanced([EntryLine("debit", "A", D("1.001")), EntryLine("credit", "B", D("1.001"))])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "1.005"}, "amount"),
        ({"date": "2026-11-31"}, "date"),
        ({"billing_code": ""}, "billing_code"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_charges_are_validated_strictly(change: dict, field: str) -> None:
    from pydantic import ValidationError

    data = {"id": "c", "date": "2026-11-05", "amount": "1.00", "billing_code": "SUP", **change}
    with pytest.raises(ValidationError) as caught:
        SourceCharge.model_validate(data)
    assert field in str(caught.value)
