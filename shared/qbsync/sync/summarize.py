"""Summarized Journal Entry mode (FEATURES S1, T5): the arithmetic, with no I/O.

The SaaS app posts *charges* (``POST /v1/charges``). Nothing goes to QuickBooks per charge: once a posting period
(daily, weekly or monthly — ``settings.summarized_period``) has closed, its charges are summed into **one balanced
journal entry**: a credit per income account (the billing code's M1 mapping) and class (the line of business's M3
mapping, with ``use_classes``) and one balancing debit to ``settings.journal_debit_account``.

Design (the service is :mod:`qbsync.sync.journal`):

* **A period's truth is a difference.** Each period remembers, per (billing code, line of business) *group*, the
  amount already in QuickBooks and the account/class it went to. A run sums the period's charges as they are now
  and posts only ``current - posted`` per group: the first time that is the whole period (the original entry),
  afterwards only what arrived or changed late (an *adjusting entry*). Re-running with nothing new posts nothing;
  a charge that changed amount, billing code or even date (it moves to another period) is a delta, never a
  silent change of an entry already posted. A negative delta flips debit and credit.
* **A group keeps its account.** Deltas of a group go to the account (and class) the group was first posted to,
  even if the mapping has changed since: a reversal must hit the account that got the credit.
* **Periods are named by their dates**: ``2026-11-05`` (daily), ``2026-W45`` (ISO week, Monday to Sunday),
  ``2026-11`` (monthly). Charge dates are calendar dates: no time zone is involved. A period closes at the start
  of the day after its last day (UTC) plus ``summarized_grace_hours``.
* **Document numbers** are deterministic and fit QuickBooks Desktop's 11-character ``RefNumber``: ``QS2611``
  (November 2026), ``QS26W45``, ``QS261105``; adjusting entries append ``A1``, ``A2``…
* Amounts are ``Decimal`` throughout and every entry is checked for balance before anything is sent.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import Field

from qbsync.sync.records import Day, Money, ShortText, SourceId, SourceRecord, Text

Granularity = Literal["daily", "weekly", "monthly"]
Side = Literal["debit", "credit"]
ZERO = Decimal("0.00")
DOC_PREFIX = "QS"
MAX_DOC_NUMBER = 11  # QuickBooks Desktop RefNumber


class SourceCharge(SourceRecord):
    """One charge of the SaaS app (T5): summed, never sent on its own."""

    date: Day = Field(description="The day the charge belongs to (a calendar date: it decides the period).")
    amount: Money = Field(description="Up to two decimals; negative for a credit.")
    billing_code: ShortText = Field(description="Billing / accounting code: mapped to an income account (M1).")
    line_of_business: ShortText | None = Field(None, description="Mapped to a class (M3) when use_classes is on.")
    customer_id: SourceId | None = None
    description: Text | None = None


# --------------------------------------------------------------------------------------------------- periods

_DAILY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_WEEKLY = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTHLY = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, order=True)
class Period:
    start: dt.date
    end: dt.date  # inclusive
    key: str
    granularity: Granularity

    def covers(self, day: dt.date) -> bool:
        return self.start <= day <= self.end

    def closes_at(self, grace_hours: int) -> dt.datetime:
        midnight = dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        return midnight + dt.timedelta(hours=grace_hours)

    def is_closed(self, now: dt.datetime, grace_hours: int) -> bool:
        return now >= self.closes_at(grace_hours)

    def doc_number(self, number: int) -> str:
        """``QS2611`` for the original entry (``number`` 0), ``QS2611A1``… for the adjusting ones."""
        if self.granularity == "daily":
            base = f"{DOC_PREFIX}{self.start:%y%m%d}"
        elif self.granularity == "weekly":
            iso = self.start.isocalendar()
            base = f"{DOC_PREFIX}{iso.year % 100:02d}W{iso.week:02d}"
        else:
            base = f"{DOC_PREFIX}{self.start:%y%m}"
        doc = base if number == 0 else f"{base}A{number}"
        if len(doc) > MAX_DOC_NUMBER:
            raise ValueError(f"period {self.key} has too many adjusting entries for an 11-character number")
        return doc


def period_of(day: dt.date, granularity: Granularity) -> Period:
    if granularity == "daily":
        return Period(day, day, day.isoformat(), "daily")
    if granularity == "weekly":
        iso = day.isocalendar()
        start = day - dt.timedelta(days=iso.weekday - 1)
        return Period(start, start + dt.timedelta(days=6), f"{iso.year}-W{iso.week:02d}", "weekly")
    start = day.replace(day=1)
    following = (start + dt.timedelta(days=32)).replace(day=1)
    return Period(start, following - dt.timedelta(days=1), f"{day:%Y-%m}", "monthly")


def parse_period(key: str) -> Period:
    """The period a key names (``2026-11-05``, ``2026-W45``, ``2026-11``); ``ValueError`` if it names none."""
    try:
        if _DAILY.match(key):
            return period_of(dt.date.fromisoformat(key), "daily")
        if match := _WEEKLY.match(key):
            monday = dt.date.fromisocalendar(int(match[1]), int(match[2]), 1)
            return period_of(monday, "weekly")
        if match := _MONTHLY.match(key):
            return period_of(dt.date(int(match[1]), int(match[2]), 1), "monthly")
    except ValueError:
        pass
    raise ValueError(f"{key!r} is not a period: use YYYY-MM-DD (daily), YYYY-Www (weekly) or YYYY-MM (monthly)")


class PeriodAssigner:
    """Which period a charge belongs to: a period already recorded (of any granularity) that covers its date —
    the oldest first — else the current setting's period. Changing ``summarized_period`` after entries were
    posted therefore never posts a day twice: days already covered stay with their period."""

    def __init__(self, granularity: Granularity, recorded: Iterable[Period] = ()) -> None:
        self.granularity = granularity
        self.recorded = list(recorded)

    def __call__(self, day: dt.date) -> Period:
        for period in self.recorded:
            if period.covers(day):
                return period
        return period_of(day, self.granularity)


# --------------------------------------------------------------------------------------------------- sums

GroupKey = tuple[str, str]  # (billing code, line of business or "")


def group_of(charge: SourceCharge) -> GroupKey:
    return charge.billing_code, charge.line_of_business or ""


def totals(charges: Iterable[SourceCharge]) -> dict[GroupKey, Decimal]:
    """Sum per group, exactly (``Decimal``)."""
    out: dict[GroupKey, Decimal] = {}
    for charge in charges:
        key = group_of(charge)
        out[key] = out.get(key, ZERO) + charge.amount
    return out


def deltas(current: Mapping[GroupKey, Decimal], posted: Mapping[GroupKey, Decimal]) -> dict[GroupKey, Decimal]:
    """What QuickBooks lacks per group (``current - posted``); groups with nothing to change are left out."""
    out: dict[GroupKey, Decimal] = {}
    for key in sorted(set(current) | set(posted)):
        delta = current.get(key, ZERO) - posted.get(key, ZERO)
        if delta != 0:
            out[key] = delta
    return out


@dataclass(frozen=True)
class Target:
    """Where a group's amounts go in QuickBooks."""

    account: str
    class_name: str | None = None


