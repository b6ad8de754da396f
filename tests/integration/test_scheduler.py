"""The local scheduler runs the template's Schedule events at their rates (optionally sped up)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from infra.aws_bootstrap import LocalResources, bootstrap, parse_rate
from infra.functions import load_handler
from infra.scheduler import SPEEDUP_ENV, Scheduler, speedup_from_env
from infra.template import load_template, resources_of_type
from tests.infra_fixtures import fixture_template


@pytest.fixture
def resources() -> Iterator[LocalResources]:
    with mock_aws():
        yield bootstrap(None, template=fixture_template(), environ={})


def _template_rates() -> dict[str, int]:
    rates: dict[str, int] = {}
    template = load_template()
    for logical_id, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        for event in (resource["Properties"].get("Events") or {}).values():
            if event["Type"] == "Schedule":
                expression = event["Properties"]["Schedule"]
                if isinstance(expression, dict):  # !Ref to a parameter (e.g. ReconcileRate): its default
                    expression = template["Parameters"][expression["Ref"]]["Default"]
                rate = parse_rate(expression)
                assert rate is not None
                rates[logical_id] = rate
    return rates


def test_parse_rate() -> None:
    assert parse_rate("rate(1 minute)") == 60
    assert parse_rate("rate(15 minutes)") == 900
    assert parse_rate("rate(2 hours)") == 7200
    assert parse_rate("rate(1 day)") == 86400
    assert parse_rate("cron(0 12 * * ? *)") is None


def test_rates_come_from_the_template(resources: LocalResources) -> None:
    scheduler = Scheduler(resources, speedup=1)
    rates = scheduler.rates()
    assert rates["ReconcilerFunction"] == 900
    assert rates == _template_rates()
    assert {"ReconcilerFunction", "TokenRefresherFunction", "JobSweeperFunction"} <= set(rates)


def test_speedup(resources: LocalResources, monkeypatch: pytest.MonkeyPatch) -> None:
    reconciler = next(s for s in Scheduler(resources, speedup=1).schedules if s.function == "ReconcilerFunction")
    assert Scheduler(resources, speedup=60).interval(reconciler) == 15
    monkeypatch.setenv(SPEEDUP_ENV, "300")
    assert speedup_from_env() == 300
    assert Scheduler(resources).interval(reconciler) == 3
    monkeypatch.setenv(SPEEDUP_ENV, "0")
    with pytest.raises(ValueError):
        speedup_from_env()


def test_run_now_sends_a_scheduled_event(resources: LocalResources) -> None:
    handler = load_handler("reconciler", resources)
    handler.calls.clear()
    result = Scheduler(resources, speedup=1).run_now("reconciler")
    assert result == {"function": "reconciler", "calls": 1}
    ((event, context),) = handler.calls
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["version"] == "0"
    assert event["account"] == "123456789012"
    assert event["region"] == "us-east-1"
    assert event["detail"] == {}
    assert event["id"]
    assert event["time"].endswith("Z")
    (rule,) = event["resources"]
    assert rule.startswith("arn:aws:events:us-east-1:123456789012:rule/")
    assert context.function_name == resources.functions["ReconcilerFunction"]["function_name"]
    assert context.get_remaining_time_in_millis() > 0


def test_loop_keeps_running_when_a_handler_raises(resources: LocalResources) -> None:
    calls: list[str] = []
    lock = threading.Lock()

    def failing(event: dict[str, Any], context: Any) -> None:
        with lock:
            calls.append(event["resources"][0])
        raise RuntimeError("scheduled handler failed")

    handlers = dict.fromkeys(resources.functions, failing)
    # The 5-minute sweeper at x6000 runs every 0.05 s; the others (>= 0.15 s) may run too.
    scheduler = Scheduler(resources, speedup=6000, handlers=handlers)
    scheduler.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with lock:
                sweeps = sum("JobSweeperFunction" in c for c in calls)
            if sweeps >= 3:
                break
            time.sleep(0.02)
    finally:
        scheduler.stop()
    assert sweeps >= 3
