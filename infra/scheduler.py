"""The local stand-in for the template's EventBridge schedules.

Every ``Schedule`` event of a function with a ``rate(...)`` expression runs on its own thread, calling the handler
every ``rate_seconds / speedup`` seconds with a real-shaped scheduled event. ``cron(...)`` expressions are not run
locally (use ``run_now``). Handler exceptions are logged and never stop the loop.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from infra.aws_bootstrap import LocalResources
from infra.functions import context_for, find_function, invocation_lock, load_handler

log = logging.getLogger("qbsync.local.scheduler")

Handler = Callable[[dict[str, Any], Any], Any]
SPEEDUP_ENV = "QBSYNC_SCHEDULE_SPEEDUP"


def speedup_from_env(environ: Mapping[str, str] | None = None, default: float = 1.0) -> float:
    raw = (os.environ if environ is None else environ).get(SPEEDUP_ENV, "").strip()
    if not raw:
        return default
    value = float(raw)
    if value <= 0:
        raise ValueError(f"{SPEEDUP_ENV} must be positive, got {raw!r}")
    return value


@dataclass(frozen=True)
class Schedule:
    function: str
    name: str
    expression: str
    rate_seconds: int
    rule_arn: str


def scheduled_event(rule_arn: str, account: str, region: str, when: dt.datetime | None = None) -> dict[str, Any]:
    """The event EventBridge sends a scheduled Lambda target."""
    when = when or dt.datetime.now(dt.UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class Scheduler:
    def __init__(
        self,
        resources: LocalResources,
        *,
        speedup: float | None = None,
        handlers: Mapping[str, Handler] | None = None,
    ) -> None:
        self.resources = resources
        self.speedup = speedup if speedup is not None else speedup_from_env()
        if self.speedup <= 0:
            raise ValueError("speedup must be positive")
        self._handlers: dict[str, Handler] = dict(handlers or {})
        self._handler_lock = threading.Lock()
        self.schedules: list[Schedule] = []
        for logical_id, spec in resources.functions.items():
            for event in spec["events"]:
                if event["type"] != "Schedule" or not event.get("enabled", True):
                    continue
                if not event.get("rate_seconds"):
                    log.warning("%s: %s is not a rate(); run it with run_now", logical_id, event["schedule_expression"])
                    continue
                self.schedules.append(
                    Schedule(
                        logical_id,
                        event["name"],
                        event["schedule_expression"],
                        int(event["rate_seconds"]),
                        event["rule_arn"],
                    )
                )
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.runs: dict[str, int] = {}

    def interval(self, schedule: Schedule) -> float:
        """Seconds between local runs of ``schedule``."""
        return schedule.rate_seconds / self.speedup

    def rates(self) -> dict[str, int]:
        """Function logical id → rate in seconds (its first rate schedule)."""
        out: dict[str, int] = {}
        for schedule in self.schedules:
            out.setdefault(schedule.function, schedule.rate_seconds)
        return out

    def _handler(self, function: str) -> Handler:
        with self._handler_lock:
            if function not in self._handlers:
                self._handlers[function] = load_handler(function, self.resources)
            return self._handlers[function]

    def run_now(self, name: str) -> Any:
        """Invoke ``name`` (logical id or folder name) once with a scheduled event; exceptions propagate."""
        spec = find_function(name, self.resources)
        function = spec["logical_id"]
        rule_arn = next(
            (s.rule_arn for s in self.schedules if s.function == function),
            f"arn:aws:events:{self.resources.region}:{self.resources.account_id}:rule/{spec['function_name']}-manual",
        )
        event = scheduled_event(rule_arn, self.resources.account_id, self.resources.region)
        handler = self._handler(function)
        self.runs[function] = self.runs.get(function, 0) + 1
        with invocation_lock:
            return handler(event, context_for(spec, self.resources))

    def _loop(self, schedule: Schedule) -> None:
        # EventBridge fires a rate schedule one period after it is created, not at once.
        while not self._stop.wait(self.interval(schedule)):
            try:
                self.run_now(schedule.function)
            except Exception:
                log.exception("scheduled run of %s (%s) failed", schedule.function, schedule.expression)

    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        for schedule in self.schedules:
            thread = threading.Thread(
                target=self._loop, args=(schedule,), name=f"qbsync-schedule-{schedule.function}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("%s did not stop within %.0f s (a handler is still running)", thread.name, timeout)
        self._threads = []
