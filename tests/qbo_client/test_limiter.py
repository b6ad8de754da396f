"""Per-realm limiters: never more than the budget per second / minute / batch-minute, alone or hammered by threads."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from infra.dynamo_table import create_table_from_template
from qbsync import aws
from qbsync.qbo.errors import RealmBudgetExhausted, Throttled
from qbsync.qbo.limiter import DynamoRealmLimiter, MemoryRealmLimiter, RealmBudget
from qbsync.settings import Settings
from tests.qbo_client.conftest import FakeTime

INTUIT = RealmBudget(per_second=10, per_minute=500, batch_per_minute=40)  # Intuit's own numbers
T0 = 1_700_000_040.0  # a minute boundary


def _max_in_window(times: list[float], width: float) -> int:
    """The most admitted calls in any half-open interval [t, t + width)."""
    times = sorted(times)
    best, j = 0, 0
    for i, start in enumerate(times):
        while j < len(times) and times[j] < start + width:
            j += 1
        best = max(best, j - i)
    return best


# --- memory --------------------------------------------------------------------------------------------------------


def test_memory_never_11_calls_in_a_second_nor_41_batches_in_a_minute() -> None:
    fake = FakeTime(T0)
    limiter = MemoryRealmLimiter(INTUIT, max_wait=120, clock=fake.clock, sleep=fake.sleep)
    calls: list[float] = []
    batches: list[float] = []
    for i in range(700):
        batch = i % 3 == 0
        limiter.acquire("realm-1", batch=batch)
        (batches if batch else calls).append(fake.clock())
        fake.advance(0.013 * (i % 7))  # irregular arrivals, often bursts
    everything = calls + batches
    assert _max_in_window(everything, 1.0) == 10
    assert _max_in_window(everything, 60.0) <= 500
    assert _max_in_window(batches, 60.0) == 40
    assert fake.sleeps and max(fake.sleeps) <= 60


def test_memory_realms_are_independent_and_a_full_window_raises_after_the_bounded_wait() -> None:
    fake = FakeTime(T0)
    limiter = MemoryRealmLimiter(RealmBudget(per_second=2), max_wait=0.5, clock=fake.clock, sleep=fake.sleep)
    for _ in range(2):
        limiter.acquire("a")
        limiter.acquire("b")
    with pytest.raises(RealmBudgetExhausted) as caught:
        limiter.acquire("a")
    assert isinstance(caught.value, Throttled) and caught.value.retry_after == pytest.approx(1.0)
    assert caught.value.code == "qbo_realm_budget_exhausted"
    fake.advance(1.0)
    limiter.acquire("a")


def test_memory_under_8_threads_admits_exactly_the_budget_in_a_frozen_second() -> None:
    fake = FakeTime(T0)
    limiter = MemoryRealmLimiter(INTUIT, max_wait=0, clock=fake.clock, sleep=fake.sleep)
    assert _hammer(limiter, threads=8, calls_each=5) == 10


# --- DynamoDB ------------------------------------------------------------------------------------------------------


@pytest.fixture
def dynamo(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """moto with the real table; moto's backend has no locks, so its request handling is serialized (DynamoDB
    applies each conditional update atomically); client threads still run concurrently."""
    lock = threading.Lock()
    original = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", process_request)
    settings = Settings(table_name="qbsync-qbo-limits", aws_region="us-east-1")
    aws.reset_clients()
    with mock_aws():
        create_table_from_template(aws.client("dynamodb", settings), settings.table_name)
        yield settings
    aws.reset_clients()


def _hammer(limiter: Any, *, threads: int, calls_each: int, realm: str = "realm-1", batch: bool = False) -> int:
    admitted = Counter[str]()
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker() -> None:
        start.wait(timeout=10)
        for _ in range(calls_each):
            try:
                limiter.acquire(realm, batch=batch)
            except RealmBudgetExhausted:
                continue
            with lock:
                admitted["ok"] += 1

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in pool)
    return admitted["ok"]


def test_dynamo_8_threads_in_one_second_admit_exactly_the_budget(dynamo: Settings) -> None:
    fake = FakeTime(T0)
    limiter = DynamoRealmLimiter(dynamo, max_wait=0, clock=fake.clock, sleep=fake.sleep, jitter=lambda: 0.0)
    assert _hammer(limiter, threads=8, calls_each=4) == 9  # the default budget: 9/s
    counts = limiter.window_counts("realm-1")
    assert counts == {f"S#{int(T0)}": 9, f"M#{int(T0) // 60}": 9}
    fake.advance(1.0)
    assert _hammer(limiter, threads=8, calls_each=4) == 9
    assert limiter.window_counts("realm-2") == {}


def test_dynamo_minute_and_batch_windows_hold_under_8_threads(dynamo: Settings) -> None:
    fake = FakeTime(T0)
    budget = RealmBudget(per_second=5, per_minute=12, batch_per_minute=3)
    limiter = DynamoRealmLimiter(
        dynamo, budget=budget, max_wait=0, clock=fake.clock, sleep=fake.sleep, jitter=lambda: 0.0
    )
    per_second = []
    for _ in range(4):  # 4 seconds of hammering in the same minute: 5 + 5 + 2 + 0
        per_second.append(_hammer(limiter, threads=8, calls_each=2))
        fake.advance(1.0)
    assert per_second == [5, 5, 2, 0]
    counts = limiter.window_counts("realm-1")
    assert counts[f"M#{int(T0) // 60}"] == 12
    assert all(n <= 5 for sk, n in counts.items() if sk.startswith("S#"))

    fake.advance(60.0)  # next minute: batch calls
    assert _hammer(limiter, threads=8, calls_each=2, batch=True) == 3
    counts = limiter.window_counts("realm-1")
    minute = int(fake.clock()) // 60
    assert counts[f"B#{minute}"] == 3
    assert counts[f"M#{minute}"] <= 12


def test_dynamo_waits_for_the_next_window_then_gives_up_after_max_wait(dynamo: Settings) -> None:
    fake = FakeTime(T0 + 0.25)
    limiter = DynamoRealmLimiter(dynamo, max_wait=5, clock=fake.clock, sleep=fake.sleep, jitter=lambda: 0.01)
    admitted = []
    for _ in range(20):
        limiter.acquire("realm-1")
        admitted.append(fake.clock())
    assert Counter(int(t) for t in admitted) == {int(T0): 9, int(T0) + 1: 9, int(T0) + 2: 2}
    assert fake.sleeps == [pytest.approx(0.76), pytest.approx(1.0)]

    small = DynamoRealmLimiter(
        dynamo,
        budget=RealmBudget(per_second=9, per_minute=20),
        max_wait=5,
        clock=fake.clock,
        sleep=fake.sleep,
        jitter=lambda: 0.0,
    )
    with pytest.raises(RealmBudgetExhausted) as caught:  # the minute is spent; the next one is > 5 s away
        small.acquire("realm-1")
    assert 50 < caught.value.retry_after <= 60


def test_dynamo_ttl_and_entity_are_set(dynamo: Settings) -> None:
    limiter = DynamoRealmLimiter(dynamo, clock=lambda: T0)
    limiter.acquire("realm-9", batch=True)
    items = aws.client("dynamodb", dynamo).query(
        TableName=dynamo.table_name,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": "QBOLIMIT#realm-9"}},
    )["Items"]
    assert [i["SK"]["S"] for i in items] == [f"M#{int(T0) // 60}"]  # one item holds the minute, its seconds, batches
    item = items[0]
    assert item["entity"]["S"] == "qbolimit" and int(item["expires_at"]["N"]) > T0
    assert item["count"]["N"] == item["batch"]["N"] == item[f"s{int(T0) % 60:02d}"]["N"] == "1"
