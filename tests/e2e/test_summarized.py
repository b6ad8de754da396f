"""Issue 6 (part A) on the local stack: summarized mode. A month of charges, posted over HTTP in lists of 500,
becomes exactly one balanced journal entry per period in the QuickBooks Online emulator and in the fake Desktop
company (through `qbsync wc-sim`), summing to the cent to the charges; late and changed charges then become
adjusting entries, and nothing already posted changes. The scheduled `summarizer` (run once through the CLI)
queues the runs and the local worker posts them."""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.fake_qbd import FakeCompany
from infra.local_stack import LocalStack
from qbsync import cli
from qbsync.sync.summarize import period_of
from tests.e2e.helpers import run_wc_sim
from tests.e2e.test_local_stack import add_classes, online_tenant

pytestmark = pytest.mark.e2e

D = Decimal
PASSWORD = "correct horse battery"
MAPPINGS = {"SUP": "Services", "LIC": "Sales of Product Income", "FEE": "Services"}
DESKTOP_MAPPINGS = {"SUP": "Services", "LIC": "Consulting Income", "FEE": "Sales"}


def month_of_charges(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` charges spread over October 2026 (closed: the machine's today is later), with cents that do not
    round nicely, credits, three billing codes and two lines of business."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        amount = D(rng.randint(-2_000, 250_000)) / 100
        charge: dict[str, Any] = {
            "id": f"ch-{i:05d}",
            "date": f"2026-10-{1 + rng.randrange(31):02d}",
            "amount": str(amount),
            "billing_code": ("SUP", "LIC", "FEE")[rng.randrange(3)],
            "customer_id": f"cust-{rng.randrange(50)}",
        }
        if rng.random() < 0.6:
            charge["line_of_business"] = ("east", "west")[rng.randrange(2)]
        out.append(charge)
    return out


def post_charges(base: str, auth: dict[str, str], charges: list[dict[str, Any]]) -> None:
    for start in range(0, len(charges), 500):
        answer = requests.post(f"{base}/v1/charges", json=charges[start : start + 500], headers=auth, timeout=120)
        assert answer.status_code == 202, answer.text


def put_mappings(base: str, auth: dict[str, str], billing: dict[str, str], classes: dict[str, str]) -> None:
    for kind, entries in (("billing_codes", billing), ("lines_of_business", classes)):
        body = {"entries": {key: {"name": name} for key, name in entries.items()}}
        answer = requests.put(f"{base}/v1/mappings/{kind}", json=body, headers=auth, timeout=10)
        assert answer.status_code == 200, answer.text


def expected_by_period(charges: list[dict[str, Any]], granularity: str) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for charge in charges:
        key = period_of(dt.date.fromisoformat(charge["date"]), granularity).key  # type: ignore[arg-type]
        out[key] = out.get(key, D(0)) + D(charge["amount"])
    return out


def periods(base: str, auth: dict[str, str]) -> dict[str, dict[str, Any]]:
    answer = requests.get(f"{base}/v1/journal-entries", headers=auth, timeout=30)
    assert answer.status_code == 200, answer.text
    return {p["period"]: p for p in answer.json()["items"]}


def wait_until(done: Callable[[], bool], what: Callable[[], Any], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not done():
        time.sleep(0.5)
    assert done(), what()


def all_posted(base: str, auth: dict[str, str], expected: dict[str, Decimal]) -> Callable[[], bool]:
    def check() -> bool:
        found = periods(base, auth)
        return set(found) == set(expected) and all(
            p["state"] == "synced" and D(p["posted_total"]) == expected[key] for key, p in found.items()
        )

    return check


def run_summarizer(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run-schedule", "summarize"]) == 0
    capsys.readouterr()


def net_income_qbo(entry: dict[str, Any], debit_account: str) -> tuple[Decimal, Decimal, Decimal]:
    """(debits, credits, net credit to everything but the balancing account) of a QBO journal entry."""
    debits = credits = net = D(0)
    for line in entry["Line"]:
        detail = line["JournalEntryLineDetail"]
        amount = D(str(line["Amount"]))
        if detail["PostingType"] == "Debit":
            debits += amount
        else:
            credits += amount
        if detail["AccountRef"]["value"] != debit_account:
            net += amount if detail["PostingType"] == "Credit" else -amount
    return debits, credits, net


def net_income_qbd(company: FakeCompany, entry: Any) -> tuple[Decimal, Decimal, Decimal]:
    names = {a.list_id: a.full_name for a in company.accounts()}
    debits = sum((ln.amount for ln in entry.lines if ln.side == "Debit"), D(0))
    credits = sum((ln.amount for ln in entry.lines if ln.side == "Credit"), D(0))
    net = sum(
        (
            (ln.amount if ln.side == "Credit" else -ln.amount)
            for ln in entry.lines
            if names[ln.account_id] != "Undeposited Funds"
        ),
        D(0),
    )
    return debits, credits, net


def late_charges(charges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Three late charges, one amount changed, one charge moved a week later, one billing code changed."""
    changed = {**charges[0], "amount": str(D(charges[0]["amount"]) + D("0.07"))}
    moved = {**charges[1], "date": "2026-10-30" if charges[1]["date"] < "2026-10-20" else "2026-10-02"}
    recoded = {**charges[2], "billing_code": "FEE" if charges[2]["billing_code"] != "FEE" else "SUP"}
    new = [
        {"id": f"late-{i}", "date": f"2026-10-{5 + 9 * i:02d}", "amount": f"{11 + i}.{i}3", "billing_code": "SUP"}
        for i in range(3)
    ]
    return [changed, moved, recoded, *new]


def summarized_month(
    stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str], count: int, seconds: float
) -> None:
    base = stack.base_url
    settings = {"mode": "summarized", "journal_debit_account": "Undeposited Funds", "use_classes": True}

    # QuickBooks Online, daily periods.
    online, company = online_tenant(stack, f"Summary Online {count}", {**settings, "summarized_period": "daily"})
    add_classes(company, "East", "West")
    put_mappings(base, online, MAPPINGS, {"east": "East", "west": "West"})

    # QuickBooks Desktop, weekly periods.
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    key = requests.post(f"{base}/v1/tenants", json={"name": f"Summary Desk {count}"}, headers=admin, timeout=10)
    desktop = {"Authorization": f"Bearer {key.json()['api_key']}"}
    answer = requests.patch(
        f"{base}/v1/tenant/settings", json={**settings, "summarized_period": "weekly"}, headers=desktop, timeout=10
    )
    assert answer.status_code == 200
    username = f"summary-desk-{count}"
    connector = requests.post(
        f"{base}/v1/connectors",
        json={"name": "Books", "username": username, "password": PASSWORD},
        headers=desktop,
        timeout=30,
    )
    assert connector.status_code == 201
    put_mappings(base, desktop, DESKTOP_MAPPINGS, {"east": "East", "west": "West"})
    file = FakeCompany()
    file.process(
        '<?xml version="1.0"?><?qbxml version="13.0"?><QBXML><QBXMLMsgsRq onError="stopOnError">'
        + "".join(f"<ClassAddRq><ClassAdd><Name>{n}</Name></ClassAdd></ClassAddRq>" for n in ("East", "West"))
        + "</QBXMLMsgsRq></QBXML>"
    )
    state_file = tmp_path / "summary.json"
    state_file.write_text(file.to_json())

    charges = month_of_charges(count, seed=count)
    started = time.monotonic()
    post_charges(base, online, charges)
    post_charges(base, desktop, charges)
    post_charges(base, online, charges[:500])  # the same again: nothing changes
    refused = requests.post(f"{base}/v1/charges", json=charges[0], headers=admin, timeout=10)
    assert refused.status_code in (401, 403)
    one = requests.get(f"{base}/v1/charges/{charges[7]['id']}", headers=online, timeout=10).json()
    assert one["state"] == "pending" and one["period"] == charges[7]["date"]

    daily = expected_by_period(charges, "daily")
    weekly = expected_by_period(charges, "weekly")
    run_summarizer(capsys)
    wait_until(all_posted(base, online, daily), lambda: periods(base, online), seconds)
    for _ in range(20):  # Web Connector runs until every weekly entry is in (bounded by count and time)
        if all_posted(base, desktop, weekly)():
            break
        assert "xsd: all requests valid" in run_wc_sim(base, username, PASSWORD, state_file)
        time.sleep(1)
    wait_until(all_posted(base, desktop, weekly), lambda: periods(base, desktop), 60)
    elapsed = time.monotonic() - started

    # QuickBooks Online: one entry per day, balanced, summing to the cent.
    debit_account = next(a["Id"] for a in company.entities["Account"].values() if a["Name"] == "Undeposited Funds")
    entries = list(company.entities["JournalEntry"].values())
    assert sorted(e["DocNumber"] for e in entries) == sorted(
        period_of(dt.date.fromisoformat(k), "daily").doc_number(0) for k in daily
    )
    for entry in entries:
        debits, credits, net = net_income_qbo(entry, debit_account)
        day = dt.date(2000 + int(entry["DocNumber"][2:4]), int(entry["DocNumber"][4:6]), int(entry["DocNumber"][6:8]))
        assert debits == credits and net == daily[day.isoformat()], entry["DocNumber"]
    assert sum((net_income_qbo(e, debit_account)[2] for e in entries), D(0)) == sum(
        (D(c["amount"]) for c in charges), D(0)
    )

    # QuickBooks Desktop: one entry per ISO week, balanced, summing to the cent.
    file = FakeCompany.from_json(state_file.read_text())
    by_ref = {je.ref_number: je for je in file.journal_entries()}
    assert len(by_ref) == len(file.journal_entries()) == len(weekly)
    for key, total in weekly.items():
        debits, credits, net = net_income_qbd(file, by_ref[period_of_key(key).doc_number(0)])
        assert debits == credits and net == total, key
    sample = requests.get(f"{base}/v1/charges/{charges[11]['id']}", headers=desktop, timeout=10).json()
    assert sample["state"] == "synced" and sample["journal_entry"] == period_of_key(sample["period"]).doc_number(0)

    # Late and changed charges: adjusting entries with only the differences; posted entries never change.
    before_online = {e["Id"]: e for e in entries}
    late = late_charges(charges)
    post_charges(base, online, late)
    post_charges(base, desktop, late)
    now = {c["id"]: c for c in charges} | {c["id"]: c for c in late}
    daily_after = expected_by_period(list(now.values()), "daily")
    weekly_after = expected_by_period(list(now.values()), "weekly")
    run_summarizer(capsys)
    wait_until(all_posted(base, online, daily_after), lambda: periods(base, online), 120)
    for _ in range(10):
        if all_posted(base, desktop, weekly_after)():
            break
        assert "xsd: all requests valid" in run_wc_sim(base, username, PASSWORD, state_file)
        time.sleep(1)
    wait_until(all_posted(base, desktop, weekly_after), lambda: periods(base, desktop), 60)

    after = list(company.entities["JournalEntry"].values())
    adjusting = [e for e in after if e["Id"] not in before_online]
    changed_days = {k for k in daily_after if daily_after[k] != daily.get(k)}
    assert adjusting and all(e["DocNumber"].endswith("A1") and e["Adjustment"] is True for e in adjusting)
    assert len(adjusting) <= len(changed_days) + 2  # a recoded charge nets to zero when both codes share an account
    for entry in after:
        if entry["Id"] in before_online:
            assert entry["Line"] == before_online[entry["Id"]]["Line"]
        assert net_income_qbo(entry, debit_account)[0] == net_income_qbo(entry, debit_account)[1]
    assert sum((net_income_qbo(e, debit_account)[2] for e in after), D(0)) == sum(daily_after.values(), D(0))
    file = FakeCompany.from_json(state_file.read_text())
    refs = sorted(je.ref_number or "" for je in file.journal_entries())
    assert any(ref.endswith("A1") for ref in refs) and len(set(refs)) == len(refs)
    assert sum((net_income_qbd(file, je)[2] for je in file.journal_entries()), D(0)) == sum(weekly_after.values(), D(0))
    for key in weekly_after:
        entries_of = [
            je for je in file.journal_entries() if (je.ref_number or "").startswith(period_of_key(key).doc_number(0))
        ]
        assert sum((net_income_qbd(file, je)[2] for je in entries_of), D(0)) == weekly_after[key], key
    print(f"{count} charges: first posting in {elapsed:.1f}s")


def period_of_key(key: str) -> Any:
    from qbsync.sync.summarize import parse_period

    return parse_period(key)


def test_charges_are_refused_in_full_mode_with_a_clear_error(stack: LocalStack) -> None:
    base = stack.base_url
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    key = requests.post(f"{base}/v1/tenants", json={"name": "Full Co"}, headers=admin, timeout=10).json()["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    charge = {"id": "c1", "date": "2026-10-01", "amount": "10.00", "billing_code": "SUP"}
    refused = requests.post(f"{base}/v1/charges", json=charge, headers=auth, timeout=10)
    assert refused.status_code == 409 and refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "summarized_mode_off" and "mode" in refused.json()["detail"]
    requests.patch(f"{base}/v1/tenant/settings", json={"mode": "summarized"}, headers=auth, timeout=10)
    bad = requests.post(f"{base}/v1/charges", json={**charge, "amount": "1.001"}, headers=auth, timeout=10)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "amount"
    assert requests.get(f"{base}/v1/charges/c1", headers=auth, timeout=10).status_code == 404
    missing = requests.get(f"{base}/v1/journal-entries/2026-13", headers=auth, timeout=10)
    assert missing.status_code == 404
    unconnected = requests.post(f"{base}/v1/journal-entries/post", json={}, headers=auth, timeout=10)
    assert unconnected.status_code == 409 and unconnected.json()["code"] == "conflict"


def test_a_month_of_charges_becomes_one_entry_per_period_in_both_quickbooks(
    stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summarized_month(stack, tmp_path, capsys, count=600, seconds=120)


@pytest.mark.slow
def test_5000_charges_become_one_entry_per_period_in_both_quickbooks(
    stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Done-when of issue 6 at full size: 5,000 charges over a month, per tenant."""
    summarized_month(stack, tmp_path, capsys, count=5000, seconds=600)