@dataclass(frozen=True)
class EntryLine:
    side: Side
    account: str
    amount: Decimal  # positive
    class_name: str | None = None
    memo: str | None = None


class UnbalancedEntry(AssertionError):
    """A bug, never a user error: the lines built here must balance."""


def entry_lines(
    changes: Mapping[GroupKey, Decimal],
    target: Callable[[GroupKey], Target],
    debit_account: str,
    memo: str,
) -> list[EntryLine]:
    """The lines of one entry: per (account, class) the net of its groups' deltas — a credit when income grows, a
    debit when it shrinks — then one balancing line to ``debit_account``. Empty when nothing nets to a change."""
    net: dict[tuple[str, str | None], Decimal] = {}
    for key, amount in changes.items():
        where = target(key)
        slot = (where.account, where.class_name)
        net[slot] = net.get(slot, ZERO) + amount
    lines: list[EntryLine] = []
    for (account, class_name), amount in sorted(net.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        if amount != 0:
            side: Side = "credit" if amount > 0 else "debit"
            lines.append(EntryLine(side, account, abs(amount), class_name, memo))
    income = sum(net.values(), ZERO)
    if income != 0:
        lines.insert(0, EntryLine("debit" if income > 0 else "credit", debit_account, abs(income), None, memo))
    check_balanced(lines)
    return lines


def check_balanced(lines: Iterable[EntryLine]) -> Decimal:
    """The entry's total (debits = credits), or :class:`UnbalancedEntry`."""
    debits = credits = ZERO
    for line in lines:
        if line.amount <= 0 or line.amount != line.amount.quantize(Decimal("0.01")):
            raise UnbalancedEntry(f"line amount {line.amount} must be positive with at most two decimals")
        if line.side == "debit":
            debits += line.amount
        else:
            credits += line.amount
    if debits != credits:
        raise UnbalancedEntry(f"debits {debits} do not equal credits {credits}")
    return debits
