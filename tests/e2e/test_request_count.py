"""The measurement behind the README's cost section runs and counts what it says it counts."""

from __future__ import annotations

import json

import pytest

from infra import request_count
from qbsync.aws import reset_clients
from qbsync.settings import reset_settings

pytestmark = pytest.mark.e2e


def test_the_request_count_behind_the_cost_section_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m infra.request_count --cost` on a small mix: every record is one SQS message and one event."""
    assert request_count.main(["--invoices", "10", "--cost", "--timeout", "240"]) == 0
    out = capsys.readouterr().out
    figures = json.loads(out[: out.index("\n}\n") + 2])
    per_record = figures["per_record"]
    assert figures["records"] == {"customers": 2, "items": 1, "invoices": 10, "payments": 4, "total": 17}
    assert per_record["sqs_messages"] == 1.0 and per_record["eventbridge_events"] == 1.0
    assert 1 <= per_record["dynamodb_write_units"] <= 20 and 1 <= per_record["dynamodb_read_units"] <= 20
    assert "100,000 invoices a month:" in out and "total" in out


def test_the_cost_arithmetic() -> None:
    per_invoice = {"api_requests": 0.01, "worker_messages": 1.0, "worker_invocations": 0.1, "sqs_requests": 0.3,
                   "dynamodb_write_units": 10.0, "dynamodb_read_units": 8.0, "eventbridge_events": 1.0,
                   "kms_requests": 2.0, "stored_bytes": 0.0}  # fmt: skip
    lines, total = request_count.cost_lines(per_invoice, 1_000_000)
    cost = {item: value for item, _, value in lines}
    assert cost["DynamoDB writes"] == pytest.approx(10 * 0.625)
    assert cost["API Gateway"] == pytest.approx(10_000 * 3.50 / 1e6)
    # one message per invocation: 1M sends batched as measured (0.1M) plus receive + delete per message
    assert cost["SQS FIFO"] == pytest.approx((0.3e6 - 0.2e6 + 2e6) * 0.50 / 1e6)
    assert cost["Lambda compute"] == pytest.approx((1e6 * 0.4 + 1e4 * 1.0) * 0.5 * 0.0000133334)
    assert total == pytest.approx(sum(cost.values()))
    reset_settings()
    reset_clients()
